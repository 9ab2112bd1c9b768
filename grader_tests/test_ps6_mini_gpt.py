"""Hidden checks for ps6_mini_gpt: a character-level GPT built from the student's parts.

Every graded function is compared with a reference built from torch built-ins, computed in float64:
`F.layer_norm`, `F.scaled_dot_product_attention(is_causal=True)`, `F.gelu`, `F.embedding`,
`F.cross_entropy`, `torch.optim.AdamW`. Parameters are plain dicts of tensors (see the notebook for
the keys). Test models are small and non-square (n_embd != vocab_size != block_size, several heads),
with non-trivial layer-norm weights and biases so that no term can be dropped unnoticed.

Training is checked twice: a few steps against the float64 reference (this names loop mistakes),
and a full run on the sonnets shipped with the assignment, which must reach the loss stated in the
notebook. Sampling is checked by its distribution over many draws and by determinism under a seed,
never against one reference sampler's draws.
"""

import math

import torch
import torch.nn.functional as F

from mfml_grader import course
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, randn, seeded

ASSIGNMENT = "ps6_mini_gpt"

LAYER_NORM_APIS = ("torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm", "torch.nn.LayerNorm",
                   "torch.nn.functional.group_norm", "torch.nn.GroupNorm")
ATTENTION_APIS = ("torch.nn.functional.scaled_dot_product_attention", "torch.nn.MultiheadAttention",
                  "torch.nn.functional.multi_head_attention_forward")
MODEL_APIS = LAYER_NORM_APIS + ATTENTION_APIS + ("torch.nn.Transformer*",)
TRAINING_APIS = ("torch.optim", "torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
                 "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss")

MODEL_PARTS = ("attention", "layer_norm", "causal_self_attention", "transformer_block")
TRAINING_PARTS = (*MODEL_PARTS, "gpt_forward", "cross_entropy", "adamw_step", "warmup_cosine_lr")

# A small non-square model for the checks: C=12 with 3 heads of 4, V=11, block_size=8, 2 layers.
CONFIG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=3, n_embd=12, batch_size=3,
              max_lr=0.02, min_lr=0.002, warmup_steps=4, total_steps=12, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-3)
# eps = 1e-3: the key bias b_k has a zero gradient (softmax ignores a shift of all scores), and in float32
# its rounding noise (~1e-8) divided by eps = 1e-8 would move it by ±lr; a larger eps keeps float32 comparable.

