"""A submission's process starts like a fresh kernel, although it is forked from a warm zygote."""

import pytest
import torch

from mfml_grader.judge.session import Judge, RemoteStudent


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
    run(session, "import torch\nseed, rng = torch.initial_seed(), torch.get_rng_state()")
    student = RemoteStudent(session)
    unused = torch.Generator().manual_seed(student.get("seed")).get_state()
    assert torch.equal(student.get("rng"), unused), "the warm-up drew random numbers"


def test_the_first_optimizer_needs_no_import(session):
    """torch.optim imports torch._dynamo on first use (about 1 s): the zygote has paid it."""
    run(session, "import sys\nwarm = 'torch._dynamo' in sys.modules")
    assert RemoteStudent(session).get("warm") is True
