"""Hidden checks for ps7_policy_gradients: the math inside a PPO agent.

Rollouts are time-major: rewards, values and dones are (T,) for one environment or (T, N) for N
parallel environments, with T != N so that swapping the two dims cannot pass by luck. Episode
boundaries sit in the middle of the rollout, at different steps in different environments, and
gamma, lambda are not 1, so that done-mask and discount mistakes show. Log-probabilities also come
far below zero (−150 in float32, −800 in float64, as for whole sequences), where exp underflows.
The references are plain loops in float64. Tolerances: mfml_grader.compare.
"""

import math

import torch

from mfml_grader.compare import difference
from mfml_grader.exercise import CheckFailed, Exercise, Mistake, randn


def _dones(T, N, steps):
    """A (T, N) float tensor of zeros with ones at the (t, env) pairs in `steps` ((T,) when N is None)."""
    dones = torch.zeros(T) if N is None else torch.zeros(T, N)
    for step in steps:
        dones[step] = 1.0
    return dones


def _same(got, want, statement, named=lambda: None):
    """Raise CheckFailed `statement: <what differs>` unless `got` equals `want` (float64 tolerance).

    `named()` is the Mistake the failure matches (called only on a failure: a property check passes the
    exercise's diagnosis of its own call).
    """
    problem = difference(got, want, torch.float64)
    if problem:
        raise CheckFailed(f"{statement}: {problem}", named())


# -- discounted returns ----------------------------------------------------------------------

def _returns_loop(rewards, dones, gamma, *, mask_reward=False, next_step_done=False, forward=False):
    """Discounted returns, and the broken variants students write (keyword switches)."""
    T = rewards.shape[0]
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    steps = range(T) if forward else reversed(range(T))
    for t in steps:
        if next_step_done:
            alive = 1.0 - (dones[t + 1] if t + 1 < T else torch.zeros_like(dones[0]))
        else:
            alive = 1.0 - dones[t]
        if mask_reward:
            running = (rewards[t] + gamma * running) * alive
        else:
            running = rewards[t] + gamma * running * alive
        out[t] = running
    return out


