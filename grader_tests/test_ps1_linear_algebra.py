"""Hidden checks for ps1_linear_algebra: every function against a torch reference in float64.

Inputs are seeded, non-square (T_q != T_k != d, out != in) so that a missing transpose cannot pass
by luck, in float32 and float64, with and without batch dims (2-D-only code fails there). Worked
examples do not hide factors (alpha not divisible by r, a 3 x 3 softmax so that a missing keepdim
shows in the values); edge inputs the spec allows are checked too (all-zero vectors for l2_norm). PCA's components are
compared up to the sign of each one (a principal direction has no preferred sign).
Tolerances: mfml_grader.compare.
"""

import math

import torch
import torch.nn.functional as F

from hypothesis import given
from hypothesis import strategies as st

from mfml_grader.compare import describe, difference, tolerance_for
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, randn, seeded
from mfml_grader.strategies import GRADING, shapes, tensor_and_dim

SOFTMAX_APIS = (
    "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.special.softmax",
    "torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax", "torch.special.log_softmax",
)


class TestL2Norm(Exercise):
    function = "l2_norm"
    forbidden = ("torch.norm", "torch.functional.norm", "torch.linalg.*norm", "torch.Tensor.norm")
    mistakes = (
        Mistake("missing square root", "‖x‖₂ = √(Σ x²): take the square root of the sum of squares.",
                lambda x, dim=-1: (x * x).sum(dim)),
        Mistake("sum of absolute values (L1 norm)", "square the entries before summing, then take the square root.",
                lambda x, dim=-1: x.abs().sum(dim)),
        Mistake("reduced over every dimension", "sum only along `dim`; the other dimensions stay.",
                lambda x, dim=-1: (x * x).sum().sqrt()),
        Mistake("ignored `dim` (always the last one)", "pass `dim` to your sum.",
                lambda x, dim=-1: (x * x).sum(-1).sqrt()),
        Mistake("kept the reduced dimension", "use sum(dim) without keepdim=True: the norm removes that dimension.",
                lambda x, dim=-1: (x * x).sum(dim, keepdim=True).sqrt()),
        Mistake("root mean square (mean instead of sum)", "‖x‖₂ sums the squares: (x * x).sum(dim).sqrt(); the mean also divides by the size of dim.",
                lambda x, dim=-1: (x * x).mean(dim).sqrt()),
        Mistake("scaled by max|x| (0/0 on an all-zero vector)", "m·√(Σ (x/m)²) with m = max|x| divides 0 by 0 when x = 0: compute √(Σ x²) directly (or return 0 where m = 0).",
                lambda x, dim=-1: _max_scaled_norm(x, dim)),
    )

    @staticmethod
    def reference(x, dim=-1):
        return torch.linalg.vector_norm(x, dim=dim)

    def test_worked_example(self, student):
        """worked example: ‖(3, 4)‖ = 5"""
        self.expect(student, torch.tensor([[3.0, 4.0], [5.0, 12.0]]))

    def test_zero_vectors(self, student):
        """all-zero vectors have length 0 (no 0/0), float32 and float64"""
        x = randn(4, 5, seed=5)
        x[1] = 0.0
        self.expect(student, x)
        self.expect(student, torch.zeros(3, 2, dtype=torch.float64), dim=0)

    def test_batched_float32(self, student):
        """batch of vectors, float32, last dim"""
        self.expect(student, randn(4, 7, 5, seed=1))

    def test_other_dim_float64(self, student):
        """float64, norm along dim=1 of a (3, 6, 4) tensor"""
        self.expect(student, randn(3, 6, 4, seed=2, dtype=torch.float64), dim=1)

    def test_dim_zero(self, student):
        """norm of each column (dim=0)"""
        self.expect(student, randn(5, 3, seed=3, dtype=torch.float64), dim=0)

    def test_single_vector(self, student):
        """a single 1-D vector gives a 0-d tensor"""
        self.expect(student, randn(9, seed=4))

    @GRADING
    @given(case=tensor_and_dim())
    def test_random_shapes_and_dims(self, student, case):
        """random shapes, dims and dtypes"""
        x, dim = case
        self.expect(student, x, dim=dim)


def _max_scaled_norm(x, dim):
    """m·√(Σ (x/m)²) with m = max|x| along dim: overflow-safe, but 0/0 = nan on an all-zero vector."""
    m = x.abs().amax(dim, keepdim=True)
    return (m * ((x / m) ** 2).sum(dim, keepdim=True).sqrt()).squeeze(dim)


