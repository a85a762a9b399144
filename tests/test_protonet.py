"""Prototypical networks and the contract of learners without an inner loop (issue 26).

Nothing here reuses the code under test as its reference: the loss is checked against
numbers worked out by hand, its gradient against central differences and a closed form,
an evaluation episode against a plain NumPy forward of the whole conv embedding
(convolution, batch norm, ReLU, max-pool written out below), and Vinyals' split against
the checksums of the original files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F
from tinymeta.algorithms import ALGORITHMS
from tinymeta.algorithms.common import Objective
from tinymeta.algorithms.metric import MetricLearner
from tinymeta.algorithms.protonet import ProtoNet, prototypes, protonet_scores, squared_distances
from tinymeta.experiment import PRESETS, Config
from tinymeta.experiment.checkpoint import load_checkpoint
from tinymeta.experiment.loop import scheduled_lr, train
from tinymeta.nn import MLP, ConvNet
from tinymeta.optim import Adam
from tinymeta.tasks import Omniglot, omniglot_splits
from tinymeta.tasks.base import MetaBatch
from tinymeta.tasks.omniglot_vinyals import (VINYALS_SHA256, VINYALS_SIZES, vinyals_characters, vinyals_lines,
                                             vinyals_sha256)
from tinymeta.testing import gradcheck, gradgradcheck

from conftest import OMNIGLOT_DIR, REPO

QUIET = {"progress": False, "echo": lambda *a, **k: None}


def f64(a, requires_grad=False):
    return tm.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def labels(a):
    return tm.tensor(np.asarray(a, dtype=np.int64))


# ---- the loss on a tiny 2-way example, by hand ---------------------------------------------------------
# support: class 0 at (0, 0) and (2, 0), class 1 at (0, 4); query (1, 1) of class 1
ZS, YS, ZQ, YQ = [[[0., 0.], [2., 0.], [0., 4.]]], [[0, 0, 1]], [[[1., 1.]]], [[1]]


def test_prototypes_distances_and_loss_by_hand():
    zs, ys, zq = f64(ZS), labels(YS), f64(ZQ)
    np.testing.assert_allclose(prototypes(zs, ys, 2).numpy(), [[[1., 0.], [0., 4.]]])  # class means
    # ||(1,1) - (1,0)||^2 = 1, ||(1,1) - (0,4)||^2 = 1 + 9 = 10
    np.testing.assert_allclose(squared_distances(zq, prototypes(zs, ys, 2)).numpy(), [[[1., 10.]]])
    s = protonet_scores(zs, ys, zq, 2)
    np.testing.assert_allclose(s.numpy(), [[[-1., -10.]]])
    # -log p(y=1) = 10 + log(e^-1 + e^-10) = 9 + log(1 + e^-9)
    loss = ProtoNet(MLP((2, 2, 2)), Objective("classification")).task_losses(s, MetaBatch(zs, ys, zq, labels(YQ)))
    np.testing.assert_allclose(loss.numpy(), [9 + np.log1p(np.exp(-9))], rtol=1e-12)


def test_prototypes_of_unequal_class_sizes_are_their_means():
    zs = f64([[[1.], [2.], [3.], [10.]]])
    np.testing.assert_allclose(prototypes(zs, labels([[0, 0, 0, 1]]), 2).numpy(), [[[2.], [10.]]])


def _loss(zs, zq):
    """The episode loss of the 2-way example as a function of the embeddings (float64)."""
    return F.cross_entropy(protonet_scores(zs, labels(YS), zq, 2), labels(YQ))


def test_the_loss_gradient_against_central_differences_and_to_second_order(rng):
    zs = f64(rng.standard_normal((1, 3, 2)), True)
    zq = f64(rng.standard_normal((1, 1, 2)), True)
    assert gradcheck(_loss, [zs, zq])
    assert gradgradcheck(_loss, [zs, zq])
    # and by hand: dL/dq = -2 sum_k (p_k - y_k)(q - c_k) (the logits are -||q - c_k||^2)
    q, c = zq.numpy()[0, 0], np.array([zs.numpy()[0, :2].mean(0), zs.numpy()[0, 2]])
    logits = -((q - c) ** 2).sum(1)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    expected = -2 * ((p - np.array([0., 1.]))[:, None] * (q - c)).sum(0)
    (g,) = tm.grad(_loss(zs, zq), [zq])
    np.testing.assert_allclose(g.numpy()[0, 0], expected, rtol=1e-10)


def test_the_loss_fails_the_gradient_check_when_the_distance_is_wrong(rng):
    """The check can fail: a distance whose backward is wrong (a detached prototype) is caught."""
    zs = f64(rng.standard_normal((1, 3, 2)), True)
    zq = f64(rng.standard_normal((1, 1, 2)), True)

    def wrong(zs, zq):
        c = prototypes(zs, labels(YS), 2)
        d = zq.unsqueeze(-2) - c.detach().unsqueeze(-3) + 0 * c.unsqueeze(-3)
        return F.cross_entropy(-(d * d).sum(axis=-1), labels(YQ))

    with pytest.raises(AssertionError):
        assert gradcheck(wrong, [zs, zq])


# ---- one evaluation episode against a plain NumPy forward -----------------------------------------------
def np_conv_embedding(p, x, blocks=4, eps=1e-5):
    """conv 3x3 (padding 1) + bias, batch norm (batch statistics of all of x), ReLU, 2x2 max-pool, flatten."""
    for i in range(1, blocks + 1):
        w, b = p[f"conv{i}"], p[f"conv{i}_b"]
        n, c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((n, w.shape[0], h, wd))
        for di in range(3):
            for dj in range(3):
                out += np.einsum("nchw,oc->nohw", xp[:, :, di:di + h, dj:dj + wd], w[:, :, di, dj])
        out += b[None, :, None, None]
        mean = out.mean(axis=(0, 2, 3), keepdims=True)
        var = out.var(axis=(0, 2, 3), keepdims=True)  # biased, as batch norm normalises in training mode
        out = (out - mean) / np.sqrt(var + eps) * p[f"bn{i}_w"][None, :, None, None] + p[f"bn{i}_b"][None, :, None, None]
        out = np.maximum(out, 0)
        h2, w2 = out.shape[2] // 2, out.shape[3] // 2
        x = out[:, :, :2 * h2, :2 * w2].reshape(n, -1, h2, 2, w2, 2).max(axis=(3, 5))
    return x.reshape(x.shape[0], -1)


def np_episode(zs, ys, zq, yq, n_way):
    """(loss, accuracy) of one episode from its embeddings: class means, squared distances, softmax."""
    c = np.stack([zs[ys == k].mean(0) for k in range(n_way)])
    logits = -((zq[:, None, :] - c[None]) ** 2).sum(-1)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(yq)), yq].mean(), (logits.argmax(1) == yq).mean()


def conv_episode(rng, T=2, n_way=3, k=2, q=2, filters=3):
    model = ConvNet(n_way=n_way, filters=filters, pool=True, padding=1, features="flatten")
    params = model.init_params(3, "float64")
    for key in params:  # a non-trivial batch norm: scales and shifts away from 1 and 0
        if key.startswith("bn"):
            params[key] = f64(rng.uniform(0.5, 1.5, params[key].shape) if key.endswith("_w")
                              else rng.uniform(-0.2, 0.2, params[key].shape), True)
    ys = np.stack([rng.permutation(np.repeat(np.arange(n_way), k)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(n_way), q)) for _ in range(T)])
    batch = MetaBatch(f64(rng.random((T, n_way * k, 1, 28, 28))), labels(ys),
                      f64(rng.random((T, n_way * q, 1, 28, 28))), labels(yq))
    return model, params, batch


def test_an_evaluation_episode_equals_a_numpy_forward_of_the_conv_embedding(rng):
    """Transductive (the default): each task's support and query images share batch statistics."""
    model, params, batch = conv_episode(rng)
    algo = ProtoNet(model, Objective("classification"))
    meta = algo.init_meta_params(params)
    assert "head" not in meta and "head_b" not in meta  # the support set decides the classes
    ev = algo.evaluate(meta, batch)
    assert ev["loss"].shape == (1, 2) and ev["accuracy"].shape == (1, 2)
    p = {k: v.numpy() for k, v in meta.items()}
    xs, xq = batch.x_support.numpy(), batch.x_query.numpy()
    ys, yq = batch.y_support.numpy(), batch.y_query.numpy()
    for t in range(2):
        z = np_conv_embedding(p, np.concatenate([xs[t], xq[t]]))
        loss, acc = np_episode(z[:len(xs[t])], ys[t], z[len(xs[t]):], yq[t], 3)
        np.testing.assert_allclose(ev["loss"][0, t], loss, rtol=1e-9)
        assert ev["accuracy"][0, t] == acc