def _returns_if_done(rewards, dones, gamma):
    """Returns with a Python `if dones[t]` reset: right for one environment, an error for (T, N)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        if dones[t]:
            running = torch.zeros_like(running)
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


class TestDiscountedReturns(Exercise):
    function = "discounted_returns"
    mistakes = (
        Mistake("dones ignored", "reset the running return at episode ends: G_t = r_t + γ G_{t+1} (1 − done_t).",
                lambda rewards, dones, gamma: _returns_loop(rewards, torch.zeros_like(dones), gamma)),
        Mistake("done mask applied to r_t too", "the mask cuts the future only: the last reward of an episode still counts, G_t = r_t + γ (1 − done_t) G_{t+1}.",
                lambda rewards, dones, gamma: _returns_loop(rewards, dones, gamma, mask_reward=True)),
        Mistake("done mask off by one (dones[t+1] used)", "here done_t means the episode ended after step t: mask G_{t+1} with (1 − dones[t]), not dones[t+1].",
                lambda rewards, dones, gamma: _returns_loop(rewards, dones, gamma, next_step_done=True)),
        Mistake("accumulated forward in time", "a return sums the future: loop t from T−1 down to 0 (reversed(range(T))).",
                lambda rewards, dones, gamma: _returns_loop(rewards, dones, gamma, forward=True)),
        Mistake("time taken along the last dim", "time is dim 0: index rewards[t] (shape (N,)), not rewards[..., t].",
                lambda rewards, dones, gamma: _returns_loop(rewards.mT, dones.mT, gamma).mT),
        Mistake("γ ignored (undiscounted reward-to-go)", "each step of delay shrinks a reward by γ: G_t = r_t + γ G_{t+1} (1 − done_t).",
                lambda rewards, dones, gamma: _returns_loop(rewards, dones, 1.0)),
        Mistake("a Python `if dones[t]` (one environment only)", "with N environments dones[t] has shape (N,) and `if` cannot decide for all of them: "
                "mask with arithmetic, G_t = r_t + γ G_{t+1} (1 − dones[t]), which resets each environment on its own.",
                _returns_if_done),
    )

    @staticmethod
    def reference(rewards, dones, gamma):
        returns = torch.zeros_like(rewards)                  # (T,) or (T, N)
        future = torch.zeros_like(rewards[0])                # () or (N,): nothing after the rollout
        for t in reversed(range(rewards.shape[0])):
            future = rewards[t] + gamma * future * (1.0 - dones[t])
            returns[t] = future
        return returns

    def test_worked_example(self, student):
        """worked example: rewards 1, done after step 1, γ = 0.5"""
        self.expect(student, torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.0, 1.0, 0.0, 0.0]), 0.5)

    def test_single_env_float32(self, student):
        """one environment, T = 9, two episode ends, γ = 0.9, float32"""
        self.expect(student, randn(9, seed=1), _dones(9, None, [2, 5]), 0.9)

    def test_parallel_envs_float64(self, student):
        """(T=11, N=4) float64, episodes ending at different steps in different envs, γ = 0.97"""
        dones = _dones(11, 4, [(3, 0), (7, 0), (5, 1), (0, 2), (9, 2), (10, 3)]).double()
        self.expect(student, randn(11, 4, seed=2, dtype=torch.float64), dones, 0.97)

    def test_more_envs_than_steps(self, student):
        """(T=5, N=7) float32: time is dim 0 even when N > T"""
        dones = _dones(5, 7, [(1, 0), (2, 3), (3, 6), (1, 5)])
        self.expect(student, randn(5, 7, seed=3, scale=2.0), dones, 0.8)

    def test_no_dones_is_the_discounted_sum(self, student):
        """property: with no dones, G_t = Σ_k γ^k r_{t+k}"""
        rewards = randn(8, 3, seed=4, dtype=torch.float64)
        gamma = 0.9
        args = (rewards, torch.zeros(8, 3, dtype=torch.float64), gamma)
        got = self.call(student, *args)
        powers = gamma ** (torch.arange(8, dtype=torch.float64)[None, :] - torch.arange(8, dtype=torch.float64)[:, None])
        weights = powers.triu()                                            # (T, T): γ^(s−t) for s >= t
        _same(got, weights @ rewards, "discounted_returns(rewards (8, 3), no dones, γ=0.9) should be Σ_k γ^k r_{t+k}",
              lambda: self.diagnose(got, args, {}, torch.float64, sole=True))

    def test_episodes_are_independent(self, student):
        """property: rewards after an episode end do not change the returns before it"""
        rewards = randn(10, 2, seed=5, dtype=torch.float64)
        dones = _dones(10, 2, [(4, 0), (4, 1)]).double()                  # both episodes end after step 4
        before = self.call(student, rewards, dones, 0.95)
        changed = rewards.clone()
        changed[5:] += 100.0
        after = self.call(student, changed, dones, 0.95)
        if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor) or before.shape != (10, 2) or after.shape != (10, 2):
            raise CheckFailed("discounted_returns(rewards (10, 2), dones (10, 2), 0.95) should return a tensor of shape (10, 2)")
        _same(after[:5], before[:5], "dones[4] = 1 ends both episodes after step 4, so adding 100 to rewards[5:] must not change returns[:5]",
              lambda: self.diagnose(before, (rewards, dones, 0.95), {}, torch.float64, sole=True))


# -- generalized advantage estimation ----------------------------------------------------------

def _gae(rewards, values, dones, next_value, next_done, gamma, lam, *, alive=None, next_values=None, forward=False,
         mask_value=True, mask_trace=True):
    """GAE written with explicit per-step arrays, so the broken variants only change one of them.

    alive[t]: the (1 − done) factor that multiplies step t's look-ahead; next_values[t]: the value
    that step t bootstraps from; mask_value / mask_trace: whether alive[t] multiplies γ V_{t+1} and γλ A_{t+1}.
    """
    T = rewards.shape[0]
    if next_values is None:
        next_values = torch.cat([values[1:], next_value.unsqueeze(0)])           # (T, ...)
    if alive is None:
        alive = 1.0 - torch.cat([dones[1:], next_done.unsqueeze(0)])            # (T, ...)
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in (range(T) if forward else reversed(range(T))):
        delta = rewards[t] + gamma * next_values[t] * (alive[t] if mask_value else 1.0) - values[t]
        last = delta + gamma * lam * (alive[t] if mask_trace else 1.0) * last
        advantages[t] = last
    return advantages, advantages + values


def _off_by_one(rewards, values, dones, next_value, next_done, gamma, lam, keep_next_done=False):
    alive = 1.0 - dones
    if keep_next_done:                                          # the last step still uses next_done
        alive = torch.cat([alive[:-1], 1.0 - next_done.unsqueeze(0)])
    return _gae(rewards, values, dones, next_value, next_done, gamma, lam, alive=alive)


def _without_next_done(rewards, values, dones, next_value, next_done, gamma, lam):
    alive = 1.0 - torch.cat([dones[1:], torch.zeros_like(next_done).unsqueeze(0)])
    return _gae(rewards, values, dones, next_value, next_done, gamma, lam, alive=alive)


def _no_bootstrap(rewards, values, dones, next_value, next_done, gamma, lam):
    next_values = torch.cat([values[1:], torch.zeros_like(next_value).unsqueeze(0)])
    return _gae(rewards, values, dones, next_value, next_done, gamma, lam, next_values=next_values)


def _returns_are_advantages(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    advantages, _ = _gae(rewards, values, dones, next_value, next_done, gamma, lam)
    return advantages, advantages


def _td_errors(rewards, values, dones, next_value, next_done, gamma):
    """δ_t = r_t + γ V_{t+1} (1 − dones[t+1]) − V_t, vectorised (CleanRL convention)."""
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    alive = 1.0 - torch.cat([dones[1:], next_done.unsqueeze(0)])
    return rewards + gamma * next_values * alive - values


class TestComputeGae(Exercise):
    function = "compute_gae"
    mistakes = (
        Mistake("returns = advantages (forgot + values)", "the value targets are returns = advantages + values.",
                _returns_are_advantages),
        Mistake("γ and λ swapped", "δ_t discounts V_{t+1} by γ; the advantage sum decays by γλ. Check the argument order gamma, lam.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _gae(r, v, d, nv, nd, lam, gamma)),
        Mistake("λ ignored (λ = 1)", "lastgaelam = δ_t + γ λ (1 − done) lastgaelam: multiply by λ too.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _gae(r, v, d, nv, nd, gamma, 1.0)),
        Mistake("no done mask", "multiply both the bootstrap value and lastgaelam by nextnonterminal = 1 − dones[t+1] (1 − next_done at t = T−1).",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _gae(r, v, d, nv, nd, gamma, lam, alive=torch.ones_like(r))),
        Mistake("done mask missing on the running advantage (γλ·A_{t+1})", "an episode end cuts the sum of TD errors too: "
                "lastgaelam = δ_t + γλ·nextnonterminal·lastgaelam, or the next episode's advantages leak into this one.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _gae(r, v, d, nv, nd, gamma, lam, mask_trace=False)),
        Mistake("done mask missing on the bootstrap value (γ·V_{t+1})", "at an episode end there is no next state to bootstrap from: "
                "δ_t = r_t + γ·nextvalues·nextnonterminal − V_t.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _gae(r, v, d, nv, nd, gamma, lam, mask_value=False)),
        Mistake("done mask off by one (dones[t] used instead of dones[t+1])", "in this convention dones[t] says obs t starts a new episode, so step t looks ahead through 1 − dones[t+1] (1 − next_done for the last step).",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _off_by_one(r, v, d, nv, nd, gamma, lam)),
        Mistake("done mask off by one (dones[t] used instead of dones[t+1])", "in this convention dones[t] says obs t starts a new episode, so step t looks ahead through 1 − dones[t+1] (1 − next_done for the last step).",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _off_by_one(r, v, d, nv, nd, gamma, lam, keep_next_done=True)),
        Mistake("next_done ignored", "at t = T−1 the mask is nextnonterminal = 1 − next_done.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _without_next_done(r, v, d, nv, nd, gamma, lam)),
        Mistake("no bootstrap from next_value", "the last step looks ahead to next_value (the critic's value of the observation after the rollout), not 0.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _no_bootstrap(r, v, d, nv, nd, gamma, lam)),
        Mistake("accumulated forward in time", "advantages sum future TD errors: loop t from T−1 down to 0.",
                lambda r, v, d, nv, nd, gamma=0.99, lam=0.95: _gae(r, v, d, nv, nd, gamma, lam, forward=True)),
    )

    @staticmethod
    def reference(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
        T = rewards.shape[0]
        advantages = torch.zeros_like(rewards)               # (T,) or (T, N)
        lastgaelam = torch.zeros_like(rewards[0])            # () or (N,)
        for t in reversed(range(T)):
            if t == T - 1:
                nextnonterminal = 1.0 - next_done
                nextvalues = next_value
            else:
                nextnonterminal = 1.0 - dones[t + 1]
                nextvalues = values[t + 1]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
            advantages[t] = lastgaelam
        return advantages, advantages + values

    def test_worked_example(self, student):
        """worked example: T = 3, obs 1 starts a new episode, γ = 0.5, λ = 0.8"""
        self.expect(student, torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]),
                    torch.tensor(4.0), torch.tensor(0.0), gamma=0.5, lam=0.8)

    def test_single_env_defaults_float32(self, student):
        """one environment, T = 10, resets at steps 3 and 7, default γ = 0.99, λ = 0.95, float32"""
        self.expect(student, randn(10, seed=10), randn(10, seed=11), _dones(10, None, [3, 7]), randn(1, seed=12)[0], torch.tensor(0.0))

    def test_parallel_envs_float64(self, student):
        """(T=12, N=5) float64, resets at different steps per env, some next_done = 1, γ = 0.9, λ = 0.8"""
        dones = _dones(12, 5, [(3, 0), (8, 0), (5, 1), (1, 2), (11, 2), (6, 3), (11, 4)]).double()
        next_done = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
        self.expect(student, randn(12, 5, seed=13, dtype=torch.float64), randn(12, 5, seed=14, dtype=torch.float64),
                    dones, randn(5, seed=15, dtype=torch.float64), next_done, gamma=0.9, lam=0.8)

    def test_more_envs_than_steps_float32(self, student):
        """(T=6, N=8) float32, no episode ends at the last step, γ = 0.95, λ = 0.9"""
        dones = _dones(6, 8, [(2, 0), (4, 1), (1, 3), (3, 3), (5, 7)])
        dones[5] = 0.0
        self.expect(student, randn(6, 8, seed=16), randn(6, 8, seed=17, scale=3.0), dones, randn(8, seed=18, scale=3.0),
                    torch.zeros(8), gamma=0.95, lam=0.9)

    def test_lambda_one_gives_bootstrapped_returns(self, student):
        """property: λ = 1 and no dones: returns = Σ_k γ^k r_{t+k} + γ^(T−t) V(next obs)"""
        T, N, gamma = 7, 3, 0.9
        rewards, values, next_value = randn(T, N, seed=19, dtype=torch.float64), randn(T, N, seed=20, dtype=torch.float64), randn(N, seed=21, dtype=torch.float64)
        args, kwargs = (rewards, values, torch.zeros(T, N, dtype=torch.float64), next_value, torch.zeros(N, dtype=torch.float64)), {"gamma": gamma, "lam": 1.0}
        got = self.call(student, *args, **kwargs)
        steps = torch.arange(T, dtype=torch.float64)
        weights = (gamma ** (steps[None, :] - steps[:, None])).triu()                     # (T, T)
        want = weights @ rewards + (gamma ** (T - steps))[:, None] * next_value            # (T, N)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed("compute_gae should return a tuple (advantages, returns)")
        _same(got[1], want, f"with λ = 1 and no dones, returns[t] should be the discounted sum of rewards bootstrapped with γ^(T−t)·next_value (T={T}, N={N}, γ={gamma})",
              lambda: self.diagnose(got, args, kwargs, torch.float64, sole=True))

    def test_lambda_zero_gives_td_errors(self, student):
        """property: λ = 0: advantages are the one-step TD errors δ_t"""
        dones = _dones(8, 3, [(2, 0), (5, 1), (7, 2)]).double()
        args = (randn(8, 3, seed=22, dtype=torch.float64), randn(8, 3, seed=23, dtype=torch.float64), dones,
                randn(3, seed=24, dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
        got = self.call(student, *args, gamma=0.9, lam=0.0)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed("compute_gae should return a tuple (advantages, returns)")
        _same(got[0], _td_errors(*args, 0.9), "with λ = 0, advantages[t] should be δ_t = r_t + γ V_{t+1} (1 − dones[t+1]) − V_t",
              lambda: self.diagnose(got, args, {"gamma": 0.9, "lam": 0.0}, torch.float64, sole=True))

    def test_no_value_leaks_across_a_reset(self, student):
        """property: rewards and values of a later episode do not change earlier advantages"""
        rewards, values = randn(9, 2, seed=25, dtype=torch.float64), randn(9, 2, seed=26, dtype=torch.float64)
        dones = _dones(9, 2, [(5, 0), (5, 1)]).double()                       # obs 5 starts a new episode in both envs
        next_value, next_done = randn(2, seed=27, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
        before = self.call(student, rewards, values, dones, next_value, next_done, gamma=0.9, lam=0.8)
        r2, v2 = rewards.clone(), values.clone()
        r2[5:] += 50.0
        v2[5:] -= 50.0
        after = self.call(student, r2, v2, dones, next_value + 50.0, next_done, gamma=0.9, lam=0.8)
        for got in (before, after):
            if not isinstance(got, (tuple, list)) or len(got) != 2 or not isinstance(got[0], torch.Tensor) or got[0].shape != (9, 2):
                raise CheckFailed("compute_gae should return a tuple (advantages, returns) of (T, N) tensors")
        _same(after[0][:5], before[0][:5], "dones[5] = 1 (obs 5 starts a new episode), so changing rewards, values and next_value from step 5 on must not change advantages[:5]",
              lambda: self.diagnose(before, (rewards, values, dones, next_value, next_done), {"gamma": 0.9, "lam": 0.8}, torch.float64, sole=True))

    def test_terminal_last_step_ignores_next_value(self, student):
        """property: when next_done = 1 the rollout's last step does not bootstrap, so next_value does not matter"""
        args = (randn(6, 4, seed=28, dtype=torch.float64), randn(6, 4, seed=29, dtype=torch.float64), _dones(6, 4, [(2, 1)]).double())
        next_done = torch.ones(4, dtype=torch.float64)
        first = self.call(student, *args, randn(4, seed=30, dtype=torch.float64), next_done, gamma=0.9, lam=0.8)
        far = randn(4, seed=31, dtype=torch.float64, scale=100.0)
        second = self.call(student, *args, far, next_done, gamma=0.9, lam=0.8)
        _same(second, first, "with next_done = 1 in every env, changing next_value must not change (advantages, returns)",
              lambda: self.diagnose(second, (*args, far, next_done), {"gamma": 0.9, "lam": 0.8}, torch.float64, sole=True))


