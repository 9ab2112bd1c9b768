"""Hidden checks for ps3_probability: log-probabilities, cross-entropy, MLE, MAP, KL and sampling.

Shapes are non-square (N != C), in float32 and float64, with `dim` other than -1 where there is a
dim. Stability inputs (logits near 1000, or 1000 apart in one row) are checked in float64 at the
usual tolerance and in float32 at a tolerance that grows with |logits| (rounding at 1e3 alone is
~6e-5 in float32). KL is compared with the exact formula (torch.xlogy in float64), because
torch.distributions clamps tiny probabilities. Samplers are checked by their distribution
(chi-square over seeded draws), determinism under a seeded generator and the temperature limits,
never draw by draw against one reference sampler. The Gaussian MLE also sees float32 data far
from 0 (1e4 + N(0, 1), where a one-pass E[x²] − μ² cancels), and cross_entropy's reductions must
be 0-d tensors, as the spec says. The Gaussian posterior accepts 0-d tensors or Python numbers,
sees N = 0 (the prior) and must give the same answer in two updates as in one. MAP linear regression
sees N != d, N < d and nearly collinear features (where least squares is ~400 and the prior matters),
variances whose ratio is not hidden by a 1, and a float32 tolerance of 1e-4 (a float32 solve loses
about cond x eps). Tolerances: mfml_grader.compare.
"""

import contextlib
import math

import torch
import torch.nn.functional as F

from mfml_grader.compare import describe, difference, matches
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, modified, randn, seeded

SOFTMAX_APIS = (
    "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.special.softmax",
    "torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax", "torch.special.log_softmax",
)
LOGSUMEXP_APIS = ("torch.logsumexp", "torch.Tensor.logsumexp", "torch.special.logsumexp")
LOG_SOFTMAX_APIS = ("torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax", "torch.special.log_softmax")
FLOAT32_EPS = torch.finfo(torch.float32).eps


class LargeInputs:
    """Float32 checks on logits of size ~`magnitude`: the tolerance grows with |logits|.

    Rounding the logits' sum at 1e3 already costs ~6e-5 in float32, so a correct stable formula can
    differ from the float64 reference by a few eps x |logits|; every mistake these checks look for
    is off by O(1) or inf.
    """

    @contextlib.contextmanager
    def tolerance_for_magnitude(self, magnitude):
        saved = self.tolerance
        self.tolerance = {torch.float32: max(1e-5, 8 * FLOAT32_EPS * magnitude)}
        try:
            yield
        finally:
            self.tolerance = saved


# -- log_softmax ------------------------------------------------------------------------------

def _log_softmax_global_shift(logits, dim=-1):
    shifted = logits - logits.max()
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def _log_softmax_along(logits, dim, keepdim_max=True):
    """x − m − log Σ exp(x − m) along `dim`, with the max taken with or without keepdim."""
    shifted = logits - logits.amax(dim, keepdim=keepdim_max)
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


class TestLogSoftmax(LargeInputs, Exercise):
    function = "log_softmax"
    forbidden = (*SOFTMAX_APIS, *LOGSUMEXP_APIS)
    mistakes = (
        Mistake("`dim` ignored (always the last one)", "pass `dim` to the max and to the sum.",
                lambda logits, dim=-1: F.log_softmax(logits, dim=-1)),
        Mistake("normalised over the whole tensor", "reduce along `dim` with keepdim=True, not over every entry.",
                lambda logits, dim=-1: logits - torch.logsumexp(logits.flatten(), 0)),
        Mistake("no max-shift before exp (overflows on large logits)", "exp(1000) is inf: compute x − m − log Σ exp(x − m) with m = max along dim.",
                lambda logits, dim=-1: logits - logits.exp().sum(dim, keepdim=True).log()),
        Mistake("log(exp(x) / Σ exp(x)) without a max-shift (nan on large logits)", "exp(1000) is inf and inf / inf is nan: subtract the max first, and stay in log space.",
                lambda logits, dim=-1: (logits.exp() / logits.exp().sum(dim, keepdim=True)).log()),
        Mistake("log of softmax (−inf when a probability underflows)", "softmax rounds tiny probabilities to 0 and log 0 = −inf: compute x − m − log Σ exp(x − m) directly.",
                lambda logits, dim=-1: torch.softmax(logits, dim).log()),
        Mistake("max subtracted but not added back", "log Σ exp(x) = m + log Σ exp(x − m): the result is x − m − log Σ exp(x − m).",
                lambda logits, dim=-1: logits - (logits - logits.amax(dim, keepdim=True)).exp().sum(dim, keepdim=True).log()),
        Mistake("shifted by the max of the whole tensor", "subtract the max of each slice (amax(dim, keepdim=True)): rows far below the global max underflow.",
                _log_softmax_global_shift),
        Mistake("returned probabilities, not log-probabilities", "return log p = x − m − log Σ exp(x − m), not p.",
                lambda logits, dim=-1: torch.softmax(logits, dim)),
        Mistake("dim hard-coded to 1 (right only for 2-D logits)", "reduce along the `dim` argument: logits may be (C,), (N, C) or (B, T, C), and dim may be 0.",
                lambda logits, dim=-1: _log_softmax_along(logits, 1)),
        Mistake("max without keepdim=True (the shift varies along dim)", "logits.amax(dim) drops dim, so each entry is shifted by another slice's max: use amax(dim, keepdim=True).",
                lambda logits, dim=-1: _log_softmax_along(logits, dim, keepdim_max=False)),
    )

    @staticmethod
    def reference(logits, dim=-1):
        return F.log_softmax(logits, dim=dim)

    def test_worked_example(self, student):
        """worked example: log_softmax([2.0, 1.0, 0.1]) and a uniform row"""
        self.expect(student, torch.tensor([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]]))

    def test_rows_float32(self, student):
        """(4, 10) float32, last dim"""
        self.expect(student, randn(4, 10, seed=100, scale=3.0))

    def test_single_vector(self, student):
        """a single 1-D vector of 7 logits, float64"""
        self.expect(student, randn(7, seed=103, dtype=torch.float64))

    def test_batched_last_dim(self, student):
        """(B=2, T=3, C=4) float64 along the last dim"""
        self.expect(student, randn(2, 3, 4, seed=109, dtype=torch.float64, scale=2.0))

    def test_dim0_float64(self, student):
        """float64 along dim=0 of a (5, 3) tensor"""
        self.expect(student, randn(5, 3, seed=101, dtype=torch.float64), dim=0)

    def test_middle_dim(self, student):
        """(2, 6, 3) float64, dim=1"""
        self.expect(student, randn(2, 6, 3, seed=102, dtype=torch.float64, scale=2.0), dim=1)

    def test_large_logits_float64(self, student):
        """stability: logits near 1000 (float64) give finite values equal to log_softmax(x)"""
        self.expect(student, randn(3, 8, seed=104, dtype=torch.float64, shift=1000.0))

    def test_large_logits_float32(self, student):
        """stability: logits near 1000 in float32 (tolerance 8 eps x 1000)"""
        with self.tolerance_for_magnitude(1000.0):
            self.expect(student, randn(3, 8, seed=105, shift=1000.0))

    def test_spread_of_1000_in_a_row(self, student):
        """stability: a class 1000 below the best one has log-probability about −1000, not −inf"""
        x = torch.tensor([[0.0, 1000.0, -5.0, 2.0], [900.0, 0.0, 899.5, 3.0]], dtype=torch.float64)
        self.expect(student, x)

    def test_rows_at_different_scales(self, student):
        """stability: one row near 0 and one near 1000 (float64)"""
        x = torch.stack([randn(6, seed=106, dtype=torch.float64), randn(6, seed=107, dtype=torch.float64) + 1000.0])
        self.expect(student, x)

    def test_masked_logits(self, student):
        """masked logits (−inf) get log-probability −inf, the others stay finite"""
        x = randn(3, 5, seed=108)
        x[:, 3:] = float("-inf")
        self.expect(student, x)


