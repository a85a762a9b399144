"""Chapter 6 (continued)'s checkers (ADML's FGSM step, CAML's inner step): the reference passes, typical mistakes
fail with their diagnosis."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch06_maml_variants as solution
from tinymeta.exercises.ch06_maml_variants import check_caml_inner_step, check_fgsm

pytestmark = pytest.mark.ch06


@pytest.mark.parametrize("checker, fn", [(check_fgsm, solution.fgsm),
                                         (check_caml_inner_step, solution.caml_inner_step)], ids=["fgsm", "caml"])
def test_reference_passes(checker, fn, capsys):
    assert_passes(checker, fn, capsys)


@pytest.mark.parametrize("checker, nargs", [(check_fgsm, 6), (check_caml_inner_step, 7)], ids=["fgsm", "caml"])
def test_not_attempted(checker, nargs, capsys):
    assert_not_attempted(checker, nargs, capsys)


# ---- FGSM ---------------------------------------------------------------------------------------------------
def _input_grad(model, loss_fn, params, x, y):
    x = x.detach().requires_grad_()
    return x, tm.grad(loss_fn(model(params, x), y).sum(), x)


def _sign(g, like):
    return (g > 0).astype(like.dtype) - (g < 0).astype(like.dtype)


def fgsm_no_clip(model, loss_fn, params, x, y, eps):
    x, g = _input_grad(model, loss_fn, params, x, y)
    return (x + eps * _sign(g, x)).detach()


def fgsm_book_clip(model, loss_fn, params, x, y, eps):
    x, g = _input_grad(model, loss_fn, params, x, y)
    return tm.minimum(tm.maximum(x + eps * _sign(g, x), -1.0), 1.0).detach()


def fgsm_raw_gradient(model, loss_fn, params, x, y, eps):
    x, g = _input_grad(model, loss_fn, params, x, y)
    return tm.minimum(tm.maximum(x + eps * g, 0.0), 1.0).detach()


def fgsm_downhill(model, loss_fn, params, x, y, eps):
    x, g = _input_grad(model, loss_fn, params, x, y)
    return tm.minimum(tm.maximum(x - eps * _sign(g, x), 0.0), 1.0).detach()


def fgsm_on_graph(model, loss_fn, params, x, y, eps):
    x, g = _input_grad(model, loss_fn, params, x, y)
    return tm.minimum(tm.maximum(x + eps * _sign(g, x), 0.0), 1.0)


@pytest.mark.parametrize("fn, message", [
    (fgsm_no_clip, "clip x + epsilon * sign(grad) to [0, 1]"),
    (fgsm_book_clip, "clipped to [-1, 1]"),
    (fgsm_raw_gradient, "epsilon * SIGN(grad)"),
    (fgsm_downhill, "the step goes downhill"),
    (fgsm_on_graph, "x_adv is still on the graph"),
], ids=lambda v: getattr(v, "__name__", ""))
def test_fgsm_mistakes_are_named(fn, message, capsys):
    assert_fails(check_fgsm, fn, message, capsys)


# ---- CAML's inner step ------------------------------------------------------------------------------------------
def _caml(model, loss_fn, params, xs, ys, n, alpha, sign=1.0, reduce="sum", create_graph=True, start=0.0, scale=True):
    T = xs.shape[0]
    phi = tm.tensor([[start] * n for _ in range(T)], dtype=xs.dtype, requires_grad=True)
    losses = loss_fn(model({**params, "context": phi}, xs), ys)
    g = tm.grad(losses.sum() if reduce == "sum" else losses.mean(), phi, create_graph=create_graph)
    return phi - sign * (alpha if scale else 1.0) * g


@pytest.mark.parametrize("kw, message", [
    (dict(sign=-1.0), "the step goes uphill"),
    (dict(reduce="mean"), "each task's step is divided by T"),
    (dict(scale=False), "alpha is missing"),
    (dict(create_graph=False), "compute the context gradient with create_graph=True"),
    (dict(start=0.3), "the adapted context is wrong"),
], ids=["uphill", "mean-over-tasks", "no-alpha", "first-order", "not-reset"])
def test_caml_mistakes_are_named(kw, message, capsys):
    assert_fails(check_caml_inner_step, lambda *a: _caml(*a, **kw), message, capsys)


def test_caml_weights_adapted_instead_of_the_context(capsys):
    def adapts_theta(model, loss_fn, params, xs, ys, n, alpha):
        return dict(params)
    assert_fails(check_caml_inner_step, adapts_theta, "CAML's inner loop adapts the context only", capsys)


def test_a_first_layer_context_step_is_a_preconditioned_bias_step():
    """Exercise 5's statement: one step on phi moves the bias b1 + W_phi phi by -alpha W_phi W_phi^T grad_b1 L."""
    from tinymeta.algorithms.caml import CONTEXT, ContextModel
    from tinymeta.nn import MLP
    net = ContextModel(MLP((1 + 2, 8, 1), init_std=0.5), n_context=2)
    theta = {k: tm.tensor(v.numpy(), requires_grad=True) for k, v in net.init_params(3, dtype="float64").items()}
    rng = np.random.default_rng(0)
    x, y = tm.tensor(rng.normal(size=(1, 6, 1))), tm.tensor(rng.normal(size=(1, 6, 1)))
    phi = tm.tensor(np.zeros((1, 2)), requires_grad=True)
    loss = ((net({**theta, CONTEXT: phi}, x) - y) ** 2).mean()
    g_phi, g_b1 = tm.grad(loss, [phi, theta["b1"]])
    alpha, w_phi = 0.3, theta["w1"].numpy()[:, 1:]                       # (8, 2): the context's columns
    moved = w_phi @ (-alpha * g_phi.numpy()[0])
    np.testing.assert_allclose(moved, -alpha * w_phi @ w_phi.T @ g_b1.numpy(), rtol=1e-12, atol=1e-15)
    projected = -alpha * w_phi @ np.linalg.pinv(w_phi) @ g_b1.numpy()    # MAML's bias step projected: not it
    assert np.linalg.norm(moved - projected) > 0.1 * np.linalg.norm(projected)
