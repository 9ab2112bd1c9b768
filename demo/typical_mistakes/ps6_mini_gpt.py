"""Demo submission for ps6_mini_gpt: the parts from earlier problem sets are right, the new code has
the mistakes students really make in a first GPT."""


def attention(q, k, v, causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        T_q, T_k = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(T_q, T_k, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v                     # correct


def cross_entropy(logits, targets):
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return -log_probs.gather(-1, targets.unsqueeze(-1)).mean()    # correct


def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    step = state.get("step", 0) + 1
    m = betas[0] * state.get("exp_avg", torch.zeros_like(param)) + (1 - betas[0]) * grad
    v = betas[1] * state.get("exp_avg_sq", torch.zeros_like(param)) + (1 - betas[1]) * grad ** 2
    update = (m / (1 - betas[0] ** step)) / ((v / (1 - betas[1] ** step)).sqrt() + eps)
    return param * (1 - lr * weight_decay) - lr * update, {"step": step, "exp_avg": m, "exp_avg_sq": v}   # correct


def warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps)))   # correct


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True)                                 # torch.var divides by C - 1 by default
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def causal_self_attention(x, params, n_head):
    B, T, C = x.shape
    q, k, v = (x @ params["W_qkv"].T + params["b_qkv"]).split(C, dim=-1)
    q, k, v = (t.reshape(B, n_head, T, C // n_head) for t in (q, k, v))   # reshape without transpose: heads mix positions
    y = attention(q, k, v, causal=True).reshape(B, T, C)
    return y @ params["W_proj"].T + params["b_proj"]


def transformer_block(x, params, n_head):
    x = x + causal_self_attention(layer_norm(x, params["ln1_w"], params["ln1_b"]), params, n_head)
    h = layer_norm(x, params["ln2_w"], params["ln2_b"])
    return x + F.gelu(h @ params["W_up"].T + params["b_up"]) @ params["W_down"].T + params["b_down"]   # correct


def gpt_forward(idx, params, config):
    x = params["tok_emb"][idx]                                    # forgot the position embeddings
    for layer in range(config["n_layer"]):
        x = transformer_block(x, block_params(params, layer), config["n_head"])
    return layer_norm(x, params["lnf_w"], params["lnf_b"]) @ params["lm_head"].T


def train_step(params, opt_state, x, y, step, config):
    leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    logits = gpt_forward(x, leaves, config)
    loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    lr = warmup_cosine_lr(step, config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"])
    new_params, new_state = {}, {}
    for name, p in params.items():                                # decays biases and layer-norm weights too
        new_params[name], new_state[name] = adamw_step(p, grads[name], opt_state.get(name, {}), lr=lr, betas=config["betas"],
                                                       eps=config["eps"], weight_decay=config["weight_decay"])
    return new_params, new_state, loss.detach()


def train(params, data, config, steps, seed=0):
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    for step in range(steps):
        x, y = get_batch(data, config["block_size"], config["batch_size"], generator)
        params, opt_state, loss = train_step(params, opt_state, x, y, step, config)
        losses.append(float(loss))
    return params, losses                                          # correct


def generate(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(max_new_tokens):
        logits = gpt_forward(idx[:, -config["block_size"]:], params, config)[:, -1, :]
        if temperature == 0:
            next_token = logits.argmax(-1, keepdim=True)
        else:
            probs = torch.softmax(logits * temperature, dim=-1)   # multiplies by the temperature instead of dividing
            next_token = torch.multinomial(probs, 1, generator=generator)
        idx = torch.cat([idx, next_token], dim=1)
    return idx