# -- cross_entropy ----------------------------------------------------------------------------

def _nll_rows(log_probs, targets, ignore_index, zero_ignored=True):
    """(N,) negative log-likelihoods of the targets (ignored rows: 0, or scored as class 0)."""
    keep = targets != ignore_index
    rows = -log_probs.gather(1, targets.masked_fill(~keep, 0).unsqueeze(1)).squeeze(1)
    return rows.masked_fill(~keep, 0.0) if zero_ignored else rows, keep


def _reduce(rows, keep, reduction, mean_over_all=False):
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / (rows.shape[0] if mean_over_all else keep.sum())


def _ce(log_probs_of, zero_ignored=True, mean_over_all=False, reduction_override=None, hard_coded_ignore=False, drop_ignored=False):
    """A cross-entropy built from `log_probs_of(logits)`, with the broken variants as switches."""
    def compute(logits, targets, ignore_index=-100, reduction="mean"):
        rows, keep = _nll_rows(log_probs_of(logits), targets, -100 if hard_coded_ignore else ignore_index, zero_ignored)
        if drop_ignored and reduction == "none":
            return rows[keep]
        return _reduce(rows, keep, reduction_override or reduction, mean_over_all)
    return compute


NOT_A_TENSOR = Mistake("returned a Python number, not a 0-d tensor", "return the loss tensor itself (no .item() or float()): a 0-d tensor in the dtype of "
                       "the logits, which autograd can backpropagate through.")


def _stable(logits):
    return F.log_softmax(logits, dim=-1)


class TestCrossEntropy(LargeInputs, Exercise):
    function = "cross_entropy"
    forbidden = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss",
                 "torch.nn.NLLLoss", *LOG_SOFTMAX_APIS, *LOGSUMEXP_APIS)
    substitutes = ("log_softmax",)
    mistakes = (
        Mistake("ignore_index not used (hard-coded −100)", "compare the targets with the `ignore_index` argument, not with −100.",
                _ce(_stable, hard_coded_ignore=True)),
        Mistake("ignored rows not zeroed (scored as class 0)", "targets equal to ignore_index contribute nothing: set their loss to 0 (also in reduction='none') and leave them out of the mean.",
                _ce(_stable, zero_ignored=False, mean_over_all=True)),
        Mistake("mean over all N targets (ignored ones counted)", "'mean' divides by the number of targets that are not ignored, (targets != ignore_index).sum().",
                _ce(_stable, mean_over_all=True)),
        Mistake("softmax over the wrong dim (dim 0)", "logits are (N, C): normalise each row over the C classes (dim=-1).",
                _ce(lambda logits: F.log_softmax(logits, dim=0))),
        Mistake("softmax applied twice (the loss was given probabilities)", "cross-entropy takes raw logits: apply log-softmax once, to the logits.",
                _ce(lambda logits: F.log_softmax(torch.softmax(logits, -1), -1))),
        Mistake("sign flipped (log-likelihood instead of its negative)", "the loss is the NEGATIVE log-likelihood: −log p(target).",
                _ce(lambda logits: -F.log_softmax(logits, -1))),
        Mistake("log(softmax(x)) (inf when a target's probability underflows)", "use the stable log-softmax x − m − log Σ exp(x − m) instead of log(softmax(x)).",
                _ce(lambda logits: torch.softmax(logits, -1).log())),
        Mistake("no max-shift before exp (overflows on large logits)", "exp(1000) is inf: subtract the row max before exp (log-softmax).",
                _ce(lambda logits: logits - logits.exp().sum(-1, keepdim=True).log())),
        Mistake("reduction ignored (always the mean)", "return the (N,) losses for 'none', their sum for 'sum', and their mean for 'mean'.",
                _ce(_stable, reduction_override="mean")),
        Mistake("reduction ignored (always the sum)", "return the (N,) losses for 'none', their sum for 'sum', and their mean for 'mean'.",
                _ce(_stable, reduction_override="sum")),
        Mistake("ignored rows dropped from 'none' (shape (kept,), not (N,))", "reduction='none' returns one loss per row, (N,), with 0 at the ignored rows: zero them instead of removing them.",
                _ce(_stable, drop_ignored=True)),
        NOT_A_TENSOR,
    )

    @staticmethod
    def reference(logits, targets, ignore_index=-100, reduction="mean"):
        return F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction=reduction)

    def test_worked_example(self, student):
        """worked example: logits [2.0, 1.0, 0.1] with label 0 give 0.4170"""
        self.expect(student, torch.tensor([[2.0, 1.0, 0.1]]), torch.tensor([0]))

    def test_reductions_return_tensors(self, student):
        """'mean' and 'sum' return 0-d tensors in the dtype of the logits (float32 and float64)"""
        targets = torch.tensor([2, -100, 0, 1])
        for dtype, reduction in ((torch.float32, "mean"), (torch.float64, "sum")):
            logits = randn(4, 3, seed=207, dtype=dtype)
            got = self.expect(student, logits, targets, reduction=reduction)
            if not isinstance(got, torch.Tensor):
                raise CheckFailed(f"{self.describe_call((logits, targets), {'reduction': reduction})} returned {type(got).__name__} {got!r}, "
                                  f"expected a 0-d {str(dtype).removeprefix('torch.')} tensor", NOT_A_TENSOR)

    def test_mean_float32(self, student):
        """'mean' over N=6 rows of C=4 classes, float32"""
        self.expect(student, randn(6, 4, seed=200, scale=2.0), torch.tensor([3, 0, 1, 1, 2, 0]))

    def test_mean_with_ignored_float64(self, student):
        """'mean' with 3 of 8 targets = −100 (padding), float64"""
        targets = torch.tensor([4, -100, 0, 2, -100, 1, -100, 3])
        self.expect(student, randn(8, 5, seed=201, dtype=torch.float64, scale=2.0), targets)

    def test_sum_with_ignored(self, student):
        """'sum' with ignored targets, float32"""
        targets = torch.tensor([2, 0, -100, 1, 2, -100, 0])
        self.expect(student, randn(7, 3, seed=202, scale=2.0), targets, reduction="sum")

    def test_none_with_ignored(self, student):
        """'none' returns (N,) losses with 0 at ignored rows, float64"""
        targets = torch.tensor([1, -100, 3, 0, -100, 2])
        self.expect(student, randn(6, 4, seed=203, dtype=torch.float64, scale=2.0), targets, reduction="none")

    def test_custom_ignore_index(self, student):
        """ignore_index=1 (a real class id): rows with target 1 are left out"""
        targets = torch.tensor([1, 0, 2, 1, 3, 0, 1, 2, 4])
        self.expect(student, randn(9, 5, seed=204, dtype=torch.float64, scale=2.0), targets, ignore_index=1)

    def test_uniform_logits(self, student):
        """equal logits over C=6 classes give a loss of log 6 (float64)"""
        self.expect(student, torch.full((3, 6), 0.7, dtype=torch.float64), torch.tensor([5, 0, 2]))

    def test_large_logits_float64(self, student):
        """stability: logits near 1000, float64, 'sum'"""
        self.expect(student, randn(5, 4, seed=205, dtype=torch.float64, shift=1000.0), torch.tensor([0, 3, 1, 2, 2]), reduction="sum")

    def test_large_logits_float32(self, student):
        """stability: logits near 1000 in float32, 'mean' (tolerance 8 eps x 1000)"""
        with self.tolerance_for_magnitude(1000.0):
            self.expect(student, randn(5, 4, seed=206, shift=1000.0), torch.tensor([1, 0, 3, 3, 2]))

    def test_very_unlikely_targets(self, student):
        """stability: a target 1000 below the best logit costs ~1000, not inf ('none', float32)"""
        logits = torch.tensor([[1000.0, 0.0, -3.0], [0.5, 2.0, -1.0], [0.0, 0.0, 900.0], [4.0, 1.0, 2.0]])
        self.expect(student, logits, torch.tensor([1, 1, 0, 2]), reduction="none")