# -- PPO clipped objective ---------------------------------------------------------------------

def _ppo(logp_new, logp_old, advantages, clip_eps=0.2, *, ratio=None, reduce=torch.min, sign=-1.0, clip_advantage=False, clipped_only=False,
         total=False, min_ratio=False, normalise=False):
    r = torch.exp(logp_new - logp_old) if ratio is None else ratio
    if normalise:                                   # CleanRL's norm_adv: not part of this loss
        centred = advantages - advantages.mean()
        std = (centred.square().sum() / (advantages.numel() - 1)).sqrt()          # unbiased, nan (no warning) for one sample
        advantages = centred / (std + 1e-8)
    unclipped = r * advantages
    if clip_advantage:
        clipped = r * advantages.clamp(1 - clip_eps, 1 + clip_eps)
    else:
        clipped = r.clamp(1 - clip_eps, 1 + clip_eps) * advantages
    if min_ratio:                                   # min over the ratios, then times A: a max where A < 0
        objective = torch.min(r, r.clamp(1 - clip_eps, 1 + clip_eps)) * advantages
    else:
        objective = clipped if clipped_only else reduce(unclipped, clipped)
    return sign * (objective.sum() if total else objective.mean())


ADVANTAGES_NORMALISED = Mistake(
    "advantages normalised (or centred) inside the loss",
    "the loss uses the advantages it is given: −mean(min(r·A, clip(r)·A)). Normalising them ((A − mean) / std, CleanRL's norm_adv) "
    "belongs to the training loop; inside this function it makes the loss at r = 1 zero instead of −mean(A).",
    lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, normalise=True))
