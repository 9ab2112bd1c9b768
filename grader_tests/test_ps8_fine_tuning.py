"""Hidden checks for ps8_fine_tuning: BERT's masked-LM objective, padding masks, the warmup-decay
schedule, pooling and LoRA merging.

`mask_tokens` is a sampler with many correct forms (one uniform per decision, torch.bernoulli, one
uniform split into three ranges), so it is checked by statistics over 64 x 512 positions and by
determinism, never draw by draw against one sampler. Every tolerance is 5 binomial standard
deviations (a correct sampler fails with probability below 1e-6), and the distribution of the
random tokens is a chi-square test at p = 1e-6. The ids lie in 3..49 while vocab_size is 200, so a
random token drawn from the ids' range (or 0..ids.max()) shows; mask_prob is 0.15, 0.3 and 0.4 (a
hard-coded 15 % shows), and 0 and 1 (a "fraction kept" reading shows); one check passes a mask_id
other than the notebook's [MASK]. Two calls with equally seeded generators must agree while the
global random state differs between them (re-seeded when the checks run in the student's process;
in the sandbox it advances between calls), and two seeds must give two maskings.

`masked_lm_loss` is compared with `F.cross_entropy(..., ignore_index=-100)` in float64 on (B, T, V)
logits with B != T != V, rows with different numbers of labelled positions (one row with none, so
a mean of per-text means shows), logits of spread 1e3 in float32 (exp overflows, a probability
underflows: either gives inf, so that check names a mistake only when one alone explains it), a
target 800 nats below the best token in float64 (only log(softmax) fails) and logits near 1000 in
float64 (only a missing max-shift fails); it must return a 0-d tensor in the dtype of the logits.

`padded_attention` is compared with `F.scaled_dot_product_attention(attn_mask=~mask)` in float64
with T_q != T_k and d != d_v (a mask broadcast over queries cannot run; the check then retries with
T_q = T_k to name it, and a scale by √d_v shows), padding at the end, at the start and scattered (a
mask rebuilt from the count of real keys shows), a text with a single real key, no padding, more
queries than keys, and padding keys and values changed to 1e3 (nothing may move).

`linear_warmup_decay_lr` is compared, at every step 0..T+5 of three schedules (W not dividing T,
max_lr of 3e-4, 0.5 and the int 2), with the learning rate `torch.optim.lr_scheduler.LambdaLR`
sets with Hugging Face's linear multiplier; a float or a 0-d tensor is accepted, within 1e-6·max_lr.
A wrong schedule is named by the mistake whose rates equal the student's at every step checked.

`masked_mean_pool` is compared with `(hidden * (~pad)[..., None]).sum(1) / (~pad).sum(1, keepdim=True)` in float64 on (B, T, C)
with B != T != C (a mask not broadcast over C, or a count without keepdim, cannot run), hidden states of 1e3 at the padding (a
mean that counts them shows), padding at the end, at the start and scattered (a mean of the first n positions shows), a text with
one real position, texts without padding (an inverted mask gives 0/0), float32 and float64 (a result built in torch.zeros(B, C) is
named by its dtype), and the notebook's sizes; one check changes the padding's states by 1e3 and expects nothing to move.

`merge_lora` is compared with `W + (alpha / A.shape[0]) B A` in float64 with out != in != r (r read from B or from A.shape[1]
shows; A @ B and Aᵀ Bᵀ cannot run), r of 2, 3 and 4, alphas that are not multiples of r (5.0, the int 7, 10.0: alpha // r
shows, and differs from alpha / out, alpha / in, 1, alpha, alpha·r and r / alpha) and a non-zero B (a B of zeros hides every
scaling). The last check multiplies x by the merged weight of the notebook's qkv layer and compares it with the LoRA forward
x Wᵀ + (α/r) x Aᵀ Bᵀ. Gradients through merge_lora (the notebook trains A and B through it) are not graded: results cross the
sandbox detached.
"""

import contextlib
import math
import warnings

import torch
import torch.nn.functional as F

from mfml_grader.compare import TOLERANCE, describe, difference, matches
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, randn, seeded

Z = 5.0                     # tolerances of the statistical checks, in binomial standard deviations


# -- mask_tokens --------------------------------------------------------------------------------

NOTEBOOK_MASK = 1           # the notebook's [MASK] id (PAD, MASK, UNK = 0, 1, 2)
LOW, HIGH = 3, 50           # ids are drawn from 3..49 ...
VOCAB = 200                 # ... while the vocabulary has 200 tokens
SHAPE = (64, 512)           # 32768 positions per call


def _ids(seed, shape=SHAPE):
    """(B, T) int64 token ids in LOW..HIGH-1."""
    return torch.randint(LOW, HIGH, shape, generator=seeded(seed))


def _sd(p, n):
    """The standard deviation of a frequency over n draws of probability p (at least 1/n)."""
    return max(math.sqrt(p * (1 - p) / n), 1.0 / n)


def _near(frequency, p, n):
    return abs(frequency - p) <= Z * _sd(p, n)


def _chi2_limit(dof, p_value=1e-6):
    """x with P(chi-square(dof) > x) = p_value (bisection on the regularised upper incomplete gamma)."""
    def tail(x):
        return torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(x / 2, dtype=torch.float64)).item()
    low, high = 0.0, 1000.0
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if tail(mid) > p_value else (low, mid)
    return high


BUCKETS = 8                            # the random tokens' counts per range of 25 ids
BUCKET_LIMIT = _chi2_limit(BUCKETS - 1)  # 40.5 for 7 dof

GLOBAL_RNG = Mistake("global random state used instead of `generator`",
                     "pass generator=generator to every torch.rand / torch.randint / torch.bernoulli call: the same generator state must give "
                     "the same masking, whatever else the program has drawn.")
FIXED_SEED = Mistake("`generator` not used (the same masking for every seed)",
                     "draw from the generator you are given (torch.rand(ids.shape, generator=generator)), not from one you create and seed yourself.")
NO_IGNORE = Mistake("labels on every position (no −100)",
                    "labels = torch.where(chosen, ids, -100): only the chosen positions are predicted, the loss must ignore the others.")
CORRUPTED_LABELS = Mistake("labels hold the corrupted inputs, not the original ids",
                           "take the labels from `ids` (the original tokens), not from the inputs after [MASK] and random tokens were put in.")
INVERTED_LABELS = Mistake("labels inverted (−100 at the chosen positions, the id elsewhere)",
                          "the label is the original id where a position is chosen (it must be predicted) and −100 where it is not.")
RANDOM_EVERYWHERE = Mistake("random tokens at positions that were not chosen",
                            "the random replacement applies to chosen positions only: chosen & (u >= 0.8) & (u < 0.9).")
MASK_EVERYWHERE = Mistake("[MASK] at positions that were not chosen",
                          "replace by mask_id only where the position is chosen: chosen & (u < 0.8).")
ALL_MASK = Mistake("every chosen position becomes [MASK] (no 80/10/10)",
                   "of the chosen positions 80 % become mask_id, 10 % a random token and 10 % stay: draw a second uniform u per position "
                   "(u < 0.8: mask_id, 0.8 <= u < 0.9: random, else unchanged).")
EIGHTY_TWENTY = Mistake("80/20/0: every chosen position that is not [MASK] gets a random token",
                        "half of the chosen positions that are not [MASK] stay unchanged: random only for 0.8 <= u < 0.9.")
