"""Hidden checks for ps4_information_theory: entropy, cross-entropy between distributions, perplexity.

References are exact formulas in float64: `torch.xlogy` for p log p, so 0 log 0 = 0 and tiny
probabilities are not clamped (torch.distributions clamps them to the dtype's eps). Distributions
have K != the batch sizes so that summing over the wrong dim cannot pass by luck; perplexity inputs
have T != V, and positions whose logits lie at very different scales (a max-shift must be per
position). Large-logit checks allow float32 an error that scales with |logits| (a correct
logsumexp near 1000 loses ~1e-4 in float32). Tolerances: mfml_grader.compare.
"""

import math

import torch
import torch.nn.functional as F

from mfml_grader.compare import difference
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, randn, seeded

LN2 = math.log(2.0)
EPSILONS = (1e-6, 1e-7, 1e-8, 1e-9, 1e-10)      # what students add inside a log "to avoid log 0"


def _eps_mistakes(name, fix, *computes):
    """One Mistake per compute and per common eps (`compute(*args, eps)`): each eps gives its own result."""
    return tuple(Mistake(name, fix, (lambda c, e: lambda *args: c(*args, e))(compute, eps)) for compute in computes for eps in EPSILONS)


def _dist(*shape, seed, dtype=torch.float32, scale=1.5):
    """Seeded distributions over the last dim: the softmax of normal logits, computed in float64."""
    return torch.softmax(randn(*shape, seed=seed, dtype=torch.float64, scale=scale), dim=-1).to(dtype)


def _sparse(*shape, seed, dtype=torch.float32):
    """Seeded distributions with exact zeros: about half the entries of each row, never the largest."""
    p = torch.softmax(randn(*shape, seed=seed, dtype=torch.float64), dim=-1)
    keep = torch.rand(*shape, generator=seeded(seed + 1000), dtype=torch.float64) < 0.5
    keep |= p == p.amax(dim=-1, keepdim=True)
    p = p * keep
    return (p / p.sum(dim=-1, keepdim=True)).to(dtype)


def _one_hot(rows, K, seed, dtype):
    labels = torch.randint(0, K, (rows,), generator=seeded(seed))
    return F.one_hot(labels, K).to(dtype)


def _first(wrong):
    """The first index where the boolean tensor `wrong` holds, for messages."""
    return int(wrong.nonzero().flatten()[0])


def _as_tensor(got, shape, statement):
    if not isinstance(got, torch.Tensor) or got.shape != shape:
        what = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise CheckFailed(f"{statement}: expected a tensor of shape {shape}, got {what}")
    return got.to(torch.float64)


# -- entropy -----------------------------------------------------------------------------------

ENTROPY_NAN = Mistake("0 · log 0 gives nan", "an outcome of probability 0 contributes 0 (p log p → 0), but 0 * log(0) = 0 * (−inf) is nan in floating point: "
                      "use torch.xlogy(p, p), or torch.where(p > 0, p * p.log(), 0).",
                      lambda probs: -(probs * probs.log()).sum(-1))


