"""Demo submission for ps2_calculus: mistakes students really make, one in most exercises."""


def central_difference(f, x, h=1e-5):
    grad = torch.zeros_like(x)
    fx = f(x)
    for i in range(x.numel()):
        xp = x.clone()
        xp.view(-1)[i] += h
        grad.view(-1)[i] = (f(xp) - fx) / h    # forward difference: only accurate to O(h)
    return grad


def cubic_and_grad(x):
    u = 2 * x + 1
    return u ** 3, 3 * u ** 2                  # chain rule: forgot the factor du/dx = 2


def tanh_backward(dout, out):
    return dout * (1 - out ** 2)               # correct


def linear_backward(dout, x, W):
    dx = dout @ W
    dW = dout.T @ x
    db = dout                                  # b is shared by all rows: should be dout.sum(0)
    return dx, dW, db


def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, dim=-1)
    p[torch.arange(len(targets)), targets] -= 1
    return p                                   # the loss is a mean: divide by N


def mlp_loss_and_grads(x, targets, params):
    z = x @ params["W1"].T + params["b1"]
    h = torch.tanh(z)
    logits = h @ params["W2"].T + params["b2"]
    loss = (logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)).mean()
    dlogits = cross_entropy_backward(logits, targets)
    dh, dW2, db2 = linear_backward(dlogits, h, params["W2"])
    dz = dh * (1 - z ** 2)                     # tanh derivative from the pre-activation: should be 1 - h²
    _, dW1, db1 = linear_backward(dz, x, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def relative_error(a, b):
    return ((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-8)).max()   # correct


def max_stable_lr(H):
    return 2 / torch.linalg.eigvalsh(H)[0]     # eigvalsh sorts ascending: [0] is the smallest
