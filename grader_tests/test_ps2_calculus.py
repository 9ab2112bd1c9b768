"""Hidden checks for ps2_calculus: derivatives by hand, checked against torch autograd in float64.

Every hand-written derivative is compared with `torch.autograd.grad` on float64 copies of the
inputs. Shapes are non-square (N != in != out, D != H != C) so that a transposed gradient cannot
pass by luck, and one check per layer uses a square weight so that a wrong transpose shows in the
values too. Finite differences are checked in float64 at a tolerance of 1e-8, tight enough to tell
a central difference (error ~1e-10) from a forward one (~1e-5); float32 only with a large step.
The gradient-check metric also sees gradients of opposite signs (|a| + |b|, not |a + b|).
Hessian-vector products are checked against the full Hessian (`torch.autograd.functional.hessian`)
times v, on functions whose curvature changes fast, so that a finite difference of gradients does
not pass; power iteration against `torch.linalg.eigvalsh` of that Hessian, on Hessians with a clear
eigengap (λ₂/λ₁ <= 0.6, so 100 steps converge to rounding), and its seed and iteration count by
properties only (determinism, dependence on the seed, Rayleigh quotients rising with iters), never by
comparing unconverged values with one sampler.
Tolerances otherwise: mfml_grader.compare.
"""

import math

import torch
import torch.nn.functional as F

from mfml_grader.compare import describe, matches
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, SourceFunction, randn

AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.autograd.functional", "torch.func",
            "torch.Tensor.backward")
CROSS_ENTROPY = ("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss")


def _leaf(t):
    """A float64 copy of `t` that autograd tracks."""
    return t.detach().clone().requires_grad_(True)


# -- finite differences ----------------------------------------------------------------------

def _numeric(f, x, h, combine):
    """Perturb one entry of a copy of x at a time; `combine(f(x+h), f(x), f(x-h), h)` is the slope."""
    out = torch.zeros_like(x)
    flat = out.view(-1)
    f0 = f(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x)
        step.view(-1)[i] = h
        flat[i] = combine(f(x + step), f0, f(x - step), h)
    return out


def _central(fp, f0, fm, h):
    """The central difference from f(x+h), f(x), f(x-h): the `combine` of the correct slope."""
    return (fp - fm) / (2 * h)


# Both recognised by a property in TestCentralDifference.diagnose: slopes of exactly 0 everywhere
# (f(x+h) and f(x-h) saw the same tensor), and the right slopes in another dtype than x's.
IN_PLACE = Mistake(
    "x perturbed in place instead of a copy",
    "`xp = x` is not a copy: perturb `x.clone()` (or build x + h·eᵢ) so that x stays unchanged and f(x+h) and f(x-h) see different inputs.")
DEFAULT_DTYPE = Mistake(
    "gradient created in the default dtype (float32)",
    "`torch.zeros(n)` is float32 whatever x is: create the gradient with torch.zeros_like(x) (or dtype=x.dtype), so float64 slopes keep their digits.")


class TestCentralDifference(Exercise):
    function = "central_difference"
    forbidden = AUTOGRAD
    tolerance = {torch.float64: 1e-8, torch.float32: 5e-4}
    mistakes = (
        Mistake("forward difference (f(x+h) − f(x)) / h", "the forward difference is only accurate to O(h); use the central difference (f(x+h) − f(x−h)) / (2h), accurate to O(h²).",
                lambda f, x, h=1e-5: _numeric(f, x, h, lambda fp, f0, fm, h: (fp - f0) / h)),
        Mistake("backward difference (f(x) − f(x−h)) / h", "use both sides: (f(x+h) − f(x−h)) / (2h).",
                lambda f, x, h=1e-5: _numeric(f, x, h, lambda fp, f0, fm, h: (f0 - fm) / h)),
        Mistake("divided by h instead of 2h", "x+h and x−h are 2h apart: divide the difference by 2h.",
                lambda f, x, h=1e-5: _numeric(f, x, h, lambda fp, f0, fm, h: (fp - fm) / h)),
        Mistake("/ 2 * h without parentheses", "`a / 2 * h` is (a / 2) · h; write `/ (2 * h)`.",
                lambda f, x, h=1e-5: _numeric(f, x, h, lambda fp, f0, fm, h: (fp - fm) / 2 * h)),
        Mistake("every entry perturbed at once", "move one entry at a time (x + h·eᵢ) and fill entry i of the result: the gradient has the shape of x.",
                lambda f, x, h=1e-5: (f(x + h) - f(x - h)) / (2 * h)),
        Mistake("gradient returned flat (shape (n,)), not shaped like x", "reshape the slopes back to x's shape: grad.view(x.shape) (or fill a torch.zeros_like(x)).",
                lambda f, x, h=1e-5: _numeric(f, x, h, _central).reshape(-1)),
        IN_PLACE,
        DEFAULT_DTYPE,
    )

    @staticmethod
    def reference(f, x, h=1e-5):
        x = _leaf(x)
        (grad,) = torch.autograd.grad(f(x), x)
        return grad

    def describe_call(self, args, kwargs):
        """Show the function's source rather than its type."""
        return super().describe_call(args, kwargs).replace("f=a SourceFunction", f"f={args[0]!r}", 1)

    def diagnose(self, got, args, kwargs, dtype):
        """Also name the mistakes seen by a property: all-zero slopes, or the right slopes in the wrong dtype."""
        if isinstance(got, torch.Tensor) and got.numel() and got.dtype.is_floating_point:
            if not got.any():
                return IN_PLACE
            want = self.reference(*(a.double() if isinstance(a, torch.Tensor) else a for a in args), **kwargs)
            if got.dtype != dtype and matches(got.float(), want.float(), torch.float32, self.tolerance):
                return DEFAULT_DTYPE
        return super().diagnose(got, args, kwargs, dtype)

    def test_worked_example(self, student):
        """worked example: the gradient of Σ x² at (1, 2, 3) is (2, 4, 6)"""
        self.expect(student, SourceFunction("lambda x: (x ** 2).sum()"), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))

    def test_the_cubic_of_the_notebook(self, student):
        """(2x + 1)³ at x = 3 has slope 294"""
        self.expect(student, SourceFunction("lambda x: ((2 * x + 1) ** 3).sum()"), torch.tensor([3.0], dtype=torch.float64))

    def test_matrix_input_float64(self, student):
        """x of shape (3, 4), entries coupled (log-sum-exp), float64"""
        f = SourceFunction("lambda x: torch.logsumexp(x.flatten(), 0) + (x.sin() * x[0]).sum()")
        self.expect(student, f, randn(3, 4, seed=1, dtype=torch.float64))

    def test_three_dims_float64(self, student):
        """x of shape (2, 3, 2), float64: every entry gets its own slope"""
        f = SourceFunction("lambda x: (torch.tanh(x) * torch.arange(1.0, 13.0, dtype=x.dtype).view(2, 3, 2)).sum()")
        self.expect(student, f, randn(2, 3, 2, seed=2, dtype=torch.float64))

    def test_float32_with_a_large_step(self, student):
        """float32 with h = 1e-2 (a small h drowns in float32 rounding); result stays float32"""
        self.expect(student, SourceFunction("lambda x: (x ** 3).sum() / 3 + x.prod()"), randn(2, 3, seed=3), h=1e-2)

    def test_step_h_is_used(self, student):
        """h = 1e-3 on a quadratic (central differences are exact there), float64"""
        f = SourceFunction("lambda x: (x * x.flip(0)).sum() + 3 * (x ** 2).sum()")
        self.expect(student, f, randn(5, seed=4, dtype=torch.float64), h=1e-3)

    def test_x_unchanged(self, student):
        """x is exactly unchanged afterwards and the gradient is right (perturb a copy, not x itself)"""
        f = SourceFunction("lambda x: (x.exp() * x).sum()")
        x = randn(3, 4, seed=5, dtype=torch.float64)
        _, (_, given), _ = self.call_with_inputs(student, f, x)
        if not isinstance(given, torch.Tensor) or given.shape != x.shape or not torch.equal(given, x):
            changed = (given != x).nonzero() if isinstance(given, torch.Tensor) and given.shape == x.shape else []
            where = f" at {len(changed)} of {x.numel()} entries, first at index {tuple(changed[0].tolist())}" if len(changed) else ""
            raise CheckFailed(f"central_difference changed its input x{where} (even x + h − h is not always x in floating point).", IN_PLACE)
        self.expect(student, f, x)


