"""The one seam between hidden checks and student code.

Hidden checks never touch a student's namespace: they call `student.<function>(...)` and get plain
values back (tensors of exactly `torch.Tensor`, numbers, strings, and tuples, lists and dicts of
them). Where the student's code runs is the adapter's business, so checks do not change when it
moves to another process.
"""

import contextlib
import functools
import io
import math
import numbers
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .forbidden import ForbiddenAPIError, forbid_at_runtime


class StudentError(Exception):
    """The student's function could not be called, raised, or returned something unusable.

    `raised` is True when the student's own code raised (worth comparing with known mistakes).
    """

    def __init__(self, message, raised=False):
        super().__init__(message)
        self.raised = raised


def to_plain(value, where="the result"):
    """Convert a returned value to plain data, or raise StudentError naming what was returned.

    Tensor subclasses become plain tensors (their overridden methods cannot take part in a
    comparison); anything that is not data is refused.
    """
    if isinstance(value, torch.Tensor):
        if value.is_sparse or value.layout != torch.strided:
            raise StudentError(f"{where} is a {value.layout} tensor; return a regular (dense) tensor")
        plain = torch.Tensor._make_subclass(torch.Tensor, value.detach().clone()) if type(value) is not torch.Tensor else value.detach().clone()
        return plain
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if type(value) in (tuple, list):
        return type(value)(to_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if type(value) is dict:
        return {str(k): to_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise StudentError(f"{where} is a {type(value).__name__}; expected a tensor, a number, or a tuple/list/dict of them")


@dataclass
class Returned:
    """What one call gave back: the value, and the arguments as they were after the call."""

    value: object
    args: tuple
    kwargs: dict


class InProcessStudent:
    """Student functions living in a namespace of this process (a notebook kernel, or a test).

    `student.attention(q, k, v)` is short for `student.call("attention", (q, k, v))`.
    """

    def __init__(self, namespace):
        self.namespace = namespace

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, args, kwargs)

    def defines(self, name):
        return callable(self.namespace.get(name))

    def call(self, name, args=(), kwargs=None, **options):
        """The student's `name(*args, **kwargs)` as plain data (see `invoke`)."""
        return self.invoke(name, args, kwargs, **options).value

    def invoke(self, name, args=(), kwargs=None, *, forbidden=(), substitutes=None):
        """Call the student's `name(*args, **kwargs)`; return its result as plain data, and the arguments.

        `forbidden` APIs are refused while it runs; `substitutes` maps a helper name to reference
        source code (or a function) that stands in for the student's own helper during the call,
        so that each exercise is graded on its own (attention with the course's softmax, not a
        buggy one). Here the arguments are the very objects passed in (changed in place, if the student did).
        """
        args, kwargs = tuple(args), kwargs or {}
        function = self.namespace.get(name)
        if not callable(function):
            raise StudentError(f"`{name}` is not defined: did its solution cell run without errors?")
        with self._substituted(substitutes or {}), _quiet(), forbid_at_runtime(forbidden, name):
            try:
                result = function(*args, **kwargs)
            except NotImplementedError as error:
                if str(error):  # torch's own NotImplementedError (an unsupported operation), not the stub
                    raise StudentError(f"`{name}` raised NotImplementedError: {error}", raised=True) from None
                raise StudentError(f"`{name}` is not implemented yet (it raised NotImplementedError)") from None
            except ForbiddenAPIError as error:
                raise StudentError(str(error)) from None
            except Exception as error:  # noqa: BLE001 - any failure of student code is a finding
                raise StudentError(f"`{name}` raised {type(error).__name__}: {error}", raised=True) from None
        return Returned(to_plain(result, f"the value returned by `{name}`"), args, kwargs)

    @contextlib.contextmanager
    def _substituted(self, substitutes):
        # One scope for all stand-ins: they call each other, or else the student's own helpers.
        scope = {**self.namespace, "torch": torch, "F": F, "math": math}
        for helper, stand_in in substitutes.items():
            if callable(stand_in):  # already a function (in the sandbox: a call back to the grader)
                scope[helper] = stand_in
            else:
                exec(_compiled(helper, stand_in), scope)  # trusted course code
        saved = {}
        for helper in substitutes:
            saved[helper] = self.namespace.get(helper, _MISSING)
            self.namespace[helper] = scope[helper]
        try:
            yield
        finally:
            for helper, old in saved.items():
                if old is _MISSING:
                    self.namespace.pop(helper, None)
                else:
                    self.namespace[helper] = old


_MISSING = object()


@functools.lru_cache(maxsize=256)
def _compiled(helper, source):
    return compile(source, f"<reference {helper}>", "exec")


@contextlib.contextmanager
def _quiet():
    """Keep what student code prints or warns out of the grade cell (stderr would zero it)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
