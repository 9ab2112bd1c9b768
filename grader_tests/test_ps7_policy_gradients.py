"""Hidden checks for ps7_policy_gradients: the math inside a PPO agent.

Rollouts are time-major: rewards, values and dones are (T,) for one environment or (T, N) for N
parallel environments, with T != N so that swapping the two dims cannot pass by luck. Episode
boundaries sit in the middle of the rollout, at different steps in different environments, and
gamma, lambda are not 1, so that done-mask and discount mistakes show. Log-probabilities also come
far below zero (−150 in float32, −800 in float64, as for whole sequences), where exp underflows.
The references are plain loops in float64. The Gaussian policy's references are
torch.distributions.Normal in float64 (its log_prob and entropy are closed forms, nothing is clamped),
on (B, A) inputs with B != A, a state-independent (A,) and a per-sample (B, A) log_std, and actions
up to 60 σ from the mean. PPO-loss coefficients are not 1 (0.5 and 0.01, or 0.25 and 0.05), so a
missing ½ or swapped coefficients show. Tolerances: mfml_grader.compare.
"""

import math

import torch

from mfml_grader.compare import describe, difference
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


# -- the whole PPO loss ------------------------------------------------------------------------

def _ppo_total(new, old, A, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01, *, policy_sign=-1.0, unclipped=False,
               ratio=None, half=0.5, value_reduce="mean", value_sign=1.0, ent_sign=-1.0, entropy_sum=False, swap_coefs=False,
               scaled_value=False, no_entropy=False, no_value=False, order=(0, 1, 2, 3)):
    """(total, policy_loss, value_loss, entropy_mean), and the broken variants students write (keyword switches)."""
    r = torch.exp(new - old) if ratio is None else ratio
    if unclipped:
        policy = policy_sign * (r * A).mean()
    else:
        policy = _ppo(new, old, A, clip_eps, ratio=r, sign=policy_sign)
    error = values - returns
    if value_reduce == "mean":
        value = half * error.square().mean()
    elif value_reduce == "sum":
        value = half * error.square().sum()
    else:                                                           # the mean taken before squaring
        value = half * error.mean().square()
    ent = entropy.sum() if entropy_sum else entropy.mean()
    c_v, c_h = (ent_coef, vf_coef) if swap_coefs else (vf_coef, ent_coef)
    total = policy + (0.0 if no_entropy else ent_sign * c_h * ent) + (0.0 if no_value else value_sign * c_v * value)
    if scaled_value:                                                # the total is right, the reported value loss is not
        value = vf_coef * value
    items = (total, policy, value, ent)
    return tuple(items[i] for i in order)


def _with(**switches):
    return lambda *args, **kwargs: _ppo_total(*args, **kwargs, **switches)


PPO_LOSS_NAMES = ("total", "policy_loss", "value_loss", "entropy_mean")


def _ppo_loss_inputs(shape, seed, dtype, scale=0.4):
    """(logp_new, logp_old, advantages, values, returns, entropy) of one shape: ratios inside and outside 1 ± ε, advantages of both signs."""
    logp_old = randn(*shape, seed=seed, dtype=dtype, shift=-1.5)
    return (logp_old + randn(*shape, seed=seed + 1, dtype=dtype, scale=scale), logp_old, randn(*shape, seed=seed + 2, dtype=dtype, scale=2.0),
            randn(*shape, seed=seed + 3, dtype=dtype, scale=2.0), randn(*shape, seed=seed + 4, dtype=dtype, scale=2.0, shift=0.5),
            randn(*shape, seed=seed + 5, dtype=dtype, scale=0.3, shift=1.2))


def _four_items(got, call):
    """`got` as a 4-tuple whose items are 0-d tensors or numbers; a failed check otherwise."""
    if not isinstance(got, (tuple, list)) or len(got) != 4:
        raise CheckFailed(f"{call} should return a tuple of 4 items (total, policy_loss, value_loss, entropy_mean), got {describe(got)}")
    for name, item in zip(PPO_LOSS_NAMES, got):
        if not (isinstance(item, (int, float)) or isinstance(item, torch.Tensor) and item.numel() == 1):
            raise CheckFailed(f"{call}: {name} should be a 0-d tensor (one number), got {describe(item)}")
    return [float(item) for item in got]


