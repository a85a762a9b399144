"""Chapter 7 exercises: Meta-SGD (Li et al. 2017, arXiv:1707.09835) and Reptile (Nichol et al. 2018, arXiv:1803.02999).

- ``check_meta_sgd_update(student_fn)``: ``student_fn(params, rates, grads)`` returns
  theta' = theta - alpha o grad (elementwise, Meta-SGD Eq. 1); values are compared, and the
  gradients through the step: the rates must stay on the graph, since they are meta-learned.
- ``check_meta_sgd_rate_gradient(student_fn)``: the meta-gradient of the learning rates,
  d/dalpha mean_i L_i^query(theta - alpha o g_i) = mean_i (-g_i o grad L_i^query(theta_i')),
  compared with autograd through :class:`tinymeta.algorithms.MetaSGD`; the book's mistake
  (alpha updated with theta's gradient) is named.
- ``check_meta_sgd_init(student_fn)``: the rates' initialisation: positive, in [0.005, 0.1]
  (the paper's range), one per parameter, leaves that require grad. A normal draw, as in the
  book, gives negative rates: the checker says so.
- ``check_reptile_update(student_fn)``: theta + epsilon * mean_i (phi_i - theta) (Reptile,
  Algorithm 2); recognises the sum over tasks, a sign error, a missing epsilon and one task only.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import MetaSGD, Objective, per_task
from ..algorithms.meta_sgd import RATE_PREFIX
from ..autograd import grad
from ..tensor import Tensor, tensor
from ._check import Mismatch, as_array, compare, compare_dict, dict_answer, diagnose, run_checker, same_values
from .ch06_maml import meta_gradient_case

PAPER_RANGE = (0.005, 0.1)  # Li et al. 2017, Sec. 4.1: alpha initialised uniformly in this range


def _leaf(a):
    return tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _require_graph(got: dict, what: str):
    for k, v in got.items():
        if not isinstance(v, Tensor):
            raise Mismatch(f"{what}[{k!r}] is a {type(v).__name__}, not a Tensor: stay with Tensor operations "
                           "(no .numpy()) so that gradients flow through the step")
        if not v.requires_grad:
            raise Mismatch(f"{what}[{k!r}] is cut from the graph (detached): gradients must flow through the step")


# ---- Meta-SGD, part 1: the inner step ------------------------------------------------------------------
def check_meta_sgd_update(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(params, rates, grads) -> fast``, fast[k] = params[k] - rates[k] * grads[k] (elementwise).

    params, rates, grads: dicts of float64 Tensors with the same keys and shapes; the answer a
    dict of Tensors connected to all three.
    """

    def body():
        rng = np.random.default_rng(7)
        shapes = {"w1": (5, 1), "b1": (5,), "w2": (1, 5), "b2": (1,)}
        params = {k: _leaf(rng.normal(size=s)) for k, s in shapes.items()}
        rates = {k: _leaf(rng.uniform(*PAPER_RANGE, size=s)) for k, s in shapes.items()}
        grads = {k: _leaf(rng.normal(size=s)) for k, s in shapes.items()}
        what = "the fast weights"
        got = dict_answer(student_fn(params, rates, grads), list(shapes), what)
        p, a, g = ({k: d[k].numpy() for k in shapes} for d in (params, rates, grads))
        expected = {k: p[k] - a[k] * g[k] for k in shapes}
        for k in shapes:
            shape = as_array(got[k], f"{what}[{k!r}]").shape
            if shape != expected[k].shape:
                hint = " (alpha o grad is an elementwise product, not a matrix product)" if len(shape) else ""
                raise Mismatch(f"{what}[{k!r}] has shape {shape}, expected {expected[k].shape}{hint}")
        if not same_values(got, expected):
            hints = [({k: p[k] + a[k] * g[k] for k in p}, "the step goes uphill: theta' = theta MINUS alpha o grad"),
                     ({k: p[k] - g[k] for k in p}, ("the step ignores the learning rates: multiply grad by alpha "
                                                   "elementwise")),
                     ({k: p[k] - a[k].mean() * g[k] for k in p},
                      ("one averaged rate per tensor was used: Meta-SGD has one rate per parameter ELEMENT "
                      "(alpha has theta's shape), multiply elementwise")),
                     ({k: p[k] - (a[k] * g[k]).sum() for k in p},
                      ("alpha and grad were combined into one number by a dot (matrix) product: alpha o grad is "
                      "an elementwise product, one rate per parameter element")),
                     ({k: p[k] - a[k] for k in p}, "the rates were subtracted without the gradient: alpha o grad"),
                     ({k: a[k] - p[k] * g[k] for k in p}, "params and rates are swapped")]
            for wrong, hint in hints:
                if same_values(got, wrong):
                    raise Mismatch(hint)
        compare_dict(got, expected, what)
        _require_graph(got, what)
        r = {k: rng.normal(size=expected[k].shape) for k in shapes}
        probe = sum((got[k] * tensor(r[k])).sum() for k in shapes)
        keys = list(shapes)
        d = grad(probe, [params[k] for k in keys] + [rates[k] for k in keys] + [grads[k] for k in keys],
                 allow_unused=True)
        n = len(keys)
        for i, k in enumerate(keys):
            for j, (name, exp) in enumerate((("theta", r[k]), ("the rates alpha", -g[k] * r[k]),
                                             ("the gradient", -a[k] * r[k]))):
                got_d = d[j * n + i]
                if got_d is None:
                    extra = " The rates are meta-learned: they must stay on the graph." if j == 1 else ""
                    raise Mismatch(f"{what}[{k!r}] does not depend on {name} in the graph.{extra}")
                compare(got_d, exp, f"the gradient of {what}[{k!r}] with respect to {name}")

    return run_checker("check_meta_sgd_update", body, raise_on_failure)