RATIO_UNDERFLOW = (
    "ratio as exp(logp_new) / exp(logp_old) (0/0 for very negative log-probabilities)",
    "log-probabilities of long sequences or continuous actions reach −150 and below, where exp underflows to 0 (float32: below about −103): "
    "exponentiate the difference, r = exp(logp_new − logp_old).")


def _log_probs_far_below_zero(seed):
    """(float32 around −150, float64 around −800) pairs (logp_new, logp_old): sequence log-probabilities whose exp is 0."""
    pairs = []
    for dtype, shift in ((torch.float32, -150.0), (torch.float64, -800.0)):
        old = randn(16, seed=seed, dtype=torch.float64, scale=5.0, shift=shift)
        new = old + randn(16, seed=seed + 1, dtype=torch.float64, scale=0.5)
        pairs.append((new.to(dtype), old.to(dtype)))
    return pairs


def _expect_finite(exercise, student, args, statement):
    """exercise.expect(), but a nan or inf result names the ratio underflow (whatever the dtype: its compute only reproduces float64's)."""
    got = exercise.call(student, *args)
    value = got if isinstance(got, torch.Tensor) else torch.tensor(float(got)) if isinstance(got, (int, float)) else None
    if value is not None and value.numel() == 1 and not bool(torch.isfinite(value).all()):
        raise CheckFailed(f"{statement}: got {value.item()}, expected {exercise.reference(*[a.double() for a in args]).item():.6g}", Mistake(*RATIO_UNDERFLOW))
    exercise.expect(student, *args)


