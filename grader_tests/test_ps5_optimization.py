"""Hidden checks for ps5_optimization: optimizer steps, a learning-rate schedule and clipping.

The references are torch itself, run outside the student's call: `torch.optim.SGD`, `SGD(momentum=…)`
and `torch.optim.AdamW` for the steps, `LambdaLR` for the schedule, `clip_grad_norm_` for clipping,
all in float64. Optimizers are checked one step at a time from a given state, and over whole runs
of 100+ steps in which the student's function is fed its own returned state, like a training loop.
Learning rates and weight decay are large enough that coupled vs decoupled decay, bias correction
and the place of eps all change the result. Clipping also gets gradients of norm 1e-5 and all-zero
gradients, which must come back unchanged. Tolerances: mfml_grader.compare.
"""

import math
import warnings

import torch

from mfml_grader.compare import difference
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, clone, randn

OPTIM_APIS = ("torch.optim", "torch._fused_*")   # torch.optim and the fused kernels behind it


def _grads(steps, *shape, seed, dtype=torch.float64, scale=1.0):
    """A fixed (steps, *shape) sequence of gradients whose size changes from step to step."""
    size = torch.tensor([0.5 + (t % 5) / 4 for t in range(steps)], dtype=torch.float64)   # (steps,)
    g = randn(steps, *shape, seed=seed, dtype=torch.float64, shift=0.3) * size.view(-1, *[1] * len(shape))
    return (g * scale).to(dtype)


def _torch_run(optimizer, param, grads, state=None, **options):
    """Run `optimizer` (a torch.optim class) on a copy of `param` through `grads`: the state after each step."""
    p = param.detach().clone().requires_grad_(True)
    opt = optimizer([p], **options)
    if state:
        opt.state[p].update(state)
    states = []
    for g in grads:
        p.grad = g.detach().clone()
        opt.step()
        states.append((p.detach().clone(), {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in opt.state[p].items()}))
    return states


class OptimizerExercise(Exercise):
    """An optimizer step: checked on single steps and on whole runs that feed back its own param and state."""

    initial_state = None   # the state of a fresh run

    def step_call(self, carried, grad, hyper):
        """(args, kwargs) of one call, from the (param, state) the step before returned."""
        raise NotImplementedError

    def carry(self, out):
        """(param, state) to feed back from what one call returned."""
        raise NotImplementedError

    def torch_outputs(self, param, grads, hyper):
        """What the function should return at each step of a run from a fresh state (float64)."""
        raise NotImplementedError

    def run(self, student, param, grads, hyper, label):
        """A whole run from a fresh state against torch.optim, step by step."""
        want = self.torch_outputs(param.double(), grads.double(), hyper)
        self.expect_run(student, (param, clone(self.initial_state)), grads, want, label, setting=hyper)


# -- SGD ------------------------------------------------------------------------------------------

SGD_IN_PLACE = "`param -= lr * grad` changes the caller's tensor; return `param - lr * grad`, a new tensor."


class TestSgdStep(OptimizerExercise):
    function = "sgd_step"
    forbidden = OPTIM_APIS
    in_place_fix = SGD_IN_PLACE
    mistakes = (
        Mistake("gradient ascent (param + lr·grad)", "the gradient points uphill: step against it, param − lr·grad.",
                lambda param, grad, lr: param + lr * grad),
        Mistake("learning rate ignored", "scale the gradient by lr before subtracting it.",
                lambda param, grad, lr: param - grad),
        Mistake("divided by the learning rate", "multiply the gradient by lr: param − lr·grad.",
                lambda param, grad, lr: param - grad / lr),
        Mistake("returned the step −lr·grad instead of the new param", "add the step to the parameter: return param − lr·grad.",
                lambda param, grad, lr: -lr * grad),
        Mistake("update computed but not returned (param.sub(...) makes a new tensor)", "param.sub(lr * grad) and param - lr * grad return a new tensor "
                "and leave param as it was: return that new tensor.",
                lambda param, grad, lr: param),
        Mistake("used param.grad instead of the grad argument", "the gradient is the argument `grad`; param is a plain tensor here and its .grad is None.",
                lambda param, grad, lr: param - lr * param.grad),
    )

    @staticmethod
    def reference(param, grad, lr):
        return _torch_run(torch.optim.SGD, param, [grad], lr=lr)[0][0]

    def step_call(self, carried, grad, hyper):
        return (carried[0], grad, hyper["lr"]), {}

    def carry(self, out):
        return out, None

    def torch_outputs(self, param, grads, hyper):
        return [p for p, _ in _torch_run(torch.optim.SGD, param, grads, lr=hyper["lr"])]

    def test_worked_example(self, student):
        """worked example: (1, 2) − 0.1·(0.5, −1) = (0.95, 2.1)"""
        self.expect(student, torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0]), 0.1)

    def test_weight_matrix_float32(self, student):
        """a (10, 128) weight matrix, float32, lr 0.01"""
        self.expect(student, randn(10, 128, seed=1), randn(10, 128, seed=2), 0.01)

    def test_batched_float64(self, student):
        """a (3, 4, 5) float64 parameter, lr 0.3"""
        self.expect(student, randn(3, 4, 5, seed=3, dtype=torch.float64), randn(3, 4, 5, seed=4, dtype=torch.float64), 0.3)

    def test_run_matches_torch_sgd(self, student):
        """100 steps fed back into each other match torch.optim.SGD (float64)"""
        self.run(student, randn(6, 5, seed=5, dtype=torch.float64), _grads(100, 6, 5, seed=6), {"lr": 0.05},
                        "sgd_step over 100 steps (float64 (6, 5), lr=0.05)")