TWO_PERCENT = Mistake("random tokens at 2 % of the chosen positions (probability 0.1 among the 20 % not [MASK])",
                      "10 % of ALL chosen positions get a random token: that is half (0.5) of the 20 % that are not [MASK], not 0.1 of them.")
OVERLAP = Mistake("independent draws for [MASK] and random overwrite each other (72/10/18)",
                  "draw one uniform u per position and split its range: u < 0.8 mask_id, 0.8 <= u < 0.9 random, u >= 0.9 unchanged; "
                  "two independent 80 % and 10 % draws overlap.")
KEPT_FRACTION = Mistake("mask_prob read as the fraction kept (1 − mask_prob chosen)",
                        "mask_prob is the probability that a position is CHOSEN: chosen = u < mask_prob.")
HARD_CODED_RATE = Mistake("15 % hard-coded (mask_prob ignored)", "choose positions with the mask_prob argument, not with 0.15.")
MASK_CONSTANT = Mistake("the notebook's MASK used instead of the mask_id argument",
                        "replace chosen tokens by the `mask_id` argument: the function must work for any tokenizer.")
RANDOM_RANGE = Mistake("random tokens not drawn uniformly from 0 .. vocab_size − 1",
                       "torch.randint(vocab_size, ids.shape, generator=generator): any token of the vocabulary, not only the range of ids "
                       "(ids.max()) or the notebook's len(itos).")

# (mask_id, another token, unchanged) among the chosen positions, for V = VOCAB and mask_id outside the ids
PROPORTIONS = {
    None: (0.8 + 0.1 / VOCAB, 0.1 * (1 - 2 / VOCAB), 0.1 + 0.1 / VOCAB),
    ALL_MASK: (1.0, 0.0, 0.0),
    EIGHTY_TWENTY: (0.8 + 0.2 / VOCAB, 0.2 * (1 - 2 / VOCAB), 0.2 / VOCAB),
    TWO_PERCENT: (0.8 + 0.02 / VOCAB, 0.02 * (1 - 2 / VOCAB), 0.18 + 0.02 / VOCAB),
    OVERLAP: (0.72 + 0.1 / VOCAB, 0.1 * (1 - 2 / VOCAB), 0.18 + 0.1 / VOCAB),
}


def _inverted(inputs, ids, chosen):
    """True when the positions labelled are exactly the untouched ones and only unlabelled ones changed."""
    return bool(chosen.any()) and torch.equal(inputs[chosen], ids[chosen]) and bool((inputs[~chosen] != ids[~chosen]).any())


