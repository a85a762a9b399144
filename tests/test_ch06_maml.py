"""Chapter 6's checkers (MAML's inner step and meta-gradient): the reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails

import tinymeta as tm
from chapters.solutions import ch06_maml as solution
from tinymeta.algorithms import per_task
from tinymeta.exercises import ExerciseError
from tinymeta.exercises.ch06_maml import check_maml_inner_step, check_maml_meta_gradient

pytestmark = pytest.mark.ch06


@pytest.mark.parametrize("checker, fn", [
    (check_maml_inner_step, solution.maml_inner_step),
    (check_maml_meta_gradient, solution.maml_meta_gradient),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes(checker, fn, capsys):
    assert checker(fn) is True
    checker(fn, raise_on_failure=True)
    assert "correct!" in capsys.readouterr().out


@pytest.mark.parametrize("checker, nargs", [(check_maml_inner_step, 3), (check_maml_meta_gradient, 8)])
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


def as_list(*a):
    return list(solution.maml_meta_gradient(*a).values())


@pytest.mark.parametrize("fn, message", [
    (first_order, "FIRST-ORDER gradient: you forgot create_graph=True"),
    (inner_mean, "inner step was alpha / T"),
    (outer_sum, "times too large: the meta-loss is the MEAN over tasks"),
    (swapped, "support and query are swapped"),
    (no_inner_step, "there was no inner step"),
    (keeps_task_axis, "it still has the task axis"),
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
