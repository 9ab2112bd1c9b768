"""Students who try to break or fool the grader, graded in ONE batch beside an honest control.

Every case states its verdict: which exercises keep full points, which get zero, which lose points,
and what the feedback must say. The batch runs through the real path (`python -m mfml_grader
autograde`, i.e. `nbgrader autograde` with the sandboxed executor) with short time limits.
"""

import json
import os
import socket
import subprocess
import sys
import threading

import nbformat
import pytest

from course_fixture import Course, nbgrader_env
from mfml_grader import course
from mfml_grader.judge.batch import read_times

A = "ps1_linear_algebra"
FUNCTIONS = ("l2_norm", "linear", "attention_scores", "softmax", "attention", "low_rank_approx", "lora_forward")
LIMITS = """
c.SandboxedExecute.cell_timeout = 4
c.SandboxedExecute.notebook_timeout = 90
c.SandboxedExecute.memory_bytes = 3 * 2**30
"""


def _prefix(function, code):
    """Answers where `code` runs in the solution cell of `function`, before the correct solution."""
    return {function: code}


def _suffix(function, code):
    return {function: ("SUFFIX", code)}


def _replace(function, code):
    return {function: ("REPLACE", code)}


class Case:
    def __init__(self, answers=None, notebook=None, zero=(), lost=(), says=None, whole_zero=False):
        self.answers, self.notebook = answers or {}, notebook
        self.zero, self.lost, self.says, self.whole_zero = set(zero), set(lost), says or {}, whole_zero