# -- gaussian_mle -----------------------------------------------------------------------------

def _centred_sum(x):
    return (x - x.mean()).square().sum()


def _gaussian_log_likelihood(x, mu, var):
    return (-0.5 * x.shape[0] * math.log(2 * math.pi * var) - ((x - mu) ** 2).sum().item() / (2 * var))


ONE_PASS = Mistake("one-pass variance E[x²] − μ² (cancels when the data sit far from 0)",
                   "with data near 1e4, E[x²] and μ² are both ~1e8 and float32 keeps ~7 digits, so their difference is rounding noise: "
                   "subtract the mean first, σ² = mean((x − μ)²).")
OFFSET = 1e4


class TestGaussianMle(Exercise):
    function = "gaussian_mle"
    # Mistakes are written without torch.var/std: x.var() on one sample warns, and warnings from
    # the grader itself would reach the test cell's stderr.
    mistakes = (
        Mistake("unbiased variance (divided by N − 1)", "the maximum-likelihood variance divides by N: mean((x − μ)²), i.e. correction=0.",
                lambda x: (x.mean(), _centred_sum(x) / (x.shape[0] - 1))),
        Mistake("standard deviation instead of variance", "return σ², the mean of (x − μ)², without the square root.",
                lambda x: (x.mean(), (_centred_sum(x) / x.shape[0]).sqrt())),
        Mistake("unbiased standard deviation (x.std())", "return the variance mean((x − μ)²): no square root, and divide by N, not N − 1.",
                lambda x: (x.mean(), (_centred_sum(x) / (x.shape[0] - 1)).sqrt())),
        Mistake("variance not centred (mean of x², not of (x − μ)²)", "subtract the mean before squaring: σ² = mean((x − μ)²).",
                lambda x: (x.mean(), x.square().mean())),
        Mistake("(var, mu) returned in the wrong order", "return the pair as (mu, var).",
                lambda x: (_centred_sum(x) / x.shape[0], x.mean())),
        Mistake("squared the mean deviation ((mean(x − μ))² = 0)", "square each deviation before averaging: σ² = mean((x − μ)²), not (mean(x − μ))².",
                lambda x: (x.mean(), (x - x.mean()).mean() ** 2)),
        ONE_PASS,
    )

    @staticmethod
    def reference(x):
        return x.mean(), _centred_sum(x) / x.shape[0]

    def test_worked_example(self, student):
        """worked example: [1, 2, 3, 4] gives mu = 2.5, var = 1.25"""
        self.expect(student, torch.tensor([1.0, 2.0, 3.0, 4.0]))

    def test_float64_small_sample(self, student):
        """7 samples of N(3, 2²), float64"""
        self.expect(student, randn(7, seed=300, dtype=torch.float64, scale=2.0, shift=3.0))

    def test_float32_large_sample(self, student):
        """1000 samples of N(−1, 0.5²), float32"""
        self.expect(student, randn(1000, seed=301, scale=0.5, shift=-1.0))

    def test_large_offset_float32(self, student):
        """1000 samples of 1e4 + N(0, 1) in float32: the variance must not depend on the offset"""
        x = randn(1000, seed=303, shift=OFFSET)
        try:
            self.expect(student, x)
        except CheckFailed as failure:
            raise CheckFailed(str(failure), failure.mistake or self._offset_mistake(student, x)) from None

    def _offset_mistake(self, student, x):
        """ONE_PASS when var is wrong for x but right for the same samples without the offset."""
        centred = x - OFFSET                                                   # exact in float32 (Sterbenz)
        want = _centred_sum(centred.double()) / x.shape[0]
        got, plain = self.call(student, x), self.call(student, centred)
        pairs = all(isinstance(r, (tuple, list)) and len(r) == 2 for r in (got, plain))
        return ONE_PASS if pairs and not matches(got[1], want, torch.float32) and matches(plain[1], want, torch.float32) else None

    def test_maximises_the_likelihood(self, student):
        """the estimate beats nearby (mu, var) in Gaussian log-likelihood (9 samples, float64)"""
        x = randn(9, seed=302, dtype=torch.float64, scale=2.0, shift=1.5)
        got = self.call(student, x)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed(f"gaussian_mle(x) should return a pair (mu, var), got {type(got).__name__}")
        try:
            mu, var = (float(v) for v in got)
        except (TypeError, ValueError, RuntimeError):
            raise CheckFailed("gaussian_mle(x) should return two numbers (or 0-d tensors): (mu, var)") from None
        if not (math.isfinite(mu) and math.isfinite(var) and var > 0):
            raise CheckFailed(f"gaussian_mle(x) returned mu = {mu}, var = {var}: var must be a finite positive number")
        best = _gaussian_log_likelihood(x, mu, var)
        sd = math.sqrt(var)
        for mu2, var2 in ((mu + 0.05 * sd, var), (mu - 0.05 * sd, var), (mu, var * 1.1), (mu, var * 0.9)):
            other = _gaussian_log_likelihood(x, mu2, var2)
            if other > best + 1e-9:
                raise CheckFailed(f"log-likelihood of the 9 samples at your (mu, var) = ({mu:.4f}, {var:.4f}) is {best:.5f}, but "
                                  f"({mu2:.4f}, {var2:.4f}) gives {other:.5f}: your estimate is not the maximum",
                                  self.diagnose(got, (x,), {}, torch.float64))