class TestMaskTokens(Exercise):
    function = "mask_tokens"
    # A sampler: each mistake is recognised by a property of many draws (compute None), not by recomputing it.
    mistakes = (GLOBAL_RNG, FIXED_SEED, NO_IGNORE, CORRUPTED_LABELS, INVERTED_LABELS, RANDOM_EVERYWHERE, MASK_EVERYWHERE, ALL_MASK,
                EIGHTY_TWENTY, TWO_PERCENT, OVERLAP, KEPT_FRACTION, HARD_CODED_RATE, MASK_CONSTANT, RANDOM_RANGE)
    in_place_fix = "`ids[chosen] = mask_id` changes the caller's tensor: start from a copy, inputs = ids.clone(), or build inputs with torch.where."

    @staticmethod
    def reference(ids, mask_prob, mask_id, vocab_size, generator):
        """Not called: a sampler is checked by the statistics of its draws (this gives the parameter names)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _call(ids, mask_prob, mask_id, vocab_size, seed):
        return f"mask_tokens(ids {tuple(ids.shape)}, mask_prob={mask_prob}, mask_id={mask_id}, vocab_size={vocab_size}, generator seeded {seed})"

    def masking(self, student, ids, mask_prob, mask_id=NOTEBOOK_MASK, vocab_size=VOCAB, seed=0):
        """The student's (inputs, labels), checked to be two int64 tensors of the shape of ids (ids unchanged)."""
        got = self.call(student, ids, mask_prob, mask_id, vocab_size, seeded(seed))
        call = self._call(ids, mask_prob, mask_id, vocab_size, seed)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed(f"{call} should return a pair (inputs, labels), got {describe(got)}")
        for name, value in zip(("inputs", "labels"), got):
            if not isinstance(value, torch.Tensor) or value.shape != ids.shape:
                raise CheckFailed(f"{call}: {name} should be a tensor of the shape of ids {tuple(ids.shape)}, got {describe(value)}")
            if value.dtype != torch.int64:
                raise CheckFailed(f"{call}: {name} should be int64 token ids, got {value.dtype}")
        return got[0], got[1], call

    @staticmethod
    def chosen(inputs, labels, ids, call):
        """The chosen positions (label != -100); a failed check when no label is -100 or the labels are inverted."""
        if not (labels == -100).any():
            raise CheckFailed(f"{call}: no label is -100, so the loss would score every position, even those it can read in the "
                              f"inputs; expected -100 at every position that was not chosen", NO_IGNORE)
        chosen = labels != -100
        if _inverted(inputs, ids, chosen):
            raise CheckFailed(f"{call}: the {int(chosen.sum())} positions with a label all kept their id, while {int((inputs != ids).sum())} "
                              f"positions with label -100 changed: the labels mark the positions that were NOT chosen", INVERTED_LABELS)
        return chosen

    def expect_rate(self, student, mask_prob, seed):
        ids = _ids(seed)
        inputs, labels, call = self.masking(student, ids, mask_prob, seed=seed + 1)
        chosen = self.chosen(inputs, labels, ids, call)
        n = ids.numel()
        rate = chosen.double().mean().item()
        if _near(rate, mask_prob, n):
            return
        mistake = None
        if _near(rate, 1 - mask_prob, n):
            mistake = KEPT_FRACTION
        elif _near(rate, 0.15, n):
            mistake = HARD_CODED_RATE
        raise CheckFailed(f"{call}: {rate:.2%} of the {n} positions were chosen (label != -100), expected {mask_prob:.0%} "
                          f"(± {Z * _sd(mask_prob, n):.2%}, {Z:g} standard deviations)", mistake)

    # -- checks -----------------------------------------------------------------------------------
    def test_returns_inputs_and_labels(self, student):
        """returns (inputs, labels), two int64 tensors of the shape of ids (3, 17); ids unchanged"""
        self.masking(student, _ids(800, (3, 17)), 0.5, seed=801)

    def test_labels_are_the_original_ids(self, student):
        """labels: the original id at the chosen positions, −100 everywhere else"""
        ids = _ids(802)
        inputs, labels, call = self.masking(student, ids, 0.15, seed=803)
        chosen = self.chosen(inputs, labels, ids, call)
        wrong = chosen & (labels != ids)
        if wrong.any():
            i = tuple(wrong.nonzero()[0].tolist())
            corrupted = torch.equal(labels[chosen], inputs[chosen])
            raise CheckFailed(f"{call}: at {int(wrong.sum())} of the {int(chosen.sum())} chosen positions the label is not the original id "
                              f"(first at {i}: label {labels[i].item()}, ids {ids[i].item()}, inputs {inputs[i].item()})",
                              CORRUPTED_LABELS if corrupted else None)

    def test_unchosen_positions_unchanged(self, student):
        """positions that were not chosen (label −100) keep their id in inputs"""
        ids = _ids(804)
        inputs, labels, call = self.masking(student, ids, 0.15, seed=805)
        chosen = self.chosen(inputs, labels, ids, call)
        changed = ~chosen & (inputs != ids)
        if changed.any():
            i = tuple(changed.nonzero()[0].tolist())
            masked = (inputs[changed] == NOTEBOOK_MASK).double().mean().item()
            mistake = MASK_EVERYWHERE if masked > 0.5 else RANDOM_EVERYWHERE
            raise CheckFailed(f"{call}: {int(changed.sum())} of the {int((~chosen).sum())} positions with label -100 changed in inputs "
                              f"(first at {i}: {ids[i].item()} became {inputs[i].item()}; {masked:.0%} of them became mask_id); "
                              f"only chosen positions may change", mistake)

    def test_chosen_rate_15_percent(self, student):
        """mask_prob = 0.15: about 15 % of 32768 positions are chosen"""
        self.expect_rate(student, 0.15, seed=806)

    def test_chosen_rate_40_percent(self, student):
        """mask_prob = 0.4: about 40 % are chosen (mask_prob is not hard-coded)"""
        self.expect_rate(student, 0.4, seed=808)

    def test_rates_0_and_1(self, student):
        """mask_prob = 0 chooses no position (inputs = ids); mask_prob = 1 chooses every position"""
        ids = _ids(810, (8, 64))
        n = ids.numel()
        inputs, labels, call = self.masking(student, ids, 0.0, seed=811)
        if (labels != -100).any() or not torch.equal(inputs, ids):
            rate, changed = (labels != -100).double().mean().item(), (inputs != ids).double().mean().item()
            masked = (inputs[inputs != ids] == NOTEBOOK_MASK).double().mean().item() if changed else 0.0
            mistake = (HARD_CODED_RATE if _near(rate, 0.15, n) else KEPT_FRACTION if rate == 1 and changed > 0
                       else (MASK_EVERYWHERE if masked > 0.5 else RANDOM_EVERYWHERE) if rate == 0 else None)
            raise CheckFailed(f"{call}: {rate:.0%} of the positions have a label (not -100) and {changed:.0%} changed; with mask_prob 0 "
                              f"no position is chosen: every label is -100 and inputs equals ids", mistake)
        inputs, labels, call = self.masking(student, ids, 1.0, seed=812)
        if not torch.equal(labels, ids):
            rate = (labels != -100).double().mean().item()
            mistake = (KEPT_FRACTION if rate == 0 else HARD_CODED_RATE if _near(rate, 0.15, n)
                       else CORRUPTED_LABELS if rate == 1 and torch.equal(labels, inputs) else None)
            raise CheckFailed(f"{call}: {rate:.0%} of the positions are chosen (label != -100) and labels differ from ids at "
                              f"{int((labels != ids).sum())} of {n}; with mask_prob 1 every position is chosen and labels equals ids", mistake)

    def test_80_10_10(self, student):
        """of the chosen positions about 80 % become mask_id, 10 % a random token and 10 % stay (mask_prob 0.4)"""
        ids = _ids(814)
        inputs, labels, call = self.masking(student, ids, 0.4, seed=815)
        chosen = self.chosen(inputs, labels, ids, call)
        n = int(chosen.sum())
        x, y = inputs[chosen], ids[chosen]
        got = ((x == NOTEBOOK_MASK).double().mean().item(), ((x != NOTEBOOK_MASK) & (x != y)).double().mean().item(),
               (x == y).double().mean().item())
        if all(_near(g, p, n) for g, p in zip(got, PROPORTIONS[None])):
            return
        mistake = next((m for m, want in PROPORTIONS.items() if m is not None and all(_near(g, p, n) for g, p in zip(got, want))), None)
        raise CheckFailed(f"{call}: of the {n} chosen positions {got[0]:.1%} became mask_id, {got[1]:.1%} another token and {got[2]:.1%} "
                          f"kept their id; expected 80 %, 10 % and 10 % (± {Z * _sd(0.8, n):.1%}, {Z * _sd(0.1, n):.1%} and "
                          f"{Z * _sd(0.1, n):.1%}: {Z:g} standard deviations)", mistake)

    def test_mask_id_argument(self, student):
        """mask_id = 150 (not the notebook's [MASK]) is the token that replaces chosen positions"""
        ids = _ids(816)
        inputs, labels, call = self.masking(student, ids, 0.3, mask_id=150, seed=817)
        chosen = self.chosen(inputs, labels, ids, call)
        share = (inputs[chosen] == 150).double().mean().item()
        if share < 0.5:
            notebook = (inputs[chosen] == NOTEBOOK_MASK).double().mean().item()
            raise CheckFailed(f"{call}: only {share:.1%} of the chosen positions became 150 (about 80 % should); {notebook:.1%} became "
                              f"{NOTEBOOK_MASK}", MASK_CONSTANT if notebook >= 0.5 else None)

    def test_random_tokens_uniform(self, student):
        """the random tokens are uniform over 0..vocab_size−1 = 0..199 (ids are 3..49): chi-square over 8 ranges of 25 ids"""
        ids = _ids(818)
        inputs, labels, call = self.masking(student, ids, 0.5, seed=819)
        chosen = self.chosen(inputs, labels, ids, call)
        other = chosen & (inputs != NOTEBOOK_MASK) & (inputs != ids)          # visibly random: neither mask_id nor the own id
        tokens, own = inputs[other], ids[other]
        if len(tokens) and (tokens.min() < 0 or tokens.max() >= VOCAB):
            raise CheckFailed(f"{call}: random tokens outside 0..{VOCAB - 1} (min {tokens.min().item()}, max {tokens.max().item()})", RANDOM_RANGE)
        if len(tokens) < 200:
            all_mask = torch.all(inputs[chosen] == NOTEBOOK_MASK).item()
            raise CheckFailed(f"{call}: only {len(tokens)} of the {int(chosen.sum())} chosen positions got a token other than mask_id and their "
                              f"own id; about 10 % ({int(chosen.sum()) // 10}) should get a random token", ALL_MASK if all_mask else None)
        # each visible random token is uniform over the V - 2 ids other than mask_id and its own id
        size = VOCAB // BUCKETS
        counts = torch.bincount(tokens // size, minlength=BUCKETS).double()
        expected = torch.full((BUCKETS,), float(size)).repeat(len(tokens), 1)             # (n, BUCKETS)
        expected[:, NOTEBOOK_MASK // size] -= 1
        expected[torch.arange(len(tokens)), own // size] -= 1
        expected = expected.sum(0) / (VOCAB - 2)
        score = ((counts - expected).square() / expected).sum().item()
        if score > BUCKET_LIMIT:
            raise CheckFailed(f"{call}: the {len(tokens)} random tokens (chosen positions that became neither mask_id nor their own id) are "
                              f"not uniform over 0..{VOCAB - 1}: counts per range of {size} ids {[int(c) for c in counts.tolist()]}, expected "
                              f"about {round(expected[0].item())} each (chi-square {score:.0f} > {BUCKET_LIMIT:.0f}, p = 1e-6); they range over "
                              f"{tokens.min().item()}..{tokens.max().item()}", RANDOM_RANGE)

    def test_same_generator_same_masking(self, student):
        """two generators seeded 7 give the same masking, whatever the global random state"""
        ids = _ids(820)
        results = []
        for global_seed in (821, 822):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(global_seed)          # differs between the calls (where the student's code runs in this process)
                results.append(self.masking(student, ids, 0.15, seed=7))
        (first, first_labels, call), (again, again_labels, _) = results
        if not (torch.equal(first, again) and torch.equal(first_labels, again_labels)):
            differ = int(((first != again) | (first_labels != again_labels)).sum())
            raise CheckFailed(f"two calls {call} gave different results ({differ} of {ids.numel()} positions differ): every random number "
                              f"must come from `generator`", GLOBAL_RNG)

    def test_seeds_give_different_maskings(self, student):
        """generators seeded 7 and 8 give different maskings"""
        ids = _ids(823)
        first, first_labels, call = self.masking(student, ids, 0.15, seed=7)
        other, other_labels, _ = self.masking(student, ids, 0.15, seed=8)
        if torch.equal(first, other) and torch.equal(first_labels, other_labels):
            raise CheckFailed(f"{call} and the same call with a generator seeded 8 gave exactly the same inputs and labels", FIXED_SEED)


# -- masked_lm_loss -----------------------------------------------------------------------------

LOSS_APIS = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss")


def _mlm(logits, labels, log_probs=lambda z: F.log_softmax(z, -1), reduce="mean", clamp=False):
    """The masked-LM loss from `log_probs(logits)`; the options are mistakes."""
    keep = labels != -100
    nll = -log_probs(logits).gather(-1, labels.clamp(min=0)[..., None])[..., 0]       # (B, T), ignored ones as class 0
    if clamp:
        return nll.mean()
    nll = torch.where(keep, nll, torch.zeros_like(nll))
    if reduce == "all":
        return nll.sum() / keep.numel()
    if reduce == "sum":
        return nll.sum()
    if reduce == "rows":
        return (nll.sum(1) / keep.sum(1)).mean()
    return nll.sum() / keep.sum()


def _mlm_mistake(name, fix, **options):
    return Mistake(name, fix, lambda logits, labels: _mlm(logits, labels, **options))


NOT_A_TENSOR = Mistake("returned a Python number, not a 0-d tensor",
                       "return the loss tensor itself (no .item() or float()): a 0-d tensor in the dtype of the logits, which autograd can "
                       "backpropagate through.")
WRONG_DIM = ("softmax over the wrong dim (not the vocabulary)",
             "logits are (B, T, V): normalise over the V tokens, the last dim (dim=-1).")


class TestMaskedLmLoss(Exercise):
    function = "masked_lm_loss"
    forbidden = LOSS_APIS
    mistakes = (
        _mlm_mistake("mean over all positions (ignored ones counted as 0)",
                     "divide by the number of labelled positions, (labels != -100).sum(), not by B·T.", reduce="all"),
        _mlm_mistake("−100 labels scored as token 0 (clamped, not ignored)",
                     "positions with label -100 contribute nothing: select the labelled positions (logits[labels != -100]) before the loss.",
                     clamp=True),
        _mlm_mistake("sum instead of mean", "L is the MEAN over the labelled positions: divide the sum by their number.", reduce="sum"),
        _mlm_mistake("mean of each text's mean (texts weighted equally, not positions)",
                     "average over all labelled positions of the batch at once: a text with few labels must not weigh as much as one with many.",
                     reduce="rows"),
        Mistake(*WRONG_DIM, lambda logits, labels: _mlm(logits, labels, log_probs=lambda z: F.log_softmax(z, 1))),
        Mistake(*WRONG_DIM, lambda logits, labels: _mlm(logits, labels, log_probs=lambda z: F.log_softmax(z, 0))),
        _mlm_mistake("no max-shift before exp (overflows on large logits)",
                     "exp(1000) is inf: use torch.logsumexp(z, -1), or subtract the max of each row before exp.",
                     log_probs=lambda z: z - z.exp().sum(-1, keepdim=True).log()),
        _mlm_mistake("log of softmax (−inf when a probability underflows)",
                     "softmax rounds tiny probabilities to 0 and log 0 = −inf: compute z − logsumexp(z) (or F.log_softmax) directly.",
                     log_probs=lambda z: torch.softmax(z, -1).log()),
        _mlm_mistake("sign flipped (log-likelihood instead of its negative)", "the loss is the NEGATIVE log-likelihood: −log softmax(z)_y.",
                     log_probs=lambda z: -F.log_softmax(z, -1)),
        Mistake("labels of −100 used as indices", "select the labelled positions first (labels != -100), or clamp the labels before gather and "
                "leave the ignored positions out of the mean: -100 is not a token.",
                lambda logits, labels: F.log_softmax(logits, -1).gather(-1, labels[..., None])),
        NOT_A_TENSOR,
    )

    @contextlib.contextmanager
    def sole(self):
        """Name a mistake only when it alone explains the result."""
        saved, self.sole_diagnosis = self.sole_diagnosis, True
        try:
            yield
        finally:
            self.sole_diagnosis = saved

    @staticmethod
    def reference(logits, labels):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

    def test_worked_example(self, student):
        """worked example: 3 positions of 3 tokens, 2 of them labelled"""
        logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 5.0, 0.0], [1.0, 1.0, 1.0]]])
        self.expect(student, logits, torch.tensor([[0, -100, 2]]))

    def test_returns_0d_tensor(self, student):
        """returns a 0-d tensor in the dtype of the logits (float32 and float64)"""
        labels = torch.tensor([[4, -100, 0, -100, 2], [-100, 1, -100, -100, 3]])
        for dtype in (torch.float32, torch.float64):
            logits = randn(2, 5, 6, seed=830, dtype=dtype, scale=2.0)
            got = self.expect(student, logits, labels)
            if not isinstance(got, torch.Tensor):
                raise CheckFailed(f"{self.describe_call((logits, labels), {})} returned {type(got).__name__} {got!r}, expected a 0-d "
                                  f"{str(dtype).removeprefix('torch.')} tensor", NOT_A_TENSOR)

    def test_batch_float32(self, student):
        """(B, T, V) = (3, 5, 7) float32, 2, 1 and 4 labelled positions per text"""
        labels = torch.tensor([[3, -100, -100, 6, -100], [-100, -100, 0, -100, -100], [1, 5, -100, 2, 2]])
        self.expect(student, randn(3, 5, 7, seed=831, scale=2.0), labels)

    def test_batch_float64_with_an_unlabelled_text(self, student):
        """(4, 6, 9) float64, one text without any labelled position"""
        labels = torch.tensor([[8, -100, 1, -100, -100, 0], [-100] * 6, [2, -100, -100, -100, -100, -100], [5, 5, -100, 7, 3, 4]])
        self.expect(student, randn(4, 6, 9, seed=832, dtype=torch.float64, scale=2.0), labels)

    def test_large_logits_float32(self, student):
        """stability: logits of spread 1e3 in float32 (exp overflows, some probabilities underflow to 0)"""
        labels = torch.tensor([[2, -100, 0, 4], [-100, 1, 3, -100], [4, 4, -100, 0]])
        with self.sole():                   # both an overflow and an underflow give inf here: the next checks tell them apart
            self.expect(student, randn(3, 4, 5, seed=833, scale=1000.0), labels)

    def test_unlikely_target_float64(self, student):
        """stability: a target 800 nats below the best token (its probability underflows to 0, float64)"""
        logits = randn(2, 3, 6, seed=835, dtype=torch.float64, scale=2.0)
        logits[0, 1, 4] -= 800.0
        logits[1, 2, 5] -= 750.0
        labels = torch.tensor([[1, 4, -100], [-100, 3, 5]])
        self.expect(student, logits, labels)

    def test_logits_near_1000_float64(self, student):
        """stability: logits near 1000 in float64 (a loss of a few nats)"""
        labels = torch.tensor([[0, -100, 6, 2, -100], [3, 3, -100, -100, 1]])
        self.expect(student, randn(2, 5, 8, seed=834, dtype=torch.float64, scale=3.0, shift=1000.0), labels)