class TestLinear(Exercise):
    function = "linear"
    forbidden = ("torch.nn.functional.linear", "torch.nn.Linear", "torch.nn.modules.linear")
    mistakes = (
        Mistake("W not transposed", "W has shape (out, in): compute x @ W.T, not x @ W.",
                lambda x, W, b=None: x @ W + (0 if b is None else b)),
        Mistake("bias ignored", "add b (shape (out,)) after the matrix product when it is given.",
                lambda x, W, b=None: x @ W.T),
        Mistake("W @ x instead of x @ Wᵀ", "x carries batch dims in front: compute x @ W.T so each row is mapped.",
                lambda x, W, b=None: (W @ x) + (0 if b is None else b)),
        Mistake("bias subtracted", "the affine map adds the bias: x @ W.T + b.",
                lambda x, W, b=None: x @ W.T - (0 if b is None else b)),
        Mistake("b=None not handled", "`b` is optional: add it only when it is given (`if b is not None: y = y + b`).",
                lambda x, W, b=None: x @ W.T + b),
        Mistake("batch dims flattened and not restored", "x may be (in,) or carry several batch dims: compute x @ W.T directly (it keeps them), "
                "or reshape the result back to (*x.shape[:-1], out).",
                lambda x, W, b=None: x.reshape(-1, x.shape[-1]) @ W.T + (0 if b is None else b)),
    )

    @staticmethod
    def reference(x, W, b=None):
        return F.linear(x, W, b)

    def test_worked_example(self, student):
        """worked example: a 2 -> 3 map with bias"""
        W = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        self.expect(student, torch.tensor([[1.0, 2.0]]), W, torch.tensor([0.5, 0.0, -1.0]))

    def test_non_square_with_bias_float32(self, student):
        """(N, in) @ Wᵀ + b with out != in, float32"""
        self.expect(student, randn(6, 4, seed=10), randn(5, 4, seed=11), randn(5, seed=12))

    def test_batched_without_bias_float64(self, student):
        """batch dims (2, 3, in), no bias, float64"""
        self.expect(student, randn(2, 3, 7, seed=13, dtype=torch.float64), randn(2, 7, seed=14, dtype=torch.float64))

    def test_single_vector(self, student):
        """a single vector x of shape (in,) gives (out,)"""
        self.expect(student, randn(4, seed=15), randn(3, 4, seed=16), randn(3, seed=17))


class TestAttentionScores(Exercise):
    function = "attention_scores"
    forbidden = ("torch.nn.functional.scaled_dot_product_attention",)
    mistakes = (
        Mistake("no 1/√d_k scaling", "your scores equal q @ kᵀ: divide by √d_k, the square root of the last dim of q.",
                lambda q, k: q @ k.transpose(-2, -1)),
        Mistake("divided by d_k instead of √d_k", "the scale is 1/√d_k (so the scores keep unit variance), not 1/d_k.",
                lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1]),
        Mistake("scaled by √T_k (the number of keys)", "d_k is the feature size q.shape[-1], not the number of keys.",
                lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])),
        Mistake("scaled by √T_q (the number of queries)", "d_k is the feature size q.shape[-1], not the number of queries.",
                lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[-2])),
        Mistake("multiplied by √d_k", "divide by √d_k instead of multiplying.",
                lambda q, k: q @ k.transpose(-2, -1) * math.sqrt(q.shape[-1])),
        Mistake("k @ qᵀ (scores transposed)", "row i must hold query i's scores against every key: q @ kᵀ.",
                lambda q, k: k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])),
        Mistake("k transposed with .T on a batched tensor", "`.T` reverses every dim; use k.transpose(-2, -1) (or k.mT).",
                lambda q, k: q @ k.permute(*reversed(range(k.dim()))) / math.sqrt(q.shape[-1])),
        Mistake("d_k read from q.shape[1] (right only for 2-D q)", "with batch and head dims in front, q.shape[1] is not the feature size: d_k = q.shape[-1].",
                lambda q, k: q @ k.transpose(-2, -1) / math.sqrt(q.shape[1])),
        Mistake("transposed dims 1 and 2 of k (right only for 3-D inputs)", "transpose the last two dims, whatever comes before them: k.transpose(-2, -1).",
                lambda q, k: q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])),
    )

    @staticmethod
    def reference(q, k):
        return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])

    def test_worked_example(self, student):
        """worked example: d_k = 4, so scores are q·k / 2"""
        q = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
        self.expect(student, q, torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))

    def test_non_square_float32(self, student):
        """T_q=5, T_k=7, d=3, float32"""
        self.expect(student, randn(5, 3, seed=20), randn(7, 3, seed=21))

    def test_batched_heads_float64(self, student):
        """batch and heads (2, 3, T, d), float64"""
        self.expect(student, randn(2, 3, 5, 8, seed=22, dtype=torch.float64), randn(2, 3, 6, 8, seed=23, dtype=torch.float64))

    def test_d64_scores(self, student):
        """8 queries and 8 keys of size 64 (the notebook's experiment)"""
        self.expect(student, randn(8, 64, seed=24), randn(8, 64, seed=25))

    @GRADING
    @given(batch=shapes(0, 2, 1, 3), t_q=st.integers(1, 6), t_k=st.integers(1, 6), d=st.integers(1, 9), dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 10**6))
    def test_random_batch_and_head_shapes(self, student, batch, t_q, t_k, d, dtype, seed):
        """random batch/head shapes and sizes, float32 and float64"""
        self.expect(student, randn(*batch, t_q, d, seed=seed, dtype=dtype), randn(*batch, t_k, d, seed=seed + 1, dtype=dtype))


