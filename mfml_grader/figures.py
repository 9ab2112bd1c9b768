"""Notebook figures: the cells that make them, and the open matplotlib figures as PNG images.

A figure cell is a locked code cell whose nbgrader grade_id starts with `figure_`; it makes exactly
one figure and ends with `plt.show()`. Cells run without a Jupyter kernel: after each cell, the
judge's sandbox draws the figures it left open and closes them (JupyterLab's inline backend does the
same), and `load_student` closes them undrawn. The PNG is the same bytes for the same figure: a
fixed dpi and no metadata (matplotlib writes its version as `Software` unless told not to).

Nothing here imports matplotlib: a cell that never imported pyplot has no figure.
"""

import base64
import contextlib
import io
import sys
from pathlib import Path

PREFIX = "figure_"
DPI = 100  # JupyterLab's: a (9, 4) inch figure is 900 x 400 pixels


def is_figure_cell(cell):
    """A code cell of the course that makes a figure: its nbgrader grade_id starts with `figure_`."""
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or ""
    return cell.get("cell_type") == "code" and grade_id.startswith(PREFIX)


def png(figure):
    """The figure drawn as PNG bytes, cropped to what it draws (as JupyterLab's inline backend does)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def take_figures():
    """[(figure, PNG bytes)] of every open figure, by figure number; all are closed after.

    A closed figure can still be inspected (its axes, titles, labels). A figure that cannot be drawn
    raises, and every figure is closed all the same.
    """
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    try:
        return [(figure, png(figure)) for figure in map(pyplot.figure, pyplot.get_fignums())]
    finally:
        pyplot.close("all")


def render(source_notebook):
    """{grade_id: [(repr, PNG bytes)]} of a notebook's figure cells: its code cells (not its test cells) run in
    order in its folder, in this process, as `make release` renders the figures the release carries."""
    import nbformat

    from .inprocess import run_cells

    notebook = nbformat.read(source_notebook, as_version=4)
    drawn = {}

    def after(cell):
        if is_figure_cell(cell):
            drawn[cell.metadata.nbgrader.grade_id] = [(repr(figure), image) for figure, image in take_figures()]
        close_figures()

    import torch

    close_figures()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)              # as grading runs cells: float32 sums, and so pixels, do not depend on the cores
    try:
        with contextlib.chdir(Path(source_notebook).parent):
            run_cells(notebook, {"__name__": "__main__"}, after)
    finally:
        torch.set_num_threads(threads)
    return drawn


def display_outputs(drawn):
    """The outputs a kernel shows for figures drawn as [(repr, PNG bytes)] (nbformat display_data)."""
    import nbformat

    return [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(image).decode(), "text/plain": text})
            for text, image in drawn]


def released(release_notebook):
    """{grade_id: outputs} of the figure cells of a release notebook, as `make release` rendered them."""
    from .course import read_notebook

    path = Path(release_notebook)
    if not path.exists():
        return {}
    return {cell.metadata.nbgrader.grade_id: cell.outputs for cell in read_notebook(path).cells
            if is_figure_cell(cell) and cell.get("outputs")}


def close_figures():
    """Close every open figure without drawing it (nothing to do when pyplot was never imported)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
