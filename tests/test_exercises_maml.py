"""The checkers of chapters 6 (MAML) and 7 (Meta-SGD, Reptile): the reference passes, typical mistakes fail."""
import re
import sys

import numpy as np
import pytest
from conftest import REPO

import tinymeta as tm
from tinymeta.algorithms import per_task
from tinymeta.exercises._check import ExerciseError
from tinymeta.exercises.maml import check_maml_inner_step, check_maml_meta_gradient
from tinymeta.exercises.meta_sgd_reptile import (
    check_meta_sgd_init,
    check_meta_sgd_rate_gradient,
    check_meta_sgd_update,
    check_reptile_update,
)

sys.path.insert(0, str(REPO / "chapters" / "solutions"))
maml_solution = __import__("06_maml")
msr_solution = __import__("07_meta_sgd_and_reptile")


def assert_fails_with(checker, fn, message, capsys):
    assert checker(fn) is False
    assert message in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=re.escape(message)):
        checker(fn, raise_on_failure=True)


@pytest.mark.parametrize("checker, fn", [
    (check_maml_inner_step, maml_solution.maml_inner_step),
    (check_maml_meta_gradient, maml_solution.maml_meta_gradient),
    (check_meta_sgd_update, msr_solution.meta_sgd_update),
    (check_meta_sgd_rate_gradient, msr_solution.meta_sgd_rate_gradient),
    (check_meta_sgd_init, msr_solution.meta_sgd_init),
    (check_reptile_update, msr_solution.reptile_update),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes(checker, fn, capsys):
    assert checker(fn) is True
    checker(fn, raise_on_failure=True)
    assert "correct!" in capsys.readouterr().out


@pytest.mark.parametrize("checker, nargs", [
    (check_maml_inner_step, 3), (check_maml_meta_gradient, 8), (check_meta_sgd_update, 3),
    (check_meta_sgd_rate_gradient, 8), (check_meta_sgd_init, 2), (check_reptile_update, 3)])
def test_not_attempted(checker, nargs, capsys):
    def stub(*args):
        assert len(args) == nargs
        raise NotImplementedError("Exercise")
    assert checker(stub) is False
    assert "not attempted yet" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not attempted"):
        checker(stub, raise_on_failure=True)


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
    assert_fails_with(check_maml_inner_step, fn, message, capsys)


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


def kept_task_axis(model, loss_fn, params, xs, ys, xq, yq, alpha):
    fast = per_task(params, xs.shape[0])
    g = tm.grad(loss_fn(model(fast, xs), ys).sum(), fast, create_graph=True)
    fast2 = {k: fast[k] - alpha * g[k] for k in fast}
    return tm.grad(loss_fn(model(fast2, xq), yq).mean(), fast)   # w.r.t. the per-task copies


def as_list(*a):
    return list(maml_solution.maml_meta_gradient(*a).values())


@pytest.mark.parametrize("fn, message", [
    (first_order, "FIRST-ORDER gradient: you forgot create_graph=True"),
    (inner_mean, "inner step was alpha / T"),
    (outer_sum, "times too large: the meta-loss is the MEAN over tasks"),
    (swapped, "support and query are swapped"),
    (no_inner_step, "there was no inner step"),
    (kept_task_axis, "it still has the task axis"),
    (as_list, "should be a dict"),
])
def test_meta_gradient_mistakes(fn, message, capsys):
    assert_fails_with(check_maml_meta_gradient, fn, message, capsys)


def test_meta_gradient_unknown_mistake_names_the_worst_element(capsys):
    def off(*a):
        return {k: v * 1.01 for k, v in maml_solution.maml_meta_gradient(*a).items()}
    assert check_maml_meta_gradient(off) is False
    out = capsys.readouterr().out
    assert "is wrong at index" in out and "expected" in out and "got" in out


def test_meta_gradient_case_separates_first_and_second_order():
    """The checker's problem must make the Hessian term visible, or the first-order hint could never fire."""
    from tinymeta.exercises.maml import meta_gradient_case, meta_gradient_variants
    model, _, params, batch, alpha = meta_gradient_case(0)
    ref, mistakes = meta_gradient_variants(model, params, batch, alpha)
    fo = mistakes[0][0]
    rel = max(np.abs(fo[k] - ref[k]).max() / np.abs(ref[k]).max() for k in ref)
    assert rel > 0.1


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
    assert_fails_with(check_meta_sgd_update, fn, message, capsys)


def rate_grad_is_theta_grad(model, loss_fn, params, rates, xs, ys, xq, yq):
    """The book's mistake: alpha updated with theta's (second-order) meta-gradient."""
    fast = per_task(params, xs.shape[0])
    g = tm.grad(loss_fn(model(fast, xs), ys).sum(), fast, create_graph=True)
    fast = {k: fast[k] - rates[k] * g[k] for k in fast}
    return tm.grad(loss_fn(model(fast, xq), yq).mean(), params)


def rate_grad_sign(*a):
    return {k: -v for k, v in msr_solution.meta_sgd_rate_gradient(*a).items()}


def rate_grad_sum(*a):
    T = a[4].shape[0]
    return {k: v * T for k, v in msr_solution.meta_sgd_rate_gradient(*a).items()}


def rate_grad_no_mean(model, loss_fn, params, rates, xs, ys, xq, yq):
    T = xs.shape[0]
    return {k: tm.tensor(np.repeat(v.numpy()[None], T, axis=0))
            for k, v in msr_solution.meta_sgd_rate_gradient(model, loss_fn, params, rates, xs, ys, xq, yq).items()}


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
    assert_fails_with(check_meta_sgd_rate_gradient, fn, message, capsys)


def test_meta_sgd_rate_gradient_by_autograd_passes():
    assert check_meta_sgd_rate_gradient(rate_grad_by_autograd) is True


def init_normal(params, rng):   # the book
    return {k: tm.tensor(rng.normal(size=v.shape), requires_grad=True) for k, v in params.items()}


def init_too_large(params, rng):
    return {k: tm.tensor(rng.uniform(0.005, 0.5, v.shape), requires_grad=True) for k, v in params.items()}


def init_numpy(params, rng):
    return {k: rng.uniform(0.005, 0.1, v.shape) for k, v in params.items()}


def init_scalar(params, rng):
    return {k: tm.tensor(0.05, requires_grad=True) for k in params}


@pytest.mark.parametrize("fn, message", [
    (init_normal, "The book draws alpha from a normal distribution"),
    (init_too_large, "draw them uniformly from the paper's range"),
    (init_numpy, "must be a Tensor that requires grad"),
    (init_scalar, "one learning rate per parameter element"),
])
def test_meta_sgd_init_mistakes(fn, message, capsys):
    assert_fails_with(check_meta_sgd_init, fn, message, capsys)


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
    assert_fails_with(check_reptile_update, fn, message, capsys)


def test_reptile_numpy_answer_passes():
    assert check_reptile_update(reptile_numpy) is True