# -- the chain rule on y = (2x + 1)^3 ---------------------------------------------------------

class TestCubicAndGrad(Exercise):
    function = "cubic_and_grad"
    forbidden = AUTOGRAD
    mistakes = (
        Mistake("chain-rule factor 2 forgotten", "y = u³ with u = 2x + 1: dy/dx = dy/du · du/dx = 3u² · 2.",
                lambda x: ((2 * x + 1) ** 3, 3 * (2 * x + 1) ** 2)),
        Mistake("outer derivative taken at x instead of u = 2x + 1", "3u² must be evaluated at the inner value u = 2x + 1: dy/dx = 6(2x + 1)².",
                lambda x: ((2 * x + 1) ** 3, 6 * x ** 2)),
        Mistake("exponent not lowered", "the derivative of u³ is 3u², not 3u³: dy/dx = 6(2x + 1)².",
                lambda x: ((2 * x + 1) ** 3, 6 * (2 * x + 1) ** 3)),
        Mistake("returned (dy/dx, y) instead of (y, dy/dx)", "return the value first and the derivative second.",
                lambda x: (6 * (2 * x + 1) ** 2, (2 * x + 1) ** 3)),
        Mistake("y is 2x + 1 (missing parentheses: 2 * x + 1 ** 3)", "`**` binds tighter than `+`: write (2 * x + 1) ** 3.",
                lambda x: (2 * x + 1, 6 * (2 * x + 1) ** 2)),
        Mistake("chain rule as a sum (3u² + 2) instead of a product", "the chain rule multiplies the local derivatives: dy/dx = dy/du · du/dx = 3u² · 2.",
                lambda x: ((2 * x + 1) ** 3, 3 * (2 * x + 1) ** 2 + 2)),
        Mistake("`^` used for powers (bitwise xor in Python)", "Python writes powers with `**`: (2 * x + 1) ** 3; `^` is bitwise xor, which float tensors do not support.",
                lambda x: ((2 * x + 1) ^ 3, 6 * (2 * x + 1) ^ 2)),
    )

    @staticmethod
    def reference(x):
        x = _leaf(x)
        y = (2 * x + 1) ** 3
        (grad,) = torch.autograd.grad(y.sum(), x)
        return y.detach(), grad

    def test_worked_example(self, student):
        """worked example: at x = 3, y = 343 and dy/dx = 294"""
        self.expect(student, torch.tensor([3.0]))

    def test_vector_float32(self, student):
        """(5, 4) float32, elementwise"""
        self.expect(student, randn(5, 4, seed=10))

    def test_batched_float64(self, student):
        """(2, 3, 4) float64"""
        self.expect(student, randn(2, 3, 4, seed=11, dtype=torch.float64, scale=2.0))

    def test_zero_d_input(self, student):
        """a single number: 0-d float64 tensor x = 0.75"""
        self.expect(student, torch.tensor(0.75, dtype=torch.float64))

    def test_stationary_point(self, student):
        """dy/dx vanishes at x = -1/2 (where 2x + 1 = 0)"""
        self.expect(student, torch.tensor([-0.5, 0.0, 1.0, -2.0], dtype=torch.float64))


# -- local gradients: tanh and a linear layer ------------------------------------------------

class TestTanhBackward(Exercise):
    function = "tanh_backward"
    forbidden = AUTOGRAD
    mistakes = (
        Mistake("1 − dout² instead of 1 − out²", "the local derivative of tanh is 1 − tanh(z)² = 1 − out²: square the forward output, not the upstream gradient.",
                lambda dout, out: dout * (1 - dout ** 2)),
        Mistake("multiplied by out instead of 1 − out²", "d tanh(z)/dz = 1 − tanh(z)² = 1 − out².",
                lambda dout, out: dout * out),
        Mistake("tanh applied to out again (1 − tanh(out)²)", "out is already tanh(z): the local derivative is 1 − out², no second tanh.",
                lambda dout, out: dout * (1 - torch.tanh(out) ** 2)),
        Mistake("upstream gradient dout ignored", "chain rule: multiply the local derivative 1 − out² by the upstream gradient dout.",
                lambda dout, out: 1 - out ** 2),
        Mistake("(1 − out)² instead of 1 − out²", "square out before subtracting: 1 - out ** 2.",
                lambda dout, out: dout * (1 - out) ** 2),
        Mistake("1 − out instead of 1 − out²", "the local derivative is 1 − out² (out squared).",
                lambda dout, out: dout * (1 - out)),
        Mistake("1 − out² · dout (missing parentheses)", "`*` binds tighter than `-`: write dout * (1 - out ** 2).",
                lambda dout, out: 1 - out ** 2 * dout),
        Mistake("matrix product instead of elementwise (dout @ (1 − out²))", "tanh acts on each entry: multiply elementwise with `*`, not `@`.",
                lambda dout, out: dout @ (1 - out ** 2)),
    )

    @staticmethod
    def reference(dout, out):
        z = _leaf(torch.atanh(out))
        (grad,) = torch.autograd.grad(torch.tanh(z), z, dout)
        return grad

    def test_worked_example(self, student):
        """worked example: out = (0, 0.5, −0.8), dout = (1, 2, 3) gives (1, 1.5, 1.08)"""
        self.expect(student, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 0.5, -0.8]))

    def test_hidden_layer_float32(self, student):
        """(N=6, H=5) float32"""
        self.expect(student, randn(6, 5, seed=20), torch.tanh(randn(6, 5, seed=21, scale=2.0)))

    def test_batched_float64(self, student):
        """(B=2, T=3, C=4) float64"""
        self.expect(student, randn(2, 3, 4, seed=22, dtype=torch.float64), torch.tanh(randn(2, 3, 4, seed=23, dtype=torch.float64, scale=2.0)))

    def test_saturated_units(self, student):
        """saturated units (out near ±1) pass almost no gradient"""
        out = torch.tanh(torch.tensor([[-6.0, -3.0, 0.1], [3.0, 6.0, -0.1]], dtype=torch.float64))
        self.expect(student, randn(2, 3, seed=24, dtype=torch.float64, scale=5.0), out)


def _linear_grads(dout, x, W, *, dx=None, dW=None, db=None):
    """(dx, dW, db) of out = x Wᵀ + b; a keyword replaces one part by a broken version."""
    return (dout @ W if dx is None else dx(dout, x, W),
            dout.T @ x if dW is None else dW(dout, x, W),
            dout.sum(0) if db is None else db(dout, x, W))