def cases(course_root, port):
    secrets = [course_root / "grader_tests" / f"test_{A}.py", course_root / "source" / A / f"{A}.ipynb",
               course_root / "submitted" / "honest" / A / f"{A}.ipynb", course_root / "gradebook.db"]
    reads = "\n".join(f"""
try:
    print("LEAKED", open({str(p)!r}, "rb").read(40))
except OSError as error:
    print("blocked:", type(error).__name__)""" for p in secrets)
    writes = "\n".join(f"""
try:
    open({str(p)!r}, "w").write("x")
except OSError as error:
    print("blocked:", type(error).__name__)""" for p in (course_root / "grader_tests" / "evil.py", "/usr/evil", course_root / "evil.txt"))
    return {
        "honest": Case(),
        "infinite_loop": Case(_replace("l2_norm", "def l2_norm(x, dim=-1):\n    while True:\n        pass"),
                              zero={"l2_norm"}, says={"l2_norm": "did not finish"}),
        "sleeper": Case(_replace("linear", "import time\n\ndef linear(x, W, b=None):\n    time.sleep(1000)"),
                        zero={"linear"}, says={"linear": "did not finish"}),
        "loop_at_top_level": Case(_suffix("l2_norm", "while True:\n    pass")),
        "ignores_interrupts": Case(_suffix("softmax", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
                                   zero={"softmax", "attention", "low_rank_approx", "lora_forward"},
                                   says={"softmax": "did not stop when interrupted"}),
        # the bomb hits the process limit; its copies cannot talk to the grader and die; grading goes on
        "fork_bomb": Case(_suffix("lora_forward", "import os\nwhile True:\n    os.fork()")),
        "memory_hog": Case(_replace("l2_norm", "def l2_norm(x, dim=-1):\n    hog = bytearray(8 * 2**30)\n    return (x * x).sum(dim).sqrt()"),
                           zero={"l2_norm"}, says={"l2_norm": "MemoryError"}),
        "huge_output": Case(_suffix("linear", "for i in range(3_000_000):\n    print('spam', i)\nprint('x' * 100_000_000)")),
        "os_exit": Case(_suffix("lora_forward", "import os\nos._exit(0)"),
                        zero={"lora_forward"}, says={"lora_forward": "exited"}),
        "sys_exit": Case(_suffix("l2_norm", "import sys\nsys.exit(1)")),
        "segfault": Case(_suffix("attention", "import ctypes\nctypes.string_at(0)"),
                         zero={"attention", "low_rank_approx", "lora_forward"}, says={"attention": "SIGSEGV"}),
        "network": Case(_prefix("l2_norm", f"""import socket
for host in ("127.0.0.1", "1.1.1.1"):
    try:
        socket.create_connection((host, {port}), timeout=2).sendall(b"LEAK")
        print("CONNECTED", host)
    except OSError as error:
        print("blocked:", type(error).__name__)""")),
        "reads_secrets": Case(_prefix("l2_norm", reads)),
        "writes_outside": Case(_prefix("l2_norm", writes)),
        "monkeypatches_comparisons": Case(_replace("attention_scores", """import numpy
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
numpy.testing.assert_allclose = lambda *args, **kwargs: None
numpy.allclose = lambda *args, **kwargs: True

def attention_scores(q, k):
    return q @ k.transpose(-2, -1)"""), lost={"attention_scores"}, says={"attention_scores": "no 1/√d_k scaling"}),
        "always_equal": Case(_replace("l2_norm", """class AlwaysEqual:
    def __eq__(self, other):
        return True
    shape = property(lambda self: (2,))

def l2_norm(x, dim=-1):
    return AlwaysEqual()"""), zero={"l2_norm"}, says={"l2_norm": "AlwaysEqual"}),
        "tensor_subclass": Case(_replace("l2_norm", """class Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

def l2_norm(x, dim=-1):
    return torch.zeros(x.shape[:-1] if dim == -1 else x.sum(dim).shape).as_subclass(Liar)"""), zero={"l2_norm"}),
        "overrides_ipython": Case(_replace("linear", """import sys
get_ipython().showtraceback = lambda *args, **kwargs: None
get_ipython().displayhook = lambda value: None
sys.displayhook = lambda value: None

def linear(x, W, b=None):
    return x @ W.T"""), lost={"linear"}, says={"linear": "bias ignored"}),
        "deletes_test_cell": Case(notebook=lambda nb: [c for c in nb if _gid(c) != "test_linear"]),
        "alters_test_cell": Case({**_replace("softmax", "def softmax(x, dim=-1):\n    return x.exp() / x.exp().sum(dim, keepdim=True)")},
                                 notebook=lambda nb: [_with_source(c, "print('all good')") if _gid(c) == "test_softmax" else c for c in nb],
                                 lost={"softmax"}, says={"softmax": "no max-shift"}),
        "duplicates_cells": Case(notebook=lambda nb: [d for c in nb for d in ((c, _copy(c)) if _gid(c) in ("l2_norm", "test_l2_norm") else (c,))]),
        "forbidden_getattr": Case(_replace("softmax", "def softmax(x, dim=-1):\n    return getattr(F, 'soft' + 'max')(x, dim)"),
                                  zero={"softmax"}, says={"softmax": "must not"}),
        "invalid_json": Case(notebook="{ this is not json", whole_zero=True, says={None: "not a readable notebook"}),
        "empty_file": Case(notebook="", whole_zero=True, says={None: "not a readable notebook"}),
    }


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _with_source(cell, source):
    cell = nbformat.from_dict(cell)
    cell.source = source
    return cell


def _copy(cell):
    copy = nbformat.from_dict(cell)
    copy["id"] = copy["id"] + "-copy"
    return copy


class _Listener:
    """A TCP server on the host's loopback: no sandboxed student may reach it."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    grading = Course.copy_of_repo(tmp_path_factory.mktemp("adversarial"))
    with open(grading.root / "nbgrader_config.py", "a") as config:
        config.write(LIMITS)
    grading.nbgrader("generate_assignment", A)
    listener = _Listener()
    all_cases = cases(grading.root, listener.port)
    solutions = grading.solutions(A)
    for student, case in all_cases.items():
        answers = dict(solutions)
        for function, change in case.answers.items():
            if isinstance(change, tuple):
                kind, code = change
                answers[function] = code if kind == "REPLACE" else solutions[function] + "\n\n" + code
            else:
                answers[function] = change + "\n\n" + solutions[function]
        if isinstance(case.notebook, str):
            folder = grading.root / "submitted" / student / A
            folder.mkdir(parents=True)
            (folder / f"{A}.ipynb").write_text(case.notebook)
            continue
        grading.submit(student, A, answers)
        if case.notebook:
            path = grading.root / "submitted" / student / A / f"{A}.ipynb"
            notebook = nbformat.read(path, as_version=4)
            notebook.cells = case.notebook(notebook.cells)
            nbformat.write(notebook, path)
    result = subprocess.run([sys.executable, "-m", "mfml_grader", "autograde", "--jobs", "2", A], cwd=grading.root,
                            env=nbgrader_env(), capture_output=True, text=True, timeout=1200)
    return grading, all_cases, listener, result


def test_the_batch_finishes_and_says_what_it_could_not_grade(batch):
    grading, _, _, result = batch
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NOT GRADED invalid_json" in result.stderr and "NOT GRADED empty_file" in result.stderr


def test_the_batch_times_every_notebook_it_ran(batch):
    """logs/autograde-times.tsv: a row per executed notebook; the hung ones head the `slowest:` line."""
    grading, all_cases, _, result = batch
    rows = read_times(grading.root)
    timed = {student for _, student, _ in rows}
    assert {a for a, _, _ in rows} == {A}
    assert timed <= set(all_cases) and {"honest", "infinite_loop", "segfault"} <= timed, sorted(timed)
    assert not timed & {"invalid_json", "empty_file"}, "an unreadable notebook never runs"
    slowest_line = next(line for line in result.stderr.splitlines() if line.startswith("slowest: "))
    slowest = max(rows, key=lambda row: row[2])
    assert slowest[2] >= 4, f"a hung notebook runs until the 4 s cell limit, the slowest took {slowest[2]} s"
    assert f"{slowest[1]}/{A}" in slowest_line, slowest_line


def test_honest_control_gets_full_marks(batch):
    grading, _, _, _ = batch
    scores = grading.scores(A, "honest")
    assert all(s[0] == s[1] for s in scores.values()), scores


@pytest.mark.parametrize("student", [s for s in cases(__import__("pathlib").Path("/x"), 0) if s != "honest"])
def test_verdict(batch, student):
    grading, all_cases, _, _ = batch
    case = all_cases[student]
    scores = grading.scores(A, student)
    assert set(scores) == set(FUNCTIONS), f"{student}: missing grades {set(FUNCTIONS) - set(scores)}"
    feedback = _feedback(grading, student)
    for function, (score, maximum) in scores.items():
        if case.whole_zero or function in case.zero:
            assert score == 0, f"{student}: {function} should score 0, got {score}:\n{feedback.get(function)}"
        elif function in case.lost:
            assert 0 <= score < maximum, f"{student}: {function} should lose points, got {score}/{maximum}"
        else:
            assert score == maximum, f"{student}: {function} should keep full marks, got {score}/{maximum}:\n{feedback.get(function)}"
    for function, text in case.says.items():
        where = feedback.get(function, "") if function else "\n".join(feedback.values())
        assert text in where, f"{student}: feedback for {function} does not say {text!r}:\n{where[:3000]}"


def _outputs(grading, student):
    notebook = nbformat.read(grading.root / "autograded" / student / A / f"{A}.ipynb", as_version=4)
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


def test_no_secret_was_read_and_nothing_was_written(batch):
    grading, _, _, _ = batch
    outputs = _outputs(grading, "reads_secrets")
    assert "LEAKED" not in outputs and outputs.count("blocked:") == 4, outputs[:2000]
    assert _outputs(grading, "writes_outside").count("blocked:") == 3
    assert not (grading.root / "grader_tests" / "evil.py").exists() and not (grading.root / "evil.txt").exists()
    assert not os.path.exists("/usr/evil")


def test_no_network(batch):
    grading, _, listener, _ = batch
    outputs = _outputs(grading, "network")
    assert listener.connections == 0 and "CONNECTED" not in outputs and outputs.count("blocked:") == 2


def test_huge_output_is_truncated(batch):
    grading, _, _, _ = batch
    path = grading.root / "autograded" / "huge_output" / A / f"{A}.ipynb"
    assert path.stat().st_size < 2 * 2**20 and "spam 0" in _outputs(grading, "huge_output")


def test_no_process_of_any_submission_survives(batch):
    survivors = subprocess.run(["ps", "-eo", "uid=,pid=,comm="], capture_output=True, text=True).stdout.splitlines()
    sandboxed = [line for line in survivors if 61000 <= int(line.split()[0]) < 62000]
    assert not sandboxed, f"processes of graded submissions still running: {sandboxed}"


def _feedback(grading, student):
    return course.test_cell_outputs(grading.root, A, student)
