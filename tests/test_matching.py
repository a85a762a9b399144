"""Matching networks: the loss by hand, the attention and the full context embeddings against a NumPy
forward written here (the LSTM recurrence included), meta-gradients to second order, the task axis,
the config, and a short training run that learns."""
import math

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import ALGORITHMS, MatchingNet, Objective, matching_scores
from tinymeta.algorithms.matching import F_PREFIX, G_PREFIX
from tinymeta.autograd import grad
from tinymeta.experiment import Config
from tinymeta.experiment.factories import build_algorithm, build_model
from tinymeta.nn import MLP, ConvNet
from tinymeta.optim import Adam
from tinymeta.tasks.base import MetaBatch
from tinymeta.testing import gradcheck, gradgradcheck

CE = Objective("classification")


def episode(xs, ys, xq, yq, dtype="float64"):
    return MetaBatch(tm.tensor(np.asarray(xs), dtype=dtype), tm.tensor(np.asarray(ys)),
                     tm.tensor(np.asarray(xq), dtype=dtype), tm.tensor(np.asarray(yq)))


def random_episode(rng, T=2, N=3, K=2, Q=2, shape=(4,)):
    ys = np.stack([rng.permutation(np.repeat(np.arange(N), K)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(N), Q)) for _ in range(T)])
    return episode(rng.standard_normal((T, N * K) + shape), ys, rng.standard_normal((T, N * Q) + shape), yq)


# ---- a plain NumPy forward ------------------------------------------------------------------------
def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_cosine(a, b):
    """(Q, S) cosine similarities of rows of a (Q, D) and b (S, D)."""
    return (a @ b.T) / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1))


def np_lstm_step(p, suffix, x, h, c):
    z = p["weight_ih" + suffix] @ x + p["bias_ih" + suffix] + p["weight_hh" + suffix] @ h + p["bias_hh" + suffix]
    i, f, g, o = np.split(z, 4)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c = sig(f) * c + sig(i) * np.tanh(g)
    return sig(o) * np.tanh(c), c


def np_fce(p, zs, zq, steps):
    """Appendix A: g by a bidirectional LSTM with a skip connection, f by the attention LSTM (one task)."""
    S, D = zs.shape
    g = {k[len(G_PREFIX):]: v for k, v in p.items() if k.startswith(G_PREFIX)}
    f = {k[len(F_PREFIX):]: v for k, v in p.items() if k.startswith(F_PREFIX)}
    fwd, bwd = [None] * S, [None] * S
    h = c = np.zeros(D)
    for i in range(S):
        h, c = np_lstm_step(g, "_l0", zs[i], h, c)
        fwd[i] = h
    h = c = np.zeros(D)
    for i in reversed(range(S)):
        h, c = np_lstm_step(g, "_l0_reverse", zs[i], h, c)
        bwd[i] = h
    gs = np.array(fwd) + np.array(bwd) + zs
    out = []
    for q in zq:
        h, c = q, np.zeros(D)
        for _ in range(steps):
            r = np_softmax(gs @ h) @ gs                                 # Eq. 5-6
            h_hat, c = np_lstm_step(f, "", np.concatenate([q, r]), h, c)  # Eq. 3, [h, r] as the state
            h = h_hat + q                                                # Eq. 4
        out.append(h)
    return gs, np.array(out)


def np_matching_probs(zs, ys, zq, n_way, p=None, steps=0):
    """P(y | x̂, S) of Eq. 1-2 for one task, (Q, n_way)."""
    if p is not None:
        zs, zq = np_fce(p, zs, zq, steps)
    return np_softmax(np_cosine(zq, zs)) @ np.eye(n_way)[ys]


def arrays(params):
    return {k: v.numpy() for k, v in params.items()}


# ---- the loss by hand -------------------------------------------------------------------------------
def test_loss_is_the_negative_log_likelihood_of_the_attention_by_hand():
    """Support (1, 0) of class 0 and (0, 1) of class 1. Query (2, 0) of class 0: cosines (1, 0), so
    P(0) = e / (e + 1) and the loss log(1 + 1/e); query (1, 1) of class 1: cosines (1/sqrt 2, 1/sqrt 2),
    P(1) = 1/2 and the loss log 2. The task's loss is their mean."""
    b = episode([[[1.0, 0.0], [0.0, 1.0]]], [[0, 1]], [[[2.0, 0.0], [1.0, 1.0]]], [[0, 1]])
    learner = MatchingNet(MLP((2, 2, 2)), CE)
    s = learner.scores({}, b.x_support, b.y_support, b.x_query, 2)
    np.testing.assert_allclose(np.exp(s.numpy()), [[[math.e / (math.e + 1), 1 / (math.e + 1)], [0.5, 0.5]]],
                               rtol=1e-14)
    want = (math.log(1 + 1 / math.e) + math.log(2)) / 2
    assert learner.task_losses(s, b).numpy() == pytest.approx([want], rel=1e-14)
    assert want == pytest.approx(0.5032, abs=1e-4)  # (0.3133 + 0.6931) / 2


