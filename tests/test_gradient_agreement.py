"""Gradient agreement (Eshratifar et al. 2018): weights by hand, MAML as a special case, batched vs per task.

The book's notebook 8.4 is re-computed, with its two mistakes, in tests/test_errata.py.
"""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta import backend
from tinymeta.algorithms import MAML, Objective
from tinymeta.algorithms.gradient_agreement import GradientAgreement, agreement_weights
from tinymeta.nn import MLP
from tinymeta.tasks import MetaBatch, Sinusoid

REG = Objective("regression")


def flat(d, keys):
    return np.concatenate([np.asarray(d[k].numpy() if hasattr(d[k], "numpy") else d[k]).ravel() for k in keys])


def sine_batch(T, seed, dtype="float64"):
    return Sinusoid(k_support=5, k_query=6, dtype=dtype).sample(T, np.random.default_rng(seed))


def params64(seed=0, sizes=(1, 8, 8, 1)):
    model = MLP(sizes, init_std=0.5)
    return model, model.init_params(seed, dtype="float64")


@pytest.mark.parametrize("G, expected", [
    # Gram [[1,0,1],[0,1,1],[1,1,2]], row sums (2, 2, 4), sum of |.| = 8
    ([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.25, 0.25, 0.5]),
    # Gram [[1,-2,0],[-2,4,0],[0,0,1]], row sums (-1, 2, 1), sum of |.| = 4: a disagreeing task gets w < 0
    ([[1.0, 0.0], [-2.0, 0.0], [0.0, 1.0]], [-0.25, 0.5, 0.25]),
])
def test_weights_by_hand(G, expected):
    np.testing.assert_allclose(agreement_weights(np.array(G)), expected, rtol=1e-15)
    np.testing.assert_allclose(backend.to_numpy(agreement_weights(tm.tensor(np.array(G)))), expected, rtol=1e-15)


def test_weights_flatten_trailing_axes_and_zero_updates_give_uniform():
    G = np.random.default_rng(0).normal(size=(4, 3, 2))
    np.testing.assert_allclose(agreement_weights(G), agreement_weights(G.reshape(4, 6)))
    assert np.abs(agreement_weights(G)).sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(agreement_weights(np.zeros((5, 3))), np.full(5, 0.2))


def test_the_normaliser_sums_each_tasks_agreement_in_absolute_value_not_each_pair():
    # Task 2 agrees with task 0 and disagrees with task 1: its inner products have both signs.
    G = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    # Gram [[1,0,1],[0,1,-1],[1,-1,2]]: row sums (2, 0, 2), sum_k |row sum| = 4 (the paper's normaliser);
    # the sum over pairs of |g_i . g_j| (notebook 8.4's) would be 8 and halve every weight
    np.testing.assert_allclose(agreement_weights(G), [0.5, 0.0, 0.5], rtol=1e-15)
    assert np.abs(agreement_weights(G)).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("first_order", [False, True])
def test_identical_tasks_weigh_1_over_T_and_the_meta_gradient_is_mamls(first_order):
    one = sine_batch(1, seed=3)
    T = 4
    rep = MetaBatch(*(tm.tensor(np.repeat(a.numpy(), T, axis=0)) for a in
                      (one.x_support, one.y_support, one.x_query, one.y_query)))
    model, params = params64(1)
    ga = GradientAgreement(model, REG, inner_lr=0.05, inner_steps=2, first_order=first_order)
    maml = MAML(model, REG, inner_lr=0.05, inner_steps=2, first_order=first_order)
    np.testing.assert_allclose(ga.weights(params, rep), np.full(T, 1 / T), rtol=1e-12)
    g_ga, m_ga = ga.meta_gradient(params, rep)
    g_maml, m_maml = maml.meta_gradient(params, rep)
    keys = list(params)
    np.testing.assert_allclose(flat(g_ga, keys), flat(g_maml, keys), rtol=1e-10, atol=1e-14)
    assert m_ga["query_loss"].item() == pytest.approx(m_maml["query_loss"].item(), rel=1e-12)


