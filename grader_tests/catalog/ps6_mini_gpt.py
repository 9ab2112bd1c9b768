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
