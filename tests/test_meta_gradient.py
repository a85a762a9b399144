"""Second-order MAML meta-gradients, end to end, against finite differences of the
meta-loss in float64; and the batched task axis against a per-task Python loop."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F

from conftest import t64


def mlp(params, x):
    """2-layer MLP, 1-H-H-1 with ReLU (MAML's sine net, smaller)."""
    h = F.relu(F.linear(x, params["w1"], params["b1"]))
    h = F.relu(F.linear(h, params["w2"], params["b2"]))
    return F.linear(h, params["w3"], params["b3"])


def convnet(params, x):
    """conv2d stride 2 + batch_norm + relu, spatial mean, linear head."""
    h = F.conv2d(x, params["conv"], params["conv_b"], stride=2, padding=1)
    h = F.relu(F.batch_norm(h, weight=params["bn_w"], bias=params["bn_b"]))
    return F.linear(h.mean(axis=(-2, -1)), params["head"], params["head_b"])


def mse_per_task(pred, y):
    return ((pred - y) ** 2).mean(axis=(-2, -1))


def ce_per_task(logits, y):
    return F.cross_entropy(logits, y, reduction="none").mean(axis=-1)


def meta_loss(model, task_loss, params, batch, lr, steps, first_order=False, task_axis=True):
    """MAML (Finn et al. 2017, Eq. 1 and Alg. 2), the whole meta-batch on a task axis
    (or, with task_axis=False, one task with plain shared-weight layers)."""
    xs, ys, xq, yq = batch
    if task_axis:
        T = xs.shape[0]
        fast = {k: tm.broadcast_to(v, (T,) + v.shape) for k, v in params.items()}
    else:
        fast = dict(params)
    for _ in range(steps):
        inner = task_loss(model(fast, xs), ys).sum()  # mean in each task, summed over tasks
        grads = tm.grad(inner, fast, create_graph=not first_order)
        fast = {k: fast[k] - lr * grads[k] for k in fast}
    return task_loss(model(fast, xq), yq).mean()


def mlp_problem(rng, T=3, hidden=8):
    params = {"w1": rng.normal(0, 1, (hidden, 1)), "b1": rng.normal(0, .1, hidden),
              "w2": rng.normal(0, .4, (hidden, hidden)), "b2": rng.normal(0, .1, hidden),
              "w3": rng.normal(0, .4, (1, hidden)), "b3": rng.normal(0, .1, 1)}
    amp, phase = rng.uniform(.1, 5, T), rng.uniform(0, np.pi, T)
    xs, xq = rng.uniform(-5, 5, (T, 5, 1)), rng.uniform(-5, 5, (T, 7, 1))
    ys = amp[:, None, None] * np.sin(xs - phase[:, None, None])
    yq = amp[:, None, None] * np.sin(xq - phase[:, None, None])
    batch = tuple(t64(a, requires_grad=False) for a in (xs, ys, xq, yq))
    return params, batch, mlp, mse_per_task, 0.01


def conv_problem(rng, T=2, ways=3, shots=2):
    params = {"conv": rng.normal(0, .5, (4, 1, 3, 3)), "conv_b": rng.normal(0, .1, 4),
              "bn_w": rng.uniform(.5, 1.5, 4), "bn_b": rng.normal(0, .1, 4),
              "head": rng.normal(0, .5, (ways, 4)), "head_b": rng.normal(0, .1, ways)}
    xs, xq = rng.normal(size=(T, ways * shots, 1, 6, 6)), rng.normal(size=(T, ways * 2, 1, 6, 6))
    ys = np.tile(np.repeat(np.arange(ways), shots), (T, 1))
    yq = np.tile(np.repeat(np.arange(ways), 2), (T, 1))
    batch = (t64(xs, requires_grad=False), tm.tensor(ys), t64(xq, requires_grad=False), tm.tensor(yq))
    return params, batch, convnet, ce_per_task, 0.4


def finite_difference(f, params, eps=1e-6):
    out = {}
    for k, v in params.items():
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            hi, lo = {**params, k: v.copy()}, {**params, k: v.copy()}
            hi[k][i] += eps
            lo[k][i] -= eps
            g[i] = (f(hi) - f(lo)) / (2 * eps)
        out[k] = g
    return out


def rel_err(a, b):
    va = np.concatenate([a[k].ravel() for k in sorted(a)])
    vb = np.concatenate([b[k].ravel() for k in sorted(b)])
    return np.linalg.norm(va - vb) / np.linalg.norm(vb)


@pytest.mark.parametrize("problem", [mlp_problem, conv_problem], ids=["mlp", "conv"])
@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_meta_gradient_matches_finite_differences(problem, steps):
    params, batch, model, task_loss, lr = problem(np.random.default_rng(7))

    def value(p):
        with tm.enable_grad():  # the inner loop differentiates even while evaluating
            tp = {k: t64(v) for k, v in p.items()}
            return meta_loss(model, task_loss, tp, batch, lr, steps).item()

    tparams = {k: t64(v) for k, v in params.items()}
    loss = meta_loss(model, task_loss, tparams, batch, lr, steps)
    analytic = {k: g.numpy() for k, g in tm.grad(loss, tparams).items()}
    numeric = finite_difference(value, params)
    assert rel_err(analytic, numeric) < 1e-6

    # the check has teeth: the first-order approximation is measurably different
    fo = meta_loss(model, task_loss, tparams, batch, lr, steps, first_order=True)
    first = {k: g.numpy() for k, g in tm.grad(fo, tparams).items()}
    assert rel_err(first, numeric) > 1e-4


@pytest.mark.parametrize("problem", [mlp_problem, conv_problem], ids=["mlp", "conv"])
@pytest.mark.parametrize("first_order", [False, True])
def test_batched_tasks_equal_a_loop_over_tasks(problem, first_order):
    params, batch, model, task_loss, lr = problem(np.random.default_rng(3), T=4)
    tparams = {k: t64(v) for k, v in params.items()}
    batched = meta_loss(model, task_loss, tparams, batch, lr, 2, first_order)
    g_batched = tm.grad(batched, tparams)

    T = batch[0].shape[0]
    losses, g_loop = [], {k: 0.0 for k in params}
    for t in range(T):
        one = tuple(a[t] for a in batch)  # no task axis: the plain layer code paths
        lt = meta_loss(model, task_loss, tparams, one, lr, 2, first_order, task_axis=False)
        losses.append(lt.item())
        for k, g in tm.grad(lt, tparams).items():
            g_loop[k] = g_loop[k] + g.numpy() / T
    assert np.isclose(batched.item(), np.mean(losses), rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(g_batched[k].numpy(), g_loop[k], rtol=1e-10, atol=1e-13)
