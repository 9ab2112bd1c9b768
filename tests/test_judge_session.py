"""A submission's process starts like a fresh kernel (though forked from a warm zygote), and no value
its functions return can end it: what cannot cross fails that one call.
"""

import socket
import time

import pytest
import torch

from mfml_grader.judge import protocol
from mfml_grader.judge.session import Judge, RemoteStudent
from mfml_grader.student import StudentError


@pytest.fixture(scope="module")
def session():
    judge = Judge()
    session = judge.session()
    yield session
    session.close("done")
    judge.close()


def run(session, source):
    reply = session.run_cell(source)
    assert reply["status"] == "ok", reply
    return reply


def test_first_cell_sees_an_empty_namespace_and_an_unused_generator(session):
    reply = run(session, "names = sorted(n for n in dir() if not n.startswith('_'))")
    assert reply["execution_count"] == 1
    names = RemoteStudent(session).get("names")
    assert names == ["In", "Out", "exit", "get_ipython", "open", "quit"], "IPython's names only, nothing left by the warm-up"
    run(session, "import torch\nseed, rng = str(torch.initial_seed()), torch.get_rng_state()")
    student = RemoteStudent(session)
    unused = torch.Generator().manual_seed(int(student.get("seed"))).get_state()
    assert torch.equal(student.get("rng"), unused), "the warm-up drew random numbers"


def test_the_first_optimizer_needs_no_import(session):
    """torch.optim imports torch._dynamo on first use (about 1 s): the zygote has paid it."""
    run(session, "import sys\nwarm = 'torch._dynamo' in sys.modules")
    assert RemoteStudent(session).get("warm") is True


def test_ints_beyond_int64_come_back_as_floats_and_the_session_goes_on(session):
    run(session, "def big():\n    return 2**64, -(10**400), 7")
    assert RemoteStudent(session).call("big") == (2.0**64, float("-inf"), 7)
    assert RemoteStudent(session).defines("big")


def test_a_result_nested_too_deeply_fails_its_call_only(session):
    run(session, "def deep():\n    v = []\n    for _ in range(100_000):\n        v = [v]\n    return v")
    with pytest.raises(StudentError, match="recursion"):
        RemoteStudent(session).call("deep")
    assert RemoteStudent(session).defines("deep")


def test_a_snapshot_is_the_submission_as_it_was_and_changes_nothing_in_it(session):
    run(session, "counter = [1]\ndef read():\n    return list(counter)\ndef bump():\n    counter.append(len(counter) + 1)\n    return list(counter)")
    snapshot = session.snapshot()
    try:
        run(session, "counter.append(99)")
        copy = RemoteStudent(snapshot)
        assert copy.call("read") == [1] and copy.call("bump") == [1, 2]
        assert RemoteStudent(session).call("read") == [1, 99], "what a snapshot does never reaches the notebook's process"
    finally:
        snapshot.close("checked")


def test_the_courses_helper_runs_here_and_gradients_cross(session):
    """`square` stands in for the student's helper: the sandbox calls it back, and backward works through it."""
    run(session, "def square(x):\n    raise RuntimeError('the student\\'s own helper')\n"
                 "def grad_of_sum(x):\n    x = x.clone().requires_grad_()\n    square(x).sum().backward()\n    return x.grad")
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    grad = RemoteStudent(session).call("grad_of_sum", (x,), substitutes={"square": "def square(x):\n    return x * x * 3"})
    assert torch.equal(grad, 6 * x)


def test_a_payload_referenced_many_times_is_refused_not_decoded():
    header = {"value": [{"__tensor__": 0, "dtype": "uint8", "shape": [2**20]}] * 1000, "blobs": [[0, 2**20]]}
    with pytest.raises(protocol.ProtocolError, match="decodes to more than"):
        protocol.decode(header, bytes(2**20))


def test_an_answer_that_trickles_in_is_refused_at_its_deadline():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with pytest.raises(TimeoutError):
            protocol.receive(ours, deadline=time.monotonic() + 0.2)
        theirs.sendall(protocol.HEADER.pack(10, 0)[:5])
        with pytest.raises(protocol.ProtocolError, match="trickled"):
            protocol.receive(ours, deadline=time.monotonic() + 0.2)


def test_a_visible_test_sees_what_the_call_did_to_its_arguments(session):
    """As in a kernel: an input changed in place and a generator advanced show in the test cell's own objects."""
    from mfml_grader.judge.notebook_run import JudgeContext, run_test_cell
    from mfml_grader.submission_code import SubmissionCode

    run(session, "import torch\ndef scale(x, state, g):\n    x.mul_(2)\n    state['n'] = state.get('n', 0) + 1\n"
                 "    torch.rand(3, generator=g)\n    return x.sum()")
    context = JudgeContext(RemoteStudent(session), SubmissionCode({}))
    outputs = run_test_cell(
        "x, state, g = torch.ones(3), {}, torch.Generator().manual_seed(0)\n"
        "fresh = torch.Generator().manual_seed(0)\n"
        "total = scale(x, state, g)\n"
        "torch.rand(3, generator=fresh)\n"
        "assert x.tolist() == [2.0, 2.0, 2.0] and state == {'n': 1} and total == 6.0\n"
        "assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=fresh))", context)
    assert outputs == [], outputs