def test_the_l2_attention_by_hand():
    """distance="l2": softmax of -||z_q - z_i||^2. Support (1, 0) of class 0 and (0, 1) of class 1; query (2, 0)
    is at squared distances 1 and 5, so P(0) = e^-1 / (e^-1 + e^-5) = 1 / (1 + e^-4); query (1, 1) at 1 and 1,
    P = 1/2 each. (Its cosines would give e / (e + 1) for the first: the two attentions differ.)"""
    b = episode([[[1.0, 0.0], [0.0, 1.0]]], [[0, 1]], [[[2.0, 0.0], [1.0, 1.0]]], [[0, 1]])
    learner = MatchingNet(MLP((2, 2, 2)), CE, distance="l2")
    s = learner.scores({}, b.x_support, b.y_support, b.x_query, 2)
    p0 = 1 / (1 + math.exp(-4))
    np.testing.assert_allclose(np.exp(s.numpy()), [[[p0, 1 - p0], [0.5, 0.5]]], rtol=1e-14)
    want = (-math.log(p0) + math.log(2)) / 2
    assert learner.task_losses(s, b).numpy() == pytest.approx([want], rel=1e-14)
    assert repr(learner) == "MatchingNet(distance='l2')"
    with pytest.raises(ValueError, match="distance must be one of"):
        MatchingNet(MLP((2, 2, 2)), CE, distance="manhattan")


def test_the_l2_attention_gradients_to_second_order(rng):
    """The l2 attention's log-probabilities, in the embeddings, against central differences to second order."""
    zs, zq = tm.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True), tm.tensor(
        rng.standard_normal((2, 3, 3)), requires_grad=True)
    ys = tm.tensor(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]))
    weights = tm.tensor(rng.standard_normal((2, 3, 2)))

    def f(a, b):
        return (matching_scores({}, a, ys, b, 2, distance="l2") * weights).sum()

    assert gradcheck(f, [zs, zq]) and gradgradcheck(f, [zs, zq])


def test_attention_and_fce_match_a_numpy_forward(rng):
    T, S, Q, D, N = 2, 5, 3, 4, 3
    zs, zq = rng.standard_normal((T, S, D)), rng.standard_normal((T, Q, D))
    ys = np.stack([rng.permutation([0, 0, 1, 1, 2]) for _ in range(T)])
    learner = MatchingNet(MLP((2, D, 2)), CE, fce=True, fce_steps=3)
    p = learner.extra_params(np.random.default_rng(0), "float64", None)
    assert sorted(k for k in p if k.startswith(F_PREFIX)) == [F_PREFIX + k for k in
                                                              ("bias_hh", "bias_ih", "weight_hh", "weight_ih")]
    assert p[F_PREFIX + "weight_ih"].shape == (4 * D, 2 * D)  # reads [f'(x), r]
    for fce in (False, True):
        got = np.exp(matching_scores(p, tm.tensor(zs), tm.tensor(ys), tm.tensor(zq), N, fce=fce,
                                     fce_steps=3).numpy())
        for t in range(T):
            want = np_matching_probs(zs[t], ys[t], zq[t], N, arrays(p) if fce else None, 3)
            np.testing.assert_allclose(got[t], want, rtol=1e-12, atol=1e-14)
    # the embeddings matter: FCE changes the answer
    plain = matching_scores(p, tm.tensor(zs), tm.tensor(ys), tm.tensor(zq), N).numpy()
    assert not np.allclose(plain, matching_scores(p, tm.tensor(zs), tm.tensor(ys), tm.tensor(zq), N, fce=True,
                                                  fce_steps=3).numpy())


def test_one_evaluation_episode_matches_a_numpy_forward(rng):
    """The whole learner (MLP body as embedding, FCE) against the NumPy forward, loss and accuracy."""
    model = MLP((4, 3, 6))
    learner = MatchingNet(model, CE, fce=True, fce_steps=2)
    meta = learner.init_meta_params(model.init_params(1, dtype="float64"), np.random.default_rng(1))
    assert "w2" not in meta and "w1" in meta  # the head is dropped
    b = random_episode(rng)
    out = learner.evaluate(meta, b)
    p = arrays(meta)
    for t in range(2):
        body = lambda x: np.maximum(x @ p["w1"].T + p["b1"], 0)  # noqa: E731
        P = np_matching_probs(body(b.x_support.numpy()[t]), b.y_support.numpy()[t], body(b.x_query.numpy()[t]),
                              3, p, 2)
        yq = b.y_query.numpy()[t]
        assert out["loss"][0, t] == pytest.approx(-np.log(P[np.arange(len(yq)), yq]).mean(), rel=1e-12)
        assert out["accuracy"][0, t] == pytest.approx((P.argmax(1) == yq).mean())
    assert out["loss"].shape == out["accuracy"].shape == (1, 2)


