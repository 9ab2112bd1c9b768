"""Hidden checks for ps6_mini_gpt: a character-level GPT built from the student's parts.

Every graded function is compared with a reference built from torch built-ins, computed in float64:
`F.layer_norm`, `F.scaled_dot_product_attention(is_causal=True)`, `F.gelu`, `F.embedding`,
`F.cross_entropy`, `torch.optim.AdamW`. Parameters are plain dicts of tensors (see the notebook for
the keys). Test models are small and non-square (n_embd != vocab_size != block_size, several heads),
with non-trivial layer-norm weights and biases so that no term can be dropped unnoticed.

Training is checked against the float64 reference loop: a few steps (this names loop mistakes),
and 200 steps on the sonnets shipped with the assignment with a small model, the whole warmup and
cosine schedule, every loss compared (the reference run is computed once per grading process). The held-out loss is compared with F.cross_entropy over consecutive blocks of block_size
(the shorter last block included); a split of the text that holds every token but not in order is
named a shuffle. Sampling is checked by the joint distribution of two new tokens over many draws, by
the independence of successive draws and of rows, and by determinism under a seed, never against one
reference sampler's draws.
"""

import functools
import math

import torch
import torch.nn.functional as F

from mfml_grader import course
from mfml_grader.compare import difference
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, input_dtype, randn, seeded

ASSIGNMENT = "ps6_mini_gpt"

LAYER_NORM_APIS = ("torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm", "torch.nn.LayerNorm",
                   "torch.nn.functional.group_norm", "torch.nn.GroupNorm")
ATTENTION_APIS = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention",
                  "torch.nn.functional.multi_head_attention_forward")
MODEL_APIS = LAYER_NORM_APIS + ATTENTION_APIS + ("torch.nn.Transformer*",)
LOSS_APIS = ("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss")
TRAINING_APIS = ("torch.optim", *LOSS_APIS)

MODEL_PARTS = ("attention", "layer_norm", "causal_self_attention", "transformer_block")
TRAINING_PARTS = (*MODEL_PARTS, "gpt_forward", "cross_entropy", "adamw_step", "warmup_cosine_lr")

# A small non-square model for the checks: C=12 with 3 heads of 4, V=11, block_size=8, 2 layers.
CONFIG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=3, n_embd=12, batch_size=3,
              max_lr=0.02, min_lr=0.002, warmup_steps=4, total_steps=12, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-3)
# eps = 1e-3: the key bias b_k has a zero gradient (softmax ignores a shift of all scores), and in float32
# its rounding noise (~1e-8) divided by eps = 1e-8 would move it by ±lr; a larger eps keeps float32 comparable.

# The notebook's schedule for the sonnets (200 steps, warmup 20) with a small model, float64: a whole training run.
SONNETS_CONFIG = dict(block_size=8, n_layer=1, n_head=2, n_embd=8, batch_size=4, max_lr=1e-2, min_lr=1e-3,
                      warmup_steps=20, total_steps=200, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
SONNETS_STEPS = 200


# -- references built from torch built-ins --------------------------------------------------------
def _lr(step, config):
    """The notebook's schedule: linear warmup over warmup_steps, cosine decay to min_lr at total_steps."""
    max_lr, min_lr, warmup, total = config["max_lr"], config["min_lr"], config["warmup_steps"], config["total_steps"]
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step > total:
        return min_lr
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _block_params(params, layer):
    prefix = f"block{layer}."
    return {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}


def _self_attention(x, p, n_head, causal=True, split="heads", merge="heads", order=(0, 1, 2), project=True, scale=None,
                    qkv_bias=True, proj_bias=True, proj_transposed=False, attend=F.scaled_dot_product_attention):
    """Multi-head causal self-attention with F.scaled_dot_product_attention; the options are mistakes."""
    B, T, C = x.shape
    hs = C // n_head
    qkv = F.linear(x, p["W_qkv"], p["b_qkv"] if qkv_bias else None)              # (B, T, 3C)
    if split == "per head":                                                       # [q_h | k_h | v_h] in each head's 3·hs columns
        parts = [t.reshape(B, T, C) for t in qkv.view(B, T, n_head, 3 * hs).split(hs, dim=-1)]
    else:
        parts = qkv.split(C, dim=-1)                                              # 3 x (B, T, C)
    q, k, v = (parts[i] for i in order)
    if split in ("heads", "per head"):
        q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))   # (B, nh, T, hs)
    elif split == "reshape":
        q, k, v = (t.reshape(B, n_head, T, hs) for t in (q, k, v))
    y = attend(q, k, v, is_causal=causal, scale=scale)
    if split != "none":
        y = {"heads": y.transpose(1, 2), "reshape": y, "interleave": y.permute(0, 2, 3, 1)}[merge].reshape(B, T, C)
    if not project:
        return y
    return F.linear(y, p["W_proj"].T if proj_transposed else p["W_proj"], p["b_proj"] if proj_bias else None)


def _hand_attention(how):
    """A causal attention written by hand with one mistake (`how`), in place of F.scaled_dot_product_attention."""
    def attend(q, k, v, is_causal=True, scale=None):
        T = q.shape[-2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])                 # (B, nh, T, T)
        hidden = torch.ones(T, T, dtype=torch.bool).triu(0 if how == "diagonal masked" else 1)
        if how == "mask after softmax":
            return scores.softmax(-1).masked_fill(hidden, 0.0) @ v
        scores = scores.masked_fill(hidden, 0.0 if how == "mask with 0" else -math.inf)
        return scores.softmax(-2 if how == "softmax over queries" else -1) @ v
    return attend


ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": lambda t: F.gelu(t, approximate="tanh"), "none": lambda t: t}


def _mlp(h, p, act="gelu", up_bias=True, down_bias=True, act_out=False):
    a = ACTIVATIONS[act](F.linear(h, p["W_up"], p["b_up"] if up_bias else None))    # (B, T, 4C)
    out = F.linear(a, p["W_down"], p["b_down"] if down_bias else None)             # (B, T, C)
    return ACTIVATIONS[act](out) if act_out else out


def _ln(h, p, which):
    return F.layer_norm(h, h.shape[-1:], p[f"{which}_w"], p[f"{which}_b"])


def _block(x, p, n_head, pre_ln=True, attn_residual=True, mlp_residual=True, ln1="ln1", ln2="ln2", act="gelu",
           residual="input", parallel=False, returns="stream", **mlp):
    """Pre-LN transformer block; the options are mistakes (`mlp` goes to _mlp)."""
    if not pre_ln:
        x = _ln(x + _self_attention(x, p, n_head), p, "ln1")
        return _ln(x + _mlp(x, p, act), p, "ln2")
    h = _ln(x, p, ln1) if ln1 else x                                             # (B, T, C)
    a = _self_attention(h, p, n_head)
    x1 = (h if residual == "normalised" else x) + a if attn_residual else a
    h2 = _ln(x if parallel else x1, p, ln2) if ln2 else x1
    m = _mlp(h2, p, act, **mlp)
    if returns == "updates":
        return a + m
    if returns == "input":
        return x + m
    return (h2 if residual == "normalised" else x1) + m if mlp_residual else m


def _forward(idx, params, config, positions="first", final_ln=True, reverse=False, head="lm_head", output="logits",
             embedding="tok_emb", block=None):
    """GPT forward pass: embeddings, blocks, final layer norm, lm head; the options are mistakes."""
    T, pos = idx.shape[1], params["pos_emb"]
    x = F.embedding(idx, params[embedding])                                      # (B, T, C)
    x = x + {"first": lambda: pos[:T], "last": lambda: pos[pos.shape[0] - T:], "from one": lambda: pos[1:T + 1],
             "token ids": lambda: pos[idx], "whole table": lambda: pos, None: lambda: 0}[positions]()
    if final_ln == "before the blocks":
        x = _ln(x, params, "lnf")
    layers = range(config["n_layer"])
    for layer in (reversed(layers) if reverse else layers):
        x = _block(x, _block_params(params, layer if block is None else block), config["n_head"])
        if final_ln == "after every block":
            x = _ln(x, params, "lnf")
    if final_ln is True:
        x = _ln(x, params, "lnf")
    logits = F.linear(x, params[head])                                           # (B, T, V)
    return {"logits": lambda: logits, "probabilities": lambda: logits.softmax(-1), "log-probabilities": lambda: logits.log_softmax(-1),
            "last position": lambda: logits[:, -1]}[output]()


# How a training step reduces the loss: the mean over all B*T positions ("mean"); the others are mistakes.
LOSSES = {
    "mean": lambda logits, x, y: F.cross_entropy(logits.flatten(0, 1), y.flatten()),
    "sum over the batch": lambda logits, x, y: sum(F.cross_entropy(logits[b], y[b]) for b in range(y.shape[0])),
    "sum over positions": lambda logits, x, y: sum(F.cross_entropy(logits[:, t], y[:, t]) for t in range(y.shape[1])),
    "targets x": lambda logits, x, y: F.cross_entropy(logits.flatten(0, 1), x.flatten()),
    "last position": lambda logits, x, y: F.cross_entropy(logits[:, -1], y[:, -1]),
    "flattened from (B, V, T)": lambda logits, x, y: F.cross_entropy(logits.transpose(1, 2).reshape(-1, logits.shape[-1]), y.flatten()),
}

# Which tensors decay: those with 2 or more dims ("matrices"); the others are mistakes.
DECAYS = {
    "matrices": lambda name, value: value.dim() >= 2,
    "all": lambda name, value: True,
    "none": lambda name, value: False,
    "vectors": lambda name, value: value.dim() < 2,
    "no embeddings": lambda name, value: value.dim() >= 2 and name not in ("tok_emb", "pos_emb"),
    "layer-norm weights too": lambda name, value: value.dim() >= 2 or name.endswith("_w"),
}