class TestEntropy(Exercise):
    function = "entropy"
    forbidden = ("torch.distributions", "torch.special.entr")
    mistakes = (
        ENTROPY_NAN,
        *_eps_mistakes("eps added inside the log (log(p + eps))", "an eps inside the log biases every term, −p log(p + eps) ≠ −p log p (float64 results notice): "
                       "use torch.xlogy(p, p), which is exactly 0 at p = 0, or torch.where(p > 0, p * p.log(), 0).",
                       lambda probs, eps: -(probs * (probs + eps).log()).sum(-1)),
        Mistake("log base 2 (bits) instead of nats", "use the natural log (torch.log): entropy here is in nats, like PyTorch's losses; bits are nats / ln 2.",
                lambda probs: -(torch.xlogy(probs, probs) / LN2).sum(-1)),
        Mistake("missing minus sign", "H = −Σ p log p: every log p ≤ 0, so without the minus the entropy comes out negative.",
                lambda probs: torch.xlogy(probs, probs).sum(-1)),
        Mistake("summed over dim 0 instead of the outcomes (last dim)", "each distribution lies along the last dim: sum(dim=-1).",
                lambda probs: -torch.xlogy(probs, probs).sum(0)),
        Mistake("summed over dim 1 (written for (N, K) inputs only)", "probs may be (K,), (N, K) or (B, T, V): the outcomes are always the last dim, sum(dim=-1).",
                lambda probs: -torch.xlogy(probs, probs).sum(1)),
        Mistake("summed over every entry", "sum along the last dim only: one entropy per distribution, shape probs.shape[:-1].",
                lambda probs: -torch.xlogy(probs, probs).sum()),
        Mistake("kept the summed dim (keepdim=True)", "the outcome dim disappears: (..., K) -> (...), so sum without keepdim.",
                lambda probs: -torch.xlogy(probs, probs).sum(-1, keepdim=True)),
        Mistake("averaged over the outcomes instead of summing", "H is a sum over the K outcomes, already weighted by p: .sum(-1), not .mean(-1).",
                lambda probs: -torch.xlogy(probs, probs).mean(-1)),
        Mistake("−Σ log p (not weighted by p)", "each surprise −log p_k is weighted by its probability p_k: −Σ p log p.",
                lambda probs: -probs.log().sum(-1)),
    )

    @staticmethod
    def reference(probs):
        return -torch.xlogy(probs, probs).sum(dim=-1)

    def test_worked_example(self, student):
        """worked example: uniform over 4 is log 4, a zero entry, a one-hot row"""
        p = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.5, 0.25, 0.25, 0.0], [0.0, 1.0, 0.0, 0.0]])
        self.expect(student, p)

    def test_batched_float32(self, student):
        """next-token distributions (B=3, T=5, V=7), float32"""
        self.expect(student, _dist(3, 5, 7, seed=1))

    def test_float64_rows(self, student):
        """6 distributions over K=4, float64"""
        self.expect(student, _dist(6, 4, seed=2, dtype=torch.float64, scale=2.0))

    def test_single_distribution(self, student):
        """a single distribution (K,) gives a 0-d tensor"""
        self.expect(student, _dist(9, seed=3))

    def test_exact_zeros(self, student):
        """exact zero probabilities count as 0 (float32 and float64)"""
        self.expect(student, _sparse(5, 8, seed=4))
        self.expect(student, _sparse(2, 3, 6, seed=5, dtype=torch.float64))

    def test_one_hot_is_exactly_zero(self, student):
        """a certain outcome (one-hot) has entropy exactly 0, not nan"""
        for dtype in (torch.float32, torch.float64):
            p = _one_hot(5, 6, seed=6, dtype=dtype)
            returned = self.call(student, p)
            got = _as_tensor(returned, (5,), f"entropy(one-hot {str(dtype).removeprefix('torch.')} (5, 6))")
            wrong = ~(got == 0)
            if wrong.any():
                i = _first(wrong)
                named = ENTROPY_NAN if got[i].isnan() else self.diagnose(returned, (p,), {}, dtype)
                raise CheckFailed(f"entropy(one-hot {str(dtype).removeprefix('torch.')} (5, 6)) should be exactly 0 for every row (a certain outcome carries no uncertainty); "
                                  f"row {i} gives {got[i].item():.3g}{' (0 * log 0 must count as 0)' if got[i].isnan() else ''}", named)

    def test_uniform_is_log_K(self, student):
        """the uniform distribution over K outcomes has entropy log K (K = 2, 3, 4, 10)"""
        for K in (2, 3, 4, 10):
            self.expect(student, torch.full((K,), 1.0 / K, dtype=torch.float64))

    def test_between_zero_and_log_K(self, student):
        """property: 0 <= H(p) <= log K, with log K reached by the uniform row"""
        p = torch.cat([_dist(20, 6, seed=7, dtype=torch.float64, scale=3.0),
                       torch.full((1, 6), 1.0 / 6, dtype=torch.float64),
                       _one_hot(3, 6, seed=8, dtype=torch.float64)])                # (24, 6)
        got = _as_tensor(self.call(student, p), (24,), "entropy(probs float64 (24, 6))")
        below, above = got < -1e-12, got > math.log(6) + 1e-12

        def named():                                                        # the mistake, looked up only on a failure
            return self.diagnose(got, (p,), {}, torch.float64)

        if below.any():
            i = _first(below)
            raise CheckFailed(f"entropy(probs float64 (24, 6)): row {i} gives {got[i].item():.4g} < 0; an entropy is never negative", named())
        if got.isnan().any():
            i = _first(got.isnan())
            raise CheckFailed(f"entropy(probs float64 (24, 6)): row {i} gives nan; 0 * log 0 must count as 0", ENTROPY_NAN)
        if above.any():
            i = _first(above)
            raise CheckFailed(f"entropy(probs float64 (24, 6)): row {i} gives {got[i].item():.4g}, more than log 6 = {math.log(6):.4f}, "
                              "the entropy of the uniform distribution, which is the maximum", named())
        if abs(got[20].item() - math.log(6)) > 1e-10:
            raise CheckFailed(f"entropy(probs float64 (24, 6)): the uniform row 20 gives {got[20].item():.6g}, expected log 6 = {math.log(6):.6g}", named())


