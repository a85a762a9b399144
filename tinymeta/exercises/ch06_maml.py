"""Chapter 6 exercises: MAML's inner step and meta-gradient (Finn, Abbeel & Levine 2017, arXiv:1703.03400).

- ``check_maml_inner_step(student_fn)``: ``student_fn(params, grads, alpha)`` returns the fast
  weights theta' = theta - alpha * grad (Eq. 1) as a dict. The values are compared, and so is
  the gradient that flows back through the step: the fast weights must stay on the graph, or
  the meta-gradient cannot reach theta.
- ``check_maml_meta_gradient(student_fn)``: ``student_fn(model, loss_fn, params, x_support,
  y_support, x_query, y_query, alpha)`` returns the gradient of the meta-loss
  mean_i L_i^query(theta_i') with respect to theta (one inner step, every task on the task axis).
  The checker compares it with :class:`tinymeta.algorithms.MAML` and recognises the first-order
  gradient (``create_graph=True`` forgotten), an inner loss averaged over tasks, a meta-loss
  summed over tasks, no inner step at all, support and query swapped, and an uphill inner step.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import MAML, Objective
from ..autograd import grad
from ..nn import MLP
from ..tasks import Sinusoid
from ..tasks.base import MetaBatch
from ..tensor import Tensor, tensor
from ._check import Mismatch, as_array, compare, dict_answer, diagnose, run_checker


def _leaf(a):
    return tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ---- exercise 1: the inner step ---------------------------------------------------------------------
def _inner_cases():
    rng = np.random.default_rng(6)
    shapes = {"w1": (4, 1), "b1": (4,), "w2": (1, 4), "b2": (1,)}
    shared = ({k: _leaf(rng.normal(size=s)) for k, s in shapes.items()},
              {k: _leaf(rng.normal(size=s)) for k, s in shapes.items()}, 0.1)
    T = 3   # per-task fast weights: theta on the task axis, each task with its own gradient
    per_task = ({k: _leaf(rng.normal(size=(T,) + s)) for k, s in shapes.items()},
                {k: _leaf(rng.normal(size=(T,) + s)) for k, s in shapes.items()}, 0.4)
    return [("one set of weights (alpha = 0.1)", shared), ("3 tasks on the task axis (alpha = 0.4)", per_task)]


def check_maml_inner_step(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(params, grads, alpha) -> fast``, fast[k] = params[k] - alpha * grads[k].

    params and grads are dicts of float64 Tensors of the same shapes (with or without a
    leading task axis); the answer must be a dict of Tensors still connected to both.
    """

    def body():
        for what, (params, grads, alpha) in _inner_cases():
            before = {k: v.numpy().copy() for k, v in params.items()}
            got = dict_answer(student_fn(params, grads, alpha), list(params), f"the fast weights for {what}")
            for k in params:
                if not np.array_equal(params[k].numpy(), before[k]):
                    raise Mismatch(f"params[{k!r}] was changed in place: the inner step must leave theta alone "
                                   "(theta is shared by every task and is what MAML meta-learns); return new tensors")
            p = {k: v.numpy() for k, v in params.items()}
            g = {k: v.numpy() for k, v in grads.items()}
            expected = {k: p[k] - alpha * g[k] for k in p}
            hints = [({k: p[k] + alpha * g[k] for k in p}, "the step goes uphill: theta' = theta MINUS alpha * grad"),
                     ({k: p[k] - g[k] for k in p}, "the step lacks the learning rate: multiply the gradient by alpha"),
                     ({k: p[k] - alpha * alpha * g[k] for k in p}, "alpha is applied twice"),
                     (p, "the fast weights equal theta: subtract alpha * grad"),
                     ({k: -alpha * g[k] for k in p}, "only the step -alpha * grad was returned: add theta")]
            diagnose(got, expected, [(wrong, f"for {what}: {hint}") for wrong, hint in hints],
                     f"the fast weights for {what}")
            # the gradient through the step: d sum(r * theta') / d theta = r, / d grad = -alpha r
            for k, v in got.items():
                if not isinstance(v, Tensor):
                    raise Mismatch(f"fast weight {k!r} is a {type(v).__name__}, not a Tensor: the inner step must "
                                   "stay on the graph (use Tensor operations, no .numpy()), or the meta-gradient "
                                   "cannot flow back to theta")
                if not v.requires_grad:
                    raise Mismatch(f"fast weight {k!r} is cut from the graph (detached): the meta-gradient must "
                                   "flow back through theta' to theta")
            rng = np.random.default_rng(1)
            r = {k: rng.normal(size=expected[k].shape) for k in expected}
            probe = sum((got[k] * tensor(r[k])).sum() for k in got)
            keys = list(params)
            d = grad(probe, [params[k] for k in keys] + [grads[k] for k in keys], allow_unused=True)
            for i, k in enumerate(keys):
                dp, dg = d[i], d[len(keys) + i]
                if dp is None:
                    raise Mismatch(f"fast weight {k!r} does not depend on params[{k!r}] in the graph")
                if dg is None:
                    raise Mismatch(f"fast weight {k!r} does not depend on grads[{k!r}] in the graph: second-order "
                                   "MAML differentiates through the gradient too")
                compare(dp, r[k], f"the gradient of the fast weight {k!r} with respect to theta")
                compare(dg, -alpha * r[k], f"the gradient of the fast weight {k!r} with respect to the inner gradient")

    return run_checker("check_maml_inner_step", body, raise_on_failure)


