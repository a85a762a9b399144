"""Chapter 6's checkers (MAML's inner step and meta-gradient): the reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch06_maml as solution
from tinymeta.algorithms import per_task
from tinymeta.exercises.ch06_maml import check_maml_inner_step, check_maml_meta_gradient

pytestmark = pytest.mark.ch06


@pytest.mark.parametrize("checker, fn", [
    (check_maml_inner_step, solution.maml_inner_step),
    (check_maml_meta_gradient, solution.maml_meta_gradient),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes(checker, fn, capsys):
    assert_passes(checker, fn, capsys)


@pytest.mark.parametrize("checker, nargs", [(check_maml_inner_step, 3), (check_maml_meta_gradient, 8)])
def test_not_attempted(checker, nargs, capsys):
    assert_not_attempted(checker, nargs, capsys)


# ---- chapter 6, exercise 1: the inner step --------------------------------------------------------------
def uphill(params, grads, alpha):
    return {k: params[k] + alpha * grads[k] for k in params}


def no_alpha(params, grads, alpha):
    return {k: params[k] - grads[k] for k in params}


def through_numpy(params, grads, alpha):
    return {k: params[k].numpy() - alpha * grads[k].numpy() for k in params}


def detached(params, grads, alpha):
    return {k: (params[k] - alpha * grads[k]).detach() for k in params}


def constant_gradient(params, grads, alpha):
    return {k: params[k] - alpha * grads[k].detach() for k in params}


def in_place(params, grads, alpha):
    for k in params:
        params[k].data -= alpha * grads[k].data
    return params


def missing_key(params, grads, alpha):
    return {k: params[k] - alpha * grads[k] for k in list(params)[:-1]}


@pytest.mark.parametrize("fn, message", [
    (uphill, "the step goes uphill"),
    (no_alpha, "lacks the learning rate"),
    (through_numpy, "is a ndarray, not a Tensor"),
    (detached, "cut from the graph"),
    (constant_gradient, "does not depend on grads['w1']"),
    (in_place, "was changed in place"),
    (missing_key, "has the wrong keys: missing ['b2']"),
])
def test_inner_step_mistakes(fn, message, capsys):
    assert_fails(check_maml_inner_step, fn, message, capsys)


# ---- chapter 6, exercise 2: the meta-gradient ------------------------------------------------------------
def _meta_gradient(model, loss_fn, params, xs, ys, xq, yq, alpha, create_graph=True, inner="sum", outer="mean",
                   swap=False):
    if swap:
        xs, ys, xq, yq = xq, yq, xs, ys
    T = xs.shape[0]
    fast = per_task(params, T)
    inner_losses = loss_fn(model(fast, xs), ys)
    g = tm.grad(inner_losses.sum() if inner == "sum" else inner_losses.mean(), fast, create_graph=create_graph)
    fast = {k: fast[k] - alpha * g[k] for k in fast}
    q = loss_fn(model(fast, xq), yq)
    return tm.grad(q.mean() if outer == "mean" else q.sum(), params)


def first_order(*a):
    return _meta_gradient(*a, create_graph=False)


def inner_mean(*a):
    return _meta_gradient(*a, inner="mean")


def outer_sum(*a):
    return _meta_gradient(*a, outer="sum")


def swapped(*a):
    return _meta_gradient(*a, swap=True)


def no_inner_step(model, loss_fn, params, xs, ys, xq, yq, alpha):
    return tm.grad(loss_fn(model(params, xq), yq).mean(), params)


def keeps_task_axis(model, loss_fn, params, xs, ys, xq, yq, alpha):
    fast = per_task(params, xs.shape[0])
    g = tm.grad(loss_fn(model(fast, xs), ys).sum(), fast, create_graph=True)
    fast2 = {k: fast[k] - alpha * g[k] for k in fast}
    return tm.grad(loss_fn(model(fast2, xq), yq).mean(), fast)   # w.r.t. the per-task copies


def no_task_axis_sum(model, loss_fn, params, xs, ys, xq, yq, alpha):
    """No per-task copies: every task steps with the sum of all support gradients."""
    g = tm.grad(loss_fn(model(params, xs), ys).sum(), params, create_graph=True)
    fast = {k: params[k] - alpha * g[k] for k in params}
    return tm.grad(loss_fn(model(fast, xq), yq).mean(), params)


def no_task_axis_mean(model, loss_fn, params, xs, ys, xq, yq, alpha):
    """No per-task copies, mean inner loss: every task steps with the average support gradient."""
    g = tm.grad(loss_fn(model(params, xs), ys).mean(), params, create_graph=True)
    fast = {k: params[k] - alpha * g[k] for k in params}
    return tm.grad(loss_fn(model(fast, xq), yq).mean(), params)


def as_list(*a):
    return list(solution.maml_meta_gradient(*a).values())


@pytest.mark.parametrize("fn, message", [
    (first_order, "FIRST-ORDER gradient: you forgot create_graph=True"),
    (inner_mean, "inner step was alpha / T"),
    (outer_sum, "times too large: the meta-loss is the MEAN over tasks"),
    (swapped, "support and query are swapped"),
    (no_inner_step, "there was no inner step"),
    (keeps_task_axis, "it still has the task axis"),
    (no_task_axis_sum, "every task took the same inner step, with the sum of all tasks' support gradients"),
    (no_task_axis_mean, "every task took the same inner step, with the mean of all tasks' support gradients"),
    (as_list, "should be a dict"),
])
def test_meta_gradient_mistakes(fn, message, capsys):
    assert_fails(check_maml_meta_gradient, fn, message, capsys)


def test_meta_gradient_unknown_mistake_names_the_worst_element(capsys):
    def off(*a):
        return {k: v * 1.01 for k, v in solution.maml_meta_gradient(*a).items()}
    assert check_maml_meta_gradient(off) is False
    out = capsys.readouterr().out
    assert "is wrong at index" in out and "expected" in out and "got" in out


def test_meta_gradient_case_separates_first_and_second_order():
    """The checker's problem must make the Hessian term visible, or the first-order hint could never fire."""
    from tinymeta.exercises.ch06_maml import meta_gradient_case, meta_gradient_variants
    model, _, params, batch, alpha = meta_gradient_case(0)
    ref, mistakes = meta_gradient_variants(model, params, batch, alpha)
    fo = mistakes[0][0]
    rel = max(np.abs(fo[k] - ref[k]).max() / np.abs(ref[k]).max() for k in ref)
    assert rel > 0.1


