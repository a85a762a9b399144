"""Relation networks: the MSE loss and the class maps by hand, the embedding, the relation module and
a whole episode against a NumPy forward written here, meta-gradients by central differences (second
order for the relation module and the pairing), per-module gradient clipping, the task axis, the
config, a short run that learns, and the preset from the command line."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import tinymeta as tm
from tinymeta.algorithms import ALGORITHMS, Objective, RelationModel, RelationNet, relation_scores
from tinymeta.algorithms.relation import class_maps, clip_by_norm, relation_losses
from tinymeta.autograd import grad
from tinymeta.experiment import Config
from tinymeta.experiment.factories import build_algorithm, build_model
from tinymeta.nn import ConvNet
from tinymeta.optim import Adam
from tinymeta.tasks.base import MetaBatch
from tinymeta.testing import gradcheck, gradgradcheck

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT_DIR = Path(os.environ.get("TINYMETA_TEST_OMNIGLOT", REPO.parent / "shared" / "data" / "omniglot"))
CE = Objective("classification")


def episode(xs, ys, xq, yq, dtype="float64"):
    return MetaBatch(tm.tensor(np.asarray(xs), dtype=dtype), tm.tensor(np.asarray(ys)),
                     tm.tensor(np.asarray(xq), dtype=dtype), tm.tensor(np.asarray(yq)))


def random_episode(rng, T=1, N=2, K=2, Q=1):
    ys = np.stack([rng.permutation(np.repeat(np.arange(N), K)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(N), Q)) for _ in range(T)])
    return episode(rng.random((T, N * K, 1, 28, 28)), ys, rng.random((T, N * Q, 1, 28, 28)), yq)


def tiny(filters=2, hidden=3, clip_norm=None, transductive=True):
    model = ConvNet(n_way=2, filters=2)
    return model, RelationNet(model, CE, transductive=transductive, filters=filters, hidden=hidden,
                              clip_norm=clip_norm)


# ---- a plain NumPy forward of the original's two modules ------------------------------------------
def np_block(p, name, x, padding, pool, eps=1e-5):
    """3x3 conv (stride 1), batch norm with the batch's statistics, ReLU, optional 2x2 max-pool: x (n, C, H, W)."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    x = np.einsum("nchwij,ocij->nohw", sliding_window_view(x, (3, 3), axis=(2, 3)), p[name + "_w"])
    x = x + p[name + "_b"][None, :, None, None]
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    x = (x - mean) / np.sqrt(var + eps) * p[name + "_bn_w"][None, :, None, None] + p[name + "_bn_b"][None, :, None, None]
    x = np.maximum(x, 0)
    if pool:
        n, c, h, w = x.shape
        x = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return x


def np_embed(p, x):
    """CNNEncoder (one_shot.py:47-76): padding 0 + pool, padding 0 + pool, padding 1, padding 1."""
    for i, (padding, pool) in enumerate([(0, True), (0, True), (1, False), (1, False)], start=1):
        x = np_block(p, f"embed{i}", x, padding, pool)
    return x


def np_relation(p, pairs):
    """RelationNetwork (one_shot.py:78-101): (P, 2C, 5, 5) -> (P,) in (0, 1)."""
    x = np_block(p, "relation1", pairs, 1, True)
    x = np_block(p, "relation2", x, 1, True).reshape(len(pairs), -1)
    x = np.maximum(x @ p["fc1_w"].T + p["fc1_b"], 0)
    return 1 / (1 + np.exp(-(x @ p["fc2_w"].T + p["fc2_b"])[:, 0]))


def np_episode(p, xs, ys, xq, yq, n_way):
    """One task as the original computes it (few_shot.py:172-189): scores (Q, N) and the MSE loss."""
    zs, zq = np_embed(p, xs), np_embed(p, xq)                      # two passes: two sets of batch statistics
    maps = np.stack([zs[ys == c].sum(axis=0) for c in range(n_way)])
    Q = len(zq)
    pairs = np.concatenate([np.repeat(maps[None], Q, 0), np.repeat(zq[:, None], n_way, 1)], axis=2)
    r = np_relation(p, pairs.reshape((Q * n_way,) + pairs.shape[2:])).reshape(Q, n_way)
    return r, ((r - np.eye(n_way)[yq]) ** 2).mean()


def arrays(params):
    return {k: v.numpy() for k, v in params.items()}


