"""Run a notebook's student code in this process: for instructors' quick checks and the project's tests.

Grading uses the real notebook kernel (nbgrader autograde); this is the fast path that lets
`pytest grader_tests/` check the hidden tests against a notebook without starting one.
"""

import contextlib
import io

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from .course import grade_id, is_test_cell
from .student import InProcessStudent


def load_student(notebook_path):
    """Execute every code cell except the test cells; return (student adapter, {grade_id: source})."""
    notebook = nbformat.read(notebook_path, as_version=4)
    namespace = {"__name__": "__student__"}
    transform = TransformerManager().transform_cell
    for cell in notebook.cells:
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            exec(compile(transform(cell.source), f"<cell {grade_id(cell) or cell.get('id')}>", "exec"), namespace)
    sources = {grade_id(c): c.source for c in notebook.cells if c.cell_type == "code" and grade_id(c)}
    return InProcessStudent(namespace), sources