def _swap(config, a, b):
    return dict(config, **{a: config[b], b: config[a]})


# The learning rate of step s: the notebook's schedule ("warmup cosine"); the others are mistakes.
SCHEDULES = {
    "warmup cosine": _lr,
    "constant": lambda step, config: config["max_lr"],
    "next step": lambda step, config: _lr(step + 1, config),
    "warmup and total swapped": lambda step, config: _lr(step, _swap(config, "warmup_steps", "total_steps")),
    "max and min swapped": lambda step, config: _lr(step, _swap(config, "max_lr", "min_lr")),
}


def _train_step(params, opt_state, x, y, step, config, loss="mean", schedule="warmup cosine", decay="matrices", betas=None, eps=None,
                fresh_state=False, old_state=False):
    """One step of F.cross_entropy + torch.optim.AdamW (lr from the schedule); the options are mistakes."""
    leaves = {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}
    logits = _forward(x, leaves, config)                                         # (B, T, V)
    value = LOSSES[loss](logits, x, y)
    value.backward()
    groups = [{"params": [leaf], "weight_decay": config["weight_decay"] if DECAYS[decay](name, leaf) else 0.0} for name, leaf in leaves.items()]
    optimizer = torch.optim.AdamW(groups, lr=SCHEDULES[schedule](step, config), betas=betas or config["betas"],
                                  eps=config["eps"] if eps is None else eps, foreach=False)
    for name, leaf in leaves.items():
        state = {} if fresh_state else opt_state.get(name) or {}
        if state:
            optimizer.state[leaf] = {"step": torch.tensor(float(state["step"])), "exp_avg": state["exp_avg"].clone(),
                                     "exp_avg_sq": state["exp_avg_sq"].clone()}
    optimizer.step()
    new_params = {name: leaf.detach() for name, leaf in leaves.items()}
    new_state = {name: {"step": int(optimizer.state[leaf]["step"].item()), "exp_avg": optimizer.state[leaf]["exp_avg"],
                        "exp_avg_sq": optimizer.state[leaf]["exp_avg_sq"]} for name, leaf in leaves.items()}
    return new_params, opt_state if old_state else new_state, value.detach()


def _get_batch(data, block_size, batch_size, generator):
    """The notebook's get_batch: random windows x and their targets y = x shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix.tolist()])
    return x, y


def _train(params, data, config, steps, seed=0, mistake=None):
    """The training loop of the notebook with the reference step; `mistake` names a wrong loop."""
    generator = torch.Generator().manual_seed(0 if mistake == "constant seed" else seed)
    sizes = (config["batch_size"], config["block_size"]) if mistake == "sizes swapped" else (config["block_size"], config["batch_size"])
    first = _get_batch(data, *sizes, generator) if mistake == "same batch" else None
    trained, opt_state, losses = params, {}, []
    for step in range(1 if mistake == "from range 1" else 0, steps):
        if mistake == "reseeded":
            generator = torch.Generator().manual_seed(seed + step)
        x, y = first or _get_batch(data, *sizes, generator)                       # (B, T) each
        at = {"stuck": 0, "from one": step + 1}.get(mistake, step)
        new_params, new_state, loss = _train_step(trained, {} if mistake == "reset" else opt_state, x, y, at, config)
        if mistake == "loss after the update":
            loss = LOSSES["mean"](_forward(x, new_params, config), x, y)
        if mistake != "dropped":
            trained = new_params
        opt_state = new_state
        losses = [loss.item()] if mistake == "losses reset" else losses + [loss.item()]
    return (params if mistake == "initial params" else trained), losses


def _greedy(params, idx, max_new_tokens, config, crop="last", position=-1, keep_prompt=True, feed=True):
    """Greedy decoding with the reference model; the options are mistakes."""
    out, block = idx, config["block_size"]
    for _ in range(max_new_tokens):
        seen = out if feed else idx                                              # feed=False: the new tokens never reach the model
        context = {"last": seen[:, -block:], "first": seen[:, :block], "short": seen[:, -(block - 1):]}[crop]   # (B, <= block_size)
        logits = _forward(context, params, config)[:, position]                  # (B, V)
        out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
    return out if keep_prompt else out[:, idx.shape[1]:]


def _sample_dividing_by_zero(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
    """A sampler without the temperature == 0 case: softmax(logits / 0) is nan and torch.multinomial raises."""
    logits = _forward(idx[:, -config["block_size"]:], params, config)[:, -1]      # (B, V)
    return torch.multinomial(torch.softmax(logits / temperature, -1), 1)


# -- inputs ---------------------------------------------------------------------------------------
def block_shapes(C):
    return {"ln1_w": (C,), "ln1_b": (C,), "W_qkv": (3 * C, C), "b_qkv": (3 * C,), "W_proj": (C, C), "b_proj": (C,),
            "ln2_w": (C,), "ln2_b": (C,), "W_up": (4 * C, C), "b_up": (4 * C,), "W_down": (C, 4 * C), "b_down": (C,)}


def _value(name, shape, seed, dtype, head_scale=1.0):
    t = randn(*shape, seed=seed, dtype=torch.float64)
    if name.endswith("_w"):
        t = 1.0 + 0.2 * t                      # layer-norm weights near 1, not 1
    elif len(shape) == 1:
        t = 0.1 * t                            # biases
    elif name in ("tok_emb", "pos_emb"):
        t = 0.5 * t
    else:
        t = t / math.sqrt(shape[1]) * (head_scale if name == "lm_head" else 1.0)
    return t.to(dtype)


def block_inputs(C, seed, dtype=torch.float32):
    return {name: _value(name, shape, seed * 100 + i, dtype) for i, (name, shape) in enumerate(block_shapes(C).items())}


def model_params(config, seed, dtype=torch.float32, head_scale=1.0):
    """Random test weights for the whole model (every term matters: no zeros, no ones)."""
    C, V = config["n_embd"], config["vocab_size"]
    shapes = {"tok_emb": (V, C), "pos_emb": (config["block_size"], C)}
    for layer in range(config["n_layer"]):
        shapes.update({f"block{layer}.{name}": shape for name, shape in block_shapes(C).items()})
    shapes.update({"lnf_w": (C,), "lnf_b": (C,), "lm_head": (V, C)})
    return {name: _value(name.split(".")[-1], shape, seed * 1000 + i, dtype, head_scale) for i, (name, shape) in enumerate(shapes.items())}


def init_params(config, seed=0):
    """The notebook's initialisation (GPT-2 style), used for the training run on the sonnets."""
    generator = torch.Generator().manual_seed(seed)
    C, V, L = config["n_embd"], config["vocab_size"], config["n_layer"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=generator) * std

    params = {"tok_emb": normal(V, C), "pos_emb": normal(config["block_size"], C)}
    for layer in range(L):
        for name, shape in block_shapes(C).items():
            if name.endswith("_w"):
                value = torch.ones(shape)
            elif len(shape) == 1:
                value = torch.zeros(shape)
            else:
                value = normal(*shape, std=0.02 / math.sqrt(2 * L) if name in ("W_proj", "W_down") else 0.02)
            params[f"block{layer}.{name}"] = value
    params.update({"lnf_w": torch.ones(C), "lnf_b": torch.zeros(C), "lm_head": normal(V, C)})
    return params


def tokens(*shape, seed, vocab=CONFIG["vocab_size"]):
    return torch.randint(vocab, shape, generator=seeded(seed))


def sonnets():
    """The text shipped with the assignment (as released, never the student's copy), its vocabulary size and its tokens."""
    text = course.release_notebook(ASSIGNMENT).with_name("data").joinpath("sonnets.txt").read_text()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    return text, len(chars), torch.tensor([stoi[ch] for ch in text], dtype=torch.long)


@functools.lru_cache(maxsize=1)
def sonnets_run():
    """(params, data, config) of the long training check and the reference loop's result: computed once per grading process."""
    _, vocab_size, data = sonnets()
    config = dict(SONNETS_CONFIG, vocab_size=vocab_size)
    params = {name: p.double() for name, p in init_params(config, seed=0).items()}
    return params, data, config, _train(params, data, config, SONNETS_STEPS, seed=0)


# -- exercises ------------------------------------------------------------------------------------
class _ModelExercise(Exercise):
    """An exercise of the model's parts: it names a mistake only when that mistake alone explains the result.

    Special inputs make several mistakes coincide (with q = k = 0 a mask filled with 0 is no mask at all; with
    zero updates most block mistakes vanish): there the name would be a guess, so the other checks give it.
    """

    sole_diagnosis = True


def _expect_causal(exercise, student, args, changed_args, first, changed):
    """Outputs at positions 0..first-1 must not move when only later inputs change; then compare with the reference.

    Causality is checked before the values, so that a leak names its mistake (no mask, a mask after the softmax, ...).
    """
    before, after = exercise.call(student, *args), exercise.call(student, *changed_args)
    if isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor) and before.dim() == 3 and before.shape == after.shape \
            and not torch.allclose(after[:, :first], before[:, :first], rtol=1e-10, atol=1e-10, equal_nan=True):
        moved = (after[:, :first] - before[:, :first]).abs().nan_to_num(nan=math.inf).amax(dim=(0, 2))   # (first,)
        t = int((moved > 1e-10).nonzero()[0])
        raise CheckFailed(f"{exercise.describe_call(args, {})}: the outputs at positions 0..{first - 1} changed when only {changed} changed "
                          f"(position {t} moved by {moved[t].item():.3g}): it sees the future",
                          exercise.diagnose(before, args, {}, input_dtype(args)))
    exercise.expect(student, *args)