# -- cross-entropy between distributions ------------------------------------------------------

TINY_Q_EPS = ("tiny q clamped or shifted by an eps (log(q + eps), q.clamp(min=eps))",
              "the cost of a tiny model probability must be exact: q_k = 1e-30 costs −log 1e-30 ≈ 69 nats, but log(1e-30 + 1e-8) ≈ −18.4. "
              "To keep 0 · log 0 from giving nan, use torch.xlogy(p, q) (0 wherever p = 0) or torch.where(p > 0, ...), not an eps.")


class TestCrossEntropyDist(Exercise):
    function = "cross_entropy_dist"
    forbidden = ("torch.distributions", "torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
                 "torch.nn.functional.kl_div")
    substitutes = ("entropy",)
    mistakes = (
        Mistake("0 · log 0 gives nan", "where p_k = 0 the term is 0 even if q_k = 0, but p * q.log() gives 0 * (−inf) = nan: use torch.xlogy(p, q) or torch.where(p > 0, ...).",
                lambda p, q: -(p * q.log()).sum(-1)),
        *_eps_mistakes(*TINY_Q_EPS, lambda p, q, eps: -(p * (q + eps).log()).sum(-1), lambda p, q, eps: -torch.xlogy(p, q.clamp(min=eps)).sum(-1)),
        Mistake("H(q, p) instead of H(p, q) (arguments swapped)", "the truth p weights the terms and the model q goes inside the log: −Σ p log q.",
                lambda p, q: -torch.xlogy(q, p).sum(-1)),
        Mistake("returned KL(p‖q) instead of H(p, q)", "H(p, q) = H(p) + KL(p‖q): Σ p log(p / q) is only the gap; compute −Σ p log q (or add H(p)).",
                lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)),
        Mistake("KL with the wrong sign (H(p) − KL(p‖q))", "KL(p‖q) = Σ p log(p / q) ≥ 0 is added: H(p, q) = H(p) + KL(p‖q), never below H(p).",
                lambda p, q: (-2 * torch.xlogy(p, p) + torch.xlogy(p, q)).sum(-1)),
        Mistake("log base 2 (bits) instead of nats", "use the natural log (torch.log): cross-entropy here is in nats, like F.cross_entropy.",
                lambda p, q: -(torch.xlogy(p, q) / LN2).sum(-1)),
        Mistake("missing minus sign", "H(p, q) = −Σ p log q: every log q ≤ 0, so without the minus the result is negative.",
                lambda p, q: torch.xlogy(p, q).sum(-1)),
        Mistake("summed over dim 0 instead of the outcomes (last dim)", "each distribution lies along the last dim: sum(dim=-1).",
                lambda p, q: -torch.xlogy(p, q).sum(0)),
        Mistake("summed over dim 1 (written for (N, K) inputs only)", "p and q may be (K,), (N, K) or (B, T, K): the outcomes are always the last dim, sum(dim=-1).",
                lambda p, q: -torch.xlogy(p, q).sum(1)),
        Mistake("summed over every entry", "sum along the last dim only: one cross-entropy per pair of distributions.",
                lambda p, q: -torch.xlogy(p, q).sum()),
        Mistake("averaged over the outcomes instead of summing", "the weighting is done by p: −Σ p log q is a sum over outcomes, .sum(-1), not .mean(-1).",
                lambda p, q: -torch.xlogy(p, q).mean(-1)),
    )

    @staticmethod
    def reference(p, q):
        entropy = -torch.xlogy(p, p).sum(dim=-1)                           # H(p)
        kl = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)           # KL(p‖q), 0 log 0 = 0
        return entropy + kl

    def test_worked_example(self, student):
        """worked example: one-hot truth gives −log q_y; zeros where p = q = 0"""
        p = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
        q = torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.25, 0.75, 0.0, 0.0]])
        self.expect(student, p, q)

    def test_batched_float32(self, student):
        """p, q of shape (2, 3, 6), float32"""
        self.expect(student, _dist(2, 3, 6, seed=20), _dist(2, 3, 6, seed=21))

    def test_float64_rows(self, student):
        """5 pairs of distributions over K=7, float64"""
        self.expect(student, _dist(5, 7, seed=22, dtype=torch.float64), _dist(5, 7, seed=23, dtype=torch.float64, scale=2.5))

    def test_single_pair(self, student):
        """a single pair (K,) gives a 0-d tensor"""
        self.expect(student, _dist(6, seed=24, dtype=torch.float64), _dist(6, seed=25, dtype=torch.float64))

    def test_one_hot_labels(self, student):
        """one-hot truths (classification labels): H = −log q_y, float32"""
        self.expect(student, _one_hot(6, 5, seed=26, dtype=torch.float32), _dist(6, 5, seed=27, scale=2.0))

    def test_zeros_in_p_and_q(self, student):
        """p_k = 0 terms count 0, also where q_k = 0 (float32 and float64)"""
        p = _sparse(4, 6, seed=28)
        q = _dist(4, 6, seed=29) * (p > 0)                                 # q = 0 wherever p = 0
        self.expect(student, p, q / q.sum(dim=-1, keepdim=True))
        p = _sparse(3, 5, seed=30, dtype=torch.float64)
        self.expect(student, p, _dist(3, 5, seed=31, dtype=torch.float64))

    def test_tiny_model_probabilities(self, student):
        """q_k = 1e-10 .. 1e-30 where p_k > 0 costs −log q_k in full (no clamping), float32"""
        p = torch.tensor([[0.6, 0.4, 0.0], [0.5, 0.25, 0.25], [0.0, 0.9, 0.1]])
        q = torch.tensor([[1.0 - 1e-10, 1e-10, 0.0], [0.5, 0.5 - 1e-20, 1e-20], [0.3, 0.7, 1e-30]])
        want = self.reference(p.double(), q.double())                               # (3,)
        got = self.call(student, p, q)
        problem = difference(got, want, torch.float32)
        if problem:
            mistake = self.diagnose(got, (p, q), {}, torch.float32)
            cheaper = isinstance(got, torch.Tensor) and got.shape == want.shape and bool(torch.isfinite(got).all()) \
                and bool((got.double() < want - 1.0).any())                       # some row under-charged by > 1 nat
            raise CheckFailed(f"{self.describe_call((p, q), {})}: {problem}", mistake or (Mistake(*TINY_Q_EPS) if cheaper else None))

    def test_gibbs_inequality(self, student):
        """property: H(p, q) >= H(p), with equality when q = p"""
        p = _dist(30, 5, seed=32, dtype=torch.float64)
        q = _dist(30, 5, seed=33, dtype=torch.float64, scale=0.5)
        exact = -torch.xlogy(p, p).sum(-1)                                  # H(p)
        cross = _as_tensor(self.call(student, p, q), (30,), "cross_entropy_dist(p float64 (30, 5), q float64 (30, 5))")
        below = ~(cross >= exact - 1e-10)
        if below.any():
            i = _first(below)
            raise CheckFailed(f"cross_entropy_dist(p, q) for p, q float64 (30, 5): row {i} gives {cross[i].item():.6g}, below H(p) = {exact[i].item():.6g}; "
                              f"H(p, q) = H(p) + KL(p‖q) can never be smaller than H(p)", self.diagnose(cross, (p, q), {}, torch.float64))
        same = _as_tensor(self.call(student, p, p), (30,), "cross_entropy_dist(p, p) for p float64 (30, 5)")
        off = ~((same - exact).abs() <= 1e-10)
        if off.any():
            i = _first(off)
            raise CheckFailed(f"cross_entropy_dist(p, p) for p float64 (30, 5): row {i} gives {same[i].item():.6g}, expected H(p) = {exact[i].item():.6g} (KL(p‖p) = 0)")


