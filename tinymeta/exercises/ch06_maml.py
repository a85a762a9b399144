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
  summed over tasks, no inner step at all, support and query swapped, an uphill inner step, and
  one inner step shared by all tasks (no task axis on the fast weights).
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


def _shared_inner_step_grad(model, params, batch, alpha, reduce):
    """The meta-gradient when every task steps from theta with ONE gradient: no per-task copies (no task axis)."""
    loss_fn = Objective("regression").losses
    inner = getattr(loss_fn(model(params, batch.x_support), batch.y_support), reduce)()
    g = grad(inner, params, create_graph=True)               # one gradient for all tasks: their sum or mean
    fast = {k: params[k] - alpha * g[k] for k in params}
    meta_loss = loss_fn(model(fast, batch.x_query), batch.y_query).mean()
    return {k: v.numpy() for k, v in grad(meta_loss, params).items()}


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
    ] + [
        (_shared_inner_step_grad(model, params, batch, alpha, reduce),
         (f"every task took the same inner step, with the {what} of all tasks' support gradients: the fast weights "
          "have no task axis. Give each task its own copy of theta first (tinymeta.algorithms.per_task(params, T), "
          "shapes (T, ...)), sum the per-task support losses and differentiate with respect to those copies: "
          "one tm.grad then returns every task's own gradient"))
        for reduce, what in (("sum", "sum"), ("mean", "mean"))
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


# ==== MAML for reinforcement learning (chapter 06_maml_for_rl) =====================================================
# Three checkers for the RL chapter (Finn et al. 2017, Sec. 3.2 and 5.3; tinymeta.rl):
# - check_reinforce_surrogate(student_fn): student_fn(logp, advantages, valid) -> (T,) surrogate losses
#   -sum_{n,t} valid log pi(a|s) A / sum_{n,t} valid, whose gradient is the policy gradient (Eq. 4);
# - check_discounted_returns(student_fn): student_fn(rewards, discount) -> the reward-to-go
#   R_t = sum_{k >= t} discount^(k - t) r_k along the last axis;
# - check_hessian_vector_product(student_fn): student_fn(f, params, vector) -> H v, H the Hessian of the
#   scalar f(params), from gradients of gradients (what TRPO's conjugate gradient needs).
from ..rl.navigation import discounted_cumsum as _rl_discounted_cumsum
from ..rl.policy import GaussianMLPPolicy as _RLPolicy
from ..rl.policy import kl_divergence as _rl_kl
from ..rl.trpo import flatten as _rl_flatten
from ..rl.trpo import hessian_vector_product as _rl_hvp


def reinforce_case(seed: int = 0):
    """(logp leaf (T, N, H), advantages (T, N, H), valid (T, N, H)): 3 tasks, trajectories ending at random steps."""
    rng = np.random.default_rng(seed)
    T, N, H = 3, 4, 6
    ends = rng.integers(2, H + 1, size=(T, N))                      # each trajectory is valid up to its end
    valid = (np.arange(H) < ends[..., None]).astype(np.float64)
    return _leaf(rng.normal(size=(T, N, H)) - 2.0), rng.normal(size=(T, N, H)), valid


def reinforce_variants(logp: np.ndarray, adv: np.ndarray, valid: np.ndarray):
    """The reference surrogates and their gradients, and the usual mistakes with their hints."""
    n_valid = valid.sum(axis=(1, 2))
    N, H = valid.shape[1:]

    def answer(weights, denom):     # a surrogate sum(weights * logp) / denom: its gradient is weights / denom
        return {"loss": (weights * logp).sum(axis=(1, 2)) / denom, "grad": weights / denom[:, None, None]}

    ref = answer(-adv * valid, n_valid)
    mistakes = [
        (answer(adv * valid, n_valid),
         "the sign is flipped: the policy gradient ASCENDS mean log pi * A, so the loss to minimise is MINUS it"),
        (answer(-adv * valid, np.full_like(n_valid, N * H)),
         (f"you divided by all N x H = {N * H} steps: average over each task's VALID steps only "
          "(sum of valid), since steps after a trajectory reached its goal did not happen")),
        (answer(-adv, n_valid),
         "steps after the end of a trajectory were counted: multiply by valid before summing"),
        (answer(-adv, np.full_like(n_valid, N * H)),
         "valid was ignored: multiply log pi * A by valid and divide by the number of valid steps of each task"),
        (answer(-np.ones_like(adv) * valid, n_valid),
         "the advantages are missing: each log pi(a_t|s_t) is weighted by its advantage A_t"),
    ]
    return ref, mistakes


def check_reinforce_surrogate(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(logp, advantages, valid) -> (T,) Tensor`` (MAML Eq. 4 with a baseline).

    ``logp``: float64 leaf Tensor (T, N, H) of log pi(a_t | s_t); ``advantages``, ``valid``: NumPy
    (T, N, H) (advantages are constants; valid is 1 up to a trajectory's last step, 0 after).
    The answer, per task: -sum_{n,t} valid * logp * A / sum_{n,t} valid. Its value is compared,
    and so is its gradient with respect to logp (it must stay on the graph).
    """

    def body():
        for seed in (0, 1):
            logp, adv, valid = reinforce_case(seed)
            T = valid.shape[0]
            what = f"the surrogate of {T} tasks (seed {seed})"
            out = student_fn(logp, adv.copy(), valid.copy())
            if not isinstance(out, Tensor):
                raise Mismatch(f"{what} should be a Tensor on the graph (computed from logp with tinymeta ops), "
                               f"got {type(out).__name__}: without the graph there is no policy gradient")
            if out.shape != (T,):
                hint = " (one loss per task: average within each task, do not reduce over tasks)" \
                    if out.shape in ((), (1,)) else ""
                raise Mismatch(f"{what} has shape {out.shape}, expected ({T},){hint}")
            g = grad(out.sum(), logp, allow_unused=True)
            if g is None:
                raise Mismatch(f"{what} does not depend on logp: keep it on the graph (no .numpy(), no detach)")
            ref, mistakes = reinforce_variants(logp.numpy(), adv, valid)
            diagnose({"loss": out.numpy(), "grad": g.numpy()}, ref, mistakes, what, rtol=1e-8, atol=1e-10)

    return run_checker("check_reinforce_surrogate", body, raise_on_failure)


def returns_case(seed: int = 0):
    """(rewards (T, N, H), discount): negative distances, as on the navigation task."""
    rng = np.random.default_rng(seed)
    return -rng.uniform(0.0, 1.0, size=(2, 3, 7)), 0.9


def returns_variants(rewards: np.ndarray, discount: float):
    """The reward-to-go and the usual mistakes with their hints."""
    H = rewards.shape[-1]
    ref = _rl_discounted_cumsum(rewards, discount)
    powers = discount ** np.arange(H)
    mistakes = [
        ({"R": _rl_discounted_cumsum(rewards, 1.0)},
         "there is no discount: each later reward r_k is weighted by discount^(k - t)"),
        ({"R": np.cumsum(rewards * powers, axis=-1)},
         "this sums the rewards BEFORE t (a running sum from the start): the return-to-go sums rewards from t on"),
        ({"R": np.cumsum(rewards, axis=-1)},
         "this is a running sum from the start, undiscounted: the return-to-go sums rewards from t to the end"),
        ({"R": np.broadcast_to((rewards * powers).sum(-1, keepdims=True), rewards.shape)},
         "every step got the whole trajectory's discounted return: step t only gets the rewards from t on"),
        ({"R": discount * ref},
         "the exponent is off by one: r_t itself counts fully (discount^0), r_{t+1} with discount^1"),
        ({"R": _rl_discounted_cumsum(rewards * powers, 1.0)},
         "the discount is counted from step 0 (discount^k) instead of from t (discount^(k - t))"),
        ({"R": _forward_recursion(rewards, discount)},
         "the recursion runs forwards (R_t = r_t + discount R_{t-1}, from step 0), which discounts the rewards "
         "BEFORE t: run it backwards, from the last step, R_t = r_t + discount R_{t+1}"),
        ({"R": ref - rewards},
         "the sum starts one step late: r_t itself belongs to R_t (R_t = r_t + discount R_{t+1}, not "
         "discount R_{t+1} alone)"),
        ({"R": np.concatenate([ref[..., 1:], np.zeros_like(ref[..., :1])], axis=-1)},
         "the returns are shifted by one step: R_t starts at r_t, and the last step's return is its own reward"),
        ({"R": np.concatenate([np.zeros_like(ref[..., :1]), ref[..., :-1]], axis=-1)},
         "the returns are shifted by one step: R_t starts at r_t (write R[..., t], not R[..., t + 1])"),
    ] + [
        ({"R": np.moveaxis(_rl_discounted_cumsum(np.moveaxis(rewards, axis, -1), discount), -1, axis)},
         f"the recursion runs over the {name} axis ({axis}) instead of time: rewards are (T, N, H), "
         "so discount along the last axis (rewards[..., t])")
        for axis, name in ((1, "trajectory"), (0, "task"))
    ]
    return {"R": ref}, mistakes


def _forward_recursion(rewards: np.ndarray, discount: float) -> np.ndarray:
    """R_t = r_t + discount R_{t-1} from the first step: the discounted sum of the rewards up to t."""
    out = np.empty_like(rewards)
    running = np.zeros(rewards.shape[:-1])
    for t in range(rewards.shape[-1]):
        running = rewards[..., t] + discount * running
        out[..., t] = running
    return out


def check_discounted_returns(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(rewards, discount) -> R`` with R_t = sum_{k >= t} discount^(k - t) r_k (last axis).

    ``rewards``: NumPy (T, N, H); the answer: an array (or Tensor) of the same shape.
    """

    def body():
        for seed in (0, 1):
            rewards, discount = returns_case(seed)
            what = f"the returns-to-go (discount {discount}, seed {seed})"
            out = student_fn(rewards.copy(), discount)
            got = as_array(out, what)
            if got.shape != rewards.shape:
                raise Mismatch(f"{what} has shape {got.shape}, expected {rewards.shape} (one return per step)")
            ref, mistakes = returns_variants(rewards, discount)
            diagnose({"R": got}, ref, mistakes, what, rtol=1e-8, atol=1e-10)

    return run_checker("check_discounted_returns", body, raise_on_failure)


def hvp_case(seed: int = 0):
    """(f, params, vector): f = mean KL(old || pi_params) of a small float64 Gaussian policy, away from old.

    The old distribution differs from the policy, so f's gradient is not zero and the gradient
    itself cannot pass for H v.
    """
    rng = np.random.default_rng(seed)
    policy = _RLPolicy((2, 8, 8, 2))
    params = policy.init_params(seed, dtype="float64")
    obs = tensor(rng.normal(size=(16, 2)) * 0.3)
    old_mean, old_log_std = tensor(rng.normal(size=(16, 2)) * 0.5), tensor(rng.normal(size=(16, 2)) * 0.2)

    def f(p):
        mean, log_std = policy.distribution(p, obs)
        return _rl_kl(old_mean, old_log_std, mean, log_std).mean()

    vector = {k: rng.normal(size=v.shape) for k, v in params.items()}
    return f, params, vector


def hvp_variants(f, params: dict, vector: dict):
    """H v from tinymeta.rl.trpo, and the usual mistakes (the gradient, H 1, g * v) with their hints."""
    def unflat(x):
        out, i = {}, 0
        for k, p in params.items():
            out[k] = x[i:i + p.size].reshape(p.shape)
            i += p.size
        return out

    g = grad(f(params), params, create_graph=True)
    flat_v = np.concatenate([np.asarray(vector[k], dtype=np.float64).reshape(-1) for k in params])
    ref = unflat(_rl_hvp(g, params, flat_v))
    ones = unflat(_rl_hvp(g, params, np.ones_like(flat_v)))
    gradient = unflat(_rl_flatten(g))
    mistakes = [
        (gradient, "this is the gradient g itself: differentiate again, the gradient of <g, v> with respect to params"),
        (ones, "the vector was not used (this is H times a vector of ones): take the gradient of sum_k (g_k * v_k).sum()"),
        ({k: gradient[k] * vector[k] for k in params},
         "this is g * v elementwise: H v is the gradient of the scalar <g, v> = sum_k (g_k * v_k).sum() "
         "(with create_graph=True on the first tm.grad)"),
    ]
    return ref, mistakes


_NO_CREATE_GRAPH = ("the first tm.grad needs create_graph=True: without it the gradient g is a constant, so "
                    "<g, v> does not depend on params and has no gradient of its own")


def check_hessian_vector_product(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(f, params, vector) -> dict`` of H v, H the Hessian of the scalar ``f(params)``.

    ``f``: callable dict -> scalar Tensor; ``params``: dict of float64 leaf Tensors; ``vector``: dict of
    NumPy arrays with params' keys and shapes. The answer: a dict with params' keys (the Perlmutter
    product: the gradient of <grad f, v>, two tm.grad calls, the first with create_graph=True).
    """

    def body():
        for seed in (0, 1):
            f, params, vector = hvp_case(seed)
            what = f"H v of a policy's KL (seed {seed})"
            try:
                out = student_fn(f, params, {k: v.copy() for k, v in vector.items()})
            except RuntimeError as exc:
                if "not part of the graph" not in str(exc):
                    raise
                raise Mismatch(f"{what}: {_NO_CREATE_GRAPH} (the error was: {exc})") from None
            got = dict_answer(out, list(params), what)
            if all(v is None for v in got.values()) or all(
                    v is not None and not np.any(as_array(v, k)) for k, v in got.items()):
                raise Mismatch(f"{what} is None or zero everywhere: {_NO_CREATE_GRAPH}; allow_unused=True only "
                               "hides that (it answers None, 'no dependence', for every parameter)")
            got = {k: as_array(v, f"{what}[{k!r}]") for k, v in got.items()}
            for k, p in params.items():
                if got[k].shape != p.shape:
                    raise Mismatch(f"{what}[{k!r}] has shape {got[k].shape}, expected {p.shape}")
            ref, mistakes = hvp_variants(f, params, vector)
            diagnose(got, ref, mistakes, what, rtol=1e-6, atol=1e-9)

    return run_checker("check_hessian_vector_product", body, raise_on_failure)


__all__ += ["check_reinforce_surrogate", "check_discounted_returns", "check_hessian_vector_product"]