def _over(x, dims, eps):
    """x normalised by its mean and biased variance over `dims` (no weight, no bias)."""
    mean = x.mean(dims, keepdim=True)
    return (x - mean) / ((x - mean).square().mean(dims, keepdim=True) + eps).sqrt()


def _normalise(x, var, eps):
    return (x - x.mean(-1, keepdim=True)) / (var + eps).sqrt()


def _unpacking_three_dims(x, weight, bias, eps=1e-5):
    """Layer norm that starts with `B, T, C = x.shape`: it raises for x that is not 3-D, as the student's code does."""
    B, T, C = x.shape
    return F.layer_norm(x, (C,), weight, bias, eps)


class TestLayerNorm(_ModelExercise):
    function = "layer_norm"
    forbidden = LAYER_NORM_APIS
    one_pass = Mistake("variance as E[x²] − E[x]² (cancels in float32 for large offsets)",
                       "compute the variance from the centred values, ((x − μ)²).mean(-1): E[x²] − μ² subtracts two nearly equal large numbers.")
    mistakes = (
        Mistake("unbiased variance (divided by C - 1)", "layer norm divides the squared deviations by C, not C - 1 (torch.var's default): use unbiased=False or .mean().",
                lambda x, weight, bias, eps=1e-5: _normalise(x, x.var(-1, unbiased=True, keepdim=True), eps) * weight + bias),
        Mistake("eps added outside the square root", "divide by √(σ² + ε), not by σ + ε.",
                lambda x, weight, bias, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True).sqrt() + eps) * weight + bias),
        Mistake("no eps (0/0 on constant features)", "add ε inside the square root: √(σ² + ε) keeps constant rows finite.",
                lambda x, weight, bias, eps=1e-5: _normalise(x, x.var(-1, unbiased=False, keepdim=True), 0.0) * weight + bias),
        Mistake("eps argument ignored (1e-5 written in)", "use the `eps` argument: layer_norm(x, w, b, eps=1e-3) must add 1e-3.",
                lambda x, weight, bias, eps=1e-5: F.layer_norm(x, x.shape[-1:], weight, bias)),
        Mistake("mean not subtracted (that is RMSNorm)", "subtract the mean μ before dividing: (x − μ) / √(σ² + ε), with σ² the mean of (x − μ)².",
                lambda x, weight, bias, eps=1e-5: x / (x.square().mean(-1, keepdim=True) + eps).sqrt() * weight + bias),
        Mistake("x not centred (the mean is subtracted inside the variance only)", "the numerator is x − μ as well: (x − μ) / √(σ² + ε).",
                lambda x, weight, bias, eps=1e-5: x / (x.var(-1, unbiased=False, keepdim=True) + eps).sqrt() * weight + bias),
        Mistake("variance taken as the mean of x² (μ not subtracted)", "σ² is the mean of (x − μ)², not of x².",
                lambda x, weight, bias, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.square().mean(-1, keepdim=True) + eps).sqrt() * weight + bias),
        Mistake("divided by the variance, not the standard deviation", "divide by the square root: (x − μ) / √(σ² + ε).",
                lambda x, weight, bias, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True) + eps) * weight + bias),
        Mistake("normalised over the first dim instead of the features", "the statistics are over the last dim (the C features of each token): mean(-1), not mean(0).",
                lambda x, weight, bias, eps=1e-5: _over(x, 0, eps) * weight + bias),
        Mistake("normalised over dim 1 (right for 2-D x only)", "x is (..., C): take the statistics over dim=-1, which is the features for any number of leading dims.",
                lambda x, weight, bias, eps=1e-5: _over(x, 1, eps) * weight + bias),
        Mistake("one mean and variance for the whole tensor", "each token is normalised on its own: mean(-1, keepdim=True), not x.mean().",
                lambda x, weight, bias, eps=1e-5: _over(x, tuple(range(x.dim())), eps) * weight + bias),
        Mistake("x assumed to be (B, T, C)", "x may have any number of leading dims (..., C): work on dim -1 instead of unpacking B, T, C = x.shape.",
                _unpacking_three_dims),
        Mistake("weight and bias swapped", "scale by weight (γ), then add bias (β): x̂ · weight + bias.",
                lambda x, weight, bias, eps=1e-5: F.layer_norm(x, x.shape[-1:], None, None, eps) * bias + weight),
        Mistake("bias added before the weight", "scale first, then shift: x̂ · weight + bias, not (x̂ + bias) · weight.",
                lambda x, weight, bias, eps=1e-5: (F.layer_norm(x, x.shape[-1:], None, None, eps) + bias) * weight),
        Mistake("weight (γ) not applied", "multiply the normalised x̂ by weight before adding bias.",
                lambda x, weight, bias, eps=1e-5: F.layer_norm(x, x.shape[-1:], None, bias, eps)),
        Mistake("bias (β) not added", "add bias after scaling by weight: x̂ · weight + bias.",
                lambda x, weight, bias, eps=1e-5: F.layer_norm(x, x.shape[-1:], weight, None, eps)),
        one_pass,
    )

    @staticmethod
    def reference(x, weight, bias, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)

    def test_worked_example(self, student):
        """worked example: [1, 2, 3, 4] normalises to ±1.342, ±0.447"""
        self.expect(student, torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.ones(4), torch.zeros(4))

    def test_batched_float32(self, student):
        """(B, T, C) = (2, 5, 12) with weight and bias, float32"""
        self.expect(student, randn(2, 5, 12, seed=1, scale=3.0, shift=1.0), randn(12, seed=2), randn(12, seed=3))

    def test_rows_float64(self, student):
        """(7, 6) float64 with a custom eps = 1e-3"""
        self.expect(student, randn(7, 6, seed=4, dtype=torch.float64), randn(6, seed=5, dtype=torch.float64),
                    randn(6, seed=6, dtype=torch.float64), eps=1e-3)

    def test_leading_dims(self, student):
        """x (2, 3, 4, 10): any number of leading dims, float64"""
        self.expect(student, randn(2, 3, 4, 10, seed=16, dtype=torch.float64, shift=-2.0), randn(10, seed=17, dtype=torch.float64),
                    randn(10, seed=18, dtype=torch.float64))

    def test_small_features(self, student):
        """stability: features of size 0.01, where eps matters (float64)"""
        self.expect(student, randn(3, 4, 8, seed=7, dtype=torch.float64, scale=0.01), randn(8, seed=8, dtype=torch.float64),
                    randn(8, seed=9, dtype=torch.float64))

    def test_constant_features(self, student):
        """stability: a token whose features are all equal gives the bias (no nan)"""
        x = randn(3, 5, seed=10)
        x[1] = 2.5
        self.expect(student, x, randn(5, seed=11), randn(5, seed=12))

    def test_large_offset_float32(self, student):
        """stability: features 1e4 + N(0, 1) in float32, where E[x²] − E[x]² cancels"""
        z = torch.round(randn(4, 6, 16, seed=13, dtype=torch.float64) * 64) / 64      # steps of 1/64: 1e4 + z, its sums over 16
        x, weight, bias = (z + 1e4).float(), randn(16, seed=14), randn(16, seed=15)   # features and their mean are exact in float32
        try:
            self.expect(student, x, weight, bias)
        except CheckFailed as failure:
            if failure.mistake is None and self._right(student, z.float(), weight, bias):
                raise CheckFailed(f"{failure}; the same features without the offset 1e4 give the right result, so the variance lost its "
                                  "digits: E[x²] − μ² is about 1e8 − 1e8 in float32", self.one_pass) from None
            raise

    def _right(self, student, *args):
        try:
            self.expect(student, *args)
        except CheckFailed:
            return False
        return True


def _attention_mistake(name, fix, **options):
    """A mistake of causal_self_attention: the reference with one wrong `option` (see _self_attention)."""
    return Mistake(name, fix, lambda x, params, n_head: _self_attention(x, params, n_head, **options))