# -- padded_attention ---------------------------------------------------------------------------

ATTENTION_APIS = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention",
                  "torch.nn.functional.multi_head_attention_forward")


def _attend(q, k, v, key_padding_mask, invert=False, ignore=False, fill=-math.inf, after=False, queries=False, scale="sqrt d", dim=-1,
            prefix=False, multiply=False):
    """softmax(q kᵀ/√d + M) v with M = −inf at padding keys; the options are mistakes."""
    d = q.shape[-1]
    divide = {"sqrt d": math.sqrt(d), "none": 1.0, "d": float(d), "sqrt d_v": math.sqrt(v.shape[-1])}[scale]
    scores = q @ k.transpose(-2, -1) / divide                                        # (B, nh, T_q, T_k)
    mask = key_padding_mask
    if prefix:                                                                       # the first n keys taken as the real ones
        mask = torch.arange(mask.shape[1]) >= (~mask).sum(-1, keepdim=True)
    if invert:
        mask = ~mask
    m = mask[:, None, :, None] if queries else mask[:, None, None, :]
    if multiply:
        scores = scores + m * -math.inf
    elif not ignore and not after:
        scores = scores.masked_fill(m, fill)
    weights = torch.softmax(scores, dim)
    if after:
        weights = weights.masked_fill(m, 0.0)
    return weights @ v


