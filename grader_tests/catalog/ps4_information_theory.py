"""What students write for ps4_information_theory: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Reflective, Variant

MUTANTS = [
    Mutant("entropy", "0 · log 0 gives nan", '''
def entropy(probs):
    return -(probs * torch.log(probs)).sum(dim=-1)
'''),
    Mutant("entropy", "log base 2 (bits) instead of nats", '''
def entropy(probs):
    terms = torch.where(probs > 0, probs * torch.log2(probs), torch.zeros_like(probs))
    return -terms.sum(-1)
'''),
    Mutant("entropy", "missing minus sign", '''
def entropy(probs):
    return torch.xlogy(probs, probs).sum(-1)
'''),
    Mutant("entropy", "summed over dim 0 instead of the outcomes (last dim)", '''
def entropy(probs):
    return -torch.xlogy(probs, probs).sum(0)
'''),
    Mutant("entropy", "eps added inside the log (log(p + eps))", '''
def entropy(probs):
    return -(probs * torch.log(probs + 1e-8)).sum(dim=-1)     # + 1e-8 to avoid log(0)
'''),
    Mutant("entropy", "summed over dim 1 (written for (N, K) inputs only)", '''
def entropy(probs):
    terms = torch.xlogy(probs, probs)                         # (N, K)
    return -terms.sum(dim=1)
'''),
    Mutant("entropy", "averaged over the outcomes instead of summing", '''
def entropy(probs):
    return -torch.xlogy(probs, probs).mean(dim=-1)
'''),
    Mutant("entropy", "kept the summed dim (keepdim=True)", '''
def entropy(probs):
    return -torch.xlogy(probs, probs).sum(dim=-1, keepdim=True)
'''),
    Mutant("cross_entropy_dist", "H(q, p) instead of H(p, q) (arguments swapped)", '''
def cross_entropy_dist(p, q):
    return -torch.xlogy(q, p).sum(-1)
'''),
    Mutant("cross_entropy_dist", "returned KL(p‖q) instead of H(p, q)", '''
def cross_entropy_dist(p, q):
    return torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum(-1)
'''),
    Mutant("cross_entropy_dist", "0 · log 0 gives nan", '''
def cross_entropy_dist(p, q):
    return -(p * q.log()).sum(dim=-1)
'''),
    Mutant("cross_entropy_dist", "log base 2 (bits) instead of nats", '''
def cross_entropy_dist(p, q):
    return -torch.xlogy(p, q).sum(-1) / math.log(2)
'''),
    Mutant("cross_entropy_dist", "tiny q clamped or shifted by an eps (log(q + eps), q.clamp(min=eps))", '''
def cross_entropy_dist(p, q):
    return -(p * torch.log(q + 1e-8)).sum(dim=-1)           # + 1e-8 so that q = 0 gives no nan
'''),
    Mutant("cross_entropy_dist", "tiny q clamped or shifted by an eps (log(q + eps), q.clamp(min=eps))", '''
def cross_entropy_dist(p, q):
    safe_q = q.clamp(min=1e-12)                              # exact except for model probabilities below 1e-12
    return -torch.xlogy(p, safe_q).sum(-1)
'''),
    Mutant("cross_entropy_dist", "summed over dim 1 (written for (N, K) inputs only)", '''
def cross_entropy_dist(p, q):
    return -torch.xlogy(p, q).sum(dim=1)
'''),
    Mutant("cross_entropy_dist", "KL with the wrong sign (H(p) − KL(p‖q))", '''
def cross_entropy_dist(p, q):
    kl = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)     # KL(p||q)
    return entropy(p) - kl
'''),
    Mutant("cross_entropy_dist", "averaged over the outcomes instead of summing", '''
def cross_entropy_dist(p, q):
    return (-torch.xlogy(p, q)).mean(dim=-1)
'''),
    Mutant("perplexity", "mean of per-token exp(NLL) instead of exp of the mean", '''
def perplexity(logits, targets):
    log_probs = logits.log_softmax(dim=-1)                                  # (B, T, V)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)          # (B, T)
    return nll.exp().mean()
'''),
    Mutant("perplexity", "per-sequence perplexities averaged", '''
def perplexity(logits, targets):
    nll = torch.logsumexp(logits, dim=-1) - logits.gather(-1, targets[..., None])[..., 0]   # (B, T)
    return torch.stack([seq.mean().exp() for seq in nll]).mean()
'''),
    Mutant("perplexity", "inf for a very unlikely target (log of an underflowed softmax, or exp of a per-token NLL)", '''
def perplexity(logits, targets):
    m = logits.amax(-1, keepdim=True)
    e = (logits - m).exp()
    probs = e / e.sum(-1, keepdim=True)                                     # (B, T, V)
    q_y = probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)               # (B, T)
    return torch.exp(-torch.log(q_y).mean())
'''),
    Mutant("perplexity", "no max-shift before exp (overflows on large logits)", '''
def perplexity(logits, targets):
    lse = logits.exp().sum(-1).log()                                        # (B, T)
    nll = lse - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return nll.mean().exp()
'''),
    Mutant("perplexity", "normalised over the time dim (dim 1) instead of the vocabulary", '''
def perplexity(logits, targets):
    log_probs = torch.log_softmax(logits, dim=1)
    return torch.exp(-log_probs.gather(2, targets.unsqueeze(2)).mean())
'''),
    Mutant("perplexity", "max-shift by the global max, not per position", '''
def perplexity(logits, targets):
    m = logits.max()                                                        # the largest logit
    lse = m + (logits - m).exp().sum(-1).log()                              # (B, T)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)           # (B, T)
    return (lse - picked).mean().exp()
'''),
    Mutant("perplexity", "every position indexed with every target (log_probs[..., targets])", '''
def perplexity(logits, targets):
    log_probs = torch.log_softmax(logits, dim=-1)                           # (B, T, V)
    return torch.exp(-log_probs[..., targets].mean())
'''),
    Mutant("perplexity", "averaged the log-probabilities of every token (targets never picked)", '''
def perplexity(logits, targets):
    nll = -F.log_softmax(logits, dim=-1)                                    # (B, T, V)
    return nll.mean().exp()
'''),
    Mutant("perplexity", "returned the mean NLL (forgot the exp)", '''
def perplexity(logits, targets):
    log_probs = logits.log_softmax(dim=-1)                                  # (B, T, V)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)          # (B, T)
    return nll.mean()
'''),
    Mutant("perplexity", "softmax applied twice (probabilities treated as logits)", '''
def perplexity(logits, targets):
    probs = torch.softmax(logits, dim=-1)                                   # (B, T, V)
    log_probs = F.log_softmax(probs, dim=-1)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return nll.mean().exp()
'''),
]

VARIANTS = [
    Variant("entropy", "torch.where around p * log p", '''
def entropy(probs):
    safe = torch.where(probs > 0, probs * probs.log(), torch.zeros_like(probs))
    return -safe.sum(dim=-1)
'''),
    Variant("entropy", "clamp inside the log (exact, since p = 0 multiplies it)", '''
def entropy(probs):
    tiny = torch.finfo(probs.dtype).tiny
    return -(probs * probs.clamp_min(tiny).log()).sum(-1)
'''),
    Variant("entropy", "nan_to_num of the nan terms, loop over outcomes", '''
def entropy(probs):
    total = torch.zeros(probs.shape[:-1], dtype=probs.dtype)
    for k in range(probs.shape[-1]):
        p = probs[..., k]
        total = total - torch.nan_to_num(p * torch.log(p), nan=0.0)
    return total
'''),
    Variant("cross_entropy_dist", "H(p) from the student's entropy plus KL(p‖q)", '''
def cross_entropy_dist(p, q):
    kl = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)
    return entropy(p) + kl
'''),
    Variant("cross_entropy_dist", "masked log with torch.where", '''
def cross_entropy_dist(p, q):
    log_q = torch.where(p > 0, q.log(), torch.zeros_like(q))
    return -(p * log_q).sum(dim=-1)
'''),
    Variant("perplexity", "logsumexp minus the target logit", '''
def perplexity(logits, targets):
    target_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)    # (B, T)
    nll = torch.logsumexp(logits, dim=-1) - target_logits                   # (B, T)
    return torch.exp(nll.mean())
'''),
    Variant("perplexity", "flattened, indexed with arange, a Python float", '''
def perplexity(logits, targets):
    B, T, V = logits.shape
    log_probs = F.log_softmax(logits.reshape(B * T, V), dim=-1)
    nll = -log_probs[torch.arange(B * T), targets.reshape(B * T)]
    return math.exp(nll.mean().item())
'''),
    Variant("perplexity", "hand-written stable log-softmax and a one-hot mask", '''
def perplexity(logits, targets):
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(-1, keepdim=True).log()
    mask = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    total = -(mask * log_probs).sum()
    return (total / targets.numel()).exp()
'''),
]

FORBIDDEN = [
    Forbidden("entropy", "torch.distributions", '''
def entropy(probs):
    return torch.distributions.Categorical(probs=probs).entropy()
'''),
    Forbidden("entropy", "torch.special.entr", '''
def entropy(probs):
    return torch.special.entr(probs).sum(-1)
'''),
    Forbidden("cross_entropy_dist", "torch.nn.functional.kl_div", '''
def cross_entropy_dist(p, q):
    return F.kl_div(q.log(), p, reduction="none").sum(-1) - torch.xlogy(p, p).sum(-1)
'''),
    Forbidden("perplexity", "torch.nn.functional.cross_entropy", '''
def perplexity(logits, targets):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten()).exp()
'''),
]

# Private or reflective access: refused in every exercise (each entry is graded in a notebook of its own).
REFLECTIVE = [
    Reflective("entropy", "getattr with a computed name", '''
def entropy(probs):
    return getattr(torch.special, "en" + "tr")(probs).sum(-1)
'''),
]