class TestCausalSelfAttention(_ModelExercise):
    function = "causal_self_attention"
    forbidden = ATTENTION_APIS
    substitutes = ("attention",)
    mistakes = (
        _attention_mistake("no causal mask", "call attention(q, k, v, causal=True): position t must not see positions after t.",
                           causal=False),
        _attention_mistake("future positions filled with 0 instead of −inf", "a score of 0 still gets weight e⁰ = 1: fill the scores of keys j > t with float('-inf') before the softmax.",
                           attend=_hand_attention("mask with 0")),
        _attention_mistake("mask applied after the softmax (weights no longer sum to 1)", "mask the scores with −inf before the softmax, so each row of weights sums to 1 over keys 0..t.",
                           attend=_hand_attention("mask after softmax")),
        _attention_mistake("softmax over the query axis", "each query's weights are a distribution over the keys: softmax over the last dim (dim=-1) of the (T_q, T_k) scores.",
                           attend=_hand_attention("softmax over queries")),
        _attention_mistake("diagonal masked too (position t cannot see itself)", "mask keys j > t only: torch.triu(ones, diagonal=1), or keep tril(ones) as the allowed keys.",
                           attend=_hand_attention("diagonal masked")),
        _attention_mistake("heads split with reshape, without transpose", "view (B, T, C) as (B, T, n_head, hs), then transpose(1, 2) to (B, n_head, T, hs); reshaping straight to (B, n_head, T, hs) mixes positions into heads.",
                           split="reshape", merge="reshape"),
        _attention_mistake("heads merged without transposing back", "the output (B, n_head, T, hs) must be transposed to (B, T, n_head, hs) before reshaping to (B, T, C).",
                           merge="reshape"),
        _attention_mistake("heads merged channel by channel (stacked on the last dim)", "head h writes channels h·hs .. (h+1)·hs − 1: concatenate the heads (torch.cat(heads, dim=-1)), do not stack them on a new last dim.",
                           merge="interleave"),
        _attention_mistake("q, k, v split inside each head", "the rows of W_qkv are [q | k | v] for the whole model: split the (B, T, 3C) projection into three (B, T, C) tensors first, then each into heads.",
                           split="per head"),
        _attention_mistake("n_head ignored (one head of size C)", "split q, k, v into n_head heads of size C // n_head and attend in each head separately.",
                           split="none"),
        Mistake("scores scaled by √C instead of √head_size", "inside a head d_k is the head size C // n_head: scale by 1/√(C // n_head).",
                lambda x, params, n_head: _self_attention(x, params, n_head, scale=1.0 / math.sqrt(x.shape[-1]))),
        _attention_mistake("q, k, v taken in the wrong order", "the rows of W_qkv are [q | k | v]: the first C outputs are q, the next C are k, the last C are v.",
                           order=(1, 0, 2)),
        _attention_mistake("output projection missing", "finish with y @ W_projᵀ + b_proj.",
                           project=False),
        _attention_mistake("W_proj not transposed (y @ W_proj)", "like every weight here W_proj is (out, in): y @ W_proj.T + b_proj.",
                           proj_transposed=True),
        _attention_mistake("b_qkv not added", "the q, k, v projection has a bias: x @ W_qkv.T + b_qkv.",
                           qkv_bias=False),
        _attention_mistake("b_proj not added", "the output projection has a bias: y @ W_proj.T + b_proj.",
                           proj_bias=False),
    )

    @staticmethod
    def reference(x, params, n_head):
        return _self_attention(x, params, n_head)

    def test_future_tokens_do_not_leak(self, student):
        """causality: changing the inputs after position 3 leaves outputs 0..3 unchanged"""
        x, params = randn(2, 7, 12, seed=28, dtype=torch.float64), _attention_params(12, seed=29, dtype=torch.float64)
        changed = x.clone()
        changed[:, 4:] += 5.0
        _expect_causal(self, student, (x, params, 3), (changed, params, 3), 4, "positions 4..6 of x")

    def test_worked_example(self, student):
        """worked example: with q = k = 0 each position averages the values of positions 0..t"""
        C = 4
        params = {"W_qkv": torch.cat([torch.zeros(2 * C, C), torch.eye(C)]), "b_qkv": torch.zeros(3 * C),
                  "W_proj": torch.eye(C), "b_proj": torch.zeros(C)}
        self.expect(student, torch.arange(12.0).view(1, 3, C), params, 2)

    def test_three_heads_float32(self, student):
        """(B, T, C) = (2, 5, 12), 3 heads of size 4, float32"""
        self.expect(student, randn(2, 5, 12, seed=20), _attention_params(12, seed=21), 3)

    def test_two_heads_float64(self, student):
        """(3, 7, 8), 2 heads of size 4, float64"""
        self.expect(student, randn(3, 7, 8, seed=22, dtype=torch.float64), _attention_params(8, seed=23, dtype=torch.float64), 2)

    def test_one_head(self, student):
        """n_head = 1: a single head of size C"""
        self.expect(student, randn(2, 4, 6, seed=24, dtype=torch.float64), _attention_params(6, seed=25, dtype=torch.float64), 1)

    def test_block_params_dict(self, student):
        """params may be a whole block's dict (extra keys are ignored), T = 1"""
        self.expect(student, randn(2, 1, 12, seed=26), block_inputs(12, seed=27), 4)


def _attention_params(C, seed, dtype=torch.float32):
    block = block_inputs(C, seed, dtype)
    return {key: block[key] for key in ("W_qkv", "b_qkv", "W_proj", "b_proj")}


def _block_mistake(name, fix, **options):
    """A mistake of transformer_block: the reference block with one wrong `option` (see _block)."""
    return Mistake(name, fix, lambda x, params, n_head: _block(x, params, n_head, **options))


class TestTransformerBlock(_ModelExercise):
    function = "transformer_block"
    forbidden = MODEL_APIS
    substitutes = ("attention", "layer_norm", "causal_self_attention")
    mistakes = (
        _block_mistake("post-LN instead of pre-LN", "normalise the input of each sublayer, not its output: x + attn(ln1(x)), then x + mlp(ln2(x)).",
                       pre_ln=False),
        _block_mistake("residual added to the normalised input", "the residual stream is x itself: x = x + attn(ln1(x)), not h = ln1(x); h + attn(h) (and the same for the MLP).",
                       residual="normalised"),
        _block_mistake("no residual around attention", "add the attention output to x: x = x + causal_self_attention(ln1(x)).",
                       attn_residual=False),
        _block_mistake("no residual around the MLP", "add the MLP output to x: x = x + mlp(ln2(x)).",
                       mlp_residual=False),
        _block_mistake("the block returns only the updates (x not added)", "return the residual stream x + attention + MLP, not the two updates alone.",
                       returns="updates"),
        _block_mistake("attention update dropped from the output", "return (x + a) + mlp(ln2(x + a)), with a the attention output: the MLP adds to the updated stream, not to the block's input.",
                       returns="input"),
        _block_mistake("MLP reads the block input, not x + attention (parallel block)", "the sublayers run one after the other: the MLP reads ln2(x + attention(...)).",
                       parallel=True),
        _block_mistake("ln1 used before the MLP too", "the MLP has its own layer norm: ln2_w, ln2_b.",
                       ln2="ln1"),
        _block_mistake("layer norms swapped (ln2 before attention, ln1 before the MLP)", "ln1 belongs to the attention, ln2 to the MLP.",
                       ln1="ln2", ln2="ln1"),
        _block_mistake("no layer norm before attention", "the attention reads ln1(x), not x.",
                       ln1=None),
        _block_mistake("no layer norm before the MLP", "the MLP reads ln2(x), not x.",
                       ln2=None),
        _block_mistake("ReLU instead of GELU", "the MLP's activation is GELU (F.gelu).",
                       act="relu"),
        _block_mistake("tanh approximation of GELU", "use the exact GELU x·Φ(x) (F.gelu's default), not approximate='tanh'.",
                       act="tanh"),
        _block_mistake("no activation in the MLP", "apply F.gelu between the two linear maps: gelu(h @ W_up.T + b_up) @ W_down.T + b_down.",
                       act="none"),
        _block_mistake("GELU applied after the down projection too", "the MLP has one activation, between W_up and W_down; its output goes into the residual stream as it is.",
                       act_out=True),
        _block_mistake("b_up not added", "the first MLP layer has a bias: h @ W_up.T + b_up.",
                       up_bias=False),
        _block_mistake("b_down not added", "the second MLP layer has a bias: ... @ W_down.T + b_down.",
                       down_bias=False),
    )

    @staticmethod
    def reference(x, params, n_head):
        return _block(x, params, n_head)

    def test_zero_updates_are_the_identity(self, student):
        """worked example: with zero output projections both updates vanish and the block returns x"""
        params = block_inputs(8, seed=30)
        for key in ("W_proj", "b_proj", "W_down", "b_down"):
            params[key] = torch.zeros_like(params[key])
        self.expect(student, randn(2, 3, 8, seed=31), params, 2)

    def test_three_heads_float32(self, student):
        """(B, T, C) = (2, 5, 12), 3 heads, float32"""
        self.expect(student, randn(2, 5, 12, seed=32), block_inputs(12, seed=33), 3)

    def test_two_heads_float64(self, student):
        """(1, 7, 8), 2 heads, float64"""
        self.expect(student, randn(1, 7, 8, seed=34, dtype=torch.float64), block_inputs(8, seed=35, dtype=torch.float64), 2)

    def test_large_residual_stream(self, student):
        """inputs of size 20 (layer norm rescales them before each sublayer), float64"""
        self.expect(student, randn(2, 4, 8, seed=36, dtype=torch.float64, scale=20.0), block_inputs(8, seed=37, dtype=torch.float64), 4)


