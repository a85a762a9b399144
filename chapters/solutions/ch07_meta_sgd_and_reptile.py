"""Reference solutions for chapter 7's exercises (Meta-SGD, Li et al. 2017; Reptile, Nichol et al. 2018)."""

import tinymeta as tm
from tinymeta.algorithms import per_task


def meta_sgd_update(params, rates, grads):
    """Meta-SGD's inner step (Eq. 1): theta' = theta - alpha o grad, elementwise, per tensor."""
    return {k: params[k] - rates[k] * grads[k] for k in params}


def meta_sgd_rate_gradient(model, loss_fn, params, rates, x_support, y_support, x_query, y_query):
    """d/dalpha mean_i L_i^query(theta - alpha o g_i) = mean_i (-g_i o grad L_i^query(theta_i')).

    Only first derivatives are needed: alpha enters theta' linearly, through alpha o g_i.
    """
    T = x_support.shape[0]
    fast = per_task(params, T)
    g_s = tm.grad(loss_fn(model(fast, x_support), y_support).sum(), fast)           # (T, ...) per task
    adapted = {k: (fast[k] - rates[k] * g_s[k]).detach().requires_grad_() for k in fast}
    g_q = tm.grad(loss_fn(model(adapted, x_query), y_query).sum(), adapted)         # grad L_i^query(theta_i')
    return {k: (-g_s[k] * g_q[k]).mean(axis=0) for k in params}                   # mean over tasks


def meta_sgd_init(params, rng):
    """One positive learning rate per parameter element, uniform in [0.005, 0.1] (Li et al. 2017, Sec. 4.1)."""
    return {k: tm.tensor(rng.uniform(0.005, 0.1, v.shape), dtype=v.dtype, requires_grad=True)
            for k, v in params.items()}


def reptile_update(params, phis, epsilon):
    """Reptile's outer step (Algorithm 2): theta + epsilon * mean over tasks of (phi_i - theta)."""
    return {k: params[k] + epsilon * (phis[k] - params[k]).mean(axis=0) for k in params}