# The notebook's model and schedule for the sonnets, and the loss it must reach (stated in the notebook).
SONNETS_CONFIG = dict(block_size=16, n_layer=2, n_head=2, n_embd=32, batch_size=32, max_lr=1e-2, min_lr=1e-3,
                      warmup_steps=20, total_steps=200, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
SONNETS_STEPS = 200
SONNETS_MAX_LOSS = 2.5           # nats per character; perplexity e^2.5 = 12.2 (the course solution: 2.21)


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


def _self_attention(x, p, n_head, causal=True, split="heads", merge="heads", order=(0, 1, 2), project=True, scale=None):
    """Multi-head causal self-attention with F.scaled_dot_product_attention; the options are mistakes."""
    B, T, C = x.shape
    parts = F.linear(x, p["W_qkv"], p["b_qkv"]).split(C, dim=-1)                  # 3 x (B, T, C)
    q, k, v = (parts[i] for i in order)
    if split == "heads":
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))   # (B, nh, T, hs)
    elif split == "reshape":
        q, k, v = (t.reshape(B, n_head, T, C // n_head) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    if split != "none":
        y = y.transpose(1, 2).reshape(B, T, C) if merge == "heads" else y.reshape(B, T, C)
    return F.linear(y, p["W_proj"], p["b_proj"]) if project else y


def _mlp(h, p, act="gelu"):
    a = F.linear(h, p["W_up"], p["b_up"])                                        # (B, T, 4C)
    a = {"gelu": F.gelu, "relu": F.relu, "tanh": lambda t: F.gelu(t, approximate="tanh")}[act](a)
    return F.linear(a, p["W_down"], p["b_down"])                                 # (B, T, C)


def _ln(h, p, which):
    return F.layer_norm(h, h.shape[-1:], p[f"{which}_w"], p[f"{which}_b"])


def _block(x, p, n_head, pre_ln=True, attn_residual=True, mlp_residual=True, ln2="ln2", act="gelu"):
    """Pre-LN transformer block; the options are mistakes."""
    if not pre_ln:
        x = _ln(x + _self_attention(x, p, n_head), p, "ln1")
        return _ln(x + _mlp(x, p, act), p, "ln2")
    a = _self_attention(_ln(x, p, "ln1"), p, n_head)
    x = x + a if attn_residual else a
    m = _mlp(_ln(x, p, ln2) if ln2 else x, p, act)
    return x + m if mlp_residual else m


def _forward(idx, params, config, positions="first", final_ln=True, reverse=False, head="lm_head", probabilities=False):
    """GPT forward pass: embeddings, blocks, final layer norm, lm head; the options are mistakes."""
    T = idx.shape[1]
    x = F.embedding(idx, params["tok_emb"])                                      # (B, T, C)
    if positions == "first":
        x = x + params["pos_emb"][:T]
    elif positions == "last":
        x = x + params["pos_emb"][params["pos_emb"].shape[0] - T:]
    layers = range(config["n_layer"])
    for layer in (reversed(layers) if reverse else layers):
        x = _block(x, _block_params(params, layer), config["n_head"])
    if final_ln:
        x = F.layer_norm(x, x.shape[-1:], params["lnf_w"], params["lnf_b"])
    logits = F.linear(x, params[head])                                           # (B, T, V)
    return torch.softmax(logits, -1) if probabilities else logits


def _train_step(params, opt_state, x, y, step, config, lr_shift=0, constant_lr=False, decay="matrices", fresh_state=False, eps=None):
    """One step of F.cross_entropy + torch.optim.AdamW (lr from the schedule); the options are mistakes."""
    leaves = {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}
    logits = _forward(x, leaves, config)                                         # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    lr = config["max_lr"] if constant_lr else _lr(step + lr_shift, config)

    def weight_decay(value):
        if decay == "all":
            return config["weight_decay"]
        return config["weight_decay"] if decay == "matrices" and value.dim() >= 2 else 0.0

    groups = [{"params": [leaf], "weight_decay": weight_decay(leaf)} for leaf in leaves.values()]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=config["betas"], eps=config["eps"] if eps is None else eps, foreach=False)
    for name, leaf in leaves.items():
        state = {} if fresh_state else opt_state.get(name) or {}
        if state:
            optimizer.state[leaf] = {"step": torch.tensor(float(state["step"])), "exp_avg": state["exp_avg"].clone(),
                                     "exp_avg_sq": state["exp_avg_sq"].clone()}
    optimizer.step()
    new_params = {name: leaf.detach() for name, leaf in leaves.items()}
    new_state = {name: {"step": int(optimizer.state[leaf]["step"].item()), "exp_avg": optimizer.state[leaf]["exp_avg"],
                        "exp_avg_sq": optimizer.state[leaf]["exp_avg_sq"]} for name, leaf in leaves.items()}
    return new_params, new_state, loss.detach()


def _get_batch(data, block_size, batch_size, generator):
    """The notebook's get_batch: random windows x and their targets y = x shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix.tolist()])
    return x, y


def _train(params, data, config, steps, seed=0, mistake=None):
    """The training loop of the notebook with the reference step; `mistake` names a wrong loop."""
    generator = torch.Generator().manual_seed(seed)
    opt_state, losses = {}, []
    first = _get_batch(data, config["block_size"], config["batch_size"], generator) if mistake == "same batch" else None
    for step in range(steps):
        x, y = first or _get_batch(data, config["block_size"], config["batch_size"], generator)
        at = {"stuck": 0, "from one": step + 1}.get(mistake, step)
        new_params, new_state, loss = _train_step(params, {} if mistake == "reset" else opt_state, x, y, at, config)
        if mistake != "dropped":
            params = new_params
        opt_state = new_state
        losses.append(loss.item())
    return params, losses


def _greedy(params, idx, max_new_tokens, config, crop="last", position=-1, keep_prompt=True):
    """Greedy decoding with the reference model; the options are mistakes."""
    out, block = idx, config["block_size"]
    for _ in range(max_new_tokens):
        context = out[:, -block:] if crop == "last" else out[:, :block]          # (B, <= block_size)
        logits = _forward(context, params, config)[:, position]                  # (B, V)
        out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
    return out if keep_prompt else out[:, idx.shape[1]:]


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
    """The text shipped with the assignment (the instructor's copy), its vocabulary size and its tokens."""
    text = (course.course_root() / "source" / ASSIGNMENT / "data" / "sonnets.txt").read_text()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    return text, len(chars), torch.tensor([stoi[ch] for ch in text], dtype=torch.long)


def text_loss(params, data, config):
    """Mean cross-entropy of the model over the whole text in windows of block_size (float64 reference)."""
    T = config["block_size"]
    n = (len(data) - 1) // T
    x, y = data[: n * T].view(n, T), data[1: n * T + 1].view(n, T)
    with torch.no_grad():
        logits = _forward(x, {k: v.double() for k, v in params.items()}, config)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()


# -- exercises ------------------------------------------------------------------------------------
class TestLayerNorm(Exercise):
    function = "layer_norm"
    forbidden = LAYER_NORM_APIS
    mistakes = (
        Mistake("unbiased variance (divided by C - 1)", "layer norm divides the squared deviations by C, not C - 1 (torch.var's default): use unbiased=False or .mean().",
                lambda x, weight, bias, eps=1e-5: _normalise(x, x.var(-1, unbiased=True, keepdim=True), eps) * weight + bias),
        Mistake("eps added outside the square root", "divide by √(σ² + ε), not by σ + ε.",
                lambda x, weight, bias, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True).sqrt() + eps) * weight + bias),
        Mistake("no eps (0/0 on constant features)", "add ε inside the square root: √(σ² + ε) keeps constant rows finite.",
                lambda x, weight, bias, eps=1e-5: _normalise(x, x.var(-1, unbiased=False, keepdim=True), 0.0) * weight + bias),
        Mistake("mean not subtracted (that is RMSNorm)", "subtract the mean μ before dividing: (x − μ) / √(σ² + ε).",
                lambda x, weight, bias, eps=1e-5: x / (x.var(-1, unbiased=False, keepdim=True) + eps).sqrt() * weight + bias),
        Mistake("normalised over the first dim instead of the features", "the statistics are over the last dim (the C features of each token): mean(-1), not mean(0).",
                lambda x, weight, bias, eps=1e-5: (x - x.mean(0, keepdim=True)) / (x.var(0, unbiased=False, keepdim=True) + eps).sqrt() * weight + bias),
        Mistake("weight and bias swapped", "scale by weight (γ), then add bias (β): x̂ · weight + bias.",
                lambda x, weight, bias, eps=1e-5: F.layer_norm(x, x.shape[-1:], None, None, eps) * bias + weight),
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

    def test_small_features(self, student):
        """stability: features of size 0.01, where eps matters (float64)"""
        self.expect(student, randn(3, 4, 8, seed=7, dtype=torch.float64, scale=0.01), randn(8, seed=8, dtype=torch.float64),
                    randn(8, seed=9, dtype=torch.float64))

    def test_constant_features(self, student):
        """stability: a token whose features are all equal gives the bias (no nan)"""
        x = randn(3, 5, seed=10)
        x[1] = 2.5
        self.expect(student, x, randn(5, seed=11), randn(5, seed=12))


def _normalise(x, var, eps):
    return (x - x.mean(-1, keepdim=True)) / (var + eps).sqrt()


class TestCausalSelfAttention(Exercise):
    function = "causal_self_attention"
    forbidden = ATTENTION_APIS
    substitutes = ("attention",)
    mistakes = (
        Mistake("no causal mask", "call attention(q, k, v, causal=True): position t must not see positions after t.",
                lambda x, params, n_head: _self_attention(x, params, n_head, causal=False)),
        Mistake("heads split with reshape, without transpose", "view (B, T, C) as (B, T, n_head, hs), then transpose(1, 2) to (B, n_head, T, hs); reshaping straight to (B, n_head, T, hs) mixes positions into heads.",
                lambda x, params, n_head: _self_attention(x, params, n_head, split="reshape", merge="reshape")),
        Mistake("heads merged without transposing back", "the output (B, n_head, T, hs) must be transposed to (B, T, n_head, hs) before reshaping to (B, T, C).",
                lambda x, params, n_head: _self_attention(x, params, n_head, merge="reshape")),
        Mistake("n_head ignored (one head of size C)", "split q, k, v into n_head heads of size C // n_head and attend in each head separately.",
                lambda x, params, n_head: _self_attention(x, params, n_head, split="none")),
        Mistake("scores scaled by √C instead of √head_size", "inside a head d_k is the head size C // n_head: scale by 1/√(C // n_head).",
                lambda x, params, n_head: _self_attention(x, params, n_head, scale=1.0 / math.sqrt(x.shape[-1]))),
        Mistake("q, k, v taken in the wrong order", "the rows of W_qkv are [q | k | v]: the first C outputs are q, the next C are k, the last C are v.",
                lambda x, params, n_head: _self_attention(x, params, n_head, order=(1, 0, 2))),
        Mistake("output projection missing", "finish with y @ W_projᵀ + b_proj.",
                lambda x, params, n_head: _self_attention(x, params, n_head, project=False)),
    )

    @staticmethod
    def reference(x, params, n_head):
        return _self_attention(x, params, n_head)

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

    def test_future_tokens_do_not_leak(self, student):
        """causality: changing the tokens after position 3 leaves outputs 0..3 unchanged"""
        x, params = randn(2, 7, 12, seed=28, dtype=torch.float64), _attention_params(12, seed=29, dtype=torch.float64)
        before = self.expect(student, x, params, 3)
        changed = x.clone()
        changed[:, 4:] += 5.0
        after = self.call(student, changed, params, 3)
        if not isinstance(after, torch.Tensor) or after.shape != before.shape or not torch.allclose(after[:, :4], before[:, :4], rtol=1e-10, atol=1e-10):
            raise CheckFailed("causal_self_attention: outputs at positions 0..3 changed when only positions 4..6 of x changed: "
                              "the model can see the future", self.mistakes[0])


def _attention_params(C, seed, dtype=torch.float32):
    block = block_inputs(C, seed, dtype)
    return {key: block[key] for key in ("W_qkv", "b_qkv", "W_proj", "b_proj")}


class TestTransformerBlock(Exercise):
    function = "transformer_block"
    forbidden = MODEL_APIS
    substitutes = ("attention", "layer_norm", "causal_self_attention")
    mistakes = (
        Mistake("post-LN instead of pre-LN", "normalise the input of each sublayer, not its output: x + attn(ln1(x)), then x + mlp(ln2(x)).",
                lambda x, params, n_head: _block(x, params, n_head, pre_ln=False)),
        Mistake("no residual around attention", "add the attention output to x: x = x + causal_self_attention(ln1(x)).",
                lambda x, params, n_head: _block(x, params, n_head, attn_residual=False)),
        Mistake("no residual around the MLP", "add the MLP output to x: x = x + mlp(ln2(x)).",
                lambda x, params, n_head: _block(x, params, n_head, mlp_residual=False)),
        Mistake("ln1 used before the MLP too", "the MLP has its own layer norm: ln2_w, ln2_b.",
                lambda x, params, n_head: _block(x, params, n_head, ln2="ln1")),
        Mistake("no layer norm before the MLP", "the MLP reads ln2(x), not x.",
                lambda x, params, n_head: _block(x, params, n_head, ln2=None)),
        Mistake("ReLU instead of GELU", "the MLP's activation is GELU (F.gelu).",
                lambda x, params, n_head: _block(x, params, n_head, act="relu")),
        Mistake("tanh approximation of GELU", "use the exact GELU x·Φ(x) (F.gelu's default), not approximate='tanh'.",
                lambda x, params, n_head: _block(x, params, n_head, act="tanh")),
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


class TestGptForward(Exercise):
    function = "gpt_forward"
    forbidden = MODEL_APIS
    substitutes = MODEL_PARTS
    mistakes = (
        Mistake("no position embeddings", "add pos_emb[:T] to the token embeddings: without it the model cannot tell positions apart.",
                lambda idx, params, config: _forward(idx, params, config, positions=None)),
        Mistake("position embeddings taken from the end of the table", "position t uses row t: add pos_emb[:T], not the last T rows.",
                lambda idx, params, config: _forward(idx, params, config, positions="last")),
        Mistake("no final layer norm", "apply layer_norm(x, lnf_w, lnf_b) after the last block, before the lm head.",
                lambda idx, params, config: _forward(idx, params, config, final_ln=False)),
        Mistake("blocks applied in reverse order", "run block0, block1, ... in increasing order.",
                lambda idx, params, config: _forward(idx, params, config, reverse=True)),
        Mistake("returned probabilities instead of logits", "return the logits x @ lm_headᵀ; the softmax belongs to the loss and to sampling.",
                lambda idx, params, config: _forward(idx, params, config, probabilities=True)),
        Mistake("token embedding used as the lm head", "this model has its own output matrix: logits = x @ params['lm_head'].T.",
                lambda idx, params, config: _forward(idx, params, config, head="tok_emb")),
    )

    @staticmethod
    def reference(idx, params, config):
        return _forward(idx, params, config)

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
        """another config: 1 layer, 2 heads, C = 8, V = 5"""
        config = dict(CONFIG, vocab_size=5, n_layer=1, n_head=2, n_embd=8, block_size=6)
        self.expect(student, tokens(2, 6, seed=46, vocab=5), model_params(config, seed=47, dtype=torch.float64), config)

    def test_future_tokens_do_not_leak(self, student):
        """causality: changing tokens after position 2 leaves the logits of positions 0..2 unchanged"""
        idx, params = tokens(2, 7, seed=48), model_params(CONFIG, seed=49, dtype=torch.float64)
        before = self.expect(student, idx, params, CONFIG)
        changed = idx.clone()
        changed[:, 3:] = (changed[:, 3:] + 1) % CONFIG["vocab_size"]
        after = self.call(student, changed, params, CONFIG)
        if not isinstance(after, torch.Tensor) or after.shape != before.shape or not torch.allclose(after[:, :3], before[:, :3], rtol=1e-10, atol=1e-10):
            raise CheckFailed("gpt_forward: the logits at positions 0..2 changed when only tokens 3..6 changed: the model sees the future")


class TestTrainStep(Exercise):
    function = "train_step"
    forbidden = TRAINING_APIS
    substitutes = TRAINING_PARTS
    mistakes = (
        Mistake("optimizer state ignored (a fresh AdamW state every step)", "pass opt_state[name] (or {} when it is missing) to adamw_step, and return the states it gives back.",
                lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, fresh_state=True)),
        Mistake("learning-rate schedule not applied (constant max_lr)", "use lr = warmup_cosine_lr(step, max_lr, min_lr, warmup_steps, total_steps) for this step.",
                lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, constant_lr=True)),
        Mistake("learning rate of the next step (step + 1)", "steps count from 0: step s uses warmup_cosine_lr(s, ...).",
                lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, lr_shift=1)),
        Mistake("weight decay on every parameter", "decay only tensors with 2 or more dims (matrices, embeddings); biases and layer-norm weights get weight_decay=0.",
                lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, decay="all")),
        Mistake("no weight decay", "pass weight_decay=config['weight_decay'] to adamw_step for tensors with 2 or more dims.",
                lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, decay="none")),
        Mistake("AdamW eps not taken from config", "pass eps=config['eps'] to adamw_step (its default 1e-8 is not this model's setting).",
                lambda params, opt_state, x, y, step, config: _train_step(params, opt_state, x, y, step, config, eps=1e-8)),
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