def _attention_mistake(name, fix, **options):
    return Mistake(name, fix, lambda q, k, v, key_padding_mask: _attend(q, k, v, key_padding_mask, **options))


QUERY_BROADCAST = _attention_mistake("mask broadcast over queries (key_padding_mask[:, None, :, None])",
                                     "the mask marks KEYS, the last dim of the (B, nh, T_q, T_k) scores: key_padding_mask[:, None, None, :].",
                                     queries=True)


def _padding(*rows):
    """(B, T_k) bool, True at padding, from strings: '.' a real key, 'p' padding."""
    return torch.tensor([[c == "p" for c in row] for row in rows])


def _qkv(B, nh, T_q, T_k, d, d_v, seed, dtype=torch.float32):
    return (randn(B, nh, T_q, d, seed=seed, dtype=dtype), randn(B, nh, T_k, d, seed=seed + 1, dtype=dtype),
            randn(B, nh, T_k, d_v, seed=seed + 2, dtype=dtype))


class TestPaddedAttention(Exercise):
    function = "padded_attention"
    forbidden = ATTENTION_APIS
    sole_diagnosis = True          # one real key hides every scaling mistake: name only what alone explains a result
    mistakes = (
        _attention_mistake("mask inverted (True taken as a real key)",
                           "key_padding_mask is True at PADDING: put −inf where it is True (masked_fill(mask, -inf)), not where it is False.",
                           invert=True),
        _attention_mistake("mask ignored", "add −inf to the scores of the padding keys before the softmax.", ignore=True),
        _attention_mistake("padding scores set to 0 instead of −inf",
                           "a score of 0 still gets weight e⁰ = 1: fill the scores of padding keys with float('-inf') before the softmax.",
                           fill=0.0),
        _attention_mistake("padding weights zeroed after the softmax (rows no longer sum to 1)",
                           "mask the scores with −inf BEFORE the softmax, so that each row of weights sums to 1 over the real keys.",
                           after=True),
        QUERY_BROADCAST,
        _attention_mistake("mask multiplied by −inf (0 · (−inf) = nan at real keys)",
                           "0 · (−inf) is nan: use scores.masked_fill(mask, float('-inf')) or torch.where(mask, -inf, scores), not mask * -inf.",
                           multiply=True),
        _attention_mistake("padding assumed at the end (the first n keys kept)",
                           "padding can be anywhere: use key_padding_mask itself, not the number of real keys.", prefix=True),
        _attention_mistake("no 1/√d scaling", "divide the scores q kᵀ by √d, d = q.shape[-1].", scale="none"),
        _attention_mistake("scores divided by d instead of √d", "divide by math.sqrt(d), not by d.", scale="d"),
        _attention_mistake("scores divided by √d_v (the size of v) instead of √d",
                           "the scale comes from the size of q and k: d = q.shape[-1], not v.shape[-1].", scale="sqrt d_v"),
        _attention_mistake("softmax over the query axis",
                           "each query's weights are a distribution over the keys: softmax over the last dim of the (T_q, T_k) scores.", dim=-2),
    )

    @staticmethod
    def reference(q, k, v, key_padding_mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=~key_padding_mask[:, None, None, :])

    def expect(self, student, *args, **kwargs):
        """As Exercise.expect; a call that raises is retried with T_q = T_k, where a mask broadcast over queries runs and shows."""
        try:
            return super().expect(student, *args, **kwargs)
        except CheckFailed as failure:
            q, k, v, mask = args
            if failure.mistake is not None or "raised" not in str(failure) or q.shape[2] == k.shape[2]:
                raise
            square = randn(*q.shape[:2], k.shape[2], q.shape[3], seed=839, dtype=q.dtype)
            try:
                got = self.call(student, square, k, v, mask)
            except CheckFailed:
                raise failure from None
            if self.diagnose(got, (square, k, v, mask), {}, q.dtype) is QUERY_BROADCAST:
                raise CheckFailed(f"{failure} (with as many queries as keys, T_q = T_k = {k.shape[2]}, it runs)", QUERY_BROADCAST) from None
            raise

    def test_padding_changes_nothing(self, student):
        """padding keys and values changed to 1e3: the outputs do not move (float64, T_q = 3, T_k = 6)"""
        q, k, v = _qkv(2, 3, 3, 6, 4, 5, seed=840, dtype=torch.float64)
        mask = _padding("....pp", "..pppp")
        changed_k, changed_v = k.clone(), v.clone()
        changed_k[mask[:, None, :, None].expand_as(k)] = 1e3
        changed_v[mask[:, None, :, None].expand_as(v)] = 1e3
        try:
            before = self.call(student, q, k, v, mask)
            after = self.call(student, q, changed_k, changed_v, mask)
        except CheckFailed:
            self.expect(student, q, k, v, mask)          # names what it can (a mask broadcast over queries raises)
            raise
        problem = difference(after, before, torch.float64)
        if problem:
            raise CheckFailed(f"{self.describe_call((q, k, v, mask), {})}: changing k and v at the padding keys to 1e3 moved the output "
                              f"({problem.removeprefix('result ')}); padding keys must get weight 0",
                              self.diagnose(before, (q, k, v, mask), {}, torch.float64))
        self.expect(student, q, k, v, mask)

    def test_worked_example(self, student):
        """worked example: q = k = 0 makes each query average the values of the real keys"""
        q, k = torch.zeros(2, 1, 2, 3), torch.zeros(2, 1, 4, 3)
        v = torch.arange(16.0).view(2, 1, 4, 2)
        self.expect(student, q, k, v, _padding("..pp", ".ppp"))

    def test_float32(self, student):
        """(B, nh, T_q, T_k) = (3, 2, 5, 7), d = 4, d_v = 6, float32, padding at the end"""
        self.expect(student, *_qkv(3, 2, 5, 7, 4, 6, seed=842), _padding(".......", ".....pp", "..ppppp"))

    def test_float64(self, student):
        """(2, 4, 6, 3), d = 8, d_v = 2, float64"""
        self.expect(student, *_qkv(2, 4, 6, 3, 8, 2, seed=845, dtype=torch.float64), _padding("..p", "..."))

    def test_padding_anywhere(self, student):
        """padding at the start and scattered (not only at the end), float64"""
        self.expect(student, *_qkv(3, 2, 4, 6, 5, 3, seed=848, dtype=torch.float64), _padding("pp....", ".p.p.p", "ppppp."))

    def test_one_real_key(self, student):
        """a text with one real key: every query returns that key's value (float32)"""
        self.expect(student, *_qkv(2, 3, 4, 5, 6, 7, seed=851), _padding("pp.pp", "...p."))

    def test_no_padding(self, student):
        """no padding: ordinary attention, one query, float64"""
        self.expect(student, *_qkv(2, 2, 1, 5, 3, 4, seed=854, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.bool))

    def test_more_queries_than_keys(self, student):
        """T_q = 9 > T_k = 4, float32, scores of size ~10"""
        q, k, v = _qkv(2, 2, 9, 4, 5, 3, seed=857)
        self.expect(student, q * 3, k * 3, v, _padding("...p", ".ppp"))