class TestGptForward(_ModelExercise):
    function = "gpt_forward"
    forbidden = MODEL_APIS
    substitutes = MODEL_PARTS
    mistakes = (
        Mistake("no position embeddings", "add pos_emb[:T] to the token embeddings: without it the model cannot tell positions apart.",
                lambda idx, params, config: _forward(idx, params, config, positions=None)),
        Mistake("position embeddings taken from the end of the table", "position t uses row t: add pos_emb[:T], not the last T rows.",
                lambda idx, params, config: _forward(idx, params, config, positions="last")),
        Mistake("positions counted from 1 (pos_emb[1:T + 1])", "positions start at 0: the first token gets row 0, so add pos_emb[:T].",
                lambda idx, params, config: _forward(idx, params, config, positions="from one")),
        Mistake("position embeddings indexed by the token ids", "pos_emb is indexed by the position t = 0..T-1, not by the token: pos_emb[:T] (or pos_emb[torch.arange(T)]).",
                lambda idx, params, config: _forward(idx, params, config, positions="token ids")),
        Mistake("whole position table added (pos_emb, not pos_emb[:T])", "a sequence of T < block_size tokens uses the first T rows: pos_emb[:T].",
                lambda idx, params, config: _forward(idx, params, config, positions="whole table")),
        Mistake("lm_head used as the token embedding", "the tokens are looked up in tok_emb: tok_emb[idx]; lm_head is the output matrix.",
                lambda idx, params, config: _forward(idx, params, config, embedding="lm_head")),
        Mistake("token embedding used as the lm head", "this model has its own output matrix: logits = x @ params['lm_head'].T.",
                lambda idx, params, config: _forward(idx, params, config, head="tok_emb")),
        Mistake("no final layer norm", "apply layer_norm(x, lnf_w, lnf_b) after the last block, before the lm head.",
                lambda idx, params, config: _forward(idx, params, config, final_ln=False)),
        Mistake("final layer norm applied after every block", "the blocks normalise their own inputs; lnf is applied once, after the last block.",
                lambda idx, params, config: _forward(idx, params, config, final_ln="after every block")),
        Mistake("final layer norm applied to the embeddings, before the blocks", "apply lnf once after the last block, just before the lm head.",
                lambda idx, params, config: _forward(idx, params, config, final_ln="before the blocks")),
        Mistake("blocks applied in reverse order", "run block0, block1, ... in increasing order.",
                lambda idx, params, config: _forward(idx, params, config, reverse=True)),
        Mistake("block 0 applied at every layer", "layer l uses its own weights: block_params(params, l).",
                lambda idx, params, config: _forward(idx, params, config, block=0)),
        Mistake("returned probabilities instead of logits", "return the logits x @ lm_headᵀ; the softmax belongs to the loss and to sampling.",
                lambda idx, params, config: _forward(idx, params, config, output="probabilities")),
        Mistake("returned log-probabilities instead of logits", "return the logits x @ lm_headᵀ unnormalised; cross_entropy takes the log-softmax itself.",
                lambda idx, params, config: _forward(idx, params, config, output="log-probabilities")),
        Mistake("logits of the last position only", "return the logits of every position, (B, T, V): training predicts the next token at each of them.",
                lambda idx, params, config: _forward(idx, params, config, output="last position")),
    )

    @staticmethod
    def reference(idx, params, config):
        return _forward(idx, params, config)

    def test_future_tokens_do_not_leak(self, student):
        """causality: changing tokens after position 2 leaves the logits of positions 0..2 unchanged"""
        idx, params = tokens(2, 7, seed=48), model_params(CONFIG, seed=49, dtype=torch.float64)
        changed = idx.clone()
        changed[:, 3:] = (changed[:, 3:] + 1) % CONFIG["vocab_size"]
        _expect_causal(self, student, (idx, params, CONFIG), (changed, params, CONFIG), 3, "tokens 3..6")

    def test_full_context_float32(self, student):
        """(B, T) = (2, 8) = block_size, 2 layers of 3 heads, V = 11, float32"""
        self.expect(student, tokens(2, 8, seed=40), model_params(CONFIG, seed=41), CONFIG)

    def test_short_context_float64(self, student):
        """T = 5 < block_size, float64"""
        self.expect(student, tokens(3, 5, seed=42), model_params(CONFIG, seed=43, dtype=torch.float64), CONFIG)

    def test_one_token(self, student):
        """a single token (B, T) = (1, 1)"""
        self.expect(student, tokens(1, 1, seed=44), model_params(CONFIG, seed=45, dtype=torch.float64), CONFIG)

    def test_one_layer_two_heads(self, student):
        """another config: 1 layer, 2 heads, C = 8, V = 5 < block_size = 6"""
        config = dict(CONFIG, vocab_size=5, n_layer=1, n_head=2, n_embd=8, block_size=6)
        self.expect(student, tokens(2, 6, seed=46, vocab=5), model_params(config, seed=47, dtype=torch.float64), config)

def _step_mistake(name, fix, **options):
    """A mistake of train_step: the reference step with one of its wrong `options`."""
    return Mistake(name, fix, lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, **options))


class TestTrainStep(Exercise):
    function = "train_step"
    forbidden = TRAINING_APIS
    substitutes = TRAINING_PARTS
    mistakes = (
        _step_mistake("the old optimizer state returned", "return the new states adamw_step gives back (a dict name -> state), not the opt_state you were given.",
                      old_state=True),
        _step_mistake("optimizer state ignored (a fresh AdamW state every step)", "pass opt_state[name] (or {} when it is missing) to adamw_step, and return the states it gives back.",
                      fresh_state=True),
        _step_mistake("loss computed against x instead of y (targets not shifted)", "the targets are y, the inputs shifted by one: cross_entropy(logits, y), not x.",
                      loss="targets x"),
        _step_mistake("loss summed over the batch (B × the mean)", "one cross_entropy call on all B*T positions: logits.reshape(-1, V) against y.reshape(-1), not a sum over the B rows.",
                      loss="sum over the batch"),
        _step_mistake("loss summed over positions (mean over the batch only)", "one cross_entropy call on all B*T positions: logits.reshape(-1, V) against y.reshape(-1), not a sum over the T positions.",
                      loss="sum over positions"),
        _step_mistake("loss on the last position only", "every position t predicts y[:, t]: use all B*T positions, not logits[:, -1].",
                      loss="last position"),
        _step_mistake("logits flattened in a different order than the targets", "flatten (B, T, V) to (B*T, V) directly (logits.reshape(-1, V)); a transpose first pairs logits with the wrong targets.",
                      loss="flattened from (B, V, T)"),
        _step_mistake("learning-rate schedule not applied (constant max_lr)", "use lr = warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps) for this step.",
                      schedule="constant"),
        _step_mistake("learning rate of the next step (step + 1)", "steps count from 0: step s uses warmup_cosine_lr(s, ...).",
                      schedule="next step"),
        _step_mistake("warmup_steps and total_steps swapped in the schedule", "the order is warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps).",
                      schedule="warmup and total swapped"),
        _step_mistake("max_lr and min_lr swapped in the schedule", "the order is warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps).",
                      schedule="max and min swapped"),
        _step_mistake("weight decay on every parameter", "decay only tensors with 2 or more dims (matrices, embeddings); biases and layer-norm weights get weight_decay=0.",
                      decay="all"),
        _step_mistake("no weight decay", "pass weight_decay=config['weight_decay'] to adamw_step for tensors with 2 or more dims.",
                      decay="none"),
        _step_mistake("weight decay on the 1-D tensors instead of the matrices", "the condition is p.dim() >= 2: matrices and embeddings decay, biases and layer-norm weights do not.",
                      decay="vectors"),
        _step_mistake("embeddings excluded from weight decay", "in this course every tensor with 2 or more dims decays, tok_emb and pos_emb included.",
                      decay="no embeddings"),
        _step_mistake("layer-norm weights decayed", "decide by the number of dims, not by the name: ln*_w are 1-D and get weight_decay=0.",
                      decay="layer-norm weights too"),
        _step_mistake("AdamW betas not taken from config", "pass betas=config['betas'] to adamw_step (its default (0.9, 0.999) is not this model's setting).",
                      betas=(0.9, 0.999)),
        _step_mistake("AdamW eps not taken from config", "pass eps=config['eps'] to adamw_step (its default 1e-8 is not this model's setting).",
                      eps=1e-8),
    )

    @staticmethod
    def reference(params, opt_state, x, y, step, config):
        return _train_step(params, opt_state, x, y, step, config)

    def test_first_step_float64(self, student):
        """first step (fresh state, warmup), float64, against F.cross_entropy + torch.optim.AdamW"""
        self.expect(student, model_params(CONFIG, seed=50, dtype=torch.float64), {}, tokens(3, 8, seed=51), tokens(3, 8, seed=52), 0, CONFIG)

    def test_later_step_with_state_float64(self, student):
        """step 6 (cosine phase) continuing from an AdamW state, float64"""
        params, state = _warm_start(CONFIG, seed=53, steps=3, dtype=torch.float64)
        self.expect(student, params, state, tokens(3, 6, seed=54), tokens(3, 6, seed=55), 6, CONFIG)

    def test_warmup_step_with_state_float32(self, student):
        """step 2 (warmup) with state, float32"""
        params, state = _warm_start(CONFIG, seed=56, steps=2, dtype=torch.float32)
        self.expect(student, params, state, tokens(2, 8, seed=57), tokens(2, 8, seed=58), 2, CONFIG)

    def test_after_the_schedule(self, student):
        """a step after total_steps uses min_lr, float64"""
        params, state = _warm_start(CONFIG, seed=59, steps=1, dtype=torch.float64)
        self.expect(student, params, state, tokens(3, 4, seed=60), tokens(3, 4, seed=61), 15, CONFIG)


def _warm_start(config, seed, steps, dtype):
    """Weights and an AdamW state after a few reference steps: a realistic mid-training input."""
    params, state = model_params(config, seed=seed, dtype=torch.float64), {}
    for step in range(steps):
        params, state, _ = _train_step(params, state, tokens(2, 8, seed=seed + 10 * step + 1), tokens(2, 8, seed=seed + 10 * step + 2), step, config)
    cast = {name: value.to(dtype) for name, value in params.items()}
    return cast, {name: {"step": s["step"], "exp_avg": s["exp_avg"].to(dtype), "exp_avg_sq": s["exp_avg_sq"].to(dtype)} for name, s in state.items()}


def _loop_mistake(name, fix, mistake):
    """A mistake of train: the reference loop with one wrong `mistake` (see _train)."""
    return Mistake(name, fix, lambda params, data, config, steps, seed=0: _train(params, data, config, steps, seed, mistake=mistake))