def test_a_non_transductive_episode_passes_each_query_with_the_support_set_alone(rng):
    """Each query's scores come from a pass of the support set and that query only (their batch statistics)."""
    model, params, batch = conv_episode(rng)
    algo = ProtoNet(model, Objective("classification"), transductive=False)
    meta = algo.init_meta_params(params)
    ev = algo.evaluate(meta, batch)
    p = {k: v.numpy() for k, v in meta.items()}
    xs, xq = batch.x_support.numpy(), batch.x_query.numpy()
    ys, yq = batch.y_support.numpy(), batch.y_query.numpy()
    for t in range(2):
        losses, hits = [], []
        for j in range(len(xq[t])):
            z = np_conv_embedding(p, np.concatenate([xs[t], xq[t][j:j + 1]]))
            loss, acc = np_episode(z[:-1], ys[t], z[-1:], yq[t][j:j + 1], 3)
            losses.append(loss)
            hits.append(acc)
        np.testing.assert_allclose(ev["loss"][0, t], np.mean(losses), rtol=1e-9)
        np.testing.assert_allclose(ev["accuracy"][0, t], np.mean(hits))
    # and it differs from the transductive episode (other batch statistics)
    other = ProtoNet(model, Objective("classification")).evaluate(meta, batch)
    assert not np.allclose(other["loss"], ev["loss"])