# -- gaussian_posterior -----------------------------------------------------------------------

def _posterior(x, prior_mean, prior_var, noise_var):
    """Conjugate update of a Gaussian mean: precisions add, the mean is precision-weighted."""
    var = 1.0 / (1.0 / prior_var + x.shape[0] / noise_var)
    return var * (prior_mean / prior_var + x.sum() / noise_var), torch.tensor(var, dtype=x.dtype)


def _posterior_with_noise(noise_var_of):
    """The posterior computed with `noise_var_of(x)` in place of the known noise variance."""
    return lambda x, prior_mean, prior_var, noise_var: _posterior(x, prior_mean, prior_var, noise_var_of(x))


def _posterior_one_observation(x, prior_mean, prior_var, noise_var, total=False):
    """N ignored: the precision of one observation, fed the sample mean (or the sum)."""
    var = 1.0 / (1.0 / prior_var + 1.0 / noise_var)
    return var * (prior_mean / prior_var + (x.sum() if total else x.mean()) / noise_var), torch.tensor(var, dtype=x.dtype)


def _posterior_variances_added(x, prior_mean, prior_var, noise_var, right_mean=False):
    var = prior_var + noise_var / x.shape[0]
    mean = _posterior(x, prior_mean, prior_var, noise_var)[0] if right_mean else var * (prior_mean / prior_var + x.sum() / noise_var)
    return mean, torch.tensor(var, dtype=x.dtype)


def _posterior_weights_swapped(x, prior_mean, prior_var, noise_var):
    """Each mean weighted by its own variance: (τ² μ0 + (σ²/N) x̄) / (τ² + σ²/N)."""
    data_var = noise_var / x.shape[0]
    mean = (prior_var * prior_mean + data_var * x.mean()) / (prior_var + data_var)
    return mean, _posterior(x, prior_mean, prior_var, noise_var)[1]


def _posterior_mean_of_empty(x, prior_mean, prior_var, noise_var):
    """Σ x written as N · x.mean(): right for N >= 1, nan for N = 0."""
    mean, var = _posterior(x, prior_mean, prior_var, noise_var)
    return var * (prior_mean / prior_var + x.shape[0] * x.mean() / noise_var), var


def _sample_variance(x, correction):
    return ((x - x.mean()).square().sum() / (x.shape[0] - correction)).item()


def _pair(result):
    """(mean, var) as Python floats, or a failed check saying the result is not such a pair."""
    try:
        mean, var = (float(v) for v in result)
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"gaussian_posterior should return a pair of numbers (mean, var), got {describe(result)}") from None
    return mean, var


POSTERIOR_N_IGNORED = "N ignored (the precision of one observation)"
POSTERIOR_EMPTY = Mistake("x.mean() of an empty x is nan (N = 0)", "with no data the posterior is the prior: use x.sum() (0 for an empty x) and N = x.shape[0], "
                          "not x.mean(), which is nan when N = 0.", _posterior_mean_of_empty)


