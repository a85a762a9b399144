"""Each algorithm against a closed form or a hand computation, and batched against per task."""
import re
from types import SimpleNamespace

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import ALGORITHMS, ANIL, MAML, NIL, FOMAML, MetaSGD, Objective, Reptile, inner_sgd, per_task
from tinymeta.algorithms import maml_meta_loss
from tinymeta.algorithms.meta_sgd import RATE_PREFIX
from tinymeta.memory import MANN
from tinymeta.nn import MLP, ConvNet
from tinymeta.tasks import MetaBatch

REG = Objective("regression")
CLS = Objective("classification")


def linear_tasks(rng, T=3, d=3, n_s=4, n_q=5):
    """Random linear-regression tasks: y = x . w_t + noise."""
    w = rng.normal(size=(T, d, 1))
    xs, xq = rng.normal(size=(T, n_s, d)), rng.normal(size=(T, n_q, d))
    ys, yq = xs @ w + 0.1 * rng.normal(size=(T, n_s, 1)), xq @ w
    return MetaBatch(*(tm.tensor(a) for a in (xs, ys, xq, yq)))


def linear_params(rng, d=3):
    return {"w1": tm.tensor(rng.normal(size=(1, d)), requires_grad=True),
            "b1": tm.tensor(rng.normal(size=(1,)), requires_grad=True)}


def augmented(x):
    return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)


def closed_form(theta, batch, alpha, first_order):
    """Meta-gradient of mean_t L_q(theta - alpha grad L_s(theta)) for L(theta) = mean (X theta - y)^2."""
    out = []
    for t in range(batch.num_tasks):
        Xs, Xq = augmented(batch.x_support.numpy()[t]), augmented(batch.x_query.numpy()[t])
        ys, yq = batch.y_support.numpy()[t, :, 0], batch.y_query.numpy()[t, :, 0]
        g_s = 2 / len(ys) * Xs.T @ (Xs @ theta - ys)
        H_s = 2 / len(ys) * Xs.T @ Xs
        adapted = theta - alpha * g_s
        g_q = 2 / len(yq) * Xq.T @ (Xq @ adapted - yq)
        out.append(g_q if first_order else (np.eye(len(theta)) - alpha * H_s) @ g_q)
    return np.mean(out, axis=0)


def flat(grads):
    return np.concatenate([grads["w1"].numpy().ravel(), grads["b1"].numpy().ravel()])


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_meta_gradient_equals_closed_form_on_linear_regression(first_order):
    rng = np.random.default_rng(0)
    batch, params = linear_tasks(rng), linear_params(rng)
    algo = MAML(MLP((3, 1)), REG, inner_lr=0.05, inner_steps=1, first_order=first_order)
    grads, _ = algo.meta_gradient(params, batch)
    theta = flat(params)
    np.testing.assert_allclose(flat(grads), closed_form(theta, batch, 0.05, first_order), rtol=1e-12)
    other = closed_form(theta, batch, 0.05, not first_order)  # and the two really differ
    assert np.linalg.norm(flat(grads) - other) > 1e-3 * np.linalg.norm(other)