def test_transductive_queries_share_statistics_and_non_transductive_ones_do_not(rng):
    model, params, batch = conv_episode(rng, T=1)
    algo = ProtoNet(model, Objective("classification"))
    meta = algo.init_meta_params(params)
    changed_x = batch.x_query.numpy().copy()
    changed_x[0, 0] = rng.random((1, 28, 28)) * 3  # another first query image
    changed = MetaBatch(batch.x_support, batch.y_support, f64(changed_x), batch.y_query)
    for transductive in (True, False):
        with tm.no_grad():
            a = algo.episode_scores(meta, batch, transductive).numpy()
            b = algo.episode_scores(meta, changed, transductive).numpy()
        others_moved = not np.allclose(a[0, 1:], b[0, 1:])
        assert others_moved == transductive  # the other queries' scores move only through shared statistics
        assert not np.allclose(a[0, 0], b[0, 0])


def test_non_transductive_passes_in_groups_give_the_same_scores(rng, monkeypatch):
    model, params, batch = conv_episode(rng)
    algo = ProtoNet(model, Objective("classification"), transductive=False)
    meta = algo.init_meta_params(params)
    with tm.no_grad():
        whole = algo.episode_scores(meta, batch, False).numpy()
        monkeypatch.setattr(ProtoNet, "max_pass_examples", 15)  # 2 passes of 7 images per group
        grouped = algo.episode_scores(meta, batch, False).numpy()
    np.testing.assert_allclose(grouped, whole, rtol=1e-12)


# ---- the task axis, from_config, the contract ---------------------------------------------------------------
def test_the_task_axis_gives_what_a_per_task_loop_gives(rng):
    model, params, batch = conv_episode(rng, T=3)
    algo = ProtoNet(model, Objective("classification"))
    meta = algo.init_meta_params(params)
    loss, _ = algo.meta_loss(meta, batch)
    grads = tm.grad(loss, list(meta.values()))
    per_task, per_grads = [], []
    for t in range(3):
        one = MetaBatch(*(a[t:t + 1] for a in (batch.x_support, batch.y_support, batch.x_query, batch.y_query)))
        lt, _ = algo.meta_loss(meta, one)
        per_task.append(lt.numpy())
        per_grads.append([g.numpy() for g in tm.grad(lt, list(meta.values()))])
    np.testing.assert_allclose(loss.numpy(), np.mean(per_task), rtol=1e-12)
    for i, g in enumerate(grads):  # the meta-loss is the mean over tasks
        np.testing.assert_allclose(g.numpy(), np.mean([pg[i] for pg in per_grads], axis=0), rtol=1e-9, atol=1e-12)