class TestSoftmax(Exercise):
    function = "softmax"
    forbidden = SOFTMAX_APIS
    mistakes = (
        Mistake("softmax over the wrong dim", "normalise along `dim` (default -1): each slice along dim must sum to 1.",
                lambda x, dim=-1: (x - x.amax(0, keepdim=True)).exp() / (x - x.amax(0, keepdim=True)).exp().sum(0, keepdim=True)),
        Mistake("`dim` ignored (always the last one)", "pass `dim` to both the max and the sum.",
                lambda x, dim=-1: (x - x.amax(-1, keepdim=True)).exp() / (x - x.amax(-1, keepdim=True)).exp().sum(-1, keepdim=True)),
        Mistake("normalised over the whole tensor", "sum along `dim` with keepdim=True, not over every entry.",
                lambda x, dim=-1: (x - x.max()).exp() / (x - x.max()).exp().sum()),
        Mistake("no max-shift before exp (overflows on large inputs)", "subtract x.amax(dim, keepdim=True) before exp: softmax is shift-invariant and exp(1000) is inf.",
                lambda x, dim=-1: x.exp() / x.exp().sum(dim, keepdim=True)),
        Mistake("shifted by the global max (underflows rows far below it)", "subtract the max of each slice (amax(dim, keepdim=True)), not of the whole tensor.",
                lambda x, dim=-1: (x - x.max()).exp() / (x - x.max()).exp().sum(dim, keepdim=True)),
        Mistake("sum without keepdim=True (divides along the wrong dim)", "e.sum(dim) drops dim, so it broadcasts against the wrong axis: use e.sum(dim, keepdim=True).",
                lambda x, dim=-1: _shifted_exp(x, dim) / _shifted_exp(x, dim).sum(dim)),
        Mistake("max without keepdim=True (the shift varies along dim)", "x.amax(dim) drops dim, so each entry gets another slice's max: use x.amax(dim, keepdim=True).",
                lambda x, dim=-1: (x - x.amax(dim)).exp() / (x - x.amax(dim)).exp().sum(dim, keepdim=True)),
    )

    @staticmethod
    def reference(x, dim=-1):
        return torch.softmax(x, dim=dim)

    def test_worked_example(self, student):
        """worked example: softmax(log [1, 2, 5]) = [1/8, 2/8, 5/8]; rows log [1, 1, 1] and log [3, 1, 4] (3 x 3)"""
        self.expect(student, torch.tensor([[1.0, 2.0, 5.0], [1.0, 1.0, 1.0], [3.0, 1.0, 4.0]]).log())

    def test_rows_float32(self, student):
        """(4, 10) float32, last dim"""
        self.expect(student, randn(4, 10, seed=30, scale=3.0))

    def test_dim0_float64(self, student):
        """float64 along dim=0 of a (5, 3) tensor"""
        self.expect(student, randn(5, 3, seed=31, dtype=torch.float64), dim=0)

    def test_middle_dim(self, student):
        """(2, 6, 3), dim=1"""
        self.expect(student, randn(2, 6, 3, seed=32, dtype=torch.float64), dim=1)

    def test_large_inputs_stay_finite(self, student):
        """stability: softmax(x + 1000) is finite and equals softmax(x)"""
        self.expect(student, randn(3, 8, seed=33, shift=1000.0))

    def test_rows_at_different_scales(self, student):
        """stability: one row near 0 and one near 1000"""
        x = torch.stack([randn(6, seed=34), randn(6, seed=35) + 1000.0])
        self.expect(student, x)

    def test_masked_entries(self, student):
        """-inf entries (a mask) get probability 0"""
        x = randn(3, 5, seed=36)
        x[:, 3:] = float("-inf")
        self.expect(student, x)

    @GRADING
    @given(case=tensor_and_dim(), shift=st.floats(-50, 50))
    def test_properties_on_random_shapes(self, student, case, shift):
        """random shapes and dims: matches torch, slices sum to 1, adding a constant changes nothing"""
        x, dim = case
        p = self.expect(student, x, dim=dim)
        shifted = self.call(student, x + shift, dim=dim)
        sums = p.double().sum(dim)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            raise CheckFailed(f"softmax(x, dim={dim}) for x {tuple(x.shape)}: slices along dim sum to {sums.min().item():.4g}..{sums.max().item():.4g}, not 1")
        if not isinstance(shifted, torch.Tensor) or not torch.allclose(shifted.double(), p.double(), atol=1e-4):
            raise CheckFailed(f"softmax(x + {shift:.3g}, dim={dim}) differs from softmax(x, dim={dim}) for x {tuple(x.shape)}: softmax must not change when a constant is added")


def _shifted_exp(x, dim):
    """exp(x − max) along dim, the max kept as a broadcastable dim."""
    return (x - x.amax(dim, keepdim=True)).exp()


