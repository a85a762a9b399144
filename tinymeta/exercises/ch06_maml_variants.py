"""Chapter 6 (continued) exercises: ADML's FGSM step (Yin et al. 2018, arXiv:1806.03316) and CAML's inner step
(Zintgraf et al. 2019, arXiv:1810.03642).

- ``check_fgsm(student_fn)``: ``student_fn(model, loss_fn, params, x, y, epsilon)`` returns the FGSM
  inputs clip(x + epsilon * sign(grad_x L), 0, 1) for every task at once. Recognised mistakes: the
  step without the clip, clipping to [-1, 1] (the book's notebook), the raw gradient instead of its
  sign, a step downhill (it makes the loss smaller), and an answer that is not a constant.
- ``check_caml_inner_step(student_fn)``: ``student_fn(model, loss_fn, params, x_support, y_support,
  n_context, alpha)`` returns every task's context after one inner step from zero,
  phi_i = 0 - alpha * grad_phi L_i^support, shape (T, n_context), still on the graph (its
  dependence on theta is what makes CAML's meta-gradient second order). Recognised mistakes: a
  step uphill, an inner loss averaged over tasks (each step divided by T), a missing alpha, the
  weights adapted instead of the context, and a detached context (first order).
"""
from __future__ import annotations

import numpy as np

from ..algorithms import ContextModel, Objective, caml_inner_loop, fgsm, per_task
from ..autograd import grad
from ..nn import MLP
from ..tensor import Tensor, tensor
from ._check import Mismatch, as_array, compare, run_checker


def _leaf(a):
    return tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ---- exercise 1: FGSM ----------------------------------------------------------------------------------
def _fgsm_case(seed=11, T=3, ways=3, shots=2, d=6):
    rng = np.random.default_rng(seed)
    model = MLP((d, 5, ways))
    params = per_task({k: _leaf(rng.normal(size=v.shape)) for k, v in model.init_params(0, "float64").items()}, T)
    x = rng.uniform(0, 1, (T, ways * shots, d))
    x[0, 0, :2] = (0.995, 0.005)                                  # near the image range's edges
    y = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(T)])
    return model, params, tensor(x), tensor(y)


def check_fgsm(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(model, loss_fn, params, x, y, epsilon) -> x_adv`` (FGSM on every task at once).

    model(params, x) gives logits (T, N, ways); loss_fn(pred, y) gives each task's mean
    cross-entropy (T,); x is (T, N, d) in [0, 1]. The answer: a Tensor or array like x.
    """

    def body():
        model, params, x, y = _fgsm_case()
        loss_fn, eps = Objective("classification").losses, 0.03
        got = student_fn(model, loss_fn, params, x, y, eps)
        g = as_array(got, "x_adv")
        ref = fgsm(model, Objective("classification"), params, x, y, eps).numpy()
        xin = x.detach().requires_grad_()
        gx = grad(loss_fn(model(params, xin), y).sum(), xin).numpy()
        xa = x.numpy()
        if g.shape == ref.shape and not np.allclose(g, ref, rtol=0, atol=1e-12):
            mistakes = [
                (xa + eps * np.sign(gx), "the step leaves the image range: clip x + epsilon * sign(grad) to [0, 1]"),
                (np.clip(xa + eps * np.sign(gx), -1, 1),
                 "clipped to [-1, 1] (as the book's notebook): images here live in [0, 1], clip to [0, 1]"),
                (np.clip(xa + eps * gx, 0, 1), "the raw gradient was used: FGSM steps by epsilon * SIGN(grad)"),
                (np.clip(xa - eps * np.sign(gx), 0, 1),
                 "the step goes downhill: FGSM makes the loss LARGER, x + epsilon * sign(grad_x L)"),
            ]
            for wrong, hint in mistakes:
                if np.allclose(g, wrong, rtol=0, atol=1e-12):
                    raise Mismatch(hint)
        compare(got, ref, "x_adv", rtol=0, atol=1e-12)
        if isinstance(got, Tensor) and got.requires_grad:
            raise Mismatch("x_adv is still on the graph: the attack is a constant input, return x_adv.detach()")

    return run_checker("check_fgsm", body, raise_on_failure)


# ---- exercise 2: CAML's inner step -----------------------------------------------------------------------
def _caml_case(seed=12, T=3, n_context=2):
    rng = np.random.default_rng(seed)
    model = ContextModel(MLP((1 + n_context, 6, 1)), n_context)
    params = {k: _leaf(rng.normal(size=v.shape)) for k, v in model.init_params(0, "float64").items()}
    xs = rng.uniform(-3, 3, (T, 5, 1))
    ys = rng.uniform(0.5, 3, (T, 1, 1)) * np.sin(xs - rng.uniform(0, np.pi, (T, 1, 1)))
    return model, params, tensor(xs), tensor(ys), n_context


def check_caml_inner_step(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(model, loss_fn, params, x_support, y_support, n_context, alpha) -> phi`` (T, n_context).

    model(weights_and_context, x) takes ``{**params, 'context': phi}`` with phi (T, n_context);
    loss_fn(pred, y) gives each task's mean squared error (T,). The answer: the contexts after
    one step from zero, a Tensor still connected to params.
    """

    def body():
        model, params, xs, ys, n = _caml_case()
        loss_fn, alpha = Objective("regression").losses, 0.7
        got = student_fn(model, loss_fn, params, xs, ys, n, alpha)
        if isinstance(got, dict):
            raise Mismatch("the answer is a dict: return the adapted context phi (T, n_context) alone; CAML's "
                           "inner loop adapts the context only, the weights theta stay shared")
        g = as_array(got, "the adapted context")
        T = xs.shape[0]
        if g.shape != (T, n):
            raise Mismatch(f"the adapted context has shape {g.shape}, expected (T, n_context) = {(T, n)}: "
                           "one context per task, adapted on that task's support set")
        ref = caml_inner_loop(model, Objective("regression"), params, (xs, ys), alpha, 1)
        e = ref.numpy()
        mistakes = [(-e, "the step goes uphill: phi = 0 MINUS alpha * grad"),
                     (e / T, "each task's step is divided by T: the inner loss is a SUM over tasks of each "
                             "task's mean (a mean over tasks shrinks every task's gradient by T)"),
                     (e / alpha, "alpha is missing: phi = 0 - alpha * grad")]
        if not np.allclose(g, e, rtol=1e-8, atol=1e-12):
            for wrong, hint in mistakes:
                if np.allclose(g, wrong, rtol=1e-8, atol=1e-12):
                    raise Mismatch(hint)
        compare(got, e, "the adapted context", rtol=1e-8, atol=1e-12)
        if not isinstance(got, Tensor) or not got.requires_grad:
            raise Mismatch("the adapted context is cut from the graph: compute the context gradient with "
                           "create_graph=True and keep Tensor operations, so the meta-gradient reaches theta "
                           "through it (second order)")
        r = np.random.default_rng(0).normal(size=e.shape)
        keys = list(params)
        want = grad((ref * tensor(r)).sum(), [params[k] for k in keys])
        have = grad((got * tensor(r)).sum(), [params[k] for k in keys], allow_unused=True)
        for k, w, h in zip(keys, want, have):
            if h is None:
                raise Mismatch(f"the adapted context does not depend on params[{k!r}] in the graph: compute the "
                               "context gradient with create_graph=True")
            compare(h, w, f"the gradient of the adapted context with respect to params[{k!r}]", rtol=1e-7, atol=1e-10)

    return run_checker("check_caml_inner_step", body, raise_on_failure)
