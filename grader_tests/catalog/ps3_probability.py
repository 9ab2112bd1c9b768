"""What students write for ps3_probability: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Reflective, Variant

MUTANTS = [
    # -- log_softmax
    Mutant("log_softmax", "log of softmax (−inf when a probability underflows)", '''
def log_softmax(logits, dim=-1):
    e = torch.exp(logits - logits.amax(dim=dim, keepdim=True))
    return torch.log(e / e.sum(dim=dim, keepdim=True))
'''),
    Mutant("log_softmax", "no max-shift before exp (overflows on large logits)", '''
def log_softmax(logits, dim=-1):
    return logits - torch.log(torch.exp(logits).sum(dim=dim, keepdim=True))
'''),
    Mutant("log_softmax", "max subtracted but not added back", '''
def log_softmax(logits, dim=-1):
    m = logits.max(dim=dim, keepdim=True).values
    lse = torch.log(torch.exp(logits - m).sum(dim=dim, keepdim=True))
    return logits - lse
'''),
    Mutant("log_softmax", "`dim` ignored (always the last one)", '''
def log_softmax(logits, dim=-1):
    shifted = logits - logits.amax(-1, keepdim=True)
    return shifted - shifted.exp().sum(-1, keepdim=True).log()
'''),
    Mutant("log_softmax", "shifted by the max of the whole tensor", '''
def log_softmax(logits, dim=-1):
    shifted = logits - logits.max()
    return shifted - torch.log(torch.sum(torch.exp(shifted), dim=dim, keepdim=True))
'''),
    # -- cross_entropy
    Mutant("cross_entropy", "mean over all N targets (ignored ones counted)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    log_probs = log_softmax(logits, dim=-1)
    keep = targets != ignore_index
    losses = -log_probs[torch.arange(len(targets)), targets.clamp(min=0)] * keep
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.mean()
'''),
    Mutant("cross_entropy", "ignored rows not zeroed (scored as class 0)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    log_probs = log_softmax(logits, dim=-1)
    keep = targets != ignore_index
    safe = torch.where(keep, targets, torch.zeros_like(targets))
    losses = -log_probs.gather(1, safe[:, None])[:, 0]
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses[keep].sum()
    return losses[keep].mean()
'''),
    Mutant("cross_entropy", "softmax applied twice (the loss was given probabilities)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    probs = torch.softmax(logits, dim=-1)
    log_probs = log_softmax(probs, dim=-1)
    keep = targets != ignore_index
    losses = -log_probs.gather(1, targets.masked_fill(~keep, 0).unsqueeze(1)).squeeze(1) * keep
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / keep.sum()
'''),
    Mutant("cross_entropy", "log(softmax(x)) (inf when a target's probability underflows)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    probs = torch.softmax(logits, dim=1)
    keep = targets != ignore_index
    picked = probs[torch.arange(logits.shape[0]), targets.masked_fill(~keep, 0)]
    losses = torch.where(keep, -torch.log(picked), torch.zeros_like(picked))
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / keep.sum()
'''),
    Mutant("cross_entropy", "ignore_index not used (hard-coded −100)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    log_probs = log_softmax(logits, dim=-1)
    keep = targets != -100
    safe = targets.masked_fill(~keep, 0)
    losses = -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    losses = losses.masked_fill(~keep, 0.0)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / keep.sum()
'''),
    # -- gaussian_mle
    Mutant("gaussian_mle", "unbiased variance (divided by N − 1)", '''
def gaussian_mle(x):
    return x.mean(), x.var()
'''),
    Mutant("gaussian_mle", "standard deviation instead of variance", '''
def gaussian_mle(x):
    mu = x.mean()
    return mu, torch.sqrt(((x - mu) ** 2).mean())
'''),
    Mutant("gaussian_mle", "unbiased standard deviation (x.std())", '''
def gaussian_mle(x):
    return torch.mean(x), torch.std(x)
'''),
    Mutant("gaussian_mle", "variance not centred (mean of x², not of (x − μ)²)", '''
def gaussian_mle(x):
    mu = x.sum() / len(x)
    var = (x * x).sum() / len(x)
    return mu, var
'''),
    Mutant("gaussian_mle", "(var, mu) returned in the wrong order", '''
def gaussian_mle(x):
    return torch.var_mean(x, correction=0)
'''),
    # -- kl_divergence
    Mutant("kl_divergence", "KL reversed (computed KL(q ‖ p))", '''
def kl_divergence(p, q):
    return torch.where(q > 0, q * torch.log(q / p), torch.zeros_like(q)).sum(-1)
'''),
    Mutant("kl_divergence", "0 · log 0 gives nan", '''
def kl_divergence(p, q):
    return (p * torch.log(p / q)).sum(dim=-1)
'''),
    Mutant("kl_divergence", "log base 2 (bits instead of nats)", '''
def kl_divergence(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) / math.log(2)
'''),
    Mutant("kl_divergence", "cross-entropy instead of KL (−Σ p log q)", '''
def kl_divergence(p, q):
    return -torch.where(p > 0, p * q.log(), torch.zeros_like(p)).sum(-1)
'''),
    Mutant("kl_divergence", "summed over every dimension", '''
def kl_divergence(p, q):
    return torch.sum(torch.xlogy(p, p) - torch.xlogy(p, q))
'''),
    # -- sample_categorical
    Mutant("sample_categorical", "temperature ignored", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
'''),
    Mutant("sample_categorical", "temperature multiplied instead of divided", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits * temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
'''),
    Mutant("sample_categorical", "always the argmax (no sampling)", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    return torch.argmax(logits, dim=-1)
'''),
    Mutant("sample_categorical", "generator ignored", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, num_samples=1).squeeze(1)
'''),
    Mutant("sample_categorical", "softmax over the batch dim (dim 0)", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(dim=1)
    probs = torch.softmax(logits / temperature, dim=0)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
'''),

    # -- more mistakes, and the edge inputs that expose them
    Mutant("log_softmax", "returned probabilities, not log-probabilities", '''
def log_softmax(logits, dim=-1):
    e = torch.exp(logits - logits.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
'''),
    Mutant("log_softmax", "normalised over the whole tensor", '''
def log_softmax(logits, dim=-1):
    shifted = logits - logits.max()
    return shifted - torch.log(torch.exp(shifted).sum())
'''),
    Mutant("log_softmax", "log(exp(x) / Σ exp(x)) without a max-shift (nan on large logits)", '''
def log_softmax(logits, dim=-1):
    e = logits.exp()
    return torch.log(e / e.sum(dim=dim, keepdim=True))
'''),
    Mutant("cross_entropy", "reduction ignored (always the sum)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    picked = log_softmax(logits, dim=-1).gather(1, targets.masked_fill(~keep, 0)[:, None])[:, 0]
    return -(picked * keep).sum()
'''),
    Mutant("log_softmax", "dim hard-coded to 1 (right only for 2-D logits)", '''
def log_softmax(logits, dim=-1):
    m = logits.max(1, keepdim=True).values
    shifted = logits - m
    return shifted - shifted.exp().sum(1, keepdim=True).log()
'''),
    Mutant("log_softmax", "max without keepdim=True (the shift varies along dim)", '''
def log_softmax(logits, dim=-1):
    shifted = logits - logits.amax(dim=dim)
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))
'''),
    Mutant("cross_entropy", "sign flipped (log-likelihood instead of its negative)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    picked = log_softmax(logits, dim=-1).gather(1, targets.masked_fill(~keep, 0)[:, None])[:, 0]
    losses = torch.where(keep, picked, torch.zeros_like(picked))
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / keep.sum()
'''),
    Mutant("cross_entropy", "reduction ignored (always the mean)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    picked = log_softmax(logits, dim=-1).gather(1, targets.masked_fill(~keep, 0)[:, None])[:, 0]
    losses = -picked * keep
    return losses.sum() / keep.sum()
'''),
    Mutant("cross_entropy", "no max-shift before exp (overflows on large logits)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    log_probs = logits - logits.exp().sum(dim=1, keepdim=True).log()
    keep = targets != ignore_index
    losses = -log_probs.gather(1, targets.masked_fill(~keep, 0)[:, None])[:, 0] * keep
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / keep.sum()
'''),
    Mutant("cross_entropy", "softmax over the wrong dim (dim 0)", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    log_probs = log_softmax(logits, dim=0)
    keep = targets != ignore_index
    losses = -log_probs.gather(1, targets.masked_fill(~keep, 0)[:, None])[:, 0] * keep
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / keep.sum()
'''),
    Mutant("cross_entropy", "ignored rows dropped from 'none' (shape (kept,), not (N,))", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    log_probs = log_softmax(logits[keep], dim=-1)
    losses = -log_probs[torch.arange(int(keep.sum())), targets[keep]]
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()
'''),
    Mutant("cross_entropy", "returned a Python number, not a 0-d tensor", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    losses = -log_softmax(logits, dim=-1).gather(1, targets.masked_fill(~keep, 0)[:, None])[:, 0] * keep
    if reduction == "none":
        return losses
    total = losses.sum().item()
    return total if reduction == "sum" else total / keep.sum().item()
'''),
    Mutant("gaussian_mle", "one-pass variance E[x²] − μ² (cancels when the data sit far from 0)", '''
def gaussian_mle(x):
    n = x.shape[0]
    mu = x.sum() / n
    return mu.item(), ((x ** 2).sum() / n - mu ** 2).item()
'''),
    Mutant("gaussian_mle", "squared the mean deviation ((mean(x − μ))² = 0)", '''
def gaussian_mle(x):
    mu = x.mean()
    var = (x - mu).mean() ** 2
    return mu, var
'''),
    Mutant("kl_divergence", "summed over dim 0 instead of the last dim", '''
def kl_divergence(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=0)
'''),
    Mutant("kl_divergence", "summed over dim 1 (right only for 2-D p)", '''
def kl_divergence(p, q):
    terms = torch.where(p > 0, p * torch.log(p / q), torch.zeros_like(p))
    return terms.sum(dim=1)
'''),
    Mutant("kl_divergence", "log ratio inverted (Σ p log(q / p), the negative of KL)", '''
def kl_divergence(p, q):
    return torch.where(p > 0, p * (q.log() - p.log()), 0.0).sum(-1)
'''),
    Mutant("sample_categorical", "sample dim not squeezed ((N, 1) instead of (N,))", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)
'''),
    Mutant("sample_categorical", "temperature 0 not handled (logits / 0)", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    scaled = logits / temperature
    probs = torch.exp(scaled - scaled.amax(-1, keepdim=True))
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
'''),
]

VARIANTS = [
    # -- log_softmax
    Variant("log_softmax", "x minus a hand-written logsumexp (m + log Σ exp(x − m))", '''
def log_softmax(logits, dim=-1):
    m = logits.max(dim=dim, keepdim=True).values
    lse = m + torch.log(torch.sum(torch.exp(logits - m), dim=dim, keepdim=True))
    return logits - lse
'''),
    Variant("log_softmax", "move dim last, work on the last dim, move it back", '''
def log_softmax(logits, dim=-1):
    x = logits.movedim(dim, -1)
    shifted = x - x.amax(-1, keepdim=True)
    out = shifted - torch.log(torch.exp(shifted).sum(-1, keepdim=True))
    return out.movedim(-1, dim)
'''),
    Variant("log_softmax", "log1p of the other terms (the max term is exp(0) = 1)", '''
def log_softmax(logits, dim=-1):
    shifted = logits - logits.amax(dim, keepdim=True)
    rest = shifted.exp().sum(dim, keepdim=True) - 1.0
    return shifted - torch.log1p(rest)
'''),
    # -- cross_entropy
    Variant("cross_entropy", "one-hot targets times log-probabilities", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    keep = (targets != ignore_index)
    one_hot = F.one_hot(targets.clamp(min=0), logits.shape[-1]).to(logits.dtype)
    one_hot = one_hot * keep.unsqueeze(-1)
    losses = -(one_hot * log_softmax(logits, dim=-1)).sum(-1)
    if reduction == "none":
        return losses
    elif reduction == "sum":
        return losses.sum()
    return losses.sum() / keep.sum()
'''),
    Variant("cross_entropy", "inline stable logsumexp and boolean indexing for the mean", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    m = logits.amax(1, keepdim=True)
    lse = (m + (logits - m).exp().sum(1, keepdim=True).log()).squeeze(1)
    keep = targets != ignore_index
    idx = torch.arange(logits.shape[0])
    picked = logits[idx, torch.where(keep, targets, 0)]
    losses = torch.where(keep, lse - picked, torch.zeros_like(lse))
    if reduction == "mean":
        return losses[keep].mean()
    return losses.sum() if reduction == "sum" else losses
'''),
    Variant("cross_entropy", "a Python loop over the rows", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    losses = torch.zeros(logits.shape[0], dtype=logits.dtype)
    count = 0
    for n in range(logits.shape[0]):
        t = int(targets[n])
        if t == ignore_index:
            continue
        losses[n] = -log_softmax(logits[n])[t]
        count += 1
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / count
'''),
    # -- gaussian_mle
    Variant("gaussian_mle", "torch.var with correction=0", '''
def gaussian_mle(x):
    return x.mean(), x.var(correction=0)
'''),
    Variant("gaussian_mle", "two-pass variance as Python numbers", '''
def gaussian_mle(x):
    n = x.shape[0]
    mu = x.sum() / n
    return mu.item(), (((x - mu) ** 2).sum() / n).item()
'''),
    Variant("gaussian_mle", "one-pass on data shifted by the first sample", '''
def gaussian_mle(x):
    d = x - x[0]                                  # near 0, so E[d²] − E[d]² does not cancel
    mean_d = d.mean()
    return x[0] + mean_d, (d * d).mean() - mean_d ** 2
'''),
    Variant("gaussian_mle", "torch.var_mean unpacked in the right order", '''
def gaussian_mle(x):
    var, mu = torch.var_mean(x, unbiased=False)
    return (mu, var)
'''),
    # -- kl_divergence
    Variant("kl_divergence", "torch.xlogy for both terms", '''
def kl_divergence(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=-1)
'''),
    Variant("kl_divergence", "cross-entropy minus entropy, zeros masked before the log", '''
def kl_divergence(p, q):
    support = p > 0
    log_p = torch.log(torch.where(support, p, torch.ones_like(p)))
    log_q = torch.log(torch.where(support, q, torch.ones_like(q)))
    entropy = -(p * log_p).sum(-1)
    cross = -(p * log_q).sum(-1)
    return cross - entropy
'''),
    Variant("kl_divergence", "nan_to_num of the naive terms", '''
def kl_divergence(p, q):
    terms = p * (torch.log(p) - torch.log(q))
    return torch.nan_to_num(terms, nan=0.0).sum(-1)
'''),
    # -- sample_categorical
    Variant("sample_categorical", "Gumbel-max trick with the generator's uniforms", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(u))
    return torch.argmax(logits.double() / temperature + gumbel, dim=-1)
'''),
    Variant("sample_categorical", "inverse CDF with one uniform per row", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.exp(log_softmax(logits / temperature, dim=-1)).double()
    cdf = probs.cumsum(-1)
    u = torch.rand(logits.shape[0], 1, generator=generator, dtype=torch.float64) * cdf[:, -1:]
    return (cdf < u).sum(-1).clamp(max=logits.shape[-1] - 1)
'''),
    Variant("sample_categorical", "F.softmax and torch.multinomial, temperature as a float", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    T = float(temperature)
    if T == 0.0:
        return torch.max(logits, dim=1).indices
    return torch.multinomial(F.softmax(logits / T, dim=1), num_samples=1, replacement=True, generator=generator).view(-1)
'''),
]

FORBIDDEN = [
    Forbidden("log_softmax", "torch.logsumexp", '''
def log_softmax(logits, dim=-1):
    return logits - torch.logsumexp(logits, dim=dim, keepdim=True)
'''),
    Forbidden("log_softmax", "Tensor.log_softmax", '''
def log_softmax(logits, dim=-1):
    return logits.log_softmax(dim)
'''),
    Forbidden("cross_entropy", "torch.nn.functional.cross_entropy", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    return F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction=reduction)
'''),
    Forbidden("cross_entropy", "torch.nn.functional.nll_loss", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    nll = F.nll_loss
    return nll(log_softmax(logits), targets, ignore_index=ignore_index, reduction=reduction)
'''),
    Forbidden("kl_divergence", "torch.distributions", '''
from torch.distributions import Categorical, kl_divergence as kl

def kl_divergence(p, q):
    return kl(Categorical(probs=p), Categorical(probs=q))
'''),
    Forbidden("sample_categorical", "torch.distributions", '''
def sample_categorical(logits, temperature=1.0, generator=None):
    if temperature == 0:
        return logits.argmax(-1)
    return torch.distributions.Categorical(logits=logits / temperature).sample()
'''),
]

# Private or reflective access: refused in every exercise (each entry is graded in a notebook of its own).
REFLECTIVE = [
    Reflective("cross_entropy", "getattr with a computed name", '''
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    nll = getattr(F, "nll" + "_loss")
    return nll(log_softmax(logits), targets, ignore_index=ignore_index, reduction=reduction)
'''),
    Reflective("log_softmax", "torch._log_softmax", '''
def log_softmax(logits, dim=-1):
    return torch._log_softmax(logits, dim, False)
'''),
]

# -- gaussian_posterior and map_linear_regression (section 4: a prior)
MUTANTS += [
    Mutant("gaussian_posterior", "N ignored (the precision of one observation)", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    var = 1 / (1 / prior_var + 1 / noise_var)
    mean = var * (prior_mean / prior_var + x.mean() / noise_var)
    return mean, torch.tensor(var, dtype=x.dtype)
'''),
    Mutant("gaussian_posterior", "variances added instead of precisions", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    n = len(x)
    var = prior_var + noise_var / n
    mean = var * (prior_mean / prior_var + x.sum() / noise_var)
    return mean, torch.tensor(var, dtype=x.dtype)
'''),
    Mutant("gaussian_posterior", "prior ignored (the MLE: x̄ and noise_var / N)", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    return x.mean(), noise_var / x.shape[0]
'''),
    Mutant("gaussian_posterior", "prior_mean ignored (taken as 0)", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    precision = 1 / prior_var + x.numel() / noise_var
    var = 1 / precision
    return var * x.sum() / noise_var, var
'''),
    Mutant("gaussian_posterior", "means weighted by their variances, not their precisions", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    n = x.shape[0]
    data_var = noise_var / n
    mean = (prior_var * prior_mean + data_var * x.mean()) / (prior_var + data_var)
    var = prior_var * data_var / (prior_var + data_var)
    return mean, var
'''),
    Mutant("gaussian_posterior", "spread of x used instead of the known noise_var", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    s2 = x.var().item()
    var = 1 / (1 / prior_var + len(x) / s2)
    return var * (prior_mean / prior_var + x.sum() / s2), torch.tensor(var, dtype=x.dtype)
'''),
    Mutant("gaussian_posterior", "standard deviation instead of variance", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    var = 1 / (1 / prior_var + x.shape[0] / noise_var)
    mean = var * (prior_mean / prior_var + x.sum() / noise_var)
    return mean, torch.tensor(var ** 0.5, dtype=x.dtype)
'''),
    Mutant("gaussian_posterior", "(var, mean) returned in the wrong order", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    var = 1 / (1 / prior_var + x.shape[0] / noise_var)
    return var, (var * (prior_mean / prior_var + x.sum() / noise_var)).item()
'''),
    Mutant("gaussian_posterior", "x.mean() of an empty x is nan (N = 0)", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    n = x.shape[0]
    w_prior, w_data = 1 / prior_var, n / noise_var
    mean = (w_prior * prior_mean + w_data * x.mean()) / (w_prior + w_data)
    return mean, torch.tensor(1 / (w_prior + w_data), dtype=x.dtype)
'''),
    Mutant("map_linear_regression", "no prior (plain least squares)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    return torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
'''),
    Mutant("map_linear_regression", "ratio inverted (λ = prior_var / noise_var)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    lam = prior_var / noise_var
    return torch.linalg.solve(X.T @ X + lam * torch.eye(X.shape[1], dtype=X.dtype), X.T @ y)
'''),
    Mutant("map_linear_regression", "λ = 1 / prior_var (noise_var left out)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    d = X.shape[1]
    A = X.T @ X + torch.eye(d, dtype=X.dtype) / prior_var
    return torch.linalg.solve(A, X.T @ y)
'''),
    Mutant("map_linear_regression", "λ² on the diagonal", '''
def map_linear_regression(X, y, noise_var, prior_var):
    lam = noise_var / prior_var
    return torch.linalg.inv(X.T @ X + lam ** 2 * torch.eye(X.shape[1], dtype=X.dtype)) @ X.T @ y
'''),
    Mutant("map_linear_regression", "λ added to every entry of XᵀX (no identity)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    return torch.linalg.solve(X.T @ X + noise_var / prior_var, X.T @ y)
'''),
    Mutant("map_linear_regression", "λ subtracted (sign error)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    A = X.T @ X - (noise_var / prior_var) * torch.eye(X.shape[1], dtype=X.dtype)
    return torch.linalg.solve(A, X.T @ y)
'''),
    Mutant("map_linear_regression", "Xᵀy not divided by noise_var (precision form)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    precision = X.T @ X / noise_var + torch.eye(X.shape[1], dtype=X.dtype) / prior_var
    return torch.linalg.solve(precision, X.T @ y)
'''),
    Mutant("map_linear_regression", "X Xᵀ (N, N) instead of Xᵀ X (d, d)", '''
def map_linear_regression(X, y, noise_var, prior_var):
    A = X @ X.T + noise_var / prior_var * torch.eye(X.shape[0], dtype=X.dtype)
    return torch.linalg.solve(A, X.T @ y)
'''),
    Mutant("map_linear_regression", "λ = noise_var · prior_var", '''
def map_linear_regression(X, y, noise_var, prior_var):
    A = X.T @ X + noise_var * prior_var * torch.eye(X.shape[1], dtype=X.dtype)
    return torch.linalg.solve(A, X.T @ y)
'''),
    Mutant("map_linear_regression", "λ added to Xᵀy instead of the diagonal", '''
def map_linear_regression(X, y, noise_var, prior_var):
    return torch.linalg.solve(X.T @ X, X.T @ y + noise_var / prior_var)
'''),
]
VARIANTS += [
    Variant("gaussian_posterior", "precision-weighted average of the prior mean and x̄, with N = 0 handled", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    n = x.shape[0]
    w_prior, w_data = 1.0 / prior_var, n / noise_var
    x_bar = x.mean() if n > 0 else torch.zeros((), dtype=x.dtype)
    mean = (w_prior * prior_mean + w_data * x_bar) / (w_prior + w_data)
    return mean, torch.tensor(1.0 / (w_prior + w_data), dtype=x.dtype)
'''),
    Variant("gaussian_posterior", "Python floats throughout", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    n, total = len(x), float(x.sum())
    var = prior_var * noise_var / (noise_var + n * prior_var)
    mean = (prior_mean * noise_var + prior_var * total) / (noise_var + n * prior_var)
    return mean, var
'''),
    Variant("gaussian_posterior", "one Bayes update per sample, each posterior the next prior", '''
def gaussian_posterior(x, prior_mean, prior_var, noise_var):
    mean = torch.tensor(prior_mean, dtype=torch.float64)
    var = torch.tensor(prior_var, dtype=torch.float64)
    for xi in x.double():
        gain = var / (var + noise_var)
        mean = mean + gain * (xi - mean)
        var = (1 - gain) * var
    return mean.to(x.dtype), var.to(x.dtype)
'''),
    Variant("map_linear_regression", "Cholesky factorisation of XᵀX + λI", '''
def map_linear_regression(X, y, noise_var, prior_var):
    d = X.shape[1]
    A = X.mT @ X + (noise_var / prior_var) * torch.eye(d, dtype=X.dtype)
    L = torch.linalg.cholesky(A)
    return torch.cholesky_solve((X.mT @ y).unsqueeze(-1), L).squeeze(-1)
'''),
    Variant("map_linear_regression", "least squares on the system augmented with √λ I", '''
def map_linear_regression(X, y, noise_var, prior_var):
    d = X.shape[1]
    X_aug = torch.cat([X, math.sqrt(noise_var / prior_var) * torch.eye(d, dtype=X.dtype)])
    y_aug = torch.cat([y, torch.zeros(d, dtype=y.dtype)])
    return torch.linalg.lstsq(X_aug, y_aug[:, None]).solution[:, 0]
'''),
    Variant("map_linear_regression", "posterior precision and its inverse", '''
def map_linear_regression(X, y, noise_var, prior_var):
    precision = X.T @ X / noise_var + torch.eye(X.shape[1], dtype=X.dtype) / prior_var
    return torch.linalg.inv(precision) @ (X.T @ y / noise_var)
'''),
    Variant("map_linear_regression", "the (N, N) dual form Xᵀ (X Xᵀ + λI)⁻¹ y", '''
def map_linear_regression(X, y, noise_var, prior_var):
    K = X @ X.T + noise_var / prior_var * torch.eye(X.shape[0], dtype=X.dtype)
    return X.T @ torch.linalg.solve(K, y)
'''),
]
