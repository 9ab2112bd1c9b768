"""The entry point hidden test cells call: `grade(assignment, function, points)`.

A test cell starts with a hidden block

    ### BEGIN HIDDEN TESTS
    from mfml_grader.notebook import grade; grade("ps1_linear_algebra", "l2_norm", points=1)
    ### END HIDDEN TESTS

followed by the visible tests students saw. `grade` publishes the report (as text, HTML and data)
with the partial credit as the cell's first result (nbgrader scores a test cell by its first error
or result), so a visible test failing afterwards cannot hide the report or cancel the partial credit.

Under the course's grader (judge/), the cell runs in the trusted grading process and student code
in a sandbox: `judged` holds that submission's context, and the checks run in a copy of the
submission made at this point, after the notebook has finished (the report and score are then put
first in the cell's outputs). Under a plain kernel (stock nbgrader, or an instructor running the
source notebook), the student's namespace is this kernel's and the checks run at once.
"""

import contextvars
import sys

from .runner import run_exercise
from .student import InProcessStudent
from .submission_code import SubmissionCode

judged = contextvars.ContextVar("judged", default=None)


def grade(assignment, function, points):
    """Run the hidden checks of `function`; publish the report and score as the cell's result (mfml_grader/results.py)."""
    context = judged.get()
    if context is not None:  # the course's grader: checked in a copy of the submission, after the notebook
        context.defer(assignment, function, points)
        return
    from IPython import get_ipython

    shell = get_ipython()
    history = [source for source in shell.user_ns.get("In", []) if source]
    sys.displayhook(run_exercise(assignment, function, InProcessStudent(shell.user_ns), points, SubmissionCode.from_history(history, function)))
