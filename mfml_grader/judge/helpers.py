"""Stand-ins: the course's own helpers, run in the trusted grader while a student's function is checked.

While `attention` is checked, the course's `softmax` stands in for the student's, so one mistake
does not cost points twice. The course's code never enters the sandbox: there the helper's name
is bound to a `stand_in` that sends its arguments to the grader, which runs the course's helper
(`StandIns`, trusted side) and sends the result back. Gradients cross too: when an argument
requires grad, the stand-in is an autograd Function whose backward asks the grader for the
vector-Jacobian product of the graph it kept, so a student's `loss.backward()` through the
course's `gpt_forward` works as if the code were local.

    sandbox                                   grader
    student's f(...) -> softmax(x)  --helper-->  course softmax(x), graph kept under a handle
    loss.backward()                 --helper_backward-->  torch.autograd.grad(outputs, inputs, grads)
"""

import ast
import builtins
import collections
import contextlib
import hashlib
import math
import resource
import signal
import threading

import torch
import torch.nn.functional as F

from ..exercise import map_tensors
from ..forbidden import free_names
from . import protocol

# -- sandbox side -------------------------------------------------------------------------------


class Channel:
    """The submission's socket while one call of the grader is being answered."""

    def __init__(self, sock, request_id):
        self.sock, self.request_id = sock, request_id

    def ask(self, message, value=None):
        """Send a request to the grader and return its (reply, value); SIGINT waits until the answer is in."""
        interrupt = {signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, interrupt)
        try:
            protocol.send(self.sock, {**message, "id": self.request_id}, value)
            reply, result = protocol.receive(self.sock)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupt)
        if not reply.get("ok"):
            raise RuntimeError(str(reply.get("error", "the course's helper failed")))
        return reply, result


def tensors_in(value):
    """The tensors inside nested tuples, lists and dicts, in the order the protocol sends them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def _replace_tensors(value, tensors):
    """`value` with its tensors replaced, in order, by those of the iterator `tensors`."""
    return map_tensors(value, lambda _: next(tensors))


class _Bridge(torch.autograd.Function):
    """A course helper as one autograd node: forward and backward are computed by the grader."""

    @staticmethod
    def forward(ctx, channel, name, call, box, *inputs):
        reply, result = channel.ask({"op": "helper", "name": name, "grad": box["grad"]}, call)
        outputs = tensors_in(result)
        box["result"] = result
        ctx.channel, ctx.handle, ctx.inputs = channel, reply.get("handle"), len(inputs)
        ctx.mark_non_differentiable(*[t for t in outputs if not t.is_floating_point()])
        return (*outputs, torch.zeros(()))           # never empty: autograd needs a tensor output

    @staticmethod
    def backward(ctx, *grads):
        if ctx.handle is None:
            return (None,) * (4 + ctx.inputs)
        _, input_grads = ctx.channel.ask({"op": "helper_backward", "handle": ctx.handle}, list(grads[:-1]))
        if not isinstance(input_grads, list) or len(input_grads) != ctx.inputs:
            raise RuntimeError("the grader sent gradients that do not match the inputs")
        return (None, None, None, None, *input_grads)


def stand_in(channel, name):
    """The function bound to a helper's name in the sandbox while a check runs."""

    def course_helper(*args, **kwargs):
        call = (args, kwargs)
        inputs = tensors_in(call)
        grad = [t.requires_grad for t in inputs]
        if not (torch.is_grad_enabled() and any(grad)):
            return channel.ask({"op": "helper", "name": name}, call)[1]
        box = {"grad": grad}
        outputs = _Bridge.apply(channel, name, call, box, *inputs)
        return _replace_tensors(box["result"], iter(outputs[:-1]))

    course_helper.__name__ = course_helper.__qualname__ = name
    return course_helper


# -- grader side --------------------------------------------------------------------------------

HELPER_MEMORY_BYTES = 4 * 2**30    # address space a helper may add to the grading process
KEPT_GRAPHS = 256                  # graphs waiting for a backward; the oldest go first (a loop backprops each step)
REMEMBERED_BYTES = 256 * 2**20     # results kept for the next submission that asks the same (see Answers)
REMEMBERED_FROM_BYTES = 16 * 2**10  # smaller calls cost less to compute than to recognise


