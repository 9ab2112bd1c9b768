"""An exercise: one graded function, its torch reference, its hidden checks and its known mistakes.

Hidden test files in `grader_tests/` define one `Exercise` subclass per graded function (pytest
collects them as test classes). Each `test_*` method is one check; a cell's score is the fraction
of checks that pass. Checks reach student code only through the `student` adapter.
"""

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .compare import describe, difference
from .student import StudentError


class CheckFailed(AssertionError):
    """A hidden check found a problem: `message` is what the student reads, `mistake` the known Mistake it matches.

    The report names each distinct mistake once per cell, after the checks it explains.
    """

    def __init__(self, message, mistake=None):
        super().__init__(message)
        self.mistake = mistake


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation: when a student's result equals `compute`'s, name it.

    `compute` may be None for a mistake that a check recognises by a property (e.g. "the seed is
    ignored") rather than by recomputing the wrong result.
    """

    name: str
    fix: str
    compute: Callable = None


IN_PLACE = Mistake("input modified in place", "Work on a copy: avoid `+=`, `.add_()`, `.mul_()`, `.copy_()` and slice assignment on inputs.")


def seeded(seed):
    """A generator for reproducible inputs: `randn(3, 4, generator=seeded(0))`."""
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed, dtype=torch.float32, scale=1.0, shift=0.0):
    """Seeded normal inputs of the given shape and dtype."""
    return (torch.randn(*shape, generator=seeded(seed), dtype=torch.float64) * scale + shift).to(dtype)


class SourceFunction:
    """A function handed to student code (e.g. the `f` of a numerical gradient), kept as source.

    Keeping the source lets an adapter rebuild it wherever the student's code runs.
    `SourceFunction("lambda x: (x ** 3).sum()")`; the source sees `torch` and `math`.
    """

    def __init__(self, source):
        self.source = source
        self._function = eval(source, {"torch": torch, "math": math})  # trusted course code

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __repr__(self):
        return self.source


def map_tensors(value, fn):
    """Apply `fn` to every tensor inside nested tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return type(value)(map_tensors(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def clone(value):
    """A copy of nested tuples, lists and dicts with every tensor cloned."""
    return map_tensors(value, torch.Tensor.clone)


def _to64(value):
    return map_tensors(value, lambda t: t.to(torch.float64) if t.dtype.is_floating_point else t)


def _tensors(value, path):
    """(path, tensor) for every tensor inside nested tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _tensors(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _tensors(v, f"{path}[{k!r}]")


def modified(before, after, path):
    """The path of the first tensor or item of `before` that `after` changed (None if unchanged).

    Functions and generators do not count (they cross as source and state, and a generator's state
    is meant to advance).
    """
    if isinstance(before, torch.Tensor):
        same = isinstance(after, torch.Tensor) and before.shape == after.shape and before.dtype == after.dtype \
            and torch.equal(before.nan_to_num(), after.nan_to_num())
        return None if same else path
    if isinstance(before, (tuple, list)):
        if not isinstance(after, (tuple, list)) or len(after) != len(before):
            return path
        return next((p for i, (b, a) in enumerate(zip(before, after)) if (p := modified(b, a, f"{path}[{i}]"))), None)
    if isinstance(before, dict):
        if not isinstance(after, dict) or set(after) != set(before):
            return path
        return next((p for k in before if (p := modified(before[k], after[k], f"{path}[{k!r}]"))), None)
    if isinstance(before, (bool, int, float, str)) or before is None:
        same = before == after or (isinstance(before, float) and isinstance(after, float) and math.isnan(before) and math.isnan(after))
        return None if same else path
    return None


def input_dtype(args):
    """The floating dtype of the first floating tensor among `args`: the dtype results must keep."""
    for _, value in _tensors(list(args), ""):
        if value.dtype.is_floating_point:
            return value.dtype
    return torch.float64


class Exercise:
    """Base class of every exercise's hidden checks (see docs/authoring.md)."""

    function = ""          # the name students define
    forbidden = ()         # dotted torch APIs refused in this exercise ("torch.softmax", "torch.Tensor.softmax")
    substitutes = ()       # helpers replaced by the course's solution during checks (grade each cell on its own)
    mistakes = ()          # Mistake(...) entries, tried in order to name what went wrong
    tolerance = None       # {dtype: relative tolerance} overriding mfml_grader.compare.TOLERANCE
    sole_diagnosis = False  # name a mistake only when no other mistake explains the result as well
    in_place_fix = ""      # how to avoid changing an input in place, when this function invites it (`param -= ...`)
    substitute_sources = {}  # filled by the runner: helper name -> solution source

    @staticmethod
    def reference(*args, **kwargs):
        """The correct result, computed with torch (called on float64 copies of the inputs)."""
        raise NotImplementedError

    # -- calling the student -------------------------------------------------------------
    def call_with_inputs(self, student, *args, **kwargs):
        """(result, args after the call, kwargs after the call) of the student's function.

        The student gets copies, so nothing it does reaches the caller's objects (which hidden
        checks may share between students); the copies as the student left them come back, for
        checks that name an in-place change themselves. StudentError becomes a failed check.
        """
        given = clone(args), clone(kwargs)
        try:
            returned = student.invoke(self.function, given[0], given[1], forbidden=self.forbidden, substitutes=self._substitutes())
        except StudentError as error:
            raise CheckFailed(str(error), self.diagnose_error(error, args, kwargs) if error.raised else None) from None
        return returned.value, returned.args, returned.kwargs

    def call(self, student, *args, **kwargs):
        """The student's result on copies of the inputs; a failed check if it changed them in place."""
        got, args_after, kwargs_after = self.call_with_inputs(student, *args, **kwargs)
        self._expect_unchanged(args, kwargs, args_after, kwargs_after)
        return got

    def _substitutes(self):
        return {name: self.substitute_sources[name] for name in self.substitutes if name in self.substitute_sources}

    def expect(self, student, *args, **kwargs):
        """Check the student's result against `reference` on these inputs, and return it.

        Checks, in order: the call succeeds, the inputs are not modified, the result has the
        reference's type, shape and the inputs' dtype, and its values are within tolerance.
        A failure message names the call, what differs, and the known mistake it matches.
        The reference is computed first, from the grader's own copy of the inputs.
        """
        want = self.reference(*_to64(clone(args)), **_to64(clone(kwargs)))
        got = self.call(student, *args, **kwargs)
        dtype = input_dtype(list(args) + list(kwargs.values()))
        problem = difference(got, want, dtype, tolerance=self.tolerance)
        if problem:
            raise CheckFailed(f"{self.describe_call(args, kwargs)}: {problem}", self.diagnose(got, args, kwargs, dtype))
        return got

    def _expect_unchanged(self, args, kwargs, args_after, kwargs_after):
        names = self.parameter_names()
        pairs = [(names[i] if i < len(names) else f"argument {i}", before, after) for i, (before, after) in enumerate(zip(args, args_after))]
        pairs += [(key, before, kwargs_after.get(key)) for key, before in kwargs.items()]
        for name, before, after in pairs:
            changed = modified(before, after, name)
            if changed:
                mistake = Mistake(IN_PLACE.name, self.in_place_fix) if self.in_place_fix else IN_PLACE
                raise CheckFailed(f"{self.function} modified its input `{changed}` in place.", mistake)

    # -- runs: a function fed its own results, step after step (an optimizer step, an environment step) --
    def step_call(self, carried, x, setting):
        """(args, kwargs) of one step's call, from what the step before carried, this step's input `x` and the run's `setting`."""
        raise NotImplementedError(f"{type(self).__name__} must define step_call to use expect_run")

    def carry(self, result):
        """What one step's result feeds to the next step's `step_call`."""
        raise NotImplementedError(f"{type(self).__name__} must define carry to use expect_run")

    def expect_run(self, student, start, inputs, want, label, setting=None):
        """Call the student once per input, each call fed what its own previous call returned; compare step t with `want[t]`.

        `start` is what the first step is fed, `inputs` one `x` per step, `want` the correct result of
        every step (float64, e.g. from torch.optim). The first step that differs fails the check, and
        is named by the first mistake whose own run (fed its own results) gives the student's result there.
        """
        carried, dtype = start, input_dtype([start])
        for t, x in enumerate(inputs):
            args, kwargs = self.step_call(carried, x, setting)
            try:
                got = self.call(student, *args, **kwargs)
            except CheckFailed as failure:
                raise CheckFailed(f"{label}: at step {t + 1}: {failure}", failure.mistake) from None
            problem = difference(got, want[t], dtype, tolerance=self.tolerance)
            if problem:
                raise CheckFailed(f"{label}: step {t + 1} of {len(inputs)} (each call fed what your function returned at the step "
                                  f"before): {problem}", self._diagnose_run(got, start, inputs[: t + 1], setting, dtype))
            carried = self.carry(got)

    def _diagnose_run(self, got, start, inputs, setting, dtype):
        for mistake in self.mistakes:
            if mistake.compute is None:
                continue
            try:
                carried = _to64(clone(start))
                for x in inputs:
                    args, kwargs = self.step_call(carried, _to64(x), setting)
                    wrong = mistake.compute(*args, **kwargs)
                    carried = self.carry(wrong)
            except Exception:  # noqa: BLE001 - a mistake that cannot run on these inputs does not match
                continue
            if difference(got, wrong, dtype, tolerance=self.tolerance) is None:
                return mistake
        return None

    # -- messages ------------------------------------------------------------------------
    def parameter_names(self):
        """The names of the function's parameters (those of `reference`), for messages."""
        return list(inspect.signature(self.reference).parameters)

    def describe_call(self, args, kwargs):
        """`attention_scores(q=float32 (5, 4), k=float32 (7, 4))`: the call a message is about."""
        names = self.parameter_names()
        parts = []
        for i, value in enumerate(args):
            parts.append(f"{names[i] if i < len(names) else i}={_short(value)}")
        parts += [f"{key}={_short(value)}" for key, value in kwargs.items()]
        return f"{self.function}({', '.join(parts)})"

    def diagnose(self, got, args, kwargs, dtype, sole=None):
        """The first of `mistakes` whose result on these inputs equals `got` (None if none does).

        With `sole` (default: the class's `sole_diagnosis`), a mistake is named only when it is the
        one name that matches: special inputs can make several mistakes coincide, and there the name
        would be a guess (the other checks give it).
        """
        found = {}
        for mistake in self.mistakes:
            if mistake.compute is None or mistake.name in found:
                continue
            try:
                wrong = mistake.compute(*_to64(clone(args)), **_to64(clone(kwargs)))
            except Exception:  # noqa: BLE001 - a mistake that cannot run on these inputs does not match
                continue
            if difference(got, wrong, dtype, tolerance=self.tolerance) is None:
                found[mistake.name] = mistake
                if not (self.sole_diagnosis if sole is None else sole):
                    break
        return next(iter(found.values())) if len(found) == 1 else None

    def diagnose_error(self, error, args, kwargs):
        """The first of `mistakes` that raises the same error as the student's call (None if none does)."""
        message = str(error)
        for mistake in self.mistakes:
            if mistake.compute is None:
                continue
            try:
                mistake.compute(*clone(args), **clone(kwargs))
            except Exception as wrong:  # noqa: BLE001
                if f"raised {type(wrong).__name__}: {wrong}" in message:
                    return mistake
        return None


def _short(value):
    if isinstance(value, SourceFunction):
        return repr(value)
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {tuple(value.shape)}"
    if isinstance(value, (int, float, bool, str)) or value is None:
        return repr(value)
    return describe(value)
