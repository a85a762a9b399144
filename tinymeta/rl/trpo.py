"""TRPO's step (Schulman et al. 2015, Sec. 6 and App. C), with exact Hessian-vector products.

Maximise the surrogate subject to a trust region on the mean KL:
    min_theta L(theta)   s.t.   KL(theta_old || theta) <= delta.
Around theta_old, L ~ L0 + g^T s and KL ~ s^T A s / 2 (A: the Hessian of the KL,
which at theta_old is the Fisher matrix), so the step is s = -beta A^{-1} g with
beta = sqrt(2 delta / (d^T A d)), d = A^{-1} g found by conjugate gradient from
products A v alone; a backtracking line search then shrinks s by 0.8 until the
loss improves and the KL constraint holds, or rejects the step.

A v is a gradient of a gradient: A v = d/dtheta [ (d KL / d theta) . v ], one
``grad(create_graph=True)`` and one more ``grad``. For MAML the KL is a function of
theta *through the inner step*, so that is a third derivative of the network,
which the engine gives exactly because its backward rules are differentiable.

Settings as the original's ConjugateGradientOptimizer (cbfinn/maml_rl,
sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py:125-135): 10 CG
iterations, A + 1e-5 I, backtrack ratio 0.8, at most 15 backtracks, step size
from line 270-272, rejection rule from lines 289-302. One deliberate difference: the
original's default Hessian-vector product is a finite difference of KL gradients
(line 163, ``FiniteDifferenceHvp``); here it is exact (the Perlmutter product of line 13,
which the original has but leaves commented out).
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import grad, no_grad
from ..tensor import Tensor


def flatten(tensors: dict) -> np.ndarray:
    """One float64 host vector from a dict of tensors (in the dict's key order)."""
    return np.concatenate([np.asarray(t.numpy(), dtype=np.float64).reshape(-1) for t in tensors.values()])


def unflatten(vector: np.ndarray, like: dict) -> dict:
    """Split a flat vector into constant tensors shaped (and typed) like ``like``'s values."""
    out, i = {}, 0
    for k, t in like.items():
        out[k] = Tensor(t.xp.asarray(vector[i:i + t.size].reshape(t.shape), dtype=t.dtype))
        i += t.size
    if i != vector.size:
        raise ValueError(f"vector has {vector.size} entries, the parameters {i}")
    return out


def conjugate_gradient(matvec, b: np.ndarray, iters: int = 10, residual_tol: float = 1e-10) -> np.ndarray:
    """Approximately solve A x = b for symmetric positive definite A, given only ``matvec(v) = A v``.

    Hestenes-Stiefel CG from x = 0 (as rllab/misc/krylov.py ``cg``): exact in at most
    dim(b) iterations in exact arithmetic.
    """
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = r @ r
    for _ in range(iters):
        if rr < residual_tol:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def hessian_vector_product(grads_with_graph: dict, params: dict, vector: np.ndarray) -> np.ndarray:
    """H v from gradients that carry their graph: d/dtheta sum_k <g_k, v_k>."""
    v = unflatten(vector, params)
    dot = None
    for k, g in grads_with_graph.items():
        term = (g * v[k]).sum()
        dot = term if dot is None else dot + term
    hv = grad(dot, params, allow_unused=True)
    return np.concatenate([np.zeros(params[k].size) if h is None else
                           np.asarray(h.numpy(), dtype=np.float64).reshape(-1) for k, h in hv.items()])


def trpo_step(params: dict, objective, max_kl: float = 0.01, cg_iters: int = 10, reg_coeff: float = 1e-5,
              backtrack_ratio: float = 0.8, max_backtracks: int = 15) -> dict:
    """One TRPO update of ``params`` (leaf tensors, changed in place); returns diagnostics.

    ``objective(params)`` returns ``(loss, kl)`` tensors: the surrogate loss to
    minimise and the mean KL from the sampling policy, whose value (0) and
    gradient (0) at the current params make A its Hessian there.
    """
    loss, kl = objective(params)
    loss_before = float(loss.item())
    g = flatten(grad(loss, params))
    kl_grads = grad(kl, params, create_graph=True, allow_unused=True)
    kl_grads = {k: v for k, v in kl_grads.items() if v is not None}

    def matvec(v):
        return hessian_vector_product(kl_grads, params, v) + reg_coeff * v

    direction = conjugate_gradient(matvec, g, iters=cg_iters)
    shs = float(direction @ matvec(direction))
    step_size = math.sqrt(2.0 * max_kl / (shs + 1e-8))
    if not math.isfinite(step_size):
        step_size = 1.0
    del kl_grads, loss, kl  # free the graphs before the line search

    prev = flatten(params)
    accepted, new_loss, new_kl, n = False, float("nan"), float("nan"), 0
    for n in range(max_backtracks):
        _assign(params, prev - (backtrack_ratio ** n) * step_size * direction)
        with no_grad():
            new_loss_t, new_kl_t = objective(params)
        new_loss, new_kl = float(new_loss_t.item()), float(new_kl_t.item())
        if new_loss < loss_before and new_kl <= max_kl:
            accepted = True
            break
    if not accepted:
        _assign(params, prev)
    return {"loss_before": loss_before, "loss_after": new_loss if accepted else loss_before,
            "kl": new_kl if accepted else 0.0, "backtracks": n, "accepted": accepted,
            "grad_norm": float(np.linalg.norm(g))}


def _assign(params: dict, vector: np.ndarray) -> None:
    """Write a flat vector into the parameters' arrays (new arrays: old graphs keep their values)."""
    for k, v in unflatten(vector, params).items():
        params[k].data = v.data
