"""Siamese networks (Koch et al. 2015) and the book's contrastive loss: hand-computed values, the
contrastive convention, gradients to second order, one evaluation episode against plain NumPy, the pairs
of an episode, Koch's split and within-alphabet tasks, the config, a tiny run that learns, and the CLI."""
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import OMNIGLOT_DIR, REPO

import tinymeta as tm
from tinymeta.algorithms import ALGORITHMS, Objective, Siamese
from tinymeta.algorithms.siamese import (balanced_pair_weights, bce_pair_losses, class_scores,
                                         contrastive_pair_losses, euclidean_distances, pair_labels,
                                         weighted_l1_logits)
from tinymeta.experiment import PRESETS, Config
from tinymeta.experiment.presets import preset_source
from tinymeta.nn import ConvNet
from tinymeta.optim import Adam
from tinymeta.tasks.base import MetaBatch
from tinymeta.testing import gradcheck, gradgradcheck

CLS = Objective("classification")


def t64(a, requires_grad=False):
    return tm.tensor(np.asarray(a, dtype=np.float64), dtype="float64", requires_grad=requires_grad)


def labels(a):
    return tm.tensor(np.asarray(a, dtype=np.int64))


def softplus(s):  # log(1 + e^s), written out for the hand values
    return math.log(1.0 + math.exp(s))


# ---- the heads and the losses against values worked by hand ------------------------------------------
# One task, 2-way one-shot: supports zs (class 0, class 1), queries zq (of class 0, of class 1).
ZS = [[[0.0, 0.0], [1.0, 1.0]]]
ZQ = [[[1.0, 0.0], [0.5, 0.5]]]
ALPHA = [1.0, -2.0]


def test_the_weighted_l1_logit_and_koch_p_by_hand():
    s = weighted_l1_logits(t64(ZQ), t64(ZS), t64(ALPHA)).numpy()
    # q0-s0: 1|1-0| - 2|0-0| = 1;   q0-s1: 1|1-1| - 2|0-1| = -2;   q1-s0 = q1-s1: 1(0.5) - 2(0.5) = -0.5
    np.testing.assert_allclose(s, [[[1.0, -2.0], [-0.5, -0.5]]], rtol=0, atol=1e-15)
    p = tm.sigmoid(t64(s)).numpy()
    np.testing.assert_allclose(p[0, 0], [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(2))], rtol=1e-15)
    with_bias = weighted_l1_logits(t64(ZQ), t64(ZS), t64(ALPHA), t64(0.25)).numpy()
    np.testing.assert_allclose(with_bias, [[[1.25, -1.75], [-0.25, -0.25]]], rtol=0, atol=1e-15)


def test_the_bce_task_loss_of_two_queries_by_hand():
    algo = Siamese(ConvNet(2), CLS, loss="bce")
    batch = SimpleNamespace(y_query=labels([[0, 1]]))
    scores = class_scores(weighted_l1_logits(t64(ZQ), t64(ZS), t64(ALPHA)), labels([[0, 1]]), 2)
    loss = algo.task_losses(scores, batch).numpy()
    # pair losses -[y log p + (1-y) log(1-p)] = log(1 + e^s) - y s:
    same0, diff0 = softplus(1.0) - 1.0, softplus(-2.0)    # query 0: same pair s = 1, different pair s = -2
    diff1, same1 = softplus(-0.5), softplus(-0.5) + 0.5   # query 1: different pair s = -0.5, same pair s = -0.5
    # each query: its one same pair weighs 1/2, its one different pair 1/2; the task: the mean over queries
    expected = 0.5 * (0.5 * same0 + 0.5 * diff0) + 0.5 * (0.5 * same1 + 0.5 * diff1)
    np.testing.assert_allclose(loss, [expected], rtol=1e-14)
    assert abs(expected - 0.4720855) < 1e-6  # 0.25 (0.313262 + 0.126928 + 0.974077 + 0.474077)