class TestPpoLoss(Exercise):
    function = "ppo_loss"
    substitutes = ("ppo_clip_loss",)
    mistakes = (
        Mistake("entropy bonus added to the loss (+ ent_coef · entropy)", "the bonus rewards a spread-out policy, and the optimizer minimises: "
                "total = policy_loss − ent_coef · entropy_mean + vf_coef · value_loss. Adding it pushes the policy to collapse.",
                _with(ent_sign=1.0)),
        Mistake("entropy bonus missing from the total", "total = policy_loss − ent_coef · entropy_mean + vf_coef · value_loss.",
                _with(no_entropy=True)),
        Mistake("value loss subtracted from the total", "the critic minimises its error: total = ... + vf_coef · value_loss (a minus sign makes it maximise it).",
                _with(value_sign=-1.0)),
        Mistake("value loss missing from the total", "total = policy_loss − ent_coef · entropy_mean + vf_coef · value_loss: the critic is trained by the same loss.",
                _with(no_value=True)),
        Mistake("value loss without the ½", "value_loss = 0.5 · mean((values − returns)²).",
                _with(half=1.0)),
        Mistake("vf_coef and ent_coef swapped", "vf_coef multiplies the value loss, ent_coef the entropy: total = policy_loss − ent_coef · entropy_mean + vf_coef · value_loss.",
                _with(swap_coefs=True)),
        Mistake("value loss summed instead of averaged", "average the squared errors over the samples: 0.5 · mean((values − returns)²).",
                _with(value_reduce="sum")),
        Mistake("mean taken before squaring (½ (mean(values − returns))²)", "square each sample's error first, then average: "
                "0.5 · mean((values − returns)²); errors of opposite signs must not cancel.",
                _with(value_reduce="mean first")),
        Mistake("entropy summed instead of averaged", "entropy_mean = entropy.mean(): one average over the samples.",
                _with(entropy_sum=True)),
        Mistake("returned value_loss already multiplied by vf_coef", "return the value loss itself, 0.5 · mean((values − returns)²); vf_coef only weighs it in the total.",
                _with(scaled_value=True)),
        Mistake("results in the wrong order", "return the tuple (total, policy_loss, value_loss, entropy_mean), in that order.",
                _with(order=(0, 1, 3, 2))),
        Mistake("policy loss without the minus sign", "the policy loss is the negated surrogate: −mean(min(r·A, clip(r)·A)) (ppo_clip_loss).",
                _with(policy_sign=1.0)),
        Mistake("policy loss unclipped (−mean(r · A))", "use the clipped surrogate: −mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A)), e.g. ppo_clip_loss(logp_new, logp_old, advantages, clip_eps).",
                _with(unclipped=True)),
        Mistake(*RATIO_UNDERFLOW, lambda new, old, *rest, **kwargs: _ppo_total(new, old, *rest, **kwargs, ratio=new.exp() / old.exp())),
    )

    @staticmethod
    def reference(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
        ratio = torch.exp(logp_new - logp_old)
        policy_loss = -torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantages).mean()
        value_loss = 0.5 * ((values - returns) ** 2).mean()
        entropy_mean = entropy.mean()
        return policy_loss - ent_coef * entropy_mean + vf_coef * value_loss, policy_loss, value_loss, entropy_mean

    def test_worked_example(self, student):
        """worked example: the four clipping cases of ppo_clip_loss, value errors −1, 0, −1, −2, default coefficients"""
        self.expect(student, torch.tensor([1.5, 1.5, 0.5, 0.5]).log(), torch.zeros(4), torch.tensor([2.0, -1.0, 3.0, -0.5]),
                    torch.tensor([1.0, 2.0, 0.0, -1.0]), torch.tensor([2.0, 2.0, 1.0, 1.0]), torch.tensor([1.2, 0.9, 1.5, 0.8]))

    def test_returns_tensors(self, student):
        """the four results are 0-d tensors (total.backward() must reach the networks)"""
        args = _ppo_loss_inputs((6,), seed=70, dtype=torch.float64)
        got = self.call(student, *args)
        _four_items(got, "ppo_loss(...) for (6,) float64 inputs")
        for name, item in zip(PPO_LOSS_NAMES, got):
            if not isinstance(item, torch.Tensor) or item.shape != ():
                raise CheckFailed(f"ppo_loss returned {name} as {describe(item)}; return 0-d tensors (no .item(), float() or torch.tensor(...) "
                                  "around a result), so that total.backward() sends gradients to the policy and the critic")

    def test_batch_float32(self, student):
        """(64,) float32, default ε = 0.2, vf_coef = 0.5, ent_coef = 0.01"""
        self.expect(student, *_ppo_loss_inputs((64,), seed=71, dtype=torch.float32))

    def test_time_by_env_float64_other_coefficients(self, student):
        """(T=8, N=3) float64, clip_eps = 0.1, vf_coef = 0.25, ent_coef = 0.05"""
        self.expect(student, *_ppo_loss_inputs((8, 3), seed=78, dtype=torch.float64, scale=0.3), clip_eps=0.1, vf_coef=0.25, ent_coef=0.05)

    def test_entropy_bonus_lowers_the_loss(self, student):
        """property: raising ent_coef from 0 to 0.1 changes the total by −0.1 · mean(entropy), nothing else"""
        args = _ppo_loss_inputs((10,), seed=85, dtype=torch.float64)
        call = "ppo_loss(..., ent_coef=0.1) − ppo_loss(..., ent_coef=0) for (10,) float64"
        with_bonus = self.call(student, *args, ent_coef=0.1)
        without = self.call(student, *args, ent_coef=0.0)
        change = _four_items(with_bonus, call)[0] - _four_items(without, call)[0]
        want = -0.1 * args[5].mean().item()
        if abs(change - want) > 1e-9:
            raise CheckFailed(f"{call}: the total changed by {change:.6g}, expected −0.1 · mean(entropy) = {want:.6g} "
                              "(the entropy bonus lowers the loss of a spread-out policy)",
                              self.diagnose(with_bonus, args, {"ent_coef": 0.1}, torch.float64, sole=True))

    def test_value_loss_raises_the_loss(self, student):
        """property: raising vf_coef from 0 to 1 changes the total by +½ mean((values − returns)²), nothing else"""
        args = _ppo_loss_inputs((10,), seed=92, dtype=torch.float64)
        call = "ppo_loss(..., vf_coef=1, ent_coef=0) − ppo_loss(..., vf_coef=0, ent_coef=0) for (10,) float64"
        with_value = self.call(student, *args, vf_coef=1.0, ent_coef=0.0)
        without = self.call(student, *args, vf_coef=0.0, ent_coef=0.0)
        change = _four_items(with_value, call)[0] - _four_items(without, call)[0]
        want = 0.5 * (args[3] - args[4]).square().mean().item()
        if abs(change - want) > 1e-9 * max(1.0, want):
            raise CheckFailed(f"{call}: the total changed by {change:.6g}, expected ½ mean((values − returns)²) = {want:.6g}",
                              self.diagnose(with_value, args, {"vf_coef": 1.0, "ent_coef": 0.0}, torch.float64, sole=True))

    def test_log_probs_far_below_zero(self, student):
        """log-probabilities around −150 (float32) and −800 (float64), e.g. of many action dims: the losses stay finite"""
        for (new, old), dtype in zip(_log_probs_far_below_zero(seed=99), ("float32", "float64")):
            rest = (randn(16, seed=101, dtype=new.dtype), randn(16, seed=102, dtype=new.dtype), randn(16, seed=103, dtype=new.dtype),
                    randn(16, seed=104, dtype=new.dtype, shift=1.0))
            call = f"ppo_loss(logp_new, logp_old, ...) with {dtype} log-probabilities near {old.mean().item():.0f}"
            values = _four_items(self.call(student, new, old, *rest), call)
            if not all(math.isfinite(v) for v in values[:2]):
                want = self.reference(*[a.double() for a in (new, old, *rest)])
                raise CheckFailed(f"{call}: total {values[0]}, policy_loss {values[1]}, expected {want[0].item():.6g} and {want[1].item():.6g}",
                                  Mistake(*RATIO_UNDERFLOW))
            self.expect(student, new, old, *rest)