# ==== MAML for reinforcement learning (chapter 06_maml_for_rl): its three checkers ================================
from tinymeta.exercises.ch06_maml import (check_discounted_returns, check_hessian_vector_product,  # noqa: E402
                                          check_reinforce_surrogate)
from tinymeta.rl.navigation import discounted_cumsum  # noqa: E402


@pytest.mark.parametrize("checker, fn", [
    (check_reinforce_surrogate, solution.reinforce_surrogate),
    (check_discounted_returns, solution.discounted_returns),
    (check_hessian_vector_product, solution.hessian_vector_product),
], ids=lambda v: getattr(v, "__name__", ""))
def test_rl_reference_passes(checker, fn, capsys):
    assert checker(fn) is True
    checker(fn, raise_on_failure=True)
    assert "correct!" in capsys.readouterr().out


@pytest.mark.parametrize("checker, nargs", [(check_reinforce_surrogate, 3), (check_discounted_returns, 2),
                                            (check_hessian_vector_product, 3)])
def test_rl_not_attempted(checker, nargs, capsys):
    def stub(*args):
        assert len(args) == nargs
        raise NotImplementedError("Exercise")
    assert checker(stub) is False
    assert "not attempted" in capsys.readouterr().out


def test_reinforce_surrogate_by_hand():
    """One task, one trajectory of 3 steps, the last invalid: -(l0 a0 + l1 a1) / 2, gradient -a / 2."""
    logp = tm.tensor(np.array([[[-1.0, -2.0, -3.0]]]), requires_grad=True)
    adv, valid = np.array([[[2.0, -1.0, 5.0]]]), np.array([[[1.0, 1.0, 0.0]]])
    loss = solution.reinforce_surrogate(logp, adv, valid)
    assert np.allclose(loss.numpy(), [-(-2.0 + 2.0) / 2])
    assert np.allclose(tm.grad(loss.sum(), logp).numpy(), [[[-1.0, 0.5, 0.0]]])