def test_from_config_and_the_contract():
    cfg = PRESETS["protonet-omniglot-5w1s"].replace(transductive=False)
    algo = ALGORITHMS["protonet"].from_config(ConvNet(5, pool=True, features="flatten"),
                                              Objective("classification"), cfg)
    assert isinstance(algo, ProtoNet) and isinstance(algo, MetricLearner)
    assert algo.inner_loop is False and algo.transductive is False
    assert repr(algo) == "ProtoNet(transductive=False)"
    with pytest.raises(TypeError, match="no inner loop"):
        next(iter(algo.adapt({}, None, 1)))


def test_a_short_training_run_learns_an_embedding_that_ignores_noise():
    """Classes differ in 4 coordinates and 4 others are loud noise: the learned embedding must tune the noise out."""
    def tasks(rng, T, n_way=3, k=2, q=5):
        centers = rng.standard_normal((T, n_way, 4))

        def draw(per):
            y = np.tile(np.repeat(np.arange(n_way), per), (T, 1))
            signal = centers[np.arange(T)[:, None], y] + 0.1 * rng.standard_normal((T, n_way * per, 4))
            return np.concatenate([signal, 3 * rng.standard_normal((T, n_way * per, 4))], -1), y
        (xs, ys), (xq, yq) = draw(k), draw(q)
        return MetaBatch(f64(xs), labels(ys), f64(xq), labels(yq))

    model = MLP((8, 16, 3))
    algo = ProtoNet(model, Objective("classification"))
    meta = algo.init_meta_params(model.init_params(0, "float64"))
    test = tasks(np.random.default_rng(1), 200)
    before = algo.evaluate(meta, test)["accuracy"].mean()
    opt, rng = Adam(meta, lr=1e-2), np.random.default_rng(0)
    for _ in range(150):
        grads, _ = algo.meta_gradient(meta, tasks(rng, 16))
        opt.step(grads)
    after = algo.evaluate(meta, test)["accuracy"].mean()
    assert before < 0.75 and after > 0.9 and after > before + 0.2, (before, after)


# ---- the step schedule and the training-episode sizes ---------------------------------------------------
def test_the_step_schedule_halves_the_rate_every_2000_iterations():
    cfg = PRESETS["protonet-omniglot-5w1s"]
    assert [scheduled_lr(cfg, i) for i in (0, 1999, 2000, 3999, 4000, 19999)] == [
        1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 1e-3 / 2 ** 9]


def test_step_schedule_settings_are_validated():
    base = Config(algorithm="protonet", dataset="omniglot", pool=True)
    with pytest.raises(ValueError, match="step needs lr_decay_every"):
        base.replace(lr_schedule="step").validate()
    with pytest.raises(ValueError, match="belong to the step schedule"):
        base.replace(lr_decay_every=100).validate()
    with pytest.raises(ValueError, match=r"lr_decay_factor.*\(0, 1\]"):
        base.replace(lr_schedule="step", lr_decay_every=10, lr_decay_factor=0.0).validate()
    base.replace(lr_schedule="step", lr_decay_every=10, lr_decay_factor=0.1).validate()


def test_train_ways_is_for_learners_without_an_inner_loop_only():
    with pytest.raises(ValueError, match="train_ways.*maml adapts a head"):
        PRESETS["maml-omniglot-5w1s"].replace(train_ways=60).validate()
    with pytest.raises(ValueError, match="train_ways.*is a number of classes"):
        Config(algorithm="protonet", dataset="sine", train_ways=3).validate()
    cfg = PRESETS["protonet-omniglot-20w1s"]
    assert Omniglot.ways_of(cfg) == 20 and Omniglot.ways_of(cfg, training=True) == 60
    assert Omniglot.sizes(cfg) == (1, 15) and Omniglot.sizes(cfg, training=True) == (1, 5)


def test_every_existing_preset_keeps_its_episode_sizes_and_schedule():
    for name, cfg in PRESETS.items():
        if cfg.algorithm == "protonet":
            continue
        if cfg.algorithm == "matching":  # trains on 15 queries per class, tests on 1 (its reimplementations)
            assert (cfg.train_ways, cfg.train_queries, cfg.queries, cfg.lr_decay_every) == (None, 15, 1, None), name
            continue
        assert cfg.train_ways is None and cfg.train_queries is None and cfg.lr_decay_every is None, name