class TestLinearBackward(Exercise):
    function = "linear_backward"
    forbidden = AUTOGRAD
    mistakes = (
        Mistake("dW transposed (xᵀ · dout)", "dW must have W's shape (out, in): dW = doutᵀ @ x.",
                lambda dout, x, W: _linear_grads(dout, x, W, dW=lambda d, x, W: x.T @ d)),
        Mistake("db not summed over the batch", "b is shared by all N rows, so its gradient sums theirs: db = dout.sum(0), shape (out,).",
                lambda dout, x, W: _linear_grads(dout, x, W, db=lambda d, x, W: d)),
        Mistake("dx uses W.T", "out = x Wᵀ, so dx = dout @ W (shape (N, in)), not dout @ W.T.",
                lambda dout, x, W: _linear_grads(dout, x, W, dx=lambda d, x, W: d @ W.T)),
        Mistake("db averaged over the batch", "sum the rows of dout (the loss already carries any 1/N): db = dout.sum(0).",
                lambda dout, x, W: _linear_grads(dout, x, W, db=lambda d, x, W: d.mean(0))),
        Mistake("dW averaged over the batch", "sum over the rows: dW = doutᵀ @ x, no division by N (the loss already carries any 1/N).",
                lambda dout, x, W: _linear_grads(dout, x, W, dW=lambda d, x, W: d.T @ x / x.shape[0])),
        Mistake("dx transposed (Wᵀ · doutᵀ)", "dx must have x's shape (N, in): dx = dout @ W.",
                lambda dout, x, W: _linear_grads(dout, x, W, dx=lambda d, x, W: W.T @ d.T)),
        Mistake("db summed over the out dim (dout.sum(1))", "b has one entry per output: sum dout over the batch rows, dout.sum(0), shape (out,).",
                lambda dout, x, W: _linear_grads(dout, x, W, db=lambda d, x, W: d.sum(1))),
        Mistake("returned (dW, dx, db) instead of (dx, dW, db)", "return the gradients in the order of the spec: (dx, dW, db).",
                lambda dout, x, W: (lambda dx, dW, db: (dW, dx, db))(*_linear_grads(dout, x, W))),
    )

    @staticmethod
    def reference(dout, x, W):
        x, W = _leaf(x), _leaf(W)
        b = torch.zeros(W.shape[0], dtype=W.dtype, requires_grad=True)
        return torch.autograd.grad(F.linear(x, W, b), (x, W, b), dout)

    def test_worked_example(self, student):
        """worked example: N=2, in=3, out=2"""
        dout = torch.tensor([[1.0, -1.0], [2.0, 0.5]])
        x = torch.tensor([[1.0, 0.0, 2.0], [-1.0, 3.0, 1.0]])
        W = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])
        self.expect(student, dout, x, W)

    def test_non_square_float32(self, student):
        """N=5, in=4, out=3, float32"""
        self.expect(student, randn(5, 3, seed=30), randn(5, 4, seed=31), randn(3, 4, seed=32))

    def test_non_square_float64(self, student):
        """N=7, in=3, out=6, float64"""
        self.expect(student, randn(7, 6, seed=33, dtype=torch.float64), randn(7, 3, seed=34, dtype=torch.float64), randn(6, 3, seed=35, dtype=torch.float64))

    def test_square_weight(self, student):
        """square W (in = out = 4), N=5: a transposed W cannot hide in the shapes"""
        self.expect(student, randn(5, 4, seed=36, dtype=torch.float64), randn(5, 4, seed=37, dtype=torch.float64), randn(4, 4, seed=38, dtype=torch.float64))

    def test_single_example(self, student):
        """a batch of one row (N=1), in=5, out=2"""
        self.expect(student, randn(1, 2, seed=39, dtype=torch.float64), randn(1, 5, seed=40, dtype=torch.float64), randn(2, 5, seed=41, dtype=torch.float64))


# -- cross-entropy ---------------------------------------------------------------------------

def _one_hot(targets, logits):
    return F.one_hot(targets, logits.shape[-1]).to(logits.dtype)


def _wrong_index(logits, targets):
    p = torch.softmax(logits, -1)
    p[:, targets] -= 1
    return p / logits.shape[0]


def _naive_softmax(z):
    e = z.exp()
    return e / e.sum(-1, keepdim=True)


class TestCrossEntropyBackward(Exercise):
    function = "cross_entropy_backward"
    forbidden = AUTOGRAD + CROSS_ENTROPY
    mistakes = (
        Mistake("not divided by N", "the loss is the mean over the N rows, so its gradient is (softmax − one-hot) / N.",
                lambda logits, targets: torch.softmax(logits, -1) - _one_hot(targets, logits)),
        Mistake("one-hot at the wrong index (p[:, targets])", "`p[:, targets]` selects whole columns for every row; subtract 1 at (i, targets[i]) only: p[torch.arange(N), targets].",
                _wrong_index),
        Mistake("softmax over the batch dim", "each row is one example: softmax over the classes (dim=-1).",
                lambda logits, targets: (torch.softmax(logits, 0) - _one_hot(targets, logits)) / logits.shape[0]),
        Mistake("sign flipped (one-hot − softmax)", "the gradient of −log p_y is softmax − one-hot: the probability of the true class must go up when you step against it.",
                lambda logits, targets: (_one_hot(targets, logits) - torch.softmax(logits, -1)) / logits.shape[0]),
        Mistake("one-hot subtracted from the logits", "subtract the one-hot from the probabilities softmax(logits), not from the logits.",
                lambda logits, targets: (logits - _one_hot(targets, logits)) / logits.shape[0]),
        Mistake("softmax without the max-shift (overflows on large logits)", "subtract each row's max before exp: softmax does not change, and exp no longer overflows.",
                lambda logits, targets: (_naive_softmax(logits) - _one_hot(targets, logits)) / logits.shape[0]),
        Mistake("F.one_hot without num_classes", "F.one_hot(targets) has max(targets) + 1 columns; pass num_classes=logits.shape[1].",
                lambda logits, targets: (torch.softmax(logits, -1) - F.one_hot(targets)) / logits.shape[0]),
        Mistake("divided by C (the classes) instead of N", "the mean runs over the N rows (examples): divide by logits.shape[0].",
                lambda logits, targets: (torch.softmax(logits, -1) - _one_hot(targets, logits)) / logits.shape[1]),
        Mistake("gradient with respect to the probabilities (−1/p at the target)", "differentiate through the softmax too: with respect to the logits the gradient is (softmax − one-hot) / N.",
                lambda logits, targets: -_one_hot(targets, logits) / torch.softmax(logits, -1) / logits.shape[0]),
    )

    @staticmethod
    def reference(logits, targets):
        z = _leaf(logits)
        (grad,) = torch.autograd.grad(F.cross_entropy(z, targets), z)
        return grad

    def test_worked_example(self, student):
        """worked example: logits (2, 1, 0.1) with label 0, and a uniform row with label 2"""
        self.expect(student, torch.tensor([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]]), torch.tensor([0, 2]))

    def test_batch_float32(self, student):
        """N=6, C=4, float32"""
        self.expect(student, randn(6, 4, seed=50, scale=2.0), torch.tensor([3, 0, 1, 3, 2, 1]))

    def test_batch_float64(self, student):
        """N=5, C=7, float64"""
        self.expect(student, randn(5, 7, seed=51, dtype=torch.float64, scale=2.0), torch.tensor([6, 0, 2, 2, 4]))

    def test_last_class_unused(self, student):
        """no target is the last class (C=5, targets in 0..3)"""
        self.expect(student, randn(4, 5, seed=52, dtype=torch.float64), torch.tensor([1, 3, 0, 1]))

    def test_large_logits(self, student):
        """stability: logits near 1000 (float32) give finite gradients"""
        self.expect(student, randn(3, 6, seed=53, scale=3.0, shift=1000.0), torch.tensor([5, 0, 2]))

    def test_rows_sum_to_zero(self, student):
        """each row of the gradient sums to 0 (probabilities and one-hot both sum to 1)"""
        logits = randn(8, 3, seed=54, dtype=torch.float64, scale=3.0)
        grad = self.expect(student, logits, torch.tensor([0, 1, 2, 2, 1, 0, 0, 1]))
        sums = grad.sum(-1).abs()
        if sums.max() > 1e-12:
            raise CheckFailed(f"row {int(sums.argmax())} of the gradient sums to {sums.max().item():.3g}, expected 0")