# ---- exercise 2: the meta-gradient ----------------------------------------------------------------
def meta_gradient_case(seed: int = 0):
    """(model, loss_fn, params, batch, alpha): a small float64 sine problem where the Hessian term is large.

    The weights are drawn with std 0.5 (not MAML's 0.01) so that second- and first-order
    meta-gradients differ clearly.
    """
    model = MLP((1, 12, 12, 1), init_std=0.5)
    params = model.init_params(seed=seed, dtype="float64")
    batch = Sinusoid(k_support=5, k_query=7, dtype="float64").sample(4, np.random.default_rng(seed + 100))
    return model, Objective("regression").losses, params, batch, 0.05


def _maml_grad(model, params, batch, alpha, steps=1, first_order=False):
    algo = MAML(model, Objective("regression"), inner_lr=alpha, inner_steps=steps, first_order=first_order)
    g, _ = algo.meta_gradient(params, batch)
    return {k: v.numpy() for k, v in g.items()}


def meta_gradient_variants(model, params, batch, alpha):
    """The reference meta-gradient and what the usual mistakes give instead, with the hint for each."""
    T = batch.num_tasks
    ref = _maml_grad(model, params, batch, alpha)
    swapped = MetaBatch(batch.x_query, batch.y_query, batch.x_support, batch.y_support)
    mistakes = [
        (_maml_grad(model, params, batch, alpha, first_order=True),
         ("this is the FIRST-ORDER gradient: you forgot create_graph=True in the inner tm.grad, so the inner "
         "gradient was a constant and the Hessian term -alpha H_support g_query was dropped (that is first-order "
         "MAML, not MAML)")),
        (_maml_grad(model, params, batch, alpha / T),
         (f"each task's inner step was alpha / T (T = {T} tasks): the inner loss must be the SUM over tasks of the "
         "per-task support losses (each task's loss depends only on its own fast weights), not their mean")),
        ({k: v * T for k, v in ref.items()},
         f"the answer is T = {T} times too large: the meta-loss is the MEAN over tasks of the query losses, not the sum"),
        ({k: v / T for k, v in ref.items()},
         f"the answer is T = {T} times too small: did you average over tasks twice?"),
        (_maml_grad(model, params, batch, alpha, steps=0),
         ("this is the gradient of the query loss at theta itself: there was no inner step. Evaluate the query "
         "loss at the fast weights theta' = theta - alpha * grad L_support(theta)")),
        (_maml_grad(model, params, swapped, alpha),
         "support and query are swapped: the inner step uses the support set, the meta-loss the query set"),
        (_maml_grad(model, params, batch, -alpha),
         "the inner step goes uphill: theta' = theta MINUS alpha * grad"),
    ]
    return ref, mistakes


def check_maml_meta_gradient(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(model, loss_fn, params, x_support, y_support, x_query, y_query, alpha) -> grads``.

    ``params``: dict of float64 leaf Tensors (requires_grad); x_*/y_*: float64 Tensors (T, K, 1);
    ``loss_fn(pred, y)`` gives the (T,) per-task mean squared errors; ``model(params, x)`` the
    predictions. The answer: a dict (same keys as params) with d/dtheta of
    mean_i L_i^query(theta_i'), theta_i' = theta - alpha grad L_i^support(theta).
    """

    def body():
        for seed in (0, 1):
            model, loss_fn, params, batch, alpha = meta_gradient_case(seed)
            what = f"the meta-gradient on {batch.num_tasks} sine tasks (seed {seed})"
            out = student_fn(model, loss_fn, params, batch.x_support, batch.y_support, batch.x_query,
                             batch.y_query, alpha)
            got = dict_answer(out, list(params), what)
            ref, mistakes = meta_gradient_variants(model, params, batch, alpha)
            for k in ref:
                g = as_array(got[k], f"{what}[{k!r}]")
                if g.shape != ref[k].shape:
                    hint = ""
                    if g.shape == (batch.num_tasks,) + ref[k].shape:
                        hint = (": it still has the task axis. The gradient with respect to the shared theta "
                                "sums over tasks: differentiate the (mean) meta-loss with respect to params, "
                                "not to the per-task fast weights")
                    raise Mismatch(f"{what}[{k!r}] has shape {g.shape}, expected {ref[k].shape}{hint}")
            diagnose(got, ref, mistakes, what, rtol=1e-5, atol=1e-9)

    return run_checker("check_maml_meta_gradient", body, raise_on_failure)


__all__ = ["check_maml_inner_step", "check_maml_meta_gradient"]