# ---- Meta-SGD, part 2: the rates' meta-gradient -----------------------------------------------------------
def _rates_for(params, seed):
    rng = np.random.default_rng(seed)
    return {k: tensor(rng.uniform(0.02, 0.1, v.shape), requires_grad=True) for k, v in params.items()}


def rate_gradient_variants(model, params, rates, batch):
    """The reference d meta-loss / d alpha and what the usual mistakes give instead, with hints."""
    algo = MetaSGD(model, Objective("regression"))
    meta = {**params, **{RATE_PREFIX + k: v for k, v in rates.items()}}
    full, _ = algo.meta_gradient(meta, batch)
    ref = {k: full[RATE_PREFIX + k].numpy() for k in params}
    theta_grad = {k: full[k].numpy() for k in params}
    # first-order pieces, per task: g_s,i (support gradient at theta), g_q,i (query gradient at theta_i')
    T = batch.num_tasks
    losses = Objective("regression").losses
    fast = per_task({k: v.detach() for k, v in params.items()}, T)
    fast = {k: v.detach().requires_grad_() for k, v in fast.items()}
    gs = grad(losses(model(fast, batch.x_support), batch.y_support).sum(), fast)
    adapted = {k: (fast[k].detach() - rates[k].detach() * gs[k]).detach().requires_grad_() for k in fast}
    gq = grad(losses(model(adapted, batch.x_query), batch.y_query).sum(), adapted)
    gs, gq = {k: v.numpy() for k, v in gs.items()}, {k: v.numpy() for k, v in gq.items()}
    book = "the book's notebook makes this mistake: alpha needs its own gradient, -g_support o grad L_query(theta')"
    mistakes = [
        (theta_grad, f"this is the meta-gradient with respect to THETA, not to the rates alpha: {book}"),
        ({k: gq[k].mean(axis=0) for k in gq},
         f"this is the (first-order) gradient with respect to theta, grad L_query(theta'), not alpha's: {book}"),
        ({k: -v for k, v in ref.items()}, "the sign is wrong: d/dalpha L(theta - alpha o g) = -g o grad L(theta')"),
        ({k: v * T for k, v in ref.items()},
         (f"the answer is T = {T} times too large: the meta-loss is the MEAN over tasks, so average the "
         "per-task products")),
        ({k: -gs[k].mean(axis=0) * gq[k].mean(axis=0) for k in gs},
         ("the task-averaged gradients were multiplied: pair each task's support gradient with ITS OWN query "
         "gradient, -g_s,i o g_q,i, then average over tasks")),
        ({k: -gs[k].mean(axis=0) for k in gs}, "the query gradient is missing: -g_support o grad L_query(theta')"),
    ]
    return ref, mistakes


