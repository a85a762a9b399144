"""Reference solutions for chapter 6's exercises (MAML, Finn et al. 2017, arXiv:1703.03400)."""
import tinymeta as tm
from tinymeta.algorithms import per_task


def maml_inner_step(params, grads, alpha):
    """MAML's inner step (Eq. 1): theta' = theta - alpha * grad, for every tensor of the dict."""
    return {k: params[k] - alpha * grads[k] for k in params}


def maml_meta_gradient(model, loss_fn, params, x_support, y_support, x_query, y_query, alpha):
    """d/dtheta of mean_i L_i^query(theta_i'), with theta_i' = theta - alpha grad L_i^support(theta)."""
    T = x_support.shape[0]
    fast = per_task(params, T)                                       # per-task copies (T, ...)
    inner = loss_fn(model(fast, x_support), y_support).sum()         # mean per task, summed over tasks
    g = tm.grad(inner, fast, create_graph=True)                      # every task's own gradient, on the graph
    fast = {k: fast[k] - alpha * g[k] for k in fast}                 # Eq. 1
    meta_loss = loss_fn(model(fast, x_query), y_query).mean()        # mean over tasks of the query losses
    return tm.grad(meta_loss, params)                                # through the inner step: second order


# ==== MAML for reinforcement learning (chapter 06_maml_for_rl) ======================================================
import numpy as np  # noqa: E402


def reinforce_surrogate(logp, advantages, valid):
    """(T,) surrogates -sum_{n,t} valid logp A / sum_{n,t} valid: their gradient is the policy gradient (Eq. 4)."""
    weights = tm.tensor(advantages * valid)                          # constants: no gradient flows into A
    return -(logp * weights).sum((1, 2)) / tm.tensor(valid.sum(axis=(1, 2)))


def discounted_returns(rewards, discount):
    """R_t = r_t + discount * R_{t+1}, from the last step backwards (the reward-to-go)."""
    returns = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[:-1])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + discount * running
        returns[..., t] = running
    return returns


def hessian_vector_product(f, params, vector):
    """H v = d/dtheta <grad f(theta), v> (Pearlmutter 1994): two tm.grad calls, the first on the graph."""
    g = tm.grad(f(params), params, create_graph=True)
    dot = sum((g[k] * tm.tensor(vector[k])).sum() for k in params)
    return tm.grad(dot, params)