# ---- by hand ------------------------------------------------------------------------------------------
def test_mse_loss_by_hand():
    """Scores (0.8, 0.1) and (0.3, 0.6) for queries of class 0 and 1: errors 0.2, 0.1, 0.3, 0.4,
    squares summing to 0.30, their mean 0.075 (nn.MSELoss over the Q x N scores)."""
    r = tm.tensor(np.array([[[0.8, 0.1], [0.3, 0.6]]]))
    assert relation_losses(r, tm.tensor(np.array([[0, 1]])), 2).numpy() == pytest.approx([0.075], rel=1e-14)
    _, learner = tiny()
    b = episode(np.zeros((1, 2, 1, 28, 28)), [[0, 1]], np.zeros((1, 2, 1, 28, 28)), [[0, 1]])
    assert learner.task_losses(r, b).numpy() == pytest.approx([0.075], rel=1e-14)


def test_class_maps_are_sums_over_the_shots():
    zs = np.arange(4 * 3, dtype=np.float64).reshape(1, 4, 3, 1, 1)   # 4 support maps of 3 channels
    got = class_maps(tm.tensor(zs), tm.tensor(np.array([[1, 0, 1, 0]])), 2).numpy()
    np.testing.assert_array_equal(got[0, 0, :, 0, 0], zs[0, 1, :, 0, 0] + zs[0, 3, :, 0, 0])   # [12, 14, 16]
    np.testing.assert_array_equal(got[0, 1, :, 0, 0], [6, 8, 10])                               # 0..2 + 6..8


def test_embedding_maps_are_64x5x5_on_28x28():
    net = RelationModel()
    p = net.init_params(0, dtype="float64")
    assert net.body(p, tm.tensor(np.zeros((1, 3, 1, 28, 28)) + np.eye(28))).shape == (1, 3, 64, 5, 5)
    assert p["fc1_w"].shape == (8, 64) and p["relation1_w"].shape == (64, 128, 3, 3)
    # weights_init (one_shot.py:103-116): linear biases 1, batch norm 1 and 0, conv biases 0
    assert (p["fc1_b"].numpy() == 1).all() and (p["fc2_b"].numpy() == 1).all()
    assert (p["embed1_bn_w"].numpy() == 1).all() and (p["embed3_b"].numpy() == 0).all()
    assert np.std(p["embed2_w"].numpy()) == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.05)
    assert np.std(p["fc1_w"].numpy()) == pytest.approx(0.01, rel=0.2)
    with pytest.raises(ValueError, match="too small"):
        RelationModel(image_size=14)


# ---- against the NumPy forward -------------------------------------------------------------------------
def test_relation_module_matches_a_numpy_forward(rng):
    net = RelationModel(filters=2, hidden=3)
    p = net.init_params(1, dtype="float64")
    pairs = rng.standard_normal((1, 6, 4, 5, 5))
    np.testing.assert_allclose(net.relation(p, tm.tensor(pairs)).numpy()[0], np_relation(arrays(p), pairs[0]),
                               rtol=1e-12)


@pytest.mark.parametrize("shots", [1, 3])
def test_one_episode_matches_a_numpy_forward(shots, rng):
    _, learner = tiny()
    meta = learner.init_meta_params({"w": tm.tensor(np.zeros(1))}, np.random.default_rng(4))
    assert set(meta) == set(learner.net.init_params(0))  # the relation model's weights, not the ConvNet's
    b = random_episode(rng, T=2, N=3, K=shots, Q=2)
    p = arrays(meta)
    out = learner.evaluate(meta, b)
    loss, metrics = learner.meta_loss(meta, b)
    scores = learner.episode_scores(meta, b).numpy()
    want_losses = []
    for t in range(2):
        r, want = np_episode(p, b.x_support.numpy()[t], b.y_support.numpy()[t], b.x_query.numpy()[t],
                             b.y_query.numpy()[t], 3)
        np.testing.assert_allclose(scores[t], r, rtol=1e-12)
        assert out["loss"][0, t] == pytest.approx(want, rel=1e-12)
        assert out["accuracy"][0, t] == pytest.approx((r.argmax(1) == b.y_query.numpy()[t]).mean())
        want_losses.append(want)
    assert loss.item() == pytest.approx(np.mean(want_losses), rel=1e-12)
    assert metrics["query_loss"].item() == pytest.approx(np.mean(want_losses), rel=1e-12)


