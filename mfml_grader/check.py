"""The author's loop: grade one assignment's catalog in this process, in seconds.

    python -m mfml_grader check ps6_mini_gpt [function ...]

Runs the instructor's notebook once (test cells aside), then for the solution, the stub and every
catalog entry of the chosen functions: puts that code in a copy of the notebook's namespace (the
definitions of every other cell are re-run there, so they call the entry's version), grades it
with the hidden checks, and runs the visible tests. Prints one line per entry and every broken
promise. It is the quick loop while writing checks; `make validate-grader` is the proof (the real
grading path: release, sandbox, nbgrader, gradebook).
"""

import ast
import contextlib
import copy
import io
import multiprocessing
import os
import sys
import tempfile
import time

import nbformat
import torch

from . import catalog, course, submissions
from .runner import run_exercise
from .student import InProcessStudent
from .submission_code import SubmissionCode, parse
from .validate import test_cell_dependencies

# which visible tests to run per kind of entry: correct code must pass them all; a mutant is caught by one
VISIBLE_TESTS = {"solution": "all", "variants": "all", "mutants": "first", "stub": "none", "forbidden": "none", "reflective": "none"}


def _definitions(tree):
    """The statements of a cell that define names without computing anything heavy."""
    keep = (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    return ast.Module(body=[n for n in tree.body if isinstance(n, keep)], type_ignores=[])


class Notebook:
    """The instructor's notebook, run once; entries are graded in copies of its namespace."""

    def __init__(self, assignment, root):
        self.assignment, self.root = assignment, root
        self.source = nbformat.read(course.source_notebook(assignment, root), as_version=4)
        self.solutions = submissions.answers_from_source(self.source)
        self.cells = [c for c in self.source.cells if c.cell_type == "code"]
        for cell in self.cells:
            if course.grade_id(cell) in self.solutions:
                cell.source = self.solutions[course.grade_id(cell)]
        self.points = {course.grade_id(c).removeprefix("test_"): float(c.metadata.nbgrader.points) for c in self.cells if course.is_test_cell(c)}
        self.reach = test_cell_dependencies(self.source)     # {function: the graded functions its visible tests reach}
        self.namespace = {"__name__": "__main__"}
        for cell in self.cells:
            if not course.is_test_cell(cell):
                self._run(cell.source, self.namespace)

    @staticmethod
    def _run(source, namespace, tree=None):
        """Run code as a notebook cell would; return the error it raised ('' if none)."""
        try:
            code = compile(tree if tree is not None else parse(source) or source, "<cell>", "exec")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(code, namespace)
        except Exception as error:  # noqa: BLE001 - a student's cell may raise anything
            return f"{type(error).__name__}: {error}"
        return ""

    def grade(self, answers, functions, visible_tests="all", until_named=None):
        """({function: Report} for `functions`, {function: its cell's visible failure}) of a submission with `answers`.

        Runs the visible tests that can reach `functions` ("all" of them, up to the "first" failure, or
        "none"), and the hidden checks (all of them, or until one names the mistake `until_named`).
        """
        cells = copy.deepcopy(self.cells)
        namespace = dict(self.namespace)
        for cell in cells:
            answer = answers.get(course.grade_id(cell))
            if course.grade_id(cell) in self.solutions:
                cell.source = answer if answer is not None else "raise NotImplementedError()"
                namespace.pop(course.grade_id(cell), None)
                self._run(cell.source, namespace)
            elif not course.is_test_cell(cell) and (tree := parse(cell.source)) is not None:
                self._run("", namespace, _definitions(tree))
        code = SubmissionCode.from_cells(cells)
        visible = {}
        for cell in self._visible_tests_reaching(cells, functions) if visible_tests != "none" else ():
            failure = self._run(course.visible_tests(cell), dict(namespace))
            if failure:
                visible[course.grade_id(cell).removeprefix("test_")] = failure
                if visible_tests == "first":
                    break
        reports = {function: run_exercise(self.assignment, function, InProcessStudent(namespace), self.points[function], code, self.root,
                                          until_named) for function in self.points if function in functions}
        return reports, visible

    def _visible_tests_reaching(self, cells, functions):
        """The test cells whose visible tests can reach `functions` (only those can fail because of them): their own first."""
        tests = [c for c in cells if course.is_test_cell(c) and self.reach.get(course.grade_id(c).removeprefix("test_"), set()) & set(functions)]
        return sorted(tests, key=lambda c: course.grade_id(c).removeprefix("test_") not in functions)


def run(assignment, functions=(), root=None, out=sys.stdout, jobs=None):
    """Check the catalog entries of `functions` (default: all) in `jobs` forked processes; return the problems found."""
    from hypothesis.configuration import set_hypothesis_home_dir

    root = course.course_root() if root is None else root
    if assignment not in course.assignments(root):
        raise LookupError(f"no assignment {assignment!r}; the course has {', '.join(course.assignments(root))}")
    here, scratch = os.getcwd(), tempfile.TemporaryDirectory()
    set_hypothesis_home_dir(scratch.name)                         # not .hypothesis/ in source/ (it would be released)
    os.chdir(course.source_notebook(assignment, root).parent)     # notebooks read their data relative to their folder
    torch.set_num_threads(1)
    try:
        started = time.monotonic()
        notebook = Notebook(assignment, root)
        print(f"{assignment}: ran the notebook in {time.monotonic() - started:.1f} s", file=out)
        unknown = sorted(set(functions) - set(notebook.points))
        if unknown:
            raise LookupError(f"{assignment} has no graded function {', '.join(unknown)}; its functions: {', '.join(notebook.points)}")
        chosen = set(functions) or set(notebook.points)
        entries = list(_entries(notebook, catalog.load(assignment, root), chosen))
        problems = []
        with _pool(notebook, chosen, entries, jobs or min(2, os.cpu_count() or 1)) as grade:
            for (label, _, entry, kind), (reports, visible, seconds) in zip(entries, grade(range(len(entries)))):
                for function, report in reports.items():
                    problem = _broken_promise(kind, entry, report)
                    wrongly = visible.get(function, "") if kind == "solution" else "; ".join(visible.values()) if kind == "variants" else ""
                    if wrongly:
                        problem = f"{problem}; a visible test fails on correct code: {wrongly}".lstrip("; ")
                    seen = ("visible FAIL" if visible else "visible pass") if VISIBLE_TESTS[kind] != "none" and kind != "solution" else ""
                    shown = f"{label} [{function}]" if entry is None else label
                    score = f"named at {len(report.checks)}" if kind == "mutants" and not problem else f"{report.points:g}/{report.max_points:g}"
                    print(f"  {'PROBLEM' if problem else 'ok':<7} {score:>11} {seen:<12} {seconds:5.1f}s  {shown}", file=out)
                    if problem:
                        problems.append(f"{shown}: {problem}\n{report.text()}")
        return problems
    finally:
        os.chdir(here)
        scratch.cleanup()


_work = None    # (notebook, chosen functions, entries), inherited by the forked processes


def _grade_entry(index):
    """({function: Report}, {function: visible failure}, seconds) of one entry."""
    notebook, chosen, entries = _work
    _, answers, entry, kind = entries[index]
    started = time.monotonic()
    reports, visible = notebook.grade(answers, chosen if entry is None else {entry.function}, VISIBLE_TESTS[kind],
                                      until_named=entry.mistake if kind == "mutants" else None)
    return reports, visible, time.monotonic() - started


@contextlib.contextmanager
def _pool(notebook, chosen, entries, jobs):
    """A function mapping entry indices to results, in order: in this process, or in `jobs` processes forked from it."""
    global _work
    _work = (notebook, chosen, entries)
    try:
        if jobs <= 1:
            yield lambda indices: map(_grade_entry, indices)
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                yield lambda indices: pool.imap(_grade_entry, indices)
    finally:
        _work = None


def _entries(notebook, cases, chosen):
    yield "solution", notebook.solutions, None, "solution"
    yield "stub", {}, None, "stub"
    for kind in ("MUTANTS", "VARIANTS", "FORBIDDEN", "REFLECTIVE"):
        for entry in getattr(cases, kind, []):
            if entry.function in chosen:
                name = getattr(entry, "mistake", None) or getattr(entry, "description", None) or getattr(entry, "api", None) or entry.what
                yield f"{kind.lower()[:-1] if kind.endswith('S') else kind.lower()}: {entry.function}: {name}", \
                    {**notebook.solutions, entry.function: entry.code.strip("\n")}, entry, kind.lower()


def _broken_promise(kind, entry, report):
    """What is wrong with this report for this kind of entry ('' when it keeps its promise)."""
    full = report.points == report.max_points
    if kind in ("solution", "variants"):
        return "" if full else "correct code lost points"
    if kind == "stub":
        return "" if report.points == 0 else "the stub earned points"
    if kind == "mutants":
        if full:
            return "the mistake got full marks"
        return "" if entry.mistake in report.mistakes else f"not named (named: {list(report.mistakes) or 'nothing'})"
    if kind == "forbidden":
        return "" if report.points == 0 and entry.api in report.refusal else "not refused with the API named"
    return "" if report.points == 0 and entry.what in report.refusal else "reflection not refused"


def main(assignment, functions, root=None):
    try:
        problems = run(assignment, functions, root)
    except LookupError as error:
        print(error, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0