class TestPpoClipLoss(Exercise):
    function = "ppo_clip_loss"
    mistakes = (
        Mistake("max instead of min", "PPO is pessimistic: take the minimum of r·A and clip(r)·A, then negate the mean.",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, reduce=torch.max)),
        Mistake("missing minus sign", "optimizers minimise: the loss is −mean(min(r·A, clip(r)·A)).",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, sign=1.0)),
        Mistake("clipped the advantage instead of the ratio", "clip the ratio: clip(r, 1 − ε, 1 + ε) · A; the advantage is used as is.",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, clip_advantage=True)),
        Mistake("only the clipped term (no min)", "take min(r·A, clip(r)·A): the clipped term alone gives credit for moves that lower the objective.",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, clipped_only=True)),
        Mistake("min of the ratios, then times A (a max where A < 0)", "take the min of the two products, min(r·A, clip(r)·A): "
                "for A < 0, min(r, clip(r))·A picks the larger objective and removes the penalty of a bad move.",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, min_ratio=True)),
        ADVANTAGES_NORMALISED,
        Mistake("ratio as logp_new / logp_old", "these are log-probabilities: r = exp(logp_new − logp_old).",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, ratio=new / old)),
        Mistake(*RATIO_UNDERFLOW, lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, ratio=new.exp() / old.exp())),
        Mistake("log-ratio used as the ratio (no exp)", "r = exp(logp_new − logp_old): exponentiate the difference.",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, ratio=new - old)),
        Mistake("ratio inverted (old over new)", "r = π_new / π_old = exp(logp_new − logp_old).",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, ratio=torch.exp(old - new))),
        Mistake("sum instead of mean", "average over the samples: −mean(...), not −sum(...).",
                lambda new, old, A, clip_eps=0.2: _ppo(new, old, A, clip_eps, total=True)),
    )

    @staticmethod
    def reference(logp_new, logp_old, advantages, clip_eps=0.2):
        ratio = torch.exp(logp_new - logp_old)
        unclipped = ratio * advantages
        clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
        return -torch.minimum(unclipped, clipped).mean()

    def test_ratio_one_gives_minus_mean_advantage(self, student):
        """property: when logp_new = logp_old (r = 1) the loss is −mean(A)"""
        logp = randn(10, 3, seed=49, dtype=torch.float64, shift=-1.0)
        advantages = randn(10, 3, seed=50, dtype=torch.float64, shift=1.0)
        got = self.call(student, logp, logp.clone(), advantages)
        problem = difference(got, -advantages.mean(), torch.float64)
        if problem:
            value = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
            centred = isinstance(value, (int, float)) and abs(value) < 1e-6                  # mean of centred advantages
            mistake = self.diagnose(got, (logp, logp, advantages), {}, torch.float64, sole=True) or (ADVANTAGES_NORMALISED if centred else None)
            raise CheckFailed(f"ppo_clip_loss(logp, logp, A) for (10, 3) float64 (ratio 1 everywhere) should be −mean(A) = "
                              f"{-advantages.mean().item():.6g}: {problem}", mistake)

    def test_worked_example(self, student):
        """worked example: ratios 1.5 and 0.5 with advantages of both signs, ε = 0.2"""
        logp_new = torch.tensor([1.5, 1.5, 0.5, 0.5]).log()
        self.expect(student, logp_new, torch.zeros(4), torch.tensor([2.0, -1.0, 3.0, -0.5]))

    def test_batch_float32(self, student):
        """(64,) float32: ratios inside and outside [1 − ε, 1 + ε], advantages of both signs"""
        logp_old = randn(64, seed=40, shift=-1.5)
        self.expect(student, logp_old + randn(64, seed=41, scale=0.4), logp_old, randn(64, seed=42, scale=2.0))

    def test_time_by_env_float64_other_eps(self, student):
        """(T=16, N=4) float64, clip_eps = 0.1"""
        logp_old = randn(16, 4, seed=43, dtype=torch.float64, shift=-2.0)
        self.expect(student, logp_old + randn(16, 4, seed=44, dtype=torch.float64, scale=0.3), logp_old,
                    randn(16, 4, seed=45, dtype=torch.float64), clip_eps=0.1)

    def test_far_from_old_policy(self, student):
        """log-ratios up to ±3 (ratios 0.05 to 20), float64"""
        logp_old = randn(32, seed=46, dtype=torch.float64, shift=-1.0)
        self.expect(student, logp_old + randn(32, seed=47, dtype=torch.float64, scale=1.5), logp_old,
                    randn(32, seed=48, dtype=torch.float64, scale=3.0), 0.3)

    def test_returns_a_tensor(self, student):
        """the loss is a 0-d tensor (a Python number cannot be backpropagated)"""
        logp_old = randn(8, seed=51, dtype=torch.float64, shift=-1.0)
        got = self.expect(student, logp_old + randn(8, seed=52, dtype=torch.float64, scale=0.6), logp_old, randn(8, seed=58, dtype=torch.float64))
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"ppo_clip_loss returned a {type(got).__name__}; return the 0-d tensor itself (no .item() or float()), so that loss.backward() works")

    def test_log_probs_far_below_zero(self, student):
        """log-probabilities around −150 (float32) and −800 (float64), e.g. of whole sequences: the loss stays finite"""
        for (new, old), dtype in zip(_log_probs_far_below_zero(seed=54), ("float32", "float64")):
            _expect_finite(self, student, (new, old, randn(16, seed=56, dtype=new.dtype)),
                           f"ppo_clip_loss(logp_new, logp_old, A) with {dtype} log-probabilities near {old.mean().item():.0f}")

    def test_clipping_only_removes_incentives(self, student):
        """property: the clip removes the gain of moving r past 1 ± ε, never the penalty of a bad move"""
        cases = (
            (1.5, 2.0, -(1.2 * 2.0), "A > 0 and r > 1 + ε: clipped, the loss stays at −(1 + ε)·A"),
            (0.5, 2.0, -(0.5 * 2.0), "A > 0 and r < 1 − ε: not clipped, the loss is −r·A"),
            (0.5, -2.0, -(0.8 * -2.0), "A < 0 and r < 1 − ε: clipped, the loss stays at −(1 − ε)·A"),
            (1.5, -2.0, -(1.5 * -2.0), "A < 0 and r > 1 + ε: not clipped, the loss is −r·A"),
        )
        # the four cases in one batch, with advantages of different sizes so that no two mistakes agree on it
        together = (torch.tensor([1.5, 0.5, 0.5, 1.5], dtype=torch.float64).log(), torch.zeros(4, dtype=torch.float64),
                    torch.tensor([2.0, 3.0, -1.5, -0.5], dtype=torch.float64))
        for ratio, advantage, want, meaning in cases:
            args = (torch.tensor([math.log(ratio)], dtype=torch.float64), torch.zeros(1, dtype=torch.float64), torch.tensor([advantage], dtype=torch.float64))
            got = self.call(student, *args)
            problem = difference(got, torch.tensor(want, dtype=torch.float64), torch.float64)
            if problem:                                 # one sample fits several mistakes: name the one the four cases together fit
                both = self.call(student, *together)
                wrong = difference(both, self.reference(*together), torch.float64) is not None
                named = self.diagnose(both, together, {}, torch.float64, sole=True) if wrong else None
                raise CheckFailed(f"one sample with r = {ratio}, A = {advantage:+g}, ε = 0.2 ({meaning} = {want:g}): {problem}", named)