# ---- gradients --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_meta_gradient_matches_central_differences(rng):
    _, learner = tiny(filters=2, hidden=2)
    meta = learner.init_meta_params({"w": tm.tensor(np.zeros(1))}, np.random.default_rng(5))
    keys = sorted(meta)
    b = random_episode(rng, T=1, N=2, K=2, Q=1)
    assert gradcheck(lambda *v: learner.meta_loss(dict(zip(keys, v)), b)[0], [meta[k] for k in keys])


def test_relation_and_pairing_gradgradcheck(rng):
    """Second order through the class sums, the pairing and the relation module (maps and module weights)."""
    net = RelationModel(filters=2, hidden=2)
    p = net.init_params(6, dtype="float64")
    keys = ["relation2_w", "relation2_bn_w", "fc1_w", "fc2_w"]
    ys = tm.tensor(np.array([[1, 0, 1]]))
    zs = tm.tensor(rng.standard_normal((1, 3, 2, 4, 4)), requires_grad=True)   # 4x4 maps: 4 -> 2 -> 1
    zq = tm.tensor(rng.standard_normal((1, 1, 2, 4, 4)), requires_grad=True)

    def f(zs, zq, *weights):
        r = relation_scores(net, {**p, **dict(zip(keys, weights))}, zs, ys, zq, 2)
        return relation_losses(r, tm.tensor(np.array([[1]])), 2)

    inputs = [zs, zq] + [p[k] for k in keys]
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def test_clip_by_norm_by_hand():
    """(3, 4) and (0,) have the joint norm 5: clipped to 0.5 they are scaled by 0.5 / (5 + 1e-6), torch's
    clip_grad_norm; a gradient already shorter is left alone."""
    g = {"a": tm.tensor(np.array([3.0, 4.0])), "b": tm.tensor(np.array([0.0]))}
    out = clip_by_norm(g, ["a", "b"], 0.5)
    np.testing.assert_allclose(out["a"].numpy(), [3 * 0.5 / (5 + 1e-6), 4 * 0.5 / (5 + 1e-6)], rtol=1e-14)
    np.testing.assert_array_equal(clip_by_norm(g, ["a"], 10.0)["a"].numpy(), [3.0, 4.0])


def test_meta_gradient_clips_each_module_on_its_own(rng):
    _, raw = tiny(clip_norm=None)
    _, clipped = tiny(clip_norm=0.5)
    meta = raw.init_meta_params({"w": tm.tensor(np.zeros(1))}, np.random.default_rng(7))
    b = random_episode(rng, T=1, N=2, K=1, Q=2)
    g, _ = raw.meta_gradient(meta, b)
    c, _ = clipped.meta_gradient(meta, b)
    embed = set(raw.net.embed_keys())
    for group in (embed, set(meta) - embed):
        norm = math.sqrt(sum(float((g[k].numpy() ** 2).sum()) for k in group))
        scale = min(1.0, 0.5 / (norm + 1e-6))
        for k in group:
            np.testing.assert_allclose(c[k].numpy(), g[k].numpy() * scale, rtol=1e-12, atol=1e-300)
    assert set(c) == set(meta)


# ---- the task axis ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transductive", [True, False], ids=["two-passes", "each-query-alone"])
def test_task_axis_equals_a_loop_over_tasks(transductive, rng):
    _, learner = tiny(transductive=transductive)
    meta = learner.init_meta_params({"w": tm.tensor(np.zeros(1))}, np.random.default_rng(8))
    b = random_episode(rng, T=3, N=2, K=1, Q=2)
    whole = learner.evaluate(meta, b)
    grads = grad(learner.meta_loss(meta, b)[0], meta)
    summed = {k: 0.0 for k in meta}
    for t in range(3):
        one = MetaBatch(b.x_support[t:t + 1], b.y_support[t:t + 1], b.x_query[t:t + 1], b.y_query[t:t + 1])
        out = learner.evaluate(meta, one)
        np.testing.assert_allclose(out["loss"][0, 0], whole["loss"][0, t], rtol=1e-12)
        g = grad(learner.meta_loss(meta, one)[0], meta)
        summed = {k: summed[k] + g[k].numpy() / 3 for k in meta}
    for k in meta:
        np.testing.assert_allclose(grads[k].numpy(), summed[k], rtol=1e-9, atol=1e-13)