def test_the_presets_follow_the_original_code():
    for (ways, shots), paper in {(5, 1): "98.8", (5, 5): "99.7", (20, 1): "96.0", (20, 5): "98.9"}.items():
        name = f"protonet-omniglot-{ways}w{shots}s"
        cfg = PRESETS[name].validate()
        assert (cfg.ways, cfg.shots, cfg.queries, cfg.train_ways, cfg.train_queries) == (ways, shots, 15, 60, 5)
        assert (cfg.meta_batch, cfg.meta_lr, cfg.lr_schedule, cfg.lr_decay_every) == (1, 1e-3, "step", 2000)
        assert (cfg.pool, cfg.conv_padding, cfg.features, cfg.task_loss, cfg.test_tasks) == (
            True, "symmetric", "flatten", "mean", 1000)
        assert (cfg.split_mode, cfg.rotations, cfg.ink) == ("vinyals-trainval", "all-classes", 1)
        from tinymeta.experiment.presets import preset_source
        src = preset_source(name)
        assert src["paper_value"] == paper and "Vinyals" in src["cell"]
        assert src["code"].startswith("jakesnell/prototypical-networks@")
        for field in ("train_ways", "train_queries", "queries", "lr_schedule", "split_mode", "rotations",
                      "test_tasks", "iterations", "transductive"):
            assert ":" in src["settings"][field], field  # file:line
    # the embedding is the original's: 64 features on 28x28 (4 x [conv 3x3 pad 1, BN, ReLU, max-pool 2])
    model = Omniglot.build_model(PRESETS["protonet-omniglot-5w1s"])
    assert model.features == 64 and model.pool and model.padding == 1 and model.bn_scale and model.bn_eps == 1e-5


# ---- Vinyals' split -----------------------------------------------------------------------------------
def test_vinyals_split_files_are_copied_faithfully():
    """The compact copy rebuilds the original files byte for byte (their SHA-256), and has the paper's counts."""
    for split, digest in VINYALS_SHA256.items():
        assert vinyals_sha256(split) == digest, split
    assert {s: len(vinyals_characters(s)) for s in VINYALS_SIZES} == {"train": 1028, "val": 172, "test": 423}
    assert len(vinyals_characters("trainval")) == 1200
    assert vinyals_lines("trainval").count("\n") == 4800 and vinyals_lines("test").count("\n") == 1692
    sets = [set(vinyals_characters(s)) for s in ("train", "val", "test")]
    assert sum(map(len, sets)) == 1623 and len(set.union(*sets)) == 1623  # disjoint, all 1623
    # Gurmukhi is the one alphabet cut in two: characters 1-41 train, 42-45 test
    assert ("Gurmukhi", "character41") in sets[0] and ("Gurmukhi", "character42") in sets[2]


def test_vinyals_split_on_the_data_is_disjoint_and_covering(omniglot_real):
    s = omniglot_splits(omniglot_real, "vinyals")
    assert {k: len(v) for k, v in s.items()} == {"train": 1028, "val": 172, "test": 423}
    allc = np.concatenate(list(s.values()))
    assert len(np.unique(allc)) == 1623
    assert {omniglot_real.name(i) for i in s["test"]} == {f"{a}/{c}" for a, c in vinyals_characters("test")}
    tv = omniglot_splits(omniglot_real, "vinyals-trainval")
    assert len(tv["train"]) == 1200 and set(tv["train"]) == set(s["train"]) | set(s["val"])
    np.testing.assert_array_equal(tv["test"], s["test"])


def test_all_classes_rotations_make_every_rotation_a_class_in_every_split(omniglot_real):
    tasks = Omniglot(20, 1, 1, data=omniglot_real, split_mode="vinyals", rotations="all-classes")
    for split, chars in (("train", 1028), ("test", 423)):
        b = tasks.sample(400, np.random.default_rng(0), split)
        rot, cls = b.info["rotations"], b.info["classes"]
        assert set(np.unique(rot)) == {0, 1, 2, 3}  # test classes are turned too
        pairs = set(zip(cls.ravel(), rot.ravel()))
        assert len(pairs) > chars  # more distinct classes than characters: rotations count as classes
        for t in range(50):  # the classes of a task are distinct (character, rotation) pairs
            assert len(set(zip(cls[t], rot[t]))) == 20
        x, info = b.x_support.numpy(), b.info
        t, j = 0, 0
        c, d, r = info["classes"][t, b.y_support.numpy()[t, j]], info["support_drawings"][t, j], None
        r = info["rotations"][t, b.y_support.numpy()[t, j]]
        np.testing.assert_array_equal(x[t, j, 0], np.rot90(omniglot_real.images[c, d], r) / 255)
    # 60-way training is possible on 1028 characters x 4, and the validation split serves 688 classes
    Omniglot(60, 5, 5, data=omniglot_real, split_mode="vinyals", rotations="all-classes").sample(
        1, np.random.default_rng(0), "val")