# -- a two-layer MLP, by hand ----------------------------------------------------------------

KEYS = ("W1", "b1", "W2", "b2")


def _mlp(x, targets, params, *, per_example=False, sum_loss=False, local="h", bias_unsummed=False,
         weights_transposed=False, W2_transposed=False, naive=False, db1_before_tanh=False, dW2_from_z=False):
    """(loss, grads) of the course's MLP; each keyword switches on one broken variant."""
    W1, b1, W2, b2 = (params[k] for k in KEYS)
    N = x.shape[0]
    z = x @ W1.T + b1                                              # (N, H)
    h = torch.tanh(z)                                              # (N, H)
    logits = h @ W2.T + b2                                         # (N, C)
    if naive:
        p = _naive_softmax(logits)
        losses = -p.gather(1, targets[:, None]).squeeze(1).log()
    else:
        p = torch.softmax(logits, -1)
        losses = logits.logsumexp(-1) - logits.gather(1, targets[:, None]).squeeze(1)
    loss = losses.sum() if sum_loss else losses.mean()
    dlogits = (p - _one_hot(targets, logits)) / (1 if per_example else N)   # (N, C)
    dh = dlogits @ (W2.T if W2_transposed else W2)                          # (N, H)
    dz = {"h": dh * (1 - h ** 2), "z": dh * (1 - z ** 2), "none": dh}[local]
    if weights_transposed:
        dW1, dW2 = x.T @ dz, h.T @ dlogits
    else:
        dW1, dW2 = dz.T @ x, dlogits.T @ (z if dW2_from_z else h)
    db1, db2 = (dz, dlogits) if bias_unsummed else ((dh if db1_before_tanh else dz).sum(0), dlogits.sum(0))
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _params(D, H, C, seed, dtype, scale=1.0, W2_scale=1.0):
    return {"W1": randn(H, D, seed=seed, dtype=dtype, scale=scale), "b1": randn(H, seed=seed + 1, dtype=dtype, scale=0.5),
            "W2": randn(C, H, seed=seed + 2, dtype=dtype, scale=W2_scale), "b2": randn(C, seed=seed + 3, dtype=dtype, scale=0.5)}


class TestMlpLossAndGrads(Exercise):
    function = "mlp_loss_and_grads"
    forbidden = AUTOGRAD + CROSS_ENTROPY
    substitutes = ("tanh_backward", "linear_backward", "cross_entropy_backward")
    mistakes = (
        Mistake("cross-entropy gradient not divided by N", "the loss is a mean over N examples: dlogits = (softmax − one-hot) / N.",
                lambda x, targets, params: _mlp(x, targets, params, per_example=True)),
        Mistake("loss summed instead of averaged", "the loss is the mean cross-entropy over the batch.",
                lambda x, targets, params: _mlp(x, targets, params, sum_loss=True)),
        Mistake("tanh derivative taken from the pre-activation (1 − z²)", "tanh′(z) = 1 − tanh(z)² = 1 − h²: use the layer's output h, not its input z.",
                lambda x, targets, params: _mlp(x, targets, params, local="z")),
        Mistake("tanh derivative missing (dz = dh)", "backprop through the tanh too: dz = dh · (1 − h²).",
                lambda x, targets, params: _mlp(x, targets, params, local="none")),
        Mistake("bias gradients not summed over the batch", "each bias is shared by the N rows: db = d(out).sum(0).",
                lambda x, targets, params: _mlp(x, targets, params, bias_unsummed=True)),
        Mistake("weight gradients transposed", "a gradient has the shape of its parameter: dW1 = dzᵀ x (H, D), dW2 = dlogitsᵀ h (C, H).",
                lambda x, targets, params: _mlp(x, targets, params, weights_transposed=True)),
        Mistake("dh uses W2.T", "logits = h W2ᵀ, so dh = dlogits @ W2 (shape (N, H)).",
                lambda x, targets, params: _mlp(x, targets, params, W2_transposed=True)),
        Mistake("softmax without the max-shift (overflows on large logits)", "compute the loss with logsumexp and the probabilities with a max-shifted softmax.",
                lambda x, targets, params: _mlp(x, targets, params, naive=True)),
        Mistake("db1 taken before the tanh derivative (dh.sum(0))", "b1 sits inside the tanh, like W1: db1 = dz.sum(0) with dz = dh · (1 − h²).",
                lambda x, targets, params: _mlp(x, targets, params, db1_before_tanh=True)),
        Mistake("dW2 from the pre-activation z instead of h", "the second layer's input is h = tanh(z): dW2 = dlogitsᵀ h.",
                lambda x, targets, params: _mlp(x, targets, params, dW2_from_z=True)),
    )

    @staticmethod
    def reference(x, targets, params):
        p = {k: _leaf(params[k]) for k in KEYS}
        logits = torch.tanh(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
        loss = F.cross_entropy(logits, targets)
        return loss.detach(), dict(zip(KEYS, torch.autograd.grad(loss, [p[k] for k in KEYS])))

    def test_worked_example(self, student):
        """the shapes of the visible test: N=4, D=3, H=5, C=2"""
        self.expect(student, randn(4, 3, seed=60), torch.tensor([0, 1, 1, 0]), _params(3, 5, 2, seed=61, dtype=torch.float32))

    def test_float32(self, student):
        """N=6, D=5, H=4, C=3, float32"""
        self.expect(student, randn(6, 5, seed=62), torch.tensor([2, 0, 1, 1, 2, 0]), _params(5, 4, 3, seed=63, dtype=torch.float32, scale=0.7))

    def test_float64(self, student):
        """N=7, D=3, H=6, C=4, float64"""
        self.expect(student, randn(7, 3, seed=64, dtype=torch.float64), torch.tensor([3, 1, 0, 2, 3, 3, 1]), _params(3, 6, 4, seed=65, dtype=torch.float64))

    def test_saturated_hidden_units(self, student):
        """large first-layer weights: many tanh units saturate, float64"""
        self.expect(student, randn(5, 4, seed=66, dtype=torch.float64), torch.tensor([1, 0, 2, 2, 1]), _params(4, 3, 3, seed=67, dtype=torch.float64, scale=3.0))

    def test_large_logits(self, student):
        """stability: logits of several hundred to a thousand stay finite, float64"""
        self.expect(student, randn(5, 4, seed=68, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1]), _params(4, 6, 3, seed=69, dtype=torch.float64, W2_scale=300.0))