# -- linear_warmup_decay_lr ---------------------------------------------------------------------

def _linear(step, max_lr, warmup_steps, total_steps, warmup="t/W", span="T-W", clamp=True, floor=False, scaled=True):
    """Hugging Face's linear schedule with warmup; the options are mistakes."""
    W, T = warmup_steps, total_steps
    top = max_lr if scaled else 1.0
    if step < W:
        if floor:
            return top * (step // W)
        return top * {"t/W": step / W, "t+1/W": (step + 1) / W, "t+1/W+1": (step + 1) / (W + 1), "t/W-1": step / (W - 1)}[warmup]
    if floor:
        return top * max(0, (T - step) // (T - W))
    value = (T - step) / {"T-W": T - W, "T": T, "T-W+1": T - W + 1}[span]
    return top * (max(0.0, value) if clamp else value)


def _schedule_mistake(name, fix, **options):
    return Mistake(name, fix, lambda step, max_lr, warmup_steps, total_steps: _linear(step, max_lr, warmup_steps, total_steps, **options))


def _hf_factor(warmup_steps, total_steps):
    """Hugging Face's get_linear_schedule_with_warmup multiplier."""
    def factor(step):
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


class _OneGroup(torch.optim.Optimizer):
    """An optimizer with one parameter group and no parameters: all a scheduler reads and writes.

    (A real optimizer would do as well, but building the first one imports torch._dynamo, about 1 s.)
    """

    def __init__(self, lr):                                  # not super().__init__: it wants parameters
        self.defaults, self.state, self.param_groups = {}, {}, [{"lr": lr, "params": []}]


def _lambda_lr(max_lr, warmup_steps, total_steps, steps):
    """The learning rate torch's LambdaLR sets at steps 0..steps-1 with Hugging Face's linear multiplier."""
    optimizer = _OneGroup(max_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                      # no optimizer.step() between scheduler steps: nothing to train
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _hf_factor(warmup_steps, total_steps))
        lrs = []
        for _ in range(steps):
            lrs.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
    return lrs


class TestLinearWarmupDecayLr(Exercise):
    function = "linear_warmup_decay_lr"
    forbidden = ("torch.optim.lr_scheduler",)
    mistakes = (
        _schedule_mistake("warmup as (step + 1)/warmup_steps (ps5's convention, not this notebook's)",
                          "not a conceptual error, but it differs from this course's convention (Hugging Face's step/W): here the warmup is "
                          "max_lr·step/warmup_steps, so step 0 has learning rate 0 and step warmup_steps reaches max_lr.", warmup="t+1/W"),
        _schedule_mistake("warmup as (step + 1)/(warmup_steps + 1) (nanoGPT's convention, not this notebook's)",
                          "it differs from this course's convention (Hugging Face's step/W): max_lr·step/warmup_steps during warmup.",
                          warmup="t+1/W+1"),
        _schedule_mistake("warmup reaches max_lr at step warmup_steps − 1 (step / (warmup_steps − 1))",
                          "divide by warmup_steps: max_lr·step/warmup_steps reaches max_lr at step warmup_steps, where the decay starts.",
                          warmup="t/W-1"),
        _schedule_mistake("decay spread over total_steps ((T − step)/T)",
                          "the decay spans the steps after warmup: (total_steps − step)/(total_steps − warmup_steps), 1 at step warmup_steps.",
                          span="T"),
        _schedule_mistake("decay divided by T − W + 1 (does not reach 0 at total_steps)",
                          "divide by total_steps − warmup_steps: the rate is max_lr at step warmup_steps and 0 at step total_steps.",
                          span="T-W+1"),
        _schedule_mistake("negative after total_steps (no clamp at 0)", "from total_steps on the rate stays 0: max(0, (T − step)/(T − W)).",
                          clamp=False),
        _schedule_mistake("floor division (//)", "use true division /: // rounds down, to 0 during most of the schedule.", floor=True),
        _schedule_mistake("max_lr not applied (the multiplier returned)", "multiply the factor by max_lr.", scaled=False),
    )

    @staticmethod
    def reference(step, max_lr, warmup_steps, total_steps):
        return _linear(step, max_lr, warmup_steps, total_steps)

    def expect_rates(self, student, max_lr, warmup_steps, total_steps, steps, wants, where=""):
        """The student's rates at `steps` must be numbers (or 0-d tensors) within 1e-6·max_lr of `wants`.

        A mismatch is named by the mistake whose rates equal the student's at every one of these steps, when only one does.
        """
        values = []
        for step in steps:
            got = self.call(student, step, max_lr, warmup_steps, total_steps)
            value = got.item() if isinstance(got, torch.Tensor) and got.dim() == 0 else got
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise CheckFailed(f"linear_warmup_decay_lr({step}, {max_lr}, {warmup_steps}, {total_steps}) should return a number "
                                  f"(a Python float or a 0-d tensor), got {describe(got)}")
            values.append(value)
        for step, value, want in zip(steps, values, wants):
            if math.isfinite(value) and abs(value - want) <= 1e-6 * max_lr:
                continue
            names = {m.name: m for m in self.mistakes
                     if all(_close(v, m.compute(s, max_lr, warmup_steps, total_steps), max_lr) for s, v in zip(steps, values))}
            raise CheckFailed(f"linear_warmup_decay_lr({step}, {max_lr}, {warmup_steps}, {total_steps}) returned {value:.6g}, expected "
                              f"{want:.6g}{where}", next(iter(names.values())) if len(names) == 1 else None)

    def expect_schedule(self, student, max_lr, warmup_steps, total_steps):
        steps = range(total_steps + 6)
        self.expect_rates(student, max_lr, warmup_steps, total_steps, steps, _lambda_lr(max_lr, warmup_steps, total_steps, len(steps)),
                          " (the rate LambdaLR sets with Hugging Face's linear multiplier)")

    def test_step_zero(self, student):
        """step 0 has learning rate 0 (Hugging Face's step / W)"""
        self.expect_rates(student, 0.5, 10, 47, [0], [0.0])

    def test_end_of_warmup(self, student):
        """step W − 1 is max_lr·(W − 1)/W, step W reaches max_lr"""
        self.expect_rates(student, 0.5, 10, 47, [9, 10], [0.45, 0.5])

    def test_total_steps_and_after(self, student):
        """step T has learning rate 0, and so have T + 1 and T + 20 (never negative)"""
        self.expect_rates(student, 0.5, 10, 47, [47, 48, 67], [0.0, 0.0, 0.0])

    def test_schedule_small_lr(self, student):
        """every step 0..35 with max_lr 3e-4, W = 7, T = 30, as LambdaLR"""
        self.expect_schedule(student, 3e-4, 7, 30)

    def test_schedule_long_warmup(self, student):
        """every step 0..52 with max_lr 0.5, W = 10, T = 47, as LambdaLR"""
        self.expect_schedule(student, 0.5, 10, 47)

    def test_schedule_int_max_lr(self, student):
        """every step 0..16 with an int max_lr = 2, W = 3, T = 11, as LambdaLR"""
        self.expect_schedule(student, 2, 3, 11)


def _close(value, want, max_lr):
    return isinstance(want, (int, float)) and math.isfinite(value) and abs(value - want) <= 1e-6 * max_lr


# -- masked_mean_pool ---------------------------------------------------------------------------

def _pool(hidden, pad, real="~pad", divide="count", dim=1, keepdim=False):
    """Σ_t m_t x_t / Σ_t m_t with m = ~pad, over dim 1; the options are mistakes."""
    T = hidden.shape[1]
    m = {"~pad": ~pad, "pad": pad, "all": torch.ones_like(pad),
         "prefix": torch.arange(T) < (~pad).sum(-1, keepdim=True)}[real]                # (B, T) bool
    m = m[..., None].to(hidden.dtype)                                                     # (B, T, 1)
    total = (hidden * m).sum(dim, keepdim=keepdim)
    if divide == "none":
        return total
    return total / (T if divide == "T" else m.sum(dim, keepdim=keepdim))


def _pool_mistake(name, fix, **options):
    return Mistake(name, fix, lambda hidden, pad: _pool(hidden, pad, **options))


POOL_WRONG_DIM = ("averaged over the wrong dim (not dim 1, the T positions)",
                  "hidden is (B, T, C): sum the masked states over dim 1 and divide by the number of real positions of each text, "
                  "which gives one (C,) vector per text, (B, C).")
POOL_DTYPE = Mistake("result in float32 for float64 hidden states",
                     "`torch.zeros(B, C)` (or .float()) is float32 whatever hidden is: keep hidden's dtype (torch.zeros_like, "
                     "hidden.new_zeros, or compute with tensor operations on hidden).")


def _states(B, T, C, seed, pad, dtype=torch.float32):
    """(B, T, C) hidden states of size ~1, and 1e3 + noise at the padding positions (a mean that counts them shows)."""
    hidden = randn(B, T, C, seed=seed, dtype=torch.float64)
    hidden[pad] += 1e3
    return hidden.to(dtype)


class TestMaskedMeanPool(Exercise):
    function = "masked_mean_pool"
    in_place_fix = ("`hidden[pad] = 0` (or hidden *= mask) changes the caller's hidden states: multiply into a new tensor, "
                    "hidden * mask, or use hidden.masked_fill(pad[..., None], 0).")
    mistakes = (
        _pool_mistake("plain mean over T (padding counted)",
                      "padding positions must not count: sum hidden * m over the positions and divide by Σ_t m_t, with m = ~pad.", real="all"),
        _pool_mistake("mask inverted (the mean over the padding)",
                      "pad is True AT padding: the real positions are ~pad (m = 1 where pad is False).", real="pad"),
        _pool_mistake("divided by T instead of the number of real positions",
                      "divide by each text's own count of real positions, (~pad).sum(1, keepdim=True), not by T.", divide="T"),
        _pool_mistake("sum of the real positions (not divided by their number)",
                      "the mean divides the masked sum by the number of real positions, (~pad).sum(1, keepdim=True).", divide="none"),
        _pool_mistake("padding assumed at the end (the first n positions averaged)",
                      "padding can be anywhere (at the start, in between): use the mask ~pad itself, not the number of real positions.",
                      real="prefix"),
        _pool_mistake("result of shape (B, 1, C) (keepdim=True on the sum)",
                      "sum over dim 1 without keepdim: the result is (B, C); only the count needs keepdim=True to broadcast.", keepdim=True),
        Mistake(*POOL_WRONG_DIM, lambda hidden, pad: _pool(hidden, pad, dim=0)),
        Mistake(*POOL_WRONG_DIM, lambda hidden, pad: _pool(hidden, pad, dim=2)),
        Mistake("one mean over every real position of the batch (hidden[~pad].mean(0), shape (C,))",
                "hidden[~pad] flattens the texts together: average each text separately, one (C,) vector per text, (B, C).",
                lambda hidden, pad: hidden[~pad].mean(0)),
        Mistake("count without keepdim ((B, C) divided by (B,))",
                "(~pad).sum(1) has shape (B,), which broadcasts against the LAST dim of (B, C): use (~pad).sum(1, keepdim=True), (B, 1).",
                lambda hidden, pad: (hidden * (~pad)[..., None]).sum(1) / (~pad).sum(1)),
        Mistake("mask not broadcast over C (pad (B, T) times hidden (B, T, C))",
                "give the mask a last dim of size 1 so it broadcasts over the C features: (~pad)[..., None] or (~pad).unsqueeze(-1).",
                lambda hidden, pad: (hidden * (~pad)).sum(1) / (~pad).sum(1, keepdim=True)),
        POOL_DTYPE,
    )

    @staticmethod
    def reference(hidden, pad):
        return (hidden * (~pad)[..., None]).sum(1) / (~pad).sum(1, keepdim=True)

    def diagnose(self, got, args, kwargs, dtype, sole=None):
        """Also name the right means in the wrong dtype."""
        if isinstance(got, torch.Tensor) and got.dtype.is_floating_point and got.dtype != dtype:
            hidden, pad = args
            if matches(got.float(), self.reference(hidden.double(), pad).float(), torch.float32):
                return POOL_DTYPE
        return super().diagnose(got, args, kwargs, dtype, sole)

    def test_worked_example(self, student):
        """worked example: (B, T, C) = (2, 4, 3), padding (100) at the end of text 0 and scattered in text 1"""
        hidden = torch.tensor([[[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [100.0, 100.0, 100.0], [100.0, 100.0, 100.0]],
                               [[100.0, 100.0, 100.0], [2.0, 0.0, 4.0], [100.0, 100.0, 100.0], [6.0, 2.0, 0.0]]])
        self.expect(student, hidden, _padding("..pp", "p.p."))

    def test_padding_changes_nothing(self, student):
        """the padding's hidden states changed by 1e3: the result does not move (float64, padding at the end, start and scattered)"""
        pad = _padding("....pp", "pp....", ".p.p..")
        hidden = randn(3, 6, 4, seed=860, dtype=torch.float64)
        changed = hidden.clone()
        changed[pad] += 1e3
        try:
            before = self.call(student, hidden, pad)
            after = self.call(student, changed, pad)
        except CheckFailed:
            self.expect(student, hidden, pad)          # names what it can (a count without keepdim raises)
            raise
        problem = difference(after, before, before.dtype if isinstance(before, torch.Tensor) else torch.float64)   # dtype and shape: below
        if problem:
            raise CheckFailed(f"{self.describe_call((hidden, pad), {})}: changing hidden by 1e3 at the padding positions moved the result "
                              f"({problem.removeprefix('result ')}); padding must not count", self.diagnose(before, (hidden, pad), {}, torch.float64))
        self.expect(student, hidden, pad)

    def test_float32_padding_at_the_end(self, student):
        """(B, T, C) = (3, 5, 4) float32, padding (1e3) at the end: 5, 3 and 1 real positions"""
        pad = _padding(".....", "...pp", ".pppp")
        self.expect(student, _states(3, 5, 4, seed=862, pad=pad), pad)

    def test_float64_padding_anywhere(self, student):
        """(4, 6, 5) float64, padding (1e3) at the start and scattered, one text without padding"""
        pad = _padding("pp....", "ppppp.", "p.p.p.", "......")
        self.expect(student, _states(4, 6, 5, seed=864, pad=pad, dtype=torch.float64), pad)

    def test_one_real_position(self, student):
        """texts of one real position return that position's hidden state (float32, (3, 5, 2), one text of two)"""
        pad = _padding("pp.pp", "pppp.", ".ppp.")
        self.expect(student, _states(3, 5, 2, seed=866, pad=pad), pad)

    def test_no_padding_float64(self, student):
        """no padding: the plain mean over the T = 7 positions (float64, (2, 7, 3))"""
        self.expect(student, randn(2, 7, 3, seed=868, dtype=torch.float64, scale=2.0), torch.zeros(2, 7, dtype=torch.bool))

    def test_notebook_sizes(self, student):
        """the notebook's sizes: (B, T, C) = (16, 40, 48) float32, texts of 1..40 tokens padded at the end"""
        lengths = torch.randint(1, 41, (16,), generator=seeded(870))
        lengths[0] = 40
        pad = torch.arange(40) >= lengths[:, None]
        self.expect(student, _states(16, 40, 48, seed=871, pad=pad), pad)


# -- merge_lora ---------------------------------------------------------------------------------

def _merge(W, A, B, alpha, scale="alpha/r", product="BA", frozen_scaled=False):
    """W + (alpha / r) B A with r = A.shape[0]; the options are mistakes."""
    r = A.shape[0]
    s = {"alpha/r": alpha / r, "1": 1.0, "alpha": alpha, "alpha*r": alpha * r, "r/alpha": r / alpha, "alpha//r": alpha // r,
         "alpha/out": alpha / B.shape[0], "alpha/in": alpha / A.shape[1]}[scale]
    update = {"BA": lambda: B @ A, "AB": lambda: A @ B, "ATBT": lambda: A.T @ B.T}[product]()
    return s * (W + update) if frozen_scaled else W + s * update


def _merge_mistake(name, fix, **options):
    return Mistake(name, fix, lambda W, A, B, alpha: _merge(W, A, B, alpha, **options))


WRONG_PRODUCT = ("update in the wrong order or transposed (A @ B, Aᵀ Bᵀ)",
                 "W is (out, in), B (out, r) and A (r, in): B @ A is (out, in), the shape of W; A @ B and A.T @ B.T are not.")


class TestMergeLora(Exercise):
    function = "merge_lora"
    sole_diagnosis = True          # where two scales coincide (alpha = 8, r = 4: alpha // r = alpha / r) name neither
    in_place_fix = ("`W += ...` (or W.add_) changes the pretrained weight the caller keeps (in the notebook's LoRALinear the frozen "
                    "weight would grow at every forward pass): return W + (alpha / r) * (B @ A), a new tensor.")
    mistakes = (
        _merge_mistake("no alpha / r scaling", "multiply the update B A by alpha / r.", scale="1"),
        _merge_mistake("alpha not divided by r", "the update is scaled by alpha / r, where r = A.shape[0].", scale="alpha"),
        _merge_mistake("multiplied by alpha · r", "divide alpha by r: the scale is alpha / r.", scale="alpha*r"),
        _merge_mistake("multiplied by r / alpha", "the scale is alpha / r, not r / alpha.", scale="r/alpha"),
        _merge_mistake("integer division alpha // r", "use true division alpha / r: with alpha = 5 and r = 2 the scale is 2.5, not 2.",
                       scale="alpha//r"),
        _merge_mistake("r taken from B.shape[0] (out) instead of A.shape[0]", "r is the rank: A is (r, in), so r = A.shape[0].",
                       scale="alpha/out"),
        _merge_mistake("r taken from A.shape[1] (in) instead of A.shape[0]", "A is (r, in): the rank is its FIRST dim, r = A.shape[0].",
                       scale="alpha/in"),
        _merge_mistake("W scaled too ((alpha / r)(W + B A))", "only the update B A is scaled: W + (alpha / r) * (B @ A).", frozen_scaled=True),
        Mistake(*WRONG_PRODUCT, lambda W, A, B, alpha: _merge(W, A, B, alpha, product="AB")),
        Mistake(*WRONG_PRODUCT, lambda W, A, B, alpha: _merge(W, A, B, alpha, product="ATBT")),
    )

    @staticmethod
    def reference(W, A, B, alpha):
        return W + (alpha / A.shape[0]) * (B @ A)

    def test_worked_example(self, student):
        """worked example: out=3, in=4, r=2, alpha=5 (scale 2.5)"""
        W = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
        A = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
        B = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
        self.expect(student, W, A, B, 5)

    def test_non_square_float32(self, student):
        """out=6, in=7, r=2, alpha=5.0 (a float, not a multiple of r), float32"""
        self.expect(student, randn(6, 7, seed=880), randn(2, 7, seed=881), randn(6, 2, seed=882), 5.0)

    def test_int_alpha_float64(self, student):
        """out=5, in=8, r=3, an int alpha=7 (7 / 3, not 7 // 3), float64"""
        self.expect(student, randn(5, 8, seed=883, dtype=torch.float64), randn(3, 8, seed=884, dtype=torch.float64),
                    randn(5, 3, seed=885, dtype=torch.float64), 7)

    def test_rank_4_float64(self, student):
        """out=6, in=9, r=4, alpha=10.0, float64, B of size ~3"""
        self.expect(student, randn(6, 9, seed=886, dtype=torch.float64), randn(4, 9, seed=887, dtype=torch.float64),
                    randn(6, 4, seed=888, dtype=torch.float64, scale=3.0), 10.0)

    def test_merged_layer_is_the_lora_layer(self, student):
        """x W'ᵀ equals the LoRA layer's x Wᵀ + (α/r) x Aᵀ Bᵀ: the notebook's qkv layer (out=144, in=48, r=4, alpha=8.0), float32"""
        W, A, B = randn(144, 48, seed=889, scale=0.15), randn(4, 48, seed=890, scale=0.15), randn(144, 4, seed=891, scale=0.1)
        x = randn(5, 48, seed=892, dtype=torch.float64)
        merged = self.call(student, W, A, B, 8.0)
        if not isinstance(merged, torch.Tensor) or merged.shape != W.shape or merged.dtype != W.dtype:
            self.expect(student, W, A, B, 8.0)                  # says what is wrong with the result
        W64, A64, B64 = W.double(), A.double(), B.double()
        lora = x @ W64.T + (8.0 / 4) * (x @ A64.T @ B64.T)
        problem = difference(x @ merged.double().T, lora, torch.float64, tolerance={torch.float64: TOLERANCE[torch.float32]})  # W' is float32
        if problem:
            raise CheckFailed(f"x @ merge_lora(W, A, B, 8.0).T with x float64 (5, 48), W (144, 48), A (4, 48), B (144, 4) should be the LoRA "
                              f"layer's output x Wᵀ + (8.0/4) x Aᵀ Bᵀ: {problem.removeprefix('result ')}",
                              self.diagnose(merged, (W, A, B, 8.0), {}, torch.float32))