def test_each_query_alone_differs_from_the_two_passes(rng):
    """Non-transductive evaluation: each query through the encoder with the support set, as one batch."""
    _, two = tiny()
    _, alone = tiny(transductive=False)
    meta = two.init_meta_params({"w": tm.tensor(np.zeros(1))}, np.random.default_rng(9))
    meta.update({k: meta[k] * 100 for k in ("fc1_w", "fc2_w")})  # at init the scores hardly vary (std 0.01)
    b = random_episode(rng, T=1, N=2, K=1, Q=2)
    assert not np.allclose(two.evaluate(meta, b)["loss"], alone.evaluate(meta, b)["loss"], rtol=1e-6)


# ---- the config ---------------------------------------------------------------------------------------------
def test_from_config():
    cfg = Config(algorithm="relationnet", dataset="omniglot", ways=5, shots=1, filters=8).validate()
    learner = build_algorithm(cfg, build_model(cfg))
    assert type(learner) is RelationNet is ALGORITHMS["relationnet"]
    assert (learner.net.filters, learner.net.hidden, learner.clip_norm, learner.inner_loop) == (8, 8, 0.5, False)
    assert repr(learner) == "RelationNet(filters=8)"
    with pytest.raises(ValueError, match="classification dataset"):
        Config(algorithm="relationnet", dataset="sine").validate()


def test_presets_follow_the_original():
    from tinymeta.experiment.presets import PRESETS, preset_source
    queries = {(5, 1): 19, (5, 5): 15, (20, 1): 10, (20, 5): 5}       # README.md:23-41 -b
    papers = {(5, 1): "99.6", (5, 5): "99.8", (20, 1): "97.6", (20, 5): "99.1"}
    for (ways, shots), q in queries.items():
        name = f"relationnet-omniglot-{ways}w{shots}s"
        cfg = PRESETS[name].validate()
        assert (cfg.ways, cfg.shots, cfg.queries, cfg.meta_batch, cfg.meta_lr, cfg.iterations) == \
            (ways, shots, q, 1, 1e-3, 1_000_000)
        assert (cfg.split_mode, cfg.rotations, cfg.ink, cfg.test_tasks) == ("relationnet", "whole-task", 0, 10000)
        src = preset_source(name)
        assert src["paper_value"].startswith(papers[(ways, shots)]) and "LearningToCompare_FSL" in src["code"]
        for field in ("queries", "meta_lr", "iterations", "split_mode", "rotations", "test_tasks"):
            assert ".py:" in src["settings"][field] or ".md:" in src["settings"][field], field


# ---- a short training run learns ------------------------------------------------------------------------------
def test_a_short_training_run_learns():
    """2-way tasks of 28x28 images: each class a random blob pattern, its examples that pattern plus noise."""
    rng = np.random.default_rng(0)

    def tasks(T, N=2, K=1, Q=3):
        patterns = (rng.random((T, N, 1, 28, 28)) < 0.3).astype(np.float64)
        def draw(k):
            y = np.stack([rng.permutation(np.repeat(np.arange(N), k)) for _ in range(T)])
            x = np.take_along_axis(patterns, y[:, :, None, None, None], 1)
            return np.clip(x + 0.3 * rng.standard_normal(x.shape), 0, 1), y
        (xs, ys), (xq, yq) = draw(K), draw(Q)
        return episode(xs, ys, xq, yq)

    _, learner = tiny(filters=4, hidden=4, clip_norm=0.5)
    meta = learner.init_meta_params({"w": tm.tensor(np.zeros(1))}, rng)
    opt = Adam(meta, lr=0.01)
    test = tasks(32)
    before = learner.evaluate(meta, test)
    for _ in range(30):
        grads, _ = learner.meta_gradient(meta, tasks(2))
        opt.step(grads)
    after = learner.evaluate(meta, test)
    assert after["loss"].mean() < before["loss"].mean() - 0.05
    assert after["accuracy"].mean() > before["accuracy"].mean() + 0.15


# ---- the preset from the command line --------------------------------------------------------------------------
def test_train_the_5w1s_preset_from_the_command_line(tmp_path):
    if not (OMNIGLOT_DIR / "images_background.zip").is_file():
        pytest.skip(f"real Omniglot zips not found in {OMNIGLOT_DIR} (set $TINYMETA_TEST_OMNIGLOT)")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--preset", "relationnet-omniglot-5w1s",
                           "--iterations", "3", "--filters", "4", "--queries", "2", "--val-tasks", "2",
                           "--test-tasks", "4", "--logdir", str(tmp_path / "run"), "--data-dir", str(OMNIGLOT_DIR)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "algorithm='relationnet'" in proc.stdout and "iteration 3/3" in proc.stdout
    assert "no inner loop" in proc.stdout and "Traceback" not in proc.stderr
