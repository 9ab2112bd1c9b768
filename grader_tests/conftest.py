"""Run the hidden checks with pytest against a notebook (default: the instructor's source notebook).

    pytest grader_tests/test_ps1_linear_algebra.py                      # the reference solution
    pytest grader_tests/test_ps1_linear_algebra.py --notebook my.ipynb  # any submission

Each Exercise becomes a group of items run by `mfml_grader.runner`, exactly as grading runs them:
first the refusals (not defined, reflection, forbidden APIs in the notebook's code), then every
check, inherited ones included, with the stand-ins `make release` wrote.
"""

import functools
from pathlib import Path

import nbformat
import pytest

from mfml_grader import runner
from mfml_grader.course import course_root, source_notebook
from mfml_grader.exercise import Exercise
from mfml_grader.inprocess import load_student
from mfml_grader.submission_code import SubmissionCode

ROOT = course_root(Path(__file__).parent)


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="notebook whose functions the hidden checks grade")


def pytest_pycollect_makeitem(collector, name, obj):
    if isinstance(obj, type) and issubclass(obj, Exercise) and obj.function and name in vars(collector.obj):
        return ExerciseItems.from_parent(collector, name=name, obj=obj)
    return None


@functools.cache
def _submission(path):
    """(student adapter, SubmissionCode) of a notebook, run once per session."""
    student, _ = load_student(path)
    return student, SubmissionCode.from_cells([c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"])


class ExerciseItems(pytest.Class):
    """One Exercise: its refusal, then one item per check, in grading order."""

    def collect(self):
        assignment = Path(self.path).stem.removeprefix("test_")
        exercise = runner.prepare(assignment, self.obj.function, ROOT)
        notebook = self.config.getoption("--notebook") or source_notebook(assignment, ROOT)
        yield CheckItem.from_parent(self, name="refusal", exercise=exercise, check=None, notebook=str(notebook))
        for check in runner.checks(self.obj):
            yield CheckItem.from_parent(self, name=check.name, exercise=exercise, check=check, notebook=str(notebook))


class CheckItem(pytest.Item):
    def __init__(self, *, exercise, check, notebook, **kwargs):
        super().__init__(**kwargs)
        self.exercise, self.check, self.notebook = exercise, check, notebook

    def runtest(self):
        student, code = _submission(self.notebook)
        if self.check is None:
            refused = runner.refusal(self.exercise, student, code)
            assert not refused, refused
            return
        failure = runner.run_check(self.exercise, self.check, student)
        if failure is not None:
            named = f" (mistake: {failure.mistake.name})" if failure.mistake else ""
            raise AssertionError(f"{self.check.title}: {failure}{named}")

    def repr_failure(self, excinfo):
        return str(excinfo.value) if excinfo.errisinstance(AssertionError) else super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.parent.name}::{self.name}"
