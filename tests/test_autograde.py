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


def test_gradebook_steps_write_what_nbgraders_steps_write(tmp_path):
    """OverwriteCells and SaveAutoGrades reading the gradebook once per notebook (judge/gradebook_steps.py) leave the
    notebook and the gradebook exactly as nbgrader's own steps do: on a tampered submission, and over a manual grade."""
    import copy

    from nbgrader.preprocessors import OverwriteCells, SaveAutoGrades

    from course_fixture import autograde, submit_batch
    from mfml_grader.gradebook import open_gradebook
    from mfml_grader.judge import gradebook_steps

    assignment, student = "ps4_information_theory", "typical_mistakes"
    graded = submit_batch(tmp_path / "course", [assignment], [student])
    assert autograde(graded, [assignment], "--jobs", "1").returncode == 0
    notebook = assignment                                                     # one notebook per assignment, named after it
    resources = {"nbgrader": {"notebook": notebook, "assignment": assignment, "student": student,
                              "db_url": f"sqlite:///{graded.root / 'gradebook.db'}"}}

    submitted = nbformat.read(graded.root / "submitted" / student / assignment / f"{notebook}.ipynb", as_version=4)
    cells = course.cells_by_grade_id(submitted)
    locked = next(c for c in submitted.cells if c.metadata.get("nbgrader", {}).get("locked") and not c.metadata["nbgrader"].get("grade"))
    locked.source += "\nprint('changed')"                                     # a locked cell changed: restored
    test_cells = [name for name in cells if name.startswith("test_")]
    cells[test_cells[0]].metadata.nbgrader["points"] = 99                     # points raised: reset
    submitted.cells.remove(cells[test_cells[1]])                              # a test cell deleted: put back
    cells[test_cells[2]].cell_type = "markdown"                               # a cell's type changed: restored
    cells[test_cells[2]].pop("outputs"), cells[test_cells[2]].pop("execution_count")
    ours = gradebook_steps.OverwriteCells(add_missing_cells=True).preprocess(copy.deepcopy(submitted), resources)[0]
    theirs = OverwriteCells(add_missing_cells=True).preprocess(copy.deepcopy(submitted), resources)[0]
    assert ours == theirs and ours != submitted

    def rows():
        with open_gradebook(graded.root) as gradebook:
            found = gradebook.find_submission_notebook(notebook, assignment, student)
            return (sorted((g.name, g.auto_score, g.manual_score, g.needs_manual_grade) for g in found.grades),
                    sorted((c.name, c.auto_comment) for c in found.comments))

    def reset(manual):
        with open_gradebook(graded.root) as gradebook:
            found = gradebook.find_submission_notebook(notebook, assignment, student)
            for grade in found.grades:
                grade.auto_score, grade.needs_manual_grade = None, True
                grade.manual_score = 1.0 if manual and grade.name == test_cells[0] else None
            for comment in found.comments:
                comment.auto_comment = "stale"
            gradebook.db.commit()

    autograded = nbformat.read(course.autograded_notebook(graded.root, assignment, student), as_version=4)
    for manual in (False, True):
        reset(manual)
        SaveAutoGrades().preprocess(copy.deepcopy(autograded), resources)
        want = rows()
        reset(manual)
        gradebook_steps.SaveAutoGrades().preprocess(copy.deepcopy(autograded), resources)
        assert rows() == want
        assert any(score for _, score, _, _ in want[0]) and all(comment != "stale" for _, comment in want[1])