# ---- gradients --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fce", [False, True], ids=["plain", "fce"])
def test_meta_gradient_matches_central_differences_to_second_order(fce, rng):
    model = MLP((3, 2, 4))
    learner = MatchingNet(model, CE, fce=fce, fce_steps=2)
    meta = learner.init_meta_params(model.init_params(2, dtype="float64"), np.random.default_rng(2))
    keys = sorted(meta)
    b = random_episode(rng, T=2, N=2, K=2, Q=1, shape=(3,))

    def loss(*values):
        return learner.meta_loss(dict(zip(keys, values)), b)[0]

    inputs = [meta[k] for k in keys]
    assert gradcheck(loss, inputs)
    # second order in the body and the attention LSTM (g's bidirectional LSTM is tm.nn.LSTM, checked to second
    # order in test_lstm.py; held constant here to keep the check within a few seconds)
    varied = [k for k in keys if not k.startswith(G_PREFIX)]

    def loss2(*values):
        return learner.meta_loss({**meta, **dict(zip(varied, values))}, b)[0]

    assert gradgradcheck(loss2, [meta[k] for k in varied])


def test_fce_composition_gradgradcheck_in_the_embeddings(rng):
    """Second order through both LSTMs and the attention, with respect to the embeddings themselves."""
    learner = MatchingNet(MLP((2, 2, 2)), CE, fce=True, fce_steps=2)
    p = learner.extra_params(np.random.default_rng(3), "float64", None)
    ys = tm.tensor(np.array([[0, 1, 1]]))
    zs = tm.tensor(rng.standard_normal((1, 3, 2)), requires_grad=True)
    zq = tm.tensor(rng.standard_normal((1, 2, 2)), requires_grad=True)
    f = lambda a, b: matching_scores(p, a, ys, b, 2, fce=True, fce_steps=2)  # noqa: E731
    assert gradcheck(f, [zs, zq])
    assert gradgradcheck(f, [zs, zq])


def test_an_all_zero_embedding_has_a_finite_gradient():
    """A ReLU body can switch every unit off for an image; its cosine is then 0 and training must go on
    (a NaN here once turned every weight into NaN within 200 Omniglot iterations)."""
    zs = tm.tensor(np.array([[[0.0, 0.0], [1.0, 2.0], [0.5, -1.0]]]), requires_grad=True)
    zq = tm.tensor(np.array([[[1.0, 1.0], [0.0, 0.0]]]), requires_grad=True)
    ys = tm.tensor(np.array([[0, 1, 1]]))
    s = matching_scores({}, zs, ys, zq, 2)
    g = grad(s.sum(), [zs, zq])
    assert np.isfinite(s.numpy()).all() and all(np.isfinite(x.numpy()).all() for x in g)
    np.testing.assert_allclose(np.exp(s.numpy())[0, 1], [1 / 3, 2 / 3], rtol=1e-14)  # all cosines 0: uniform


# ---- the task axis ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fce", [False, True], ids=["plain", "fce"])
def test_task_axis_equals_a_loop_over_tasks(fce, rng):
    model = ConvNet(n_way=3, filters=3, pool=True)                    # 28 -> 14 -> 7 -> 3 -> 1: 3 features
    learner = MatchingNet(model, CE, fce=fce, fce_steps=2)
    meta = learner.init_meta_params(model.init_params(0, dtype="float64"), np.random.default_rng(0))
    b = random_episode(rng, T=3, N=3, K=1, Q=2, shape=(1, 28, 28))
    whole = learner.evaluate(meta, b)
    loss, _ = learner.meta_loss(meta, b)
    grads = grad(loss, meta)
    per_task_grads = {k: 0.0 for k in meta}
    for t in range(3):
        one = MetaBatch(b.x_support[t:t + 1], b.y_support[t:t + 1], b.x_query[t:t + 1], b.y_query[t:t + 1])
        out = learner.evaluate(meta, one)
        np.testing.assert_allclose(out["loss"][0, 0], whole["loss"][0, t], rtol=1e-12)
        assert out["accuracy"][0, 0] == whole["accuracy"][0, t]
        g = grad(learner.meta_loss(meta, one)[0], meta)
        per_task_grads = {k: per_task_grads[k] + g[k].numpy() / 3 for k in meta}
    for k in meta:  # the meta-loss is the mean over tasks
        np.testing.assert_allclose(grads[k].numpy(), per_task_grads[k], rtol=1e-9, atol=1e-14)


