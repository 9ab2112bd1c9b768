"""An instructor adds an exercise by following docs/authoring.md: three files, then release and validate.

The page's code blocks are added, as they are, to a copy of the course; nothing else is edited by
hand. The release, the stand-ins and the validation must then work with no other change.
"""

import hashlib
import re

import nbformat

from course_fixture import REPO
from mfml_grader import catalog, check, course, release, validate

A = "ps1_linear_algebra"
FUNCTION = "cosine_similarity"
BY_HAND = {f"source/{A}/{A}.ipynb", f"grader_tests/test_{A}.py", f"grader_tests/catalog/{A}.py"}


def page_blocks():
    """{what: code} of the authoring page's python blocks, recognised by what they contain."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "authoring.md").read_text(), re.S)
    kinds = {"solution": "### BEGIN SOLUTION", "test cell": "### BEGIN HIDDEN TESTS", "checks": "(Exercise):", "catalog": "MUTANTS +="}
    found = {kind: [b for b in blocks if marker in b] for kind, marker in kinds.items()}
    assert all(len(b) == 1 for b in found.values()), {k: len(v) for k, v in found.items()}
    return {kind: b[0] for kind, b in found.items()}


def snapshot(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def nbgrader_cell(cell, **meta):
    cell.metadata["nbgrader"] = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False, **meta}
    return cell


def add_exercise(root, blocks):
    """What the page says to do, in the three files."""
    path = course.source_notebook(A, root)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells += [
        nbgrader_cell(nbformat.v4.new_markdown_cell("## Cosine similarity\n\n$\\cos\\theta = a^\\top b / (\\lVert a\\rVert \\lVert b\\rVert)$"),
                      grade_id="cosine_intro", locked=True),
        nbgrader_cell(nbformat.v4.new_code_cell(blocks["solution"]), grade_id=FUNCTION, solution=True),
        nbgrader_cell(nbformat.v4.new_code_cell(blocks["test cell"]), grade_id=f"test_{FUNCTION}", grade=True, locked=True, points=2),
    ]
    nbformat.write(notebook, path)
    for name, block in ((f"test_{A}.py", blocks["checks"]), (f"catalog/{A}.py", blocks["catalog"])):
        hidden = root / "grader_tests" / name
        hidden.write_text(hidden.read_text() + "\n\n" + block)


def test_an_exercise_added_as_the_authoring_page_says_releases_checks_and_validates(tmp_path):
    root = course.copy_course(REPO, tmp_path / "course")
    assert release.main(root, [A]) == 0
    before = snapshot(root)
    add_exercise(root, page_blocks())
    edited = snapshot(root)
    assert {p for p in edited if edited[p] != before.get(p)} == BY_HAND

    assert release.main(root, [A]) == 0
    released = snapshot(root)
    generated = {p for p in released if released[p] != edited.get(p)}
    assert generated <= {f"release/{A}/{A}.ipynb", "gradebook.db"}, generated
    stub = course.cells_by_grade_id(nbformat.read(course.release_notebook(A, root), as_version=4))[FUNCTION].source
    assert "raise NotImplementedError" in stub and "(a * b).sum(-1)" not in stub

    cases = catalog.load(A, root)
    assert len([m for m in cases.MUTANTS if m.function == FUNCTION]) >= 4 and len([v for v in cases.VARIANTS if v.function == FUNCTION]) >= 2
    assert check.run(A, [FUNCTION], root) == [], "the author's loop found a broken promise"

    [outcome] = validate.run(root, tmp_path / "validate", jobs=2, assignments=[A])
    assert outcome.problems == [], "\n".join(outcome.problems)
    caught, named = outcome.counts["caught"], outcome.counts["named"]
    assert caught[0] == caught[1] and named[0] == named[1] and caught[1] >= len(catalog.load(A, REPO).MUTANTS) + 4