def test_maml_meta_loss_is_a_function_of_the_param_dict():
    rng = np.random.default_rng(0)
    batch, params = linear_tasks(rng), linear_params(rng)
    loss, metrics = maml_meta_loss(MLP((3, 1)), REG, params, batch, inner_lr=0.05, steps=1)
    np.testing.assert_allclose(flat(tm.grad(loss, params)), closed_form(flat(params), batch, 0.05, False), rtol=1e-12)
    assert list(metrics) == ["query_loss", "support_loss_pre"] and loss.item() == metrics["query_loss"].item()


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
@pytest.mark.parametrize("first_order", [False, True])
def test_every_algorithm_is_built_from_a_config(name, first_order):
    cfg = SimpleNamespace(algorithm=name, inner_lr=0.3, inner_steps=4, first_order=first_order,
                          inner_optimizer="sgd", inner_batch=7, adapt_norm=False, adv_epsilon=0.1,
                          context_size=3, transductive=name in ("anil", "nil"), inner_state="persistent",
                          eval_inner_batch=3, covariance="diagonal", refinement="masked", cluster_steps=2,
                          taml_lambda=0.5, taml_measure="gini",
                          multi_step_loss_iterations=500, first_order_iterations=250,
                          learned_step_rates=True, per_step_bn=False, epoch_iterations=250,
                          siamese_loss="bce", margin=1.0, fce=True, fce_steps=2, matching_distance="l2", filters=4)
    model = ConvNet(filters=4, pool=True) if name == "gaussian-protonet" else MLP()  # it splits conv channels
    algo = ALGORITHMS[name].from_config(model, REG, cfg)
    assert type(algo) is ALGORITHMS[name] and algo.name == name
    if not algo.inner_loop:  # a metric learner reads its support set in one pass: no inner settings
        assert (algo.inner_lr, algo.inner_steps, algo.first_order) == (0.0, 0, False)
        assert algo.transductive == (name in ("anil", "nil"))
        if name == "matching":
            assert (algo.fce, algo.fce_steps, algo.distance) == (True, 2, "l2")
        if name == "relationnet":
            assert algo.net.filters == 4
        return
    assert (algo.inner_lr, algo.inner_steps) == (0.3, 4)
    if name not in ("reptile", "caml"):  # Reptile adapts everything; CAML adapts only its context
        assert algo.adapt_norm is False
    assert algo.first_order == (first_order or name in ("fomaml", "reptile"))  # those two are first order anyway
    assert algo.transductive == (name in ("anil", "nil"))
    if name == "reptile":
        assert (algo.inner_optimizer, algo.inner_batch) == ("sgd", 7)
        assert (algo.inner_state, algo.eval_inner_batch) == ("persistent", 3)
    if name == "adml":
        assert algo.epsilon == 0.1
    if name == "caml":
        assert algo.n_context == 3
    if name == "taml":
        assert (algo.lam, algo.measure) == (0.5, "gini")
    if name == "maml++":
        assert (algo.multi_step_loss_iterations, algo.first_order_iterations, algo.learned_step_rates,
                algo.per_step_bn, algo.epoch_iterations) == (500, 250, True, False, 250)


def test_fomaml_is_maml_first_order():
    rng = np.random.default_rng(1)
    batch, params = linear_tasks(rng), linear_params(rng)
    a, _ = FOMAML(MLP((3, 1)), REG, inner_lr=0.05).meta_gradient(params, batch)
    b, _ = MAML(MLP((3, 1)), REG, inner_lr=0.05, first_order=True).meta_gradient(params, batch)
    np.testing.assert_array_equal(flat(a), flat(b))


def test_meta_sgd_with_constant_rates_is_maml_and_its_rate_gradient_is_right():
    rng = np.random.default_rng(2)
    batch, params = linear_tasks(rng), linear_params(rng)
    algo = MetaSGD(MLP((3, 1)), REG, inner_steps=1, lr_init=0.05)
    meta = algo.init_meta_params(params, rng)
    assert all(np.all(meta[RATE_PREFIX + k].numpy() == 0.05) for k in params)
    grads, _ = algo.meta_gradient(meta, batch)
    maml, _ = MAML(MLP((3, 1)), REG, inner_lr=0.05).meta_gradient(params, batch)
    np.testing.assert_allclose(flat({k: grads[k] for k in params}), flat(maml), rtol=1e-12)
    # d/d alpha_j mean_t L_q(theta - alpha o g_s) = mean_t -g_s,j * grad L_q(theta')_j
    theta, expect = flat(params), []
    for t in range(batch.num_tasks):
        Xs, Xq = augmented(batch.x_support.numpy()[t]), augmented(batch.x_query.numpy()[t])
        ys, yq = batch.y_support.numpy()[t, :, 0], batch.y_query.numpy()[t, :, 0]
        g_s = 2 / len(ys) * Xs.T @ (Xs @ theta - ys)
        g_q = 2 / len(yq) * Xq.T @ (Xq @ (theta - 0.05 * g_s) - yq)
        expect.append(-g_s * g_q)
    got = np.concatenate([grads[RATE_PREFIX + "w1"].numpy().ravel(), grads[RATE_PREFIX + "b1"].numpy().ravel()])
    np.testing.assert_allclose(got, np.mean(expect, axis=0), rtol=1e-12)


def test_meta_sgd_initial_rates_are_positive():
    algo = MetaSGD(MLP(), REG)
    meta = algo.init_meta_params(MLP().init_params(0, "float64"), np.random.default_rng(0))
    rates = np.concatenate([v.numpy().ravel() for k, v in meta.items() if k.startswith(RATE_PREFIX)])
    assert rates.min() >= 0.005 and rates.max() <= 0.1


