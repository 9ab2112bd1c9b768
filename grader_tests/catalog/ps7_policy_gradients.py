"""What students write for ps7_policy_gradients: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Mutant, Variant

MUTANTS = [
    Mutant("discounted_returns", "dones ignored", '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns
'''),
    Mutant("discounted_returns", "done mask applied to r_t too", '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = (rewards[t] + gamma * running) * (1 - dones[t])
        returns[t] = running
    return returns
'''),
    Mutant("discounted_returns", "done mask off by one (dones[t+1] used)", '''
def discounted_returns(rewards, dones, gamma):
    T = rewards.shape[0]
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        not_done = 1.0 - dones[t + 1] if t + 1 < T else 1.0
        running = rewards[t] + gamma * not_done * running
        returns[t] = running
    return returns
'''),
    Mutant("discounted_returns", "accumulated forward in time", '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0]):
        running = rewards[t] + gamma * running * (1 - dones[t])
        returns[t] = running
    return returns
'''),
    Mutant("discounted_returns", "time taken along the last dim", '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * running * (1 - dones[..., t])
        returns[..., t] = running
    return returns
'''),
    Mutant("discounted_returns", "γ ignored (undiscounted reward-to-go)", '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + running * (1 - dones[t])
        returns[t] = running
    return returns
'''),
    Mutant("discounted_returns", "a Python `if dones[t]` (one environment only)", '''
def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        if dones[t]:                                  # the episode ended after step t
            running = 0.0
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns
'''),
    Mutant("compute_gae", "no done mask", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(T)):
        nextvalues = next_value if t == T - 1 else values[t + 1]
        delta = rewards[t] + gamma * nextvalues - values[t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "done mask off by one (dones[t] used instead of dones[t+1])", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "no bootstrap from next_value", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = torch.zeros_like(values[t])
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "returns = advantages (forgot + values)", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    returns = advantages.clone()
    return advantages, returns
'''),
    Mutant("compute_gae", "γ and λ swapped", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + lam * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + lam * gamma * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "done mask missing on the running advantage (γλ·A_{t+1})", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "done mask missing on the bootstrap value (γ·V_{t+1})", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalues - values[t]
        lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "λ ignored (λ = 1)", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "next_done ignored", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0, next_value       # the rollout just stops here
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values
'''),
    Mutant("compute_gae", "accumulated forward in time", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    nonterminal = 1 - torch.cat([dones[1:], next_done.unsqueeze(0)])
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(T):
        delta = rewards[t] + gamma * next_values[t] * nonterminal[t] - values[t]
        running = delta + gamma * lam * nonterminal[t] * running
        advantages[t] = running
    return advantages, advantages + values
'''),
    Mutant("ppo_clip_loss", "max instead of min", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.max(surr1, surr2).mean()
'''),
    Mutant("ppo_clip_loss", "missing minus sign", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = (logp_new - logp_old).exp()
    return torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean()
'''),
    Mutant("ppo_clip_loss", "clipped the advantage instead of the ratio", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    surr1 = ratio * advantages
    surr2 = ratio * torch.clamp(advantages, 1 - clip_eps, 1 + clip_eps)
    return -torch.min(surr1, surr2).mean()
'''),
    Mutant("ppo_clip_loss", "ratio as logp_new / logp_old", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = logp_new / logp_old
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.min(surr1, surr2).mean()
'''),
    Mutant("ppo_clip_loss", "log-ratio used as the ratio (no exp)", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = logp_new - logp_old
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.min(surr1, surr2).mean()
'''),
    Mutant("ppo_clip_loss", "advantages normalised (or centred) inside the loss", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)   # norm_adv, as in CleanRL
    ratio = torch.exp(logp_new - logp_old)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return torch.max(pg_loss1, pg_loss2).mean()
'''),
    Mutant("ppo_clip_loss", "advantages normalised (or centred) inside the loss", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    A = advantages - advantages.mean()                   # a baseline, to reduce variance
    ratio = (logp_new - logp_old).exp()
    return -torch.min(ratio * A, ratio.clamp(1 - clip_eps, 1 + clip_eps) * A).mean()
'''),
    Mutant("ppo_clip_loss", "ratio as exp(logp_new) / exp(logp_old) (0/0 for very negative log-probabilities)", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new) / torch.exp(logp_old)    # pi_new / pi_old
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.min(surr1, surr2).mean()
'''),
    Mutant("ppo_clip_loss", "min of the ratios, then times A (a max where A < 0)", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    clipped_ratio = torch.min(ratio, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps))
    return -(clipped_ratio * advantages).mean()
'''),
    Mutant("ppo_clip_loss", "only the clipped term (no min)", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    return -(torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages).mean()
'''),
    Mutant("ppo_clip_loss", "sum instead of mean", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.min(surr1, surr2).sum()
'''),
    Mutant("approx_kl", "k1 estimator mean(log r)", '''
def approx_kl(logp_new, logp_old):
    return (logp_new - logp_old).mean()
'''),
    Mutant("approx_kl", "k1 estimator −mean(log r)", '''
def approx_kl(logp_new, logp_old):
    logratio = logp_new - logp_old
    return (-logratio).mean()
'''),
    Mutant("approx_kl", "mean(r − 1) (the − log r term missing)", '''
def approx_kl(logp_new, logp_old):
    ratio = torch.exp(logp_new - logp_old)
    return (ratio - 1).mean()
'''),
    Mutant("approx_kl", "ratio inverted (old over new)", '''
def approx_kl(logp_new, logp_old):
    logratio = logp_old - logp_new
    ratio = logratio.exp()
    return ((ratio - 1) - logratio).mean()
'''),
    Mutant("approx_kl", "sum instead of mean", '''
def approx_kl(logp_new, logp_old):
    logratio = logp_new - logp_old
    return (logratio.exp() - 1 - logratio).sum()
'''),
    Mutant("approx_kl", "ratio as exp(logp_new) / exp(logp_old) (0/0 for very negative log-probabilities)", '''
def approx_kl(logp_new, logp_old):
    ratio = logp_new.exp() / logp_old.exp()
    return ((ratio - 1) - ratio.log()).mean()
'''),
    Mutant("approx_kl", "mean taken before the nonlinearity ((e^m − 1) − m with m = mean log r)", '''
def approx_kl(logp_new, logp_old):
    log_ratio = (logp_new - logp_old).mean()
    return (log_ratio.exp() - 1) - log_ratio
'''),
    Mutant("approx_kl", "k2 estimator mean((log r)² / 2)", '''
def approx_kl(logp_new, logp_old):
    logratio = logp_new - logp_old
    return (0.5 * logratio ** 2).mean()
'''),
    Mutant("approx_kl", "log r added instead of subtracted", '''
def approx_kl(logp_new, logp_old):
    log_r = logp_new - logp_old
    return (log_r.exp() - 1 + log_r).mean()
'''),
]

VARIANTS = [
    Variant("discounted_returns", "collect in a list while walking backwards, then stack", '''
def discounted_returns(rewards, dones, gamma):
    out = []
    g = rewards[-1] * 0
    for r, d in zip(rewards.flip(0), dones.flip(0)):
        g = r + gamma * (1 - d) * g
        out.append(g)
    return torch.stack(out[::-1])
'''),
    Variant("discounted_returns", "solve the triangular system (I − γ S) G = r", '''
def discounted_returns(rewards, dones, gamma):
    T = rewards.shape[0]
    r = rewards.reshape(T, -1).T                              # (N, T)
    keep = (1 - dones).reshape(T, -1).T                       # (N, T)
    S = torch.diag_embed(keep[:, :-1], offset=1)              # (N, T, T): S[t, t+1] = 1 - done_t
    system = torch.eye(T, dtype=rewards.dtype) - gamma * S
    G = torch.linalg.solve_triangular(system, r.unsqueeze(-1), upper=True)   # (N, T, 1)
    return G.squeeze(-1).T.reshape(rewards.shape)
'''),
    Variant("compute_gae", "TD errors vectorised first, then the backward sum", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    nonterminal = 1 - torch.cat([dones[1:], next_done.unsqueeze(0)])
    deltas = rewards + gamma * next_values * nonterminal - values
    advs = []
    running = torch.zeros_like(deltas[0])
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + gamma * lam * nonterminal[t] * running
        advs.insert(0, running)
    advantages = torch.stack(advs)
    return advantages, values + advantages
'''),
    Variant("compute_gae", "solve (I − γλ S) A = δ per environment", '''
def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    nonterminal = 1 - torch.cat([dones[1:], next_done.unsqueeze(0)])
    deltas = rewards + gamma * next_values * nonterminal - values           # (T, ...)
    d = deltas.reshape(T, -1).T.unsqueeze(-1)                               # (N, T, 1)
    S = torch.diag_embed(nonterminal.reshape(T, -1).T[:, :-1], offset=1)    # (N, T, T)
    system = torch.eye(T, dtype=rewards.dtype) - gamma * lam * S
    advantages = torch.linalg.solve_triangular(system, d, upper=True).squeeze(-1).T.reshape(rewards.shape)
    return advantages, advantages + values
'''),
    Variant("ppo_clip_loss", "CleanRL form: max of the two negated surrogates", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = (logp_new - logp_old).exp()
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return torch.max(pg_loss1, pg_loss2).mean()
'''),
    Variant("ppo_clip_loss", "case analysis with torch.where", '''
def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    too_high = (advantages > 0) & (ratio > 1 + clip_eps)
    too_low = (advantages < 0) & (ratio < 1 - clip_eps)
    used = torch.where(too_high, torch.full_like(ratio, 1 + clip_eps), ratio)
    used = torch.where(too_low, torch.full_like(ratio, 1 - clip_eps), used)
    return -(used * advantages).sum() / advantages.numel()
'''),
    Variant("approx_kl", "expm1 for the r − 1 term", '''
def approx_kl(logp_new, logp_old):
    x = logp_new - logp_old
    return (torch.expm1(x) - x).mean()
'''),
    Variant("approx_kl", "returns a Python float", '''
def approx_kl(logp_new, logp_old):
    log_r = (logp_new - logp_old).flatten()
    total = 0.0
    for value in log_r.tolist():
        total += math.exp(value) - 1 - value
    return total / len(log_r)
'''),
]

FORBIDDEN = []
