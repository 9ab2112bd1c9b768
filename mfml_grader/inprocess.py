"""Run a notebook's student code in this process: for instructors' quick checks and the project's tests.

Grading runs notebooks in the judge's sandbox (mfml_grader/judge/); this is the fast path that lets
`pytest grader_tests/` check the hidden tests against a notebook without starting one. Figures are
never drawn here: matplotlib draws off screen (Agg) and each cell's figures are closed after it.
"""

import contextlib
import io
import os

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from .course import grade_id, is_test_cell
from .figures import close_figures
from .student import InProcessStudent


def run_cells(notebook, namespace, after=lambda cell: close_figures()):
    """Run every code cell but the test cells in `namespace`, in order, quietly, going on after errors
    (as "Run All" would not, so that one broken cell costs only what depends on it); `after(cell)`
    follows each cell (by default: close its figures, as a kernel's inline backend shows and closes them)."""
    transform = TransformerManager().transform_cell
    os.environ.setdefault("MPLBACKEND", "Agg")  # plt.show() in a figure cell must not open a window and wait
    for cell in notebook.cells:
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(transform(cell.source), f"<cell {grade_id(cell) or cell.get('id')}>", "exec"), namespace)
        after(cell)


def load_student(notebook_path):
    """Execute every code cell except the test cells; return (student adapter, {grade_id: source})."""
    notebook = nbformat.read(notebook_path, as_version=4)
    namespace = {"__name__": "__student__"}
    run_cells(notebook, namespace)
    sources = {grade_id(c): c.source for c in notebook.cells if c.cell_type == "code" and grade_id(c)}
    return InProcessStudent(namespace), sources
