"""release/ (and the stand-ins grading reads) are exactly what `make release` makes from source/, and nothing hidden leaks into release/."""

import ast
import json
import re
import shutil

import nbformat
import pytest
from nbgrader.utils import is_solution

from course_fixture import REPO, Course
from mfml_grader import course, release

ASSIGNMENTS = course.assignments(REPO)
HIDDEN_CALL = re.compile(r'grade\("(?P<assignment>\w+)", "(?P<function>\w+)", points=(?P<points>[\d.]+)\)')


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    fresh = Course.copy_of_repo(tmp_path_factory.mktemp("course"))
    shutil.rmtree(fresh.root / "grader_tests" / "stand_ins")
    for assignment in ASSIGNMENTS:
        assert release.release(fresh.root, assignment) == ""
    return fresh


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_what_generate_assignment_makes(assignment, regenerated):
    committed = json.loads(course.release_notebook(assignment, REPO).read_text())
    fresh = json.loads(course.release_notebook(assignment, regenerated.root).read_text())
    assert committed == fresh, f"release/{assignment} is stale: run `make release` and commit it"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stand_ins_are_what_release_writes(assignment, regenerated):
    committed, fresh = (course.stand_ins_file(assignment, root).read_text() for root in (REPO, regenerated.root))
    assert committed == fresh, f"grader_tests/stand_ins/{assignment}.json is stale: run `make release` and commit it"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nothing_hidden_leaks_into_release(assignment):
    text = course.release_notebook(assignment, REPO).read_text()
    release = nbformat.read(course.release_notebook(assignment, REPO), as_version=4)
    code = {line.strip() for cell in release.cells if cell.cell_type == "code" for line in cell.source.splitlines()}
    source = nbformat.read(course.source_notebook(assignment, REPO), as_version=4)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "mfml_grader", "grader_tests"):
        assert marker not in text, f"release/{assignment} contains {marker!r}"
    solution_region = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
    hidden_region = re.compile(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", re.S)
    shown = {line.strip() for cell in source.cells if cell.cell_type == "code"            # lines the source shows anyway ("else:")
             for line in solution_region.sub("", hidden_region.sub("", cell.source)).splitlines()}
    for cell in source.cells:
        for region in solution_region.findall(cell.source):
            for line in region.strip().splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    assert line.strip() not in code - shown, f"solution line leaked into release/{assignment}: {line.strip()!r}"
    hidden_test_file = (REPO / "grader_tests" / f"test_{assignment}.py").read_text()
    for line in hidden_test_file.splitlines():
        if line.strip().startswith(("self.expect(", "Mistake(")):
            assert line.strip() not in code, f"hidden check leaked into release/{assignment}: {line.strip()!r}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_exercise_has_solution_and_test_cells_that_agree(assignment):
    """Each graded function: a solution cell `<f>`, a test cell `test_<f>` whose hidden call names
    this assignment, `<f>` and the cell's own points, and an Exercise in grader_tests/."""
    source = nbformat.read(course.source_notebook(assignment, REPO), as_version=4)
    cells = course.cells_by_grade_id(source)
    hidden = course.hidden_tests(assignment, REPO)
    test_cells = [name for name in cells if name.startswith("test_")]
    assert test_cells, f"{assignment} has no test cells"
    for name in test_cells:
        function = name.removeprefix("test_")
        cell = cells[name]
        assert function in cells and is_solution(cells[function]), f"{name} has no solution cell {function!r}"
        call = HIDDEN_CALL.search(cell.source)
        assert call, f"{name} does not call grade(...) in a hidden block"
        assert (call["assignment"], call["function"]) == (assignment, function), f"{name} grades {call['function']} of {call['assignment']}"
        assert float(call["points"]) == cell.metadata.nbgrader.points, f"{name}: grade(points={call['points']}) but the cell is worth {cell.metadata.nbgrader.points}"
        assert cell.source.index("BEGIN HIDDEN TESTS") < cell.source.index("assert"), f"{name}: the hidden block must come before the visible tests"
        assert any(getattr(v, "function", None) == function for v in vars(hidden).values()), f"no Exercise for {function}"
        solution = cells[function].source
        defined = [n.name for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
        assert function in defined, f"solution cell {function} does not define {function}()"


def test_a_refused_release_keeps_the_previous_one_and_says_what_to_do(tmp_path):
    import io

    fresh = Course.copy_of_repo(tmp_path)
    A = "ps4_information_theory"
    assert release.release(fresh.root, A) == ""
    before = course.release_notebook(A, fresh.root).read_text()
    course.source_notebook(A, fresh.root).write_text('{"cells": [')          # a source notebook that does not read
    said = io.StringIO()
    assert release.release(fresh.root, A, out=said)
    assert course.release_notebook(A, fresh.root).read_text() == before, "the previous release was lost"
    message = said.getvalue()
    assert f"release/{A} is unchanged" in message and "What to do:" in message and "not valid JSON" in message, message


def test_readme_lists_the_released_exercises():
    readme = (REPO / "README.md").read_text()
    assert release.assignments_table(REPO) in readme, "the README's assignments table is stale: run `make release` and commit it"