def surrogate_flipped(logp, adv, valid):
    return -solution.reinforce_surrogate(logp, adv, valid)


def surrogate_all_steps(logp, adv, valid):
    return -(logp * tm.tensor(adv * valid)).sum((1, 2)) / float(valid[0].size)


def surrogate_unmasked(logp, adv, valid):
    return -(logp * tm.tensor(adv)).sum((1, 2)) / tm.tensor(valid.sum(axis=(1, 2)))


def surrogate_plain_mean(logp, adv, valid):
    return -(logp * tm.tensor(adv)).mean((1, 2))


def surrogate_one_number(logp, adv, valid):
    return solution.reinforce_surrogate(logp, adv, valid).mean()


def surrogate_numpy(logp, adv, valid):
    return solution.reinforce_surrogate(logp, adv, valid).numpy()


def surrogate_detached(logp, adv, valid):
    return tm.tensor(solution.reinforce_surrogate(logp, adv, valid).numpy())


def surrogate_no_advantage(logp, adv, valid):
    return solution.reinforce_surrogate(logp, np.ones_like(adv), valid)


@pytest.mark.parametrize("fn, message", [
    (surrogate_flipped, "the sign is flipped"),
    (surrogate_all_steps, "you divided by all N x H"),
    (surrogate_unmasked, "steps after the end of a trajectory were counted"),
    (surrogate_plain_mean, "valid was ignored"),
    (surrogate_one_number, "one loss per task"),
    (surrogate_numpy, "should be a Tensor on the graph"),
    (surrogate_detached, "does not depend on logp"),
    (surrogate_no_advantage, "the advantages are missing"),
])
def test_reinforce_surrogate_mistakes(fn, message, capsys):
    assert_fails(check_reinforce_surrogate, fn, message, capsys)


def test_discounted_returns_by_hand():
    assert np.allclose(solution.discounted_returns(np.array([1.0, 2.0, 4.0]), 0.5), [1 + 1 + 1, 2 + 2, 4])


def returns_forward(rewards, discount):
    return np.cumsum(rewards * discount ** np.arange(rewards.shape[-1]), axis=-1)


def returns_shifted(rewards, discount):
    return discount * discounted_cumsum(rewards, discount)


def returns_from_zero(rewards, discount):
    return discounted_cumsum(rewards * discount ** np.arange(rewards.shape[-1]), 1.0)


def returns_total(rewards, discount):
    total = (rewards * discount ** np.arange(rewards.shape[-1])).sum(-1, keepdims=True)
    return np.broadcast_to(total, rewards.shape)


def returns_forward_recursion(rewards, discount):
    """The recursion written from the first step: R_t = r_t + gamma R_{t-1}."""
    R, running = np.zeros_like(rewards), 0.0
    for t in range(rewards.shape[-1]):
        running = rewards[..., t] + discount * running
        R[..., t] = running
    return R


def returns_skip_own_reward(rewards, discount):
    """Off by one: R_t = sum_{k > t} gamma^(k - t) r_k, r_t left out."""
    R, running = np.zeros_like(rewards), 0.0
    for t in reversed(range(rewards.shape[-1])):
        R[..., t] = discount * running
        running = rewards[..., t] + discount * running
    return R


def returns_written_one_late(rewards, discount):
    """Off by one: the return of step t stored at t + 1 (R_0 left at zero, the last return dropped)."""
    R, running = np.zeros_like(rewards), 0.0
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + discount * running
        if t + 1 < rewards.shape[-1]:
            R[..., t + 1] = running
    return R


