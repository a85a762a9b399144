"""CAML (CAVIA): the context's inner step by hand, the meta-gradient by finite differences, the task axis."""
from types import SimpleNamespace

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import CAML, ContextModel, Objective, caml_inner_loop, caml_meta_loss
from tinymeta.algorithms.caml import CONTEXT
from tinymeta.experiment import PRESETS
from tinymeta.nn import MLP
from tinymeta.tasks import MetaBatch
from tinymeta.testing import gradcheck

REG = Objective("regression")
D, N_CTX, H = 1, 2, 5          # input size, context size, hidden units


def problem(seed=0, T=2, n_s=4, n_q=3):
    """A tiny CAVIA net 1 + 2 -> 5 -> 1 (float64) and T sine-like regression tasks."""
    rng = np.random.default_rng(seed)
    net = ContextModel(MLP((D + N_CTX, H, 1)), N_CTX)
    params = {k: tm.tensor(rng.normal(size=v.shape), requires_grad=True)
              for k, v in net.init_params(0, dtype="float64").items()}
    xs, xq = rng.uniform(-2, 2, (T, n_s, D)), rng.uniform(-2, 2, (T, n_q, D))
    amp = rng.uniform(0.5, 2, (T, 1, 1))
    batch = MetaBatch(*(tm.tensor(a) for a in (xs, amp * np.sin(xs), xq, amp * np.sin(xq))))
    return net, params, batch


def forward(p, x, c):
    """The net by hand: pre-activation z, output, for one task's inputs x (N, D) and context c (N_CTX,)."""
    inp = np.concatenate([x, np.broadcast_to(c, (x.shape[0], N_CTX))], axis=1)
    z = inp @ p["w1"].T + p["b1"]
    return z, np.maximum(z, 0) @ p["w2"].T + p["b2"]


def context_gradient(p, x, y, c):
    """d/dc mean_n (f([x_n, c]) - y_n)^2 = mean_n 2 (f_n - y_n) (w2 o relu'(z_n)) @ W1[:, D:]."""
    z, out = forward(p, x, c)
    r = 2 * (out - y) / len(x)                                   # (N, 1)
    return ((r * p["w2"]) * (z > 0)).sum(axis=0) @ p["w1"][:, D:]


@pytest.mark.parametrize("steps", [1, 2])
def test_inner_step_adapts_the_context_from_zero_by_hand(steps):
    net, params, batch = problem()
    phi = caml_inner_loop(net, REG, params, batch.support, inner_lr=0.7, steps=steps)
    p = {k: v.numpy() for k, v in params.items()}
    for t in range(batch.num_tasks):
        x, y = batch.x_support.numpy()[t], batch.y_support.numpy()[t]
        c = np.zeros(N_CTX)                                      # reset to zero for every task
        for _ in range(steps):
            c = c - 0.7 * context_gradient(p, x, y, c)
        np.testing.assert_allclose(phi.numpy()[t], c, rtol=1e-10, atol=1e-12)
    assert phi.shape == (batch.num_tasks, N_CTX)


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_finite_differences_only_when_second_order(first_order):
    net, params, batch = problem(seed=1)
    keys = list(params)

    def meta_loss(*ps):
        return caml_meta_loss(net, REG, dict(zip(keys, ps)), batch, inner_lr=0.5, steps=2,
                              first_order=first_order)[0]

    if first_order:  # the first-order gradient drops the term through the context's gradient: it must differ
        with pytest.raises(tm.testing.GradcheckError):
            gradcheck(meta_loss, [params[k] for k in keys])
    else:
        assert gradcheck(meta_loss, [params[k] for k in keys])


def test_meta_gradient_by_hand_for_one_step():
    """d/dtheta L_q(theta, phi(theta)) with phi = -alpha g(theta): the direct term plus the chain through phi."""
    net, params, batch = problem(seed=2)
    alpha, eps = 0.5, 1e-6
    loss, _ = caml_meta_loss(net, REG, params, batch, alpha, 1)
    grads = tm.grad(loss, params)
    p = {k: v.numpy().copy() for k, v in params.items()}

    def by_hand(p):  # the meta-loss written with the hand-made context gradient
        total = 0.0
        for t in range(batch.num_tasks):
            c = -alpha * context_gradient(p, batch.x_support.numpy()[t], batch.y_support.numpy()[t], np.zeros(N_CTX))
            _, out = forward(p, batch.x_query.numpy()[t], c)
            total += np.mean((out - batch.y_query.numpy()[t]) ** 2)
        return total / batch.num_tasks

    assert np.isclose(loss.item(), by_hand(p), rtol=1e-12)
    for k in ("w1", "b2"):
        fd = np.zeros_like(p[k])
        for idx in np.ndindex(p[k].shape):
            hi, lo = {**p, k: p[k].copy()}, {**p, k: p[k].copy()}
            hi[k][idx] += eps
            lo[k][idx] -= eps
            fd[idx] = (by_hand(hi) - by_hand(lo)) / (2 * eps)
        np.testing.assert_allclose(grads[k].numpy(), fd, rtol=1e-6, atol=1e-8)


