"""What students write for ps7_policy_gradients: mistakes the grader must name, and correct variants."""

from mfml_grader.catalog import Forbidden, Mutant, Variant

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

# -- ppo_loss, gaussian_log_prob, gaussian_entropy -------------------------------------------------

MUTANTS += [
    Mutant("ppo_loss", "entropy bonus added to the loss (+ ent_coef · entropy)", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    pg_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    v_loss = 0.5 * ((values - returns) ** 2).mean()
    entropy_loss = entropy.mean()
    loss = pg_loss + ent_coef * entropy_loss + v_loss * vf_coef
    return loss, pg_loss, v_loss, entropy_loss
'''),
    Mutant("ppo_loss", "value loss without the ½", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = F.mse_loss(values, returns)
    entropy_mean = entropy.mean()
    return policy_loss - ent_coef * entropy_mean + vf_coef * value_loss, policy_loss, value_loss, entropy_mean
'''),
    Mutant("ppo_loss", "vf_coef and ent_coef swapped", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = 0.5 * (values - returns).pow(2).mean()
    entropy_mean = entropy.mean()
    total = policy_loss - vf_coef * entropy_mean + ent_coef * value_loss
    return total, policy_loss, value_loss, entropy_mean
'''),
    Mutant("ppo_loss", "value loss subtracted from the total", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = 0.5 * ((values - returns) ** 2).mean()
    entropy_mean = entropy.mean()
    total = policy_loss - (ent_coef * entropy_mean + vf_coef * value_loss)
    return total, policy_loss, value_loss, entropy_mean
'''),
    Mutant("ppo_loss", "mean taken before squaring (½ (mean(values − returns))²)", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = 0.5 * (values.mean() - returns.mean()) ** 2
    entropy_mean = entropy.mean()
    return policy_loss - ent_coef * entropy_mean + vf_coef * value_loss, policy_loss, value_loss, entropy_mean
'''),
    Mutant("ppo_loss", "returned value_loss already multiplied by vf_coef", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = vf_coef * 0.5 * ((values - returns) ** 2).mean()
    entropy_mean = entropy.mean()
    return policy_loss - ent_coef * entropy_mean + value_loss, policy_loss, value_loss, entropy_mean
'''),
    Mutant("ppo_loss", "value loss summed instead of averaged", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = 0.5 * ((values - returns) ** 2).sum()
    entropy_mean = entropy.mean()
    return policy_loss - ent_coef * entropy_mean + vf_coef * value_loss, policy_loss, value_loss, entropy_mean
'''),
    Mutant("ppo_loss", "results in the wrong order", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    policy_loss = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps)
    value_loss = 0.5 * ((values - returns) ** 2).mean()
    entropy_mean = entropy.mean()
    return policy_loss - ent_coef * entropy_mean + vf_coef * value_loss, policy_loss, entropy_mean, value_loss
'''),
    Mutant("ppo_loss", "policy loss unclipped (−mean(r · A))", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    ratio = torch.exp(logp_new - logp_old)
    policy_loss = -(ratio * advantages).mean()
    value_loss = 0.5 * ((values - returns) ** 2).mean()
    entropy_mean = entropy.mean()
    return policy_loss - ent_coef * entropy_mean + vf_coef * value_loss, policy_loss, value_loss, entropy_mean
'''),
    Mutant("gaussian_log_prob", "not summed over the action dims", '''
def gaussian_log_prob(actions, mean, log_std):
    z = (actions - mean) / log_std.exp()
    return -0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi)
'''),
    Mutant("gaussian_log_prob", "exp(log_std) used as the variance", '''
def gaussian_log_prob(actions, mean, log_std):
    var = torch.exp(log_std)
    log_p = -(actions - mean) ** 2 / (2 * var) - 0.5 * torch.log(2 * math.pi * var)
    return log_p.sum(-1)
'''),
    Mutant("gaussian_log_prob", "log_std used as the std (no exp)", '''
def gaussian_log_prob(actions, mean, log_std):
    z = (actions - mean) / log_std
    return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
'''),
    Mutant("gaussian_log_prob", "½ log(2π) missing", '''
def gaussian_log_prob(actions, mean, log_std):
    std = log_std.exp()
    return (-0.5 * ((actions - mean) / std) ** 2 - log_std).sum(-1)
'''),
    Mutant("gaussian_log_prob", "log σ normaliser missing", '''
def gaussian_log_prob(actions, mean, log_std):
    std = log_std.exp()
    return (-((actions - mean) ** 2) / (2 * std ** 2) - math.log(math.sqrt(2 * math.pi))).sum(-1)
'''),
    Mutant("gaussian_log_prob", "summed over the batch too", '''
def gaussian_log_prob(actions, mean, log_std):
    z = (actions - mean) * torch.exp(-log_std)
    return torch.sum(-0.5 * z ** 2 - log_std - 0.5 * math.log(2 * math.pi))
'''),
    Mutant("gaussian_log_prob", "½ log(2π) counted once, not once per action dim", '''
def gaussian_log_prob(actions, mean, log_std):
    z = (actions - mean) / log_std.exp()
    return (-0.5 * z ** 2 - log_std).sum(-1) - 0.5 * math.log(2 * math.pi)
'''),
    Mutant("gaussian_log_prob", "log_std summed over every dim (right only when log_std is (A,))", '''
def gaussian_log_prob(actions, mean, log_std):
    A = actions.shape[-1]
    z = (actions - mean) / log_std.exp()
    return -0.5 * (z ** 2).sum(-1) - log_std.sum() - 0.5 * A * math.log(2 * math.pi)
'''),
    Mutant("gaussian_log_prob", "log of the density (exp underflows far from the mean)", '''
def gaussian_log_prob(actions, mean, log_std):
    std = log_std.exp()
    density = torch.exp(-0.5 * ((actions - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    return density.log().sum(-1)
'''),
    Mutant("gaussian_entropy", "not summed over the action dims", '''
def gaussian_entropy(log_std):
    return 0.5 * math.log(2 * math.pi * math.e) + log_std
'''),
    Mutant("gaussian_entropy", "½ log(2πe) missing", '''
def gaussian_entropy(log_std):
    return log_std.sum(-1)
'''),
    Mutant("gaussian_entropy", "the ½ (from log e) missing: ½ log(2π) + log σ", '''
def gaussian_entropy(log_std):
    return (0.5 * math.log(2 * math.pi) + log_std).sum(-1)
'''),
    Mutant("gaussian_entropy", "σ = exp(log_std) used instead of log σ", '''
def gaussian_entropy(log_std):
    std = torch.exp(log_std)
    return (0.5 + 0.5 * math.log(2 * math.pi) + std).sum(-1)
'''),
    Mutant("gaussian_entropy", "exp(log_std) used as the variance (½ log σ)", '''
def gaussian_entropy(log_std):
    var = log_std.exp()
    return (0.5 * torch.log(2 * math.pi * math.e * var)).sum(-1)
'''),
    Mutant("gaussian_entropy", "½ log(2πe) counted once, not once per action dim", '''
def gaussian_entropy(log_std):
    return 0.5 * math.log(2 * math.pi * math.e) + log_std.sum(-1)
'''),
    Mutant("gaussian_entropy", "mean over the action dims instead of the sum", '''
def gaussian_entropy(log_std):
    return (0.5 + 0.5 * math.log(2 * math.pi) + log_std).mean(-1)
'''),
    Mutant("gaussian_entropy", "summed over every dim", '''
def gaussian_entropy(log_std):
    return (0.5 * math.log(2 * math.pi * math.e) + log_std).sum()
'''),
]

VARIANTS += [
    Variant("ppo_loss", "CleanRL style: surrogates written out, F.mse_loss for the critic", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    ratio = (logp_new - logp_old).exp()
    pg_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)).mean()
    v_loss = 0.5 * F.mse_loss(values, returns)
    entropy_loss = entropy.mean()
    loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef
    return loss, pg_loss, v_loss, entropy_loss
'''),
    Variant("ppo_loss", "sums divided by the number of samples, returned as a list", '''
def ppo_loss(logp_new, logp_old, advantages, values, returns, entropy, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01):
    n = values.numel()
    policy = ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=clip_eps)
    value = (values - returns).square().sum() / (2 * n)
    ent = entropy.sum() / n
    return [policy + vf_coef * value - ent_coef * ent, policy, value, ent]
'''),
    Variant("gaussian_log_prob", "log of the normaliser σ√(2π), variance written out", '''
def gaussian_log_prob(actions, mean, log_std):
    var = torch.exp(2 * log_std)
    log_norm = torch.log(torch.exp(log_std) * math.sqrt(2 * math.pi))
    return (-(actions - mean) ** 2 / (2 * var) - log_norm).sum(dim=-1)
'''),
    Variant("gaussian_log_prob", "terms summed separately, log_std broadcast first", '''
def gaussian_log_prob(actions, mean, log_std):
    log_std = log_std.expand_as(actions)
    A = actions.shape[-1]
    z = (actions - mean) * torch.exp(-log_std)
    return -0.5 * torch.einsum("ba,ba->b", z, z) - log_std.sum(-1) - A * math.log(2 * math.pi) / 2
'''),
    Variant("gaussian_entropy", "½ log(2πe σ²) per dim", '''
def gaussian_entropy(log_std):
    var = torch.exp(2 * log_std)
    return (0.5 * torch.log(2 * math.pi * math.e * var)).sum(-1)
'''),
    Variant("gaussian_entropy", "constant times the number of dims", '''
def gaussian_entropy(log_std):
    A = log_std.shape[-1]
    return A * (0.5 + 0.5 * math.log(2 * math.pi)) + log_std.sum(dim=-1)
'''),
]

FORBIDDEN += [
    Forbidden("gaussian_log_prob", "torch.distributions", '''
def gaussian_log_prob(actions, mean, log_std):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
'''),
    Forbidden("gaussian_log_prob", "torch.nn.functional.gaussian_nll_loss", '''
def gaussian_log_prob(actions, mean, log_std):
    var = torch.exp(2 * log_std).expand_as(actions)
    return -F.gaussian_nll_loss(mean, actions, var, full=True, reduction="none").sum(-1)
'''),
    Forbidden("gaussian_entropy", "torch.distributions", '''
from torch.distributions import Normal

def gaussian_entropy(log_std):
    return Normal(torch.zeros_like(log_std), log_std.exp()).entropy().sum(-1)
'''),
]

# train_ppo: each mistake is recognised from the returned policy (w, b, log σ), measured by the grader
MUTANTS += [
    Mutant("train_ppo", "the policy never changed", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_logp = torch.stack(logps).flatten()
        b_adv = adv.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        for epoch in range(4):
            perm = torch.randperm(len(b_obs), generator=gen)
            for mb in perm.chunk(4):
                mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
                new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
                ent = gaussian_entropy(log_std).expand(len(mb))
                loss, pg_loss, v_loss, _ = ppo_loss(new_logp, b_logp[mb], b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
                optimizer.zero_grad()
                loss.backward()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Mutant("train_ppo", "the policy never changed", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_logp = torch.stack(logps).flatten()
        b_adv = adv.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        for epoch in range(4):
            perm = torch.randperm(len(b_obs), generator=gen)
            for mb in perm.chunk(4):
                mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
                new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
                ent = gaussian_entropy(log_std).expand(len(mb))
                loss, pg_loss, v_loss, _ = ppo_loss(new_logp, b_logp[mb], b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
                loss.backward()
                optimizer.zero_grad()
                optimizer.step()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Mutant("train_ppo", "no policy gradient (ratio is always 1)", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, rews, dones, vals = [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_adv = adv.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        for epoch in range(4):
            perm = torch.randperm(len(b_obs), generator=gen)
            for mb in perm.chunk(4):
                mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
                new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
                old_logp = gaussian_log_prob(b_act[mb], mu, log_std)
                ent = gaussian_entropy(log_std).expand(len(mb))
                loss, pg_loss, v_loss, _ = ppo_loss(new_logp, old_logp, b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Mutant("train_ppo", "the loss is maximised (sign)", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_logp = torch.stack(logps).flatten()
        b_adv = adv.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        for epoch in range(4):
            perm = torch.randperm(len(b_obs), generator=gen)
            for mb in perm.chunk(4):
                mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
                new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
                ent = gaussian_entropy(log_std).expand(len(mb))
                loss, pg_loss, v_loss, _ = ppo_loss(new_logp, b_logp[mb], b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
                optimizer.zero_grad()
                (-loss).backward()
                optimizer.step()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Mutant("train_ppo", "the loss is maximised (sign)", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_logp = torch.stack(logps).flatten()
        b_adv = torch.stack(vals).flatten() - ret.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        for epoch in range(4):
            perm = torch.randperm(len(b_obs), generator=gen)
            for mb in perm.chunk(4):
                mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
                new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
                ent = gaussian_entropy(log_std).expand(len(mb))
                loss, pg_loss, v_loss, _ = ppo_loss(new_logp, b_logp[mb], b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Mutant("train_ppo", "too few updates", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_logp = torch.stack(logps).flatten()
        b_adv = adv.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
    for epoch in range(4):
        perm = torch.randperm(len(b_obs), generator=gen)
        for mb in perm.chunk(4):
            mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
            new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
            ent = gaussian_entropy(log_std).expand(len(mb))
            loss, pg_loss, v_loss, _ = ppo_loss(new_logp, b_logp[mb], b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Mutant("train_ppo", "too few updates", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([theta, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    mean_returns = []
    for it in range(iterations):
        obs, acts, logps, rews, dones, vals = [], [], [], [], [], []
        episodes = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (theta[0] * x + theta[1]).unsqueeze(-1)
                a = mu + log_std.exp() * torch.randn(N_ENVS, 1, generator=gen)
                obs.append(x)
                acts.append(a)
                dones.append(done)
                logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a[:, 0], gain, gen)
                rews.append(r)
                episodes += done.sum().item()
            rewards = torch.stack(rews)
            adv, ret = compute_gae(rewards, torch.stack(vals), torch.stack(dones), critic_features(x) @ critic, done)
        mean_returns.append(rewards.sum().item() / episodes)
        b_obs = torch.stack(obs).flatten()
        b_act = torch.stack(acts).reshape(-1, 1)
        b_logp = torch.stack(logps).flatten()
        b_adv = adv.flatten()
        b_ret = ret.flatten()
        b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
        mb = torch.randperm(len(b_obs), generator=gen)[:128]
        mu = (theta[0] * b_obs[mb] + theta[1]).unsqueeze(-1)
        new_logp = gaussian_log_prob(b_act[mb], mu, log_std)
        ent = gaussian_entropy(log_std).expand(len(mb))
        loss, pg_loss, v_loss, _ = ppo_loss(new_logp, b_logp[mb], b_adv[mb], critic_features(b_obs[mb]) @ critic, b_ret[mb], ent)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"w": theta[0].item(), "b": theta[1].item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
]

VARIANTS += [
    Variant("train_ppo", "full-batch updates: 16 epochs over the whole rollout, torch.cat of the steps", '''
def train_ppo(gain, iterations=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = torch.zeros(2, requires_grad=True)
    log_std = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([params, log_std, critic], lr=0.05)
    x, t, done = line_reset(N_ENVS, gen), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    history = []
    for it in range(iterations):
        xs, acts, old_logps, rews, starts, vals = [], [], [], [], [], []
        n_done = 0.0
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (params[0] * x + params[1]).unsqueeze(1)
                a = mu + torch.exp(log_std) * torch.randn(N_ENVS, 1, generator=gen)
                xs.append(x)
                acts.append(a)
                starts.append(done)
                old_logps.append(gaussian_log_prob(a, mu, log_std))
                vals.append(critic_features(x) @ critic)
                x, t, r, done = line_step(x, t, a.squeeze(1), gain, gen)
                rews.append(r)
                n_done += done.sum().item()
            R = torch.stack(rews)
            adv, ret = compute_gae(R, torch.stack(vals), torch.stack(starts), critic_features(x) @ critic, done, 0.99, 0.95)
        history.append(R.sum().item() / n_done)
        X = torch.cat(xs)
        A = torch.cat(acts)
        LP = torch.cat(old_logps)
        adv = adv.flatten()
        ret = ret.flatten()
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        for epoch in range(16):
            mu = (params[0] * X + params[1]).unsqueeze(1)
            lp = gaussian_log_prob(A, mu, log_std)
            ent = gaussian_entropy(log_std).expand(X.shape[0])
            loss = ppo_loss(lp, LP, adv, critic_features(X) @ critic, ret, ent, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01)[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {"w": params[0].item(), "b": params[1].item(), "log_std": log_std.item(), "returns": history}
'''),
    Variant("train_ppo", "scalar w and b, preallocated (T, N) buffers, minibatches in rollout order, returns of the episodes that ended", '''
def train_ppo(gain, iterations=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor(0.0, requires_grad=True)
    b = torch.tensor(0.0, requires_grad=True)
    log_std = torch.tensor([0.0], requires_grad=True)
    c = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([w, b, log_std, c], lr=0.05)
    x = line_reset(N_ENVS, g)
    t = torch.zeros(N_ENVS)
    done = torch.zeros(N_ENVS)
    episode_return = torch.zeros(N_ENVS)
    mean_returns = []
    for _ in range(iterations):
        obs = torch.zeros(T_ROLLOUT, N_ENVS)
        act = torch.zeros(T_ROLLOUT, N_ENVS, 1)
        logp = torch.zeros(T_ROLLOUT, N_ENVS)
        rew = torch.zeros(T_ROLLOUT, N_ENVS)
        dones = torch.zeros(T_ROLLOUT, N_ENVS)
        val = torch.zeros(T_ROLLOUT, N_ENVS)
        finished = []
        with torch.no_grad():
            for step in range(T_ROLLOUT):
                mu = (w * x + b).reshape(N_ENVS, 1)
                a = mu + torch.exp(log_std) * torch.randn(N_ENVS, 1, generator=g)
                obs[step], act[step], dones[step] = x, a, done
                logp[step] = gaussian_log_prob(a, mu, log_std)
                val[step] = critic_features(x) @ c
                x, t, r, done = line_step(x, t, a[:, 0], gain, g)
                rew[step] = r
                episode_return += r
                finished += episode_return[done == 1].tolist()
                episode_return[done == 1] = 0.0
            adv, ret = compute_gae(rew, val, dones, critic_features(x) @ c, done)
        mean_returns.append(sum(finished) / len(finished))
        obs, act, logp, adv, ret = obs.flatten(), act.reshape(-1, 1), logp.flatten(), adv.flatten(), ret.flatten()
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        n = obs.shape[0]
        for epoch in range(4):
            for start in range(0, n, n // 4):
                idx = torch.arange(start, start + n // 4)
                new_logp = gaussian_log_prob(act[idx], (w * obs[idx] + b)[:, None], log_std)
                H = gaussian_entropy(log_std).repeat(len(idx))
                loss, _, _, _ = ppo_loss(new_logp, logp[idx], adv[idx], critic_features(obs[idx]) @ c, ret[idx], H)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return {"w": w.item(), "b": b.item(), "log_std": log_std.item(), "returns": mean_returns}
'''),
    Variant("train_ppo", "CleanRL style: advantages normalised per minibatch, Adam eps 1e-5, clip_grad_norm_(0.5)", '''
def train_ppo(gain, iterations=20, seed=0):
    rng = torch.Generator().manual_seed(seed)
    actor_mean = torch.zeros(2, requires_grad=True)
    actor_logstd = torch.zeros(1, requires_grad=True)
    critic = torch.zeros(3, requires_grad=True)
    params = [actor_mean, actor_logstd, critic]
    optimizer = torch.optim.Adam(params, lr=0.05, eps=1e-5)
    batch_size = T_ROLLOUT * N_ENVS
    minibatch_size = batch_size // 4
    obs = torch.zeros(T_ROLLOUT, N_ENVS)
    actions = torch.zeros(T_ROLLOUT, N_ENVS, 1)
    logprobs = torch.zeros(T_ROLLOUT, N_ENVS)
    rewards = torch.zeros(T_ROLLOUT, N_ENVS)
    dones = torch.zeros(T_ROLLOUT, N_ENVS)
    values = torch.zeros(T_ROLLOUT, N_ENVS)
    next_obs, t, next_done = line_reset(N_ENVS, rng), torch.zeros(N_ENVS), torch.zeros(N_ENVS)
    history = []
    for update in range(iterations):
        finished = 0
        for step in range(T_ROLLOUT):
            obs[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                mean = actor_mean[0] * next_obs[:, None] + actor_mean[1]
                action = mean + torch.exp(actor_logstd) * torch.randn(N_ENVS, 1, generator=rng)
                logprobs[step] = gaussian_log_prob(action, mean, actor_logstd)
                values[step] = critic_features(next_obs) @ critic
            actions[step] = action
            next_obs, t, rewards[step], next_done = line_step(next_obs, t, action[:, 0], gain, rng)
            finished += int(next_done.sum())
        history.append(float(rewards.sum()) / finished)
        with torch.no_grad():
            next_value = critic_features(next_obs) @ critic
            advantages, returns = compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95)
        b_obs = obs.reshape(-1)
        b_actions = actions.reshape(-1, 1)
        b_logprobs = logprobs.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_inds = torch.arange(batch_size)
        for epoch in range(4):
            b_inds = b_inds[torch.randperm(batch_size, generator=rng)]
            for start in range(0, batch_size, minibatch_size):
                mb_inds = b_inds[start:start + minibatch_size]
                mb_adv = b_advantages[mb_inds]
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                mean = actor_mean[0] * b_obs[mb_inds, None] + actor_mean[1]
                newlogprob = gaussian_log_prob(b_actions[mb_inds], mean, actor_logstd)
                entropy = gaussian_entropy(actor_logstd.expand(minibatch_size, 1))
                newvalue = critic_features(b_obs[mb_inds]) @ critic
                loss = ppo_loss(newlogprob, b_logprobs[mb_inds], mb_adv, newvalue, b_returns[mb_inds], entropy,
                                clip_eps=0.2, vf_coef=0.5, ent_coef=0.01)[0]
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 0.5)
                optimizer.step()
    return {"w": actor_mean[0].item(), "b": actor_mean[1].item(), "log_std": actor_logstd.item(), "returns": history}
'''),
]