class TestAttention(Exercise):
    function = "attention"
    forbidden = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention",
                 "torch.nn.functional.multi_head_attention_forward", *SOFTMAX_APIS)
    substitutes = ("attention_scores", "softmax")

    mistakes = (
        Mistake("causal mask off by one (the diagonal is masked)", "query i may attend to keys 0..i, itself included: keep the diagonal (tril with diagonal=0).",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, k, -1) if causal else None)),
        Mistake("causal mask inverted (the past is masked)", "mask the future: scores at key j > i get -inf; keep j <= i (tril).",
                lambda q, k, v, causal=False: _attend(q, k, v, ~_tril(q, k) if causal else None)),
        Mistake("mask applied after softmax", "set masked scores to -inf before softmax; zeroing probabilities afterwards leaves rows that no longer sum to 1.",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, k) if causal else None, mask_after_softmax=True)),
        Mistake("no 1/√d_k scaling", "scale the scores by 1/√d_k before softmax.",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, k) if causal else None, scale=1.0)),
        Mistake("softmax over the query dim", "each query's weights over the keys must sum to 1: softmax over the last dim.",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, k) if causal else None, softmax_dim=-2)),
        Mistake("causal mask aligned bottom-right", "this course aligns the causal mask top-left like F.scaled_dot_product_attention: query i sees keys 0..i.",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, k, k.shape[-2] - q.shape[-2]) if causal else None)),
        Mistake("masked scores set to 0 instead of −inf", "a score of 0 still gets weight e⁰ after softmax (multiplying the scores by a 0/1 mask does the same): "
                "fill the masked scores with float('-inf').",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, k) if causal else None, fill=0.0)),
        Mistake("causal mask built T_q × T_q (assumes T_q = T_k)", "the mask has one row per query and one column per key: torch.ones(T_q, T_k).tril().",
                lambda q, k, v, causal=False: _attend(q, k, v, _tril(q, q) if causal else None)),
    )

    @staticmethod
    def reference(q, k, v, causal=False):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def test_worked_example(self, student):
        """worked example: two keys with equal scores average their values"""
        q = torch.tensor([[1.0, 0.0]])
        k = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
        self.expect(student, q, k, torch.tensor([[2.0, 0.0, 4.0], [0.0, 2.0, 0.0]]))

    def test_non_square_float32(self, student):
        """T_q=4, T_k=6, d=3, d_v=5, float32"""
        self.expect(student, randn(4, 3, seed=40), randn(6, 3, seed=41), randn(6, 5, seed=42))

    def test_batched_heads_float64(self, student):
        """(2, 3 heads, T, d) in float64"""
        q, k, v = (randn(2, 3, 5, 4, seed=s, dtype=torch.float64) for s in (43, 44, 45))
        self.expect(student, q, k, v)

    def test_causal_square(self, student):
        """causal, T_q = T_k = 6"""
        q, k, v = (randn(6, 4, seed=s, dtype=torch.float64) for s in (46, 47, 48))
        self.expect(student, q, k, v, causal=True)

    def test_causal_worked_example(self, student):
        """causal worked example: T_q=2 < T_k=3, query 0 sees key 0 only, query 1 keys 0 and 1"""
        q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        k = torch.tensor([[1.0, 1.0], [0.0, 2.0], [3.0, 0.0]])
        self.expect(student, q, k, torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]), causal=True)

    def test_causal_more_keys(self, student):
        """causal with T_q=3 < T_k=5 (mask aligned top-left), batched float32"""
        self.expect(student, randn(2, 3, 4, seed=49), randn(2, 5, 4, seed=50), randn(2, 5, 6, seed=51), causal=True)

    def test_causal_rows_ignore_the_future(self, student):
        """causal: changing keys and values after position i leaves output row i unchanged"""
        q, k, v = (randn(7, 4, seed=s, dtype=torch.float64) for s in (52, 53, 54))
        before = self.expect(student, q, k, v, causal=True)
        k2, v2 = k.clone(), v.clone()
        k2[4:] += 10.0
        v2[4:] -= 10.0
        after = self.call(student, q, k2, v2, causal=True)
        if not isinstance(after, torch.Tensor) or after.shape != before.shape or not torch.allclose(after[:4], before[:4], rtol=1e-10, atol=1e-10):
            raise CheckFailed("attention(q, k, v, causal=True): rows 0..3 changed when only keys/values 4..6 changed: the causal mask lets queries see the future")

    @GRADING
    @given(batch=shapes(0, 2, 1, 3), t_q=st.integers(1, 6), t_k=st.integers(1, 6), d=st.integers(1, 5), seed=st.integers(0, 10**6))
    def test_random_batch_and_head_shapes(self, student, batch, t_q, t_k, d, seed):
        """random batch/head shapes (causal and not) match F.scaled_dot_product_attention"""
        q, k, v = (randn(*batch, t, d, seed=seed + i, dtype=torch.float64) for i, t in enumerate((t_q, t_k, t_k)))
        self.expect(student, q, k, v, causal=seed % 2 == 0)

    def test_permuting_keys_and_values_changes_nothing(self, student):
        """permutation equivariance: shuffling key/value pairs together leaves the output unchanged,
        shuffling the queries shuffles the output rows"""
        q, k, v = (randn(2, 5, 4, seed=s, dtype=torch.float64) for s in (58, 59, 60))
        keys, queries = torch.tensor([3, 0, 4, 1, 2]), torch.tensor([1, 4, 0, 3, 2])
        out = self.expect(student, q, k, v)
        moved = self.call(student, q, k[:, keys], v[:, keys])
        if not torch.allclose(moved, out, atol=1e-10):
            raise CheckFailed("attention(q, k[perm], v[perm]) differs from attention(q, k, v): the output must not depend on the order of the key/value pairs")
        rows = self.call(student, q[:, queries], k, v)
        if not torch.allclose(rows, out[:, queries], atol=1e-10):
            raise CheckFailed("attention(q[perm], k, v) is not attention(q, k, v)[perm]: each query's output must depend only on that query")

    def test_large_scores_stay_finite(self, student):
        """stability: large q and k give finite outputs"""
        self.expect(student, randn(4, 8, seed=55, scale=30.0), randn(5, 8, seed=56, scale=30.0), randn(5, 3, seed=57))


