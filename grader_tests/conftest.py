"""Run the hidden checks with pytest against a notebook (default: the instructor's source notebook).

    pytest grader_tests/test_ps1_linear_algebra.py                      # the reference solution
    pytest grader_tests/test_ps1_linear_algebra.py --notebook my.ipynb  # any submission
"""

from pathlib import Path

import pytest

from mfml_grader import course
from mfml_grader.inprocess import load_student


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="notebook whose functions the hidden checks grade")


@pytest.fixture(scope="module")
def student(request):
    assignment = Path(request.module.__file__).stem.removeprefix("test_")
    root = Path(__file__).resolve().parent.parent
    path = request.config.getoption("--notebook") or course.source_notebook(assignment, root)
    adapter, _ = load_student(path)
    return adapter


@pytest.fixture(autouse=True)
def _substitutes(request):
    """Give exercises the course's helper solutions, as the grader does."""
    instance = request.instance
    if instance is not None and getattr(instance, "substitutes", ()):
        assignment = Path(request.module.__file__).stem.removeprefix("test_")
        sources = course.solution_sources(assignment, Path(__file__).resolve().parent.parent)
        instance.substitute_sources = {name: sources[name] for name in instance.substitutes}
