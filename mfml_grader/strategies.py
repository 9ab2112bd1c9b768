"""Shared hypothesis strategies for property checks: random shapes, dims and tensors.

Grades must be reproducible and quick, so every property check runs with `GRADING` settings:
derandomized (the same examples for every student), a bounded number of examples and no shrinking
(a failure reports the first failing example), no deadline, no database, quiet (nothing on stderr).
"""

import torch
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st

GRADING = settings(max_examples=15, derandomize=True, deadline=None, database=None, verbosity=Verbosity.quiet,
                   phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                   suppress_health_check=list(HealthCheck))

dtypes = st.sampled_from([torch.float32, torch.float64])


def shapes(min_dims=1, max_dims=4, min_side=1, max_side=6):
    """Tensor shapes such as (3,), (2, 5, 4)."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def tensors(draw, shape=None, dtype=None, scale=3.0):
    """A seeded normal tensor of a drawn (or given) shape and dtype."""
    shape = draw(shape if shape is not None else shapes())
    dtype = dtype or draw(dtypes)
    seed = draw(st.integers(0, 2**31 - 1))
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).mul(scale).to(dtype)


@st.composite
def tensor_and_dim(draw, min_dims=1, max_dims=4):
    """(x, dim) with dim a valid, possibly negative, dimension of x."""
    x = draw(tensors(shapes(min_dims, max_dims)))
    return x, draw(st.integers(-x.dim(), x.dim() - 1))
