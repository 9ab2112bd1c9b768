"""What students meet: each release notebook opens with how to work and submit, its visible tests
run fast and pass on a correct solution, and `nbgrader validate` passes a correct notebook and
fails an untouched one with a clear message."""

import datetime
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from course_fixture import REPO, nbgrader_env
from mfml_grader import course, submissions

ASSIGNMENTS = course.assignments(REPO)
VISIBLE_TEST_SECONDS = 1.0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_opens_with_how_to_work_and_submit(assignment):
    first = nbformat.read(course.release_notebook(assignment, REPO), as_version=4).cells[0]
    assert first.cell_type == "markdown"
    text = first.source.lower()
    assert "submit" in text and "validate" in text and "your code here" in text, f"{assignment}: the first cell should say how to work and submit"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_visible_tests_pass_fast_on_a_correct_solution(assignment, tmp_path):
    release = nbformat.read(course.release_notebook(assignment, REPO), as_version=4)
    solutions = submissions.answers_from_source(nbformat.read(course.source_notebook(assignment, REPO), as_version=4))
    notebook = submissions.fill(release, solutions)
    for path in (REPO / "release" / assignment).rglob("*"):
        if path.is_file() and path.suffix != ".ipynb":
            target = tmp_path / path.relative_to(REPO / "release" / assignment)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in filter(course.is_test_cell, notebook.cells):
        errors = [o for o in cell.outputs if o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")]
        assert not errors, f"{assignment}/{cell.metadata.nbgrader.grade_id}: visible tests fail on the solution: {errors}"
        timing = cell.metadata.execution
        start = datetime.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
        seconds = (end - start).total_seconds()
        assert seconds < VISIBLE_TEST_SECONDS, f"{assignment}/{cell.metadata.nbgrader.grade_id}: visible tests take {seconds:.2f} s"


def test_nbgrader_validate_passes_a_solution_and_fails_a_stub_clearly(tmp_path):
    assignment = "ps4_information_theory"
    release = nbformat.read(course.release_notebook(assignment, REPO), as_version=4)
    solutions = submissions.answers_from_source(nbformat.read(course.source_notebook(assignment, REPO), as_version=4))
    done, stub = tmp_path / "done.ipynb", tmp_path / "stub.ipynb"
    nbformat.write(submissions.fill(release, solutions), done)
    nbformat.write(release, stub)
    ok = subprocess.run(["nbgrader", "validate", str(done)], cwd=tmp_path, env=nbgrader_env(), capture_output=True, text=True)
    assert "Success! Your notebook passes all the tests." in ok.stdout, ok.stdout + ok.stderr
    failed = subprocess.run(["nbgrader", "validate", str(stub)], cwd=tmp_path, env=nbgrader_env(), capture_output=True, text=True)
    assert "VALIDATION FAILED" in failed.stdout and "NotImplementedError" in failed.stdout, failed.stdout