def test_rotating_before_or_after_the_nearest_resize_gives_the_same_image():
    """The original turns the 105x105 drawing, then resizes it (protonets/data/omniglot.py:50-51); tinymeta
    turns the 28x28 resize. Pillow resizes a 1-bit image by nearest neighbour, which commutes with quarter turns."""
    Image = pytest.importorskip("PIL.Image")
    bits = np.random.default_rng(0).random((105, 105)) > 0.5
    img = Image.fromarray(bits).convert("1")
    for quarter in (1, 2, 3):
        a = np.array(img.rotate(90 * quarter).resize((28, 28), resample=Image.LANCZOS))
        b = np.rot90(np.array(img.resize((28, 28), resample=Image.LANCZOS)), quarter)
        np.testing.assert_array_equal(a, b)


# ---- the CLI and the loop with real data ---------------------------------------------------------------------
TINY = ["--filters", "4", "--train-ways", "5", "--train-queries", "2", "--val-interval", "2", "--val-tasks", "2",
        "--test-tasks", "3", "--log-interval", "1"]


@pytest.mark.slow  # a few seconds: real Omniglot, a whole run
def test_train_a_protonet_preset_from_the_command_line(tmp_path, omniglot_cache):
    if not (OMNIGLOT_DIR / "images_background.zip").is_file():
        pytest.skip("real Omniglot not found")
    env = dict(os.environ, TINYMETA_CACHE=str(omniglot_cache), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--preset", "protonet-omniglot-5w1s",
                          "--iterations", "3", *TINY, "--data-dir", str(OMNIGLOT_DIR), "--logdir", str(tmp_path / "r")],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "no inner loop" in out.stdout
    test = json.loads((tmp_path / "r" / "test.json").read_text())
    assert len(test["accuracy"]) == 1 and test["tasks"] == 3  # one row: no inner steps to report