def test_the_contrastive_task_loss_of_two_queries_by_hand():
    zs = [[[0.0, 0.0], [3.0, 4.0]]]
    zq = [[[0.3, 0.4], [3.6, 4.8]]]  # query 0 (class 0): D = 0.5 and 4.5; query 1 (class 1): D = 6 and 1
    d = euclidean_distances(t64(zq), t64(zs)).numpy()
    np.testing.assert_allclose(d, [[[0.5, 4.5], [6.0, 1.0]]], rtol=1e-9)  # sqrt(D^2 + 1e-12)
    algo = Siamese(ConvNet(2), CLS, loss="contrastive", margin=5.0)
    scores = class_scores(-euclidean_distances(t64(zq), t64(zs)), labels([[0, 1]]), 2)
    loss = algo.task_losses(scores, SimpleNamespace(y_query=labels([[0, 1]]))).numpy()
    # same pairs D^2/2: 0.125 and 0.5; different pairs max(0, 5 - D)^2/2: (0.5)^2/2 = 0.125 and 0 (D = 6 > m)
    expected = 0.5 * (0.5 * 0.125 + 0.5 * 0.125) + 0.5 * (0.5 * 0.5 + 0.5 * 0.0)
    np.testing.assert_allclose(loss, [expected], rtol=1e-10)
    assert expected == 0.1875


def test_the_contrastive_convention_pulls_same_pairs_in_and_pushes_different_pairs_past_the_margin():
    """Hadsell et al. 2006, Eq. 4 uses Y = 0 for similar pairs; here same = 1 - Y. A swapped label fails."""
    d = t64([0.0, 0.5, 3.0])
    same = contrastive_pair_losses(d, t64([1.0, 1.0, 1.0]), margin=2.0).numpy()
    different = contrastive_pair_losses(d, t64([0.0, 0.0, 0.0]), margin=2.0).numpy()
    np.testing.assert_allclose(same, [0.0, 0.125, 4.5])            # D^2 / 2: zero only when the twins agree
    np.testing.assert_allclose(different, [2.0, 1.125, 0.0])       # max(0, m - D)^2 / 2: zero past the margin


def test_the_bce_is_stable_and_is_the_cross_entropy_of_the_sigmoid():
    s = t64([-40.0, -1.5, 0.0, 2.0, 40.0])
    for y in (0.0, 1.0):
        got = bce_pair_losses(s, t64([y] * 5)).numpy()
        p = 1 / (1 + np.exp(-np.array([-1.5, 0.0, 2.0])))
        expected = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got[1:4], expected, rtol=1e-12)
        np.testing.assert_allclose(got[[0, 4]], [40.0 * y, 40.0 * (1 - y)], atol=1e-15 + 1e-12)


# ---- the pairs of an episode ------------------------------------------------------------------------
def test_each_query_has_its_same_pairs_labelled_and_same_and_different_pairs_weigh_half_each():
    rng = np.random.default_rng(0)
    yq = rng.integers(0, 5, size=(3, 10))
    same = pair_labels(labels(yq), 5, dtype="float64").numpy()
    assert same.shape == (3, 10, 5)
    np.testing.assert_array_equal(same, (yq[..., None] == np.arange(5)).astype(float))  # same iff its class
    w = balanced_pair_weights(t64(same)).numpy()
    np.testing.assert_allclose((w * same).sum(-1), 0.5)        # a query's one same pair: 1/2
    np.testing.assert_allclose((w * (1 - same)).sum(-1), 0.5)  # its four different pairs: 1/8 each
    np.testing.assert_allclose(w[same == 0], 0.125)


def test_a_class_score_is_its_best_support_drawing():
    pair = t64([[[1.0, 5.0, -2.0, 0.5]]])                          # one query against 4 support drawings
    got = class_scores(pair, labels([[1, 0, 1, 0]]), 2).numpy()     # class 0: drawings 1, 3; class 1: 0, 2
    np.testing.assert_array_equal(got, [[[5.0, 1.0]]])


# ---- gradients, first and second order, float64 -----------------------------------------------------
@pytest.mark.parametrize("loss", ["bce", "contrastive"])
def test_the_task_loss_gradients_match_central_differences_to_second_order(loss):
    rng = np.random.default_rng(3)
    ys, yq = labels([[0, 1, 2, 0, 1, 2]]), labels([[2, 0, 1, 1]])   # 3-way 2-shot: the max over drawings too
    zs, zq = t64(rng.uniform(0, 1, (1, 6, 4)), True), t64(rng.uniform(0, 1, (1, 4, 4)), True)
    alpha, bias = t64(rng.standard_normal(4), True), t64(0.3, True)
    algo = Siamese(ConvNet(3), CLS, loss=loss, margin=0.9)
    batch = SimpleNamespace(y_query=yq)

    def f(zs, zq, alpha, bias):
        pair = weighted_l1_logits(zq, zs, alpha, bias) if loss == "bce" else -euclidean_distances(zq, zs)
        return algo.task_losses(class_scores(pair, ys, 3), batch)

    distances = euclidean_distances(zq, zs).numpy()
    assert np.abs(distances - 0.9).min() > 1e-3  # no pair on the margin's kink
    assert gradcheck(f, [zs, zq, alpha, bias])
    assert gradgradcheck(f, [zs, zq, alpha, bias])