# -- perplexity --------------------------------------------------------------------------------

def _nll(logits, targets):
    """(B, T) negative log-likelihood of each target, from a stable log-softmax over the last dim."""
    return -logits.log_softmax(dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _picked(log_probs, targets):
    return log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def _targets(B, T, V, seed):
    return torch.randint(0, V, (B, T), generator=seeded(seed))


def _global_shift(logits, targets):
    """Perplexity with one max-shift for the whole batch: positions far below the global max underflow to log 0."""
    shifted = logits - logits.max()                                     # (B, T, V)
    return (shifted.exp().sum(-1).log() - _picked(shifted, targets)).mean().exp()


class TestPerplexity(Exercise):
    function = "perplexity"
    forbidden = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss",
                 "torch.nn.NLLLoss", "torch.distributions")
    mistakes = (
        Mistake("inf for a very unlikely target (log of an underflowed softmax, or exp of a per-token NLL)", "in float32 a probability below ~1e-45 is 0, so log(softmax(z)) gives −inf, and exp(NLL) of a single token overflows once NLL > 88: take log-probabilities straight from the logits (log_softmax, or z_y − logsumexp(z)) and exponentiate only the mean NLL.",
                lambda logits, targets: (-_picked(torch.softmax(logits.float(), -1).log(), targets)).mean().exp().double()),
        Mistake("no max-shift before exp (overflows on large logits)", "exp(1000) is inf: use log Σ exp(z) = m + log Σ exp(z − m) with m the max over the vocabulary (or logsumexp / log_softmax).",
                lambda logits, targets: (-_picked((logits.exp() / logits.exp().sum(-1, keepdim=True)).log(), targets)).mean().exp()),
        Mistake("no max-shift before exp (overflows on large logits)", "exp(1000) is inf: use log Σ exp(z) = m + log Σ exp(z − m) with m the max over the vocabulary (or logsumexp / log_softmax).",
                lambda logits, targets: (logits.exp().sum(-1).log() - _picked(logits, targets)).mean().exp()),
        Mistake("max-shift by the global max, not per position", "logits.max() is the largest logit of the whole batch: a position whose logits all lie far below it "
                "gets exp(z − m) = 0 and log 0. Shift each position by its own max, logits.amax(-1, keepdim=True) (or use log_softmax / logsumexp over dim −1).",
                _global_shift),
        Mistake("mean of per-token exp(NLL) instead of exp of the mean", "perplexity is exp(mean NLL), a geometric mean: average the NLLs first, then exponentiate once.",
                lambda logits, targets: _nll(logits, targets).exp().mean()),
        Mistake("per-sequence perplexities averaged", "average the NLL over all B·T tokens together, then exponentiate: exp(mean over b and t), not mean over b of exp(mean over t).",
                lambda logits, targets: _nll(logits, targets).mean(-1).exp().mean()),
        Mistake("exp of the summed NLL (not the mean)", "divide the total NLL by the number of tokens B·T before exp: perplexity is per token.",
                lambda logits, targets: _nll(logits, targets).sum().exp()),
        Mistake("returned the mean NLL (forgot the exp)", "the mean NLL is the loss; perplexity is its exponential, exp(mean NLL).",
                lambda logits, targets: _nll(logits, targets).mean()),
        Mistake("2 ** mean NLL with the NLL in nats", "the NLL is in nats (natural log), so exponentiate with e: torch.exp. 2 ** L is right only for L in bits.",
                lambda logits, targets: 2.0 ** _nll(logits, targets).mean()),
        Mistake("normalised over the time dim (dim 1) instead of the vocabulary", "logits are (B, T, V): the softmax runs over the last dim V. (F.cross_entropy-style functions want classes in dim 1, hence the (B*T, V) reshape.)",
                lambda logits, targets: (-_picked(logits.log_softmax(1), targets)).mean().exp()),
        Mistake("softmax applied twice (probabilities treated as logits)", "the inputs are logits: apply log_softmax once to them, not to softmax(logits).",
                lambda logits, targets: (-_picked(logits.softmax(-1).log_softmax(-1), targets)).mean().exp()),
        Mistake("log of the raw logits (logits treated as probabilities)", "logits are unnormalised scores, not probabilities: log q_y = z_y − logsumexp(z).",
                lambda logits, targets: (-_picked(logits, targets).log()).mean().exp()),
        Mistake("every position indexed with every target (log_probs[..., targets])", "log_probs[..., targets] picks each target at every position, (B, T, B, T): "
                "pick one entry per position with log_probs.gather(-1, targets.unsqueeze(-1)), or flatten to (B*T, V) and index with torch.arange(B*T).",
                lambda logits, targets: (-logits.log_softmax(-1)[..., targets]).mean().exp()),
        Mistake("averaged the log-probabilities of every token (targets never picked)", "the NLL is the log-probability of the target token only, −log q(y_{b,t}): pick it with gather before averaging.",
                lambda logits, targets: (-logits.log_softmax(-1)).mean().exp()),
    )

    @staticmethod
    def reference(logits, targets):
        V = logits.shape[-1]
        return torch.exp(F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)))

    def _expect_scaled(self, student, logits, targets):
        """expect, allowing float32 an error of ~1e-7 x |logits| in the NLL (large logits lose digits)."""
        saved = self.tolerance
        scale = max(1.0, logits.abs().max().item())
        self.tolerance = {torch.float32: 1e-7 * scale, torch.float64: 1e-10}
        try:
            return self.expect(student, logits, targets)
        finally:
            self.tolerance = saved

    def test_worked_example(self, student):
        """worked example: probabilities 1/2 and 1/3 give perplexity √6"""
        logits = torch.tensor([[[math.log(2.0), 0.0, 0.0], [0.0, 0.0, 0.0]]])
        self.expect(student, logits, torch.tensor([[0, 2]]))

    def test_uniform_model_is_V(self, student):
        """a uniform model over V tokens has perplexity V (V=5 float32, V=50 float64)"""
        self.expect(student, torch.zeros(2, 3, 5), _targets(2, 3, 5, seed=40))
        self.expect(student, torch.zeros(3, 4, 50, dtype=torch.float64), _targets(3, 4, 50, seed=41))

    def test_random_float32(self, student):
        """(B=2, T=5, V=9) random logits, float32"""
        self.expect(student, randn(2, 5, 9, seed=42, scale=2.0), _targets(2, 5, 9, seed=43))

    def test_random_float64_more_steps_than_vocab(self, student):
        """(B=3, T=8, V=5) float64: T > V"""
        self.expect(student, randn(3, 8, 5, seed=44, dtype=torch.float64, scale=2.0), _targets(3, 8, 5, seed=45))

    def test_sequences_of_different_difficulty(self, student):
        """an easy and a hard sequence: exp of the mean over all tokens, float64"""
        targets = _targets(2, 4, 6, seed=46)
        logits = randn(2, 4, 6, seed=47, dtype=torch.float64)
        logits[0] += 4.0 * F.one_hot(targets[0], 6).double()             # sequence 0: the model is mostly right
        self.expect(student, logits, targets)

    def test_confident_and_right_is_one(self, student):
        """a model that is sure and right has perplexity ≈ 1"""
        targets = _targets(2, 6, 4, seed=48)
        self.expect(student, 30.0 * F.one_hot(targets, 4).double(), targets)

    def test_large_logits(self, student):
        """stability: float32 logits around 1000 stay finite and correct"""
        self._expect_scaled(student, randn(2, 4, 7, seed=49, scale=2.0, shift=1000.0), _targets(2, 4, 7, seed=50))

    def test_positions_of_opposite_scales(self, student):
        """stability: one sequence's logits near +400, the other's near −400 (float64): shift each position by its own max"""
        logits = randn(2, 3, 6, seed=53, dtype=torch.float64, scale=2.0)
        logits[0] += 400.0
        logits[1] -= 400.0
        self.expect(student, logits, _targets(2, 3, 6, seed=54))

    def test_very_unlikely_target(self, student):
        """stability: a target with probability ~e^-150 (0 in float32) gives a finite perplexity"""
        targets = _targets(2, 4, 6, seed=51)
        logits = randn(2, 4, 6, seed=52, scale=1.5)
        logits[0, 1, targets[0, 1]] = -150.0
        self.expect(student, logits, targets)
