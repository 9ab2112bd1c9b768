"""Compare a student's result with a reference, and say precisely how they differ.

Tolerances are per dtype and scale with the size of the expected values, because float32 is not
bit-reproducible across formulations (a hand-written attention differs from
`F.scaled_dot_product_attention` by ~7e-7):

    |got - want| <= TOLERANCE[dtype] * (max(1, max|want|) + |want|)

float32: 1e-5, float64: 1e-10. References are computed in float64, so the error budget belongs to
the student's dtype alone.
"""

import math

import torch

TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-5, torch.float64: 1e-10}


def tolerance_for(dtype, overrides=None):
    """The relative tolerance for results of `dtype` (integers must match exactly)."""
    return (overrides or {}).get(dtype, TOLERANCE.get(dtype, 0.0))


def describe(value):
    """A short human description of a value: its type, and shape and dtype for tensors."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__} ({value!r})" if isinstance(value, (int, float, bool)) else f"a {type(value).__name__}"


def difference(got, want, dtype=None, path="result", tolerance=None):
    """Return None when `got` matches `want`, otherwise one sentence saying what differs.

    `dtype` is the dtype the student worked in (it picks the tolerance and the dtype the result
    must have); by default the dtype of `want`. Tensors must match in type, shape and dtype exactly, values within tolerance.
    Tuples, lists and dicts are compared item by item; a number may stand for a 0-d tensor.
    `tolerance` ({dtype: relative tolerance}) overrides TOLERANCE.
    """
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{path} should be a tuple of {len(want)} items, got {describe(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            problem = difference(g, w, dtype, f"{path}[{i}]", tolerance)
            if problem:
                return problem
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            keys = sorted(got) if isinstance(got, dict) else None
            return f"{path} should be a dict with keys {sorted(want)}, got {keys if keys is not None else describe(got)}"
        for key in want:
            problem = difference(got[key], want[key], dtype, f"{path}[{key!r}]", tolerance)
            if problem:
                return problem
        return None
    if isinstance(want, torch.Tensor) and want.dim() == 0 and isinstance(got, (int, float)) and not isinstance(got, bool):
        want = want.item()
    if isinstance(want, torch.Tensor):
        return _tensor_difference(got, want, dtype, path, tolerance)
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        return _number_difference(got, want, dtype, path, tolerance)
    return None if got == want else f"{path} should be {want!r}, got {got!r}"


def _number_difference(got, want, dtype, path, tolerance):
    if isinstance(got, torch.Tensor) and got.numel() == 1 and got.dim() == 0:
        got = got.item()
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return f"{path} should be a number, got {describe(got)}"
    if math.isnan(want) and math.isnan(got):
        return None
    if isinstance(want, int) and isinstance(got, int):
        return None if got == want else f"{path} should be {want}, got {got}"
    tol = tolerance_for(dtype or torch.float64, tolerance) * (max(1.0, abs(want)) + abs(want))
    if not math.isfinite(got) or abs(got - want) > tol:
        return f"{path} should be {want:.6g}, got {got:.6g} (error {abs(got - want):.3g}, tolerance {tol:.2g})"
    return None


def _tensor_difference(got, want, dtype, path, tolerance):
    if not isinstance(got, torch.Tensor):
        return f"{path} should be a tensor of shape {tuple(want.shape)}, got {describe(got)}"
    if got.shape != want.shape:
        return f"{path} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    dtype = dtype or want.dtype
    if want.dtype.is_floating_point and got.dtype != dtype:
        return f"{path} has dtype {got.dtype}, expected {dtype} (the dtype of the inputs)"
    if not want.dtype.is_floating_point:
        if got.dtype != want.dtype:
            return f"{path} has dtype {got.dtype}, expected {want.dtype}"
        wrong = (got != want).nonzero()
        if len(wrong):
            index = tuple(wrong[0].tolist())
            return f"{path} differs at {len(wrong)} of {want.numel()} entries, first at index {index}: got {got[index].item()}, expected {want[index].item()}"
        return None
    return _float_difference(got, want, dtype, path, tolerance)


def _float_difference(got, want, dtype, path, tolerance):
    got64, want64 = got.detach().to(torch.float64), want.detach().to(torch.float64)
    bad_nan = torch.isnan(got64) & ~torch.isnan(want64)
    if bad_nan.any():
        index = tuple(bad_nan.nonzero()[0].tolist())
        return f"{path} contains nan at {int(bad_nan.sum())} entries (first at index {index}) where the expected value is finite: look for exp overflow or 0/0"
    bad_inf = torch.isinf(got64) & ~torch.isinf(want64)
    if bad_inf.any():
        index = tuple(bad_inf.nonzero()[0].tolist())
        return f"{path} contains inf at {int(bad_inf.sum())} entries (first at index {index}) where the expected value is finite: look for exp overflow or the log of 0"
    finite = torch.isfinite(want64)
    if not torch.equal(torch.isfinite(got64), finite) or not torch.equal(got64[~finite].nan_to_num(), want64[~finite].nan_to_num()):
        return f"{path} has nan/inf where the expected value has none, or the other way round"
    if not finite.any():
        return None
    error = (got64 - want64).abs().where(finite, torch.zeros_like(got64))
    scale = max(1.0, want64[finite].abs().max().item())
    allowed = tolerance_for(dtype, tolerance) * (scale + want64.abs().where(finite, torch.zeros_like(want64)))
    if (error <= allowed).all():
        return None
    index = _unravel(int(torch.argmax(error - allowed)), error.shape)
    at = f" at index {index}" if index else ""
    return (f"{path} differs from the expected values: max abs error {error.max().item():.3g}{at} "
            f"(got {got64[index].item():.6g}, expected {want64[index].item():.6g}; "
            f"{int((error > allowed).sum())} of {want.numel()} entries outside the tolerance {tolerance_for(dtype, tolerance):g} x scale)")


def matches(got, want, dtype=None, tolerance=None):
    """True when `got` equals `want` within the tolerance for `dtype`."""
    return difference(got, want, dtype, tolerance=tolerance) is None


def _unravel(flat, shape):
    """The index in `shape` of element `flat` of the flattened tensor (torch.unravel_index, without the
    half-second import of sympy it triggers on first use in a grading process)."""
    index = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))