class TestTrain(Exercise):
    function = "train"
    forbidden = TRAINING_APIS
    substitutes = (*TRAINING_PARTS, "train_step")
    mistakes = (
        _loop_mistake("the new parameters are dropped (the model never changes)", "keep what train_step returns: params, opt_state, loss = train_step(params, opt_state, ...).",
                      "dropped"),
        _loop_mistake("the initial params returned, not the trained ones", "return the parameters after the last step (the ones the loop keeps feeding to train_step).",
                      "initial params"),
        _loop_mistake("the same batch every step", "draw a new batch with get_batch inside the loop, from one generator created before it.",
                      "same batch"),
        _loop_mistake("the generator re-seeded every step (seed + step)", "create one generator torch.Generator().manual_seed(seed) before the loop; get_batch advances it.",
                      "reseeded"),
        _loop_mistake("seed argument ignored (generator seeded with a constant)", "seed the generator with the `seed` argument: torch.Generator().manual_seed(seed).",
                      "constant seed"),
        _loop_mistake("block_size and batch_size swapped in get_batch", "the order is get_batch(data, config['block_size'], config['batch_size'], generator): x is (batch_size, block_size).",
                      "sizes swapped"),
        _loop_mistake("optimizer state reset every step", "pass the opt_state returned by the previous step (start from {} once, before the loop).",
                      "reset"),
        _loop_mistake("step counter stuck at 0 (the learning rate never leaves its first warmup value)", "pass the loop index step = 0, 1, ..., steps - 1 to train_step.",
                      "stuck"),
        _loop_mistake("steps counted from 1", "the first step is step 0 (its learning rate is max_lr / warmup_steps).",
                      "from one"),
        _loop_mistake("one step too few (range(1, steps))", "loop over range(steps): steps 0, 1, ..., steps - 1, one loss each.",
                      "from range 1"),
        _loop_mistake("loss recorded after the update", "record the loss train_step returns: the loss of the parameters before the update, on this step's batch.",
                      "loss after the update"),
        _loop_mistake("losses list reset inside the loop (only the last loss returned)", "create losses = [] once, before the loop, and append to it at every step.",
                      "losses reset"),
    )
    tensor_losses = Mistake("losses returned as tensors, not Python floats", "append float(loss) (or loss.item()): train returns a list of Python floats.")

    @staticmethod
    def reference(params, data, config, steps, seed=0):
        return _train(params, data, config, steps, seed)

    def test_returns_python_floats(self, student):
        """train returns (params, losses): a dict of tensors and a list of `steps` Python floats"""
        self._check_result(self.call(student, model_params(CONFIG, seed=74), tokens(40, seed=75), CONFIG, 2, seed=1), 2)

    def test_three_steps_float32(self, student):
        """3 steps on random text, float32, against the float64 reference loop"""
        self.expect(student, model_params(CONFIG, seed=70), tokens(60, seed=71), CONFIG, 3, seed=0)

    def test_five_steps_other_seed_float64(self, student):
        """5 steps with seed 4 (the batches come from one generator seeded with it), float64"""
        self.expect(student, model_params(CONFIG, seed=72, dtype=torch.float64), tokens(40, seed=73), CONFIG, 5, seed=4)

    def test_whole_schedule_on_the_sonnets(self, student):
        """200 steps on the sonnets (a small model, float64: the whole warmup and cosine decay) match the reference loop at every step"""
        params, data, config, want = sonnets_run()
        problem = difference(self.call(student, params, data, config, SONNETS_STEPS, seed=0), want, torch.float64)
        if problem:   # a loop mistake is named by the short runs above; its 200-step run would cost a run per mistake
            raise CheckFailed(f"train(init_params(config, seed=0), the sonnets, config with n_embd 8 and block_size 8, {SONNETS_STEPS}, "
                              f"seed=0): {problem}")

    def _check_result(self, result, steps):
        """The result is (params dict, list of `steps` Python floats), as the notebook states."""
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict)):
            raise CheckFailed("train should return (params, losses): a dict of tensors and a list of floats")
        losses = result[1]
        if not isinstance(losses, list) or len(losses) != steps:
            raise CheckFailed(f"train(..., steps={steps}) should return a list of {steps} losses, got {type(losses).__name__} of length "
                              f"{len(losses) if hasattr(losses, '__len__') else '?'}")
        wrong = next((i for i, loss in enumerate(losses) if not isinstance(loss, float)), None)
        if wrong is not None:
            raise CheckFailed(f"train(..., steps={steps}): losses[{wrong}] is a {type(losses[wrong]).__name__}, not a Python float",
                              self.tensor_losses if isinstance(losses[wrong], torch.Tensor) else None)


# -- held-out text --------------------------------------------------------------------------------
def _cut(data, n):
    """(data[:n], data[n:]): the training text and the held-out text at boundary n."""
    return data[:n], data[n:]


def _boundary(data, val_fraction):
    """The notebook's boundary: the first int(N · (1 − val_fraction)) tokens are the training text."""
    return int(len(data) * (1 - val_fraction))


class TestSplitData(Exercise):
    function = "split_data"
    shuffled = Mistake("characters shuffled before splitting", "hold out one contiguous piece, the end of the text, in order: data[:n] and data[n:]. "
                       "Characters picked at random sit inside training text, so their loss is not a held-out loss.")
    mistakes = (
        Mistake("fraction inverted (val_fraction of the text kept for training)", "val_fraction is the held-out share: n = int(len(data) * (1 - val_fraction)), train = data[:n].",
                lambda data, val_fraction: _cut(data, int(len(data) * val_fraction))),
        Mistake("parts returned in the wrong order (val, train)", "return (train, val): the start of the text first, then the held-out end.",
                lambda data, val_fraction: _cut(data, _boundary(data, val_fraction))[::-1]),
        Mistake("held-out text taken from the start", "hold out the end of the text: train = data[:n], val = data[n:].",
                lambda data, val_fraction: _cut(data, len(data) - _boundary(data, val_fraction))[::-1]),
        Mistake("boundary rounded up (one token too many for training)", "round the boundary down, n = int(len(data) * (1 - val_fraction)); "
                "int(len(data) * val_fraction) for the held-out size, or round(...), moves it up by one when N(1 − f) is not a whole number.",
                lambda data, val_fraction: _cut(data, len(data) - int(len(data) * val_fraction))),
        Mistake("boundary token in both parts (val starts one token early)", "val = data[n:] starts where train = data[:n] stops: no token in both.",
                lambda data, val_fraction: (data[:_boundary(data, val_fraction)], data[_boundary(data, val_fraction) - 1:])),
        Mistake("boundary token dropped (val starts one token late)", "val = data[n:] starts right where train = data[:n] stops: every token in one part.",
                lambda data, val_fraction: (data[:_boundary(data, val_fraction)], data[_boundary(data, val_fraction) + 1:])),
        Mistake("parts returned as Python lists", "slice the tensor, data[:n] and data[n:]: the parts stay tensors of the dtype of data.",
                lambda data, val_fraction: tuple(part.tolist() for part in _cut(data, _boundary(data, val_fraction)))),
        shuffled,
    )

    @staticmethod
    def reference(data, val_fraction):
        return _cut(data, _boundary(data, val_fraction))

    def test_worked_example(self, student):
        """worked example: tokens 10..19, val_fraction 0.25: the boundary is int(7.5) = 7"""
        self._expect_split(student, torch.arange(10, 20), 0.25)

    def test_order_kept(self, student):
        """37 distinct tokens (a permutation of 0..36), val_fraction 0.3 (boundary int(25.9) = 25): both parts in the order of the text"""
        self._expect_split(student, torch.randperm(37, generator=seeded(300)), 0.3)

    def test_sonnets_length(self, student):
        """6866 tokens (the sonnets' length), val_fraction 0.1: 6179 for training, 687 held out"""
        self._expect_split(student, tokens(6866, seed=301, vocab=59), 0.1)

    def test_large_fraction(self, student):
        """15 tokens, val_fraction 0.75: 3 for training (int(3.75)), 12 held out"""
        self._expect_split(student, tokens(15, seed=302), 0.75)

    def test_float32_values(self, student):
        """any 1-D tensor: 23 float32 values, val_fraction 0.2 (boundary int(18.4) = 18)"""
        self._expect_split(student, randn(23, seed=303), 0.2)

    def test_float64_values(self, student):
        """31 float64 values, val_fraction 0.45 (boundary int(17.05) = 17)"""
        self._expect_split(student, randn(31, seed=304, dtype=torch.float64), 0.45)

    def _expect_split(self, student, data, val_fraction):
        """expect, and when no known mistake explains a wrong result: the parts hold every token once, but not in order?"""
        try:
            self.expect(student, data, val_fraction)
        except CheckFailed as failure:
            if failure.mistake is None and self._reordered(student, data, val_fraction):
                raise CheckFailed(f"{failure}; the two parts hold the tokens of data, but not in the order of the text", self.shuffled) from None
            raise

    def _reordered(self, student, data, val_fraction):
        try:
            got = self.call(student, data, val_fraction)
        except CheckFailed:
            return False
        if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(part, torch.Tensor) and part.dim() == 1 for part in got)):
            return False
        joined = torch.cat([part.to(data.dtype) for part in got])
        return joined.shape == data.shape and not torch.equal(joined, data) and torch.equal(joined.sort().values, data.sort().values)


def _held_out(params, data, config, mistake=None):
    """(L, e^L): the mean cross-entropy over the N − 1 targets in consecutive blocks of block_size (the last one shorter),
    with F.cross_entropy; `mistake` names a wrong version."""
    T, N = config["block_size"], len(data)
    if mistake == "chunks":                                                         # chunks of T characters, each x = c[:-1], y = c[1:]
        blocks = [(chunk[:-1], chunk[1:]) for chunk in data.split(T) if len(chunk) > 1]
    else:
        blocks = [(data[s:min(s + T, N - 1)], data[s + 1:s + T + 1]) for s in range(0, N - 1, T)]
    if mistake == "last dropped":
        blocks = [(x, y) for x, y in blocks if len(y) == T]
    if mistake == "not shifted":
        blocks = [(x, x) for x, _ in blocks]
    nll = [F.cross_entropy(_forward(x[None], params, config)[0], y, reduction="none") for x, y in blocks]   # per block (len,)
    every = torch.cat(nll)                                                          # (N - 1,): one per target
    loss = {"mean of block means": lambda: torch.stack([n.mean() for n in nll]).mean(),
            "mean of block means and perplexities": lambda: torch.stack([n.mean() for n in nll]).mean(),
            "summed": every.sum, "divided by N": lambda: every.sum() / N}.get(mistake, every.mean)()
    if mistake in ("bits", "bits with e"):
        bits = loss / math.log(2)
        return bits, (2 ** bits if mistake == "bits" else bits.exp())
    perplexity = {"perplexity of the sum": lambda: every.sum().exp(), "perplexity 2 ** loss": lambda: 2 ** loss,
                  "mean of block means and perplexities": lambda: torch.stack([n.mean().exp() for n in nll]).mean()}.get(mistake, loss.exp)()
    return loss, perplexity