# -- gradient checking -----------------------------------------------------------------------

class TestRelativeError(Exercise):
    function = "relative_error"
    tolerance = {torch.float64: 1e-7}
    mistakes = (
        Mistake("no max(1e-8, ·) guard", "where a and b are both 0 the ratio is 0/0 = nan: divide by max(1e-8, |a| + |b|), e.g. (a.abs() + b.abs()).clamp_min(1e-8).",
                lambda a, b: ((a - b).abs() / (a.abs() + b.abs())).max()),
        Mistake("global max of the denominators", "divide elementwise first, then take the max: max over i of |aᵢ − bᵢ| / max(1e-8, |aᵢ| + |bᵢ|).",
                lambda a, b: (a - b).abs().max() / (a.abs() + b.abs()).max().clamp_min(1e-8)),
        Mistake("added 1e-8 instead of max(1e-8, ·)", "the guard is a floor, not an offset: max(1e-8, |a| + |b|) (clamp_min), which differs when |a| + |b| is tiny.",
                lambda a, b: ((a - b).abs() / (a.abs() + b.abs() + 1e-8)).max()),
        Mistake("mean instead of max", "the check reports the worst entry: take the max over elements.",
                lambda a, b: ((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-8)).mean()),
        Mistake("divided by |a| only", "use both magnitudes: max(1e-8, |a| + |b|), so the error is symmetric in a and b.",
                lambda a, b: ((a - b).abs() / a.abs().clamp_min(1e-8)).max()),
        Mistake("absolute error (no denominator)", "divide by max(1e-8, |a| + |b|) so the error does not depend on the scale of the gradients.",
                lambda a, b: (a - b).abs().max()),
        Mistake("|a + b| instead of |a| + |b|", "add the magnitudes, |a| + |b|: where a and b have opposite signs |a + b| is near 0 and the error explodes.",
                lambda a, b: ((a - b).abs() / (a + b).abs().clamp_min(1e-8)).max()),
        Mistake("divided by max(|a|, |b|)", "this course's metric divides by the sum |a| + |b| (floored at 1e-8), not by the larger magnitude.",
                lambda a, b: ((a - b).abs() / torch.maximum(a.abs(), b.abs()).clamp_min(1e-8)).max()),
    )

    @staticmethod
    def reference(a, b):
        return ((a - b).abs() / (a.abs() + b.abs()).clamp_min(1e-8)).max()

    def test_worked_example(self, student):
        """worked example: (0.5, 0, 3) vs (0.6, 0, 3) gives 0.1 / 1.1"""
        self.expect(student, torch.tensor([0.5, 0.0, 3.0], dtype=torch.float64), torch.tensor([0.6, 0.0, 3.0], dtype=torch.float64))

    def test_matrix_float32(self, student):
        """(4, 5) float32 gradients that differ a little"""
        a = randn(4, 5, seed=70)
        self.expect(student, a, a + randn(4, 5, seed=71, scale=1e-3))

    def test_gradients_of_different_scales_float64(self, student):
        """(3, 6) float64, entries from 1e-3 to 10"""
        a = randn(3, 6, seed=72, dtype=torch.float64) * torch.logspace(-3, 1, 6, dtype=torch.float64)
        self.expect(student, a, a * (1 + randn(3, 6, seed=73, dtype=torch.float64, scale=1e-2)))

    def test_zeros_in_both(self, student):
        """entries where a and b are both 0 count as 0 error, not nan"""
        a = torch.tensor([[0.0, 1.0, -2.0], [0.0, 0.5, 3.0]], dtype=torch.float64)
        self.expect(student, a, a + torch.tensor([[0.0, 1e-4, 0.0], [0.0, -1e-3, 1e-2]], dtype=torch.float64))

    def test_tiny_entries(self, student):
        """entries below 1e-8 are divided by 1e-8 (the floor of max(1e-8, |a| + |b|))"""
        a = torch.tensor([3e-9, 1.0, 0.0, -2.0], dtype=torch.float64)
        self.expect(student, a, torch.tensor([-1e-9, 1.0, 0.0, -2.0], dtype=torch.float64))

    def test_opposite_signs(self, student):
        """gradients with opposite signs (a sign bug) have relative error 1, float64"""
        a = randn(4, 5, seed=75, dtype=torch.float64)
        b = a * (1 + randn(4, 5, seed=76, dtype=torch.float64, scale=1e-3))
        b[1:3] = -b[1:3]
        self.expect(student, a, b)

    def test_identical(self, student):
        """identical tensors have relative error 0"""
        a = randn(2, 3, 4, seed=74, dtype=torch.float64)
        self.expect(student, a, a.clone())


# -- curvature -------------------------------------------------------------------------------

def _spd(eigenvalues, seed, dtype=torch.float64):
    """A symmetric matrix with these eigenvalues and random (non-axis) eigenvectors."""
    n = len(eigenvalues)
    Q, _ = torch.linalg.qr(randn(n, n, seed=seed, dtype=torch.float64))
    H = Q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ Q.T
    return ((H + H.T) / 2).to(dtype)


def _eig(H):
    return torch.linalg.eigvalsh(H)


class TestMaxStableLr(Exercise):
    function = "max_stable_lr"
    mistakes = (
        Mistake("1/λ_max instead of 2/λ_max", "along the top eigenvector a step multiplies w by (1 − αλ_max); |1 − αλ_max| < 1 holds up to α = 2/λ_max.",
                lambda H: 1 / _eig(H).max()),
        Mistake("λ_min used instead of λ_max", "torch.linalg.eigvalsh sorts ascending: the largest eigenvalue is the last one (or use .max()).",
                lambda H: 2 / _eig(H).min()),
        Mistake("largest diagonal entry used as λ_max", "the diagonal of a non-diagonal H is not its spectrum: use the largest eigenvalue (torch.linalg.eigvalsh).",
                lambda H: 2 / H.diagonal().max()),
        Mistake("trace (sum of eigenvalues) used instead of λ_max", "only the largest eigenvalue limits the step: 2 / λ_max.",
                lambda H: 2 / H.diagonal().sum()),
        Mistake("λ_max / 2 (inverted)", "the limit is 2 / λ_max: larger curvature means a smaller step.",
                lambda H: _eig(H).max() / 2),
        Mistake("Frobenius norm used as λ_max", "the Frobenius norm √(Σ λ²) exceeds λ_max: use torch.linalg.eigvalsh(H)[-1] (or the spectral norm, ord=2).",
                lambda H: 2 / torch.linalg.matrix_norm(H)),
        Mistake("optimal rate 2/(λ_max + λ_min), not the stability limit", "2/(λ_max + λ_min) is the fastest rate; the largest stable one is 2/λ_max.",
                lambda H: 2 / (_eig(H).max() + _eig(H).min())),
    )

    @staticmethod
    def reference(H):
        return 2 / torch.linalg.eigvalsh(H).max()

    def test_worked_example(self, student):
        """worked example: [[2, 1, 0], [1, 2, 0], [0, 0, 1]] has eigenvalues 1, 1 and 3, so 2/3"""
        self.expect(student, torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))

    def test_rotated_float64(self, student):
        """5 x 5 float64, eigenvalues 0.5 .. 7, non-diagonal"""
        self.expect(student, _spd([0.5, 1.0, 2.0, 3.0, 7.0], seed=80))

    def test_float32(self, student):
        """4 x 4 float32, eigenvalues 0.2 .. 40"""
        self.expect(student, _spd([40.0, 0.2, 5.0, 1.0], seed=81, dtype=torch.float32))

    def test_flat_directions(self, student):
        """PSD with zero eigenvalues (6 x 6 of rank 2), float64"""
        A = randn(6, 2, seed=82, dtype=torch.float64)
        self.expect(student, A @ A.T)

    def test_strong_off_diagonal(self, student):
        """off-diagonal entries dominate: diagonal 1, eigenvalues 0.1 and 1.9 (2x2), float64"""
        self.expect(student, torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64))

    def test_gradient_descent_at_the_limit(self, student):
        """gradient descent on ½ wᵀHw converges at 0.95 × your rate and diverges at 1.05 ×"""
        H = _spd([0.5, 1.0, 2.0, 3.0, 5.0], seed=83)
        lr = self.call(student, H)
        if isinstance(lr, torch.Tensor) and lr.numel() == 1:
            lr = lr.item()
        if not isinstance(lr, (int, float)) or isinstance(lr, bool):
            raise CheckFailed(f"max_stable_lr should return a number or a 0-d tensor, got {type(lr).__name__}")
        w0 = randn(5, seed=84, dtype=torch.float64)
        for factor, should_converge in ((0.95, True), (1.05, False)):
            w = w0.clone()
            for _ in range(300):
                w = w - factor * lr * (H @ w)
            ratio = (w.norm() / w0.norm()).item()
            if should_converge and not ratio < 1e-3:
                grew = f"‖w‖ changed by a factor {ratio:.3g}" if math.isfinite(ratio) else "w overflowed to inf"
                raise CheckFailed(f"with α = 0.95 × max_stable_lr(H) = {factor * lr:.4g}, 300 steps of gradient descent did not converge "
                                  f"({grew}): your rate is above the limit 2/λ_max = {2 / 5:.4g}")
            if not should_converge and not ratio > 1e3:
                raise CheckFailed(f"with α = 1.05 × max_stable_lr(H) = {factor * lr:.4g}, gradient descent still converged "
                                  f"(‖w‖ shrank to {ratio:.3g} of its start): your rate is below the limit 2/λ_max = {2 / 5:.4g}")


