"""nbgrader configuration of the course (read by every nbgrader command run from this folder)."""

import os

from mfml_grader import intake
from mfml_grader.gradebook import tune_sqlite

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "math-foundations-ml"

# The gradebook next to this file; parallel graders wait up to 60 s for sqlite's write lock,
# in WAL mode (mfml_grader/gradebook.py).
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "gradebook.db") + "?timeout=60"
tune_sqlite()

# What students see where a solution was removed.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Hidden test regions (### BEGIN/END HIDDEN TESTS) are stripped from release/ and restored from the
# gradebook at autograde time; they only call into grader_tests/, which is never released.
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Execution limits while grading: seconds per cell, and a kernel that does not answer is retried once.
c.Execute.timeout = 120
c.Execute.startup_timeout = 120
c.Execute.execute_retries = 1

# Only the release notebooks are handed out.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".hypothesis"]

# Grading runs student code in a bubblewrap sandbox and the tests in this (trusted) process:
# mfml_grader/judge/. MFML_EXECUTOR=kernel selects nbgrader's stock kernel executor and steps instead
# (used by `make bench` to compare the two). nbgrader's list, without its final CheckCellMetadata:
# the sanitize step below already checked the metadata, and nothing here changes it since. Its
# OverwriteCells and SaveAutoGrades read the gradebook once per notebook (mfml_grader/judge/gradebook_steps.py).
stock = os.environ.get("MFML_EXECUTOR", "sandbox") == "kernel"
steps = "nbgrader.preprocessors" if stock else "mfml_grader.judge.gradebook_steps"
if not stock:
    c.Autograde.autograde_preprocessors = [
        "mfml_grader.judge.executor.SandboxedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        f"{steps}.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
    ]
    # nbconvert checks the notebook against nbformat's schema once, after the last step, not after each
    # of the twelve (an invalid notebook still fails; a twelfth of the validations)
    c.Exporter.optimistic_validation = True
c.SandboxedExecute.cell_timeout = 60
c.SandboxedExecute.notebook_timeout = 600

# Deleted test cells come back from the gradebook (and score from the instructor's code); copies of
# graded cells become plain cells instead of stopping the notebook (mfml_grader/judge/duplicates.py);
# the metadata check is nbgrader's with its schema compiled once (mfml_grader/judge/metadata.py).
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "mfml_grader.judge.duplicates.ForgetDuplicateGradeCells",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    f"{steps}.OverwriteCells",
    "mfml_grader.judge.metadata.CheckCellMetadata",
]

# A submission is read without following links (no link, FIFO or device is read; the feedback names
# what was refused), and its time comes from the exchange, not from the student's timestamp.txt
# (mfml_grader/intake.py).
intake.install()
c.ExchangeFactory.collect = "mfml_grader.intake.TrustedCollect"

# Student HTML is sanitised when grading (mfml_grader/judge/outputs.py); the HTML exports sanitise too.
c.HTMLExporter.sanitize_html = True

# Feedback pages wrap long lines and lay out the hidden-test report (mfml_grader/feedback.py).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "mfml_grader.feedback.FeedbackStyle",
]

# Late policy: 10 % of the earned score per started day late (mfml_grader/late.py).
c.AssignLatePenalties.plugin_class = "mfml_grader.late.PercentPerDay"
c.PercentPerDay.percent_per_day = 10.0

# The filesystem exchange lives in the course folder (release -> fetch -> submit -> collect ->
# feedback); MFML_EXCHANGE_ROOT points it elsewhere, e.g. at a shared JupyterHub's exchange (make hub).
c.Exchange.root = os.environ.get("MFML_EXCHANGE_ROOT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "exchange")