def tiny_net(n_way=3):
    """2 blocks of [3x3 conv (2 filters), batch norm, ReLU, 2x2 max-pool] on 8x8 images: 8 features."""
    return ConvNet(n_way=n_way, filters=2, blocks=2, pool=True, image_size=8)


def tiny_episode(rng, tasks=1, n_way=3, queries=2):
    ys = np.tile(np.arange(n_way), (tasks, 1))
    yq = np.tile(np.repeat(np.arange(n_way), queries), (tasks, 1))
    xs = rng.uniform(0, 1, (tasks, n_way, 1, 8, 8))
    xq = rng.uniform(0, 1, (tasks, n_way * queries, 1, 8, 8))
    return MetaBatch(t64(xs), labels(ys), t64(xq), labels(yq))


@pytest.mark.parametrize("loss", ["bce", "contrastive"])
def test_the_meta_gradient_of_the_added_layers_matches_central_differences(loss):
    rng = np.random.default_rng(4)
    net = tiny_net()
    algo = Siamese(net, CLS, loss=loss, features=5)
    meta = algo.init_meta_params(net.init_params(0, dtype="float64"), np.random.default_rng(0))
    batch = tiny_episode(rng)
    keys = ["siamese_fc", "siamese_fc_b"] + (["siamese_alpha", "siamese_alpha_b"] if loss == "bce" else [])

    def f(*added):
        return algo.meta_loss({**meta, **dict(zip(keys, added))}, batch)[0]

    assert gradcheck(f, [meta[k] for k in keys])