class TestGaussianPosterior(Exercise):
    function = "gaussian_posterior"
    mistakes = (
        Mistake(POSTERIOR_N_IGNORED, "N observations add N / noise_var to the precision: 1 / var = 1 / prior_var + N / noise_var.",
                _posterior_one_observation),
        Mistake(POSTERIOR_N_IGNORED, "N observations add N / noise_var to the precision: 1 / var = 1 / prior_var + N / noise_var.",
                lambda *args: _posterior_one_observation(*args, total=True)),
        Mistake("variances added instead of precisions", "combining information adds precisions (inverse variances): 1 / var = 1 / prior_var + N / noise_var; "
                "the posterior is narrower than the prior, never wider.", _posterior_variances_added),
        Mistake("variances added instead of precisions", "combining information adds precisions (inverse variances): 1 / var = 1 / prior_var + N / noise_var; "
                "the posterior is narrower than the prior, never wider.", lambda *args: _posterior_variances_added(*args, right_mean=True)),
        Mistake("prior ignored (the MLE: x̄ and noise_var / N)", "the posterior combines the prior with the data: mean = var · (prior_mean / prior_var + Σx / noise_var), "
                "1 / var = 1 / prior_var + N / noise_var.",
                lambda x, prior_mean, prior_var, noise_var: (x.mean(), torch.tensor(noise_var / x.shape[0], dtype=x.dtype))),
        Mistake("prior_mean ignored (taken as 0)", "the prior pulls towards prior_mean, not towards 0: add prior_mean / prior_var inside the bracket.",
                lambda x, prior_mean, prior_var, noise_var: _posterior(x, 0.0, prior_var, noise_var)),
        Mistake("means weighted by their variances, not their precisions", "the more certain source gets the larger weight: weight prior_mean by 1 / prior_var and "
                "x̄ by N / noise_var (precisions), not by the variances.", _posterior_weights_swapped),
        Mistake("spread of x used instead of the known noise_var", "the noise variance is given (noise_var): use it, not the sample variance of x.",
                _posterior_with_noise(lambda x: _sample_variance(x, 1))),
        Mistake("spread of x used instead of the known noise_var", "the noise variance is given (noise_var): use it, not the sample variance of x.",
                _posterior_with_noise(lambda x: _sample_variance(x, 0))),
        Mistake("standard deviation instead of variance", "return the posterior variance 1 / (1 / prior_var + N / noise_var), without a square root.",
                lambda *args: (lambda mean, var: (mean, var.sqrt()))(*_posterior(*args))),
        Mistake("(var, mean) returned in the wrong order", "return the pair as (mean, var).",
                lambda *args: _posterior(*args)[::-1]),
        POSTERIOR_EMPTY,
    )

    @staticmethod
    def reference(x, prior_mean, prior_var, noise_var):
        return _posterior(x, prior_mean, prior_var, noise_var)

    def test_worked_example(self, student):
        """worked example: x = [2, 4, 9], prior N(0.5, 2), noise_var 4 give (3.2, 0.8)"""
        self.expect(student, torch.tensor([2.0, 4.0, 9.0]), 0.5, 2.0, 4.0)

    def test_float64(self, student):
        """25 samples of N(2, 1.5²), prior N(−1, 0.5), noise_var 2.25, float64"""
        self.expect(student, randn(25, seed=700, dtype=torch.float64, scale=1.5, shift=2.0), -1.0, 0.5, 2.25)

    def test_float32_many_samples(self, student):
        """400 samples of N(−4, 3²), prior N(1, 4), noise_var 9, float32: the data dominate"""
        self.expect(student, randn(400, seed=701, scale=3.0, shift=-4.0), 1.0, 4.0, 9.0)

    def test_confident_prior(self, student):
        """a confident prior N(−1, 0.01) against 10 samples near 5 (noise_var 1.5, float64)"""
        self.expect(student, randn(10, seed=702, dtype=torch.float64, shift=5.0), -1.0, 0.01, 1.5)

    def test_one_sample(self, student):
        """one sample x = [3] (N = 1), prior N(1, 3), noise_var 0.5, float64"""
        self.expect(student, torch.tensor([3.0], dtype=torch.float64), 1.0, 3.0, 0.5)

    def test_no_data_is_the_prior(self, student):
        """no data (N = 0): the posterior is the prior N(−0.7, 1.3) (float64)"""
        args = (torch.zeros(0, dtype=torch.float64), -0.7, 1.3, 2.0)
        got = self.call(student, *args)
        problem = difference(got, self.reference(*args), torch.float64)
        if problem:
            raise CheckFailed(f"{self.describe_call(args, {})}: {problem}; with no data the posterior is the prior, (−0.7, 1.3)",
                              self.diagnose(got, args, {}, torch.float64, sole=True))

    def test_sequential_updates(self, student):
        """updating on 6 samples, then on 9 more with that posterior as the prior, equals one update on all 15"""
        x = randn(15, seed=703, dtype=torch.float64, scale=2.0, shift=1.0)
        whole = _pair(self.call(student, x, 0.5, 1.5, 4.0))
        mean, var = _pair(self.call(student, x[:6], 0.5, 1.5, 4.0))
        again = self.call(student, x[6:], mean, var, 4.0)
        problem = difference(again, whole, torch.float64)
        if problem:
            raise CheckFailed(f"the posterior of the first 6 samples, ({mean:.6g}, {var:.6g}), used as the prior of the other 9 should give your "
                              f"posterior of all 15, ({whole[0]:.6g}, {whole[1]:.6g}): {problem}. Bayes' rule applied in two steps gives the "
                              f"same answer (yesterday's posterior is today's prior)", self.diagnose(again, (x[6:], mean, var, 4.0), {}, torch.float64))
        self.expect(student, x, 0.5, 1.5, 4.0)


# -- map_linear_regression --------------------------------------------------------------------

def _ridge(X, y, lam, gram=None, rhs=None, shift=None):
    """Solve (XᵀX + λI) w = Xᵀy, or a broken variant of it."""
    A = X.T @ X if gram is None else gram
    A = A + lam * torch.eye(A.shape[0], dtype=X.dtype) if shift is None else A + shift
    return torch.linalg.solve(A, X.T @ y if rhs is None else rhs)


def _with_lambda(lam_of):
    return lambda X, y, noise_var, prior_var: _ridge(X, y, lam_of(noise_var, prior_var))


MAP_GRAM_TRANSPOSED = Mistake("X Xᵀ (N, N) instead of Xᵀ X (d, d)", "X is (N, d): the matrix to solve with is XᵀX + λI, which is (d, d), "
                              "and the right-hand side is Xᵀy (d,).",
                              lambda X, y, noise_var, prior_var: _ridge(X, y, noise_var / prior_var, gram=X @ X.T))
SQUARE_PROBE = (randn(4, 4, seed=619, dtype=torch.float64), randn(4, seed=618, dtype=torch.float64), 0.5, 2.0)


