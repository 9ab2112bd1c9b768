"""Run one notebook for grading: student cells in its sandboxed session, test cells here (trusted).

A test cell's code is the instructor's (nbgrader restores it from the gradebook). It runs in a
namespace of trusted modules where every student name it mentions is a proxy: functions call into
the sandbox and return plain values, data is fetched as plain values. `grade()` in its hidden block
finds the session through `notebook.judged` and scores with the trusted hidden checks.
"""

import ast
import builtins
import contextlib
import io
import math
import sys
import traceback
import warnings
from dataclasses import dataclass, field

import nbformat
import numpy
import torch
import torch.nn.functional as F

from ..course import grade_id, is_test_cell
from ..figures import is_figure_cell
from ..notebook import judged
from ..student import StudentError
from ..results import Report
from ..runner import run_exercise
from ..submission_code import SubmissionCode
from .outputs import OutputBudget, clean_cell, error_output
from .session import RemoteStudent, Session, SessionEnded

TRUSTED_MODULES = {"torch": torch, "torch.nn.functional": F, "math": math, "numpy": numpy}


@dataclass
class Pending:
    """A test cell's hidden checks, waiting for the notebook to finish: they run in `snapshot`."""

    cell: object
    assignment: str
    function: str
    points: float
    snapshot: object          # the Session of the copy made at the test cell, or why there is none


@dataclass
class JudgeContext:
    student: RemoteStudent    # the submission's own process (cells and visible tests)
    code: SubmissionCode      # the submission's code cells, parsed for the static checks
    cell: object = None       # the test cell being run
    pending: list = field(default_factory=list)

    def defer(self, assignment, function, points):
        """`grade()` of a hidden block: copy the submission as it is now; its checks run after the notebook.

        So nothing student code sees during the hidden checks (inputs, the course's helpers' results)
        can reach a cell's output: the notebook's own process has ended before the first check.
        """
        try:
            snapshot = self.student.session.snapshot()
        except SessionEnded as ended:
            snapshot = ended.reason
        self.pending.append(Pending(self.cell, assignment, function, points, snapshot))


def run_notebook(nb, judge, files, log, figures_drawn=None, skip=frozenset()):
    """Run a submission: its cells in the sandbox, its test cells here, then each test cell's hidden checks.

    `figures_drawn` ({grade_id: outputs}, from the release) are the figure cells' figures as `make
    release` rendered them: a figure cell that runs is not drawn again. The cells whose grade_id is in
    `skip` (independent.py: no grade depends on them) do not run; a figure cell among them shows its figure.
    """
    limits = judge.limits
    figures_drawn = figures_drawn or {}
    for cell in nb.cells:
        if not is_test_cell(cell):
            for note in clean_cell(cell, limits.cell_source_chars):
                log.warning("a cell of the submission was changed: %s", note)
    code = SubmissionCode.from_cells([c for c in nb.cells if c.cell_type == "code"])
    session = judge.session(files)
    context = JudgeContext(RemoteStudent(session, call_seconds=limits.cell_seconds), code)
    budget = OutputBudget(limits.output_chars, limits.notebook_output_chars)
    count = 0
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            count += 1
            if is_test_cell(cell):
                context.cell = cell
                cell.outputs = run_test_cell(cell.source, context)
                cell.execution_count = count
            elif grade_id(cell) in skip:
                cell.outputs = budget.keep(list(figures_drawn.get(grade_id(cell), [])))
                cell.execution_count = count
            elif is_figure_cell(cell) and grade_id(cell) in figures_drawn:
                outputs, cell.execution_count = _run_student_cell(session, cell.source, count, draw=False)
                cell.outputs = budget.keep(outputs + figures_drawn[grade_id(cell)])
            else:
                outputs, cell.execution_count = _run_student_cell(session, cell.source, count)
                cell.outputs = budget.keep(outputs)
        if session.ended:
            log.warning("submission process ended early: %s", session.ended)
        session.close("finished")
        for pending in context.pending:
            pending.cell.outputs[0:0] = _hidden_checks(pending, context, limits)
    finally:
        session.release()


def _hidden_checks(pending, context, limits):
    """The report and score of one test cell's hidden checks, run in its snapshot."""
    if isinstance(pending.snapshot, Session):
        student = RemoteStudent(pending.snapshot, call_seconds=limits.cell_seconds, support=context.code.support)
        report = run_exercise(pending.assignment, pending.function, student, pending.points, context.code)
        pending.snapshot.close("checked")
    else:
        report = Report(pending.function, pending.points, refusal=pending.snapshot)
    return [nbformat.v4.new_output("execute_result", data=report.bundle(), execution_count=None)]


def _run_student_cell(session, source, count, draw=True):
    """(raw outputs, execution count) of one student cell (outputs as the sandbox sent them: untrusted)."""
    if not source.strip():
        return [], None
    try:
        reply = session.run_cell(source, draw)
    except SessionEnded as ended:
        return [{"output_type": "error", "ename": "NotebookStopped", "evalue": f"this cell did not run: {ended.reason}"}], count
    return reply.get("outputs", []), count