@pytest.mark.parametrize("first_order", [False, True])
def test_batched_equals_a_per_task_computation(first_order):
    batch = sine_batch(5, seed=4)
    model, params = params64(2)
    keys = list(params)
    ga = GradientAgreement(model, REG, inner_lr=0.03, inner_steps=2, first_order=first_order)
    maml = MAML(model, REG, inner_lr=0.03, inner_steps=2, first_order=first_order)
    # per task: its own update vector and its own meta-gradient (MAML on that task alone)
    theta = flat(params, keys)
    updates, grads = [], []
    for t in range(batch.num_tasks):
        task = batch.task(t)
        fast = MAML(model, REG, inner_lr=0.03, inner_steps=2, first_order=True).adapted(params, task)
        updates.append(theta - flat({k: fast[k].numpy()[0] for k in keys}, keys))
        g, _ = maml.meta_gradient(params, task)
        grads.append(flat(g, keys))
    G = np.stack(updates)
    w = np.array([sum(G[i] @ G[j] for j in range(len(G))) for i in range(len(G))])
    w = w / np.abs(w).sum()
    np.testing.assert_allclose(ga.weights(params, batch), w, rtol=1e-10)
    assert (w < 0).any() and (w > 0).any()  # a meta-batch where tasks disagree: the test is not vacuous
    g_ga, _ = ga.meta_gradient(params, batch)
    np.testing.assert_allclose(flat(g_ga, keys), (w[:, None] * np.stack(grads)).sum(axis=0), rtol=1e-9, atol=1e-13)


def test_the_weights_are_constants_and_first_order_differs_from_second():
    batch = sine_batch(3, seed=5)
    model, params = params64(3)
    keys = list(params)
    second, _ = GradientAgreement(model, REG, inner_lr=0.05).meta_gradient(params, batch)
    first, _ = GradientAgreement(model, REG, inner_lr=0.05, first_order=True).meta_gradient(params, batch)
    a, b = flat(second, keys), flat(first, keys)
    assert np.linalg.norm(a - b) > 1e-4 * np.linalg.norm(a)


def test_no_inner_step_is_maml_and_float32_runs():
    batch = sine_batch(6, seed=6, dtype="float32")
    model = MLP()
    params = model.init_params(0)
    keys = list(params)
    g_ga, _ = GradientAgreement(model, REG, inner_steps=0).meta_gradient(params, batch)
    g_maml, _ = MAML(model, REG, inner_steps=0).meta_gradient(params, batch)
    np.testing.assert_allclose(flat(g_ga, keys), flat(g_maml, keys), rtol=1e-6, atol=1e-9)
    g, metrics = GradientAgreement(model, REG, inner_lr=0.01).meta_gradient(params, batch)
    assert all(g[k].dtype == np.float32 for k in keys)
    assert set(metrics) >= {"query_loss", "weight_min", "support_loss_pre"}
    assert GradientAgreement.name == "gradient-agreement"


def test_on_every_device_the_meta_gradient_matches_numpy(device):
    model, params = params64(4)
    batch = sine_batch(5, seed=7)
    keys = list(params)
    ga = GradientAgreement(model, REG, inner_lr=0.05)
    ref, _ = ga.meta_gradient(params, batch)
    on_dev = {k: tm.tensor(v.numpy(), device=device, requires_grad=True) for k, v in params.items()}
    moved = MetaBatch(*(tm.tensor(a.numpy(), device=device) for a in
                        (batch.x_support, batch.y_support, batch.x_query, batch.y_query)))
    got, _ = ga.meta_gradient(on_dev, moved)
    assert all(got[k].device == device for k in keys)
    np.testing.assert_allclose(flat(got, keys), flat(ref, keys), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ga.weights(on_dev, moved), ga.weights(params, batch), rtol=1e-10)