# -- Hessian-vector products and power iteration ---------------------------------------------

CURVATURE_FORBIDDEN = ("torch.autograd.functional", "torch.func")
EIGEN_FORBIDDEN = CURVATURE_FORBIDDEN + ("torch.linalg.eig*", "torch.linalg.svd*", "torch.svd", "torch.Tensor.svd",
                                         "torch.lobpcg", "torch.linalg.matrix_norm")

# The functions handed to hvp and top_eigenvalue, as source (they run in the student's process).
CUBIC = "lambda w: w[0] ** 2 * w[1] + w[1] ** 3"                      # H = [[2w₁, 2w₀], [2w₀, 6w₁]]
MLP_LOSS = ("lambda w, x=torch.randn(12, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64): "
            "torch.nn.functional.cross_entropy(torch.tanh(x.to(w.dtype) @ w[:12].view(4, 3).T + w[12:16]) "
            "@ w[16:24].view(2, 4).T + w[24:26], (x[:, 0] > 0).long())")
LABELS = {MLP_LOSS: "the loss of an MLP (3 → 4 → 2, 12 examples) as a function of its 26 parameters"}


def _labelled(call, args):
    """`call` (a described call) with a long function's source replaced by its label."""
    source = repr(args[0]) if args else ""
    return call.replace(f"f={source}", f"f={LABELS[source]}", 1) if source in LABELS else call


def _quadratic(A, scale=0.5):
    """f(w) = scale · wᵀAw for an integer matrix A, as source: its Hessian is 2 · scale · A everywhere."""
    return f"lambda w: {scale} * (w @ torch.tensor({A}, dtype=w.dtype) @ w)"


PSD_5 = [[5, 2, 0, 1, 0], [2, 4, 1, 0, 0], [0, 1, 3, 1, 0], [1, 0, 1, 2, 1], [0, 0, 0, 1, 1]]   # λ 0.11 .. 6.86, λ₂/λ₁ = 0.52
SADDLE_4 = [[-8, 2, 1, 0], [2, 3, 1, 0], [1, 1, 1, 2], [0, 0, 2, -1]]                          # λ −8.43 .. 3.98: largest |λ| negative
SLOW_5 = [[6, 1, 0, 0, 0], [1, 5, 1, 0, 0], [0, 1, 5, 1, 0], [0, 0, 1, 4, 1], [0, 0, 0, 1, 3]]   # λ 2.25 .. 6.85, λ₂/λ₁ = 0.85


def _hessian(f, w):
    """The Hessian of f at w, float64, as an (n, n) matrix over the flattened entries of w."""
    w = w.detach().to(torch.float64)
    return torch.autograd.functional.hessian(lambda flat: f(flat.view(w.shape)), w.reshape(-1))


def _gradient(f, w):
    w = _leaf(w)
    (grad,) = torch.autograd.grad(f(w), w)
    return grad


def _hv(f, w, v):
    return (_hessian(f, w) @ v.reshape(-1).to(torch.float64)).view(w.shape)


def _no_graph(f, w, v):
    """What a student gets without create_graph=True (or with a w that does not require grad)."""
    w = _leaf(w)
    (g,) = torch.autograd.grad(f(w), w)
    return torch.autograd.grad((g * v).sum(), w)


def _not_summed(f, w, v):
    w = _leaf(w)
    (g,) = torch.autograd.grad(f(w), w, create_graph=True)
    return torch.autograd.grad(g * v, w)[0]


def _finite_difference_hvp(f, w, v, eps, central):
    """(∇f(w + εv) − ∇f(w − εv)) / 2ε, or the forward (∇f(w + εv) − ∇f(w)) / ε, in w's dtype."""
    if central:
        return (_gradient(f, w + eps * v) - _gradient(f, w - eps * v)) / (2 * eps)
    return (_gradient(f, w + eps * v) - _gradient(f, w)) / eps


NO_GRAPH = Mistake(
    "no graph to differentiate: create_graph=True (or requires_grad) missing",
    "the gradient g must itself be differentiable: g = torch.autograd.grad(f(w), w, create_graph=True)[0], with "
    "w = w.detach().requires_grad_() (a copy that autograd tracks); then differentiate (g * v).sum() with respect to w.",
    _no_graph)
FINITE_DIFFERENCE = Mistake(
    "finite difference of gradients (close to H v, not exact)",
    "(∇f(w + εv) − ∇f(w − εv)) / 2ε only approximates H v (and loses digits in float32): differentiate gᵀv exactly, "
    "by a second torch.autograd.grad through the graph of g (create_graph=True).")


