"""Grade the grader through the real path (nbgrader autograde with the sandboxed executor), for
every assignment at once: solutions 100 %, stubs 0 %, stderr noise harmless, every catalogued
mistake loses points on its own cell only and is named, every correct variant gets full marks,
every forbidden API is refused and named. The summary table is printed at the end of `make test`.
"""

import nbformat
import pytest

from course_fixture import REPO
from mfml_grader import catalog, course

ASSIGNMENTS = course.assignments(REPO)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grader_keeps_every_promise(outcomes, assignment):
    outcome = outcomes[assignment]
    assert not outcome.problems, "\n".join(outcome.problems)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_catalog_is_complete(assignment):
    """At least 4 mutants and 2 correct variants for every graded function."""
    cases = catalog.load(assignment, REPO)
    cells = course.cells_by_grade_id(nbformat.read(course.source_notebook(assignment, REPO), as_version=4))
    functions = [name.removeprefix("test_") for name in cells if name.startswith("test_")]
    for function in functions:
        mutants = [m for m in cases.MUTANTS if m.function == function]
        variants = [v for v in cases.VARIANTS if v.function == function]
        assert len(mutants) >= 4, f"{assignment}.{function}: {len(mutants)} mutants, at least 4 wanted"
        assert len(variants) >= 2, f"{assignment}.{function}: {len(variants)} correct variants, at least 2 wanted"