def _tril(q, k, diagonal=0):
    """(T_q, T_k) booleans: True where query i may attend to key j, i.e. j <= i + diagonal."""
    return torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(diagonal)


def _attend(q, k, v, keep=None, scale=None, softmax_dim=-1, mask_after_softmax=False, fill=float("-inf")):
    """Attention with the (query, key) pairs in `keep` allowed: the broken variants above."""
    scores = q @ k.mT / (math.sqrt(q.shape[-1]) if scale is None else scale)       # (..., T_q, T_k)
    if keep is not None and not mask_after_softmax:
        scores = scores.masked_fill(~keep, fill)
    weights = torch.softmax(scores, softmax_dim)                                    # (..., T_q, T_k)
    if keep is not None and mask_after_softmax:
        weights = weights * keep
    return weights @ v                                                               # (..., T_q, d_v)


class TestLowRankApprox(Exercise):
    function = "low_rank_approx"
    mistakes = (
        Mistake("kept the smallest singular values", "torch.linalg.svd sorts S in decreasing order: keep the first r (S[:r]).",
                lambda A, r: _svd_parts(A, slice(min(A.shape) - r, None))),
        Mistake("Vh transposed again", "torch.linalg.svd returns Vh = Vᵀ already: use U[:, :r] @ diag(S[:r]) @ Vh[:r].",
                lambda A, r: (lambda U, S, Vh: U[:, :r] @ torch.diag(S[:r]) @ Vh.mT[:r])(*torch.linalg.svd(A, full_matrices=False))),
        Mistake("dropped Σ (U @ Vh)", "scale by the singular values: U[:, :r] @ diag(S[:r]) @ Vh[:r].",
                lambda A, r: (lambda U, S, Vh: U[:, :r] @ Vh[:r])(*torch.linalg.svd(A, full_matrices=False))),
        Mistake("rank r + 1 (off by one)", "keep exactly r singular values: S[:r], U[:, :r], Vh[:r].",
                lambda A, r: _svd_parts(A, slice(0, r + 1))),
        Mistake("rank r - 1 (off by one)", "keep exactly r singular values: S[:r], U[:, :r], Vh[:r].",
                lambda A, r: _svd_parts(A, slice(0, max(r - 1, 0)))),
        Mistake("Vh sliced by columns (Vh[:, :r])", "the right singular vectors are the ROWS of Vh: keep Vh[:r] (r, n), not Vh[:, :r].",
                lambda A, r: (lambda U, S, Vh: U[:, :r] @ torch.diag(S[:r]) @ Vh[:, :r])(*torch.linalg.svd(A, full_matrices=False))),
        Mistake("full SVD: U @ diag(S) @ Vh only fits a square A", "with full_matrices=True, U is (m, m) and Vh (n, n) but S has min(m, n) entries: "
                "call torch.linalg.svd(A, full_matrices=False), or slice U[:, :r] and Vh[:r].",
                lambda A, r: (lambda U, S, Vh: U @ torch.diag(S * (torch.arange(len(S)) < r)) @ Vh)(*torch.linalg.svd(A))),
    )

    @staticmethod
    def reference(A, r):
        return _svd_parts(A, slice(0, r))

    def test_worked_example(self, student):
        """worked example: rank 1 of diag(3, 1) keeps only the 3"""
        self.expect(student, torch.tensor([[3.0, 0.0], [0.0, 1.0]]), 1)

    def test_non_symmetric_example(self, student):
        """rank 1 of a non-symmetric 3 x 2 matrix (Vh is not symmetric, so a transposed Vh shows)"""
        self.expect(student, torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64), 1)

    def test_wide_float32(self, student):
        """rank 8 of a 32 x 64 matrix (the notebook's experiment), float32"""
        self.expect(student, randn(32, 64, seed=60), 8)

    def test_tall_float64(self, student):
        """rank 3 of a 12 x 5 matrix, float64"""
        self.expect(student, randn(12, 5, seed=61, dtype=torch.float64), 3)

    def test_full_rank_returns_A(self, student):
        """r = min(m, n) reconstructs A"""
        self.expect(student, randn(4, 6, seed=62, dtype=torch.float64), 4)

    def test_error_is_the_dropped_singular_values(self, student):
        """Eckart–Young: ‖A − A_r‖_F = √(Σ dropped σ²)"""
        A = randn(10, 7, seed=63, dtype=torch.float64)
        approx = self.expect(student, A, 2)
        dropped = torch.linalg.svdvals(A)[2:]
        error = torch.linalg.matrix_norm(A - approx).item()
        if abs(error - dropped.square().sum().sqrt().item()) > 1e-8:
            raise CheckFailed(f"‖A − low_rank_approx(A, 2)‖_F is {error:.6g}, expected √(Σ dropped σ²) = {dropped.square().sum().sqrt().item():.6g}")


def _svd_parts(A, keep):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, keep] @ torch.diag(S[keep]) @ Vh[keep]