# -- a Gaussian policy for continuous actions ------------------------------------------------------

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _z(actions, mean, log_std):
    return (actions - mean) / log_std.exp()


GAUSSIAN_FORBIDDEN = ("torch.distributions", "torch.nn.functional.gaussian_nll_loss", "torch.nn.GaussianNLLLoss")


class TestGaussianLogProb(Exercise):
    function = "gaussian_log_prob"
    forbidden = GAUSSIAN_FORBIDDEN
    mistakes = (
        Mistake("not summed over the action dims", "the action dims are independent, so their log-densities add: finish with .sum(-1), one log-prob per sample (B,).",
                lambda a, m, s: -0.5 * _z(a, m, s) ** 2 - s - HALF_LOG_2PI),
        Mistake("summed over the batch too", "sum over the action dims only, .sum(-1): one log-prob per sample (B,).",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 - s - HALF_LOG_2PI).sum()),
        Mistake("exp(log_std) used as the variance", "σ = exp(log_std) is the standard deviation: divide (a − μ)² by 2σ² = 2·exp(2·log_std), and subtract log σ = log_std.",
                lambda a, m, s: (-0.5 * (a - m) ** 2 / s.exp() - 0.5 * s - HALF_LOG_2PI).sum(-1)),
        Mistake("exp(log_std) used as the variance", "σ = exp(log_std) is the standard deviation: divide (a − μ)² by 2σ² = 2·exp(2·log_std), and subtract log σ = log_std.",
                lambda a, m, s: (-0.5 * (a - m) ** 2 / s.exp() - s - HALF_LOG_2PI).sum(-1)),
        Mistake("log_std used as the std (no exp)", "σ = exp(log_std): standardise with z = (a − μ) / exp(log_std).",
                lambda a, m, s: (-0.5 * ((a - m) / s) ** 2 - s - HALF_LOG_2PI).sum(-1)),
        Mistake("½ log(2π) missing", "each action dim adds −½ log(2π) (the normal density's 1/√(2π)): −½ z² − log σ − ½ log(2π).",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 - s).sum(-1)),
        Mistake("log σ normaliser missing", "the density divides by σ: each action dim adds −log σ = −log_std.",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 - HALF_LOG_2PI).sum(-1)),
        Mistake("log σ² in the normaliser instead of log σ", "the normaliser is 1/(σ√(2π)): subtract log σ = log_std once, not 2·log_std.",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 - 2 * s - HALF_LOG_2PI).sum(-1)),
        Mistake("log σ added instead of subtracted", "a wider policy spreads its density thinner: −½ z² − log σ − ½ log(2π).",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 + s - HALF_LOG_2PI).sum(-1)),
        Mistake("½ missing on the squared term", "the exponent of the normal density is −z²/2: −½ ((a − μ)/σ)².",
                lambda a, m, s: (-_z(a, m, s) ** 2 - s - HALF_LOG_2PI).sum(-1)),
        Mistake("½ log(2π) counted once, not once per action dim", "every action dim has its own normaliser: subtract A · ½ log(2π) in total (inside the sum).",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 - s).sum(-1) - HALF_LOG_2PI),
        Mistake("log_std summed over every dim (right only when log_std is (A,))", "with a (B, A) log_std each sample has its own σ: "
                "sum −log_std over the action dim with the other terms, (... − log_std).sum(-1), not log_std.sum().",
                lambda a, m, s: (-0.5 * _z(a, m, s) ** 2 - HALF_LOG_2PI).sum(-1) - s.sum()),
        Mistake("log of the density (exp underflows far from the mean)", "write the log-density directly, −½ z² − log σ − ½ log(2π): "
                "exp(−½ z²) is 0 for z beyond about 39 (float64), 14 (float32), and its log is −inf.",
                lambda a, m, s: torch.log(torch.exp(-0.5 * _z(a, m, s) ** 2) / (s.exp() * math.sqrt(2 * math.pi))).sum(-1)),
    )

    @staticmethod
    def reference(actions, mean, log_std):
        return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)

    def test_worked_example(self, student):
        """worked example: σ = (1, 2), one action one σ from the mean in each dim, one at the mean"""
        self.expect(student, torch.tensor([[1.0, 3.0], [0.5, -1.0]]), torch.tensor([[0.0, 1.0], [0.5, -1.0]]), torch.tensor([0.0, math.log(2.0)]))

    def test_state_independent_log_std_float32(self, student):
        """(B=6, A=3) float32, log_std (A,) shared by every sample"""
        log_std = randn(3, seed=110, scale=0.6)
        mean = randn(6, 3, seed=111)
        self.expect(student, mean + log_std.exp() * randn(6, 3, seed=112, scale=1.5), mean, log_std)

    def test_per_sample_log_std_float64(self, student):
        """(B=5, A=4) float64, log_std (B, A): one σ per sample and dim"""
        log_std = randn(5, 4, seed=113, dtype=torch.float64, scale=0.7)
        mean = randn(5, 4, seed=114, dtype=torch.float64, scale=2.0)
        self.expect(student, mean + randn(5, 4, seed=115, dtype=torch.float64, scale=2.0), mean, log_std)

    def test_sharp_policy_float32(self, student):
        """σ ≈ e^−4 (a confident policy): densities above 1, log-probs above 0, float32"""
        log_std = randn(3, seed=116, scale=0.2, shift=-4.0)
        mean = randn(7, 3, seed=117)
        self.expect(student, mean + log_std.exp() * randn(7, 3, seed=118), mean, log_std)

    def test_many_action_dims_float64(self, student):
        """(B=4, A=17) float64, as for a humanoid's 17 joints"""
        log_std = randn(17, seed=119, dtype=torch.float64, scale=0.5, shift=-0.5)
        mean = randn(4, 17, seed=120, dtype=torch.float64)
        self.expect(student, mean + randn(4, 17, seed=121, dtype=torch.float64, scale=1.2), mean, log_std)

    def test_far_from_the_mean(self, student):
        """actions 30 to 60 σ from the mean (log-probs near −1000) stay finite, float32 and float64"""
        for dtype in (torch.float32, torch.float64):
            mean = randn(3, 2, seed=122, dtype=dtype)
            log_std = torch.tensor([-1.0, 0.5], dtype=dtype)
            self.expect(student, mean + log_std.exp() * torch.tensor([[45.0, 1.0], [-30.0, 60.0], [0.5, -50.0]], dtype=dtype), mean, log_std)

    def test_density_integrates_to_one(self, student):
        """property: with one action dim, exp(log-prob) integrates to 1 over μ ± 10σ (float64)"""
        mu, log_sigma = 0.3, -0.4
        sigma = math.exp(log_sigma)
        grid = torch.linspace(mu - 10 * sigma, mu + 10 * sigma, 2001, dtype=torch.float64)                  # (G,)
        args = (grid[:, None], torch.full((2001, 1), mu, dtype=torch.float64), torch.tensor([log_sigma], dtype=torch.float64))
        got = self.call(student, *args)
        if not isinstance(got, torch.Tensor) or got.shape != (2001,):
            raise CheckFailed(f"gaussian_log_prob(actions (2001, 1), mean (2001, 1), log_std (1,)) should return shape (2001,), got {describe(got)}",
                              self.diagnose(got, args, {}, torch.float64, sole=True))
        area = torch.trapezoid(got.double().exp(), grid).item()
        if not abs(area - 1.0) < 1e-8:
            raise CheckFailed(f"exp(gaussian_log_prob) for one action dim (μ = {mu}, σ = e^{log_sigma}) integrates to {area:.6g} over μ ± 10σ; "
                              "a density integrates to 1", self.diagnose(got, args, {}, torch.float64, sole=True))


