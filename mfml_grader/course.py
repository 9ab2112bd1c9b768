"""Where course material lives: the course root, assignments, hidden tests and source notebooks."""

import functools
import importlib.util
import json
import os
import shutil
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade, is_solution

from .gradebook import open_gradebook, test_cell_grades

ROOT_MARKERS = ("nbgrader_config.py", "grader_tests")


def course_root(start=None):
    """The course directory: $MFML_COURSE_DIR, or the nearest parent holding nbgrader_config.py and grader_tests/."""
    if os.environ.get("MFML_COURSE_DIR"):
        return Path(os.environ["MFML_COURSE_DIR"]).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    raise FileNotFoundError(f"no course directory (with {' and '.join(ROOT_MARKERS)}) above {here}; set MFML_COURSE_DIR")


COURSE_FILES = ("source", "grader_tests", "demo", "nbgrader_config.py")


def copy_course(source_root, destination):
    """A throwaway copy of what an instructor keeps (not release/, submissions or the gradebook); its root."""
    destination = Path(destination)
    for name in COURSE_FILES:
        src = Path(source_root) / name
        if src.is_dir():
            shutil.copytree(src, destination / name, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
        elif src.exists():
            shutil.copy(src, destination / name)
    return destination


def assignments(root=None):
    """Names of the assignments in source/, in order."""
    root = Path(root or course_root())
    return sorted(p.name for p in (root / "source").iterdir() if (p / f"{p.name}.ipynb").exists())


def source_notebook(assignment, root=None):
    return Path(root or course_root()) / "source" / assignment / f"{assignment}.ipynb"


def release_notebook(assignment, root=None):
    return Path(root or course_root()) / "release" / assignment / f"{assignment}.ipynb"


def read_notebook(path):
    """The notebook at `path`, read once per version of the file (grading reads the release for every submission)."""
    stat = Path(path).stat()
    return _read_notebook(Path(path), (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _read_notebook(path, version):
    return nbformat.read(path, as_version=4)


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_test_cell(cell):
    """An autograder test cell: graded, not a solution (its code is the instructor's)."""
    return bool(is_grade(cell)) and not is_solution(cell)


def visible_tests(cell):
    """The part of a test cell students see: what follows its hidden block."""
    return cell.source.split("### END HIDDEN TESTS", 1)[-1]


def cells_by_grade_id(notebook):
    return {grade_id(cell): cell for cell in notebook.cells if grade_id(cell)}


def stand_ins_file(assignment, root=None):
    """grader_tests/stand_ins/<assignment>.json: {helper: the course's solution} of every helper an exercise substitutes.

    `make release` writes it from the source notebook, so grading never reads source/.
    """
    return Path(root or course_root()) / "grader_tests" / "stand_ins" / f"{assignment}.json"


def stand_ins(assignment, root=None, names=()):
    """{name: solution source} of the helpers `names`, as `make release` wrote them."""
    if not names:
        return {}
    path = stand_ins_file(assignment, root)
    try:
        stat = path.stat()
        known = _read_json(path, (stat.st_mtime_ns, stat.st_size))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: run `make release`") from None
    missing = [name for name in names if name not in known]
    if missing:
        raise LookupError(f"{path} has no solution of {', '.join(missing)}: run `make release`")
    return {name: known[name] for name in names}


@functools.lru_cache(maxsize=32)
def _read_json(path, version):
    return json.loads(Path(path).read_text())


def hidden_tests(assignment, root=None):
    """The module grader_tests/test_<assignment>.py, loaded from its file (again when the file changes)."""
    path = Path(root or course_root()) / "grader_tests" / f"test_{assignment}.py"
    stat = path.stat()
    return _load_module(path, f"hidden_tests_{assignment}", (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _load_module(path, name, version):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def autograded_notebook(root, assignment, student):
    return Path(root) / "autograded" / student / assignment / f"{assignment}.ipynb"


def test_cell_results(root, assignment, student):
    """{function: results.CellResult} of a graded submission's test cells ({} if it was not graded)."""
    from .results import read_cell

    path = autograded_notebook(root, assignment, student)
    if not path.exists():
        return {}
    return {grade_id(cell).removeprefix("test_"): read_cell(cell)
            for cell in nbformat.read(path, as_version=4).cells if (grade_id(cell) or "").startswith("test_")}


def test_cell_outputs(root, assignment, student):
    """{function: everything its test cell says, as plain text} after grading."""
    return {function: result.text() for function, result in test_cell_results(root, assignment, student).items()}


def test_cell_scores(root, assignment, student):
    """{function: (score, max score)} of a graded submission, from the gradebook ({} if none)."""
    from nbgrader.api import MissingEntry

    with open_gradebook(root) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {function: (grade.score, grade.max_score) for function, grade in test_cell_grades(submission).items()}
