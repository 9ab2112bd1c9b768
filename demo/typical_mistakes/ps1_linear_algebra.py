"""Demo submission for ps1_linear_algebra: mistakes students really make, one in most exercises."""


def l2_norm(x, dim=-1):
    return (x ** 2).sum(dim).sqrt()          # correct


def linear(x, W, b=None):
    y = x @ W.T
    return y                                 # forgot the bias


def attention_scores(q, k):
    return q @ k.transpose(-2, -1)           # forgot to divide by sqrt(d_k)


def softmax(x, dim=-1):
    e = x.exp()                              # no max-shift: overflows on large inputs
    return e / e.sum(dim=dim, keepdim=True)


def attention(q, k, v, causal=False):
    scores = attention_scores(q, k)
    if causal:
        T_q, T_k = scores.shape[-2:]
        future = torch.ones(T_q, T_k, dtype=torch.bool).triu()   # masks the diagonal too
        scores = scores.masked_fill(future, float("-inf"))
    return softmax(scores, dim=-1) @ v


def low_rank_approx(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :r] @ torch.diag(S[:r]) @ Vh[:r]   # correct


def lora_forward(x, W, A, B, alpha):
    r = A.shape[0]
    return x @ W.T + (alpha // r) * (x @ A.T @ B.T)   # integer division
