"""Chapter 7's checkers (Meta-SGD's update, rate gradient and initialisation; Reptile's update): the
reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch07_meta_sgd_and_reptile as solution
from tinymeta.algorithms import per_task
from tinymeta.exercises.ch07_meta_sgd_and_reptile import (
    check_meta_sgd_init,
    check_meta_sgd_rate_gradient,
    check_meta_sgd_update,
    check_reptile_update,
)

pytestmark = pytest.mark.ch07


@pytest.mark.parametrize("checker, fn", [
    (check_meta_sgd_update, solution.meta_sgd_update),
    (check_meta_sgd_rate_gradient, solution.meta_sgd_rate_gradient),
    (check_meta_sgd_init, solution.meta_sgd_init),
    (check_reptile_update, solution.reptile_update),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes(checker, fn, capsys):
    assert_passes(checker, fn, capsys)


@pytest.mark.parametrize("checker, nargs", [(check_meta_sgd_update, 3), (check_meta_sgd_rate_gradient, 8), (check_meta_sgd_init, 2), (check_reptile_update, 3)])
def test_not_attempted(checker, nargs, capsys):
    assert_not_attempted(checker, nargs, capsys)


# ---- chapter 7: Meta-SGD -----------------------------------------------------------------------------------
def msgd_uphill(params, rates, grads):
    return {k: params[k] + rates[k] * grads[k] for k in params}


def msgd_scalar_rate(params, rates, grads):
    return {k: params[k] - rates[k].mean() * grads[k] for k in params}


def msgd_detached_rates(params, rates, grads):
    return {k: params[k] - rates[k].detach() * grads[k] for k in params}


def msgd_matmul(params, rates, grads):
    return {k: params[k] - rates[k].reshape(-1) @ grads[k].reshape(-1) for k in params}


@pytest.mark.parametrize("fn, message", [
    (msgd_uphill, "the step goes uphill"),
    (msgd_scalar_rate, "one rate per parameter ELEMENT"),
    (msgd_detached_rates, "does not depend on the rates alpha in the graph"),
    (msgd_matmul, "dot (matrix) product: alpha o grad is an elementwise product"),
])
def test_meta_sgd_update_mistakes(fn, message, capsys):
    assert_fails(check_meta_sgd_update, fn, message, capsys)


def rate_grad_is_theta_grad(model, loss_fn, params, rates, xs, ys, xq, yq):
    """The book's mistake: alpha updated with theta's (second-order) meta-gradient."""
    fast = per_task(params, xs.shape[0])
    g = tm.grad(loss_fn(model(fast, xs), ys).sum(), fast, create_graph=True)
    fast = {k: fast[k] - rates[k] * g[k] for k in fast}
    return tm.grad(loss_fn(model(fast, xq), yq).mean(), params)


def rate_grad_sign(*a):
    return {k: -v for k, v in solution.meta_sgd_rate_gradient(*a).items()}


def rate_grad_sum(*a):
    T = a[4].shape[0]
    return {k: v * T for k, v in solution.meta_sgd_rate_gradient(*a).items()}


def rate_grad_no_mean(model, loss_fn, params, rates, xs, ys, xq, yq):
    T = xs.shape[0]
    return {k: tm.tensor(np.repeat(v.numpy()[None], T, axis=0))
            for k, v in solution.meta_sgd_rate_gradient(model, loss_fn, params, rates, xs, ys, xq, yq).items()}


def rate_grad_by_autograd(model, loss_fn, params, rates, xs, ys, xq, yq):
    """Another right answer: autograd through the inner step, with respect to the rates."""
    fast = per_task(params, xs.shape[0])
    g = tm.grad(loss_fn(model(fast, xs), ys).sum(), fast, create_graph=True)
    fast = {k: fast[k] - rates[k] * g[k] for k in fast}
    return tm.grad(loss_fn(model(fast, xq), yq).mean(), rates)


@pytest.mark.parametrize("fn, message", [
    (rate_grad_is_theta_grad, "the book's notebook makes this mistake"),
    (rate_grad_sign, "the sign is wrong"),
    (rate_grad_sum, "times too large"),
    (rate_grad_no_mean, "it still has the task axis"),
])
def test_meta_sgd_rate_gradient_mistakes(fn, message, capsys):
    assert_fails(check_meta_sgd_rate_gradient, fn, message, capsys)


def test_meta_sgd_rate_gradient_by_autograd_passes():
    assert check_meta_sgd_rate_gradient(rate_grad_by_autograd) is True


def init_normal(params, rng):   # the book
    return {k: tm.tensor(rng.normal(size=v.shape), requires_grad=True) for k, v in params.items()}


def init_global_random(params, rng):
    """The right range, but drawn from np.random's global state instead of rng."""
    return {k: tm.tensor(np.random.uniform(0.005, 0.1, v.shape), requires_grad=True) for k, v in params.items()}


def init_too_large(params, rng):
    return {k: tm.tensor(rng.uniform(0.005, 0.5, v.shape), requires_grad=True) for k, v in params.items()}


def init_numpy(params, rng):
    return {k: rng.uniform(0.005, 0.1, v.shape) for k, v in params.items()}


def init_scalar(params, rng):
    return {k: tm.tensor(0.05, requires_grad=True) for k in params}


@pytest.mark.parametrize("fn, message", [
    (init_global_random, "not from np.random or a generator of your own"),
    (init_normal, "The book draws alpha from a normal distribution"),
    (init_too_large, "draw them uniformly from the paper's range"),
    (init_numpy, "must be a Tensor that requires grad"),
    (init_scalar, "one learning rate per parameter element"),
])
def test_meta_sgd_init_mistakes(fn, message, capsys):
    assert_fails(check_meta_sgd_init, fn, message, capsys)


# ---- chapter 7: Reptile ---------------------------------------------------------------------------------
def reptile_sum(params, phis, eps):
    return {k: params[k] + eps * (phis[k] - params[k]).sum(axis=0) for k in params}


def reptile_sign(params, phis, eps):
    return {k: params[k] - eps * (phis[k] - params[k]).mean(axis=0) for k in params}


def reptile_no_eps(params, phis, eps):
    return {k: phis[k].mean(axis=0) for k in params}


def reptile_last_task(params, phis, eps):
    return {k: params[k] + eps * (phis[k][-1] - params[k]) for k in params}


def reptile_no_mean(params, phis, eps):
    return {k: params[k] + eps * (phis[k] - params[k]) for k in params}


def reptile_numpy(params, phis, eps):
    """NumPy answers are fine too."""
    return {k: params[k].numpy() + eps * (phis[k].numpy() - params[k].numpy()).mean(axis=0) for k in params}


@pytest.mark.parametrize("fn, message", [
    (reptile_sum, "the task updates were SUMMED"),
    (reptile_sign, "the sign is wrong"),
    (reptile_no_eps, "epsilon is missing"),
    (reptile_last_task, "only the last task was used"),
    (reptile_no_mean, "it still has the task axis"),
])
def test_reptile_mistakes(fn, message, capsys):
    assert_fails(check_reptile_update, fn, message, capsys)


def test_reptile_numpy_answer_passes():
    assert check_reptile_update(reptile_numpy) is True