def returns_over_trajectories(rewards, discount):
    """The backward recursion run over axis 1 (the trajectories) instead of the time axis."""
    R, running = np.zeros_like(rewards), 0.0
    for n in reversed(range(rewards.shape[1])):
        running = rewards[:, n] + discount * running
        R[:, n] = running
    return R


@pytest.mark.parametrize("fn, message", [
    (returns_forward_recursion, "the recursion runs forwards"),
    (returns_skip_own_reward, "the sum starts one step late"),
    (returns_written_one_late, "write R[..., t], not R[..., t + 1]"),
    (returns_over_trajectories, "the recursion runs over the trajectory axis (1) instead of time"),
    (lambda r, d: discounted_cumsum(r, 1.0), "there is no discount"),
    (returns_forward, "sums the rewards BEFORE t"),
    (lambda r, d: np.cumsum(r, axis=-1), "running sum from the start, undiscounted"),
    (returns_total, "the whole trajectory's discounted return"),
    (returns_shifted, "the exponent is off by one"),
    (returns_from_zero, "counted from step 0"),
    (lambda r, d: discounted_cumsum(r, d)[..., 0], "one return per step"),
])
def test_discounted_returns_mistakes(fn, message, capsys):
    assert_fails(check_discounted_returns, fn, message, capsys)


def test_hessian_vector_product_against_finite_differences():
    """The reference H v agrees with a central difference of gradients (float64)."""
    from tinymeta.exercises.ch06_maml import hvp_case
    f, params, vector = hvp_case(0)
    hv = solution.hessian_vector_product(f, params, vector)
    eps = 1e-6

    def grads_at(sign):
        shifted = {k: tm.tensor(p.numpy() + sign * eps * vector[k], requires_grad=True) for k, p in params.items()}
        return {k: g.numpy() for k, g in tm.grad(f(shifted), shifted).items()}

    plus, minus = grads_at(1.0), grads_at(-1.0)
    for k in params:
        assert np.allclose(hv[k].numpy(), (plus[k] - minus[k]) / (2 * eps), rtol=1e-5, atol=1e-7)


def hvp_gradient_only(f, params, vector):
    return tm.grad(f(params), params)


def hvp_ignores_vector(f, params, vector):
    return solution.hessian_vector_product(f, params, {k: np.ones_like(v) for k, v in vector.items()})


def hvp_elementwise(f, params, vector):
    g = tm.grad(f(params), params)
    return {k: g[k].numpy() * vector[k] for k in params}


def hvp_missing_key(f, params, vector):
    out = solution.hessian_vector_product(f, params, vector)
    out.pop("log_std")
    return out


def hvp_without_create_graph(f, params, vector):
    g = tm.grad(f(params), params)                      # a constant: <g, v> has no graph
    return tm.grad(sum((g[k] * tm.tensor(vector[k])).sum() for k in params), params)


def hvp_allow_unused(f, params, vector):
    g = tm.grad(f(params), params)
    return tm.grad(sum((g[k] * tm.tensor(vector[k])).sum() for k in params), params, allow_unused=True)


def hvp_allow_unused_as_zeros(f, params, vector):
    out = hvp_allow_unused(f, params, vector)
    return {k: np.zeros(params[k].shape) if v is None else v for k, v in out.items()}


@pytest.mark.parametrize("fn, message", [
    (hvp_without_create_graph, "the first tm.grad needs create_graph=True"),
    (hvp_allow_unused, "allow_unused=True only hides that"),
    (hvp_allow_unused_as_zeros, "is None or zero everywhere: the first tm.grad needs create_graph=True"),
    (hvp_gradient_only, "this is the gradient g itself"),
    (hvp_ignores_vector, "the vector was not used"),
    (hvp_elementwise, "this is g * v elementwise"),
    (hvp_missing_key, "has the wrong keys"),
])
def test_hessian_vector_product_mistakes(fn, message, capsys):
    assert_fails(check_hessian_vector_product, fn, message, capsys)