class TestTrain(Exercise):
    function = "train"
    forbidden = TRAINING_APIS
    substitutes = (*TRAINING_PARTS, "train_step")
    mistakes = (
        Mistake("the new parameters are dropped (the model never changes)", "keep what train_step returns: params, opt_state, loss = train_step(params, opt_state, ...).",
                lambda params, data, config, steps, seed=0: _train(params, data, config, steps, seed, mistake="dropped")),
        Mistake("the same batch every step", "draw a new batch with get_batch inside the loop, from one generator created before it.",
                lambda params, data, config, steps, seed=0: _train(params, data, config, steps, seed, mistake="same batch")),
        Mistake("optimizer state reset every step", "pass the opt_state returned by the previous step (start from {} once, before the loop).",
                lambda params, data, config, steps, seed=0: _train(params, data, config, steps, seed, mistake="reset")),
        Mistake("step counter stuck at 0 (the learning rate never leaves its first warmup value)", "pass the loop index step = 0, 1, ..., steps - 1 to train_step.",
                lambda params, data, config, steps, seed=0: _train(params, data, config, steps, seed, mistake="stuck")),
        Mistake("steps counted from 1", "the first step is step 0 (its learning rate is max_lr / warmup_steps).",
                lambda params, data, config, steps, seed=0: _train(params, data, config, steps, seed, mistake="from one")),
    )

    @staticmethod
    def reference(params, data, config, steps, seed=0):
        return _train(params, data, config, steps, seed)

    def test_three_steps_float32(self, student):
        """3 steps on random text, float32, against the float64 reference loop"""
        self.expect(student, model_params(CONFIG, seed=70), tokens(60, seed=71), CONFIG, 3, seed=0)

    def test_five_steps_other_seed_float64(self, student):
        """5 steps with seed 4 (the batches come from one generator seeded with it), float64"""
        self.expect(student, model_params(CONFIG, seed=72, dtype=torch.float64), tokens(40, seed=73), CONFIG, 5, seed=4)

    def test_sonnets_reach_the_stated_loss(self, student):
        """200 steps on the sonnets from init_params(seed=0): loss ≤ 2.5 nats (perplexity ≤ 12.2)"""
        _, vocab_size, data = sonnets()
        config = dict(SONNETS_CONFIG, vocab_size=vocab_size)
        params = init_params(config, seed=0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)              # when run in-process: a tiny model trains fastest on one thread
        try:
            result = self.call(student, params, data, config, SONNETS_STEPS, seed=0)
        finally:
            torch.set_num_threads(threads)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict)):
            raise CheckFailed("train should return (params, losses): a dict of tensors and a list of floats")
        trained, losses = result
        if not isinstance(losses, list) or len(losses) != SONNETS_STEPS:
            raise CheckFailed(f"train(..., steps={SONNETS_STEPS}) should return a list of {SONNETS_STEPS} losses, got {type(losses).__name__} of length {len(losses) if hasattr(losses, '__len__') else '?'}")
        try:
            loss = text_loss(trained, data, config)
        except Exception as error:  # noqa: BLE001 - wrong keys or shapes in the returned params
            raise CheckFailed(f"the parameters returned by train do not run through the model: {type(error).__name__}: {error}") from None
        if not math.isfinite(loss) or loss > SONNETS_MAX_LOSS:
            raise CheckFailed(f"after {SONNETS_STEPS} steps the loss on the sonnets is {loss:.3f} nats (perplexity {math.exp(min(loss, 50)):.1f}); "
                              f"expected at most {SONNETS_MAX_LOSS} (perplexity {math.exp(SONNETS_MAX_LOSS):.1f}). At initialisation it is "
                              f"log {vocab_size} = {math.log(vocab_size):.2f}.")