class TestLoraForward(Exercise):
    function = "lora_forward"
    substitutes = ("linear",)
    mistakes = (
        Mistake("alpha not divided by r", "the LoRA update is scaled by alpha / r, where r = A.shape[0].",
                lambda x, W, A, B, alpha: x @ W.T + alpha * (x @ A.T @ B.T)),
        Mistake("no alpha / r scaling", "multiply the low-rank path by alpha / r.",
                lambda x, W, A, B, alpha: x @ W.T + x @ A.T @ B.T),
        Mistake("integer division alpha // r", "use true division alpha / r: with alpha=5 and r=2 the scale is 2.5, not 2.",
                lambda x, W, A, B, alpha: x @ W.T + (alpha // A.shape[0]) * (x @ A.T @ B.T)),
        Mistake("scaled the frozen path too", "only the low-rank update x Aᵀ Bᵀ is scaled; x Wᵀ is not.",
                lambda x, W, A, B, alpha: (alpha / A.shape[0]) * (x @ W.T + x @ A.T @ B.T)),
        Mistake("r taken from B (out) instead of A", "r is the rank: A is (r, in), so r = A.shape[0].",
                lambda x, W, A, B, alpha: x @ W.T + (alpha / B.shape[0]) * (x @ A.T @ B.T)),
        Mistake("multiplied by r / alpha", "the scale is alpha / r.",
                lambda x, W, A, B, alpha: x @ W.T + (A.shape[0] / alpha) * (x @ A.T @ B.T)),
        Mistake("r taken from A.shape[1] (in) instead of A.shape[0]", "A is (r, in): the rank is its FIRST dim, r = A.shape[0].",
                lambda x, W, A, B, alpha: x @ W.T + (alpha / A.shape[1]) * (x @ A.T @ B.T)),
        Mistake("torch.mm takes 2-D x only", "x may carry batch dims (..., in): use @ (torch.matmul), which maps every row.",
                lambda x, W, A, B, alpha: torch.mm(x, W.T) + (alpha / A.shape[0]) * torch.mm(torch.mm(x, A.T), B.T)),
    )

    @staticmethod
    def reference(x, W, A, B, alpha):
        return x @ W.T + (alpha / A.shape[0]) * (x @ A.T @ B.T)

    def test_worked_example(self, student):
        """worked example: in=4, r=2, out=3, alpha=5 (scale 2.5) gives [[1, 7, 4]]"""
        x = torch.tensor([[1.0, 2.0, 0.0, -1.0]])
        W = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
        A = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
        self.expect(student, x, W, A, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 5)

    def test_non_square_float32(self, student):
        """out=6, in=5, r=2, alpha=5 (not divisible by r), float32"""
        self.expect(student, randn(4, 5, seed=70), randn(6, 5, seed=71), randn(2, 5, seed=72), randn(6, 2, seed=73), 5)

    def test_batched_float64(self, student):
        """x of shape (2, 3, in), r=4, alpha=10.0, float64"""
        args = (randn(2, 3, 7, seed=74), randn(5, 7, seed=75), randn(4, 7, seed=76), randn(5, 4, seed=77))
        self.expect(student, *(a.double() for a in args), 10.0)

    def test_zero_B_is_the_frozen_layer(self, student):
        """with B = 0 (LoRA's initialisation) the output is x Wᵀ"""
        self.expect(student, randn(3, 5, seed=78), randn(4, 5, seed=79), randn(2, 5, seed=80), torch.zeros(4, 2), 5)


class TestPca(Exercise):
    function = "pca"
    forbidden = ("torch.pca_lowrank", "torch.cov", "torch.Tensor.cov", "sklearn.decomposition.*")
    mistakes = (
        Mistake("not centred", "subtract the column means first, Xc = X - X.mean(0, keepdim=True): PCA describes the spread around the mean.",
                lambda X, k: _pca_parts(X, k, centre=lambda X: X)),
        Mistake("centred by the mean of all entries", "subtract each column's own mean, X.mean(0) of shape (d,), not the single number X.mean().",
                lambda X, k: _pca_parts(X, k, centre=lambda X: X - X.mean())),
        Mistake("centred each row (mean over dim 1)", "X is (N, d) with one sample per row: subtract the mean over the samples, X.mean(0), from every row.",
                lambda X, k: _pca_parts(X, k, centre=lambda X: X - X.mean(1, keepdim=True))),
        Mistake("divided by N instead of N - 1", "the sample covariance divides by N - 1: explained_variance = S² / (N - 1).",
                lambda X, k: _pca_parts(X, k, variance=lambda S, N: S ** 2 / N)),
        Mistake("singular values returned instead of variances", "the variance along component i is σᵢ² / (N - 1), not σᵢ: square and divide.",
                lambda X, k: _pca_parts(X, k, variance=lambda S, N: S)),
        Mistake("S / √(N - 1) (standard deviations, not variances)", "σᵢ / √(N - 1) is the standard deviation along component i; the variance is its square, σᵢ² / (N - 1).",
                lambda X, k: _pca_parts(X, k, variance=lambda S, N: S / math.sqrt(N - 1))),
        Mistake("S² not divided by N - 1", "σᵢ² is the sum of squares along component i: divide it by N - 1 to get the sample variance.",
                lambda X, k: _pca_parts(X, k, variance=lambda S, N: S ** 2)),
        Mistake("ascending order (eigh's order not reversed)", "torch.linalg.eigh sorts eigenvalues in ASCENDING order: reverse the eigenvalues and the eigenvector "
                "columns (.flip(-1)) so that the largest variance comes first.",
                lambda X, k: _pca_parts(X, k, keep=lambda m: list(range(k - 1, -1, -1)))),
        Mistake("kept the k smallest-variance directions", "the principal components carry the LARGEST variances; torch.linalg.eigh sorts ascending, so they are its last k columns, reversed.",
                lambda X, k: _pca_parts(X, k, keep=lambda m: list(range(X.shape[1] - 1, X.shape[1] - 1 - k, -1)), smallest=True)),
        Mistake("components as columns (d, k)", "return one component per ROW, shape (k, d): the rows Vh[:k] of the SVD, or the transposed eigenvector columns.",
                lambda X, k: _pca_parts(X, k, columns=True)),
        Mistake("components taken from U instead of V", "U (N, ·) holds the samples' coordinates; the directions in feature space are the rows of Vh, shape (k, d).",
                lambda X, k: _pca_parts(X, k, from_u=True)),
        Mistake("projected from uncentred X", "project the CENTRED data: projected = (X - mean) @ components.T.",
                lambda X, k: _pca_parts(X, k, project=lambda X, Xc, C: X @ C.mT)),
        Mistake("k ignored (every component returned)", "keep only the first k components, variances and projected columns: [:k].",
                lambda X, k: _pca_parts(X, k, keep=lambda m: list(range(m)))),
    )

    @staticmethod
    def reference(X, k):
        return _pca_parts(X, k)

    def expect(self, student, X, k):
        """Check pca(X, k) against the reference, each component up to its sign, and return the student's result.

        In order: three tensors of the right shapes and dtype, the variances (values and order), orthonormal
        rows, the rank-k reconstruction projected @ components (sign-free), then each component and its
        column of projected with the sign of the reference's component.
        """
        want = self.reference(X.double(), k)
        got = self.call(student, X, k)
        call, dtype = self.describe_call((X, k), {}), X.dtype
        N, d = X.shape
        shapes = {"components": (k, d), "explained_variance": (k,), "projected": (N, k)}
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise CheckFailed(f"{call} should return a tuple (components, explained_variance, projected), got {describe(got)}")
        for (name, shape), value in zip(shapes.items(), got):
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                what = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else describe(value)
                raise CheckFailed(f"{call}: {name} should have shape {shape}, got {what}", self._diagnose(got, X, k, dtype))
            if value.dtype != dtype:
                raise CheckFailed(f"{call}: {name} has dtype {value.dtype}, expected {dtype} (the dtype of X)")
        components, variance, projected = (value.detach().double() for value in got)
        aligned = _aligned((components, variance, projected), want)
        steps = (
            ("explained_variance", variance, want[1]),
            ("components @ components.T (the rows must be orthonormal)", components @ components.mT, torch.eye(k, dtype=torch.float64)),
            ("projected @ components (the rank-k reconstruction of the centred data)", projected @ components, want[2] @ want[0]),
            ("components (each row up to its sign)", aligned[0], want[0]),
            ("projected (each column with the sign of its component)", aligned[2], want[2]),
        )
        for name, value, expected in steps:
            problem = difference(value.to(dtype), expected, dtype, path=name)
            if problem:
                raise CheckFailed(f"{call}: {problem}", self._diagnose(got, X, k, dtype))
        return got

    def _diagnose(self, got, X, k, dtype):
        """The first mistake whose result equals the student's, both with each component's sign made canonical."""
        mine, tolerance = _canonical(got, k), {torch.float64: tolerance_for(dtype)}     # both in float64, at the student's tolerance
        for mistake in self.mistakes:
            try:
                wrong = _canonical(mistake.compute(X.double(), k), k)
            except Exception:  # noqa: BLE001 - a mistake that cannot run on these inputs does not match
                continue
            if difference(mine, wrong, torch.float64, tolerance=tolerance) is None:
                return mistake
        return None

    def test_worked_example(self, student):
        """worked example: 6 points in 3-D around the mean (2, 1, 3); k=2 gives variances 40 and 10 along ±(0.6, 0.8, 0) and ±(-0.8, 0.6, 0)"""
        X = torch.tensor([[8.0, 9.0, 3.0], [-4.0, -7.0, 3.0], [-2.0, 4.0, 3.0], [6.0, -2.0, 3.0], [2.0, 1.0, 5.0], [2.0, 1.0, 1.0]])
        self.expect(student, X, 2)

    def test_tall_float32(self, student):
        """N=24 samples, d=6 features, k=3, float32"""
        self.expect(student, _pca_data(24, 6, seed=90, offset=3.0), 3)

    def test_wide_float64(self, student):
        """fewer samples than features: N=7, d=12, k=3, float64"""
        self.expect(student, _pca_data(7, 12, seed=91, offset=2.0, dtype=torch.float64), 3)

    def test_one_component(self, student):
        """k=1 of N=10 samples in d=4, float64"""
        self.expect(student, _pca_data(10, 4, seed=92, offset=-5.0, dtype=torch.float64), 1)

    def test_large_mean_float64(self, student):
        """column means near 10⁴ and a spread of a few units (not centring is far off), N=15, d=5, k=2, float64"""
        self.expect(student, _pca_data(15, 5, seed=93, offset=1e4, dtype=torch.float64), 2)

    def test_large_mean_float32(self, student):
        """column means in the hundreds, float32 (values on a 1/64 grid, so that the column means are exact), N=16, d=4, k=2"""
        X = _pca_data(16, 4, seed=94, offset=200.0, dtype=torch.float64)
        self.expect(student, ((X * 64).round() / 64).float(), 2)

    def test_shifting_the_data_changes_nothing(self, student):
        """pca(X + c) = pca(X) for any shift c of every sample: PCA sees only the spread around the mean, float64"""
        X = _pca_data(11, 5, seed=95, offset=0.0, dtype=torch.float64)              # column means 0 (up to rounding)
        before = self.expect(student, X, 3)
        shift = torch.tensor([40.0, -25.0, 10.0, 0.0, 75.0], dtype=torch.float64)
        after = self.call(student, X + shift, 3)
        if not (isinstance(after, (tuple, list)) and len(after) == 3
                and all(isinstance(a, torch.Tensor) and a.shape == b.shape for a, b in zip(after, before))):
            raise CheckFailed(f"pca(X + c, 3) returned {describe(after)}, not the three tensors of the shapes pca(X, 3) returned")
        before = tuple(b.double() for b in before)
        problem = difference(_aligned(tuple(a.double() for a in after), before), before, torch.float64)
        if problem:
            raise CheckFailed(f"pca(X + c, 3) with c = {shift.tolist()} differs from pca(X, 3) (up to the sign of each component): {problem}. "
                              "Adding the same vector to every sample moves the mean, not the spread.", self._diagnose(after, X + shift, 3, torch.float64))


def _pca_parts(X, k, centre=None, variance=None, keep=None, smallest=False, columns=False, from_u=False, project=None):
    """(components (k, d), explained_variance (k,), projected (N, k)) from the SVD of the centred data; the
    keyword arguments make the broken versions above (how X is centred, S turned into variances, which
    components are kept and in which order, their layout, what is projected)."""
    N, d = X.shape
    Xc = X - X.mean(0, keepdim=True) if centre is None else centre(X)              # (N, d)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=smallest)                         # (N, m), (m,), (m, d)
    S = torch.cat([S, S.new_zeros(d - len(S))]) if smallest else S                  # eigh's eigenvalues: d of them
    index = list(range(k)) if keep is None else keep(len(S))
    components = Vh[index]                                                          # (k, d)
    explained = S[index] ** 2 / (N - 1) if variance is None else variance(S[index], N)
    projected = Xc @ components.mT if project is None else project(X, Xc, components)   # (N, k)
    if columns:
        components = components.mT                                                  # (d, k)
    if from_u:
        components = U[:, index].mT                                                 # (k, N)
    return components, explained, projected


def _aligned(result, want):
    """`result` with each component (row) and its column of projected flipped to point like `want`'s."""
    components, variance, projected = result
    sign = torch.where((components * want[0]).sum(-1) < 0, -1.0, 1.0).to(components.dtype)   # (k,)
    return components * sign[:, None], variance, projected * sign


def _canonical(result, k):
    """`result` with each component's sign fixed by a fixed reference direction (for naming mistakes only):
    components as rows, or as columns when they come as (d, k); projected's columns follow."""
    if not isinstance(result, (tuple, list)) or len(result) != 3 or not all(isinstance(v, torch.Tensor) for v in result):
        return result
    components, variance, projected = (v.detach().double() for v in result)
    if components.dim() != 2:
        return components, variance, projected
    as_columns = components.shape[1] == k and components.shape[0] != k
    vectors = components.mT if as_columns else components                          # one component per row
    direction = torch.sin(1.7 * torch.arange(1, vectors.shape[1] + 1, dtype=torch.float64) + 0.3)
    sign = torch.where(vectors @ direction < 0, -1.0, 1.0).double()
    components = components * (sign if as_columns else sign[:, None])
    if projected.dim() == 2 and projected.shape[1] == len(sign):
        projected = projected * sign
    return components, variance, projected


def _pca_data(N, d, seed, offset, dtype=torch.float32):
    """N samples in d dims whose PCA is known and well separated: centred data U diag(σ) Vᵀ with orthonormal,
    zero-mean U and σ² / (N - 1) = 36, 16, 6.25, 2.25, 1, ..., plus column means around `offset`."""
    g = seeded(seed)
    m = min(N - 1, d)
    U = torch.randn(N, m, generator=g, dtype=torch.float64)
    U, _ = torch.linalg.qr(U - U.mean(0))                                           # (N, m), columns sum to 0
    V, _ = torch.linalg.qr(torch.randn(d, m, generator=g, dtype=torch.float64))     # (d, m)
    sigma = torch.tensor([6.0, 4.0, 2.5, 1.5, 1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08], dtype=torch.float64)[:m] * math.sqrt(N - 1)
    mean = offset * (1.0 + 0.5 * torch.randn(d, generator=g, dtype=torch.float64))   # (d,)
    return ((U * sigma) @ V.mT + mean).to(dtype)