class TestMapLinearRegression(Exercise):
    function = "map_linear_regression"
    # A float32 solve loses about cond(XᵀX + λI) x eps: solve, inv, pinv, Cholesky, lstsq on the
    # augmented system, the dual form and gradient descent all stay within 1.3e-6 (relative) of the
    # float64 reference here, and room is left for iterative solvers; every mistake is off by >= 3e-3.
    tolerance = {torch.float32: 1e-4}
    mistakes = (
        Mistake("no prior (plain least squares)", "the prior adds λ = noise_var / prior_var to the diagonal: solve (XᵀX + λI) w = Xᵀy.",
                _with_lambda(lambda noise_var, prior_var: 0.0)),
        Mistake("ratio inverted (λ = prior_var / noise_var)", "λ = σ² / τ² = noise_var / prior_var: more noise or a tighter prior shrinks more.",
                _with_lambda(lambda noise_var, prior_var: prior_var / noise_var)),
        Mistake("λ = 1 / prior_var (noise_var left out)", "the likelihood term is ‖y − Xw‖² / (2 noise_var): multiplying through by noise_var gives "
                "λ = noise_var / prior_var, not 1 / prior_var.", _with_lambda(lambda noise_var, prior_var: 1.0 / prior_var)),
        Mistake("λ = noise_var · prior_var", "λ = noise_var / prior_var: divide by the prior variance.",
                _with_lambda(lambda noise_var, prior_var: noise_var * prior_var)),
        Mistake("λ² on the diagonal", "add λ = noise_var / prior_var itself to the diagonal, not its square.",
                _with_lambda(lambda noise_var, prior_var: (noise_var / prior_var) ** 2)),
        Mistake("λ added to every entry of XᵀX (no identity)", "`XᵀX + λ` adds λ to every entry: add λ·I, i.e. only to the diagonal "
                "(torch.eye(d, dtype=X.dtype)).",
                lambda X, y, noise_var, prior_var: _ridge(X, y, None, shift=noise_var / prior_var)),
        Mistake("λ subtracted (sign error)", "the prior's gradient w / prior_var has the same sign as the data term's XᵀXw / noise_var: "
                "(XᵀX + λI) w = Xᵀy, with a plus.", _with_lambda(lambda noise_var, prior_var: -noise_var / prior_var)),
        Mistake("Xᵀy not divided by noise_var (precision form)", "in the form (XᵀX / σ² + I / τ²) w = Xᵀy / σ², divide both sides by σ² = noise_var.",
                lambda X, y, noise_var, prior_var: _ridge(X, y, None, gram=X.T @ X / noise_var, shift=torch.eye(X.shape[1], dtype=X.dtype) / prior_var)),
        Mistake("λ added to Xᵀy instead of the diagonal", "the prior changes the matrix, not the right-hand side: (XᵀX + λI) w = Xᵀy.",
                lambda X, y, noise_var, prior_var: _ridge(X, y, 0.0, rhs=X.T @ y + noise_var / prior_var)),
        MAP_GRAM_TRANSPOSED,
    )

    @staticmethod
    def reference(X, y, noise_var, prior_var):
        return _ridge(X, y, noise_var / prior_var)

    def expect(self, student, *args, **kwargs):
        """As Exercise.expect; a call that raises for N != d is named by what it returns for a square X."""
        try:
            return super().expect(student, *args, **kwargs)
        except CheckFailed as failure:
            X = args[0]
            if failure.mistake is not None or " raised " not in str(failure) or X.shape[0] == X.shape[1]:
                raise
            try:
                square = self.call(student, *SQUARE_PROBE)
            except CheckFailed:
                raise failure from None
            named = MAP_GRAM_TRANSPOSED if matches(square, MAP_GRAM_TRANSPOSED.compute(*SQUARE_PROBE), torch.float64) \
                and not matches(square, self.reference(*SQUARE_PROBE), torch.float64) else None
            raise CheckFailed(str(failure), named) from None

    def test_worked_example(self, student):
        """worked example: X (3, 2), noise_var 2, prior_var 0.5 (λ = 4) give w = [19/35, 26/35]"""
        self.expect(student, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([1.0, 2.0, 3.0]), 2.0, 0.5)

    def test_float32(self, student):
        """X (10, 4), noise_var 0.3, prior_var 1.5, float32"""
        self.expect(student, randn(10, 4, seed=600), randn(10, seed=601), 0.3, 1.5)

    def test_float64_strong_prior(self, student):
        """X (12, 5), noise_var 1.5, prior_var 0.25 (λ = 6), float64"""
        self.expect(student, randn(12, 5, seed=602, dtype=torch.float64), randn(12, seed=603, dtype=torch.float64, scale=2.0), 1.5, 0.25)

    def test_more_features_than_samples(self, student):
        """N = 4 < d = 7 (XᵀX is singular; the prior makes the system solvable), float64"""
        self.expect(student, randn(4, 7, seed=620, dtype=torch.float64), randn(4, seed=621, dtype=torch.float64), 0.5, 2.0)

    def test_ill_conditioned_float64(self, student):
        """two almost equal features (least squares gives weights near ±400; the prior keeps them small), float64"""
        self.expect(student, _nearly_collinear(20, 3, seed=610, dtype=torch.float64), randn(20, seed=612, dtype=torch.float64), 0.3, 2.0)

    def test_ill_conditioned_float32(self, student):
        """the same almost equal features in float32, noise_var 0.2, prior_var 0.5"""
        self.expect(student, _nearly_collinear(20, 3, seed=610), randn(20, seed=613), 0.2, 0.5)

    def test_large_values_float32(self, student):
        """X (30, 6) of scale 3, y of scale 5, noise_var 2, prior_var 0.05 (λ = 40), float32"""
        self.expect(student, randn(30, 6, seed=630, scale=3.0), randn(30, seed=631, scale=5.0), 2.0, 0.05)

    def test_only_the_ratio_matters(self, student):
        """multiplying noise_var and prior_var by the same 100 leaves w unchanged (float64)"""
        X, y = randn(9, 3, seed=640, dtype=torch.float64), randn(9, seed=641, dtype=torch.float64, scale=2.0)
        small = self.call(student, X, y, 0.2, 0.8)
        large = self.call(student, X, y, 20.0, 80.0)
        problem = difference(large, small, torch.float64)
        if problem:
            raise CheckFailed(f"map_linear_regression(X, y, 0.2, 0.8) and (X, y, 20.0, 80.0) should give the same w (only λ = noise_var / prior_var "
                              f"enters); taking the first as expected, the second {problem.removeprefix('result ')}", self.diagnose(large, (X, y, 20.0, 80.0), {}, torch.float64))
        self.expect(student, X, y, 20.0, 80.0)


def _nearly_collinear(N, d, seed, dtype=torch.float32):
    """(N, d) features whose column 1 is column 0 plus 1e-3 noise: XᵀX has an eigenvalue near 1e-5."""
    X = randn(N, d, seed=seed, dtype=torch.float64)
    X[:, 1] = X[:, 0] + 1e-3 * randn(N, seed=seed + 1, dtype=torch.float64)
    return X.to(dtype)


# -- kl_divergence ----------------------------------------------------------------------------

def _kl(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)


def _distributions(*shape, seed, dtype=torch.float32, scale=1.5):
    return torch.softmax(randn(*shape, seed=seed, dtype=torch.float64, scale=scale), -1).to(dtype)


