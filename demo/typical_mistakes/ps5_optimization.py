"""Demo submission for ps5_optimization: mistakes students really make, one in most exercises."""


def sgd_step(param, grad, lr):
    return param - lr * grad                             # correct


def momentum_step(param, grad, buf, lr, momentum):
    if buf is None:
        buf = torch.zeros_like(param)
    buf = momentum * buf + (1 - momentum) * grad         # dampened average: PyTorch adds the whole grad
    return param - lr * buf, buf


def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    beta1, beta2 = betas
    t = int(state.get("step", 0)) + 1
    g = grad + weight_decay * param                      # L2 in the gradient: this is Adam, not AdamW
    m = beta1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - beta1) * g
    v = beta2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), {"step": t, "exp_avg": m, "exp_avg_sq": v}


def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps              # off by one: step 0 gets lr 0
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g * g).sum() for g in grads]).sum().sqrt()
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    return [g * scale for g in grads], total              # correct