class TestHvp(Exercise):
    function = "hvp"
    forbidden = CURVATURE_FORBIDDEN
    mistakes = (
        NO_GRAPH,
        Mistake("second gradient of g * v without summing (a non-scalar)", "autograd differentiates a scalar: sum first, "
                "torch.autograd.grad((g * v).sum(), w), which gives Σⱼ vⱼ ∂gⱼ/∂w = H v.", _not_summed),
        Mistake("returned the gradient ∇f(w), not H v", "the gradient is only the first step: differentiate gᵀv = (g * v).sum() once more, with respect to w "
                "(its gradient with respect to v is g itself).",
                lambda f, w, v: _gradient(f, w)),
        Mistake("returned g ⊙ v (the gradient times v), not H v", "g * v is the gradient scaled entry by entry; H v is the gradient of (g * v).sum() with respect to w.",
                lambda f, w, v: _gradient(f, w) * v),
        Mistake("returned gᵀv (the directional derivative, a number), not H v", "gᵀv = (g * v).sum() is the scalar to differentiate: return its gradient with respect to w (shaped like w).",
                lambda f, w, v: (_gradient(f, w) * v).sum()),
        Mistake("v ignored: returned H·1 (the gradient of g.sum())", "put v into the scalar you differentiate: (g * v).sum(), not g.sum().",
                lambda f, w, v: _hv(f, w, torch.ones_like(v))),
        Mistake("v multiplied after the second gradient: (H·1) ⊙ v", "v must be inside the scalar you differentiate, ∇(gᵀv) = H v; multiplying H·1 by v afterwards is a different vector.",
                lambda f, w, v: _hv(f, w, torch.ones_like(v)) * v),
        Mistake("w.grad not cleared between the two backward passes (returns ∇f + H v)", "the first .backward() leaves g in w.grad and the second adds H v to it: "
                "take g with torch.autograd.grad(..., create_graph=True) (or set w.grad = None before the second backward).",
                lambda f, w, v: _gradient(f, w) + _hv(f, w, v)),
        Mistake("v normalised to unit length (returns H v / ‖v‖)", "hvp is linear in v: use v as given (hvp(f, w, 3v) = 3 H v, and v = 0 gives 0); normalising belongs to the power iteration.",
                lambda f, w, v: _hv(f, w, v / v.norm())),
        FINITE_DIFFERENCE,
    )

    @staticmethod
    def reference(f, w, v):
        return _hv(f, w, v)

    def describe_call(self, args, kwargs):
        """Name a long function by what it is (the MLP loss) rather than by its source."""
        return _labelled(super().describe_call(args, kwargs), args)

    def diagnose(self, got, args, kwargs, dtype, sole=None):
        """Name a mistake only when it alone explains the result (for a 0-d w, g ⊙ v is gᵀv); failing all,
        a finite difference of gradients, with any usual step, central or forward, in the inputs' dtype."""
        if super().diagnose(got, args, kwargs, dtype, sole=False) is not None:
            return super().diagnose(got, args, kwargs, dtype, sole=True)
        if not isinstance(got, torch.Tensor):
            return None
        f, w, v = args
        for eps in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7):
            for central in (True, False):
                try:
                    wrong = _finite_difference_hvp(f, w, v, eps, central)
                except Exception:  # noqa: BLE001 - a function that cannot be evaluated there does not match
                    continue
                if matches(got, wrong, dtype):
                    return FINITE_DIFFERENCE
        return None

    def test_worked_example(self, student):
        """worked example: f = w₀²w₁ + w₁³ at w = (1, 2) has H = [[4, 2], [2, 12]], so H·(3, −1) = (10, −6)"""
        self.expect(student, SourceFunction(CUBIC), torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([3.0, -1.0], dtype=torch.float64))

    def test_vector_float32(self, student):
        """w of shape (5,), float32, entries coupled (sin(w) · roll(w)); result stays float32"""
        f = SourceFunction("lambda w: (w.sin() * w.roll(1)).sum() + (w ** 4).sum() / 4")
        self.expect(student, f, randn(5, seed=90), randn(5, seed=91))

    def test_matrix_w_float64(self, student):
        """w of shape (3, 4) (log-sum-exp over all entries, rows coupled), float64: H v has w's shape"""
        f = SourceFunction("lambda w: torch.logsumexp(w.flatten(), 0) + (w.sin() * w[0]).sum()")
        self.expect(student, f, randn(3, 4, seed=92, dtype=torch.float64), randn(3, 4, seed=93, dtype=torch.float64))

    def test_zero_d_w(self, student):
        """a single number: 0-d w = 0.5, v = −2, f = w⁴/12 + eʷ, so H v = (w² + eʷ) v, float64"""
        f = SourceFunction("lambda w: w ** 4 / 12 + w.exp()")
        self.expect(student, f, torch.tensor(0.5, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64))

    def test_v_zero(self, student):
        """v = 0 gives H v = 0 (linear in v: nothing to normalise), float64"""
        f = SourceFunction("lambda w: (w.exp() * w.flip(0)).sum()")
        self.expect(student, f, randn(4, seed=94, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))

    def test_rapidly_curving_function(self, student):
        """f = Σ sin(20 w)/400 + Σ wᵢwᵢ₊₁ changes curvature fast: exact H v, not a finite difference, float64"""
        f = SourceFunction("lambda w: (torch.sin(20 * w) / 400).sum() + (w[:-1] * w[1:]).sum()")
        self.expect(student, f, randn(6, seed=95, dtype=torch.float64), randn(6, seed=96, dtype=torch.float64, scale=3.0))

    def test_mlp_loss(self, student):
        """a real loss: an MLP's cross-entropy as a function of its 26 parameters, float64"""
        self.expect(student, SourceFunction(MLP_LOSS), randn(26, seed=97, dtype=torch.float64), randn(26, seed=98, dtype=torch.float64))


def _top(f, w):
    """The eigenvalue of largest magnitude of the Hessian of f at w, with its sign (0-d float64)."""
    eigenvalues = torch.linalg.eigvalsh(_hessian(f, w))
    return eigenvalues[eigenvalues.abs().argmax()]


def _top_vector(f, w):
    eigenvalues, vectors = torch.linalg.eigh(_hessian(f, w))
    return vectors[:, eigenvalues.abs().argmax()]


NOT_NORMALISED = Mistake(
    "v not normalised at each step (H^k v overflows or underflows)",
    "after every product set v = Hv / ‖Hv‖: the length of H^k v grows like |λ₁|^k (inf after a few dozen steps when |λ₁| is large, 0 when it is small).")
EIGENVECTOR = Mistake(
    "returned the eigenvector, not the eigenvalue",
    "power iteration converges to the top eigenvector v; return its eigenvalue, the Rayleigh quotient vᵀ(Hv) for a unit v (a number).")
SEED_IGNORED = Mistake(
    "seed not used (the same start for every seed)",
    "draw the start from the seed: g = torch.Generator().manual_seed(seed); v = torch.randn(w.shape, generator=g, dtype=w.dtype).")
GLOBAL_RNG = Mistake(
    "start drawn from the global random generator (not reproducible)",
    "torch.randn without a generator gives a new start on every call: pass generator=torch.Generator().manual_seed(seed).")
ITERS_IGNORED = Mistake(
    "iters not used (the number of steps is fixed or set by a tolerance)",
    "run exactly `iters` power-iteration steps: for _ in range(iters): ...")