class TestGaussianEntropy(Exercise):
    function = "gaussian_entropy"
    forbidden = ("torch.distributions",)
    mistakes = (
        Mistake("not summed over the action dims", "the entropies of independent action dims add: finish with .sum(-1).",
                lambda s: 0.5 + HALF_LOG_2PI + s),
        Mistake("summed over every dim", "sum over the action dim only, .sum(-1): one entropy per sample.",
                lambda s: (0.5 + HALF_LOG_2PI + s).sum()),
        Mistake("mean over the action dims instead of the sum", "the entropies of independent dims add up: .sum(-1), not .mean(-1).",
                lambda s: (0.5 + HALF_LOG_2PI + s).mean(-1)),
        Mistake("½ log(2πe) missing", "each action dim adds ½ log(2πe) ≈ 1.4189 nats besides log σ.",
                lambda s: s.sum(-1)),
        Mistake("the ½ (from log e) missing: ½ log(2π) + log σ", "½ log(2πe) = ½ + ½ log(2π): add the ½ too.",
                lambda s: (HALF_LOG_2PI + s).sum(-1)),
        Mistake("log(2πe) without the ½", "per dim the constant is ½ log(2πe) ≈ 1.4189, not log(2πe).",
                lambda s: (1.0 + math.log(2 * math.pi) + s).sum(-1)),
        Mistake("σ = exp(log_std) used instead of log σ", "the entropy grows with log σ: ½ log(2πe) + log_std per dim, not + exp(log_std).",
                lambda s: (0.5 + HALF_LOG_2PI + s.exp()).sum(-1)),
        Mistake("exp(log_std) used as the variance (½ log σ)", "H = ½ log(2πe σ²) = ½ log(2πe) + log σ: log_std counts once, not ½ · log_std.",
                lambda s: (0.5 + HALF_LOG_2PI + 0.5 * s).sum(-1)),
        Mistake("log σ² instead of log σ", "H = ½ log(2πe σ²) = ½ log(2πe) + log σ: log_std counts once, not 2 · log_std.",
                lambda s: (0.5 + HALF_LOG_2PI + 2 * s).sum(-1)),
        Mistake("½ log(2πe) counted once, not once per action dim", "every dim has its own constant: A · ½ log(2πe) + Σ log_std.",
                lambda s: 0.5 + HALF_LOG_2PI + s.sum(-1)),
    )

    @staticmethod
    def reference(log_std):
        return torch.distributions.Normal(torch.zeros_like(log_std), log_std.exp()).entropy().sum(-1)

    def test_worked_example(self, student):
        """worked example: σ = (1, 2) gives 2 · ½ log(2πe) + log 2"""
        self.expect(student, torch.tensor([0.0, math.log(2.0)]))

    def test_vector_float32(self, student):
        """log_std (A=6,) float32 -> one entropy, a 0-d result"""
        self.expect(student, randn(6, seed=130, scale=0.8, shift=-0.5))

    def test_batch_float64(self, student):
        """log_std (B=5, A=3) float64 -> (5,)"""
        self.expect(student, randn(5, 3, seed=131, dtype=torch.float64))

    def test_time_by_env_float32(self, student):
        """log_std (T=4, N=3, A=2) float32 -> (4, 3)"""
        self.expect(student, randn(4, 3, 2, seed=132, scale=1.5))

    def test_standard_normal(self, student):
        """property: log_std = 0 in A = 5 dims (σ = 1) gives 5 · ½ log(2πe) = 7.0947 nats"""
        args = (torch.zeros(5, dtype=torch.float64),)
        got = self.call(student, *args)
        _same(got, torch.tensor(5 * (0.5 + HALF_LOG_2PI), dtype=torch.float64),
              "gaussian_entropy(torch.zeros(5)) should be 5 · ½ log(2πe) (a standard normal in 5 dims)",
              lambda: self.diagnose(got, args, {}, torch.float64, sole=True))

    def test_one_nat_per_dim_per_unit_log_std(self, student):
        """property: raising every log σ by 1 raises the entropy by A nats (A = 4, float64)"""
        log_std = randn(3, 4, seed=133, dtype=torch.float64)
        before = self.call(student, log_std)
        after = self.call(student, log_std + 1.0)
        if not all(isinstance(x, torch.Tensor) and x.shape == (3,) for x in (before, after)):
            raise CheckFailed(f"gaussian_entropy(log_std (3, 4)) should return shape (3,), got {describe(before)}",
                              self.diagnose(before, (log_std,), {}, torch.float64, sole=True))
        _same(after - before, torch.full((3,), 4.0, dtype=torch.float64),
              "gaussian_entropy(log_std + 1) − gaussian_entropy(log_std) should be 4 nats for A = 4 (each dim's H grows by 1 per unit of log σ)",
              lambda: self.diagnose(before, (log_std,), {}, torch.float64, sole=True))