class TestKlDivergence(Exercise):
    function = "kl_divergence"
    forbidden = ("torch.distributions", "torch.nn.functional.kl_div", "torch.nn.KLDivLoss")
    mistakes = (
        Mistake("KL reversed (computed KL(q ‖ p))", "D_KL(P ‖ Q) = Σ p log(p / q): weight by p, the first argument.",
                lambda p, q: _kl(q, p)),
        Mistake("0 · log 0 gives nan", "where p = 0 the term is 0 by convention: use torch.where(p > 0, ..., 0) or torch.xlogy.",
                lambda p, q: (p * (p / q).log()).sum(-1)),
        Mistake("log base 2 (bits instead of nats)", "use the natural log (torch.log): this course measures KL in nats.",
                lambda p, q: _kl(p, q) / math.log(2.0)),
        Mistake("cross-entropy instead of KL (−Σ p log q)", "KL = Σ p log p − Σ p log q: add the Σ p log p term (minus the entropy of p).",
                lambda p, q: -torch.xlogy(p, q).sum(-1)),
        Mistake("summed over every dimension", "sum over the last dim only: a (B, C) batch gives B divergences.",
                lambda p, q: _kl(p, q).sum()),
        Mistake("summed over dim 0 instead of the last dim", "the classes are the last dim: sum(dim=-1).",
                lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(0)),
        Mistake("summed over dim 1 (right only for 2-D p)", "p may be (C,), (B, C) or (B, T, C): sum over the last dim, sum(dim=-1).",
                lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(1)),
        Mistake("log ratio inverted (Σ p log(q / p), the negative of KL)", "D_KL(P ‖ Q) = Σ p log(p / q) ≥ 0: p over q inside the log.",
                lambda p, q: -_kl(p, q)),
    )

    @staticmethod
    def reference(p, q):
        return _kl(p, q)

    def test_worked_example(self, student):
        """worked example: KL([0.5, 0.5] ‖ [0.9, 0.1]) = 0.5108 and KL(p ‖ p) = 0"""
        p = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
        self.expect(student, p, torch.tensor([[0.9, 0.1], [0.25, 0.75]]))

    def test_batch_float32(self, student):
        """(4, 6) batch of distributions, float32"""
        self.expect(student, _distributions(4, 6, seed=400), _distributions(4, 6, seed=401))

    def test_batched_float64(self, student):
        """(2, 3, 5) float64 gives (2, 3)"""
        self.expect(student, _distributions(2, 3, 5, seed=402, dtype=torch.float64), _distributions(2, 3, 5, seed=403, dtype=torch.float64))

    def test_single_distribution(self, student):
        """one distribution over 7 classes gives a 0-d result (float64)"""
        self.expect(student, _distributions(7, seed=404, dtype=torch.float64), _distributions(7, seed=405, dtype=torch.float64))

    def test_zeros_in_p(self, student):
        """0 · log 0 = 0: classes with p = 0 (and one with p = q = 0) add nothing"""
        p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
        q = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.2, 0.0], [0.4, 0.3, 0.2, 0.1]])
        self.expect(student, p, q)

    def test_tiny_probabilities(self, student):
        """tiny probabilities (q = 1e-10, p = 1e-20) in float32, against the exact formula"""
        p = torch.tensor([[0.7, 0.3, 1e-12, 0.0], [1e-20, 0.5, 0.5, 0.0]])
        q = torch.tensor([[1e-10, 0.6, 0.4, 0.0], [0.3, 0.2, 0.5 - 1e-10, 1e-10]])
        self.expect(student, p, q)

    def test_equal_distributions_and_many_pairs(self, student):
        """KL(p ‖ p) = 0, and 50 random pairs over 9 classes (float64)"""
        p = _distributions(50, 9, seed=406, dtype=torch.float64, scale=2.0)
        self.expect(student, p, p.clone())
        self.expect(student, p, _distributions(50, 9, seed=407, dtype=torch.float64, scale=2.0))


# -- sample_categorical -----------------------------------------------------------------------

