"""Demo submission for ps7_policy_gradients: mistakes students really make, in half of the exercises."""


def discounted_returns(rewards, dones, gamma):
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * running * (1 - dones[t])
        returns[t] = running
    return returns                                          # correct


def compute_gae(rewards, values, dones, next_value, next_done, gamma=0.99, lam=0.95):
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        if t == T - 1:
            nextnonterminal, nextvalues = 1.0 - next_done, next_value
        else:
            nextnonterminal, nextvalues = 1.0 - dones[t], values[t + 1]   # dones[t]: off by one
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + values


def ppo_clip_loss(logp_new, logp_old, advantages, clip_eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return -torch.min(surr1, surr2).mean()                  # correct


def approx_kl(logp_new, logp_old):
    return (logp_old - logp_new).mean()                     # k1 estimator: noisy, and single samples go negative


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
    for epoch in range(4):                                  # indented one level too little: updates only after the last rollout
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