# -- SGD with momentum ----------------------------------------------------------------------------

def _momentum(param, grad, buf, lr, momentum, *, use_grad=False, nesterov=False, ema=False, decay_param=False,
              no_decay=False, velocity=False, lr_inside=False, old_buffer=False):
    """A momentum step and the broken variants students write (keyword switches)."""
    if velocity:                                    # v = m·v − lr·g, param + v
        v = -lr * grad if buf is None else momentum * buf - lr * grad
        return param + v, v
    if lr_inside:                                   # b = m·b + lr·g, param − b
        b = lr * grad if buf is None else momentum * buf + lr * grad
        return param - b, b
    if ema:                                         # zeros start and (1 − m)·grad
        new = momentum * (torch.zeros_like(grad) if buf is None else buf) + (1 - momentum) * grad
    elif buf is None:
        new = grad.clone()
    elif decay_param:
        new = momentum * param + grad
    elif no_decay:
        new = buf + grad
    else:
        new = momentum * buf + grad
    if use_grad:
        return param - lr * grad, new
    if nesterov:
        return param - lr * (grad + momentum * new), new
    return param - lr * new, (buf if old_buffer else new)


MOMENTUM_IN_PLACE = "`buf.mul_(momentum).add_(grad)` and `param -= …` change the caller's tensors; compute new ones: buf = momentum * buf + grad."