def _chi2_limit(dof, p_value=1e-6):
    """x with P(chi-square(dof) > x) = p_value, for an even dof (closed form of the tail + bisection)."""
    assert dof % 2 == 0
    def tail(x):
        return math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(dof // 2))
    low, high = 0.0, 1000.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if tail(mid) > p_value else (low, mid)
    return high


BLOCK_LOGITS = torch.tensor([[2.0, 1.0, 0.1, -0.5, 0.5],
                             [0.0, -1.0, 1.5, 0.3, -0.2],
                             [-0.3, 0.8, 0.0, 1.2, -1.5]])    # (3, C=5): three different distributions
DRAWS_PER_BLOCK = 4000
CHI2_DOF = BLOCK_LOGITS.shape[0] * (BLOCK_LOGITS.shape[1] - 1)
CHI2_LIMIT = _chi2_limit(CHI2_DOF)   # 50.8 for 12 dof: a correct sampler fails with probability 1e-6


def _softmax_rows(logits, temperature):
    return torch.softmax(logits / temperature, -1)


def _argmax_one_hot(logits, temperature=1.0, generator=None):
    return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def _batch_dim_softmax(logits, temperature=1.0, generator=None):
    weights = torch.softmax(logits / temperature, 0)          # what torch.multinomial then normalises per row
    return weights / weights.sum(-1, keepdim=True)


GENERATOR_IGNORED = Mistake("generator ignored", "draw with the `generator` you are given: torch.multinomial(..., generator=generator) or torch.rand(..., generator=generator).", None)
NOT_SQUEEZED = Mistake("sample dim not squeezed ((N, 1) instead of (N,))", "torch.multinomial(probs, 1) returns (N, 1): take .squeeze(1) (or [:, 0]) to get one index per row.", None)
ZERO_TEMPERATURE = Mistake("temperature 0 not handled (logits / 0)", "logits / 0 is ±inf or nan: return logits.argmax(-1) when temperature == 0, before dividing.", None)


class TestSampleCategorical(Exercise):
    function = "sample_categorical"
    forbidden = ("torch.distributions",)
    substitutes = ("log_softmax",)
    # For a sampler, each mistake's `compute` gives the (N, C) probabilities its draws follow.
    mistakes = (
        Mistake("temperature ignored", "divide the logits by the temperature before the softmax: softmax(logits / T).",
                lambda logits, temperature=1.0, generator=None: _softmax_rows(logits, 1.0)),
        Mistake("temperature multiplied instead of divided", "T > 1 must flatten the distribution: use logits / T, not logits * T.",
                lambda logits, temperature=1.0, generator=None: torch.softmax(logits * temperature, -1)),
        Mistake("always the argmax (no sampling)", "draw at random from softmax(logits / T) (e.g. torch.multinomial); only T = 0 returns the argmax.",
                _argmax_one_hot),
        Mistake("softmax over the batch dim (dim 0)", "each row is its own distribution: softmax over the last dim (the classes).",
                _batch_dim_softmax),
        GENERATOR_IGNORED,
        NOT_SQUEEZED,
        ZERO_TEMPERATURE,
    )

    @staticmethod
    def reference(logits, temperature=1.0, generator=None):
        """The (N, C) probabilities the draws must follow (a one-hot at the argmax for T = 0)."""
        if temperature == 0:
            return _argmax_one_hot(logits)
        return _softmax_rows(logits, temperature)

    def draws(self, student, logits, **kwargs):
        """The student's draws for `logits` (N, C): checked to be int64 indices of shape (N,) in [0, C)."""
        got, (after,), _ = self.call_with_inputs(student, logits, **kwargs)
        call = self.describe_call((logits,), {k: v for k, v in kwargs.items() if k != "generator"})
        if modified(logits, after, "logits"):
            raise CheckFailed(f"{self.function} modified its input `logits` in place; work on a copy")
        N, C = logits.shape
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{call} should return a tensor of {N} class indices, got {type(got).__name__}")
        if got.shape != (N,):
            raise CheckFailed(f"{call} returned shape {tuple(got.shape)}, expected ({N},): one index per row",
                              NOT_SQUEEZED if got.shape == (N, 1) else None)
        if got.dtype != torch.int64:
            raise CheckFailed(f"{call} returned dtype {got.dtype}, expected torch.int64 class indices")
        if len(got) and (got.min() < 0 or got.max() >= C):
            raise CheckFailed(f"{call} returned indices outside [0, {C}): min {got.min().item()}, max {got.max().item()}")
        return got

    def expect_distribution(self, student, temperature, dtype, seed):
        """Draw DRAWS_PER_BLOCK times from each row of BLOCK_LOGITS and chi-square test the counts."""
        logits = BLOCK_LOGITS.to(dtype).repeat_interleave(DRAWS_PER_BLOCK, dim=0)      # (3 * M, C)
        got = self.draws(student, logits, temperature=temperature, generator=seeded(seed))
        blocks, C = BLOCK_LOGITS.shape
        counts = torch.stack([torch.bincount(b, minlength=C) for b in got.view(blocks, DRAWS_PER_BLOCK)]).double()  # (3, C)
        score = _chi2(counts, self.reference(logits.double(), temperature))
        if score <= CHI2_LIMIT:
            return
        expected = self.reference(BLOCK_LOGITS.double(), temperature)
        message = (f"{self.function}(logits, temperature={temperature}) over {DRAWS_PER_BLOCK} draws from each of 3 rows "
                   f"({str(dtype).removeprefix('torch.')}): the frequencies do not follow softmax(logits / T) "
                   f"(chi-square {score:.1f} > {CHI2_LIMIT:.1f}, {CHI2_DOF} dof, p = 1e-6). Row 0: frequencies "
                   f"{[round(v, 3) for v in (counts[0] / DRAWS_PER_BLOCK).tolist()]}, expected {[round(v, 3) for v in expected[0].tolist()]}")
        raise CheckFailed(message, next((m for m in self.mistakes if m.compute is not None
                                         and _chi2(counts, m.compute(logits.double(), temperature)) <= CHI2_LIMIT), None))

    def test_indices_int64(self, student):
        """returns int64 class indices of shape (N,) in [0, C), logits unchanged"""
        self.draws(student, randn(6, 5, seed=500), generator=seeded(501))

    def test_follows_softmax(self, student):
        """T = 1: draws follow softmax(logits) (chi-square over 3 x 4000 seeded draws, float32)"""
        self.expect_distribution(student, 1.0, torch.float32, seed=502)

    def test_low_temperature_sharpens(self, student):
        """T = 0.5: draws follow softmax(logits / 0.5) (float64)"""
        self.expect_distribution(student, 0.5, torch.float64, seed=503)

    def test_high_temperature_flattens(self, student):
        """T = 3: draws follow the flatter softmax(logits / 3) (float32)"""
        self.expect_distribution(student, 3.0, torch.float32, seed=504)

    def test_temperature_zero_is_argmax(self, student):
        """T = 0 returns the argmax of every row (float64, (7, 9))"""
        logits = randn(7, 9, seed=505, dtype=torch.float64)
        try:
            got = self.draws(student, logits, temperature=0.0, generator=seeded(506))
        except CheckFailed as failure:   # a crash on T = 0 (e.g. multinomial of nan probabilities) is the division by 0
            raise CheckFailed(str(failure), failure.mistake or (ZERO_TEMPERATURE if "raised" in str(failure) else None)) from None
        problem = difference(got, logits.argmax(-1))
        if problem:
            raise CheckFailed(f"{self.function}(logits, temperature=0.0) should be logits.argmax(-1): {problem}", ZERO_TEMPERATURE)

    def test_very_low_temperature(self, student):
        """stability: T = 0.01 with logits 3..5 (float32) puts every draw on the row's argmax"""
        values = torch.tensor([3.0, 3.5, 4.0, 4.5, 5.0])
        order = torch.rand(2000, 5, generator=seeded(507)).argsort(-1)                 # a random permutation per row
        logits = values[order]                                                         # (2000, 5), gaps of 0.5
        got = self.draws(student, logits, temperature=0.01, generator=seeded(508))
        wrong = (got != logits.argmax(-1)).nonzero()
        if len(wrong):
            i = int(wrong[0])
            raise CheckFailed(f"{self.function}(logits, temperature=0.01): {len(wrong)} of 2000 draws are not the row's argmax "
                              f"(row {i} drew class {got[i].item()} with logit {logits[i, got[i]].item()}, the max is 5.0); "
                              f"softmax(logits / 0.01) puts probability 1 − 1e-21 on the argmax: divide the logits by T, and "
                              f"subtract the row max before exp (logits / T ≈ 500 overflows exp in float32).")

    def test_generator_seeds(self, student):
        """the same seeded generator gives the same draws; another seed gives other draws"""
        logits = randn(1000, 6, seed=509, scale=0.5)
        first = self.draws(student, logits, generator=seeded(510))
        again = self.draws(student, logits, generator=seeded(510))
        other = self.draws(student, logits, generator=seeded(511))
        if not torch.equal(first, again):
            raise CheckFailed(f"two calls with generators seeded 510 gave different draws ({int((first != again).sum())} of 1000 differ)", GENERATOR_IGNORED)
        if torch.equal(first, other):
            raise CheckFailed("generators seeded 510 and 511 gave exactly the same 1000 draws", GENERATOR_IGNORED)


def _chi2(counts, probs):
    """Pearson chi-square of (blocks, C) counts against the probabilities of the first row of each block."""
    blocks = counts.shape[0]
    expected = probs.view(blocks, -1, probs.shape[-1])[:, 0] * counts.sum(-1, keepdim=True)    # (blocks, C)
    impossible = expected <= 1e-12
    if (counts[impossible] > 0).any():
        return math.inf
    terms = (counts - expected).square() / expected.where(~impossible, torch.ones_like(expected))
    return terms.where(~impossible, torch.zeros_like(terms)).sum().item()
