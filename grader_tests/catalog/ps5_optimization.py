"""What students write for ps5_optimization: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Reflective, Variant

MUTANTS = [
    # -- sgd_step --
    Mutant("sgd_step", "gradient ascent (param + lr·grad)", '''
def sgd_step(param, grad, lr):
    return param + lr * grad
'''),
    Mutant("sgd_step", "learning rate ignored", '''
def sgd_step(param, grad, lr):
    step = grad
    return param - step
'''),
    Mutant("sgd_step", "returned the step −lr·grad instead of the new param", '''
def sgd_step(param, grad, lr):
    update = -lr * grad
    return update
'''),
    Mutant("sgd_step", "divided by the learning rate", '''
def sgd_step(param, grad, lr):
    return param - grad / lr
'''),
    Mutant("sgd_step", "input modified in place", '''
def sgd_step(param, grad, lr):
    param -= lr * grad
    return param
'''),
    Mutant("sgd_step", "update computed but not returned (param.sub(...) makes a new tensor)", '''
def sgd_step(param, grad, lr):
    param.sub(lr * grad)
    return param
'''),
    Mutant("sgd_step", "used param.grad instead of the grad argument", '''
def sgd_step(param, grad, lr):
    return param - lr * param.grad
'''),
    # -- momentum_step --
    Mutant("momentum_step", "dampened buffer started at zeros (momentum·buf + (1 − momentum)·grad)", '''
def momentum_step(param, grad, buf, lr, momentum):
    if buf is None:
        buf = torch.zeros_like(param)
    buf = momentum * buf + (1 - momentum) * grad
    return param - lr * buf, buf
'''),
    Mutant("momentum_step", "Nesterov step (grad + momentum·buf)", '''
def momentum_step(param, grad, buf, lr, momentum):
    buf = grad.clone() if buf is None else momentum * buf + grad
    return param - lr * (grad + momentum * buf), buf
'''),
    Mutant("momentum_step", "step uses grad instead of the buffer", '''
def momentum_step(param, grad, buf, lr, momentum):
    new_buf = grad if buf is None else momentum * buf + grad
    return param - lr * grad, new_buf
'''),
    Mutant("momentum_step", "buffer holds the velocity −lr·buf (param + v)", '''
def momentum_step(param, grad, buf, lr, momentum):
    v = -lr * grad if buf is None else momentum * buf - lr * grad
    return param + v, v
'''),
    Mutant("momentum_step", "momentum·param instead of momentum·buf", '''
def momentum_step(param, grad, buf, lr, momentum):
    if buf is None:
        buf = grad
    else:
        buf = momentum * param + grad
    return param - lr * buf, buf
'''),
    Mutant("momentum_step", "lr inside the buffer (buf = momentum·buf + lr·grad, param − buf)", '''
def momentum_step(param, grad, buf, lr, momentum):
    if buf is None:
        buf = torch.zeros_like(param)
    buf = momentum * buf + lr * grad
    return param - buf, buf
'''),
    Mutant("momentum_step", "returned the old buffer instead of the new one", '''
def momentum_step(param, grad, buf, lr, momentum):
    new_buf = grad.clone() if buf is None else momentum * buf + grad
    return param - lr * new_buf, buf
'''),
    Mutant("momentum_step", "input modified in place", '''
def momentum_step(param, grad, buf, lr, momentum):
    if buf is None:
        buf = grad.clone()
    else:
        buf.mul_(momentum).add_(grad)                    # as torch.optim.SGD does it
    return param - lr * buf, buf
'''),
    Mutant("momentum_step", "old buffer not decayed (buf + grad)", '''
def momentum_step(param, grad, buf, lr, momentum):
    buf = grad.clone() if buf is None else buf + grad
    return param - lr * buf, buf
'''),
    # -- adamw_step --
    Mutant("adamw_step", "coupled L2 (grad + wd·param) instead of decoupled weight decay", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    g = grad + weight_decay * param
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * g
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * g ** 2
    update = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps)
    return param - lr * update, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "eps inside the square root", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    new = param * (1 - lr * weight_decay) - lr * m_hat / torch.sqrt(v_hat + eps)
    return new, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "no bias correction", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad * grad
    new = param - lr * weight_decay * param - lr * m / (v.sqrt() + eps)
    return new, {"step": state.get("step", 0) + 1, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "bias correction off by one (old step count)", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    step = state.get("step", 0)
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad * grad
    m_hat = m / (1 - b1 ** step)
    v_hat = v / (1 - b2 ** step)
    new = param * (1 - lr * weight_decay) - lr * m_hat / (v_hat.sqrt() + eps)
    return new, {"step": step + 1, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "weight decay without the lr factor", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    new = param - weight_decay * param - lr * m_hat / (v_hat.sqrt() + eps)
    return new, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "input modified in place", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    if not state:
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["exp_avg"] = b1 * state["exp_avg"] + (1 - b1) * grad
    state["exp_avg_sq"] = b2 * state["exp_avg_sq"] + (1 - b2) * grad * grad
    m_hat = state["exp_avg"] / (1 - b1 ** t)
    v_hat = state["exp_avg_sq"] / (1 - b2 ** t)
    new = param * (1 - lr * weight_decay) - lr * m_hat / (v_hat.sqrt() + eps)
    return new, state
'''),
    Mutant("adamw_step", "eps left out (m̂ / √v̂)", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    new = param * (1 - lr * weight_decay) - lr * m_hat / v_hat.sqrt()
    return new, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "v̂ bias-corrected with β1 instead of β2", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    beta1, beta2 = betas
    t = int(state.get("step", 0)) + 1
    m = beta1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - beta1) * grad
    v = beta2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - beta2) * grad * grad
    bias_correction = 1 - beta1 ** t
    m_hat = m / bias_correction
    v_hat = v / bias_correction
    new = param * (1 - lr * weight_decay) - lr * m_hat / (v_hat.sqrt() + eps)
    return new, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "betas swapped", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    beta2, beta1 = betas
    t = int(state.get("step", 0)) + 1
    m = beta1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - beta1) * grad
    v = beta2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - beta2) * grad * grad
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    new = param * (1 - lr * weight_decay) - lr * m_hat / (v_hat.sqrt() + eps)
    return new, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "step counter not incremented", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    step = state.get("step", 0)
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1 ** (step + 1)), v / (1 - b2 ** (step + 1))
    new = param * (1 - lr * weight_decay) - lr * m_hat / (v_hat.sqrt() + eps)
    return new, {"step": step, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "weight decay applied after the Adam update", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    new = param - lr * m_hat / (v_hat.sqrt() + eps)
    new = new - lr * weight_decay * new
    return new, {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    Mutant("adamw_step", "no weight decay", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", torch.zeros_like(param)) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return param - lr * m_hat / (v_hat.sqrt() + eps), {"step": t, "exp_avg": m, "exp_avg_sq": v}
'''),
    # -- warmup_cosine_lr --
    Mutant("warmup_cosine_lr", "warmup as step / warmup_steps (Hugging Face's convention, not this notebook's)", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
'''),
    Mutant("warmup_cosine_lr", "cosine progress measured from step 0", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * step / total_steps))
'''),
    Mutant("warmup_cosine_lr", "decays to 0 instead of min_lr", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return max_lr * 0.5 * (1 + math.cos(math.pi * progress))
'''),
    Mutant("warmup_cosine_lr", "cosine continues after total_steps", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
'''),
    Mutant("warmup_cosine_lr", "never reaches min_lr (progress divided by total_steps − warmup_steps + 1)", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    decay_steps = total_steps - warmup_steps + 1
    progress = (step - warmup_steps) / decay_steps
    return min_lr + (max_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
'''),
    Mutant("warmup_cosine_lr", "warmup as (step + 1)/(warmup_steps + 1) (nanoGPT's convention, not this notebook's)", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / (warmup_steps + 1)
    if step > total_steps:
        return min_lr
    ratio = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
'''),
    Mutant("warmup_cosine_lr", "warmup from min_lr (a different convention, not this notebook's)", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return min_lr + (max_lr - min_lr) * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
'''),
    Mutant("warmup_cosine_lr", "cosine without π (cos(progress))", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(progress))
'''),
    Mutant("warmup_cosine_lr", "decay spread over total_steps (progress = (step − warmup_steps)/total_steps)", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / total_steps
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
'''),
    Mutant("warmup_cosine_lr", "linear decay instead of cosine", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    remaining = 1 - (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * remaining
'''),
    # -- clip_grad_norm --
    Mutant("clip_grad_norm", "each tensor clipped by its own norm", '''
def clip_grad_norm(grads, max_norm):
    clipped, total = [], 0.0
    for g in grads:
        n = g.pow(2).sum().sqrt()
        total = total + n ** 2
        clipped.append(g * torch.clamp(max_norm / (n + 1e-6), max=1.0))
    return clipped, total ** 0.5
'''),
    Mutant("clip_grad_norm", "rescaled even when the norm is below max_norm", '''
def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g ** 2).sum() for g in grads]).sum().sqrt()
    return [g * max_norm / (total + 1e-6) for g in grads], total
'''),
    Mutant("clip_grad_norm", "total norm is the sum of the per-tensor norms", '''
def clip_grad_norm(grads, max_norm):
    total = sum((g * g).sum().sqrt() for g in grads)
    scale = min(1.0, float(max_norm / (total + 1e-6)))
    return [g * scale for g in grads], total
'''),
    Mutant("clip_grad_norm", "returned the norm after clipping", '''
def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g * g).sum() for g in grads]).sum().sqrt()
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    clipped = [g * scale for g in grads]
    return clipped, torch.stack([(c * c).sum() for c in clipped]).sum().sqrt()
'''),
    Mutant("clip_grad_norm", "no + 1e-6 in the scale", '''
def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g * g).sum() for g in grads]).sum().sqrt()
    if total > max_norm:
        return [g * (max_norm / total) for g in grads], total
    return [g.clone() for g in grads], total
'''),
    Mutant("clip_grad_norm", "squared the sum instead of summing the squares ((Σ g)²)", '''
def clip_grad_norm(grads, max_norm):
    total = torch.sqrt(sum(g.sum() ** 2 for g in grads))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * scale for g in grads], total
'''),
    Mutant("clip_grad_norm", "rescaled to length min(total, max_norm) (shrinks small gradients)", '''
def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g * g).sum() for g in grads]).sum().sqrt()
    target = torch.clamp(total, max=max_norm)                   # the length the gradients should have
    return [g * target / (total + 1e-6) for g in grads], total
'''),
    Mutant("clip_grad_norm", "clipped gradients returned as a tuple, not a list", '''
def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g * g).sum() for g in grads]).sum().sqrt()
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    return tuple(g * scale for g in grads), total
'''),
    Mutant("clip_grad_norm", "input modified in place", '''
def clip_grad_norm(grads, max_norm):
    total = torch.stack([(g * g).sum() for g in grads]).sum().sqrt()
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale)                                            # as torch.nn.utils.clip_grad_norm_ does it
    return grads, total
'''),
    Mutant("clip_grad_norm", "squared norm (no square root)", '''
def clip_grad_norm(grads, max_norm):
    total = sum((g ** 2).sum() for g in grads)
    scale = min(1.0, max_norm / (float(total) + 1e-6))
    return [g * scale for g in grads], total
'''),
]

VARIANTS = [
    Variant("sgd_step", "torch.add with alpha", '''
def sgd_step(param, grad, lr):
    return torch.add(param, grad, alpha=-lr)
'''),
    Variant("sgd_step", "in-place update of a clone", '''
def sgd_step(param, grad, lr):
    new = param.clone()
    new -= lr * grad
    return new
'''),
    Variant("momentum_step", "zeros start without dampening, torch.sub with alpha", '''
def momentum_step(param, grad, buf, lr, momentum):
    if buf is None:
        buf = torch.zeros_like(grad)
    buf = buf * momentum + grad
    return torch.sub(param, buf, alpha=lr), buf
'''),
    Variant("momentum_step", "torch-style in-place ops on copies", '''
def momentum_step(param, grad, buf, lr, momentum):
    new_buf = grad.detach().clone() if buf is None else buf.clone().mul_(momentum).add_(grad)
    new_param = param.clone().add_(new_buf, alpha=-lr)
    return new_param, new_buf
'''),
    Variant("adamw_step", "torch's formulation: lerp, step size lr / bc1, denominator √v / √bc2 + eps", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    beta1, beta2 = betas
    step = state["step"] + 1 if "step" in state else 1
    exp_avg = state["exp_avg"] if "exp_avg" in state else torch.zeros_like(param)
    exp_avg_sq = state["exp_avg_sq"] if "exp_avg_sq" in state else torch.zeros_like(param)
    exp_avg = torch.lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * grad.square()
    step_size = lr / (1 - beta1 ** step)
    denom = exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step) + eps
    new_param = param * (1 - lr * weight_decay)
    new_param = torch.addcdiv(new_param, exp_avg, denom, value=-step_size)
    return new_param, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
'''),
    Variant("adamw_step", "step kept as a 0-d tensor, copies of the state updated in place", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()}
    if not state:
        state = {"step": torch.tensor(0), "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
    state["step"] = torch.as_tensor(state["step"]) + 1
    t = state["step"].item()
    state["exp_avg"].mul_(betas[0]).add_((1 - betas[0]) * grad)
    state["exp_avg_sq"].mul_(betas[1]).add_((1 - betas[1]) * grad * grad)
    m_hat = state["exp_avg"] / (1 - betas[0] ** t)
    v_hat = state["exp_avg_sq"] / (1 - betas[1] ** t)
    new = param - lr * weight_decay * param
    new = new - lr * m_hat / (torch.sqrt(v_hat) + eps)
    return new, state
'''),
    Variant("warmup_cosine_lr", "one expression with a clamped progress", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return (step + 1) / warmup_steps * max_lr
    progress = min(max((step - warmup_steps) / (total_steps - warmup_steps), 0.0), 1.0)
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr + coeff * (max_lr - min_lr)
'''),
    Variant("warmup_cosine_lr", "torch.cos on a float32 tensor, returns a 0-d tensor", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    s = torch.tensor(float(step))
    if step < warmup_steps:
        return max_lr * (s + 1) / warmup_steps
    if step >= total_steps:
        return torch.tensor(float(min_lr))
    progress = (s - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * (1 + torch.cos(torch.pi * progress)) / 2
'''),
    Variant("clip_grad_norm", "vector norm of the flattened concatenation", '''
def clip_grad_norm(grads, max_norm):
    total = torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * coef for g in grads], total
'''),
    Variant("clip_grad_norm", "list(map(...)) with torch.minimum against a tensor one", '''
def clip_grad_norm(grads, max_norm):
    total = torch.sqrt(sum(torch.sum(g ** 2) for g in grads))
    scale = torch.minimum(torch.ones_like(total), max_norm / (total + 1e-6))
    return list(map(lambda g: g * scale, grads)), total
'''),
    Variant("clip_grad_norm", "Python float norm and an explicit branch", '''
def clip_grad_norm(grads, max_norm):
    total = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        return [g * coef for g in grads], total
    return [g.clone() for g in grads], total
'''),
]

FORBIDDEN = [
    Forbidden("sgd_step", "torch.optim.SGD", '''
def sgd_step(param, grad, lr):
    p = param.clone().requires_grad_(True)
    p.grad = grad.clone()
    torch.optim.SGD([p], lr=lr).step()
    return p.detach()
'''),
    Forbidden("momentum_step", "torch.optim.SGD", '''
from torch.optim import SGD

def momentum_step(param, grad, buf, lr, momentum):
    p = param.clone().requires_grad_(True)
    opt = SGD([p], lr=lr, momentum=momentum)
    if buf is not None:
        opt.state[p]["momentum_buffer"] = buf.clone()
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]["momentum_buffer"]
'''),
    Forbidden("adamw_step", "torch.optim.AdamW", '''
def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    p = param.clone().requires_grad_(True)
    opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if state:
        opt.state[p].update(step=torch.tensor(float(state["step"])), exp_avg=state["exp_avg"].clone(), exp_avg_sq=state["exp_avg_sq"].clone())
    p.grad = grad.clone()
    opt.step()
    s = opt.state[p]
    return p.detach(), {"step": int(s["step"]), "exp_avg": s["exp_avg"], "exp_avg_sq": s["exp_avg_sq"]}
'''),
    Forbidden("warmup_cosine_lr", "torch.optim.lr_scheduler", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    schedulers = torch.optim.lr_scheduler
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=max_lr)
    sched = schedulers.CosineAnnealingLR(opt, T_max=total_steps, eta_min=min_lr)
    for _ in range(step):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]
'''),
    Forbidden("clip_grad_norm", "torch.nn.utils.clip_grad_norm_", '''
def clip_grad_norm(grads, max_norm):
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad for p in params], total
'''),
]

# Private or reflective access: refused in every exercise (each entry is graded in a notebook of its own).
REFLECTIVE = [
    Reflective("warmup_cosine_lr", "getattr with a computed name", '''
def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    schedulers = getattr(torch.optim, "lr_" + "scheduler")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=max_lr)
    sched = schedulers.CosineAnnealingLR(opt, T_max=total_steps, eta_min=min_lr)
    for _ in range(step):
        opt.step()
        sched.step()
    return opt.param_groups[0]["lr"]
'''),
]