def test_the_cli_refuses_a_regression_dataset_for_prototypical_networks(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--algorithm", "protonet", "--dataset", "sine",
                          "--logdir", str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "error: protonet answers a query with one of its support set's classes: it needs a classification " \
           "dataset (sine is regression)" in out.stderr


def test_the_cli_refuses_inner_loop_settings_for_a_learner_without_one(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--preset", "protonet-omniglot-5w1s",
                          "--inner-lr", "0.4", "--logdir", str(tmp_path / "r")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "error: --inner-lr sets the inner loop, and protonet has none" in out.stderr


def test_evaluate_refuses_steps_for_a_run_without_an_inner_loop(tmp_path, omniglot_cache, monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    cfg = PRESETS["protonet-omniglot-5w1s"].replace(filters=4, train_ways=5, train_queries=2, iterations=1,
                                                    val_interval=0, test_tasks=2)
    train(cfg, tmp_path / "r", data_dir=OMNIGLOT_DIR, evaluate_at_end=False, **QUIET)
    env = dict(os.environ, TINYMETA_CACHE=str(omniglot_cache), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "tinymeta", "evaluate", "--logdir", str(tmp_path / "r"),
                          "--tasks", "2", "--steps", "3"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "error: --steps 3: protonet has no inner loop" in out.stderr


@pytest.mark.slow  # a few seconds: real Omniglot, a whole run
def test_a_protonet_run_resumes_with_the_numbers_of_an_uninterrupted_run(tmp_path, omniglot_cache, monkeypatch):
    """Across a decay of the step schedule (every 2 iterations here) and the 5-way training episodes."""
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    cfg = PRESETS["protonet-omniglot-5w1s"].replace(filters=4, train_ways=5, train_queries=2, iterations=5,
                                                    lr_decay_every=2, val_interval=0, test_tasks=3,
                                                    log_interval=1, checkpoint_interval=3)
    straight = train(cfg, tmp_path / "a", data_dir=OMNIGLOT_DIR, **QUIET)
    first = train(cfg, tmp_path / "b", data_dir=OMNIGLOT_DIR, stop_at=3, **QUIET)
    assert first["status"] == "stopped" and first["iteration"] == 3
    second = train(cfg, tmp_path / "b", data_dir=OMNIGLOT_DIR, resume=True, **QUIET)
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.npz"), load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert "head" not in a.params
    for k in a.params:
        np.testing.assert_array_equal(a.params[k].numpy(), b.params[k].numpy())
    assert straight["test"]["loss"] == second["test"]["loss"]
    assert straight["test"]["accuracy"] == second["test"]["accuracy"]


def test_the_training_episodes_have_60_ways_and_5_queries_and_the_test_episodes_the_cell_s(omniglot_cache,
                                                                                          monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    from tinymeta.experiment.factories import TaskSource
    source = TaskSource(PRESETS["protonet-omniglot-20w5s"], "cpu", data_dir=OMNIGLOT_DIR, verbose=False)
    b = source.train(np.random.default_rng(0))
    assert b.x_support.shape == (1, 60 * 5, 1, 28, 28) and b.x_query.shape == (1, 60 * 5, 1, 28, 28)
    assert b.y_support.numpy().max() == 59 and b.n_way == 60
    t = next(source.fixed("test", 2))
    assert t.x_support.shape == (1, 20 * 5, 1, 28, 28) and t.x_query.shape == (1, 20 * 15, 1, 28, 28)
    assert set(np.unique(t.info["rotations"])) <= {0, 1, 2, 3} and source.evaluation.split_mode == "vinyals-trainval"


# ---- report and bench know the cells ---------------------------------------------------------------------------
def test_the_report_lists_the_protonet_cells_on_vinyals_split_and_plans_them_from_the_bench(tmp_path):
    from tinymeta.experiment.report import omniglot_plan, omniglot_table
    runs = tmp_path / "runs"
    (runs / "protonet-omniglot-5w1s").mkdir(parents=True)
    row = {"mean": 0.95, "ci95": 0.002, "std": 0.03, "n": 1000}
    (runs / "protonet-omniglot-5w1s" / "test.json").write_text(json.dumps(
        {"split": "test", "tasks": 1000, "steps": 0, "accuracy": [row], "iteration": 4000, "train_seconds": 60.0,
         "device": "cpu"}))
    (runs / "protonet-omniglot-5w1s" / "status.json").write_text(json.dumps({"status": "stopped", "iteration": 4000}))
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in omniglot_table(runs)[2:]}
    assert set(rows) >= {f"protonet-omniglot-{c}" for c in ("5w1s", "5w5s", "20w1s", "20w5s")}
    assert rows["protonet-omniglot-5w1s"][1] == "98.8 (ProtoNet, Table 1, Vinyals' split)"
    assert rows["protonet-omniglot-5w1s"][2] == "95.00 ± 0.20 no inner loop (1000 tasks)"
    assert "4000 (20000), stopped early" in rows["protonet-omniglot-5w1s"][4]
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"device": "cpu", "threads": "1", "machine": "x86_64, 2 cores", "date": "2026-12-06",
                                 "groups": {"algorithms": [{"name": "x", "preset": "protonet-omniglot-5w1s",
                                                            "value": 1800.0, "unit": "ms"}]}}))
    plan = [line for line in omniglot_plan(runs, bench) if line.startswith("| protonet-omniglot-5w1s |")]
    assert plan == ["| protonet-omniglot-5w1s | 4000 of 20000 | 16000 | 1.80 |  | 8.0 |"]  # 16,000 x 1.8 s = 8 h


def test_bench_times_the_60_way_training_iteration_of_a_protonet_cell(monkeypatch):
    from tinymeta.experiment.bench import algorithm_benchmarks, default_presets, random_batch
    assert "protonet-omniglot-5w1s" in default_presets("cpu") and "protonet-sine-10shot" not in default_presets("cpu")
    b = random_batch(PRESETS["protonet-omniglot-20w1s"], "cpu", np.random.default_rng(0))
    assert b.x_support.shape[1] == 60 and b.x_query.shape[1] == 300  # 60-way 1-shot, 5 queries per class
    assert b.n_way == 60 and b.task(0).n_way == 60  # known to the sampler: no device read for it
    monkeypatch.setitem(PRESETS, "protonet-tiny", PRESETS["protonet-omniglot-5w1s"].replace(filters=2, train_ways=3))
    (row,) = algorithm_benchmarks("cpu", repeat=1, presets=["protonet-tiny"])
    assert row["preset"] == "protonet-tiny" and "no inner loop, 3-way 1-shot, Q=5" in row["name"]