def test_only_the_context_adapts_and_it_starts_at_zero_for_every_task():
    net, params, batch = problem(seed=3, T=3)
    algo = CAML(MLP((D, H, 1)), REG, inner_lr=0.5, n_context=N_CTX)
    fast = list(algo.adapt(params, batch, steps=2))
    assert len(fast) == 3
    np.testing.assert_array_equal(fast[0][CONTEXT].numpy(), np.zeros((3, N_CTX)))
    for f in fast:
        assert set(f) == set(params) | {CONTEXT}
        assert all(f[k] is params[k] for k in params)            # theta is never adapted
    after = fast[-1][CONTEXT].numpy()
    assert np.abs(after).min() > 0 and not np.allclose(after[0], after[1])   # each task has its own context
    # no state carried between calls: a second meta-batch starts from zero again
    again = list(algo.adapt(params, batch, steps=2))
    np.testing.assert_array_equal(again[-1][CONTEXT].numpy(), after)
    ev = algo.evaluate(params, batch, steps=2)
    assert ev["loss"].shape == (3, 3) and ev["loss"][2].mean() < ev["loss"][0].mean()


def test_batched_equals_a_per_task_loop():
    net, params, batch = problem(seed=4, T=3)
    loss, _ = caml_meta_loss(net, REG, params, batch, 0.5, 2)
    grads = tm.grad(loss, params)
    loop_loss, loop = 0.0, {k: 0.0 for k in params}
    for t in range(batch.num_tasks):
        lt, _ = caml_meta_loss(net, REG, params, batch.task(t), 0.5, 2)
        gt = tm.grad(lt, params)
        loop_loss += lt.item() / batch.num_tasks
        for k in params:
            loop[k] = loop[k] + gt[k].numpy() / batch.num_tasks
    assert np.isclose(loss.item(), loop_loss, rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k].numpy(), loop[k], rtol=1e-10, atol=1e-13)


def test_the_class_widens_the_first_layer_and_keeps_the_input_columns():
    base = MLP((1, 40, 40, 1))
    params = base.init_params(0, dtype="float64")
    algo = CAML.from_config(base, REG, SimpleNamespace(inner_lr=1.0, inner_steps=1, first_order=False,
                                                       adapt_norm=True, transductive=True, context_size=5))
    meta = algo.init_meta_params(params, np.random.default_rng(0))
    assert meta["w1"].shape == (40, 6) and meta["w1"].is_leaf and meta["w1"].requires_grad
    np.testing.assert_array_equal(meta["w1"].numpy()[:, :1], params["w1"].numpy())
    with pytest.raises(TypeError, match="MLP"):
        CAML(tm.nn.ConvNet(), REG)
    with pytest.raises(ValueError, match=r"params\['context'\] \(T, 2\)"):
        ContextModel(MLP((3, 4, 1)), 2)({**params, CONTEXT: tm.tensor(np.zeros((2, 3)))},
                                        tm.tensor(np.zeros((2, 4, 1))))


def test_presets_follow_the_cavia_code():
    for k in (5, 10, 20):
        cfg = PRESETS[f"caml-sine-{k}shot"].validate()
        assert (cfg.algorithm, cfg.shots, cfg.context_size, cfg.inner_lr, cfg.inner_steps) == ("caml", k, 5, 1.0, 1)
        assert (cfg.meta_batch, cfg.meta_lr, cfg.iterations, cfg.first_order) == (25, 1e-3, 50000, False)
        assert PRESETS[f"caml-sine-{k}shot-context2"].context_size == 2
        assert PRESETS[f"caml-sine-{k}shot-context50"].context_size == 50
    with pytest.raises(ValueError, match="regression"):
        PRESETS["maml-omniglot-5w1s"].replace(algorithm="caml").validate()
    with pytest.raises(ValueError, match="context_size"):
        PRESETS["caml-sine-5shot"].replace(context_size=0).validate()
