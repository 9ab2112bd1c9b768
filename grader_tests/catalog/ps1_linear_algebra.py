"""What students write for ps1_linear_algebra: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Reflective, Variant

MUTANTS = [
    Mutant("l2_norm", "missing square root", '''
def l2_norm(x, dim=-1):
    return (x ** 2).sum(dim=dim)
'''),
    Mutant("l2_norm", "ignored `dim` (always the last one)", '''
def l2_norm(x, dim=-1):
    return (x * x).sum(-1).sqrt()
'''),
    Mutant("linear", "bias ignored", '''
def linear(x, W, b=None):
    return x @ W.T
'''),
    Mutant("linear", "W not transposed", '''
def linear(x, W, b=None):
    y = x @ W
    return y if b is None else y + b
'''),
    Mutant("attention_scores", "no 1/√d_k scaling", '''
def attention_scores(q, k):
    return q @ k.transpose(-2, -1)
'''),
    Mutant("attention_scores", "divided by d_k instead of √d_k", '''
def attention_scores(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1]
'''),
    Mutant("softmax", "no max-shift before exp (overflows on large inputs)", '''
def softmax(x, dim=-1):
    e = torch.exp(x)
    return e / e.sum(dim=dim, keepdim=True)
'''),
    Mutant("softmax", "`dim` ignored (always the last one)", '''
def softmax(x, dim=-1):
    e = (x - x.max(dim=-1, keepdim=True).values).exp()
    return e / e.sum(dim=-1, keepdim=True)
'''),
    Mutant("attention", "causal mask off by one (the diagonal is masked)", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        future = torch.triu(torch.ones(scores.shape[-2:], dtype=torch.bool))
        scores = scores.masked_fill(future, float("-inf"))
    return softmax(scores) @ v
'''),
    Mutant("attention", "mask applied after softmax", '''
def attention(q, k, v, causal=False):
    weights = softmax(attention_scores(q, k))
    if causal:
        weights = weights * torch.tril(torch.ones(weights.shape[-2:]))
    return weights @ v
'''),
    Mutant("low_rank_approx", "kept the smallest singular values", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    k = S.shape[0]
    return U[:, k - r:] @ torch.diag(S[k - r:]) @ Vh[k - r:]
'''),
    Mutant("low_rank_approx", "rank r + 1 (off by one)", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :r + 1] @ torch.diag(S[:r + 1]) @ Vh[:r + 1]
'''),
    Mutant("lora_forward", "alpha not divided by r", '''
def lora_forward(x, W, A, B, alpha):
    return x @ W.T + alpha * (x @ A.T @ B.T)
'''),
    Mutant("lora_forward", "integer division alpha // r", '''
def lora_forward(x, W, A, B, alpha):
    return x @ W.T + (alpha // A.shape[0]) * (x @ A.T @ B.T)
'''),
    Mutant("l2_norm", "sum of absolute values (L1 norm)", '''
def l2_norm(x, dim=-1):
    return x.abs().sum(dim=dim)
'''),
    Mutant("l2_norm", "reduced over every dimension", '''
def l2_norm(x, dim=-1):
    return torch.sqrt(torch.sum(x * x))
'''),
    Mutant("l2_norm", "kept the reduced dimension", '''
def l2_norm(x, dim=-1):
    return (x * x).sum(dim, keepdim=True).sqrt()
'''),
    Mutant("l2_norm", "input modified in place", '''
def l2_norm(x, dim=-1):
    x.mul_(x)
    return x.sum(dim).sqrt()
'''),
    Mutant("linear", "W @ x instead of x @ Wᵀ", '''
def linear(x, W, b=None):
    y = W @ x
    return y if b is None else y + b
'''),
    Mutant("linear", "bias subtracted", '''
def linear(x, W, b=None):
    return x @ W.T - (0 if b is None else b)
'''),
    Mutant("attention_scores", "scaled by √T_k (the number of keys)", '''
def attention_scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])
'''),
    Mutant("attention_scores", "k @ qᵀ (scores transposed)", '''
def attention_scores(q, k):
    return k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])
'''),
    Mutant("attention_scores", "multiplied by √d_k", '''
def attention_scores(q, k):
    return (q @ k.transpose(-2, -1)) * q.shape[-1] ** 0.5
'''),
    Mutant("softmax", "softmax over the wrong dim", '''
def softmax(x, dim=-1):
    e = (x - x.max(dim=0, keepdim=True).values).exp()
    return e / e.sum(dim=0, keepdim=True)
'''),
    Mutant("softmax", "normalised over the whole tensor", '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum()
'''),
    Mutant("softmax", "shifted by the global max (underflows rows far below it)", '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.max())
    return e / e.sum(dim=dim, keepdim=True)
'''),
    Mutant("attention", "causal mask inverted (the past is masked)", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        past = torch.tril(torch.ones(scores.shape[-2:], dtype=torch.bool))
        scores = scores.masked_fill(past, float("-inf"))
    return softmax(scores) @ v
'''),
    Mutant("attention", "softmax over the query dim", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        keep = torch.tril(torch.ones(scores.shape[-2:], dtype=torch.bool))
        scores = scores.masked_fill(~keep, float("-inf"))
    return softmax(scores, dim=-2) @ v
'''),
    Mutant("attention", "causal mask aligned bottom-right", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        T_q, T_k = scores.shape[-2:]
        keep = torch.ones(T_q, T_k, dtype=torch.bool).tril(T_k - T_q)
        scores = scores.masked_fill(~keep, float("-inf"))
    return softmax(scores) @ v
'''),
    Mutant("low_rank_approx", "Vh transposed again", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    V = Vh.T
    return U[:, :r] @ torch.diag(S[:r]) @ V[:r]
'''),
    Mutant("low_rank_approx", "dropped Σ (U @ Vh)", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :r] @ Vh[:r]
'''),
    Mutant("lora_forward", "scaled the frozen path too", '''
def lora_forward(x, W, A, B, alpha):
    return (alpha / A.shape[0]) * (x @ W.T + x @ A.T @ B.T)
'''),
    Mutant("lora_forward", "r taken from B (out) instead of A", '''
def lora_forward(x, W, A, B, alpha):
    r = B.shape[0]
    return x @ W.T + alpha / r * (x @ A.T @ B.T)
'''),

    # -- edge inputs and more mistakes
    Mutant("l2_norm", "root mean square (mean instead of sum)", '''
def l2_norm(x, dim=-1):
    return torch.sqrt(torch.mean(x ** 2, dim=dim))
'''),
    Mutant("l2_norm", "scaled by max|x| (0/0 on an all-zero vector)", '''
def l2_norm(x, dim=-1):
    scale = x.abs().amax(dim=dim, keepdim=True)          # avoids overflow in x ** 2
    return (scale * ((x / scale) ** 2).sum(dim=dim, keepdim=True).sqrt()).squeeze(dim)
'''),
    Mutant("linear", "b=None not handled", '''
def linear(x, W, b=None):
    return x @ W.T + b
'''),
    Mutant("linear", "batch dims flattened and not restored", '''
def linear(x, W, b=None):
    rows = x.reshape(-1, x.shape[-1])        # (N, in)
    y = rows @ W.T
    if b is not None:
        y = y + b
    return y
'''),
    Mutant("attention_scores", "d_k read from q.shape[1] (right only for 2-D q)", '''
def attention_scores(q, k):
    d_k = q.shape[1]
    return q @ k.transpose(-2, -1) / math.sqrt(d_k)
'''),
    Mutant("attention_scores", "transposed dims 1 and 2 of k (right only for 3-D inputs)", '''
def attention_scores(q, k):
    return torch.matmul(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1])
'''),
    Mutant("attention_scores", "scaled by √T_q (the number of queries)", '''
def attention_scores(q, k):
    T_q, d = q.shape[-2], q.shape[-1]
    return q @ k.transpose(-2, -1) / math.sqrt(T_q)
'''),
    Mutant("attention_scores", "k transposed with .T on a batched tensor", '''
def attention_scores(q, k):
    return q @ k.T / math.sqrt(q.shape[-1])
'''),
    Mutant("softmax", "sum without keepdim=True (divides along the wrong dim)", '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim)
'''),
    Mutant("softmax", "max without keepdim=True (the shift varies along dim)", '''
def softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=dim))
    return e / e.sum(dim=dim, keepdim=True)
'''),
    Mutant("attention", "masked scores set to 0 instead of −inf", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        scores = scores * torch.tril(torch.ones(scores.shape[-2:]))     # zero out the future
    return softmax(scores) @ v
'''),
    Mutant("attention", "causal mask built T_q × T_q (assumes T_q = T_k)", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        T = q.shape[-2]
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores) @ v
'''),
    Mutant("attention", "no 1/√d_k scaling", '''
def attention(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1)
    if causal:
        keep = torch.ones(scores.shape[-2:], dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    return softmax(scores) @ v
'''),
    Mutant("low_rank_approx", "Vh sliced by columns (Vh[:, :r])", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :r] @ torch.diag(S[:r]) @ Vh[:, :r]
'''),
    Mutant("low_rank_approx", "full SVD: U @ diag(S) @ Vh only fits a square A", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A)
    S = S.clone()
    S[r:] = 0                                  # drop the small singular values
    return U @ torch.diag(S) @ Vh
'''),
    Mutant("low_rank_approx", "rank r - 1 (off by one)", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :r - 1] @ torch.diag(S[:r - 1]) @ Vh[:r - 1]
'''),
    Mutant("lora_forward", "r taken from A.shape[1] (in) instead of A.shape[0]", '''
def lora_forward(x, W, A, B, alpha):
    r = A.shape[1]
    return x @ W.T + (alpha / r) * (x @ A.T @ B.T)
'''),
    Mutant("lora_forward", "torch.mm takes 2-D x only", '''
def lora_forward(x, W, A, B, alpha):
    scale = alpha / A.shape[0]
    return torch.mm(x, W.t()) + scale * torch.mm(torch.mm(x, A.t()), B.t())
'''),
    Mutant("lora_forward", "no alpha / r scaling", '''
def lora_forward(x, W, A, B, alpha):
    return linear(x, W) + linear(linear(x, A), B)
'''),
    Mutant("lora_forward", "multiplied by r / alpha", '''
def lora_forward(x, W, A, B, alpha):
    r = A.shape[0]
    return x @ W.T + (r / alpha) * (x @ A.T @ B.T)
'''),
]

VARIANTS = [
    Variant("l2_norm", "sqrt of a dot product via einsum on moved dims", '''
def l2_norm(x, dim=-1):
    moved = x.movedim(dim, -1)
    return torch.einsum("...i,...i->...", moved, moved).sqrt()
'''),
    Variant("l2_norm", "pow and sum with keepdim, then squeeze", '''
def l2_norm(x, dim=-1):
    return x.pow(2).sum(dim, keepdim=True).sqrt().squeeze(dim)
'''),
    Variant("l2_norm", "overflow-safe max scaling with a guard for zero vectors", '''
def l2_norm(x, dim=-1):
    m = x.abs().amax(dim=dim, keepdim=True)
    m = torch.where(m == 0, torch.ones_like(m), m)
    return (m * (x / m).pow(2).sum(dim=dim, keepdim=True).sqrt()).squeeze(dim)
'''),
    Variant("linear", "einsum with an explicit bias branch", '''
def linear(x, W, b=None):
    y = torch.einsum("...i,oi->...o", x, W)
    return y if b is None else y + b
'''),
    Variant("linear", "matmul of the flattened batch", '''
def linear(x, W, b=None):
    flat = x.reshape(-1, x.shape[-1])
    y = torch.matmul(flat, W.t()).reshape(*x.shape[:-1], W.shape[0])
    if b is not None:
        y += b
    return y
'''),
    Variant("attention_scores", "einsum and a pre-scaled query", '''
def attention_scores(q, k):
    return torch.einsum("...qd,...kd->...qk", q / q.shape[-1] ** 0.5, k)
'''),
    Variant("attention_scores", "mT and torch.matmul", '''
def attention_scores(q, k):
    return torch.matmul(q, k.mT) * (1.0 / math.sqrt(q.size(-1)))
'''),
    Variant("softmax", "exp of x minus its logsumexp", '''
def softmax(x, dim=-1):
    return torch.exp(x - torch.logsumexp(x, dim=dim, keepdim=True))
'''),
    Variant("softmax", "max-shift with Tensor.max(...).values", '''
def softmax(x, dim=-1):
    m = x.max(dim=dim, keepdim=True).values
    z = torch.exp(x - m)
    return z / torch.sum(z, dim=dim, keepdim=True)
'''),
    Variant("attention", "additive -inf mask built with triu", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        T_q, T_k = scores.shape[-2:]
        scores = scores + torch.full((T_q, T_k), float("-inf"), dtype=q.dtype).triu(1)
    return softmax(scores) @ v
'''),
    Variant("attention", "loop over queries with their own max-shift", '''
def attention(q, k, v, causal=False):
    rows = []
    for i in range(q.shape[-2]):
        s = (q[..., i:i + 1, :] @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        if causal:
            s = s[..., : i + 1]
        w = (s - s.amax(-1, keepdim=True)).exp()
        w = w / w.sum(-1, keepdim=True)
        rows.append(w @ (v[..., : i + 1, :] if causal else v))
    return torch.cat(rows, dim=-2)
'''),
    Variant("attention", "masked_fill with a large negative number instead of -inf", '''
def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        T_q, T_k = scores.shape[-2:]
        future = torch.triu(torch.ones(T_q, T_k, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(future, -1e9)
    return softmax(scores) @ v
'''),
    Variant("low_rank_approx", "scale the columns of U instead of diag", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return (U[:, :r] * S[:r]) @ Vh[:r, :]
'''),
    Variant("low_rank_approx", "sum of r rank-one outer products", '''
def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A)
    out = torch.zeros_like(A)
    for i in range(r):
        out = out + S[i] * torch.outer(U[:, i], Vh[i])
    return out
'''),
    Variant("lora_forward", "merge the update into the weight first", '''
def lora_forward(x, W, A, B, alpha):
    scale = alpha / A.shape[0]
    return x @ (W + scale * (B @ A)).T
'''),
    Variant("lora_forward", "reuse linear twice", '''
def lora_forward(x, W, A, B, alpha):
    return linear(x, W) + alpha / A.shape[0] * linear(linear(x, A), B)
'''),
]

FORBIDDEN = [
    Forbidden("l2_norm", "Tensor.norm", '''
def l2_norm(x, dim=-1):
    return x.norm(dim=dim)
'''),
    Forbidden("linear", "torch.nn.functional.linear", '''
def linear(x, W, b=None):
    return F.linear(x, W, b)
'''),
    Forbidden("softmax", "torch.softmax", '''
def softmax(x, dim=-1):
    return torch.softmax(x, dim)
'''),
    Forbidden("attention", "torch.nn.functional.scaled_dot_product_attention", '''
from torch.nn.functional import scaled_dot_product_attention as sdpa

def attention(q, k, v, causal=False):
    return sdpa(q, k, v, is_causal=causal)
'''),
]

# Private or reflective access: refused in every exercise (each entry is graded in a notebook of its own).
REFLECTIVE = [
    Reflective("softmax", "getattr with a computed name", '''
def softmax(x, dim=-1):
    return getattr(torch, "soft" + "max")(x, dim)
'''),
    Reflective("softmax", "torch._softmax", '''
def softmax(x, dim=-1):
    return torch._softmax(x, dim, False)
'''),
    Reflective("softmax", "torch.ops", '''
def softmax(x, dim=-1):
    return torch.ops.aten.softmax.int(x, dim)
'''),
    Reflective("softmax", "sys.modules", '''
import sys

def softmax(x, dim=-1):
    return sys.modules["torch"].softmax(x, dim)
'''),
    Reflective("softmax", "__import__", '''
def softmax(x, dim=-1):
    return __import__("torch").nn.functional.softmax(x, dim)
'''),
    Reflective("softmax", "eval", '''
def softmax(x, dim=-1):
    return eval("torch.soft" + "max")(x, dim)
'''),
    Reflective("l2_norm", "torch._C", '''
def l2_norm(x, dim=-1):
    return torch._C._VariableFunctions.norm(x, dim=dim)
'''),
    Reflective("attention", "torch._C.DisableTorchFunction", '''
def attention(q, k, v, causal=False):
    with torch._C.DisableTorchFunction():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
'''),
    Reflective("softmax", "mfml_grader", '''
import contextlib
import mfml_grader.student as adapter

adapter.forbid_at_runtime = lambda *args: contextlib.nullcontext()  # the run-time guard, switched off

def softmax(x, dim=-1):
    return torch.softmax(x, dim)
'''),
    Reflective("attention", "gc", '''
import gc

def attention(q, k, v, causal=False):
    sdpa = next(o for o in gc.get_objects() if getattr(o, "__name__", "") == "scaled_dot_product_attention")
    return sdpa(q, k, v, is_causal=causal)
'''),
]

# -- pca: centring, the N - 1, the order and the layout are the student's
MUTANTS += [
    Mutant("pca", "not centred", '''
def pca(X, k):
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    components = Vh[:k]
    return components, S[:k] ** 2 / (X.shape[0] - 1), X @ components.T
'''),
    Mutant("pca", "centred by the mean of all entries", '''
def pca(X, k):
    Xc = X - X.mean()
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Vh[:k], S[:k] ** 2 / (len(X) - 1), Xc @ Vh[:k].T
'''),
    Mutant("pca", "centred each row (mean over dim 1)", '''
def pca(X, k):
    Xc = X - X.mean(dim=1, keepdim=True)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Vh[:k], S[:k] ** 2 / (X.shape[0] - 1), Xc @ Vh[:k].T
'''),
    Mutant("pca", "divided by N instead of N - 1", '''
def pca(X, k):
    N = X.shape[0]
    Xc = X - X.mean(0)
    evals, evecs = torch.linalg.eigh(Xc.T @ Xc / N)      # the population covariance
    evals, evecs = evals.flip(0), evecs.flip(1)
    components = evecs[:, :k].T
    return components, evals[:k], Xc @ components.T
'''),
    Mutant("pca", "singular values returned instead of variances", '''
def pca(X, k):
    Xc = X - X.mean(dim=0, keepdim=True)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Vh[:k], S[:k], Xc @ Vh[:k].T
'''),
    Mutant("pca", "S / √(N - 1) (standard deviations, not variances)", '''
def pca(X, k):
    N = X.shape[0]
    Xc = X - X.mean(dim=0, keepdim=True)
    U, S, Vh = torch.linalg.svd(Xc / math.sqrt(N - 1), full_matrices=False)   # covariance = (Xc/√(N-1))ᵀ (Xc/√(N-1))
    return Vh[:k], S[:k], Xc @ Vh[:k].T
'''),
    Mutant("pca", "S² not divided by N - 1", '''
def pca(X, k):
    Xc = X - X.mean(0)
    evals, evecs = torch.linalg.eigh(Xc.T @ Xc)
    order = torch.argsort(evals, descending=True)[:k]
    components = evecs[:, order].T
    return components, evals[order], Xc @ components.T
'''),
    Mutant("pca", "ascending order (eigh's order not reversed)", '''
def pca(X, k):
    N = X.shape[0]
    Xc = X - X.mean(dim=0)
    cov = Xc.T @ Xc / (N - 1)                  # (d, d)
    evals, evecs = torch.linalg.eigh(cov)
    components = evecs[:, -k:].T               # the k largest
    return components, evals[-k:], Xc @ components.T
'''),
    Mutant("pca", "kept the k smallest-variance directions", '''
def pca(X, k):
    Xc = X - X.mean(dim=0)
    cov = Xc.T @ Xc / (X.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)
    components = evecs[:, :k].T
    return components, evals[:k], Xc @ components.T
'''),
    Mutant("pca", "components as columns (d, k)", '''
def pca(X, k):
    Xc = X - X.mean(dim=0)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    V = Vh.T[:, :k]                            # (d, k): the principal directions
    return V, S[:k] ** 2 / (X.shape[0] - 1), Xc @ V
'''),
    Mutant("pca", "components taken from U instead of V", '''
def pca(X, k):
    Xc = X - X.mean(dim=0)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return U[:, :k].T, S[:k] ** 2 / (X.shape[0] - 1), U[:, :k] * S[:k]
'''),
    Mutant("pca", "projected from uncentred X", '''
def pca(X, k):
    mean = X.mean(dim=0)
    U, S, Vh = torch.linalg.svd(X - mean, full_matrices=False)
    components = Vh[:k]
    return components, S[:k] ** 2 / (X.shape[0] - 1), X @ components.T
'''),
    Mutant("pca", "k ignored (every component returned)", '''
def pca(X, k):
    Xc = X - X.mean(dim=0)
    U, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
    return Vh, S ** 2 / (X.shape[0] - 1), Xc @ Vh.T
'''),
    Mutant("pca", "input modified in place", '''
def pca(X, k):
    X -= X.mean(dim=0)                         # centre
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)
    return Vh[:k], S[:k] ** 2 / (X.shape[0] - 1), X @ Vh[:k].T
'''),
]
VARIANTS += [
    Variant("pca", "eigh of the covariance, reversed", '''
def pca(X, k):
    N = X.shape[0]
    Xc = X - X.mean(dim=0, keepdim=True)        # (N, d)
    cov = Xc.T @ Xc / (N - 1)                   # (d, d)
    evals, evecs = torch.linalg.eigh(cov)       # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    components = evecs[:, :k].T                 # (k, d)
    return components, evals[:k], Xc @ components.T
'''),
    Variant("pca", "SVD of Xcᵀ: components from U, projections from Vh", '''
def pca(X, k):
    Xc = X - X.sum(0) / X.shape[0]
    U, S, Vh = torch.linalg.svd(Xc.T, full_matrices=False)   # Xcᵀ = U S Vh, U (d, m)
    return U[:, :k].T.contiguous(), S[:k].square() / (X.shape[0] - 1), Vh[:k].T * S[:k]
'''),
    Variant("pca", "eigh with argsort, variances measured on the projections", '''
def pca(X, k):
    Xc = X - X.mean(0)
    evals, evecs = torch.linalg.eigh(torch.einsum("ni,nj->ij", Xc, Xc))
    top = torch.argsort(evals, descending=True)[:k]
    components = evecs[:, top].T
    projected = Xc @ components.T
    return components, projected.var(dim=0), projected
'''),
    Variant("pca", "explicit loop over the components of the SVD", '''
def pca(X, k):
    N, d = X.shape
    mean = X.mean(dim=0)
    Xc = X - mean.unsqueeze(0)
    _, S, Vh = torch.linalg.svd(Xc)
    components = torch.stack([Vh[i] for i in range(k)])
    variances = torch.stack([S[i] * S[i] / (N - 1) for i in range(k)])
    projected = torch.stack([Xc @ components[i] for i in range(k)], dim=1)
    return components, variances, projected
'''),
]
FORBIDDEN += [
    Forbidden("pca", "torch.pca_lowrank", '''
def pca(X, k):
    U, S, V = torch.pca_lowrank(X, q=k, center=True)
    Xc = X - X.mean(0)
    return V.T, S ** 2 / (X.shape[0] - 1), Xc @ V
'''),
    Forbidden("pca", "torch.cov", '''
def pca(X, k):
    evals, evecs = torch.linalg.eigh(torch.cov(X.T))
    components = evecs.flip(1)[:, :k].T
    return components, evals.flip(0)[:k], (X - X.mean(0)) @ components.T
'''),
    Forbidden("pca", "sklearn.decomposition.PCA", '''
def pca(X, k):
    from sklearn.decomposition import PCA
    model = PCA(n_components=k).fit(X.numpy())
    components = torch.from_numpy(model.components_).to(X.dtype)
    return components, torch.from_numpy(model.explained_variance_).to(X.dtype), (X - X.mean(0)) @ components.T
'''),
]
