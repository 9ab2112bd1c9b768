"""Demo submission for ps8_fine_tuning: mistakes students really make, in half of the exercises."""


def mask_tokens(ids, mask_prob, mask_id, vocab_size, generator):
    chosen = torch.rand(ids.shape, generator=generator) < mask_prob
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = torch.where(chosen, torch.full_like(ids, mask_id), ids)   # every chosen token becomes [MASK]: no 80/10/10
    return inputs, labels


def masked_lm_loss(logits, labels):
    keep = labels != -100
    log_probs = F.log_softmax(logits[keep], dim=-1)
    return -log_probs.gather(1, labels[keep].unsqueeze(1)).mean()      # correct


def padded_attention(q, k, v, key_padding_mask):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores * (~key_padding_mask)[:, None, None, :]            # a score of 0 still gets weight e^0: needs -inf
    return torch.softmax(scores, dim=-1) @ v


def linear_warmup_decay_lr(step, max_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    return max_lr * max(0.0, (total_steps - step) / (total_steps - warmup_steps))   # correct


def masked_mean_pool(hidden, pad):
    keep = (~pad).unsqueeze(-1).to(hidden.dtype)
    return (hidden * keep).sum(dim=1) / hidden.shape[1]                # divides by T, not by the number of real positions


def merge_lora(W, A, B, alpha):
    r = A.shape[0]
    return W + (alpha / r) * (B @ A)                                   # correct