class StandIns:
    """The course's helpers for one exercise, run here when the sandbox calls them back.

    `sources` are the course's solutions ({name: source}); `support` are syntax trees of the
    instructor's locked cells, whose definitions the helpers may use (e.g. `block_params`). The
    helpers share one scope, so they call each other. Each run is bounded in time (the call's
    deadline) and in memory.
    """

    def __init__(self, sources, support=()):
        self.names = set(sources)
        self.scope = {"__builtins__": builtins, "torch": torch, "F": F, "math": math}
        trees = [ast.parse(source) for source in sources.values()]
        module = ast.Module(body=_support_definitions(trees, support), type_ignores=[])
        self.code = hashlib.blake2b(repr((sorted(sources.items()), ast.dump(module))).encode()).hexdigest()   # what the helpers compute
        exec(compile(module, "<course support>", "exec"), self.scope)
        for name, source in sources.items():
            exec(compile(source, f"<course {name}>", "exec"), self.scope)  # trusted course code
        self.graphs, self.handles = {}, 0

    def answer(self, message, value, seconds):
        """(reply, value) for a `helper` or `helper_backward` request from the sandbox."""
        try:
            with _bounded(seconds):
                if message.get("op") == "helper_backward":
                    return {"ok": True}, self._backward(message.get("handle"), value)
                return self._forward(message.get("name"), message.get("grad"), value)
        except Exception as error:  # noqa: BLE001 - the student's call of a helper failed: they read why
            return {"ok": False, "error": f"the course's {message.get('name', 'helper')} failed: {type(error).__name__}: {error}"[:2000]}, None

    def _forward(self, name, grad, call):
        if name not in self.names:
            raise LookupError(f"{name!r} is not a helper of this exercise")
        args, kwargs = call
        inputs = tensors_in(call)
        tracked = isinstance(grad, list) and len(grad) == len(inputs) and any(grad)
        if tracked:
            inputs = [t.detach().requires_grad_(bool(g) and t.is_floating_point()) for t, g in zip(inputs, grad)]
            args, kwargs = _replace_tensors(call, iter(inputs))
        key = None
        if not tracked and sum(t.numel() * t.element_size() for t in inputs) >= REMEMBERED_FROM_BYTES:
            key = _fingerprint((self.code, name, call))
            if key in ANSWERS:
                return {"ok": True, "handle": None}, ANSWERS.get(key)
        with torch.enable_grad():  # as in the student's process (a helper may run autograd itself, e.g. train_step)
            result = self.scope[name](*args, **kwargs)
        if key is not None:
            ANSWERS.put(key, _detached(result))
        handle = None
        if tracked:
            self.handles += 1
            handle = self.handles
            self.graphs[handle] = (inputs, tensors_in(result))
            if len(self.graphs) > KEPT_GRAPHS:
                del self.graphs[min(self.graphs)]
        return {"ok": True, "handle": handle}, _detached(result)

    def _backward(self, handle, grads):
        if handle not in self.graphs:
            raise LookupError("no graph for this backward (it was used already, or dropped: too many kept)")
        inputs, outputs = self.graphs.pop(handle)
        pairs = [(o, g) for o, g in zip(outputs, grads) if isinstance(g, torch.Tensor) and o.requires_grad]
        wanted = [t for t in inputs if t.requires_grad]
        if not pairs or not wanted:
            return [None] * len(inputs)
        found = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True))
        return [next(found) if t.requires_grad else None for t in inputs]


def _detached(value):
    return map_tensors(value, torch.Tensor.detach)


class Answers:
    """The course's answers to calls it has seen, for the submissions graded after (reference values computed once).

    Most submissions ask the helpers the same questions: a correct training loop calls the course's
    `train_step` with the same parameters, batch and step as the course's own loop. A call is
    identified by the helpers' code and every byte of its arguments (`_fingerprint`); the course's
    helpers are deterministic (one thread), so an answer given again is the answer computed again.
    Calls that need a graph for a backward are always computed. Least recently used answers go
    first past REMEMBERED_BYTES.
    """

    def __init__(self, budget):
        self.budget, self.used, self.kept = budget, 0, collections.OrderedDict()

    def __contains__(self, key):
        return key is not None and key in self.kept

    def get(self, key):
        self.kept.move_to_end(key)
        return self.kept[key][0]

    def put(self, key, value):
        size = sum(t.numel() * t.element_size() for t in tensors_in(value))
        if key is None or size > self.budget:
            return
        self.kept[key] = (value, size)
        self.used += size
        while self.used > self.budget:
            self.used -= self.kept.popitem(last=False)[1][1]


ANSWERS = Answers(REMEMBERED_BYTES)


def _fingerprint(value):
    """A digest of a plain value (structure, types, dtypes, shapes, every byte), or None if it holds something else.

    The structure is written as one token list (hashed once, through its repr) and each tensor's bytes are
    hashed in place: a train_step call carries about fifty tensors, and this runs once per call.
    """
    tokens, tensors = [], []

    def walk(v):
        if v is None or isinstance(v, (bool, int, str)):
            tokens.append((type(v).__name__, v))
        elif isinstance(v, float):
            tokens.append(("float", v.hex()))
        elif isinstance(v, torch.Tensor):
            tokens.append(("tensor", str(v.dtype), tuple(v.shape), v.requires_grad))
            tensors.append(v.detach().contiguous().reshape(-1).view(torch.uint8))
        elif isinstance(v, (tuple, list)):
            tokens.append((type(v).__name__, len(v)))
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            tokens.append(("dict", len(v)))
            for k, x in v.items():
                walk(k)
                walk(x)
        else:
            raise TypeError
    try:
        walk(value)
    except (TypeError, RecursionError):
        return None
    digest = hashlib.blake2b(repr(tokens).encode(), digest_size=32)
    for t in tensors:
        digest.update(t.numpy() if t.numel() else b"")
    return digest.hexdigest()


def _support_definitions(trees, support):
    """The imports of the locked cells, and their top-level definitions the helpers need (transitively)."""
    definitions, imports = {}, []
    for tree in support:
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports.append(node)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                definitions[node.name] = node
            elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
                for target in node.targets:
                    definitions[target.id] = node
    needed, todo, seen = [], list(trees), set()
    while todo:
        for name in sorted(free_names(todo.pop()) - seen):
            seen.add(name)
            if name in definitions and definitions[name] not in needed:
                needed.append(definitions[name])
                todo.append(definitions[name])
    order = {id(node): i for i, node in enumerate(n for tree in support for n in tree.body)}
    return imports + sorted(needed, key=lambda node: order[id(node)])


@contextlib.contextmanager
def _bounded(seconds):
    """Limit a helper run here: TimeoutError after `seconds`, MemoryError past HELPER_MEMORY_BYTES more."""
    main = threading.current_thread() is threading.main_thread()
    if main:
        def expire(signum, frame):
            raise TimeoutError(f"the course's helper ran out of the call's time ({seconds:.0f} s)")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * resource.getpagesize()
    limit = in_use + HELPER_MEMORY_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