def small_conv_problem(rng, T=3, ways=3, shots=2, queries=2, size=8):
    model = ConvNet(n_way=ways, filters=4, blocks=2, image_size=size)
    params = model.init_params(rng, dtype="float64")
    xs, xq = rng.normal(size=(T, ways * shots, 1, size, size)), rng.normal(size=(T, ways * queries, 1, size, size))
    ys = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(ways), queries)) for _ in range(T)])
    return model, params, MetaBatch(tm.tensor(xs), tm.tensor(ys), tm.tensor(xq), tm.tensor(yq))


@pytest.mark.parametrize("steps", [1, 2])
def test_anil_equals_maml_with_the_inner_loop_restricted_to_the_head(steps):
    model, params, batch = small_conv_problem(np.random.default_rng(3))
    grads, _ = ANIL(model, CLS, inner_lr=0.4, inner_steps=steps).meta_gradient(params, batch)
    fast = per_task(params, batch.num_tasks)
    fast = inner_sgd(lambda f: CLS.losses(model(f, batch.x_support), batch.y_support), fast, 0.4, steps,
                     create_graph=True, keys=model.head_keys())
    ref = tm.grad(CLS.losses(model(fast, batch.x_query), batch.y_query).mean(), params)
    for k in params:
        np.testing.assert_allclose(grads[k].numpy(), ref[k].numpy(), rtol=1e-10, atol=1e-14)


def test_anil_adapts_the_head_alone_and_nil_has_no_inner_loop():
    model, params, batch = small_conv_problem(np.random.default_rng(7))
    *_, fast = ANIL(model, CLS, inner_lr=0.4).adapt(params, batch, 2)
    head = model.head_keys()
    assert all(np.array_equal(fast[k].numpy()[t], params[k].numpy()) for k in params if k not in head for t in range(3))
    assert all(not np.allclose(fast[k].numpy()[0], params[k].numpy()) for k in head)
    with pytest.raises(TypeError, match="no inner loop"):
        NIL(model, CLS).adapt(params, batch, 1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_reptile_one_inner_step_matches_hand_computation(optimizer):
    rng = np.random.default_rng(4)
    batch, params = linear_tasks(rng), linear_params(rng)
    beta = 0.1
    algo = Reptile(MLP((3, 1)), REG, inner_lr=beta, inner_steps=1, inner_optimizer=optimizer)
    grads, _ = algo.meta_gradient(params, batch)
    theta, steps = flat(params), []
    for t in range(batch.num_tasks):
        Xs, ys = augmented(batch.x_support.numpy()[t]), batch.y_support.numpy()[t, :, 0]
        g = 2 / len(ys) * Xs.T @ (Xs @ theta - ys)
        # Adam's first step with beta1 = 0 is lr * g / (|g| + eps) after bias correction
        steps.append(beta * g if optimizer == "sgd" else beta * g / (np.abs(g) + 1e-8))
    phi = theta - np.array(steps)
    expected = theta - phi.mean(axis=0)                     # theta + eps (mean phi - theta) = theta - eps * this
    np.testing.assert_allclose(flat(grads), expected, rtol=1e-10)


def test_reptile_minibatches_cycle_through_the_support_set():
    from tinymeta.algorithms.reptile import minibatches
    batches = list(minibatches(5, 3, 4, None))  # without a generator: the given order, pass after pass
    np.testing.assert_array_equal(np.concatenate(batches), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])
    assert list(minibatches(5, 8, 2, None)) == [None, None]  # a batch is at most the whole set


def episode_tasks(rng, T=4, ways=3, per_class=2, width=6):
    """Episodes of ``ways`` x ``per_class`` random inputs (T, L, width), labels (T, L), info['instance']."""
    y = np.stack([rng.permutation(np.repeat(np.arange(ways), per_class)) for _ in range(T)])
    instance = np.zeros_like(y)
    for c in range(ways):
        instance[y == c] = np.cumsum(y == c, axis=1)[y == c]
    x, yt = tm.tensor(rng.normal(size=(T, ways * per_class, width))), tm.tensor(y)
    return MetaBatch(x, yt, x, yt, {"instance": instance})


