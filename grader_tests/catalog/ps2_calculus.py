"""What students write for ps2_calculus: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Reflective, Variant

MUTANTS = [
    # -- central_difference --------------------------------------------------------------
    Mutant("central_difference", "forward difference (f(x+h) − f(x)) / h", '''
def central_difference(f, x, h=1e-5):
    grad = torch.zeros_like(x)
    fx = f(x)
    for i in range(x.numel()):
        xp = x.clone()
        xp.view(-1)[i] += h
        grad.view(-1)[i] = (f(xp) - fx) / h
    return grad
'''),
    Mutant("central_difference", "divided by h instead of 2h", '''
def central_difference(f, x, h=1e-5):
    flat = x.flatten()
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        plus, minus = flat.clone(), flat.clone()
        plus[i] += h
        minus[i] -= h
        grad[i] = (f(plus.view(x.shape)) - f(minus.view(x.shape))) / h
    return grad.view(x.shape)
'''),
    Mutant("central_difference", "/ 2 * h without parentheses", '''
def central_difference(f, x, h=1e-5):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + e) - f(x - e)) / 2 * h
    return grad
'''),
    Mutant("central_difference", "x perturbed in place instead of a copy", '''
def central_difference(f, x, h=1e-5):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        x_plus = x                     # not a copy: x_plus, x_minus and x are one tensor
        x_plus.view(-1)[i] += h
        x_minus = x
        x_minus.view(-1)[i] -= h
        grad.view(-1)[i] = (f(x_plus) - f(x_minus)) / (2 * h)
    return grad
'''),
    Mutant("central_difference", "every entry perturbed at once", '''
def central_difference(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)
'''),

    # -- cubic_and_grad ------------------------------------------------------------------
    Mutant("cubic_and_grad", "chain-rule factor 2 forgotten", '''
def cubic_and_grad(x):
    y = (2 * x + 1) ** 3
    return y, 3 * (2 * x + 1) ** 2
'''),
    Mutant("cubic_and_grad", "outer derivative taken at x instead of u = 2x + 1", '''
def cubic_and_grad(x):
    y = (2 * x + 1) ** 3
    dy = 3 * x ** 2 * 2
    return y, dy
'''),
    Mutant("cubic_and_grad", "exponent not lowered", '''
def cubic_and_grad(x):
    u = 2 * x + 1
    return u ** 3, 3 * u ** 3 * 2
'''),
    Mutant("cubic_and_grad", "returned (dy/dx, y) instead of (y, dy/dx)", '''
def cubic_and_grad(x):
    u = 2 * x + 1
    return 6 * u ** 2, u ** 3
'''),
    Mutant("cubic_and_grad", "y is 2x + 1 (missing parentheses: 2 * x + 1 ** 3)", '''
def cubic_and_grad(x):
    y = 2 * x + 1 ** 3
    return y, 6 * (2 * x + 1) ** 2
'''),

    # -- tanh_backward -------------------------------------------------------------------
    Mutant("tanh_backward", "1 − dout² instead of 1 − out²", '''
def tanh_backward(dout, out):
    return dout * (1 - dout ** 2)
'''),
    Mutant("tanh_backward", "multiplied by out instead of 1 − out²", '''
def tanh_backward(dout, out):
    return dout * out
'''),
    Mutant("tanh_backward", "tanh applied to out again (1 − tanh(out)²)", '''
def tanh_backward(dout, out):
    local = 1 - torch.tanh(out) ** 2       # sech²(out)
    return dout * local
'''),
    Mutant("tanh_backward", "upstream gradient dout ignored", '''
def tanh_backward(dout, out):
    return 1 - out * out
'''),

    # -- linear_backward -----------------------------------------------------------------
    Mutant("linear_backward", "dW transposed (xᵀ · dout)", '''
def linear_backward(dout, x, W):
    return dout @ W, x.T @ dout, dout.sum(0)
'''),
    Mutant("linear_backward", "db not summed over the batch", '''
def linear_backward(dout, x, W):
    dx = dout @ W
    dW = dout.T @ x
    db = dout
    return dx, dW, db
'''),
    Mutant("linear_backward", "dx uses W.T", '''
def linear_backward(dout, x, W):
    dx = dout @ W.T
    dW = dout.T @ x
    db = dout.sum(dim=0)
    return dx, dW, db
'''),
    Mutant("linear_backward", "db averaged over the batch", '''
def linear_backward(dout, x, W):
    return dout @ W, dout.T @ x, dout.mean(dim=0)
'''),

    # -- cross_entropy_backward ----------------------------------------------------------
    Mutant("cross_entropy_backward", "not divided by N", '''
def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, dim=-1)
    p[torch.arange(logits.shape[0]), targets] -= 1
    return p
'''),
    Mutant("cross_entropy_backward", "one-hot at the wrong index (p[:, targets])", '''
def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, dim=1)
    p[:, targets] -= 1
    return p / logits.shape[0]
'''),
    Mutant("cross_entropy_backward", "sign flipped (one-hot − softmax)", '''
def cross_entropy_backward(logits, targets):
    N, C = logits.shape
    return (F.one_hot(targets, C) - torch.softmax(logits, -1)) / N
'''),
    Mutant("cross_entropy_backward", "softmax without the max-shift (overflows on large logits)", '''
def cross_entropy_backward(logits, targets):
    e = torch.exp(logits)
    p = e / e.sum(dim=1, keepdim=True)
    return (p - F.one_hot(targets, logits.shape[1])) / len(targets)
'''),
    Mutant("cross_entropy_backward", "F.one_hot without num_classes", '''
def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, -1)
    return (p - F.one_hot(targets)) / logits.shape[0]
'''),

    # -- mlp_loss_and_grads --------------------------------------------------------------
    Mutant("mlp_loss_and_grads", "cross-entropy gradient not divided by N", '''
def mlp_loss_and_grads(x, targets, params):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    h = torch.tanh(x @ W1.T + b1)
    logits = h @ W2.T + b2
    logp = logits - logits.logsumexp(-1, keepdim=True)
    loss = -logp[torch.arange(len(targets)), targets].mean()
    dlogits = logp.exp() - F.one_hot(targets, logits.shape[1])
    dh = dlogits @ W2
    dz = dh * (1 - h ** 2)
    return loss, {"W1": dz.T @ x, "b1": dz.sum(0), "W2": dlogits.T @ h, "b2": dlogits.sum(0)}
'''),
    Mutant("mlp_loss_and_grads", "tanh derivative taken from the pre-activation (1 − z²)", '''
def mlp_loss_and_grads(x, targets, params):
    z = x @ params["W1"].T + params["b1"]
    h = torch.tanh(z)
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dh, dW2, db2 = linear_backward(dlogits, h, params["W2"])
    dz = tanh_backward(dh, z)
    _, dW1, db1 = linear_backward(dz, x, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
    Mutant("mlp_loss_and_grads", "tanh derivative missing (dz = dh)", '''
def mlp_loss_and_grads(x, targets, params):
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dh, dW2, db2 = linear_backward(dlogits, h, params["W2"])
    _, dW1, db1 = linear_backward(dh, x, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
    Mutant("mlp_loss_and_grads", "dh uses W2.T", '''
def mlp_loss_and_grads(x, targets, params):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    h = torch.tanh(x @ W1.T + b1)
    logits = h @ W2.T + b2
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dh = dlogits @ W2.T
    dz = dh * (1 - h ** 2)
    return loss, {"W1": dz.T @ x, "b1": dz.sum(0), "W2": dlogits.T @ h, "b2": dlogits.sum(0)}
'''),
    Mutant("mlp_loss_and_grads", "loss summed instead of averaged", '''
def mlp_loss_and_grads(x, targets, params):
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits[range(len(targets)), targets]).sum()
    dlogits = cross_entropy_backward(logits, targets)
    dh, dW2, db2 = linear_backward(dlogits, h, params["W2"])
    _, dW1, db1 = linear_backward(tanh_backward(dh, h), x, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),

    # -- relative_error ------------------------------------------------------------------
    Mutant("relative_error", "no max(1e-8, ·) guard", '''
def relative_error(a, b):
    return ((a - b).abs() / (a.abs() + b.abs())).max()
'''),
    Mutant("relative_error", "global max of the denominators", '''
def relative_error(a, b):
    return (a - b).abs().max() / max(1e-8, (a.abs() + b.abs()).max().item())
'''),
    Mutant("relative_error", "added 1e-8 instead of max(1e-8, ·)", '''
def relative_error(a, b):
    return torch.max(torch.abs(a - b) / (torch.abs(a) + torch.abs(b) + 1e-8))
'''),
    Mutant("relative_error", "mean instead of max", '''
def relative_error(a, b):
    return ((a - b).abs() / (a.abs() + b.abs()).clamp(min=1e-8)).mean()
'''),

    # -- max_stable_lr -------------------------------------------------------------------
    Mutant("max_stable_lr", "1/λ_max instead of 2/λ_max", '''
def max_stable_lr(H):
    return 1 / torch.linalg.eigvalsh(H).max()
'''),
    Mutant("max_stable_lr", "λ_min used instead of λ_max", '''
def max_stable_lr(H):
    lam_max = torch.linalg.eigvalsh(H)[0]
    return 2 / lam_max
'''),
    Mutant("max_stable_lr", "largest diagonal entry used as λ_max", '''
def max_stable_lr(H):
    return 2 / H.diag().max().item()
'''),
    Mutant("max_stable_lr", "λ_max / 2 (inverted)", '''
def max_stable_lr(H):
    return torch.linalg.eigvalsh(H)[-1] / 2
'''),

    # -- more mistakes, and the edge inputs that expose them --------------------------------
    Mutant("central_difference", "backward difference (f(x) − f(x−h)) / h", '''
def central_difference(f, x, h=1e-5):
    grad = torch.zeros_like(x)
    fx = f(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e.view(-1)[i] = h
        grad.view(-1)[i] = (fx - f(x - e)) / h
    return grad
'''),
    Mutant("central_difference", "gradient created in the default dtype (float32)", '''
def central_difference(f, x, h=1e-5):
    grad = torch.zeros(x.shape)
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e.view(-1)[i] = h
        grad.view(-1)[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad
'''),
    Mutant("central_difference", "gradient returned flat (shape (n,)), not shaped like x", '''
def central_difference(f, x, h=1e-5):
    slopes = []
    for i in range(x.numel()):
        e = torch.zeros(x.numel(), dtype=x.dtype)
        e[i] = h
        e = e.reshape(x.shape)
        slopes.append((f(x + e) - f(x - e)) / (2 * h))
    return torch.stack(slopes)
'''),
    Mutant("cubic_and_grad", "chain rule as a sum (3u² + 2) instead of a product", '''
def cubic_and_grad(x):
    u = 2 * x + 1
    dy_du = 3 * u ** 2
    du_dx = 2
    return u ** 3, dy_du + du_dx
'''),
    Mutant("cubic_and_grad", "`^` used for powers (bitwise xor in Python)", '''
def cubic_and_grad(x):
    u = 2 * x + 1
    return u ^ 3, 3 * u ^ 2 * 2
'''),
    Mutant("cubic_and_grad", "input modified in place", '''
def cubic_and_grad(x):
    u = x
    u *= 2
    u += 1
    return u ** 3, 6 * u ** 2
'''),
    Mutant("tanh_backward", "(1 − out)² instead of 1 − out²", '''
def tanh_backward(dout, out):
    return dout * (1 - out) ** 2
'''),
    Mutant("tanh_backward", "1 − out instead of 1 − out²", '''
def tanh_backward(dout, out):
    return dout * (1 - out)
'''),
    Mutant("tanh_backward", "1 − out² · dout (missing parentheses)", '''
def tanh_backward(dout, out):
    return 1 - out ** 2 * dout
'''),
    Mutant("tanh_backward", "matrix product instead of elementwise (dout @ (1 − out²))", '''
def tanh_backward(dout, out):
    local = 1 - out ** 2
    return dout @ local
'''),
    Mutant("linear_backward", "dW averaged over the batch", '''
def linear_backward(dout, x, W):
    N = x.shape[0]
    return dout @ W, dout.T @ x / N, dout.sum(0)
'''),
    Mutant("linear_backward", "dx transposed (Wᵀ · doutᵀ)", '''
def linear_backward(dout, x, W):
    dx = W.T @ dout.T
    return dx, dout.T @ x, dout.sum(0)
'''),
    Mutant("linear_backward", "db summed over the out dim (dout.sum(1))", '''
def linear_backward(dout, x, W):
    return dout @ W, dout.T @ x, dout.sum(1)
'''),
    Mutant("linear_backward", "returned (dW, dx, db) instead of (dx, dW, db)", '''
def linear_backward(dout, x, W):
    dW = dout.T @ x
    dx = dout @ W
    db = dout.sum(0)
    return dW, dx, db
'''),
    Mutant("cross_entropy_backward", "softmax over the batch dim", '''
def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, dim=0)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)
'''),
    Mutant("cross_entropy_backward", "one-hot subtracted from the logits", '''
def cross_entropy_backward(logits, targets):
    N, C = logits.shape
    return (logits - F.one_hot(targets, C)) / N
'''),
    Mutant("cross_entropy_backward", "divided by C (the classes) instead of N", '''
def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, -1)
    one_hot = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    return (p - one_hot) / logits.shape[-1]
'''),
    Mutant("cross_entropy_backward", "gradient with respect to the probabilities (−1/p at the target)", '''
def cross_entropy_backward(logits, targets):
    N, C = logits.shape
    p = torch.softmax(logits, dim=-1)
    grad = torch.zeros_like(logits)
    rows = torch.arange(N)
    grad[rows, targets] = -1 / p[rows, targets]        # d(-log p_y) / d p_y
    return grad / N
'''),
    Mutant("mlp_loss_and_grads", "bias gradients not summed over the batch", '''
def mlp_loss_and_grads(x, targets, params):
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dz = tanh_backward(dlogits @ params["W2"], h)
    return loss, {"W1": dz.T @ x, "b1": dz, "W2": dlogits.T @ h, "b2": dlogits}
'''),
    Mutant("mlp_loss_and_grads", "weight gradients transposed", '''
def mlp_loss_and_grads(x, targets, params):
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dz = tanh_backward(dlogits @ params["W2"], h)
    return loss, {"W1": x.T @ dz, "b1": dz.sum(0), "W2": h.T @ dlogits, "b2": dlogits.sum(0)}
'''),
    Mutant("mlp_loss_and_grads", "softmax without the max-shift (overflows on large logits)", '''
def mlp_loss_and_grads(x, targets, params):
    N = x.shape[0]
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    e = logits.exp()
    p = e / e.sum(-1, keepdim=True)
    loss = -p[torch.arange(N), targets].log().mean()
    dlogits = (p - F.one_hot(targets, logits.shape[1])) / N
    dz = (dlogits @ params["W2"]) * (1 - h ** 2)
    return loss, {"W1": dz.T @ x, "b1": dz.sum(0), "W2": dlogits.T @ h, "b2": dlogits.sum(0)}
'''),
    Mutant("mlp_loss_and_grads", "db1 taken before the tanh derivative (dh.sum(0))", '''
def mlp_loss_and_grads(x, targets, params):
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dh, dW2, db2 = linear_backward(dlogits, h, params["W2"])
    db1 = dh.sum(0)
    dz = tanh_backward(dh, h)
    _, dW1, _ = linear_backward(dz, x, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
    Mutant("mlp_loss_and_grads", "dW2 from the pre-activation z instead of h", '''
def mlp_loss_and_grads(x, targets, params):
    z = x @ params["W1"].T + params["b1"]
    h = torch.tanh(z)
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dh, _, db2 = linear_backward(dlogits, h, params["W2"])
    dW2 = dlogits.T @ z
    _, dW1, db1 = linear_backward(tanh_backward(dh, h), x, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
    Mutant("relative_error", "divided by |a| only", '''
def relative_error(a, b):
    return ((a - b).abs() / a.abs().clamp_min(1e-8)).max()
'''),
    Mutant("relative_error", "absolute error (no denominator)", '''
def relative_error(a, b):
    return torch.max(torch.abs(a - b))
'''),
    Mutant("relative_error", "|a + b| instead of |a| + |b|", '''
def relative_error(a, b):
    return ((a - b).abs() / (a + b).abs().clamp_min(1e-8)).max()
'''),
    Mutant("relative_error", "divided by max(|a|, |b|)", '''
def relative_error(a, b):
    scale = torch.maximum(a.abs(), b.abs()).clamp_min(1e-8)
    return ((a - b).abs() / scale).max()
'''),
    Mutant("max_stable_lr", "trace (sum of eigenvalues) used instead of λ_max", '''
def max_stable_lr(H):
    return 2 / torch.trace(H)
'''),
    Mutant("max_stable_lr", "Frobenius norm used as λ_max", '''
def max_stable_lr(H):
    return 2 / torch.linalg.norm(H)
'''),
    Mutant("max_stable_lr", "optimal rate 2/(λ_max + λ_min), not the stability limit", '''
def max_stable_lr(H):
    lam = torch.linalg.eigvalsh(H)
    return 2 / (lam[0] + lam[-1])
'''),
]

VARIANTS = [
    Variant("central_difference", "rows of a scaled identity as the steps", '''
def central_difference(f, x, h=1e-5):
    n = x.numel()
    steps = torch.eye(n, dtype=x.dtype) * h
    slopes = [(f(x + e.view(x.shape)) - f(x - e.view(x.shape))) / (2 * h) for e in steps]
    return torch.stack(slopes).view(x.shape)
'''),
    Variant("central_difference", "a working copy perturbed and restored by assignment", '''
import itertools

def central_difference(f, x, h=1e-5):
    work = x.clone()
    grad = torch.empty_like(x)
    for idx in itertools.product(*[range(size) for size in x.shape]):
        old = work[idx].item()
        work[idx] = old + h
        f_plus = f(work)
        work[idx] = old - h
        f_minus = f(work)
        work[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad
'''),
    Variant("cubic_and_grad", "expanded polynomial", '''
def cubic_and_grad(x):
    y = 8 * x ** 3 + 12 * x ** 2 + 6 * x + 1
    dy = 24 * x ** 2 + 24 * x + 6
    return y, dy
'''),
    Variant("cubic_and_grad", "torch.pow and a named chain rule", '''
def cubic_and_grad(x):
    inner = torch.add(torch.mul(x, 2), 1)
    d_outer = 3 * torch.pow(inner, 2)
    d_inner = 2
    return torch.pow(inner, 3), d_outer * d_inner
'''),
    Variant("tanh_backward", "dout − dout·out²", '''
def tanh_backward(dout, out):
    return dout - dout * out * out
'''),
    Variant("tanh_backward", "factored as (1 − out)(1 + out)", '''
def tanh_backward(dout, out):
    return dout * (1 - out) * (1 + out)
'''),
    Variant("linear_backward", "einsum", '''
def linear_backward(dout, x, W):
    dx = torch.einsum("no,oi->ni", dout, W)
    dW = torch.einsum("no,ni->oi", dout, x)
    db = torch.einsum("no->o", dout)
    return dx, dW, db
'''),
    Variant("linear_backward", "sum of per-example outer products", '''
def linear_backward(dout, x, W):
    dW = torch.zeros_like(W)
    db = torch.zeros(W.shape[0], dtype=W.dtype)
    for n in range(x.shape[0]):
        dW = dW + torch.outer(dout[n], x[n])
        db = db + dout[n]
    return torch.matmul(dout, W), dW, db
'''),
    Variant("cross_entropy_backward", "exp of log-softmax, then index with arange", '''
def cross_entropy_backward(logits, targets):
    N = logits.shape[0]
    grad = (logits - logits.logsumexp(dim=1, keepdim=True)).exp()
    grad[torch.arange(N), targets] -= 1.0
    return grad / N
'''),
    Variant("cross_entropy_backward", "torch.softmax and scatter", '''
def cross_entropy_backward(logits, targets):
    one_hot = torch.zeros_like(logits).scatter(1, targets.unsqueeze(1), 1.0)
    return (torch.softmax(logits, dim=-1) - one_hot) / len(logits)
'''),
    Variant("mlp_loss_and_grads", "inline, loss from F.log_softmax", '''
def mlp_loss_and_grads(x, targets, params):
    N = x.shape[0]
    h = torch.tanh(x @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    logp = F.log_softmax(logits, dim=-1)
    loss = -logp[torch.arange(N), targets].mean()
    dlogits = logp.exp()
    dlogits[torch.arange(N), targets] -= 1
    dlogits = dlogits / N
    dz = (dlogits @ params["W2"]) * (1 - h * h)
    return loss, {"W1": dz.T @ x, "b1": dz.sum(0), "W2": dlogits.T @ h, "b2": dlogits.sum(0)}
'''),
    Variant("mlp_loss_and_grads", "einsum, nll_loss, loss as a Python float", '''
def mlp_loss_and_grads(x, targets, params):
    z = torch.einsum("nd,hd->nh", x, params["W1"]) + params["b1"]
    h = z.tanh()
    logits = torch.einsum("nh,ch->nc", h, params["W2"]) + params["b2"]
    loss = F.nll_loss(torch.log_softmax(logits, -1), targets).item()
    dlogits = cross_entropy_backward(logits, targets)
    dz = tanh_backward(torch.einsum("nc,ch->nh", dlogits, params["W2"]), h)
    grads = {"W2": torch.einsum("nc,nh->ch", dlogits, h), "b2": dlogits.sum(0),
             "W1": torch.einsum("nh,nd->hd", dz, x), "b1": dz.sum(0)}
    return loss, grads
'''),
    Variant("mlp_loss_and_grads", "layer classes with their own forward and backward methods", '''
class Linear:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, dout):
        return dout @ self.W, dout.T @ self.x, dout.sum(0)


class Tanh:
    def forward(self, z):
        self.h = torch.tanh(z)
        return self.h

    def backward(self, dh):
        return dh * (1 - self.h ** 2)


class SoftmaxCrossEntropy:
    def forward(self, logits, targets):
        shifted = logits - logits.max(-1, keepdim=True).values
        logp = shifted - shifted.exp().sum(-1, keepdim=True).log()
        self.p, self.targets = logp.exp(), targets
        return -logp[torch.arange(len(targets)), targets].mean()

    def backward(self):
        d = self.p.clone()
        d[torch.arange(len(self.targets)), self.targets] -= 1
        return d / len(self.targets)


def mlp_loss_and_grads(x, targets, params):
    layer1, act, layer2, loss_fn = Linear(params["W1"], params["b1"]), Tanh(), Linear(params["W2"], params["b2"]), SoftmaxCrossEntropy()
    loss = loss_fn.forward(layer2.forward(act.forward(layer1.forward(x))), targets)
    dh, dW2, db2 = layer2.backward(loss_fn.backward())
    _, dW1, db1 = layer1.backward(act.backward(dh))
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
'''),
    Variant("linear_backward", "a Linear layer class with a backward method", '''
class Linear:
    def __init__(self, W):
        self.W = W

    def forward(self, x):
        self.x = x
        return x @ self.W.T

    def backward(self, dout):
        return dout @ self.W, dout.flatten(0, -2).T @ self.x.flatten(0, -2), dout.flatten(0, -2).sum(0)


def linear_backward(dout, x, W):
    layer = Linear(W)
    layer.forward(x)
    return layer.backward(dout)
'''),
    Variant("relative_error", "torch.maximum and a Python float", '''
def relative_error(a, b):
    floor = torch.full_like(a, 1e-8)
    return torch.max(torch.abs(a - b) / torch.maximum(floor, torch.abs(a) + torch.abs(b))).item()
'''),
    Variant("relative_error", "torch.where on the denominator", '''
def relative_error(a, b):
    denom = a.abs() + b.abs()
    denom = torch.where(denom > 1e-8, denom, torch.tensor(1e-8, dtype=a.dtype))
    return ((a - b).abs() / denom).amax()
'''),
    Variant("max_stable_lr", "largest singular value (equal to λ_max for PSD)", '''
def max_stable_lr(H):
    return 2.0 / torch.linalg.svdvals(H)[0].item()
'''),
    Variant("max_stable_lr", "power iteration with a Rayleigh quotient", '''
def max_stable_lr(H):
    v = torch.arange(1, H.shape[0] + 1, dtype=H.dtype)
    for _ in range(1000):
        v = H @ v
        v = v / torch.linalg.vector_norm(v)
    return 2 / (v @ H @ v)
'''),
]

FORBIDDEN = [
    Forbidden("central_difference", "torch.autograd.grad", '''
def central_difference(f, x, h=1e-5):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x)
    return grad.detach()
'''),
    Forbidden("cubic_and_grad", "Tensor.backward", '''
def cubic_and_grad(x):
    x = x.detach().clone().requires_grad_(True)
    y = (2 * x + 1) ** 3
    y.sum().backward()
    return y.detach(), x.grad
'''),
    Forbidden("tanh_backward", "torch.func", '''
from torch.func import vjp

def tanh_backward(dout, out):
    _, pullback = vjp(torch.tanh, torch.atanh(out))
    return pullback(dout)[0]
'''),
    Forbidden("linear_backward", "torch.autograd.grad", '''
def linear_backward(dout, x, W):
    x, W = x.clone().requires_grad_(), W.clone().requires_grad_()
    b = torch.zeros(W.shape[0], dtype=W.dtype, requires_grad=True)
    return torch.autograd.grad(x @ W.T + b, (x, W, b), dout)
'''),
    Forbidden("cross_entropy_backward", "torch.nn.functional.cross_entropy", '''
def cross_entropy_backward(logits, targets):
    z = logits.clone().requires_grad_()
    F.cross_entropy(z, targets).backward()
    return z.grad
'''),
    Forbidden("mlp_loss_and_grads", "torch.nn.functional.cross_entropy", '''
def mlp_loss_and_grads(x, targets, params):
    p = {k: v.clone().requires_grad_() for k, v in params.items()}
    logits = torch.tanh(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    return loss.detach(), {k: v.grad for k, v in p.items()}
'''),
]

# Private or reflective access: refused in every exercise (each entry is graded in a notebook of its own).
REFLECTIVE = [
    Reflective("linear_backward", "getattr with a computed name", '''
def linear_backward(dout, x, W):
    x, W = x.clone().requires_grad_(), W.clone().requires_grad_()
    b = torch.zeros(W.shape[0], dtype=W.dtype, requires_grad=True)
    grad = getattr(torch.autograd, "gr" + "ad")
    return grad(x @ W.T + b, (x, W, b), dout)
'''),
    Reflective("cubic_and_grad", "_execution_engine", '''
def cubic_and_grad(x):
    x = x.clone().requires_grad_()
    y = (2 * x + 1) ** 3
    engine = torch.autograd.Variable._execution_engine
    (grad,) = engine.run_backward((y.sum(),), (torch.ones((), dtype=x.dtype),), False, False, (x,), False, False)
    return y.detach(), grad
'''),
    Reflective("tanh_backward", "torch.ops", '''
def tanh_backward(dout, out):
    return torch.ops.aten.tanh_backward(dout, out)
'''),
]

# -- hvp and top_eigenvalue ----------------------------------------------------------------------
# top_eigenvalue's mutants compute their products inline: hvp is not substituted (a function cannot
# cross from the sandbox back to the grader), so a mutant calling hvp could meet a broken hvp in its batch.
MUTANTS += [
    Mutant("hvp", "no graph to differentiate: create_graph=True (or requires_grad) missing", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    g = torch.autograd.grad(f(w), w)[0]
    return torch.autograd.grad((g * v).sum(), w)[0]
'''),
    Mutant("hvp", "second gradient of g * v without summing (a non-scalar)", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(w), w, create_graph=True)
    (Hv,) = torch.autograd.grad(g * v, w)
    return Hv
'''),
    Mutant("hvp", "returned the gradient ∇f(w), not H v", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    v = v.detach().requires_grad_(True)
    g = torch.autograd.grad(f(w), w, create_graph=True)[0]
    return torch.autograd.grad((g * v).sum(), v)[0]       # differentiated with respect to v
'''),
    Mutant("hvp", "returned g ⊙ v (the gradient times v), not H v", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    g, = torch.autograd.grad(f(w), w, create_graph=True)
    return (g * v).detach()
'''),
    Mutant("hvp", "returned gᵀv (the directional derivative, a number), not H v", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    g, = torch.autograd.grad(f(w), w, create_graph=True)
    return torch.dot(g.flatten(), v.flatten()).detach()
'''),
    Mutant("hvp", "v ignored: returned H·1 (the gradient of g.sum())", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    g = torch.autograd.grad(f(w), w, create_graph=True)[0]
    return torch.autograd.grad(g.sum(), w)[0]
'''),
    Mutant("hvp", "v multiplied after the second gradient: (H·1) ⊙ v", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    g = torch.autograd.grad(f(w), w, create_graph=True)[0]
    return torch.autograd.grad(g.sum(), w)[0] * v
'''),
    Mutant("hvp", "v normalised to unit length (returns H v / ‖v‖)", '''
def hvp(f, w, v):
    v = v / v.norm()
    w = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(w), w, create_graph=True)
    return torch.autograd.grad((g * v).sum(), w)[0]
'''),
    Mutant("hvp", "finite difference of gradients (close to H v, not exact)", '''
def hvp(f, w, v):
    eps = 1e-3

    def grad(x):
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(f(x), x)[0]

    return (grad(w + eps * v) - grad(w - eps * v)) / (2 * eps)
'''),
    Mutant("hvp", "w.grad not cleared between the two backward passes (returns ∇f + H v)", '''
def hvp(f, w, v):
    w = w.detach().requires_grad_(True)
    f(w).backward(create_graph=True)
    (w.grad * v).sum().backward()
    return w.grad.detach()
'''),

    Mutant("top_eigenvalue", "v not normalised at each step (H^k v overflows or underflows)", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    g = torch.autograd.grad(f(x), x, create_graph=True)[0]
    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    for _ in range(iters):
        v = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
    Hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
    return (v * Hv).sum() / (v * v).sum()
'''),
    Mutant("top_eigenvalue", "returned ‖H v‖: the sign of a negative eigenvalue is lost", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    g = torch.autograd.grad(f(x), x, create_graph=True)[0]
    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    v = v / v.norm()
    lam = None
    for _ in range(iters):
        Hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
        lam = Hv.norm()                     # the growth factor |λ|
        v = Hv / lam
    return lam
'''),
    Mutant("top_eigenvalue", "Rayleigh quotient vᵀHv of a v that is not a unit vector", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)

    def hv(v):
        return torch.autograd.grad((g * v).sum(), x, retain_graph=True)[0]

    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    for _ in range(iters):
        v = hv(v)
        v = v / v.abs().max()               # the largest entry scaled to 1
    return (v * hv(v)).sum()
'''),
    Mutant("top_eigenvalue", "returned the eigenvector, not the eigenvalue", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    for _ in range(iters):
        Hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
        v = Hv / Hv.norm()
    return v
'''),
    Mutant("top_eigenvalue", "seed not used (the same start for every seed)", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    v = torch.ones_like(w) / w.numel() ** 0.5
    for _ in range(iters):
        Hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
        v = Hv / Hv.norm()
    return (v * torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]).sum()
'''),
    Mutant("top_eigenvalue", "start drawn from the global random generator (not reproducible)", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    v = torch.randn(w.shape, dtype=w.dtype)
    v = v / v.norm()
    for _ in range(iters):
        Hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
        v = Hv / Hv.norm()
    return (v * torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]).sum()
'''),
    Mutant("top_eigenvalue", "iters not used (the number of steps is fixed or set by a tolerance)", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    v = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    v = v / v.norm()
    lam = torch.tensor(0.0, dtype=w.dtype)
    for _ in range(10_000):                 # until the estimate stops changing
        Hv = torch.autograd.grad(g, x, grad_outputs=v, retain_graph=True)[0]
        new = (v * Hv).sum()
        v = Hv / Hv.norm()
        if (new - lam).abs() <= 1e-13 * new.abs():
            break
        lam = new
    return new
'''),
]
VARIANTS += [
    Variant("hvp", "grad_outputs=v on a clone", '''
def hvp(f, w, v):
    x = w.detach().clone().requires_grad_()
    grad, = torch.autograd.grad(f(x), x, create_graph=True)
    hv, = torch.autograd.grad(grad, x, grad_outputs=v)
    return hv
'''),
    Variant("hvp", ".backward() of gᵀv on a copy, then .grad", '''
def hvp(f, w, v):
    x = w.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    torch.dot(g.reshape(-1), v.reshape(-1)).backward()
    return x.grad
'''),
    Variant("hvp", "the full Hessian row by row, then a matrix-vector product", '''
def hvp(f, w, v):
    x = w.detach().reshape(-1).clone().requires_grad_(True)            # (n,)
    g = torch.autograd.grad(f(x.view(w.shape)), x, create_graph=True)[0]
    H = torch.stack([torch.autograd.grad(g[i], x, retain_graph=True)[0] for i in range(x.numel())])   # (n, n)
    return (H @ v.reshape(-1)).view(w.shape)
'''),
    Variant("top_eigenvalue", "calls hvp, vector_norm, a Python float", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(w.shape, generator=gen, dtype=w.dtype)
    v = v / torch.linalg.vector_norm(v)
    for _ in range(iters):
        Hv = hvp(f, w, v)
        v = Hv / torch.linalg.vector_norm(Hv)
    return torch.sum(v * hvp(f, w, v)).item()
'''),
    Variant("top_eigenvalue", "largest-entry scaling, Rayleigh quotient vᵀHv / vᵀv in the loop, flat vectors", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    x = w.detach().clone().requires_grad_(True)
    g, = torch.autograd.grad(f(x), x, create_graph=True)
    v = torch.randn(x.numel(), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(w.dtype)
    lam = None
    for _ in range(iters + 1):
        Hv, = torch.autograd.grad(g, x, grad_outputs=v.view(w.shape), retain_graph=True)
        Hv = Hv.reshape(-1)
        lam = (v @ Hv) / (v @ v)                 # the estimate for the current v
        v = Hv / Hv.abs().max()
    return lam
'''),
]
FORBIDDEN += [
    Forbidden("hvp", "torch.autograd.functional", '''
def hvp(f, w, v):
    return torch.autograd.functional.hvp(f, w, v)[1]
'''),
    Forbidden("hvp", "torch.func", '''
def hvp(f, w, v):
    return torch.func.jvp(torch.func.grad(f), (w,), (v,))[1]     # forward-over-reverse
'''),
    Forbidden("top_eigenvalue", "torch.linalg.eigvalsh", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    basis = torch.eye(w.numel(), dtype=w.dtype)
    H = torch.stack([hvp(f, w, e.view(w.shape)).reshape(-1) for e in basis])
    eigenvalues = torch.linalg.eigvalsh(H)
    return eigenvalues[eigenvalues.abs().argmax()]
'''),
    Forbidden("top_eigenvalue", "torch.autograd.functional", '''
def top_eigenvalue(f, w, iters=100, seed=0):
    H = torch.autograd.functional.hessian(lambda x: f(x.view(w.shape)), w.reshape(-1))
    v = torch.randn(w.numel(), generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    for _ in range(iters):
        v = H @ v
        v = v / v.norm()
    return v @ H @ v
'''),
]