# -- approximate KL ------------------------------------------------------------------------------

def _k3(log_ratio):
    return (torch.exp(log_ratio) - 1.0) - log_ratio


class TestApproxKl(Exercise):
    function = "approx_kl"
    mistakes = (
        Mistake("k1 estimator mean(log r)", "mean(log r) is unbiased but noisy and can be negative; use mean((r − 1) − log r).",
                lambda new, old: (new - old).mean()),
        Mistake("k1 estimator −mean(log r)", "−mean(log r) is unbiased but noisy and can be negative; use mean((r − 1) − log r).",
                lambda new, old: (old - new).mean()),
        Mistake("mean(r − 1) (the − log r term missing)", "subtract log r = logp_new − logp_old: mean((r − 1) − log r).",
                lambda new, old: (torch.exp(new - old) - 1.0).mean()),
        Mistake("log r added instead of subtracted", "the estimator is (r − 1) − log r, which is never negative.",
                lambda new, old: ((torch.exp(new - old) - 1.0) + (new - old)).mean()),
        Mistake("ratio inverted (old over new)", "r = exp(logp_new − logp_old).",
                lambda new, old: _k3(old - new).mean()),
        Mistake("k2 estimator mean((log r)² / 2)", "use the k3 estimator mean((r − 1) − log r) that the spec asks for.",
                lambda new, old: ((new - old) ** 2 / 2).mean()),
        Mistake("sum instead of mean", "average over the samples.",
                lambda new, old: _k3(new - old).sum()),
        Mistake("mean taken before the nonlinearity ((e^m − 1) − m with m = mean log r)", "apply (r − 1) − log r to every sample, then average: "
                "the estimate of each sample is ≥ 0, and their mean is not the estimate at the mean log-ratio.",
                lambda new, old: _k3((new - old).mean())),
        Mistake(*RATIO_UNDERFLOW, lambda new, old: ((new.exp() / old.exp() - 1.0) - (new - old)).mean()),
    )

    @staticmethod
    def reference(logp_new, logp_old):
        log_ratio = logp_new - logp_old
        ratio = torch.exp(log_ratio)
        return ((ratio - 1.0) - log_ratio).mean()

    def test_worked_example(self, student):
        """worked example: ratios 2 and 1 give ((1 − ln 2) + 0) / 2"""
        self.expect(student, torch.tensor([math.log(2.0), 0.0]), torch.zeros(2))

    def test_batch_float32(self, student):
        """(64,) float32 log-probabilities"""
        logp_old = randn(64, seed=60, shift=-1.5)
        self.expect(student, logp_old + randn(64, seed=61, scale=0.5), logp_old)

    def test_time_by_env_float64(self, student):
        """(T=8, N=5) float64"""
        logp_old = randn(8, 5, seed=62, dtype=torch.float64, shift=-2.0)
        self.expect(student, logp_old + randn(8, 5, seed=63, dtype=torch.float64, scale=0.3), logp_old)

    def test_large_policy_change(self, student):
        """log-ratios up to ±8, float64"""
        logp_old = randn(20, seed=64, dtype=torch.float64, shift=-3.0)
        self.expect(student, logp_old + randn(20, seed=65, dtype=torch.float64, scale=4.0), logp_old)

    def test_log_probs_far_below_zero(self, student):
        """log-probabilities around −150 (float32) and −800 (float64), e.g. of whole sequences: the estimate stays finite"""
        for (new, old), dtype in zip(_log_probs_far_below_zero(seed=67), ("float32", "float64")):
            _expect_finite(self, student, (new, old), f"approx_kl(logp_new, logp_old) with {dtype} log-probabilities near {old.mean().item():.0f}")

    def test_zero_when_policies_agree(self, student):
        """property: approx_kl(logp, logp) = 0"""
        logp = randn(12, 3, seed=66, dtype=torch.float64, shift=-1.0)
        got = self.call(student, logp, logp.clone())
        _same(got, torch.tensor(0.0, dtype=torch.float64), "approx_kl(logp, logp) should be 0 (the policy did not change)",
              lambda: self.diagnose(got, (logp, logp), {}, torch.float64, sole=True))

    def test_never_negative(self, student):
        """property: every sample's estimate (r − 1) − log r is ≥ 0, whichever way the policy moved"""
        for log_ratio in (-3.0, -0.5, 0.5, 3.0):
            got = self.call(student, torch.tensor([log_ratio - 1.0], dtype=torch.float64), torch.tensor([-1.0], dtype=torch.float64))
            if isinstance(got, torch.Tensor):
                got = got.item() if got.numel() == 1 else float("nan")
            if not isinstance(got, (int, float)) or not got >= -1e-12:
                raise CheckFailed(f"approx_kl of one sample with log r = {log_ratio:+g} gave {got!r}; a KL estimate must be ≥ 0 "
                                  f"(expected {_k3(torch.tensor(log_ratio)).item():.6g})")
