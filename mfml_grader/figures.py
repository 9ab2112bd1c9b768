"""Notebook figures: the cells that make them, and the open matplotlib figures as PNG images.

A figure cell is a locked code cell whose nbgrader grade_id starts with `figure_`; it makes exactly
one figure and ends with `plt.show()`. Cells run without a Jupyter kernel: after each cell, the
judge's sandbox draws the figures it left open and closes them (JupyterLab's inline backend does the
same), and `load_student` closes them undrawn. The PNG is the same bytes for the same figure: a
fixed dpi and no metadata (matplotlib writes its version as `Software` unless told not to).

Nothing here imports matplotlib: a cell that never imported pyplot has no figure.
"""

import io
import sys

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


def close_figures():
    """Close every open figure without drawing it (nothing to do when pyplot was never imported)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
