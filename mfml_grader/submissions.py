"""Build student notebooks: a release notebook with answers written into its solution cells.

Answers are plain Python files, so example submissions stay readable and never go stale when a
notebook's text changes: each top-level `def <grade_id>` (with the code just above it, such as a
helper or an import) becomes the content of the solution cell with that grade id.
"""

import ast
import re
import shutil
from pathlib import Path

import nbformat
from nbgrader.utils import is_solution

from .course import grade_id, release_notebook

SOLUTION_REGION = re.compile(r"^[ \t]*### BEGIN SOLUTION\n(.*?)^[ \t]*### END SOLUTION\n?", re.S | re.M)


def answers_from_python(source, grade_ids):
    """Split a Python file into {grade_id: cell source} at each top-level def of a graded name."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    answers, start = {}, 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in grade_ids:
            end = node.end_lineno
            answers[node.name] = "".join(lines[start:end]).strip("\n")
            start = end
    return answers


def answers_from_source(source_notebook):
    """The instructor's solutions: every solution cell with its BEGIN/END SOLUTION markers removed."""
    return {
        grade_id(cell): SOLUTION_REGION.sub(r"\1", cell.source)
        for cell in source_notebook.cells
        if is_solution(cell)
    }


def fill(release_notebook, answers):
    """A copy of `release_notebook` whose solution cells hold `answers` (others keep the stub)."""
    notebook = nbformat.from_dict(release_notebook)
    unknown = set(answers) - {grade_id(c) for c in notebook.cells}
    if unknown:
        raise KeyError(f"answers for cells the notebook does not have: {sorted(unknown)}")
    for cell in notebook.cells:
        if grade_id(cell) in answers and is_solution(cell):
            cell.source = answers[grade_id(cell)]
    return notebook


def submit(root, assignment, student, answers):
    """Write submitted/<student>/<assignment>/ as a student would hand it in: the release's files and the filled notebook."""
    release = release_notebook(assignment, root)
    folder = Path(root) / "submitted" / student / assignment
    shutil.copytree(release.parent, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    nbformat.write(fill(nbformat.read(release, as_version=4), answers), folder / release.name)
    return folder / release.name