# ---- one evaluation episode against plain NumPy -------------------------------------------------------
def numpy_twin(params, x, eps=1e-5):
    """The twin net in NumPy, loops and all: [conv 3x3 pad 1, batch norm over the images, ReLU, max-pool 2] x 2,
    flatten, then Koch's sigmoid layer. ``x`` (n, 1, 8, 8): the images that share batch statistics."""
    p = {k: v.numpy() for k, v in params.items()}
    for i in (1, 2):
        w, b = p[f"conv{i}"], p[f"conv{i}_b"]
        n, c, h, wd = x.shape
        pad = np.zeros((n, c, h + 2, wd + 2))
        pad[:, :, 1:-1, 1:-1] = x
        out = np.zeros((n, w.shape[0], h, wd))
        for o in range(w.shape[0]):
            for r in range(h):
                for s in range(wd):
                    out[:, o, r, s] = (pad[:, :, r:r + 3, s:s + 3] * w[o]).sum(axis=(1, 2, 3)) + b[o]
        mean = out.mean(axis=(0, 2, 3), keepdims=True)
        var = out.var(axis=(0, 2, 3), keepdims=True)
        out = (out - mean) / np.sqrt(var + eps) * p[f"bn{i}_w"][None, :, None, None] + p[f"bn{i}_b"][None, :, None, None]
        out = np.maximum(out, 0)
        x = out.reshape(n, out.shape[1], h // 2, 2, wd // 2, 2).max(axis=(3, 5))
    features = x.reshape(x.shape[0], -1)
    return 1 / (1 + np.exp(-(features @ p["siamese_fc"].T + p["siamese_fc_b"])))


@pytest.mark.parametrize("transductive", [True, False])
def test_one_evaluation_episode_matches_a_plain_numpy_forward(transductive):
    rng = np.random.default_rng(5)
    net = tiny_net()
    algo = Siamese(net, CLS, loss="bce", features=6, transductive=transductive)
    meta = algo.init_meta_params(net.init_params(1, dtype="float64"), np.random.default_rng(1))
    batch = tiny_episode(rng)
    out = algo.evaluate(meta, batch)
    xs, xq, alpha = batch.x_support.numpy()[0], batch.x_query.numpy()[0], meta["siamese_alpha"].numpy()
    bias = meta["siamese_alpha_b"].numpy()
    if transductive:  # supports and queries through batch norm together
        h = numpy_twin(meta, np.concatenate([xs, xq]))
        hs, hq = h[:3], h[3:]
    else:  # each query with the support set alone
        runs = [numpy_twin(meta, np.concatenate([xs, xq[q:q + 1]])) for q in range(len(xq))]
        hs_each, hq = [r[:3] for r in runs], np.stack([r[3] for r in runs])
    logits = np.zeros((len(xq), 3))
    for q in range(len(xq)):
        for n in range(3):
            support = hs if transductive else hs_each[q]
            logits[q, n] = (alpha * np.abs(hq[q] - support[n])).sum() + bias  # support drawing n: class n
    yq = batch.y_query.numpy()[0]
    same = (yq[:, None] == np.arange(3)).astype(float)
    pair_loss = np.logaddexp(0, logits) - same * logits
    weights = same * 0.5 + (1 - same) * 0.25
    assert out["loss"].shape == (1, 1) and out["accuracy"].shape == (1, 1)
    np.testing.assert_allclose(out["loss"][0, 0], (weights * pair_loss).sum(1).mean(), rtol=1e-10)
    np.testing.assert_allclose(out["accuracy"][0, 0], (logits.argmax(1) == yq).mean())
    scores = algo.episode_scores(meta, batch, transductive).numpy()[0]
    np.testing.assert_allclose(scores, logits, rtol=1e-10)


# ---- Koch's split and within-alphabet tasks -------------------------------------------------------------
def test_kochs_split_is_the_background_alphabets_then_ten_and_ten_evaluation_alphabets(omniglot_real):
    from tinymeta.tasks.omniglot import Omniglot, omniglot_splits
    s = omniglot_splits(omniglot_real, "koch")
    alphabets = {k: set(omniglot_real.alphabets[v]) for k, v in s.items()}
    assert len(s["train"]) == 964 and len(alphabets["train"]) == 30
    np.testing.assert_array_equal(s["train"], omniglot_real.indices("background"))
    assert len(alphabets["val"]) == 10 and len(alphabets["test"]) == 10 and not alphabets["val"] & alphabets["test"]
    np.testing.assert_array_equal(np.sort(np.concatenate([s["val"], s["test"]])), omniglot_real.indices("evaluation"))
    assert len(s["val"]) + len(s["test"]) == 659
    tasks = Omniglot(20, 1, 1, data=omniglot_real, split_mode="koch", rotations="none")
    for split in ("val", "test"):
        batch = tasks.sample(30, np.random.default_rng(0), split)
        task_alphabets = omniglot_real.alphabets[batch.info["classes"]]               # (30, 20)
        assert (task_alphabets == task_alphabets[:, :1]).all()                          # one alphabet per task
        assert all(len(set(c)) == 20 for c in batch.info["classes"])                   # 20 distinct characters
        assert set(task_alphabets[:, 0]) <= alphabets[split] and len(set(task_alphabets[:, 0])) > 3
    train = tasks.sample(30, np.random.default_rng(0), "train")
    assert max(len(set(a)) for a in omniglot_real.alphabets[train.info["classes"]]) > 1  # training: any characters
    largest = max(np.sum(omniglot_real.alphabets[s["test"]] == a) for a in alphabets["test"])
    with pytest.raises(ValueError, match=f"within one group .alphabet. and the largest has {largest} classes"):
        tasks.sample(1, np.random.default_rng(0), "test", n_way=largest + 1)
    with pytest.raises(ValueError, match="within one alphabet and its largest"):  # refused when built, too
        Omniglot(50, 1, 1, data=omniglot_real, split_mode="koch")


# ---- the config and the presets -------------------------------------------------------------------------
def test_the_learner_is_built_from_a_config_and_bad_settings_are_refused():
    cfg = SimpleNamespace(transductive=False, siamese_loss="contrastive", margin=2.5)
    algo = ALGORITHMS["siamese"].from_config(ConvNet(20), CLS, cfg)
    assert type(algo) is Siamese and (algo.loss, algo.margin, algo.transductive) == ("contrastive", 2.5, False)
    assert not algo.inner_loop
    base = PRESETS["siamese-omniglot-20w1s"]
    assert base.validate() and PRESETS["siamese-contrastive-omniglot-20w1s"].validate()
    for change, words in [({"siamese_loss": "hinge"}, "siamese_loss"), ({"margin": 0.0}, "margin"),
                          ({"margin": 2.0}, "--siamese-loss contrastive"), ({"ways": 1}, "2 ways or more")]:
        with pytest.raises(ValueError, match=words):
            base.replace(**change).validate()
    with pytest.raises(ValueError, match="--algorithm siamese"):
        Config(siamese_loss="contrastive").validate()
    with pytest.raises(ValueError, match="margin"):
        Siamese(ConvNet(2), CLS, loss="contrastive", margin=-1.0)


def test_the_presets_cite_the_paper_and_the_book():
    koch = preset_source("siamese-omniglot-20w1s")
    assert koch["paper_value"] == "92.0" and "Koch" in koch["paper"] and "none released" in koch["code"]
    assert all("Sec." in v for v in koch["settings"].values())
    book = preset_source("siamese-contrastive-omniglot-20w1s")
    assert book["paper_value"] is None and "Hadsell" in book["paper"] and "margin" in book["settings"]
    assert "Hands-On-Meta-Learning-With-Python@" in book["code"]
    cfg = PRESETS["siamese-omniglot-20w1s"]
    assert (cfg.ways, cfg.shots, cfg.queries, cfg.test_tasks, cfg.split_mode) == (20, 1, 1, 20, "koch")  # 400 trials


def test_presets_lists_the_siamese_cells_without_an_inner_loop():
    done = subprocess.run([sys.executable, "-m", "tinymeta", "presets"], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith("siamese")}
    assert set(rows) == {"siamese-omniglot-20w1s", "siamese-contrastive-omniglot-20w1s"}
    for row in rows.values():  # name, algorithm, order, dataset, ways, shots, queries, meta-batch, inner, meta...
        assert row[1:9] == ["siamese", "-", "omniglot", "20", "1", "1", "4", "none"]


# ---- a tiny run learns ----------------------------------------------------------------------------------
def prototype_tasks(rng, protos, tasks=4, n_way=3, queries=2, noise=0.15):
    """Tasks whose classes are fixed 8x8 patterns plus noise: a twin that learns them tells them apart."""
    pick = np.stack([rng.choice(len(protos), n_way, replace=False) for _ in range(tasks)])
    xs = protos[pick] + noise * rng.standard_normal((tasks, n_way, 1, 8, 8))
    yq = np.tile(np.repeat(np.arange(n_way), queries), (tasks, 1))
    xq = protos[np.take_along_axis(pick, yq, 1)] + noise * rng.standard_normal((tasks, n_way * queries, 1, 8, 8))
    return MetaBatch(t64(xs), labels(np.tile(np.arange(n_way), (tasks, 1))), t64(xq), labels(yq))


@pytest.mark.parametrize("loss", ["bce", "contrastive"])
def test_a_tiny_run_learns(loss):
    rng = np.random.default_rng(6)
    protos = rng.uniform(0, 1, (12, 1, 8, 8))
    net = tiny_net()
    algo = Siamese(net, CLS, loss=loss, features=16)
    meta = algo.init_meta_params(net.init_params(0, dtype="float64"), np.random.default_rng(0))
    test = prototype_tasks(np.random.default_rng(99), protos, tasks=20)
    before = algo.evaluate(meta, test)
    opt = Adam(meta, lr=0.03)
    for _ in range(60):
        grads, _ = algo.meta_gradient(meta, prototype_tasks(rng, protos))
        opt.step(grads)
    after = algo.evaluate(meta, test)
    assert after["loss"].mean() < 0.6 * before["loss"].mean()   # bce 0.70 -> 0.31, contrastive 0.12 -> 0.054
    assert after["accuracy"].mean() >= 0.85 and after["accuracy"].mean() > before["accuracy"].mean() + 0.15


# ---- the CLI, as a user types it ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["siamese-omniglot-20w1s", "siamese-contrastive-omniglot-20w1s"])
def test_train_a_siamese_preset_from_the_command_line(preset, tmp_path, omniglot_cache):
    env = {**os.environ, "TINYMETA_CACHE": str(omniglot_cache), "OPENBLAS_NUM_THREADS": "1"}
    logdir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--preset", preset, "--iterations", "3",
                           "--filters", "8", "--meta-batch", "2", "--val-interval", "2", "--val-tasks", "1",
                           "--test-tasks", "2", "--log-interval", "1", "--logdir", str(logdir),
                           "--data-dir", str(OMNIGLOT_DIR), "--no-progress"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "no inner loop" in done.stdout and "Traceback" not in done.stderr
    assert (logdir / "test.json").is_file() and (logdir / "checkpoint.npz").is_file()
