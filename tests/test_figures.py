"""Figures: every notebook shows at least three, each made by its own locked cell (grade_id `figure_*`).

Run here in order, as a student's kernel runs them (matplotlib off screen, mfml_grader/figures.py
drawing PNGs as JupyterLab does), a figure cell draws exactly one figure of at most 9 x 4 inches,
not blank, with a title and axis labels on every axes, the same pixels when run again, quietly; and
it never calls a graded function (students see the figures before solving anything, and the release
has stubs there). The judge keeps them: each figure cell of a graded notebook carries its PNG into
the autograded notebook and the feedback page, and the sandbox and the grader bound how many and
how large.
"""

import ast
import base64
import contextlib
import io
import logging
import shutil
import warnings
from dataclasses import dataclass

import matplotlib
import nbformat
import numpy
import pytest
from nbgrader.utils import is_solution
from IPython.core.inputtransformer2 import TransformerManager
from PIL import Image

from course_fixture import REPO, Course
from mfml_grader import course, figures, release
from mfml_grader.judge import outputs

matplotlib.use("Agg")

ASSIGNMENTS = course.assignments(REPO)
GRADED = "ps4_information_theory"   # graded through nbgrader: light, with figures
MIN_FIGURES = 3
MAX_INCHES = (9, 4)
MIN_INK = 0.01        # of the pixels, not the background colour
MIN_COLOURS = 4       # distinct colours, at 8 levels per channel
_MARK = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")  # a 1x1 PNG


def _notebook(assignment):
    return nbformat.read(course.source_notebook(assignment, REPO), as_version=4)


def _figure_cells(notebook):
    return [cell for cell in notebook.cells if figures.is_figure_cell(cell)]


