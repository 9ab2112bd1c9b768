"""What students write for ps8_fine_tuning: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Variant

MUTANTS = [
    # -- mask_tokens -------------------------------------------------------------------------------
    Mutant("mask_tokens", "every chosen position becomes [MASK] (no 80/10/10)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = torch.where(chosen, torch.full_like(ids, mask_id), ids)
    return inputs, labels
'''),
    Mutant("mask_tokens", "80/20/0: every chosen position that is not [MASK] gets a random token", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    labels = ids.clone()
    labels[~chosen] = -100
    inputs = ids.clone()
    to_mask = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
    inputs[to_mask] = mask_id
    to_random = chosen & ~to_mask
    inputs[to_random] = torch.randint(vocab_size, ids.shape, generator=generator)[to_random]
    return inputs, labels
'''),
    Mutant("mask_tokens", "random tokens at 2 % of the chosen positions (probability 0.1 among the 20 % not [MASK])", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    inputs, labels = ids.clone(), ids.clone()
    chosen = torch.bernoulli(torch.full(ids.shape, mask_prob), generator=generator).bool()
    labels[~chosen] = -100
    replaced = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[replaced] = mask_id
    randomised = torch.bernoulli(torch.full(ids.shape, 0.1), generator=generator).bool() & chosen & ~replaced
    inputs[randomised] = torch.randint(vocab_size, ids.shape, generator=generator)[randomised]
    return inputs, labels
'''),
    Mutant("mask_tokens", "independent draws for [MASK] and random overwrite each other (72/10/18)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    labels = torch.where(chosen, ids, -100)
    to_mask = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
    to_random = chosen & (torch.rand(ids.shape, generator=generator) < 0.1)
    inputs = torch.where(to_mask, mask_id, ids)
    inputs = torch.where(to_random, torch.randint(vocab_size, ids.shape, generator=generator), inputs)
    return inputs, labels
'''),
    Mutant("mask_tokens", "labels on every position (no −100)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, ids.clone()
'''),
    Mutant("mask_tokens", "labels hold the corrupted inputs, not the original ids", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    labels = torch.where(chosen, inputs, -100)
    return inputs, labels
'''),
    Mutant("mask_tokens", "labels inverted (−100 at the chosen positions, the id elsewhere)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    labels = ids.masked_fill(chosen, -100)
    return inputs, labels
'''),
    Mutant("mask_tokens", "random tokens at positions that were not chosen", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    labels = torch.where(chosen, ids, -100)
    u = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[chosen & (u < 0.8)] = mask_id
    random_positions = (u >= 0.8) & (u < 0.9)
    inputs[random_positions] = torch.randint(vocab_size, ids.shape, generator=generator)[random_positions]
    return inputs, labels
'''),
    Mutant("mask_tokens", "mask_prob read as the fraction kept (1 − mask_prob chosen)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) > mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "15 % hard-coded (mask_prob ignored)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < 0.15
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "global random state used instead of `generator`", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape) < mask_prob
    u = torch.rand(ids.shape)
    random_ids = torch.randint(vocab_size, ids.shape)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "global random state used instead of `generator`", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "`generator` not used (the same masking for every seed)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    g = torch.Generator().manual_seed(0)
    chosen = torch.rand(ids.shape, generator=g) < mask_prob
    u = torch.rand(ids.shape, generator=g)
    random_ids = torch.randint(vocab_size, ids.shape, generator=g)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "random tokens not drawn uniformly from 0 .. vocab_size − 1", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(int(ids.max()) + 1, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "the notebook's MASK used instead of the mask_id argument", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (u < 0.8), MASK, ids)
    inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), random_ids, inputs)
    return inputs, torch.where(chosen, ids, -100)
'''),
    Mutant("mask_tokens", "input modified in place", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    labels = torch.where(chosen, ids, -100)
    u = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = ids
    inputs[chosen & (u < 0.8)] = mask_id
    random_positions = chosen & (u >= 0.8) & (u < 0.9)
    inputs[random_positions] = random_ids[random_positions]
    return inputs, labels
'''),

    # -- masked_lm_loss ------------------------------------------------------------------------------
    Mutant("masked_lm_loss", "mean over all positions (ignored ones counted as 0)", '''
def masked_lm_loss(logits, labels):
    log_probs = F.log_softmax(logits, dim=-1)
    keep = labels != -100
    nll = -log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (nll * keep).mean()
'''),
    Mutant("masked_lm_loss", "−100 labels scored as token 0 (clamped, not ignored)", '''
def masked_lm_loss(logits, labels):
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    safe = labels.clamp(min=0)
    return -log_probs.gather(2, safe[..., None]).mean()
'''),
    Mutant("masked_lm_loss", "sum instead of mean", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    z, y = logits[keep], labels[keep]
    return -(z - torch.logsumexp(z, -1, keepdim=True))[torch.arange(len(y)), y].sum()
'''),
    Mutant("masked_lm_loss", "mean of each text's mean (texts weighted equally, not positions)", '''
def masked_lm_loss(logits, labels):
    losses = []
    for z, y in zip(logits, labels):
        keep = y != -100
        log_probs = F.log_softmax(z[keep], dim=-1)
        losses.append(-log_probs[torch.arange(int(keep.sum())), y[keep]].mean())
    return torch.stack(losses).mean()
'''),
    Mutant("masked_lm_loss", "softmax over the wrong dim (not the vocabulary)", '''
def masked_lm_loss(logits, labels):
    log_probs = F.log_softmax(logits, dim=1)
    keep = labels != -100
    nll = -log_probs.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return nll[keep].mean()
'''),
    Mutant("masked_lm_loss", "no max-shift before exp (overflows on large logits)", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    z, y = logits[keep], labels[keep]
    log_probs = z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))
    return -log_probs.gather(1, y[:, None]).mean()
'''),
    Mutant("masked_lm_loss", "log of softmax (−inf when a probability underflows)", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    probs = torch.softmax(logits[keep], dim=-1)
    return -torch.log(probs.gather(1, labels[keep][:, None])).mean()
'''),
    Mutant("masked_lm_loss", "sign flipped (log-likelihood instead of its negative)", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    z, y = logits[keep], labels[keep]
    return (z - torch.logsumexp(z, dim=-1, keepdim=True)).gather(1, y[:, None]).mean()
'''),
    Mutant("masked_lm_loss", "labels of −100 used as indices", '''
def masked_lm_loss(logits, labels):
    nll = -F.log_softmax(logits, dim=-1).gather(-1, labels[..., None])[..., 0]
    return nll[labels != -100].mean()
'''),
    Mutant("masked_lm_loss", "returned a Python number, not a 0-d tensor", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    z, y = logits[keep], labels[keep]
    return -(z - torch.logsumexp(z, dim=-1, keepdim=True)).gather(1, y[:, None]).mean().item()
'''),

    # -- padded_attention ----------------------------------------------------------------------------
    Mutant("padded_attention", "mask inverted (True taken as a real key)", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~key_padding_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "mask ignored", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "padding scores set to 0 instead of −inf", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores * (~key_padding_mask)[:, None, None, :]
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "padding weights zeroed after the softmax (rows no longer sum to 1)", '''
def padded_attention(q, k, v, key_padding_mask):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    weights = weights.masked_fill(key_padding_mask[:, None, None, :], 0.0)
    return weights @ v
'''),
    Mutant("padded_attention", "mask broadcast over queries (key_padding_mask[:, None, :, None])", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(key_padding_mask[:, None, :, None], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "mask broadcast over queries (key_padding_mask[:, None, :, None])", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / q.shape[-1] ** 0.5
    scores = torch.where(key_padding_mask.unsqueeze(1).unsqueeze(-1), float("-inf"), scores)
    return torch.einsum("bhqk,bhkd->bhqd", scores.softmax(-1), v)
'''),
    Mutant("padded_attention", "mask multiplied by −inf (0 · (−inf) = nan at real keys)", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores + key_padding_mask[:, None, None, :] * float("-inf")
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "padding assumed at the end (the first n keys kept)", '''
def padded_attention(q, k, v, key_padding_mask):
    lengths = (~key_padding_mask).sum(-1)
    T_k = k.shape[-2]
    pad = torch.arange(T_k)[None, :] >= lengths[:, None]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "no 1/√d scaling", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1)
    scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "scores divided by d instead of √d", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "scores divided by √d_v (the size of v) instead of √d", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])
    scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
'''),
    Mutant("padded_attention", "softmax over the query axis", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    return torch.softmax(scores, dim=-2) @ v
'''),

    # -- linear_warmup_decay_lr ----------------------------------------------------------------------
    Mutant("linear_warmup_decay_lr", "warmup as (step + 1)/warmup_steps (ps5's convention, not this notebook's)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    return max_lr * max(0.0, (total_steps - step) / (total_steps - warmup_steps))
'''),
    Mutant("linear_warmup_decay_lr", "warmup as (step + 1)/(warmup_steps + 1) (nanoGPT's convention, not this notebook's)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / (warmup_steps + 1)
    return max_lr * max(0.0, (total_steps - step) / (total_steps - warmup_steps))
'''),
    Mutant("linear_warmup_decay_lr", "decay spread over total_steps ((T − step)/T)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    return max_lr * max(0.0, 1 - step / total_steps)
'''),
    Mutant("linear_warmup_decay_lr", "negative after total_steps (no clamp at 0)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    return max_lr * min(step / warmup_steps, (total_steps - step) / (total_steps - warmup_steps))
'''),
    Mutant("linear_warmup_decay_lr", "decay divided by T − W + 1 (does not reach 0 at total_steps)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    decay_steps = total_steps - warmup_steps + 1
    return max_lr * max(0.0, (total_steps - step) / decay_steps)
'''),
    Mutant("linear_warmup_decay_lr", "floor division (//)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step // warmup_steps)
    return max_lr * max(0, (total_steps - step) // (total_steps - warmup_steps))
'''),
    Mutant("linear_warmup_decay_lr", "warmup reaches max_lr at step warmup_steps − 1 (step / (warmup_steps − 1))", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return min(max_lr, max_lr * step / (warmup_steps - 1))
    return max_lr * max(0.0, (total_steps - step) / (total_steps - warmup_steps))
'''),
    Mutant("linear_warmup_decay_lr", "max_lr not applied (the multiplier returned)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / warmup_steps
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))
'''),
]

VARIANTS = [
    # -- mask_tokens
    Variant("mask_tokens", "torch.bernoulli, Hugging Face style (0.8, then 0.5 of the rest)", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    labels, inputs = ids.clone(), ids.clone()
    chosen = torch.bernoulli(torch.full(ids.shape, float(mask_prob)), generator=generator).bool()
    labels[~chosen] = -100
    replaced = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[replaced] = mask_id
    randomised = torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & chosen & ~replaced
    inputs[randomised] = torch.randint(vocab_size, ids.shape, generator=generator)[randomised]
    return inputs, labels
'''),
    Variant("mask_tokens", "one uniform per position split into four ranges", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    u = torch.rand(ids.shape, generator=generator)
    labels = torch.where(u < mask_prob, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    inputs[u < 0.8 * mask_prob] = mask_id
    randomised = (u >= 0.8 * mask_prob) & (u < 0.9 * mask_prob)
    inputs[randomised] = torch.randint(0, vocab_size, (int(randomised.sum()),), generator=generator)
    return inputs, labels
'''),
    Variant("mask_tokens", "multinomial over the three actions, random ids only where needed", '''
def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    flat = ids.reshape(-1)
    chosen = torch.rand(flat.shape, generator=generator, dtype=torch.float64) < mask_prob
    action = torch.multinomial(torch.tensor([0.8, 0.1, 0.1]), len(flat), replacement=True, generator=generator)
    inputs = flat.clone()
    inputs[chosen & (action == 0)] = mask_id
    randomised = chosen & (action == 1)
    inputs[randomised] = torch.randint(vocab_size, (int(randomised.sum()),), generator=generator)
    labels = torch.full_like(flat, -100)
    labels[chosen] = flat[chosen]
    return inputs.view(ids.shape), labels.view(ids.shape)
'''),

    # -- masked_lm_loss
    Variant("masked_lm_loss", "flattened, F.log_softmax and advanced indexing", '''
def masked_lm_loss(logits, labels):
    V = logits.shape[-1]
    z, y = logits.reshape(-1, V), labels.reshape(-1)
    keep = y != -100
    log_probs = F.log_softmax(z[keep], dim=-1)
    return -log_probs[torch.arange(log_probs.shape[0]), y[keep]].sum() / keep.sum()
'''),
    Variant("masked_lm_loss", "clamped labels, a where and a hand-written max-shift", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    m = logits.amax(-1, keepdim=True)
    log_norm = m + (logits - m).exp().sum(-1, keepdim=True).log()
    picked = logits.gather(-1, labels.clamp(min=0).unsqueeze(-1)) - log_norm
    nll = torch.where(keep, -picked.squeeze(-1), torch.zeros((), dtype=logits.dtype))
    return nll.sum() / keep.sum()
'''),
    Variant("masked_lm_loss", "one-hot targets", '''
def masked_lm_loss(logits, labels):
    keep = labels != -100
    z = logits[keep]
    one_hot = F.one_hot(labels[keep], z.shape[-1]).to(z.dtype)
    return -(one_hot * (z - torch.logsumexp(z, -1, keepdim=True))).sum() / z.shape[0]
'''),

    # -- padded_attention
    Variant("padded_attention", "torch.where with -inf and einsum", '''
def padded_attention(q, k, v, key_padding_mask):
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
    scores = torch.where(key_padding_mask[:, None, None, :], torch.tensor(float("-inf"), dtype=q.dtype), scores)
    weights = torch.exp(scores - scores.amax(-1, keepdim=True))
    return torch.einsum("bhqk,bhkd->bhqd", weights / weights.sum(-1, keepdim=True), v)
'''),
    Variant("padded_attention", "an additive mask of -1e9", '''
def padded_attention(q, k, v, key_padding_mask):
    bias = key_padding_mask[:, None, None, :].to(q.dtype) * -1e9
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5 + bias
    return scores.softmax(dim=-1) @ v
'''),
    Variant("padded_attention", "masked_fill with the dtype's lowest value", '''
def padded_attention(q, k, v, key_padding_mask):
    B, T_k = key_padding_mask.shape
    scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(key_padding_mask.view(B, 1, 1, T_k), torch.finfo(q.dtype).min)
    return torch.matmul(torch.softmax(scores, dim=3), v)
'''),

    # -- linear_warmup_decay_lr
    Variant("linear_warmup_decay_lr", "min of the two lines, clamped at 0", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    up = step / warmup_steps
    down = (total_steps - step) / (total_steps - warmup_steps)
    return max_lr * max(0.0, min(up, down))
'''),
    Variant("linear_warmup_decay_lr", "a 0-d float64 tensor", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    t = torch.tensor(float(step), dtype=torch.float64)
    if step < warmup_steps:
        return max_lr * t / warmup_steps
    return max_lr * torch.clamp((total_steps - t) / (total_steps - warmup_steps), min=0.0)
'''),
    Variant("linear_warmup_decay_lr", "Hugging Face's multiplier with max(1, ...)", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        factor = float(step) / float(max(1, warmup_steps))
    else:
        factor = max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))
    return max_lr * factor
'''),
]

FORBIDDEN = [
    Forbidden("masked_lm_loss", "torch.nn.functional.cross_entropy", '''
def masked_lm_loss(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
'''),
    Forbidden("masked_lm_loss", "torch.nn.functional.nll_loss", '''
def masked_lm_loss(logits, labels):
    log_probs = F.log_softmax(logits, dim=-1)
    return F.nll_loss(log_probs.flatten(0, 1), labels.flatten())
'''),
    Forbidden("masked_lm_loss", "torch.nn.CrossEntropyLoss", '''
def masked_lm_loss(logits, labels):
    loss = nn.CrossEntropyLoss()
    return loss(logits.view(-1, logits.size(-1)), labels.view(-1))
'''),
    Forbidden("padded_attention", "torch.nn.functional.scaled_dot_product_attention", '''
def padded_attention(q, k, v, key_padding_mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=~key_padding_mask[:, None, None, :])
'''),
    Forbidden("padded_attention", "torch.nn.MultiheadAttention", '''
def padded_attention(q, k, v, key_padding_mask):
    attention = torch.nn.MultiheadAttention(q.shape[-1], 1, batch_first=True)
    return attention(q, k, v, key_padding_mask=key_padding_mask)[0]
'''),
    Forbidden("linear_warmup_decay_lr", "torch.optim.lr_scheduler", '''
def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    p = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=max_lr)
    factor = lambda s: s / warmup_steps if s < warmup_steps else max(0.0, (total_steps - s) / (total_steps - warmup_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    for _ in range(step):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]
'''),
]

MUTANTS += [
    # -- masked_mean_pool ----------------------------------------------------------------------------
    Mutant("masked_mean_pool", "plain mean over T (padding counted)", '''
def masked_mean_pool(hidden, pad):
    return hidden.mean(dim=1)
'''),
    Mutant("masked_mean_pool", "mask inverted (the mean over the padding)", '''
def masked_mean_pool(hidden, pad):
    m = pad.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)
'''),
    Mutant("masked_mean_pool", "divided by T instead of the number of real positions", '''
def masked_mean_pool(hidden, pad):
    keep = (~pad).unsqueeze(-1)
    return (hidden * keep).sum(dim=1) / hidden.shape[1]
'''),
    Mutant("masked_mean_pool", "sum of the real positions (not divided by their number)", '''
def masked_mean_pool(hidden, pad):
    return hidden.masked_fill(pad[..., None], 0.0).sum(dim=1)
'''),
    Mutant("masked_mean_pool", "padding assumed at the end (the first n positions averaged)", '''
def masked_mean_pool(hidden, pad):
    lengths = (~pad).sum(1)
    return torch.stack([hidden[b, :n].mean(0) for b, n in enumerate(lengths.tolist())])
'''),
    Mutant("masked_mean_pool", "result of shape (B, 1, C) (keepdim=True on the sum)", '''
def masked_mean_pool(hidden, pad):
    keep = (~pad).unsqueeze(-1).to(hidden.dtype)
    return (hidden * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True)
'''),
    Mutant("masked_mean_pool", "averaged over the wrong dim (not dim 1, the T positions)", '''
def masked_mean_pool(hidden, pad):
    keep = (~pad)[..., None].to(hidden.dtype)
    return (hidden * keep).sum(0) / keep.sum(0)
'''),
    Mutant("masked_mean_pool", "one mean over every real position of the batch (hidden[~pad].mean(0), shape (C,))", '''
def masked_mean_pool(hidden, pad):
    return hidden[~pad].mean(dim=0)
'''),
    Mutant("masked_mean_pool", "count without keepdim ((B, C) divided by (B,))", '''
def masked_mean_pool(hidden, pad):
    keep = ~pad
    return (hidden * keep[..., None]).sum(1) / keep.sum(1)
'''),
    Mutant("masked_mean_pool", "mask not broadcast over C (pad (B, T) times hidden (B, T, C))", '''
def masked_mean_pool(hidden, pad):
    keep = ~pad
    return (hidden * keep).sum(1) / keep.sum(1, keepdim=True)
'''),
    Mutant("masked_mean_pool", "result in float32 for float64 hidden states", '''
def masked_mean_pool(hidden, pad):
    B, T, C = hidden.shape
    pooled = torch.zeros(B, C)
    for b in range(B):
        pooled[b] = hidden[b][~pad[b]].mean(0)
    return pooled
'''),
    Mutant("masked_mean_pool", "input modified in place", '''
def masked_mean_pool(hidden, pad):
    hidden[pad] = 0.0
    return hidden.sum(1) / (~pad).sum(1, keepdim=True)
'''),

    # -- merge_lora ----------------------------------------------------------------------------------
    Mutant("merge_lora", "no alpha / r scaling", '''
def merge_lora(W, A, B, alpha):
    return W + B @ A
'''),
    Mutant("merge_lora", "alpha not divided by r", '''
def merge_lora(W, A, B, alpha):
    return W + alpha * (B @ A)
'''),
    Mutant("merge_lora", "multiplied by alpha · r", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    return W + alpha * r * B @ A
'''),
    Mutant("merge_lora", "multiplied by r / alpha", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    return W + (r / alpha) * (B @ A)
'''),
    Mutant("merge_lora", "integer division alpha // r", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    return W + (alpha // r) * (B @ A)
'''),
    Mutant("merge_lora", "r taken from B.shape[0] (out) instead of A.shape[0]", '''
def merge_lora(W, A, B, alpha):
    r = B.shape[0]
    return W + alpha / r * (B @ A)
'''),
    Mutant("merge_lora", "r taken from A.shape[1] (in) instead of A.shape[0]", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[1]
    return W + (alpha / r) * torch.matmul(B, A)
'''),
    Mutant("merge_lora", "W scaled too ((alpha / r)(W + B A))", '''
def merge_lora(W, A, B, alpha):
    return (alpha / A.shape[0]) * (W + B @ A)
'''),
    Mutant("merge_lora", "update in the wrong order or transposed (A @ B, Aᵀ Bᵀ)", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    return W + (alpha / r) * (A @ B)
'''),
    Mutant("merge_lora", "update in the wrong order or transposed (A @ B, Aᵀ Bᵀ)", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    return W + (alpha / r) * (A.T @ B.T)
'''),
    Mutant("merge_lora", "input modified in place", '''
def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    W += (alpha / r) * (B @ A)
    return W
'''),
    Mutant("merge_lora", "input modified in place", '''
def merge_lora(W, A, B, alpha):
    return W.add_(B @ A, alpha=alpha / A.shape[0])
'''),
]

VARIANTS += [
    # -- masked_mean_pool
    Variant("masked_mean_pool", "masked_fill, then sum / count", '''
def masked_mean_pool(hidden, pad):
    total = hidden.masked_fill(pad.unsqueeze(-1), 0.0).sum(dim=1)
    count = (~pad).sum(dim=1, keepdim=True)
    return total / count
'''),
    Variant("masked_mean_pool", "einsum with weights 1 / count", '''
def masked_mean_pool(hidden, pad):
    keep = (~pad).to(hidden.dtype)
    weights = keep / keep.sum(-1, keepdim=True)
    return torch.einsum("bt,btc->bc", weights, hidden)
'''),
    Variant("masked_mean_pool", "torch.where and a float32 mask (promoted to hidden's dtype)", '''
def masked_mean_pool(hidden, pad):
    m = (~pad).float()[:, :, None]
    kept = torch.where(m > 0, hidden, torch.zeros_like(hidden))
    return kept.sum(1) / m.sum(1)
'''),
    Variant("masked_mean_pool", "one text at a time, real positions selected", '''
def masked_mean_pool(hidden, pad):
    return torch.stack([hidden[b][~pad[b]].mean(dim=0) for b in range(hidden.shape[0])])
'''),

    # -- merge_lora
    Variant("merge_lora", "torch.addmm", '''
def merge_lora(W, A, B, alpha):
    return torch.addmm(W, B, A, alpha=alpha / A.shape[0])
'''),
    Variant("merge_lora", "einsum over the rank", '''
def merge_lora(W, A, B, alpha):
    r = A.size(0)
    return W + alpha / r * torch.einsum("or,ri->oi", B, A)
'''),
    Variant("merge_lora", "(Aᵀ Bᵀ)ᵀ added to a clone", '''
def merge_lora(W, A, B, alpha):
    merged = W.clone()
    merged += (alpha / A.shape[0]) * (A.T @ B.T).T
    return merged
'''),
]