def _held_out_mistake(name, fix, mistake):
    return Mistake(name, fix, lambda params, data, config: _held_out(params, data, config, mistake))


def _context_free(config, seed, dtype):
    """Test weights whose logits ignore the context: lnf_w = 0, so the final layer norm outputs lnf_b at every position."""
    params = model_params(config, seed=seed, dtype=dtype, head_scale=3.0)
    params["lnf_w"] = torch.zeros_like(params["lnf_w"])
    params["lnf_b"] = randn(config["n_embd"], seed=seed + 1, dtype=dtype)
    return params


class TestHeldOutLoss(Exercise):
    function = "held_out_loss"
    forbidden = LOSS_APIS
    substitutes = (*MODEL_PARTS, "gpt_forward", "cross_entropy")
    mistakes = (
        _held_out_mistake("targets not shifted (each character predicts itself)", "the targets are the inputs shifted by one: block i reads data[iT : iT + T] and predicts data[iT + 1 : iT + T + 1].",
                          "not shifted"),
        _held_out_mistake("shorter last block dropped", "include the last block of the (N − 1) mod block_size remaining targets: every character but the first is a target once.",
                          "last dropped"),
        _held_out_mistake("mean of the block means (a short last block weighs as much as a full one)", "average over characters, not blocks: weigh each block's mean by its number of targets, or call cross_entropy once on all N − 1 targets.",
                          "mean of block means"),
        _held_out_mistake("mean of the block means (a short last block weighs as much as a full one)", "average over characters, not blocks, and take the perplexity e^L of that mean, not the mean of the blocks' perplexities.",
                          "mean of block means and perplexities"),
        _held_out_mistake("chunks of block_size characters (the first character of each chunk is never a target)", "block i reads x = data[iT : iT + T] and predicts y = data[iT + 1 : iT + T + 1]: the character after a block is its last target, so the blocks' targets cover data[1:].",
                          "chunks"),
        _held_out_mistake("divided by N characters instead of the N − 1 targets", "the first character is never predicted: divide the summed loss by len(data) − 1, the number of targets.",
                          "divided by N"),
        _held_out_mistake("loss summed over the targets, not averaged", "L is the mean over the N − 1 targets (nats per character), not their sum.",
                          "summed"),
        _held_out_mistake("loss in bits (log base 2) instead of nats", "use the natural log, like cross_entropy: L in nats, perplexity e^L.",
                          "bits"),
        _held_out_mistake("loss in bits (log base 2) instead of nats", "use the natural log, like cross_entropy: L in nats, perplexity e^L.",
                          "bits with e"),
        _held_out_mistake("perplexity from the summed loss (e to the total, not to the mean)", "perplexity = e^L with L the mean loss per character: e to the sum grows with the length of the text.",
                          "perplexity of the sum"),
        _held_out_mistake("perplexity as 2 ** loss (the loss is in nats)", "the loss is in nats, so the perplexity is e^L = exp(L), not 2^L.",
                          "perplexity 2 ** loss"),
    )

    @staticmethod
    def reference(params, data, config):
        return _held_out(params, data, config)

    def test_context_free_worked_example(self, student):
        """worked example: a model that ignores its context, 20 tokens (blocks of 8, 8 and 3 targets), float32"""
        self.expect(student, _context_free(CONFIG, seed=310, dtype=torch.float32), tokens(20, seed=311), CONFIG)

    def test_blocks_and_shorter_block_float32(self, student):
        """30 tokens: blocks of 8, 8, 8 and 5 targets, 2 layers of 3 heads, float32"""
        self.expect(student, model_params(CONFIG, seed=312, head_scale=3.0), tokens(30, seed=313), CONFIG)

    def test_blocks_and_shorter_block_float64(self, student):
        """22 tokens: blocks of 8, 8 and 5 targets, float64"""
        self.expect(student, model_params(CONFIG, seed=314, dtype=torch.float64, head_scale=3.0), tokens(22, seed=315), CONFIG)

    def test_whole_blocks_only(self, student):
        """25 tokens: 24 targets, exactly 3 blocks of 8 (no shorter block), float64"""
        self.expect(student, model_params(CONFIG, seed=316, dtype=torch.float64, head_scale=3.0), tokens(25, seed=317), CONFIG)

    def test_shorter_than_one_block(self, student):
        """6 tokens: a single block of 5 targets, shorter than block_size = 8, float64"""
        self.expect(student, model_params(CONFIG, seed=318, dtype=torch.float64, head_scale=3.0), tokens(6, seed=319), CONFIG)

    def test_other_config(self, student):
        """another config (1 layer, 2 heads, C = 8, V = 5, block_size 6): 20 tokens, a last block of 1 target, float32"""
        config = dict(CONFIG, vocab_size=5, n_layer=1, n_head=2, n_embd=8, block_size=6)
        self.expect(student, model_params(config, seed=320, head_scale=3.0), tokens(20, seed=321, vocab=5), config)


def _decode_mistake(name, fix, **options):
    """A mistake of generate that greedy decoding shows: the reference decoder with one wrong option (see _greedy)."""
    return Mistake(name, fix, lambda params, idx, max_new_tokens, config, temperature=1.0, seed=None: _greedy(params, idx, max_new_tokens, config, **options))


def _tv(p, q):
    """Total variation distance between two distributions (or frequencies) of the same shape."""
    return 0.5 * (p - q).abs().sum().item()


def _pair_distributions(params, prompt, temperature):
    """P(a, b) = P(a | prompt) · P(b | prompt + a), (V, V), for the right sampler ("right") and for wrong ones (float64 model)."""
    model, V, T = {k: v.double() for k, v in params.items()}, CONFIG["vocab_size"], prompt.shape[1]
    first = _forward(prompt, model, CONFIG)[0]                                                     # (T, V)
    second = _forward(torch.cat([prompt.expand(V, T), torch.arange(V)[:, None]], 1), model, CONFIG)  # (V, T + 1, V): after each a

    def soft(z, t=temperature):
        return torch.softmax(z / t, -1)

    return {
        "right": soft(first[-1])[:, None] * soft(second[:, -1]),
        "temperature multiplied": soft(first[-1], 1 / temperature)[:, None] * soft(second[:, -1], 1 / temperature),
        "temperature ignored": soft(first[-1], 1.0)[:, None] * soft(second[:, -1], 1.0),
        "first position": soft(first[0])[:, None] * soft(second[:, 0]),
        "not fed back": soft(first[-1])[:, None] * soft(first[-1])[None, :],
        "softmax over the batch": torch.full((V, V), 1.0 / V ** 2, dtype=torch.float64),     # right for the first token only (identical rows)
    }