# -- a whole PPO agent on the line task ------------------------------------------------------------
# The grade comes from the policy train_ppo returns (w, b, log_std), measured here on the grader's own
# episodes of a float64 copy of the notebook's line task; the `returns` the student reports are checked for
# type and length only. Each bound is a fraction of the gap between doing nothing (w = b = 0, σ → 0) and the
# best policy (a = −x / gain, σ → 0), both measured on the same episodes (the same starts and noise draws), so a
# bound means the same for every gain. Measured in-process, the fraction of the gap closed (min-max over seeds):
#   gain −0.7, 20 iterations (seeds 0-29): the solution 0.981-0.996; full-batch updates (16 epochs) 0.983-0.996;
#       scalar w, b and minibatches in rollout order 0.971-0.997; CleanRL style (advantages normalised per minibatch,
#       clip_grad_norm_) 0.998-0.999 (seeds 0-11); the solution plus clip_grad_norm_(0.5) 0.997-1.000. Mistakes: one
#       minibatch per iteration 0.86-0.93, the update outside the iteration loop −0.53 to 0.39, the sign flipped
#       −43 to −20. Bound: 0.94.
#   gain 1.2, 10 iterations (seeds 0-15): the solution 0.958-0.979, full-batch 0.957-0.976, scalars 0.963-0.978,
#       CleanRL style 0.958-0.988, the solution plus clip_grad_norm_ 0.948-0.989. Mistakes: one minibatch per
#       iteration 0.30-0.49, the update outside the loop −1.4 to −0.12, the sign flipped −116 to −1.8. Bound: 0.90.
# In the grader the course's gaussian_log_prob runs in the grading process, which changes the float rounding of the
# gradients (1 ulp at the first step) and so the run: another draw from the same distribution. The solution and
# every catalog variant pass there too (make validate-grader).