def make(name, model, objective, **kw):
    cls = ALGORITHMS[name]
    if name == "reptile":
        return cls(model, objective, inner_lr=0.01, inner_steps=3, inner_optimizer="adam")
    return cls(model, objective, inner_lr=0.1, inner_steps=2, **kw)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_batched_equals_per_task_loop(name):
    model, params, batch = small_conv_problem(np.random.default_rng(5), T=4)
    objective = CLS
    if name == "caml":  # CAML conditions an MLP regressor on its context
        model, objective = MLP((3, 8, 1)), REG
        batch, params = linear_tasks(np.random.default_rng(5), T=4), model.init_params(5, dtype="float64")
    steps, kw = 2, {}
    if name == "mann":  # a memory-augmented net on episodes (labels one step late), no inner steps
        model, steps = MANN(inputs=6, classes=3, hidden=4, memory_size=5, memory_width=2, heads=2), 0
        batch, params = episode_tasks(np.random.default_rng(5), T=4), model.init_params(5, dtype="float64")
    if name == "relationnet":  # its own encoder needs 28x28 images; its clipping (of the whole meta-batch's
        # gradient, tests/test_relation.py) would not commute with the loop's average
        model, params, batch = small_conv_problem(np.random.default_rng(5), T=4, size=28)
        kw = dict(filters=2, hidden=2, clip_norm=None)
    algo = make(name, model, objective, **kw)
    meta = algo.init_meta_params(params, np.random.default_rng(0))
    grads, metrics = algo.meta_gradient(meta, batch)
    if name in ("gradient-agreement", "taml"):  # weights / an inequality couple the tasks: their own tests check it
        grads = None
    loop = {k: 0.0 for k in meta}
    for t in range(batch.num_tasks):
        g, _ = algo.meta_gradient(meta, batch.task(t))
        for k in meta:
            loop[k] = loop[k] + g[k].numpy() / batch.num_tasks
    # A conv bias just before batch norm is taken out again with its channel's mean, so its gradient
    # (and Meta-SGD's for that bias's rate) is zero in exact arithmetic: what is computed is rounding
    # noise. Reptile's inner Adam divides that noise by its own size plus eps and turns it into steps
    # of ~1e-10, whose values depend on how the BLAS rounded, batched or not (they differ between
    # NumPy builds and OpenBLAS kernels). So those entries are held to being noise, a millionth of
    # the real gradient entries at most, and the others, which mean something, to the loop's.
    noise = {k for k in meta if re.fullmatch(r"(lr/)?conv\d+_b", k)}
    for k in meta if grads is not None else ():
        if k in noise:
            largest = max(np.abs(grads[j].numpy()).max() for j in meta if j not in noise)
            assert np.abs(grads[k].numpy()).max() <= 1e-6 * largest and np.abs(loop[k]).max() <= 1e-6 * largest, k
        else:
            np.testing.assert_allclose(grads[k].numpy(), loop[k], rtol=1e-9, atol=1e-13)
    ev = algo.evaluate(meta, batch, steps=steps)
    for t in range(batch.num_tasks):
        one = algo.evaluate(meta, batch.task(t), steps=steps)
        for key in ev:
            np.testing.assert_allclose(ev[key][:, t], one[key][:, 0], rtol=1e-9, atol=1e-12)


def test_evaluate_reports_every_step():
    model, params, batch = small_conv_problem(np.random.default_rng(6))
    ev = MAML(model, CLS, inner_lr=0.4).evaluate(params, batch, steps=3)
    assert ev["loss"].shape == (4, batch.num_tasks) and ev["accuracy"].shape == (4, batch.num_tasks)
    assert ev["loss"][3].mean() < ev["loss"][0].mean()  # the inner loop fits the support set's classes


def test_nil_picks_the_most_cosine_similar_class():
    fs = tm.tensor(np.array([[[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]]]))  # class 0, 1, 0
    ys = tm.tensor(np.array([[0, 1, 0]]))
    fq = tm.tensor(np.array([[[0.2, 1.0], [1.0, 0.05], [5.0, 4.0]]]))
    from tinymeta.algorithms import nil_predict
    scores = nil_predict(fs, ys, fq, 2).numpy()
    np.testing.assert_array_equal(scores.argmax(-1), [[1, 0, 0]])
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    q = np.array([5.0, 4.0])
    np.testing.assert_allclose(scores[0, 2], [(cos(q, [1, 0]) + cos(q, [.9, .1])) / 2, cos(q, [0, 1])])


def test_nil_needs_classification():
    model = MLP((1, 4, 1))
    batch = linear_tasks(np.random.default_rng(0), d=1)
    with pytest.raises(ValueError, match="classification"):
        NIL(model, REG).evaluate(model.init_params(0, "float64"), batch)