class TestGenerate(Exercise):
    function = "generate"
    substitutes = (*MODEL_PARTS, "gpt_forward")
    float_tokens = Mistake("tokens returned as floats, not int64", "build the output with torch.cat([idx, next_token], dim=1) (or preallocate it with dtype=torch.long).",
                           lambda params, idx, max_new_tokens, config, temperature=1.0, seed=None: _greedy(params, idx, max_new_tokens, config).to(torch.get_default_dtype()))
    mistakes = (
        _decode_mistake("next token predicted from the first position", "the prediction for the next token is at the last position: logits[:, -1, :].",
                        position=0),
        _decode_mistake("context cropped at the wrong end", "keep the last block_size tokens (idx[:, -block_size:]): they are the ones next to the new token.",
                        crop="first"),
        _decode_mistake("context cropped to block_size - 1 tokens", "the model reads up to block_size tokens: crop to idx[:, -block_size:].",
                        crop="short"),
        _decode_mistake("only the new tokens returned", "return the prompt followed by the new tokens: shape (B, T0 + max_new_tokens).",
                        keep_prompt=False),
        _decode_mistake("new tokens not fed back (every step reads the prompt)", "append each new token to idx and crop the context from the grown idx at the next step.",
                        feed=False),
        float_tokens,
        Mistake("temperature 0 not handled (logits divided by zero)", "when temperature == 0 take logits.argmax(-1) without dividing: softmax(logits / 0) is nan.",
                _sample_dividing_by_zero),
    )
    not_cropped = Mistake("context not cropped to block_size", "the model has pos_emb rows for block_size positions only: feed idx[:, -block_size:].")
    cropped_once = Mistake("context cropped once, before the loop", "crop at every step, inside the loop: the context grows by one token per step.")
    seed_ignored = Mistake("seed ignored (sampling from the global random state)", "create g = torch.Generator().manual_seed(seed) once and pass generator=g to torch.multinomial.")
    fixed_seed = Mistake("sampling does not depend on the seed", "seed your generator with the `seed` argument, not with a constant.")
    reseeded = Mistake("generator re-created for every token (all tokens share one random stream)", "create the generator once per call, before the loop, and draw every token from it.")
    shared_draw = Mistake("one random draw shared by all rows", "sample each row on its own: torch.multinomial(probs, 1, generator=g) draws one token per row of probs (B, V).")
    samplers = {
        "temperature multiplied": Mistake("temperature multiplied instead of divided", "sample from softmax(logits / temperature)."),
        "temperature ignored": Mistake("temperature ignored or applied after the softmax", "divide the logits by the temperature before the softmax: softmax(logits / temperature)."),
        "greedy": Mistake("always the most likely token (greedy) when temperature > 0", "sample from the probabilities (torch.multinomial) unless temperature == 0."),
        "first position": mistakes[0],
        "not fed back": mistakes[4],
        "softmax over the batch": Mistake("softmax over the batch dim instead of the vocabulary", "softmax(logits / temperature, dim=-1): each row of (B, V) is a distribution over the V tokens."),
    }

    @staticmethod
    def reference(params, idx, max_new_tokens, config, temperature=1.0, seed=None):
        assert temperature == 0, "the reference decodes greedily; sampling is checked by its distribution"
        return _greedy(params, idx, max_new_tokens, config)

    def test_greedy_float32(self, student):
        """temperature 0 is greedy: 5 tokens after a (2, 3) prompt, float32"""
        self.expect(student, model_params(CONFIG, seed=80, head_scale=3.0), tokens(2, 3, seed=81), 5, CONFIG, temperature=0.0)

    def test_greedy_past_block_size(self, student):
        """greedy past block_size: a prompt of 6 and 7 new tokens with block_size 8 (the context is cropped), float64"""
        params, idx = model_params(CONFIG, seed=82, dtype=torch.float64, head_scale=3.0), tokens(2, 6, seed=83)
        try:
            self.expect(student, params, idx, 7, CONFIG, temperature=0.0)
        except CheckFailed as failure:
            if "raised" in str(failure) and failure.mistake is None:
                if self._runs(student, params, tokens(2, 10, seed=84), 1):          # a long prompt is cropped, the grown context is not
                    raise CheckFailed(str(failure), self.cropped_once) from None
                if self._runs(student, params, idx[:, :2], 2):
                    raise CheckFailed(str(failure), self.not_cropped) from None
            raise

    def test_same_seed_same_text(self, student):
        """sampling with the same seed twice gives the same tokens"""
        params, idx = model_params(CONFIG, seed=84, head_scale=3.0), tokens(3, 2, seed=85)
        first, second = (self.call(student, params, idx, 12, CONFIG, temperature=1.0, seed=5) for _ in range(2))
        self._check_tokens(first, (3, 14), idx)
        if not torch.equal(first, second):
            raise CheckFailed("generate(..., temperature=1.0, seed=5) gave different tokens on two calls", self.seed_ignored)

    def test_seed_changes_the_text(self, student):
        """sampling with two different seeds gives different tokens"""
        params, idx = model_params(CONFIG, seed=86, head_scale=3.0), tokens(3, 2, seed=87)
        first, second = (self.call(student, params, idx, 12, CONFIG, temperature=1.0, seed=seed) for seed in (1, 2))
        self._check_tokens(first, (3, 14), idx)
        if torch.equal(first, second):
            raise CheckFailed("generate(..., temperature=1.0) gave the same 36 sampled tokens with seed=1 and seed=2", self.fixed_seed)

    def test_sampling_distribution_cold(self, student):
        """temperature 0.5: 4000 pairs of new tokens (a, b) follow P(a)·P(b | a) of softmax(logits / 0.5)"""
        self._check_pairs(student, 0.5, seed=88, head_scale=1.0)

    def test_sampling_distribution_hot(self, student):
        """temperature 2: 4000 pairs of new tokens (a, b) follow P(a)·P(b | a) of softmax(logits / 2)"""
        self._check_pairs(student, 2.0, seed=89, head_scale=3.0)

    def test_new_tokens_are_independent_draws(self, student):
        """a model that ignores its context (lnf_w = 0): the 3 new tokens of 2000 rows are independent draws from one distribution"""
        params = model_params(CONFIG, seed=93)
        params["lnf_w"] = torch.zeros_like(params["lnf_w"])                       # the final layer norm outputs lnf_b everywhere
        params["lnf_b"] = randn(CONFIG["n_embd"], seed=94, scale=2.0)
        p = torch.softmax(params["lnf_b"].double() @ params["lm_head"].double().T, -1)    # (V,): the same after any context
        new = self._sample(student, params, tokens(1, 3, seed=95), 2000, 3, 1.0, seed=96)  # (2000, 3)
        frequencies = torch.bincount(new.flatten(), minlength=CONFIG["vocab_size"]).double() / new.numel()
        distance, allowed = _tv(frequencies, p), 0.05
        if distance > allowed:
            uniform = _tv(frequencies, torch.full_like(p, 1.0 / len(p))) <= allowed
            raise CheckFailed(f"generate(..., temperature=1.0) with logits that do not depend on the context: the frequencies of the {new.numel()} "
                              f"new tokens differ from softmax(logits) by total variation {distance:.3f} (allowed {allowed})",
                              self.samplers["softmax over the batch"] if uniform else None)
        repeats, expected = (new[:, 1:] == new[:, :-1]).double().mean().item(), (p ** 2).sum().item()
        if abs(repeats - expected) > 0.1:
            raise CheckFailed(f"generate(..., temperature=1.0, seed=96) with logits that do not depend on the context: a new token equals the one "
                              f"before it in {repeats:.3f} of the {new[:, 1:].numel()} pairs; independent draws repeat with probability "
                              f"Σ p² = {expected:.3f}", self.reseeded if repeats > expected else None)

    def test_sampling_without_seed(self, student):
        """seed=None samples from the global random state: valid tokens, prompt kept"""
        params, idx = model_params(CONFIG, seed=90), tokens(2, 3, seed=91)
        self._check_tokens(self.call(student, params, idx, 4, CONFIG), (2, 7), idx)

    # -- helpers ------------------------------------------------------------------------------
    def _runs(self, student, params, idx, new):
        try:
            self.call(student, params, idx, new, CONFIG, temperature=0.0)
        except CheckFailed:
            return False
        return True

    def _check_tokens(self, out, shape, idx):
        if isinstance(out, torch.Tensor) and out.dtype.is_floating_point:
            raise CheckFailed(f"generate returned a {str(out.dtype).removeprefix('torch.')} tensor; token ids are int64", self.float_tokens)
        if not isinstance(out, torch.Tensor) or out.shape != shape or out.dtype != torch.long:
            raise CheckFailed(f"generate should return an int64 tensor of shape {shape} (prompt + new tokens), got "
                              + (f"{out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__))
        if not torch.equal(out[:, :idx.shape[1]], idx):
            raise CheckFailed("the output of generate must start with the prompt idx")
        if out.min() < 0 or out.max() >= CONFIG["vocab_size"]:
            raise CheckFailed(f"generate returned token ids outside 0..{CONFIG['vocab_size'] - 1}")

    def _sample(self, student, params, prompt, draws, new, temperature, seed):
        """The (draws, new) tokens that generate samples after `draws` copies of `prompt` (1, T0); its rows must differ."""
        idx = prompt.expand(draws, -1).clone()
        out = self.call(student, params, idx, new, CONFIG, temperature=temperature, seed=seed)
        self._check_tokens(out, (draws, prompt.shape[1] + new), idx)
        out = out[:, prompt.shape[1]:]                                              # (draws, new)
        if (out == out[0]).all():
            greedy = _greedy({k: v.double() for k, v in params.items()}, prompt, new, CONFIG, keep_prompt=False)[0]
            raise CheckFailed(f"generate(..., temperature={temperature}, seed={seed}): all {draws} rows (copies of one prompt) got the same "
                              f"new tokens {out[0].tolist()}; each row must be sampled on its own",
                              self.samplers["greedy"] if torch.equal(out[0], greedy) else self.shared_draw)
        return out

    def _check_pairs(self, student, temperature, seed, head_scale, draws=4000, allowed=0.05, allowed_pairs=0.1):
        # A correct sampler's 4000 draws stay within ~0.07 (pairs) and ~0.04 (first token) of the right distributions (the
        # thresholds are ~10 standard deviations above the mean). The wrong samplers are at >= 0.29 (first token) or, when
        # only the second token is wrong (not fed back), >= 0.35 (pairs); their first tokens are >= 0.14 apart.
        params, prompt = model_params(CONFIG, seed=seed, head_scale=head_scale), tokens(1, 4, seed=seed + 100)
        new = self._sample(student, params, prompt, draws, 2, temperature, seed)   # (draws, 2)
        V = CONFIG["vocab_size"]
        frequencies = torch.bincount(new[:, 0] * V + new[:, 1], minlength=V * V).view(V, V).double() / draws   # (a, b)
        candidates = _pair_distributions(params, prompt, temperature)
        want = candidates.pop("right")
        first, pairs = _tv(frequencies.sum(1), want.sum(1)), _tv(frequencies, want)
        if first <= allowed and pairs <= allowed_pairs:
            return
        a = int(frequencies.sum(1).argmax())
        if first <= allowed:                                                        # the second token is off: say where
            diagnosis = next((self.samplers[key] for key, p in candidates.items() if _tv(frequencies, p) <= allowed_pairs), None)
            given, expected = frequencies[a] / frequencies[a].sum(), want[a] / want[a].sum()          # (V,) each: b given a
            b = int((given - expected).abs().argmax())
            detail = (f"after the first token {a} (in {frequencies[a].sum().item():.3f} of the rows) the second was {b} in "
                      f"{given[b].item():.3f} of them, expected P({b} | prompt + {a}) = {expected[b].item():.3f}")
        else:                                                                       # the first token is off: which sampler gives it?
            diagnosis = next((self.samplers[key] for key, p in candidates.items() if _tv(frequencies.sum(1), p.sum(1)) <= allowed), None)
            detail = f"token {a} came first in {frequencies[a].sum().item():.3f} of the rows, expected probability {want[a].sum().item():.3f}"
        raise CheckFailed(f"generate(..., temperature={temperature}): the frequencies of {draws} sampled pairs of new tokens (a, b) differ from "
                          f"P(a)·P(b | prompt + a), both softmax(logits / {temperature}), by total variation {pairs:.3f} (allowed {allowed_pairs}); "
                          f"the first token alone by {first:.3f} (allowed {allowed}): {detail}", diagnosis)