class TestGenerate(Exercise):
    function = "generate"
    substitutes = (*MODEL_PARTS, "gpt_forward")
    mistakes = (
        Mistake("next token predicted from the first position", "the prediction for the next token is at the last position: logits[:, -1, :].",
                lambda params, idx, max_new_tokens, config, temperature=1.0, seed=None: _greedy(params, idx, max_new_tokens, config, position=0)),
        Mistake("context cropped at the wrong end", "keep the last block_size tokens (idx[:, -block_size:]): they are the ones next to the new token.",
                lambda params, idx, max_new_tokens, config, temperature=1.0, seed=None: _greedy(params, idx, max_new_tokens, config, crop="first")),
        Mistake("only the new tokens returned", "return the prompt followed by the new tokens: shape (B, T0 + max_new_tokens).",
                lambda params, idx, max_new_tokens, config, temperature=1.0, seed=None: _greedy(params, idx, max_new_tokens, config, keep_prompt=False)),
    )
    not_cropped = Mistake("context not cropped to block_size", "the model has pos_emb rows for block_size positions only: feed idx[:, -block_size:].", None)
    seed_ignored = Mistake("seed ignored (sampling from the global random state)", "create g = torch.Generator().manual_seed(seed) once and pass generator=g to torch.multinomial.", None)
    fixed_seed = Mistake("sampling does not depend on the seed", "seed your generator with the `seed` argument, not with a constant.", None)
    samplers = {
        "temperature multiplied": Mistake("temperature multiplied instead of divided", "sample from softmax(logits / temperature).", None),
        "temperature ignored": Mistake("temperature ignored", "divide the logits by the temperature before the softmax.", None),
        "greedy": Mistake("always the most likely token (greedy) when temperature > 0", "sample from the probabilities (torch.multinomial) unless temperature == 0.", None),
        "first position": Mistake("next token predicted from the first position", "the prediction for the next token is at the last position: logits[:, -1, :].", None),
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
            if "raised" in str(failure) and self._runs(student, params, idx[:, :2], 2):
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
        """temperature 0.5: 4000 draws of the next token follow softmax(logits / 0.5)"""
        self._check_distribution(student, 0.5, seed=88, head_scale=1.0)

    def test_sampling_distribution_hot(self, student):
        """temperature 2: 4000 draws of the next token follow softmax(logits / 2)"""
        self._check_distribution(student, 2.0, seed=89, head_scale=3.0)

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
        if not isinstance(out, torch.Tensor) or out.shape != shape or out.dtype != torch.long:
            raise CheckFailed(f"generate should return an int64 tensor of shape {shape} (prompt + new tokens), got "
                              + (f"{out.dtype} {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__))
        if not torch.equal(out[:, :idx.shape[1]], idx):
            raise CheckFailed("the output of generate must start with the prompt idx")
        if out.min() < 0 or out.max() >= CONFIG["vocab_size"]:
            raise CheckFailed(f"generate returned token ids outside 0..{CONFIG['vocab_size'] - 1}")

    def _check_distribution(self, student, temperature, seed, head_scale, draws=4000, allowed=0.05):
        # The weights are chosen so that every wrong sampler below is at total variation >= 0.29 from the
        # right distribution, while a correct sampler's 4000 draws stay within ~0.03 of it.
        params = model_params(CONFIG, seed=seed, head_scale=head_scale)
        prompt = tokens(1, 4, seed=seed + 100)
        out = self.call(student, params, prompt.expand(draws, 4).clone(), 1, CONFIG, temperature=temperature, seed=seed)
        self._check_tokens(out, (draws, 5), prompt.expand(draws, 4))
        frequencies = torch.bincount(out[:, -1], minlength=CONFIG["vocab_size"]).double() / draws
        logits = _forward(prompt, {k: v.double() for k, v in params.items()}, CONFIG)[0]       # (T, V)
        want = torch.softmax(logits[-1] / temperature, -1)
        distance = 0.5 * (frequencies - want).abs().sum().item()
        if distance <= allowed:
            return
        candidates = {
            "temperature multiplied": torch.softmax(logits[-1] * temperature, -1),
            "temperature ignored": torch.softmax(logits[-1], -1),
            "greedy": F.one_hot(logits[-1].argmax(), CONFIG["vocab_size"]).double(),
            "first position": torch.softmax(logits[0] / temperature, -1),
        }
        diagnosis = next((self.samplers[key] for key, p in candidates.items() if 0.5 * (frequencies - p).abs().sum().item() <= allowed), None)
        raise CheckFailed(f"generate(..., temperature={temperature}): the frequencies of {draws} sampled next tokens differ from "
                          f"softmax(logits / {temperature}) by total variation {distance:.3f} (allowed {allowed}); "
                          f"most frequent token {int(frequencies.argmax())} at {frequencies.max().item():.3f}, expected probability "
                          f"{want[frequencies.argmax()].item():.3f}", diagnosis)