class TestMomentumStep(OptimizerExercise):
    function = "momentum_step"
    forbidden = OPTIM_APIS
    in_place_fix = MOMENTUM_IN_PLACE
    mistakes = (
        Mistake("dampened buffer started at zeros (momentum·buf + (1 − momentum)·grad)",
                "PyTorch's SGD adds the whole gradient: buf = grad on the first step, then buf = momentum·buf + grad.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, ema=True)),
        Mistake("buffer holds the velocity −lr·buf (param + v)",
                "PyTorch keeps buf = momentum·buf + grad (no lr inside) and returns param − lr·buf; the buffer you return is fed back.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, velocity=True)),
        Mistake("step uses grad instead of the buffer", "the update is param − lr·buf with the new buffer, not param − lr·grad.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, use_grad=True)),
        Mistake("Nesterov step (grad + momentum·buf)", "plain momentum steps along the buffer itself: param − lr·buf.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, nesterov=True)),
        Mistake("momentum·param instead of momentum·buf", "the buffer decays itself: buf = momentum·buf + grad.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, decay_param=True)),
        Mistake("old buffer not decayed (buf + grad)", "multiply the old buffer by momentum: buf = momentum·buf + grad.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, no_decay=True)),
        Mistake("lr inside the buffer (buf = momentum·buf + lr·grad, param − buf)",
                "a different convention (Sutskever et al.), which moves the weights the same way only while lr is constant: "
                "PyTorch and this notebook keep lr out of the buffer, buf = momentum·buf + grad, and step by lr·buf; the buffer you return is fed back.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, lr_inside=True)),
        Mistake("returned the old buffer instead of the new one", "return (new_param, new_buf): the buffer you return is passed back in at the next step.",
                lambda param, grad, buf, lr, momentum: _momentum(param, grad, buf, lr, momentum, old_buffer=True)),
    )

    @staticmethod
    def reference(param, grad, buf, lr, momentum):
        state = None if buf is None else {"momentum_buffer": buf.clone()}
        p, s = _torch_run(torch.optim.SGD, param, [grad], state, lr=lr, momentum=momentum)[0]
        return p, s["momentum_buffer"]

    def step_call(self, carried, grad, hyper):
        param, buf = carried
        return (param, grad, buf, hyper["lr"], hyper["momentum"]), {}

    def carry(self, out):
        return out[0], out[1]

    def torch_outputs(self, param, grads, hyper):
        return [(p, s["momentum_buffer"]) for p, s in _torch_run(torch.optim.SGD, param, grads, **hyper)]

    def test_worked_example_first_step(self, student):
        """worked example, first step (buf is None): buf = grad"""
        self.expect(student, torch.tensor([1.0, -1.0]), torch.tensor([2.0, 4.0]), None, 0.1, 0.9)

    def test_worked_example_later_step(self, student):
        """worked example, later step: buf = 0.9·(1, 1) + (2, 4) = (2.9, 4.9)"""
        self.expect(student, torch.tensor([1.0, -1.0]), torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0]), 0.1, 0.9)

    def test_weight_matrix_float32(self, student):
        """a (16, 8) float32 weight with a buffer, lr 0.05, momentum 0.8"""
        self.expect(student, randn(16, 8, seed=10), randn(16, 8, seed=11), randn(16, 8, seed=12), 0.05, 0.8)

    def test_batched_float64_first_step(self, student):
        """a (2, 3, 4) float64 parameter, first step, lr 0.2"""
        self.expect(student, randn(2, 3, 4, seed=13, dtype=torch.float64), randn(2, 3, 4, seed=14, dtype=torch.float64), None, 0.2, 0.9)

    def test_run_matches_torch_float64(self, student):
        """120 steps fed back into each other match SGD(momentum=0.9), float64"""
        self.run(student, randn(4, 7, seed=15, dtype=torch.float64), _grads(120, 4, 7, seed=16), {"lr": 0.02, "momentum": 0.9},
                        "momentum_step over 120 steps (float64 (4, 7), lr=0.02, momentum=0.9)")

    def test_run_matches_torch_float32(self, student):
        """100 steps match SGD(momentum=0.8), float32"""
        self.run(student, randn(10, seed=17), _grads(100, 10, seed=18, dtype=torch.float32), {"lr": 0.05, "momentum": 0.8},
                        "momentum_step over 100 steps (float32 (10,), lr=0.05, momentum=0.8)")



# -- AdamW ----------------------------------------------------------------------------------------

def _adamw(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *, eps_in_sqrt=False,
           swap_betas=False, coupled=False, decay_without_lr=False, no_decay=False, old_step=False,
           no_correction=False, keep_step=False, store_corrected=False, decay_after=False, float32_correction=False,
           no_eps=False, v_with_beta1=False):
    """An AdamW step and the broken variants students write (keyword switches)."""
    beta1, beta2 = reversed(betas) if swap_betas else betas
    step = int(state.get("step", 0))
    t = step if old_step else step + 1
    m = state.get("exp_avg", torch.zeros_like(param))
    v = state.get("exp_avg_sq", torch.zeros_like(param))
    g = grad + weight_decay * param if coupled else grad
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    if float32_correction:                          # step kept as a float32 tensor: β^t in float32
        t = torch.tensor(float(t))
    m_hat, v_hat = (m, v) if no_correction else (m / (1 - beta1 ** t), v / (1 - (beta1 if v_with_beta1 else beta2) ** t))
    denom = v_hat.sqrt() if no_eps else (v_hat + eps).sqrt() if eps_in_sqrt else v_hat.sqrt() + eps
    if coupled or no_decay:
        decayed = param
    elif decay_after:
        return (param - lr * m_hat / denom) * (1 - lr * weight_decay), {"step": step + 1, "exp_avg": m, "exp_avg_sq": v}
    elif decay_without_lr:
        decayed = param * (1 - weight_decay)
    else:
        decayed = param * (1 - lr * weight_decay)
    new_state = {"step": step if keep_step else step + 1, "exp_avg": m_hat if store_corrected else m,
                 "exp_avg_sq": v_hat if store_corrected else v}
    return decayed - lr * m_hat / denom, new_state


ADAMW_IN_PLACE = ("`state['exp_avg'].mul_(…)` and `param -= …` change the caller's tensors; build new tensors and return a new "
                  "state dict.")


def _adamw_mistake(**switch):
    return lambda param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2: _adamw(
        param, grad, state, lr, betas, eps, weight_decay, **switch)


class TestAdamwStep(OptimizerExercise):
    function = "adamw_step"
    forbidden = OPTIM_APIS
    in_place_fix = ADAMW_IN_PLACE
    initial_state = {}
    mistakes = (
        Mistake("eps inside the square root", "add eps after the square root: m̂ / (√v̂ + eps), not m̂ / √(v̂ + eps).",
                _adamw_mistake(eps_in_sqrt=True)),
        Mistake("eps left out (m̂ / √v̂)", "divide by √v̂ + eps: eps keeps the step small (and finite: 0/0 for a zero gradient) where √v̂ is tiny.",
                _adamw_mistake(no_eps=True)),
        Mistake("betas swapped", "beta1 (0.9) averages the gradient (exp_avg), beta2 (0.999) its square (exp_avg_sq).",
                _adamw_mistake(swap_betas=True)),
        Mistake("v̂ bias-corrected with β1 instead of β2", "each moment is corrected with its own beta: m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).",
                _adamw_mistake(v_with_beta1=True)),
        Mistake("coupled L2 (grad + wd·param) instead of decoupled weight decay",
                "AdamW decays the weights directly, param·(1 − lr·wd), and keeps weight decay out of the gradient and the moments.",
                _adamw_mistake(coupled=True)),
        Mistake("weight decay without the lr factor", "decoupled decay multiplies by (1 − lr·weight_decay), not (1 − weight_decay).",
                _adamw_mistake(decay_without_lr=True)),
        Mistake("no weight decay", "AdamW shrinks the weights every step: param·(1 − lr·weight_decay) before the Adam update.",
                _adamw_mistake(no_decay=True)),
        Mistake("bias correction off by one (old step count)", "increment the step first: on call t (t = 1, 2, …) correct with 1 − β^t.",
                _adamw_mistake(old_step=True)),
        Mistake("no bias correction", "divide by (1 − β1^t) and (1 − β2^t): the moments start at zero and are too small early on.",
                _adamw_mistake(no_correction=True)),
        Mistake("step counter not incremented", "return state['step'] + 1: the count of steps taken, which the next bias correction needs.",
                _adamw_mistake(keep_step=True)),
        Mistake("bias-corrected moments stored in the state", "store the raw averages m and v; correct copies of them for the update only.",
                _adamw_mistake(store_corrected=True)),
        Mistake("weight decay applied after the Adam update", "decay the old weights first, param·(1 − lr·wd), then subtract the Adam step (as torch.optim.AdamW does).",
                _adamw_mistake(decay_after=True)),
        Mistake("bias correction computed in float32 (step kept as a float32 tensor)",
                "compute 1 − β^t with Python numbers (t = int(state['step']) + 1): in float32, 1 − 0.999 is off by 1e-5, which float64 parameters notice.",
                _adamw_mistake(float32_correction=True)),
    )

    @staticmethod
    def reference(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        given = None
        if state:
            given = {"step": torch.tensor(float(state["step"])), "exp_avg": state["exp_avg"].clone(), "exp_avg_sq": state["exp_avg_sq"].clone()}
        p, s = _torch_run(torch.optim.AdamW, param, [grad], given, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)[0]
        return p, {"step": int(s["step"].item()), "exp_avg": s["exp_avg"], "exp_avg_sq": s["exp_avg_sq"]}

    def step_call(self, carried, grad, hyper):
        param, state = carried
        return (param, grad, state), dict(hyper)

    def carry(self, out):
        return out[0], out[1]

    def torch_outputs(self, param, grads, hyper):
        return [(p, {"step": int(s["step"].item()), "exp_avg": s["exp_avg"], "exp_avg_sq": s["exp_avg_sq"]})
                for p, s in _torch_run(torch.optim.AdamW, param, grads, **hyper)]

    @staticmethod
    def _state(step, *shape, seed, dtype=torch.float64, scale=1.0):
        """A state in the middle of a run: averages of gradients of size `scale`."""
        return {"step": step, "exp_avg": randn(*shape, seed=seed, dtype=dtype, scale=0.5 * scale),
                "exp_avg_sq": (randn(*shape, seed=seed + 1, dtype=torch.float64, scale=scale) ** 2 + 0.1 * scale ** 2).to(dtype)}

    def test_worked_example_first_step(self, student):
        """worked example: the first step moves each weight by about lr against the sign of its gradient"""
        self.expect(student, torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]), {}, lr=0.1, weight_decay=0.1)

    def test_mid_run_weight_float32(self, student):
        """one step of a (10, 128) float32 weight at step 7, lr 0.01, weight_decay 0.1"""
        self.expect(student, randn(10, 128, seed=30), randn(10, 128, seed=31), self._state(7, 10, 128, seed=32, dtype=torch.float32),
                    lr=0.01, weight_decay=0.1)

    def test_first_step_float64(self, student):
        """first step of a (10,) float64 bias, state {}, lr 0.05, weight_decay 0.2"""
        self.expect(student, randn(10, seed=34, dtype=torch.float64), randn(10, seed=35, dtype=torch.float64), {},
                    lr=0.05, weight_decay=0.2)

    def test_other_betas_and_eps(self, student):
        """float64 at step 3 with betas (0.8, 0.95), eps 0.1 and small gradients: eps must sit outside the sqrt"""
        self.expect(student, randn(4, 6, seed=36, dtype=torch.float64), randn(4, 6, seed=37, dtype=torch.float64, scale=0.1),
                    self._state(3, 4, 6, seed=38, scale=0.1), lr=0.02, betas=(0.8, 0.95), eps=0.1, weight_decay=0.05)

    def test_tiny_gradients(self, student):
        """gradients of size 1e-9 with the default eps: the update shrinks instead of staying lr-sized"""
        self.expect(student, randn(8, seed=40, dtype=torch.float64), randn(8, seed=41, dtype=torch.float64, scale=1e-9),
                    self._state(20, 8, seed=42, scale=1e-9), lr=0.01, weight_decay=0.0)

    def test_run_matches_torch_float64(self, student):
        """120 steps fed back into each other match torch.optim.AdamW (float64, lr 0.05, weight_decay 0.1)"""
        self.run(student, randn(5, 3, seed=43, dtype=torch.float64), _grads(120, 5, 3, seed=44),
                        {"lr": 0.05, "weight_decay": 0.1}, "adamw_step over 120 steps (float64 (5, 3), lr=0.05, weight_decay=0.1)")

    def test_run_matches_torch_float32(self, student):
        """100 steps of a (10, 128) float32 weight match torch.optim.AdamW (betas (0.8, 0.99), eps 1e-6, weight_decay 0.2)"""
        hyper = {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.2}
        self.run(student, randn(10, 128, seed=45), _grads(100, 10, 128, seed=46, dtype=torch.float32), hyper,
                        "adamw_step over 100 steps (float32 (10, 128), lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2)")

    def test_notebook_experiment_defaults(self, student):
        """ten steps of the notebook's 128 → 10 weight with the default lr 1e-3 and weight_decay 1e-2 (float64)"""
        self.run(student, randn(10, 128, seed=47, dtype=torch.float64, scale=128 ** -0.5), _grads(10, 10, 128, seed=48, scale=0.1),
                        {}, "adamw_step(param, grad, state) with its defaults over 10 steps (float64 (10, 128))")



# -- warmup + cosine schedule ---------------------------------------------------------------------

def _schedule(step, max_lr, min_lr, warmup_steps, total_steps, *, warmup_from_zero=False, warmup_plus_one=False,
              warmup_from_min=False, progress_from_zero=False, to_zero=False, no_clamp=False, span_plus_one=False,
              span_total=False, linear=False, no_pi=False):
    """The course's warmup + cosine schedule and the broken variants students write (keyword switches)."""
    if step < warmup_steps:
        if warmup_from_zero:
            return max_lr * step / warmup_steps
        if warmup_plus_one:
            return max_lr * (step + 1) / (warmup_steps + 1)
        if warmup_from_min:
            return min_lr + (max_lr - min_lr) * (step + 1) / warmup_steps
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps and not no_clamp:
        return 0.0 if to_zero else min_lr
    if progress_from_zero:
        progress = step / total_steps
    elif span_plus_one:
        progress = (step - warmup_steps) / (total_steps - warmup_steps + 1)
    elif span_total:
        progress = (step - warmup_steps) / total_steps
    else:
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
    if linear:
        return min_lr + (max_lr - min_lr) * (1 - progress)
    if no_pi:
        return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(progress))
    if to_zero:
        return max_lr * 0.5 * (1 + math.cos(math.pi * progress))
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def _schedule_mistake(**switch):
    return lambda step, max_lr, min_lr, warmup_steps, total_steps: _schedule(step, max_lr, min_lr, warmup_steps, total_steps, **switch)


def _relatively_close(value, want, rtol=1e-5):
    """True when `value` is a number within `rtol` of `want`, relative to |want| (small learning rates)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value - want) <= rtol * abs(want)


def _lambda_lr(max_lr, min_lr, warmup_steps, total_steps, steps):
    """The learning rate torch's LambdaLR sets at steps 0..steps-1, with the course's multiplier."""
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=max_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, max_lr, min_lr, warmup_steps, total_steps) / max_lr)
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return lrs


class TestWarmupCosineLr(Exercise):
    function = "warmup_cosine_lr"
    forbidden = ("torch.optim.lr_scheduler",)
    # a float32 0-d tensor is accepted: its rounding (~1e-7 of max_lr) is far below every mistake below
    tolerance = {torch.float64: 1e-6}
    mistakes = (
        Mistake("warmup as step / warmup_steps (Hugging Face's convention, not this notebook's)",
                "not a conceptual error: Hugging Face's get_cosine_schedule_with_warmup uses step / warmup_steps, so its step 0 trains at lr 0. "
                "This notebook's convention is max_lr·(step + 1)/warmup_steps: step 0 already trains, and step warmup_steps − 1 reaches max_lr.",
                _schedule_mistake(warmup_from_zero=True)),
        Mistake("warmup as (step + 1)/(warmup_steps + 1) (nanoGPT's convention, not this notebook's)",
                "not a conceptual error: nanoGPT's train.py warms up with (it + 1)/(warmup_iters + 1). This notebook's convention is "
                "max_lr·(step + 1)/warmup_steps, which reaches max_lr at step warmup_steps − 1.",
                _schedule_mistake(warmup_plus_one=True)),
        Mistake("warmup from min_lr (a different convention, not this notebook's)",
                "some schedules warm up from min_lr, min_lr + (max_lr − min_lr)·(step + 1)/warmup_steps; this notebook's warmup starts from 0: "
                "max_lr·(step + 1)/warmup_steps.",
                _schedule_mistake(warmup_from_min=True)),
        Mistake("cosine progress measured from step 0", "the decay starts after warmup: progress = (step − warmup_steps)/(total_steps − warmup_steps).",
                _schedule_mistake(progress_from_zero=True)),
        Mistake("decays to 0 instead of min_lr", "the cosine goes from max_lr down to min_lr: min_lr + ½(max_lr − min_lr)(1 + cos(π·progress)).",
                _schedule_mistake(to_zero=True)),
        Mistake("cosine continues after total_steps", "after total_steps the learning rate stays at min_lr.",
                _schedule_mistake(no_clamp=True)),
        Mistake("never reaches min_lr (progress divided by total_steps − warmup_steps + 1)",
                "progress must be exactly 1 at step total_steps: divide by total_steps − warmup_steps.",
                _schedule_mistake(span_plus_one=True)),
        Mistake("linear decay instead of cosine", "use ½(1 + cos(π·progress)), which falls slowly, then fast, then slowly again.",
                _schedule_mistake(linear=True)),
        Mistake("cosine without π (cos(progress))", "the cosine runs over half a period: cos(π·progress) goes from 1 to −1 as progress goes from 0 to 1; "
                "cos(progress) only reaches cos(1) ≈ 0.54, so the rate never gets near min_lr.",
                _schedule_mistake(no_pi=True)),
        Mistake("decay spread over total_steps (progress = (step − warmup_steps)/total_steps)",
                "the cosine spans the steps after warmup: progress = (step − warmup_steps)/(total_steps − warmup_steps), which is 1 at step total_steps.",
                _schedule_mistake(span_total=True)),
    )

    @staticmethod
    def reference(step, max_lr, min_lr, warmup_steps, total_steps):
        return _schedule(step, max_lr, min_lr, warmup_steps, total_steps)

    def test_first_step(self, student):
        """step 0 is the first warmup step: max_lr / warmup_steps"""
        self.expect(student, 0, 3.0, 0.3, 10, 100)

    def test_end_of_warmup(self, student):
        """step warmup_steps − 1 reaches max_lr"""
        self.expect(student, 9, 3.0, 0.3, 10, 100)

    def test_inside_warmup(self, student):
        """a step in the middle of the warmup"""
        self.expect(student, 4, 3.0, 0.3, 10, 100)

    def test_start_of_decay(self, student):
        """step warmup_steps starts the cosine at max_lr"""
        self.expect(student, 10, 3.0, 0.3, 10, 100)

    def test_inside_decay(self, student):
        """steps inside the decay"""
        for step in (25, 55, 80, 99):
            self.expect(student, step, 3.0, 0.3, 10, 100)

    def test_total_steps(self, student):
        """step total_steps reaches min_lr exactly"""
        self.expect(student, 100, 3.0, 0.3, 10, 100)

    def test_after_total_steps(self, student):
        """steps total_steps + 1 and beyond stay at min_lr"""
        for step in (101, 150):
            self.expect(student, step, 3.0, 0.3, 10, 100)

    def test_gpt_schedule(self, student):
        """a GPT-style schedule: 6e-4 → 6e-5, warmup 200, 2000 steps, at several steps"""
        for step in (0, 150, 199, 200, 900, 1999, 2000, 2500):
            got = self.call(student, step, 6e-4, 6e-5, 200, 2000)
            want = _schedule(step, 6e-4, 6e-5, 200, 2000)
            value = got.item() if isinstance(got, torch.Tensor) and got.dim() == 0 else got
            if not _relatively_close(value, want):
                named = next((m for m in self.mistakes if _relatively_close(value, m.compute(step, 6e-4, 6e-5, 200, 2000))), None)
                raise CheckFailed(f"warmup_cosine_lr({step}, 6e-4, 6e-5, 200, 2000) returned {value!r}, expected {want:.6g} "
                                  "(relative tolerance 1e-5)", named)

    def test_matches_lambda_lr(self, student):
        """every step 0..120 equals torch's LambdaLR run with the notebook's formula (warmup 7, total 103)"""
        lrs = _lambda_lr(2.0, 0.1, 7, 103, 121)
        for step, want in enumerate(lrs):
            got = self.call(student, step, 2.0, 0.1, 7, 103)
            problem = difference(got, want, torch.float64, tolerance=self.tolerance)
            if problem:
                raise CheckFailed(f"warmup_cosine_lr({step}, 2.0, 0.1, 7, 103) differs from the learning rate LambdaLR sets at step {step}: "
                                  f"{problem}", self.diagnose(got, (step, 2.0, 0.1, 7, 103), {}, torch.float64))

    def test_no_warmup(self, student):
        """warmup_steps = 0 is a pure cosine from max_lr"""
        for step in (0, 1, 30, 60):
            self.expect(student, step, 1.0, 0.0, 0, 60)


# -- gradient clipping ----------------------------------------------------------------------------

def _clip(grads, max_norm, *, per_tensor=False, always=False, sum_of_norms=False, clipped_norm=False, no_eps=False, squared=False,
          square_of_sum=False, to_length=False):
    """Global-norm clipping as clip_grad_norm_ does it, and the broken variants students write."""
    norms = torch.stack([(g * g).sum().sqrt() for g in grads])                  # (n,)
    if per_tensor:
        return [g * (max_norm / (n + 1e-6)).clamp(max=1.0) for g, n in zip(grads, norms)], norms.square().sum().sqrt()
    if square_of_sum:                                                           # (Σ g)² per tensor: signs cancel
        norms = torch.stack([g.sum().abs() for g in grads])
    total = norms.sum() if sum_of_norms else norms.square().sum() if squared else norms.square().sum().sqrt()
    coef = max_norm / (total if no_eps else total + 1e-6)
    if to_length:                                                               # rescaled to length min(total, max_norm)
        coef = total.clamp(max=max_norm) / (total + 1e-6)
    elif not always:
        coef = coef.clamp(max=1.0)
    clipped = [g * coef for g in grads]
    return clipped, (total.clamp(max=max_norm) if clipped_norm else total)


def _clip_mistake(**switch):
    return lambda grads, max_norm: _clip(grads, max_norm, **switch)


CLIP_TUPLE = Mistake("clipped gradients returned as a tuple, not a list", "return a list, as the spec fixes: [g * scale for g in grads].")


class TestClipGradNorm(Exercise):
    function = "clip_grad_norm"
    forbidden = ("torch.nn.utils",)
    mistakes = (
        Mistake("each tensor clipped by its own norm", "clip by the global norm √(Σᵢ ‖gᵢ‖²) of all gradients together, with one common scale.",
                _clip_mistake(per_tensor=True)),
        Mistake("total norm is the sum of the per-tensor norms", "the global L2 norm is √(Σᵢ ‖gᵢ‖²), not Σᵢ ‖gᵢ‖.",
                _clip_mistake(sum_of_norms=True)),
        Mistake("squared norm (no square root)", "take the square root of the sum of squares.",
                _clip_mistake(squared=True)),
        Mistake("squared the sum instead of summing the squares ((Σ g)²)", "‖g‖² = Σ g², the sum of the squared entries: (Σ g)² lets entries of "
                "opposite signs cancel. Use (g * g).sum() or g.pow(2).sum().",
                _clip_mistake(square_of_sum=True)),
        Mistake("rescaled to length min(total, max_norm) (shrinks small gradients)",
                "the scale is min(1, max_norm / (total + 1e-6)), exactly 1 below max_norm. min(total, max_norm) / (total + 1e-6) is not: it shrinks "
                "gradients of norm 1e-5 by 9 %.",
                _clip_mistake(to_length=True)),
        Mistake("rescaled even when the norm is below max_norm", "clamp the scale at 1: gradients already shorter than max_norm stay as they are.",
                _clip_mistake(always=True)),
        Mistake("returned the norm after clipping", "return the total norm measured before clipping (what clip_grad_norm_ returns and logs show).",
                _clip_mistake(clipped_norm=True)),
        Mistake("no + 1e-6 in the scale", "the notebook's convention (torch's): scale = max_norm / (total_norm + 1e-6), clamped to 1.",
                _clip_mistake(no_eps=True)),
        CLIP_TUPLE,
    )

    @staticmethod
    def reference(grads, max_norm):
        params = [torch.zeros_like(g, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        return [p.grad for p in params], total

    def test_worked_example(self, student):
        """worked example: gradients (3, 0) and (0, 4) have norm 5; max_norm 1 scales them by 1/5"""
        self.expect(student, [torch.tensor([3.0, 0.0]), torch.tensor([[0.0, 4.0]])], 1.0)

    def test_below_max_norm_unchanged(self, student):
        """norm 5 with max_norm 10: the gradients come back unchanged"""
        self.expect(student, [torch.tensor([3.0, 0.0]), torch.tensor([[0.0, 4.0]])], 10.0)

    def test_linear_model_float32(self, student):
        """the gradients of a (10, 128) weight and a (10,) bias, float32, max_norm 1"""
        self.expect(student, [randn(10, 128, seed=60), randn(10, seed=61)], 1.0)

    def test_many_shapes_float64(self, student):
        """four tensors of different shapes, float64, max_norm 0.5"""
        self.expect(student, [randn(3, 4, 5, seed=62, dtype=torch.float64), randn(7, seed=63, dtype=torch.float64),
                              randn(2, 9, seed=64, dtype=torch.float64, scale=0.1), randn(1, seed=65, dtype=torch.float64)], 0.5)

    def test_gradient_spike(self, student):
        """one layer's gradient spikes to 1e4: every layer is scaled by the same factor (float64)"""
        self.expect(student, [randn(6, 4, seed=66, dtype=torch.float64, scale=1e4), randn(6, seed=67, dtype=torch.float64),
                              randn(5, 6, seed=68, dtype=torch.float64)], 1.0)

    def test_single_tensor(self, student):
        """a list with one (8, 3) float32 tensor, max_norm 2"""
        self.expect(student, [randn(8, 3, seed=69, scale=3.0)], 2.0)

    def test_small_and_zero_gradients(self, student):
        """gradients of norm 1e-5, and all-zero gradients (a frozen layer), come back unchanged (float64)"""
        small = [randn(4, 3, seed=70, dtype=torch.float64, scale=2e-6), randn(5, seed=71, dtype=torch.float64, scale=2e-6)]
        self.expect(student, small, 1.0)
        self.expect(student, [torch.zeros(3, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)], 1.0)

    def test_returns_a_list(self, student):
        """the clipped gradients come back as a list (the spec's type), with the norm"""
        got = self.expect(student, [randn(2, 3, seed=72), randn(3, seed=73)], 0.5)
        if not isinstance(got[0], list):
            raise CheckFailed(f"clip_grad_norm(grads=[float32 (2, 3), float32 (3,)], max_norm=0.5) returned the clipped gradients as "
                              f"a {type(got[0]).__name__}; the spec asks for a list", CLIP_TUPLE)