def _graded_names(notebook):
    """The grade_ids of the solution cells and every function or class they define."""
    names = set()
    for cell in notebook.cells:
        if cell.cell_type == "code" and is_solution(cell):
            names.add(course.grade_id(cell))
            tree = ast.parse(TransformerManager().transform_cell(cell.source))
            names |= {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    return names - {None}


@dataclass
class Drawn:
    figures: list     # [(figure, PNG bytes)] of the cell's first run
    again: list       # the PNG bytes of its second run
    noise: str        # what it wrote on stderr, and its warnings


def _draw(assignment, folder):
    """Run the source notebook's code cells but its test cells in order, in one namespace, in a copy of
    its folder (the notebooks read data beside them), each figure cell twice; {grade_id: Drawn}."""
    shutil.copytree(REPO / "source" / assignment, folder, dirs_exist_ok=True)
    notebook = _notebook(assignment)
    namespace = {"__name__": "__main__"}
    transform = TransformerManager().transform_cell
    drawn = {}
    figures.close_figures()
    with contextlib.chdir(folder), contextlib.redirect_stdout(io.StringIO()):
        for cell in notebook.cells:
            if cell.cell_type != "code" or course.is_test_cell(cell):
                continue
            code = compile(transform(cell.source), f"<cell {course.grade_id(cell) or cell.get('id')}>", "exec")
            if not figures.is_figure_cell(cell):
                exec(code, namespace)
                figures.close_figures()
                continue
            stderr = io.StringIO()
            with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
                warnings.simplefilter("always")
                for category in (DeprecationWarning, PendingDeprecationWarning):  # a kernel shows neither from libraries
                    warnings.simplefilter("ignore", category)
                exec(code, namespace)
                first = figures.take_figures()
                exec(code, namespace)
                again = [png for _, png in figures.take_figures()]
            noise = stderr.getvalue() + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
            drawn[course.grade_id(cell)] = Drawn(first, again, noise)
    return drawn


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """drawn(assignment): its figure cells' Drawn, computed once per assignment."""
    cache = {}

    def get(assignment):
        if assignment not in cache:
            cache[assignment] = _draw(assignment, tmp_path_factory.mktemp(assignment))
        return cache[assignment]

    return get


def _pixels(png):
    return numpy.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _axes(figure):
    """The figure's visible axes, colour bars aside (they have a label of their own, not a title)."""
    return [ax for ax in figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _problems(figure, png):
    problems = []
    width, height = figure.get_size_inches()
    if width > MAX_INCHES[0] + 1e-6 or height > MAX_INCHES[1] + 1e-6:
        problems.append(f"figsize ({width:g}, {height:g}) is over {MAX_INCHES}")
    for i, ax in enumerate(_axes(figure)):
        if not any(ax.get_title(loc=loc) for loc in ("center", "left", "right")):
            problems.append(f"axes {i} has no title")
        if ax.axison and not (ax.get_xlabel() and ax.get_ylabel()):
            problems.append(f"axes {i} ({ax.get_title()!r}) lacks an x or y label")
        if not ax.has_data():
            problems.append(f"axes {i} ({ax.get_title()!r}) draws no data")
    pixels = _pixels(png)
    background = pixels[0, 0]
    ink = (pixels != background).any(axis=-1).mean()
    colours = len(numpy.unique(pixels.reshape(-1, 3) // 32, axis=0))
    if ink <= MIN_INK or colours < MIN_COLOURS:
        problems.append(f"looks blank: {ink:.1%} of the pixels drawn, {colours} colours")
    return problems


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_notebook_has_at_least_three_figure_cells(assignment):
    cells = _figure_cells(_notebook(assignment))
    assert len(cells) >= MIN_FIGURES, f"{assignment}: {len(cells)} figure cells, at least {MIN_FIGURES} wanted"
    for cell in cells:
        meta = cell.metadata.nbgrader
        assert meta.get("locked") and not meta.get("grade") and not meta.get("solution"), f"{meta.grade_id}: not a read-only cell"
    ids = [course.grade_id(cell) for cell in cells]
    assert len(set(ids)) == len(ids), f"{assignment}: grade_ids repeat: {ids}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_figure_cells_never_use_a_graded_function(assignment):
    notebook = _notebook(assignment)
    graded = _graded_names(notebook)
    for cell in _figure_cells(notebook):
        used = {node.id for node in ast.walk(ast.parse(TransformerManager().transform_cell(cell.source))) if isinstance(node, ast.Name)}
        assert not used & graded, f"{course.grade_id(cell)} uses {sorted(used & graded)}: a stub in the release notebook"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_figure_cell_draws_one_readable_figure(drawn, assignment):
    problems = []
    for grade_id, cell in drawn(assignment).items():
        if len(cell.figures) != 1:
            problems.append(f"{grade_id}: {len(cell.figures)} figures, exactly one wanted")
            continue
        problems += [f"{grade_id}: {problem}" for problem in _problems(*cell.figures[0])]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_figure_cells_are_deterministic_and_quiet(drawn, assignment):
    problems = []
    for grade_id, cell in drawn(assignment).items():
        first = [_pixels(png) for _, png in cell.figures]
        again = [_pixels(png) for png in cell.again]
        if len(first) != len(again) or not all(a.shape == b.shape and (a == b).all() for a, b in zip(first, again)):
            problems.append(f"{grade_id}: other pixels when run again")
        if cell.noise:
            problems.append(f"{grade_id}: not quiet:\n{cell.noise}")
    assert not problems, "\n".join(problems)


# -- the judge ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def judge():
    from mfml_grader.judge.session import Judge

    judge = Judge()
    yield judge
    judge.close()


def _shows_its_figure(cell):
    """One PNG display (a line of printed text may come with it), no error, nothing on stderr."""
    images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
    noise = [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"]
    return (len(images) == 1 and not noise and images[0].output_type == "display_data"
            and images[0].data["text/plain"].startswith("<Figure size ") and base64.b64decode(images[0].data["image/png"]).startswith(b"\x89PNG"))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_judge_draws_each_figure_cell(judge, assignment, monkeypatch):
    """The source notebook is a correct submission as the grader runs it (hidden tests restored)."""
    from mfml_grader.judge.notebook_run import run_notebook

    monkeypatch.setenv("MFML_COURSE_DIR", str(REPO))  # where the hidden checks are
    folder = REPO / "source" / assignment
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ".ipynb"}
    notebook = _notebook(assignment)
    run_notebook(notebook, judge, files, logging.getLogger(__name__))
    cells = _figure_cells(notebook)
    assert cells, f"{assignment} has no figure cell"
    for cell in cells:
        assert _shows_its_figure(cell), f"{course.grade_id(cell)}: {str(cell.outputs)[:3000]}"


def test_the_judge_shows_the_released_figures_without_drawing_them(judge, monkeypatch):
    """Given the figures `make release` rendered, a figure cell still runs but shows those, not a new drawing."""
    from mfml_grader.judge.notebook_run import run_notebook

    monkeypatch.setenv("MFML_COURSE_DIR", str(REPO))
    notebook = _notebook(GRADED)
    marked = {course.grade_id(cell): figures.display_outputs([("<Figure size 1x1 with 0 Axes>", _MARK)]) for cell in _figure_cells(notebook)}
    run_notebook(notebook, judge, {}, logging.getLogger(__name__), marked)
    for cell in _figure_cells(notebook):
        images = [base64.b64decode(o.data["image/png"]) for o in cell.outputs if "image/png" in o.get("data", {})]
        assert images == [_MARK] and not any(o.output_type == "error" for o in cell.outputs), str(cell.outputs)[:2000]


def test_the_release_carries_every_figure():
    """What students fetch shows the figures before they run anything; the grader shows the same ones."""
    for assignment in ASSIGNMENTS:
        release = nbformat.read(course.release_notebook(assignment, REPO), as_version=4)
        for cell in _figure_cells(release):
            assert _shows_its_figure(cell), f"release/{assignment}: {course.grade_id(cell)} has no figure: run `make release`"


def test_a_graded_submission_shows_its_figures_in_the_feedback(tmp_path):
    """Through nbgrader (release, autograde with the judge, generate_feedback), as students get it."""
    grading = Course.copy_of_repo(tmp_path)
    assert release.release(grading.root, GRADED) == ""
    grading.submit("alice", GRADED, grading.solutions(GRADED))
    grading.nbgrader("autograde", GRADED)
    grading.nbgrader("generate_feedback", GRADED)
    cells = _figure_cells(nbformat.read(course.autograded_notebook(grading.root, GRADED, "alice"), as_version=4))
    assert cells and all(map(_shows_its_figure, cells)), str([c.outputs for c in cells])[:3000]
    (page,) = (grading.root / "feedback" / "alice" / GRADED).glob("*.html")
    assert page.read_text().count('src="data:image/png;base64,') == len(cells)


def test_a_figure_in_the_sandbox_draws_quietly_with_no_font_of_the_zygote(judge):
    """The warm worker drew with fonts before forking; a submission's process inherits none of their files."""
    session = judge.session()
    try:
        fonts = session.run_cell("import os\nprint(sorted(os.readlink(f'/proc/self/fd/{fd}') for fd in os.listdir('/proc/self/fd')"
                                 " if os.path.exists(f'/proc/self/fd/{fd}')))")
        assert ".ttf" not in fonts["outputs"][0]["text"], fonts
        reply = session.run_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n"
                                 "ax.semilogy([1, 2, 3], [1, 10, 100], label=r'$\\sigma^2$')\nax.legend()\n"
                                 "ax.set(title=r'$\\|x\\|_2$', xlabel='step', ylabel='loss')\nplt.show()")
        assert [o["output_type"] for o in reply["outputs"]] == ["display_data"], reply["outputs"]
    finally:
        session.close("done")


def test_a_cell_flooding_figures_keeps_a_few_and_says_so(judge):
    session = judge.session()
    try:
        reply = session.run_cell("import matplotlib.pyplot as plt\nfor i in range(12):\n    plt.figure(figsize=(2, 2))\n    plt.plot([0, i])")
    finally:
        session.close("done")
    images = [o for o in reply["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == outputs.IMAGES_PER_CELL
    assert "image(s) dropped" in reply["outputs"][-1]["text"]


def test_the_grader_keeps_a_few_large_figures_per_cell_and_refuses_floods():
    def display(chars):
        return {"output_type": "display_data", "data": {"image/png": "A" * chars, "text/plain": "<Figure>"}, "metadata": {}}

    def images(kept):
        return sum("image/png" in o.get("data", {}) for o in kept)

    budget = outputs.OutputBudget(per_cell=100_000, per_notebook=2_000_000)
    kept = budget.keep([display(200_000)] * 3 + [{"output_type": "stream", "name": "stdout", "text": "x" * 90_000}])
    assert images(kept) == 3 and len(kept) == 4, "three 150 KB PNGs and 90 000 characters of text fit in one cell"
    kept = budget.keep([display(1_000)] * 20)
    assert images(kept) == outputs.IMAGES_PER_CELL and "12 image(s) dropped" in kept[-1].text
    kept = budget.keep([display(outputs.IMAGE_CHARS + 4)])
    assert images(kept) == 0 and "dropped" in kept[-1].text
    budget = outputs.OutputBudget(per_cell=100_000, per_notebook=2_000_000)
    kept = [o for _ in range(100) for o in budget.keep([display(outputs.IMAGE_CHARS)] * 2)]
    assert images(kept) == outputs.NOTEBOOK_IMAGE_CHARS // outputs.IMAGE_CHARS, "a notebook of figures in every cell is cut"