# ---- the config ---------------------------------------------------------------------------------------
def test_from_config_reads_fce_and_its_steps():
    cfg = Config(algorithm="matching", dataset="omniglot", ways=5, shots=1, pool=True, fce=True, fce_steps=3)
    learner = build_algorithm(cfg.validate(), build_model(cfg))
    assert type(learner) is MatchingNet is ALGORITHMS["matching"]
    assert (learner.fce, learner.fce_steps, learner.inner_loop) == (True, 3, False)
    assert repr(learner) == "MatchingNet(fce=True, fce_steps=3)"
    plain = build_algorithm(cfg.replace(fce=False, fce_steps=5), build_model(cfg))
    assert plain.fce is False and plain.extra_params(0, "float32", None) == {} and plain.distance == "cosine"
    assert build_algorithm(cfg.replace(matching_distance="l2"), build_model(cfg)).distance == "l2"


@pytest.mark.parametrize("changes, message", [
    (dict(algorithm="maml", fce=True), "matching networks' settings"),
    (dict(algorithm="matching", fce_steps=0), "fce_steps"),
    (dict(algorithm="matching", fce=1), "fce"),
    (dict(algorithm="matching", dataset="sine"), "classification dataset"),
    (dict(algorithm="protonet", matching_distance="l2"), "matching networks' setting"),
    (dict(algorithm="matching", matching_distance="dot"), "matching_distance"),
])
def test_config_refuses_what_matching_networks_cannot_take(changes, message):
    with pytest.raises(ValueError, match=message):
        Config(**{"dataset": "omniglot", **changes}).validate()


# ---- a short training run learns ----------------------------------------------------------------------
def test_a_short_training_run_learns():
    """3-way tasks whose class is told by 2 of 6 inputs, the other 4 loud noise: raw cosines do poorly,
    a learned embedding that reads the 2 informative inputs does well."""
    rng = np.random.default_rng(0)

    def tasks(T, N=3, K=2, Q=4):
        centres = rng.standard_normal((T, N, 2)) * 3
        def draw(k):
            y = np.tile(np.repeat(np.arange(N), k), (T, 1))
            x = np.concatenate([np.take_along_axis(centres, y[..., None], 1) + 0.3 * rng.standard_normal((T, N * k, 2)),
                                3 * rng.standard_normal((T, N * k, 4))], axis=-1)
            return x, y
        (xs, ys), (xq, yq) = draw(K), draw(Q)
        return episode(xs, ys, xq, yq)

    model = MLP((6, 32, 1))
    learner = MatchingNet(model, CE)
    meta = learner.init_meta_params(model.init_params(0, dtype="float64"), rng)
    opt = Adam(meta, lr=0.02)
    test = tasks(64)
    before = learner.evaluate(meta, test)
    for _ in range(80):
        grads, _ = learner.meta_gradient(meta, tasks(8))
        opt.step(grads)
    after = learner.evaluate(meta, test)
    assert after["loss"].mean() < before["loss"].mean() - 0.1
    assert after["accuracy"].mean() > before["accuracy"].mean() + 0.1


def test_the_presets_are_matching_networks_cells_on_vinyals_split():
    """Each cell: the paper's split and network, oscarknagg/few-shot's training whole (one episode of 15 queries
    per class per step, 10,000 steps, Adam 1e-3), never a mix of two reimplementations' settings."""
    from tinymeta.experiment.presets import PRESETS, preset_source
    for (ways, shots), paper in {(5, 1): "98.1", (5, 5): "98.9", (20, 1): "93.8", (20, 5): "98.5"}.items():
        name = f"matching-omniglot-{ways}w{shots}s"
        cfg = PRESETS[name].validate()
        assert (cfg.algorithm, cfg.ways, cfg.shots, cfg.queries, cfg.train_queries, cfg.train_ways) == (
            "matching", ways, shots, 1, 15, None)
        assert (cfg.meta_batch, cfg.iterations, cfg.meta_lr, cfg.lr_schedule, cfg.task_chunk) == (
            1, 10_000, 1e-3, "constant", None)
        assert (cfg.fce, cfg.split_mode, cfg.rotations) == (False, "vinyals-trainval", "all-classes")
        src = preset_source(name)
        assert src["paper_value"] == paper and "Vinyals" in src["cell"]
        training = ("meta_batch", "iterations", "meta_lr", "train_queries", "queries", "test_tasks")
        assert all("oscarknagg/few-shot experiments/matching_nets.py:" in src["settings"][k] for k in training)
        assert "MatchingNetworks" not in str(src["settings"])