class TestTopEigenvalue(Exercise):
    function = "top_eigenvalue"
    forbidden = EIGEN_FORBIDDEN
    mistakes = (
        NOT_NORMALISED,
        Mistake("returned ‖H v‖: the sign of a negative eigenvalue is lost", "‖Hv‖ = |λ|; the Rayleigh quotient vᵀ(Hv) of the unit vector v keeps the sign (a saddle or a maximum has λ < 0).",
                lambda f, w, iters=100, seed=0: _top(f, w).abs()),
        Mistake("Rayleigh quotient vᵀHv of a v that is not a unit vector", "divide by vᵀv (or normalise v to length 1 before the last product): vᵀHv / vᵀv.",
                lambda f, w, iters=100, seed=0: _top(f, w) / _top_vector(f, w).abs().max() ** 2),
        EIGENVECTOR,
        SEED_IGNORED,
        GLOBAL_RNG,
        ITERS_IGNORED,
    )

    @staticmethod
    def reference(f, w, iters=100, seed=0):
        return _top(f, w)

    def describe_call(self, args, kwargs):
        """Name a long function by what it is (the MLP loss) rather than by its source."""
        return _labelled(super().describe_call(args, kwargs), args)

    def diagnose(self, got, args, kwargs, dtype):
        """Also name the mistakes seen by a property: a non-finite result, or a vector shaped like w."""
        if isinstance(got, torch.Tensor) and got.numel() > 1 and got.shape == args[1].shape:
            return EIGENVECTOR
        value = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        if isinstance(value, float) and not math.isfinite(value):
            return NOT_NORMALISED
        return super().diagnose(got, args, kwargs, dtype)

    def _number(self, student, f, w, **kwargs):
        """The student's estimate as a float (a number or a 0-d tensor), or a failed check saying what came back."""
        got = self.call(student, f, w, **kwargs)
        if isinstance(got, torch.Tensor) and got.numel() == 1 and got.dim() == 0:
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            shaped = isinstance(got, torch.Tensor) and got.shape == w.shape and got.numel() > 1
            raise CheckFailed(f"{self.describe_call((f, w), kwargs)} should return a number or a 0-d tensor, got {describe(got)}",
                              EIGENVECTOR if shaped else None)
        if not math.isfinite(got):
            raise CheckFailed(f"{self.describe_call((f, w), kwargs)} returned {got}", NOT_NORMALISED)
        return float(got)

    def test_worked_example(self, student):
        """worked example: f = w₀²w₁ + w₁³ at w = (1, 2) has H = [[4, 2], [2, 12]], top eigenvalue 8 + 2√5 = 12.472"""
        self.expect(student, SourceFunction(CUBIC), torch.tensor([1.0, 2.0], dtype=torch.float64))

    def test_quadratic_float64(self, student):
        """½ wᵀAw with a 5 x 5 A (eigenvalues 0.11 .. 6.86, not on the diagonal), float64"""
        self.expect(student, SourceFunction(_quadratic(PSD_5)), randn(5, seed=100, dtype=torch.float64))

    def test_negative_eigenvalue_dominates(self, student):
        """a saddle: eigenvalues −8.43, −2.27, 1.72, 3.98; the largest in magnitude is −8.43 (keep the sign), float64"""
        self.expect(student, SourceFunction(_quadratic(SADDLE_4)), randn(4, seed=101, dtype=torch.float64))

    def test_float32(self, student):
        """float32, 5 wᵀAw with the A of ½ wᵀAw above (λ = 68.6): the result stays float32 and finite"""
        self.expect(student, SourceFunction(_quadratic(PSD_5, scale=5.0)), randn(5, seed=102))

    def test_large_curvature(self, student):
        """a sharp minimum, λ = 6862: 100 unnormalised steps overflow float64 (|λ|¹⁰⁰ > 10³⁰⁸)"""
        self.expect(student, SourceFunction(_quadratic(PSD_5, scale=500.0)), randn(5, seed=103, dtype=torch.float64))

    def test_small_curvature(self, student):
        """a flat minimum, λ = 6.9e-6: 100 unnormalised steps underflow to 0, float64"""
        self.expect(student, SourceFunction(_quadratic(PSD_5, scale=5e-7)), randn(5, seed=104, dtype=torch.float64))

    def test_matrix_w(self, student):
        """w of shape (2, 3) on a non-quadratic f (log-sum-exp + Σ w⁴/4 + row coupling), float64"""
        f = SourceFunction("lambda w: torch.logsumexp(w.flatten(), 0) + (w ** 4).sum() / 4 + (w[0] * w[1]).sum()")
        self.expect(student, f, randn(2, 3, seed=0, dtype=torch.float64))

    def test_mlp_loss(self, student):
        """a real loss: the Hessian of an MLP's cross-entropy in its 26 parameters (λ = 1.24), float64"""
        self.expect(student, SourceFunction(MLP_LOSS), randn(26, seed=3, dtype=torch.float64))

    def test_same_seed_same_result(self, student):
        """the same seed gives the same estimate (2 steps, twice with seed=7)"""
        f, w = SourceFunction(_quadratic(SLOW_5)), randn(5, seed=105, dtype=torch.float64)
        first, second = (self._number(student, f, w, iters=2, seed=7) for _ in range(2))
        if first != second:
            raise CheckFailed(f"two calls with iters=2, seed=7 returned {first!r} and {second!r}: "
                              f"the start must come from a generator seeded with `seed`", GLOBAL_RNG)

    def test_seed_is_used(self, student):
        """different seeds start from different vectors: after 1 step the estimates differ (seeds 0, 1, 2, 3)"""
        f, w = SourceFunction(_quadratic(SLOW_5)), randn(5, seed=106, dtype=torch.float64)
        estimates = [self._number(student, f, w, iters=1, seed=seed) for seed in range(4)]
        if max(estimates) - min(estimates) <= 1e-12 * max(1.0, max(abs(e) for e in estimates)):
            high = torch.linalg.eigvalsh(_hessian(f, w))[-1].item()
            if abs(estimates[0] - high) <= 1e-6 * high:   # every seed converged: the steps, not the start, are the problem
                raise CheckFailed(f"with iters=1, seeds 0, 1, 2 and 3 all gave the converged λ_max = {estimates[0]!r}: "
                                  f"one step from a random start cannot get there (λ₂/λ₁ = 0.85)", ITERS_IGNORED)
            raise CheckFailed(f"with iters=1, seeds 0, 1, 2 and 3 all gave {estimates[0]!r}: one step from a random start "
                              f"depends on the start, so the seed must choose it", SEED_IGNORED)

    def test_iters_is_used(self, student):
        """more steps, better estimates: iters = 1, 2, 4, 100 give nondecreasing estimates below λ₁ = 6.853 (λ₂/λ₁ = 0.85)"""
        f, w = SourceFunction(_quadratic(SLOW_5)), randn(5, seed=107, dtype=torch.float64)
        eigenvalues = torch.linalg.eigvalsh(_hessian(f, w))
        low, high = eigenvalues[0].item(), eigenvalues[-1].item()
        steps = (1, 2, 4, 100)
        estimates = [self._number(student, f, w, iters=k, seed=0) for k in steps]
        shown = ", ".join(f"iters={k}: {e:.6g}" for k, e in zip(steps, estimates))
        outside = [(k, e) for k, e in zip(steps, estimates) if not low - 1e-9 <= e <= high + 1e-9]
        if outside:
            raise CheckFailed(f"a Rayleigh quotient of this H lies between λ_min = {low:.4g} and λ_max = {high:.4g}, got {shown}")
        if abs(estimates[0] - high) <= 1e-6 * high:
            raise CheckFailed(f"one step from a random start cannot have converged here (λ₂/λ₁ = 0.85), yet {shown}", ITERS_IGNORED)
        if any(later < earlier - 1e-9 for earlier, later in zip(estimates, estimates[1:])):
            raise CheckFailed(f"for a positive semi-definite H each power-iteration step can only raise the Rayleigh quotient, got {shown}")
        if abs(estimates[-1] - high) > 1e-8 * high:
            raise CheckFailed(f"100 steps should reach λ_max = {high:.10g} (the error shrinks like 0.85^(2k)), got {shown}")