class _Proxy:
    """A student function, called in the sandbox; what comes back is plain data."""

    def __init__(self, student, name):
        self._student, self._name = student, name

    def __call__(self, *args, **kwargs):
        try:
            returned = self._student.invoke(self._name, args, kwargs)
        except StudentError as error:
            raise RuntimeError(str(error)) from None
        for before, after in zip((*args, *kwargs.values()), (*returned.args, *(returned.kwargs.get(k) for k in kwargs))):
            _write_back(before, after)
        return returned.value

    def __repr__(self):
        return f"<student function {self._name}>"


def _write_back(before, after):
    """Leave the test cell's own argument as the student's code left its copy, as a kernel would.

    So a visible test sees an input changed in place, or a generator advanced. Only what already
    has the same structure is changed (same shape and dtype for tensors, a valid state for generators).
    """
    if isinstance(before, torch.Generator):
        if isinstance(after, torch.Tensor) and after.dtype == torch.uint8 and after.shape == before.get_state().shape:
            with contextlib.suppress(RuntimeError):
                before.set_state(after)
    elif isinstance(before, torch.Tensor):
        if isinstance(after, torch.Tensor) and after.shape == before.shape and after.dtype == before.dtype:
            with torch.no_grad(), contextlib.suppress(RuntimeError):   # e.g. an expanded view cannot be written
                before.copy_(after)
    elif isinstance(before, (list, tuple)) and isinstance(after, (list, tuple)):
        for i, (b, a) in enumerate(zip(before, after)):
            _write_back(b, a)
            if isinstance(before, list) and not isinstance(b, (torch.Tensor, torch.Generator, list, tuple, dict)):
                before[i] = a
        if isinstance(before, list) and len(after) != len(before):
            before[len(after):] = [] if len(after) < len(before) else list(after[len(before):])
    elif isinstance(before, dict) and isinstance(after, dict) and all(isinstance(k, str) for k in before):
        for key in [k for k in before if k not in after]:
            del before[key]
        for key, a in after.items():
            b = before.get(key)
            if key in before and isinstance(b, (torch.Tensor, torch.Generator, list, tuple, dict)):
                _write_back(b, a)
            else:
                before[key] = a


class _Unavailable:
    def __init__(self, name, why):
        self._message = f"`{name}` {why}"

    def __getattr__(self, attr):
        raise NameError(self._message)

    def __call__(self, *args, **kwargs):
        raise NameError(self._message)


def _namespace(source, student):
    """Trusted globals for a test cell, with proxies for the student names it mentions."""
    namespace = {"__builtins__": builtins, "__name__": "__test_cell__", "torch": torch, "F": F, "math": math, "np": numpy}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return namespace
    mentioned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(namespace) - set(dir(builtins))
    if not mentioned:
        return namespace
    for name, kind in student.kinds(sorted(mentioned)).items():
        if kind == "function":
            namespace[name] = _Proxy(student, name)
        elif kind == "data":
            with contextlib.suppress(StudentError):
                namespace[name] = student.get(name)
        elif kind.startswith("module:") and kind.removeprefix("module:") in TRUSTED_MODULES:
            namespace[name] = TRUSTED_MODULES[kind.removeprefix("module:")]
        elif kind != "missing":
            namespace[name] = _Unavailable(name, "is not plain data, so the tests cannot use it")
    return namespace


class _Capture:
    """Collects what a test cell prints and displays, in order, as nbformat outputs."""

    def __init__(self):
        self.outputs = []

    def stream(self, name):
        capture = self

        class Writer(io.TextIOBase):
            def write(self, text):
                last = capture.outputs[-1] if capture.outputs else None
                if last is not None and last.output_type == "stream" and last.name == name:
                    last.text += text
                else:
                    capture.outputs.append(nbformat.v4.new_output("stream", name=name, text=text))
                return len(text)

        return Writer()

    def displayhook(self, value):
        if value is not None:
            self.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(value)}, execution_count=None))


def run_test_cell(source, context):
    """Execute an autograder test cell here; return its outputs."""
    capture = _Capture()
    token = judged.set(context)
    saved = sys.stdout, sys.stderr, sys.displayhook
    sys.stdout, sys.stderr, sys.displayhook = capture.stream("stdout"), capture.stream("stderr"), capture.displayhook
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            namespace = _namespace(source, context.student)
            code = compile(source, "<test cell>", "exec")
            exec(code, namespace)
    except StudentError as error:
        capture.outputs.append(error_output("StudentError", str(error)))
    except Exception as error:  # noqa: BLE001 - a failing visible test is the student's feedback
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "<test cell>"]
        lines = [f"Test cell, line {f.lineno}: {source.splitlines()[f.lineno - 1].strip()}" for f in frames]
        capture.outputs.append(error_output(type(error).__name__, str(error), [*lines, f"{type(error).__name__}: {error}"]))
    finally:
        sys.stdout, sys.stderr, sys.displayhook = saved
        judged.reset(token)
    return capture.outputs