LINE_HORIZON, LINE_EPISODES, LINE_SEED = 8, 4096, 2024


def _line_return(w, b, sigma, gain):
    """Mean return per episode of the policy a ~ N(w x + b, σ²) on the line task, float64, the grader's own episodes.

    The same dynamics as the notebook's line_step: x' = x + gain · clip(a, −2, 2), reward −x'², 8 steps from
    x ~ U(−2, 2). Every policy sees the same starts and noise draws (σ = 0: the noise is drawn and multiplied by 0).
    """
    generator = torch.Generator().manual_seed(LINE_SEED)
    x = 4.0 * torch.rand(LINE_EPISODES, generator=generator, dtype=torch.float64) - 2.0         # (E,)
    total = torch.zeros(LINE_EPISODES, dtype=torch.float64)
    for _ in range(LINE_HORIZON):
        action = w * x + b + sigma * torch.randn(LINE_EPISODES, generator=generator, dtype=torch.float64)
        x = x + gain * action.clamp(-2.0, 2.0)
        total -= x * x
    return total.mean().item()


def _number(value):
    """A returned w, b or log_std as a float (a Python number or a one-element tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_complex and value.dtype != torch.bool:
        return float(value.reshape(-1)[0])
    return None


PPO_KEYS = ("w", "b", "log_std", "returns")


class TestTrainPpo(Exercise):
    function = "train_ppo"
    # A mistake in a helper is graded in its own cell: the course's helpers stand in for the student's here (ppo_clip_loss
    # because the course's ppo_loss calls it), so an unfinished gaussian_entropy does not cost train_ppo's points too.
    # Each use is a call back to the grader, about 0.6 ms: about 130 per iteration (32 rollout log-probs, one GAE, and
    # per minibatch the forwards and backwards), so a 20-iteration run takes about 2 s instead of 0.4 s.
    substitutes = ("compute_gae", "gaussian_log_prob", "gaussian_entropy", "ppo_clip_loss", "ppo_loss")
    never_changed = Mistake("the policy never changed", "call optimizer.step() after total.backward() (optimizer.zero_grad() goes before "
                            "backward, not between backward and step), with an optimizer built on the tensors the policy uses: w, b and log σ.")
    ratio_one = Mistake("no policy gradient (ratio is always 1)", "compute logp_old once per rollout, when the actions are sampled, under "
                        "torch.no_grad(). Computed inside the update loop from the current policy, with gradient, it cancels logp_new: the "
                        "ratio is exp(0) = 1 whatever w and b, their gradient is 0, and only the entropy bonus (raising σ) and the critic learn.")
    maximised = Mistake("the loss is maximised (sign)", "minimise the PPO loss: total.backward(), then optimizer.step() (Adam descends), with "
                        "the advantages compute_gae returns (normalised, not negated). A trained w has the sign opposite to the gain, "
                        "so that x + gain · w x moves the point toward 0.")
    too_few = Mistake("too few updates", "each of the `iterations` iterations collects a rollout and then makes 4 passes (epochs) over it "
                      "in 4 minibatches of 128, one optimizer step each (16 per iteration, 320 in 20 iterations), all inside the iteration "
                      "loop, with Adam's learning rate 0.05.")
    mistakes = (never_changed, ratio_one, maximised, too_few)   # recognised from the returned policy (compute None)

    @staticmethod
    def reference(gain, iterations=20, seed=0):
        """Not called: the returned policy is measured on the task (this gives the parameter names)."""
        raise NotImplementedError

    def _diagnosis(self, w, b, log_std, gain):
        """The one mistake that explains a policy short of the bound (None when no rule, or several, fit)."""
        if w == 0.0 and b == 0.0:
            if log_std == 0.0:
                return self.never_changed
            return self.ratio_one if log_std > 0.0 else None     # with ratio 1 only the entropy bonus moves log σ: up
        if w * gain > 0.0:
            return self.maximised
        if abs(b) < 0.3 and -1.4 < log_std < 0.3:                # the right way, but σ is still near its start (1); trained: e^−1.6 to e^−3.8
            return self.too_few
        return None

    def _policy(self, result, call):
        """(w, b, log_std) of a result, as floats; a failed check when they are missing or not finite numbers."""
        if not isinstance(result, dict) or not all(key in result for key in ("w", "b", "log_std")):
            raise CheckFailed(f"{call} should return a dict with keys {', '.join(PPO_KEYS)}, got {describe(result)}")
        values = [_number(result[key]) for key in ("w", "b", "log_std")]
        for key, value in zip(("w", "b", "log_std"), values):
            if value is None or not math.isfinite(value):
                raise CheckFailed(f"{call} returned {key} = {describe(result[key]) if value is None else value}: the policy's {key} should be a finite number")
        return values

    def _expect_trained(self, student, gain, seed, iterations, bound):
        """Run the student's train_ppo and measure the returned policy: it must close `bound` of the gap to the best policy."""
        call = f"train_ppo({gain}, iterations={iterations}, seed={seed})"
        w, b, log_std = self._policy(self.call(student, gain, iterations=iterations, seed=seed), call)
        sigma = math.exp(min(log_std, 30.0))
        best, nothing = _line_return(-1.0 / gain, 0.0, 0.0, gain), _line_return(0.0, 0.0, 0.0, gain)
        got, wanted = _line_return(w, b, sigma, gain), nothing + bound * (best - nothing)
        if not got >= wanted:
            closed = (got - nothing) / (best - nothing)
            raise CheckFailed(f"{call} returned the policy w = {w:.3f}, b = {b:.3f}, σ = {sigma:.3g} (log σ = {log_std:.3f}). Measured by "
                              f"the grader on {LINE_EPISODES} episodes of its own, its mean return is {got:.3f}, below the bound {wanted:.3f}: "
                              f"it closes {closed:.0%} of the gap from doing nothing ({nothing:.2f}) to the best policy, a = −x / gain = "
                              f"{-1.0 / gain:.3f}·x ({round(best, 3) + 0.0:.3f}); {bound:.0%} is needed.", self._diagnosis(w, b, log_std, gain))

    def test_returns_plain_numbers(self, student):
        """train_ppo(0.8, iterations=2, seed=4) returns w, b, log_std as floats and `returns` with one float per iteration"""
        call = "train_ppo(0.8, iterations=2, seed=4)"
        result = self.call(student, 0.8, iterations=2, seed=4)
        if not isinstance(result, dict) or not all(key in result for key in PPO_KEYS):
            raise CheckFailed(f"{call} should return a dict with keys {', '.join(PPO_KEYS)}, got {describe(result)}")
        for key in ("w", "b", "log_std"):
            value = result[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CheckFailed(f"{call} returned {key} as {describe(value)}: return plain Python numbers, e.g. policy[0].item()")
        returns = result["returns"]
        if not isinstance(returns, (list, tuple)) or len(returns) != 2:
            raise CheckFailed(f"{call} returned `returns` as {describe(returns)}: it should be a list with one mean return per "
                              "iteration, 2 for iterations=2 (loop over range(iterations))")
        for i, value in enumerate(returns):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise CheckFailed(f"{call}: returns[{i}] is {describe(value)}; each entry should be a finite Python float (the mean "
                                  "return per finished episode of that iteration's rollout, e.g. (rewards.sum() / episodes_ended).item())")

    def test_reversed_controls(self, student):
        """gain −0.7 (reversed controls), seed 2, 20 iterations: the returned policy closes ≥ 94 % of the gap to the best policy"""
        self._expect_trained(student, -0.7, 2, 20, 0.94)

    def test_strong_gain_in_ten_iterations(self, student):
        """gain 1.2, seed 3, 10 iterations: the returned policy closes ≥ 90 % of the gap to the best policy"""
        self._expect_trained(student, 1.2, 3, 10, 0.90)