def check_meta_sgd_rate_gradient(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(model, loss_fn, params, rates, x_support, y_support, x_query, y_query) -> rate grads``.

    As chapter 6's meta-gradient exercise, with ``rates`` (a dict of float64 Tensors of theta's
    shapes) in place of alpha. The answer: a dict (params' keys) with d/dalpha of
    mean_i L_i^query(theta - alpha o grad L_i^support(theta)).
    """

    def body():
        for seed in (0, 1):
            model, loss_fn, params, batch, _ = meta_gradient_case(seed)
            rates = _rates_for(params, seed + 10)
            what = f"the rates' meta-gradient on {batch.num_tasks} sine tasks (seed {seed})"
            out = student_fn(model, loss_fn, params, rates, batch.x_support, batch.y_support, batch.x_query,
                             batch.y_query)
            got = dict_answer(out, list(params), what)
            ref, mistakes = rate_gradient_variants(model, params, rates, batch)
            for k in ref:
                g = as_array(got[k], f"{what}[{k!r}]")
                if g.shape != ref[k].shape:
                    hint = (": it still has the task axis; average over the tasks (axis 0)"
                            if g.shape == (batch.num_tasks,) + ref[k].shape else "")
                    raise Mismatch(f"{what}[{k!r}] has shape {g.shape}, expected {ref[k].shape}{hint}")
            diagnose(got, ref, mistakes, what, rtol=1e-5, atol=1e-9)

    return run_checker("check_meta_sgd_rate_gradient", body, raise_on_failure)


# ---- Meta-SGD, part 3: the rates' initialisation -------------------------------------------------------
def check_meta_sgd_init(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(params, rng) -> rates``: one positive rate per parameter element, in [0.005, 0.1].

    ``params`` is a dict of float64 Tensors, ``rng`` a NumPy Generator; the rates must be
    Tensors of the same shapes that require grad (they are meta-learned).
    """

    def body():
        _model, _, params, _, _ = meta_gradient_case(0)
        got = dict_answer(student_fn(params, np.random.default_rng(0)), list(params), "the rates")
        lo, hi = PAPER_RANGE
        for k, p in params.items():
            a = as_array(got[k], f"rates[{k!r}]")
            if a.shape != p.shape:
                raise Mismatch(f"rates[{k!r}] has shape {a.shape}, expected {p.shape}: one learning rate per "
                               "parameter element (alpha has theta's shape)")
            if not np.all(np.isfinite(a)):
                raise Mismatch(f"rates[{k!r}] contains NaN or Inf")
            if np.any(a <= 0):
                raise Mismatch(f"rates[{k!r}] has {int((a <= 0).sum())} of {a.size} learning rates <= 0 (smallest "
                               f"{a.min():.4g}): a negative rate makes that parameter step UPHILL. The book draws "
                               f"alpha from a normal distribution, which gives such rates; Meta-SGD draws them "
                               f"uniformly from [{lo}, {hi}] (Li et al. 2017, Sec. 4.1)")
            if a.min() < lo - 1e-12 or a.max() > hi + 1e-12:
                raise Mismatch(f"rates[{k!r}] ranges over [{a.min():.4g}, {a.max():.4g}]: draw them uniformly from "
                               f"the paper's range [{lo}, {hi}]")
            v = got[k]
            if not isinstance(v, Tensor) or not v.requires_grad:
                raise Mismatch(f"rates[{k!r}] must be a Tensor that requires grad, since Meta-SGD meta-learns "
                               "the rates: tm.tensor(values, requires_grad=True)")
            if not v.is_leaf:
                raise Mismatch(f"rates[{k!r}] is the result of an operation: make it a leaf (the optimizer updates "
                               "leaves), e.g. tm.tensor(values, requires_grad=True)")
        again = dict_answer(student_fn(params, np.random.default_rng(0)), list(params), "the rates")
        for k in params:
            if not np.array_equal(as_array(again[k], f"rates[{k!r}]"), as_array(got[k], f"rates[{k!r}]")):
                raise Mismatch(f"rates[{k!r}] differ between two calls with generators of the same seed: draw them "
                               "from the rng the function is given (rng.uniform(0.005, 0.1, shape)), not from "
                               "np.random or a generator of your own, so that a seed reproduces a run")

    return run_checker("check_meta_sgd_init", body, raise_on_failure)


# ---- Reptile ------------------------------------------------------------------------------------------------
def check_reptile_update(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(params, phis, epsilon) -> new params``: theta + epsilon * mean_i (phi_i - theta).

    ``params``: dict of float64 Tensors; ``phis``: the same keys, each (T, *shape), every task's
    adapted weights; ``epsilon``: the outer step size (a float).
    """

    def body():
        rng = np.random.default_rng(9)
        shapes = {"w1": (6, 1), "b1": (6,), "w2": (1, 6), "b2": (1,)}
        for T, eps in ((5, 0.3), (2, 0.7)):
            params = {k: tensor(rng.normal(size=s)) for k, s in shapes.items()}
            phis = {k: tensor(params[k].numpy() + rng.normal(size=(T,) + s) * 0.5) for k, s in shapes.items()}
            what = f"the new theta ({T} tasks, epsilon = {eps})"
            p = {k: v.numpy().copy() for k, v in params.items()}
            f = {k: v.numpy().copy() for k, v in phis.items()}
            got = dict_answer(student_fn(params, phis, eps), list(shapes), what)
            expected = {k: p[k] + eps * (f[k] - p[k]).mean(axis=0) for k in shapes}
            for k in shapes:
                shape = as_array(got[k], f"{what}[{k!r}]").shape
                if shape != expected[k].shape:
                    hint = ""
                    if shape == (T,) + expected[k].shape:
                        hint = ": it still has the task axis; average phi_i - theta over the tasks (axis 0)"
                    elif shape == expected[k].shape[1:] or shape == (T,) + expected[k].shape[1:]:
                        hint = ": the mean ran over the wrong axis; the task axis is axis 0"
                    raise Mismatch(f"{what}[{k!r}] has shape {shape}, expected {expected[k].shape}{hint}")
            if not same_values(got, expected):
                hints = [({k: p[k] + eps * (f[k] - p[k]).sum(axis=0) for k in p},
                          (f"the task updates were SUMMED: use the mean over the {T} tasks, or the step grows "
                          "with the meta-batch size")),
                         ({k: p[k] - eps * (f[k] - p[k]).mean(axis=0) for k in p},
                          ("the sign is wrong: Reptile moves theta TOWARDS the tasks' solutions, theta + epsilon * "
                          "(phi - theta)")),
                         ({k: p[k] + eps * (p[k] - f[k]).mean(axis=0) for k in p},
                          "the sign is wrong: the direction is phi - theta (towards the tasks' solutions)"),
                         ({k: f[k].mean(axis=0) for k in p},
                          "epsilon is missing: theta jumped all the way to the tasks' mean solution"),
                         ({k: p[k] + eps * (f[k][-1] - p[k]) for k in p},
                          "only the last task was used: average phi_i - theta over all tasks"),
                         ({k: p[k] + eps * f[k].mean(axis=0) for k in p},
                          "theta was not subtracted: the step is epsilon * (phi - theta), not epsilon * phi"),
                         ({k: eps * (f[k] - p[k]).mean(axis=0) for k in p},
                          "only the step was returned: add it to theta")]
                for wrong, hint in hints:
                    if same_values(got, wrong):
                        raise Mismatch(f"for {what}: {hint}")
            compare_dict(got, expected, what)

    return run_checker("check_reptile_update", body, raise_on_failure)


__all__ = ["check_meta_sgd_init", "check_meta_sgd_rate_gradient", "check_meta_sgd_update", "check_reptile_update"]
