"""What students write for ps6_mini_gpt: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Variant

MUTANTS = [
    # -- layer_norm ------------------------------------------------------------------------------
    Mutant("layer_norm", "unbiased variance (divided by C - 1)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''),
    Mutant("layer_norm", "eps added outside the square root", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, unbiased=False, keepdim=True)
    return weight * (x - mean) / (std + eps) + bias
'''),
    Mutant("layer_norm", "no eps (0/0 on constant features)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    centred = x - x.mean(-1, keepdim=True)
    return centred / centred.pow(2).mean(-1, keepdim=True).sqrt() * weight + bias
'''),
    Mutant("layer_norm", "normalised over the first dim instead of the features", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(0, keepdim=True)
    var = ((x - mean) ** 2).mean(0, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''),
    Mutant("layer_norm", "eps argument ignored (1e-5 written in)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * weight + bias
'''),
    Mutant("layer_norm", "mean not subtracted (that is RMSNorm)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    rms = torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)
    return x / rms * weight + bias
'''),
    Mutant("layer_norm", "x not centred (the mean is subtracted inside the variance only)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    return weight * x / torch.sqrt(var + eps) + bias
'''),
    Mutant("layer_norm", "variance taken as the mean of x² (μ not subtracted)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = (x * x).mean(-1, keepdim=True)
    return (x - mean) / (var + eps).sqrt() * weight + bias
'''),
    Mutant("layer_norm", "variance as E[x²] − E[x]² (cancels in float32 for large offsets)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = (x ** 2).mean(-1, keepdim=True) - mean ** 2          # E[x²] − E[x]²
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''),
    Mutant("layer_norm", "divided by the variance, not the standard deviation", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / (var + eps) * weight + bias
'''),
    Mutant("layer_norm", "normalised over dim 1 (right for 2-D x only)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''),
    Mutant("layer_norm", "one mean and variance for the whole tensor", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean()
    var = ((x - mean) ** 2).mean()
    return (x - mean) / torch.sqrt(var + eps) * weight + bias
'''),
    Mutant("layer_norm", "x assumed to be (B, T, C)", '''
def layer_norm(x, weight, bias, eps=1e-5):
    B, T, C = x.shape
    rows = x.reshape(B * T, C)                                  # one row per token
    mean = rows.mean(1, keepdim=True)
    var = ((rows - mean) ** 2).mean(1, keepdim=True)
    return ((rows - mean) / torch.sqrt(var + eps) * weight + bias).reshape(B, T, C)
'''),
    Mutant("layer_norm", "weight and bias swapped", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    sigma2 = ((x - mu) ** 2).mean(-1, keepdim=True)
    x_hat = (x - mu) / torch.sqrt(sigma2 + eps)
    return bias * x_hat + weight
'''),
    Mutant("layer_norm", "bias added before the weight", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    x_hat = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps)
    return (x_hat + bias) * weight
'''),
    Mutant("layer_norm", "weight (γ) not applied", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    x_hat = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps)
    return x_hat + bias
'''),
    Mutant("layer_norm", "bias (β) not added", '''
def layer_norm(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    x_hat = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps)
    return x_hat * weight
'''),
    # -- causal_self_attention -------------------------------------------------------------------
    Mutant("causal_self_attention", "no causal mask", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    y = attention(q, k, v)
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "heads split with reshape, without transpose", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q = q.reshape(B, n_head, T, C // n_head)
    k = k.reshape(B, n_head, T, C // n_head)
    v = v.reshape(B, n_head, T, C // n_head)
    y = attention(q, k, v, causal=True).reshape(B, T, C)
    return y @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "heads merged without transposing back", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    y = attention(q, k, v, causal=True)
    y = y.reshape(B, T, C)
    return y @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "n_head ignored (one head of size C)", '''
def causal_self_attention(x, params, n_head):
    C = x.shape[-1]
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    y = attention(q, k, v, causal=True)
    return y @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "future positions filled with 0 instead of −inf", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)             # (B, nh, T, T)
    scores = scores * torch.tril(torch.ones(T, T))                # zero out the future
    y = torch.softmax(scores, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "mask applied after the softmax (weights no longer sum to 1)", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hs), dim=-1)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    y = weights.masked_fill(future, 0.0) @ v
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "softmax over the query axis", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), float("-inf"))
    y = F.softmax(scores, dim=2) @ v
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "diagonal masked too (position t cannot see itself)", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "heads merged channel by channel (stacked on the last dim)", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    heads = [attention(q[..., h * hs:(h + 1) * hs], k[..., h * hs:(h + 1) * hs], v[..., h * hs:(h + 1) * hs], causal=True)
             for h in range(n_head)]
    y = torch.stack(heads, dim=-1).reshape(B, T, C)
    return y @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "q, k, v split inside each head", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    qkv = (x @ params["W_qkv"].T + params["b_qkv"]).view(B, T, n_head, 3 * hs).transpose(1, 2)   # (B, nh, T, 3hs)
    q, k, v = qkv.split(hs, dim=-1)
    y = attention(q, k, v, causal=True)
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "scores scaled by √C instead of √head_size", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(C)
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "q, k, v taken in the wrong order", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    k, q, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    y = attention(q, k, v, causal=True)
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "output projection missing", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    return attention(q, k, v, causal=True).transpose(1, 2).reshape(B, T, C)
'''),
    Mutant("causal_self_attention", "W_proj not transposed (y @ W_proj)", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    y = attention(q, k, v, causal=True).transpose(1, 2).reshape(B, T, C)
    return y @ params["W_proj"] + params["b_proj"]
'''),
    Mutant("causal_self_attention", "b_qkv not added", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    y = attention(q, k, v, causal=True)
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Mutant("causal_self_attention", "b_proj not added", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    y = attention(q, k, v, causal=True)
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T
'''),
    # -- transformer_block -----------------------------------------------------------------------
    Mutant("transformer_block", "post-LN instead of pre-LN", '''
def transformer_block(x, params, n_head):
    x = layer_norm(x + causal_self_attention(x, params, n_head), params["ln1_w"], params["ln1_b"])
    h = F.gelu(x @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
    return layer_norm(x + h, params["ln2_w"], params["ln2_b"])
'''),
    Mutant("transformer_block", "no residual around attention", '''
def transformer_block(x, params, n_head):
    x = causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "ln1 used before the MLP too", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln1_w"], params["ln1_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "ReLU instead of GELU", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    h = torch.relu(h @ params["W_up"].T + params["b_up"])
    return x + h @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "residual added to the normalised input", '''
def transformer_block(x, params, n_head):
    x = layer_norm(x, params["ln1_w"], params["ln1_b"])
    x = x + causal_self_attention(x, params, n_head)
    x = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + F.gelu(x @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "no residual around the MLP", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "the block returns only the updates (x not added)", '''
def transformer_block(x, params, n_head):
    a = causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x + a, params["ln2_w"], params["ln2_b"])
    m = F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
    return a + m
'''),
    Mutant("transformer_block", "attention update dropped from the output", '''
def transformer_block(x, params, n_head):
    h = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    m = F.gelu(layer_norm(h, params["ln2_w"], params["ln2_b"]) @ params["W_up"].T + params["b_up"])
    return x + m @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "MLP reads the block input, not x + attention (parallel block)", '''
def transformer_block(x, params, n_head):
    a = causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    m = F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
    return x + a + m
'''),
    Mutant("transformer_block", "layer norms swapped (ln2 before attention, ln1 before the MLP)", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln2_w"], params["ln2_b"]), params, n_head)
    h = layer_norm(x, params["ln1_w"], params["ln1_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "no layer norm before attention", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(x, params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "no layer norm before the MLP", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    return x + F.gelu(x @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "tanh approximation of GELU", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    h = F.gelu(h @ params["W_up"].T + params["b_up"], approximate="tanh")
    return x + h @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "no activation in the MLP", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + (h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "GELU applied after the down projection too", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    h = F.gelu(h @ params["W_up"].T + params["b_up"])
    return x + F.gelu(h @ params["W_down"].T + params["b_down"])
'''),
    Mutant("transformer_block", "b_up not added", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + F.gelu(h @ params["W_up"].T) @ params["W_down"].T + params["b_down"]
'''),
    Mutant("transformer_block", "b_down not added", '''
def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T
'''),
    # -- gpt_forward -----------------------------------------------------------------------------
    Mutant("gpt_forward", "no position embeddings", '''
def gpt_forward(idx, params, config):
    x = params["tok_emb"][idx]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "no final layer norm", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return x @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "returned probabilities instead of logits", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    logits = layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
    return torch.softmax(logits, dim=-1)
'''),
    Mutant("gpt_forward", "position embeddings taken from the end of the table", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][-T:]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "positions counted from 1 (pos_emb[1:T + 1])", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][1:T + 1]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "position embeddings indexed by the token ids", '''
def gpt_forward(idx, params, config):
    x = params["tok_emb"][idx] + params["pos_emb"][idx]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "whole position table added (pos_emb, not pos_emb[:T])", '''
def gpt_forward(idx, params, config):
    x = params["tok_emb"][idx] + params["pos_emb"]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "lm_head used as the token embedding", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    one_hot = F.one_hot(idx, config["vocab_size"]).to(params["lm_head"].dtype)     # (B, T, V)
    x = one_hot @ params["lm_head"] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "token embedding used as the lm head", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["tok_emb"].T         # weight tying
'''),
    Mutant("gpt_forward", "final layer norm applied after every block", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
        x = layer_norm(x, params["lnf_w"], params["lnf_b"])
    return x @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "final layer norm applied to the embeddings, before the blocks", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = layer_norm(params["tok_emb"][idx] + params["pos_emb"][:T], params["lnf_w"], params["lnf_b"])
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return x @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "blocks applied in reverse order", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in reversed(range(config["n_layer"])):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "block 0 applied at every layer", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    block = block_params(params, 0)
    for _ in range(config["n_layer"]):
        x = transformer_block(x, block, config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
'''),
    Mutant("gpt_forward", "returned log-probabilities instead of logits", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    logits = layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T
    return torch.log_softmax(logits, dim=-1)
'''),
    Mutant("gpt_forward", "logits of the last position only", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return (layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T)[:, -1, :]
'''),
    # -- train_step ------------------------------------------------------------------------------
    Mutant("train_step", "learning-rate schedule not applied (constant max_lr)", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=config["max_lr"],
                                                 betas=config["betas"], eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "weight decay on every parameter", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=config["weight_decay"])
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "optimizer state ignored (a fresh AdamW state every step)", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], {}, lr=lr, betas=config["betas"], eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "AdamW eps not taken from config", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "the old optimizer state returned", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params = {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], _ = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"], eps=config["eps"], weight_decay=wd)
    return new_params, opt_state, loss.detach()
'''),
    Mutant("train_step", "loss computed against x instead of y (targets not shifted)", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.view(-1, logits.shape[-1]), x.view(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "loss summed over the batch (B × the mean)", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = sum(cross_entropy(logits[b], y[b]) for b in range(x.shape[0]))     # one sequence at a time
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "loss summed over positions (mean over the batch only)", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = 0
    for t in range(x.shape[1]):                      # each position predicts its next character
        loss = loss + cross_entropy(logits[:, t, :], y[:, t])
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "loss on the last position only", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)[:, -1, :]          # the prediction of the next character
    loss = cross_entropy(logits, y[:, -1])
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "logits flattened in a different order than the targets", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config).transpose(1, 2)     # (B, V, T), the layout F.cross_entropy wants
    B, V, T = logits.shape
    loss = cross_entropy(logits.reshape(B * T, V), y.reshape(B * T))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "learning rate of the next step (step + 1)", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step + 1, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "warmup_steps and total_steps swapped in the schedule", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["total_steps"], config["warmup_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "max_lr and min_lr swapped in the schedule", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["min_lr"], config["max_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "no weight decay", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=0.0)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "weight decay on the 1-D tensors instead of the matrices", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() == 1 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "embeddings excluded from weight decay", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 and not n.endswith("_emb") else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "layer-norm weights decayed", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        key = n.split(".")[-1]
        is_bias = key.startswith("b_") or key.endswith("_b")
        wd = 0.0 if is_bias else config["weight_decay"]
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, betas=config["betas"],
                                                 eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    Mutant("train_step", "AdamW betas not taken from config", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for n, p in params.items():
        wd = config["weight_decay"] if p.dim() >= 2 else 0.0
        new_params[n], new_state[n] = adamw_step(p, grads[n], opt_state.get(n, {}), lr=lr, eps=config["eps"], weight_decay=wd)
    return new_params, new_state, loss.detach()
'''),
    # -- train -----------------------------------------------------------------------------------
    Mutant("train", "the new parameters are dropped (the model never changes)", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        new_params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "the same batch every step", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
    opt_state, losses = {}, []
    for step in range(steps):
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "step counter stuck at 0 (the learning rate never leaves its first warmup value)", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for _ in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, 0, config)
        losses.append(loss.item())
    return params, losses
'''),
    Mutant("train", "optimizer state reset every step", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, _, loss = train_step(params, {}, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "steps counted from 1", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step + 1, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "the same batch every step", '''
def train(params, data, config, steps, seed=0):
    opt_state, losses = {}, []
    for step in range(steps):
        generator = torch.Generator().manual_seed(seed)      # reproducible batches
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "the generator re-seeded every step (seed + step)", '''
def train(params, data, config, steps, seed=0):
    opt_state, losses = {}, []
    for step in range(steps):
        generator = torch.Generator().manual_seed(seed + step)     # a different batch at every step
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "seed argument ignored (generator seeded with a constant)", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(0)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "block_size and batch_size swapped in get_batch", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["batch_size"], config["block_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "the initial params returned, not the trained ones", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    current, opt_state, losses = params, {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        current, opt_state, loss = train_step(current, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "one step too few (range(1, steps))", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(1, steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "loss recorded after the update", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, _ = train_step(params, opt_state, x, y, step, config)
        with torch.no_grad():                                   # the loss of the updated model
            logits = gpt_forward(x, params, config)
        losses.append(cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1)).item())
    return params, losses
'''),
    Mutant("train", "losses list reset inside the loop (only the last loss returned)", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state = {}
    for step in range(steps):
        losses = []
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses
'''),
    Mutant("train", "losses returned as tensors, not Python floats", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(loss)
    return params, losses
'''),
    # -- generate --------------------------------------------------------------------------------
    Mutant("generate", "temperature multiplied instead of divided", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits * temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "context not cropped to block_size", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx, params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "seed ignored (sampling from the global random state)", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "next token predicted from the first position", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, 0, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "context cropped at the wrong end", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, :config["block_size"]], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "context cropped to block_size - 1 tokens", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        context = idx[:, -(config["block_size"] - 1):]          # leave room for the new token
        logits = gpt_forward(context, params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "context cropped once, before the loop", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    context = idx[:, -config["block_size"]:]
    for _ in range(max_new_tokens):
        logits = gpt_forward(context, params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        context = torch.cat([context, nxt], dim=1)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "new tokens not fed back (every step reads the prompt)", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    out = idx
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        out = torch.cat([out, nxt], dim=1)
    return out
'''),
    Mutant("generate", "only the new tokens returned", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    new_tokens = []
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        new_tokens.append(nxt)
        idx = torch.cat([idx, nxt], dim=1)
    return torch.cat(new_tokens, dim=1)
'''),
    Mutant("generate", "tokens returned as floats, not int64", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    B, T0 = idx.shape
    out = torch.zeros(B, T0 + max_new_tokens)
    out[:, :T0] = idx
    for t in range(T0, T0 + max_new_tokens):
        context = out[:, max(0, t - config["block_size"]):t].long()
        logits = gpt_forward(context, params, config)[:, -1, :]
        if temperature == 0:
            out[:, t] = logits.argmax(-1)
        else:
            out[:, t] = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)[:, 0]
    return out
'''),
    Mutant("generate", "temperature 0 not handled (logits divided by zero)", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "generator re-created for every token (all tokens share one random stream)", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    for _ in range(max_new_tokens):
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "one random draw shared by all rows", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            cdf = torch.softmax(logits / temperature, dim=-1).cumsum(dim=-1)      # inverse-CDF sampling
            u = torch.rand(1, generator=g, dtype=cdf.dtype)
            nxt = (cdf < u).sum(dim=-1, keepdim=True).clamp_max(cdf.shape[-1] - 1)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "softmax over the batch dim instead of the vocabulary", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, dim=0), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "temperature ignored or applied after the softmax", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            probs = torch.softmax(logits, dim=-1) / temperature
            nxt = torch.multinomial(probs, 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "always the most likely token (greedy) when temperature > 0", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            nxt = probs.argmax(dim=-1, keepdim=True)          # the most probable token
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
    Mutant("generate", "sampling does not depend on the seed", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(1234)
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
'''),
]

VARIANTS = [
    Variant("layer_norm", "var_mean with correction=0 and rsqrt", '''
def layer_norm(x, weight, bias, eps=1e-5):
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + eps) * weight + bias
'''),
    Variant("layer_norm", "sums divided by C, power 0.5", '''
def layer_norm(x, weight, bias, eps=1e-5):
    C = x.shape[-1]
    d = x - x.sum(-1, keepdim=True) / C
    var = (d * d).sum(-1, keepdim=True) / C
    return weight * (d / (var + eps) ** 0.5) + bias
'''),
    Variant("layer_norm", "leading dims flattened to rows, var with unbiased=False", '''
def layer_norm(x, weight, bias, eps=1e-5):
    rows = x.reshape(-1, x.shape[-1])                               # (N, C): every leading dim flattened
    mean = rows.mean(dim=1, keepdim=True)
    std = torch.sqrt(rows.var(dim=1, unbiased=False, keepdim=True) + eps)
    return ((rows - mean) / std * weight + bias).reshape(x.shape)
'''),
    Variant("causal_self_attention", "einsum heads and an inline masked softmax", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    hs = C // n_head
    qkv = torch.einsum("btc,oc->bto", x, params["W_qkv"]) + params["b_qkv"]
    q, k, v = qkv.view(B, T, 3, n_head, hs).unbind(2)                     # each (B, T, nh, hs)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hs)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    y = torch.einsum("bhqk,bkhd->bqhd", weights, v).reshape(B, T, C)
    return torch.einsum("btc,oc->bto", y, params["W_proj"]) + params["b_proj"]
'''),
    Variant("causal_self_attention", "a loop over heads with chunk and cat", '''
def causal_self_attention(x, params, n_head):
    C = x.shape[-1]
    qkv = x @ params["W_qkv"].t() + params["b_qkv"]
    q, k, v = qkv.chunk(3, dim=-1)
    outs = []
    for qh, kh, vh in zip(q.chunk(n_head, -1), k.chunk(n_head, -1), v.chunk(n_head, -1)):
        outs.append(attention(qh, kh, vh, causal=True))
    return torch.cat(outs, dim=-1) @ params["W_proj"].t() + params["b_proj"]
'''),
    Variant("transformer_block", "GELU written with erf and an MLP helper", '''
def _mlp(h, p):
    u = h @ p["W_up"].T + p["b_up"]
    return (0.5 * u * (1 + torch.erf(u / math.sqrt(2)))) @ p["W_down"].T + p["b_down"]

def transformer_block(x, params, n_head):
    attn_in = layer_norm(x, params["ln1_w"], params["ln1_b"])
    x = x + causal_self_attention(attn_in, params, n_head)
    return x + _mlp(layer_norm(x, params["ln2_w"], params["ln2_b"]), params)
'''),
    Variant("transformer_block", "F.linear for the MLP", '''
def transformer_block(x, params, n_head):
    h = layer_norm(x, params["ln1_w"], params["ln1_b"])
    residual = x + causal_self_attention(h, params, n_head)
    h = layer_norm(residual, params["ln2_w"], params["ln2_b"])
    h = F.linear(F.gelu(F.linear(h, params["W_up"], params["b_up"])), params["W_down"], params["b_down"])
    return residual + h
'''),
    Variant("gpt_forward", "F.embedding and positions from torch.arange", '''
def gpt_forward(idx, params, config):
    positions = torch.arange(idx.shape[1])
    x = F.embedding(idx, params["tok_emb"]) + F.embedding(positions, params["pos_emb"])
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    x = layer_norm(x, params["lnf_w"], params["lnf_b"])
    return torch.einsum("btc,vc->btv", x, params["lm_head"])
'''),
    Variant("gpt_forward", "one-hot matmul embeddings", '''
def gpt_forward(idx, params, config):
    B, T = idx.shape
    tok = params["tok_emb"]
    onehot = F.one_hot(idx, tok.shape[0]).to(tok.dtype)            # (B, T, V)
    x = onehot @ tok + params["pos_emb"][:T].unsqueeze(0)
    layer = 0
    while layer < config["n_layer"]:
        x = transformer_block(x, block_params(params, layer), config["n_head"])
        layer += 1
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].mT
'''),
    Variant("gpt_forward", "index_select embeddings and F.linear for the head", '''
def gpt_forward(idx, params, config):
    B, T = idx.shape
    x = params["tok_emb"].index_select(0, idx.reshape(-1)).view(B, T, -1) + params["pos_emb"][torch.arange(T)]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return F.linear(layer_norm(x, params["lnf_w"], params["lnf_b"]), params["lm_head"])
'''),
    Variant("train_step", "loss.backward() on leaf copies, reading .grad", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {name: p.clone().requires_grad_() for name, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    B, T, V = logits.shape
    loss = cross_entropy(logits.view(B * T, V), y.view(B * T))
    loss.backward()
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for name, leaf in leaves.items():
        wd = config["weight_decay"] if leaf.ndim > 1 else 0.0
        p, s = adamw_step(params[name], leaf.grad, opt_state.get(name, {}), lr, config["betas"], config["eps"], wd)
        new_params[name], new_state[name] = p.detach(), s
    return new_params, new_state, loss.item()
'''),
    Variant("train_step", "dict comprehensions and a float loss", '''
def train_step(params, opt_state, x, y, step, config):
    names = sorted(params)
    leaves = [params[n].detach().clone().requires_grad_(True) for n in names]
    logits = gpt_forward(x, dict(zip(names, leaves)), config)
    loss = cross_entropy(logits.flatten(0, 1), y.flatten())
    grads = torch.autograd.grad(loss, leaves)
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    updates = {n: adamw_step(params[n], g, opt_state.get(n) or {}, lr=lr, betas=config["betas"], eps=config["eps"],
                             weight_decay=config["weight_decay"] * (params[n].dim() >= 2)) for n, g in zip(names, grads)}
    return {n: u[0] for n, u in updates.items()}, {n: u[1] for n, u in updates.items()}, float(loss)
'''),
    Variant("train", "a while loop and loss.item()", '''
def train(params, data, config, steps, seed=0):
    rng = torch.Generator()
    rng.manual_seed(seed)
    state, history, step = {}, [], 0
    while step < steps:
        xb, yb = get_batch(data, config["block_size"], config["batch_size"], rng)
        params, state, loss = train_step(params, state, xb, yb, step, config)
        history.append(loss.item() if torch.is_tensor(loss) else float(loss))
        step += 1
    return params, history
'''),
    Variant("train", "a copy of the params dict and enumerate over batches", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    current, opt_state = dict(params), {}
    batches = (get_batch(data, config["block_size"], config["batch_size"], generator) for _ in range(steps))
    losses = []
    for step, (x, y) in enumerate(batches):
        current, opt_state, loss = train_step(current, opt_state, x, y, step, config)
        losses.append(float(loss))
    return current, losses
'''),
    Variant("generate", "Gumbel-max sampling with the seeded generator", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    out = idx
    for _ in range(max_new_tokens):
        logits = gpt_forward(out[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            nxt = logits.argmax(dim=-1)
        else:
            u = torch.rand(logits.shape, generator=g, dtype=logits.dtype).clamp_min(1e-12)
            nxt = (logits / temperature - torch.log(-torch.log(u))).argmax(dim=-1)
        out = torch.cat([out, nxt.unsqueeze(1)], dim=1)
    return out
'''),
    Variant("generate", "one row at a time, multinomial on unnormalised weights", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    out = idx.clone()
    for _ in range(max_new_tokens):
        last = gpt_forward(out[:, -config["block_size"]:], params, config)[:, -1, :].double()    # (B, V)
        if not temperature:
            nxt = last.argmax(dim=1)
        else:
            weights = torch.exp((last - last.max(dim=1, keepdim=True).values) / temperature)    # softmax up to a factor
            nxt = torch.stack([torch.multinomial(w, 1, generator=g)[0] for w in weights])
        out = torch.cat([out, nxt.view(-1, 1).long()], dim=1)
    return out
'''),
    Variant("generate", "inverse-CDF sampling with searchsorted", '''
def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    g = None
    if seed is not None:
        g = torch.Generator()
        g.manual_seed(seed)
    for _ in range(max_new_tokens):
        context = idx if idx.shape[1] <= config["block_size"] else idx[:, idx.shape[1] - config["block_size"]:]
        logits = gpt_forward(context, params, config)[:, -1]
        if temperature == 0:
            nxt = torch.argmax(logits, dim=1, keepdim=True)
        else:
            cdf = torch.softmax(logits.double() / temperature, dim=-1).cumsum(-1)
            u = torch.rand(logits.shape[0], 1, generator=g, dtype=torch.float64)
            nxt = torch.searchsorted(cdf, u * cdf[:, -1:]).clamp_max(logits.shape[-1] - 1)
        idx = torch.cat((idx, nxt), dim=1)
    return idx
'''),
]

FORBIDDEN = [
    Forbidden("layer_norm", "torch.nn.functional.layer_norm", '''
def layer_norm(x, weight, bias, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)
'''),
    Forbidden("causal_self_attention", "torch.nn.functional.scaled_dot_product_attention", '''
def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(B, T, C) @ params["W_proj"].T + params["b_proj"]
'''),
    Forbidden("transformer_block", "torch.nn.functional.layer_norm", '''
def transformer_block(x, params, n_head):
    C = x.shape[-1]
    x = x + causal_self_attention(F.layer_norm(x, (C,), params["ln1_w"], params["ln1_b"]), params, n_head)
    h = F.layer_norm(x, (C,), params["ln2_w"], params["ln2_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]
'''),
    Forbidden("gpt_forward", "torch.nn.functional.layer_norm", '''
def gpt_forward(idx, params, config):
    T = idx.shape[1]
    x = params["tok_emb"][idx] + params["pos_emb"][:T]
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    x = F.layer_norm(x, x.shape[-1:], params["lnf_w"], params["lnf_b"])
    return x @ params["lm_head"].T
'''),
    Forbidden("train_step", "torch.optim", '''
def train_step(params, opt_state, x, y, step, config):
    leaves = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    optimizer = torch.optim.AdamW(list(leaves.values()), lr=lr, betas=config["betas"], eps=config["eps"])
    optimizer.step()
    return {n: p.detach() for n, p in leaves.items()}, opt_state, loss.detach()
'''),
    Forbidden("train", "torch.nn.functional.cross_entropy", '''
def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, _ = train_step(params, opt_state, x, y, step, config)
        logits = gpt_forward(x, params, config)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
    return params, losses
'''),
]

# -- split_data and held_out_loss (section 8: text the model has not read) ----------------------------
MUTANTS += [
    Mutant("split_data", "characters shuffled before splitting", '''
def split_data(data, val_fraction):
    n = int(len(data) * (1 - val_fraction))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    return data[order[:n]], data[order[n:]]
'''),
    Mutant("split_data", "characters shuffled before splitting", '''
def split_data(data, val_fraction):
    n = int(len(data) * (1 - val_fraction))
    picked = torch.randperm(len(data))                       # random positions, kept in text order within each part
    return data[picked[:n].sort().values], data[picked[n:].sort().values]
'''),
    Mutant("split_data", "fraction inverted (val_fraction of the text kept for training)", '''
def split_data(data, val_fraction):
    n = int(len(data) * val_fraction)
    return data[:n], data[n:]
'''),
    Mutant("split_data", "boundary rounded up (one token too many for training)", '''
def split_data(data, val_fraction):
    n_val = int(len(data) * val_fraction)
    return data[:-n_val], data[-n_val:]
'''),
    Mutant("split_data", "boundary rounded up (one token too many for training)", '''
def split_data(data, val_fraction):
    n = round(len(data) * (1 - val_fraction))
    return data[:n], data[n:]
'''),
    Mutant("split_data", "boundary token in both parts (val starts one token early)", '''
def split_data(data, val_fraction):
    n = int(len(data) * (1 - val_fraction))
    return data[:n], data[n - 1:]          # the first held-out target needs the character before it
'''),
    Mutant("split_data", "parts returned as Python lists", '''
def split_data(data, val_fraction):
    tokens = data.tolist()
    n = int(len(tokens) * (1 - val_fraction))
    return tokens[:n], tokens[n:]
'''),
    Mutant("split_data", "parts returned in the wrong order (val, train)", '''
def split_data(data, val_fraction):
    n = int(len(data) * (1 - val_fraction))
    val, train = data[n:], data[:n]
    return val, train
'''),
    # -- held_out_loss ---------------------------------------------------------------------------
    Mutant("held_out_loss", "targets not shifted (each character predicts itself)", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    logits, targets = [], []
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            x = data[start:min(start + T, len(data) - 1)]
            logits.append(gpt_forward(x.view(1, -1), params, config)[0])
            targets.append(x)
        loss = cross_entropy(torch.cat(logits), torch.cat(targets))
    return loss, torch.exp(loss)
'''),
    Mutant("held_out_loss", "shorter last block dropped", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    n = (len(data) - 1) // T
    x = data[:n * T].view(n, T)
    y = data[1:n * T + 1].view(n, T)
    with torch.no_grad():
        logits = gpt_forward(x, params, config)
        loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    return loss, loss.exp()
'''),
    Mutant("held_out_loss", "mean of the block means (a short last block weighs as much as a full one)", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    block_losses = []
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            x = data[start:start + len(y)]
            block_losses.append(cross_entropy(gpt_forward(x[None], params, config)[0], y))
    loss = torch.stack(block_losses).mean()
    return loss, loss.exp()
'''),
    Mutant("held_out_loss", "chunks of block_size characters (the first character of each chunk is never a target)", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in data.split(T):
            if len(chunk) < 2:
                continue
            logits = gpt_forward(chunk[:-1].unsqueeze(0), params, config)[0]
            total += cross_entropy(logits, chunk[1:]).item() * (len(chunk) - 1)
            count += len(chunk) - 1
    return total / count, math.exp(total / count)
'''),
    Mutant("held_out_loss", "divided by N characters instead of the N − 1 targets", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            x = data[start:start + len(y)]
            total = total + cross_entropy(gpt_forward(x.view(1, -1), params, config)[0], y) * len(y)
    loss = total / len(data)
    return loss, torch.exp(loss)
'''),
    Mutant("held_out_loss", "loss in bits (log base 2) instead of nats", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    logits, targets = [], []
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            logits.append(gpt_forward(data[start:start + len(y)].view(1, -1), params, config)[0])
            targets.append(y)
        logits, targets = torch.cat(logits), torch.cat(targets)
        log2_p = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1) / math.log(2)
        bits = -log2_p.mean()
    return bits, 2 ** bits
'''),
    Mutant("held_out_loss", "perplexity from the summed loss (e to the total, not to the mean)", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    logits, targets = [], []
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            logits.append(gpt_forward(data[start:start + len(y)].view(1, -1), params, config)[0])
            targets.append(y)
        loss = cross_entropy(torch.cat(logits), torch.cat(targets))
    return loss, torch.exp(loss * (len(data) - 1))
'''),
    Mutant("held_out_loss", "perplexity as 2 ** loss (the loss is in nats)", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    logits, targets = [], []
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            logits.append(gpt_forward(data[start:start + len(y)].view(1, -1), params, config)[0])
            targets.append(y)
        loss = cross_entropy(torch.cat(logits), torch.cat(targets))
    return loss, 2 ** loss
'''),
]
VARIANTS += [
    Variant("split_data", "torch.split with the two sizes", '''
def split_data(data, val_fraction):
    n_train = int((1 - val_fraction) * data.shape[0])
    train, val = torch.split(data, [n_train, data.shape[0] - n_train])
    return train, val
'''),
    Variant("split_data", "held-out size rounded up with math.ceil, narrow", '''
def split_data(data, val_fraction):
    n_val = math.ceil(len(data) * val_fraction)          # the same boundary: N − ⌈N f⌉ = ⌊N (1 − f)⌋
    n = len(data) - n_val
    return data.narrow(0, 0, n), data.narrow(0, n, n_val)
'''),
    Variant("split_data", "math.floor and tensor_split, returned as a list", '''
def split_data(data, val_fraction):
    boundary = math.floor(len(data) * (1 - val_fraction))
    return list(torch.tensor_split(data, [boundary]))
'''),
    Variant("held_out_loss", "a loop over blocks, each mean weighted by its length, Python floats", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            stop = min(start + T, len(data) - 1)
            x, y = data[start:stop], data[start + 1:stop + 1]
            total += cross_entropy(gpt_forward(x.unsqueeze(0), params, config)[0], y).item() * len(y)
            count += len(y)
    return total / count, math.exp(total / count)
'''),
    Variant("held_out_loss", "windows of block_size + 1 with unfold, log_softmax and gather, a decorator", '''
@torch.no_grad()
def held_out_loss(params, data, config):
    T = config["block_size"]
    n = (len(data) - 1) // T
    nll = []
    if n:
        windows = data[:n * T + 1].unfold(0, T + 1, T)                  # (n, T + 1), consecutive windows share one token
        logits = gpt_forward(windows[:, :-1], params, config)           # (n, T, V)
        nll.append(-logits.log_softmax(-1).gather(-1, windows[:, 1:, None]).flatten())
    rest = data[n * T:]
    if len(rest) > 1:
        logits = gpt_forward(rest[None, :-1], params, config)            # (1, r, V)
        nll.append(-logits.log_softmax(-1).gather(-1, rest[None, 1:, None]).flatten())
    loss = torch.cat(nll).mean()
    return loss, loss.exp()
'''),
    Variant("held_out_loss", "sum of per-block cross_entropy times the count, tensors", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    with torch.no_grad():
        sums, count = [], 0
        for i in range(math.ceil((len(data) - 1) / T)):
            x = data[i * T:(i + 1) * T]
            y = data[i * T + 1:(i + 1) * T + 1]
            x = x[:len(y)]
            sums.append(cross_entropy(gpt_forward(x.reshape(1, -1), params, config).squeeze(0), y) * len(y))
            count += len(y)
        loss = torch.stack(sums).sum() / count
        perplexity = torch.exp(loss)
    return loss, perplexity
'''),
]
FORBIDDEN += [
    Forbidden("held_out_loss", "torch.nn.functional.cross_entropy", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            logits = gpt_forward(data[start:start + len(y)][None], params, config)[0]
            total = total + F.cross_entropy(logits, y, reduction="sum")
    loss = total / (len(data) - 1)
    return loss, loss.exp()
'''),
    Forbidden("held_out_loss", "torch.nn.functional.nll_loss", '''
def held_out_loss(params, data, config):
    T = config["block_size"]
    logits, targets = [], []
    with torch.no_grad():
        for start in range(0, len(data) - 1, T):
            y = data[start + 1:start + T + 1]
            logits.append(gpt_forward(data[start:start + len(y)][None], params, config)[0])
            targets.append(y)
        loss = F.nll_loss(torch.cat(logits).log_softmax(-1), torch.cat(targets))
    return loss, loss.exp()
'''),
]
