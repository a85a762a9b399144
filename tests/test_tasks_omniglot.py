"""Omniglot N-way K-shot tasks: splits, labels, rotations, pixels, seeds, limits, speed."""
from __future__ import annotations


import numpy as np
import pytest

import tinymeta as tm
from tinymeta.tasks import Omniglot, omniglot_splits
from tinymeta.tasks.omniglot import SPLIT_SEED





@pytest.fixture(scope="module")
def tasks(omniglot_real):
    return Omniglot(5, 1, 15, data=omniglot_real)


def expected_image(data, cls, drawing, rot):
    return np.rot90(data.images[cls, drawing], rot).astype(np.float32) / 255


# ---- splits -------------------------------------------------------------------------------------
def test_maml_split_sizes_disjoint_covering(omniglot_real):
    s = omniglot_splits(omniglot_real, "maml")
    assert {k: len(v) for k, v in s.items()} == {"train": 1100, "val": 100, "test": 423}
    allc = np.concatenate(list(s.values()))
    assert len(np.unique(allc)) == 1623 and set(allc) == set(range(1623))
    # irrespective of alphabet: every split mixes background and evaluation characters
    for pool in s.values():
        assert (pool < 964).any() and (pool >= 964).any()
    # pinned, so an accidental change of SPLIT_SEED or of the character order is caught
    assert SPLIT_SEED == 1
    assert [omniglot_real.name(i) for i in s["val"][:2]] == ["Alphabet_of_the_Magi/character07",
                                                            "Alphabet_of_the_Magi/character19"]


def test_lake_split(omniglot_real):
    s = omniglot_splits(omniglot_real, "lake")
    assert {k: len(v) for k, v in s.items()} == {"train": 864, "val": 100, "test": 659}
    assert np.array_equal(s["test"], omniglot_real.indices("evaluation"))
    assert np.array_equal(np.sort(np.concatenate([s["train"], s["val"]])), omniglot_real.indices("background"))
    with pytest.raises(ValueError, match="split_mode"):
        omniglot_splits(omniglot_real, "random")


def test_relationnet_split_sizes_disjoint_covering(omniglot_real):
    """Relation networks' rule (task_generator.py:34-39): random.seed(1) shuffle, 1200 train, 423 test."""
    import random

    from tinymeta.tasks.omniglot import relationnet_split, reptile_character_order
    s = omniglot_splits(omniglot_real, "relationnet")
    assert {k: len(v) for k, v in s.items()} == {"train": 1200, "val": 423, "test": 423}
    assert not set(s["train"]) & set(s["test"])
    assert set(np.concatenate([s["train"], s["test"]])) == set(range(1623))
    assert np.array_equal(s["val"], s["test"])  # no validation split in the original: monitoring on test
    # the rule itself, spelt out: Python's shuffle with seed 1 of the sorted character list
    order = reptile_character_order(omniglot_real)
    random.seed(1)
    random.shuffle(order)
    assert relationnet_split(omniglot_real) == (order[:1200], order[1200:])
    assert not np.array_equal(s["train"], omniglot_splits(omniglot_real, "reptile")["train"])  # seed 1, not 0


def test_whole_task_rotations_turn_every_class_of_a_task_alike(omniglot_real):
    """Relation networks' code draws one angle per episode for all its classes (one_shot.py:161, 213)."""
    tasks = Omniglot(5, 1, 2, data=omniglot_real, rotations="whole-task")
    b = tasks.sample(400, np.random.default_rng(0), split="test")
    rot = b.info["rotations"]
    assert (rot == rot[:, :1]).all()                       # one angle per task
    assert np.bincount(rot[:, 0], minlength=4).min() > 70  # all four, roughly uniform, at test too
    t = int(np.argmax(rot[:, 0] == 1))
    ys, xs = b.y_support.numpy()[t], b.x_support.numpy()[t]
    for j in range(5):
        c, d = b.info["classes"][t, ys[j]], b.info["support_drawings"][t, j]
        assert np.array_equal(xs[j, 0], expected_image(omniglot_real, c, d, 1))


# ---- batches ------------------------------------------------------------------------------------
def test_shapes_dtypes_device(tasks):
    b = tasks.sample(32, np.random.default_rng(0))
    assert b.x_support.shape == (32, 5, 1, 28, 28) and b.x_query.shape == (32, 75, 1, 28, 28)
    assert b.y_support.shape == (32, 5) and b.y_query.shape == (32, 75)
    assert b.x_support.dtype == np.float32 and b.y_support.dtype == np.int64
    assert b.device == "cpu" and b.y_query.device == "cpu"
    x = b.x_query.numpy()
    assert x.min() == 0.0 and x.max() == 1.0
    assert b.info["classes"].shape == (32, 5) and b.info["rotations"].shape == (32, 5)


@pytest.mark.parametrize("n, k, q", [(5, 1, 15), (5, 5, 15), (20, 1, 5), (3, 10, 10)])
def test_balanced_labels_and_consistent_pixels(omniglot_real, n, k, q):
    tasks = Omniglot(n, k, q, data=omniglot_real)
    b = tasks.sample(8, np.random.default_rng(n * 100 + k), split="test")
    ys, yq = b.y_support.numpy(), b.y_query.numpy()
    xs, xq = b.x_support.numpy(), b.x_query.numpy()
    info = b.info
    test_pool = set(tasks.pools["test"])
    for t in range(8):
        assert np.array_equal(np.bincount(ys[t], minlength=n), [k] * n)
        assert np.array_equal(np.bincount(yq[t], minlength=n), [q] * n)
        assert len(set(info["classes"][t])) == n and set(info["classes"][t]) <= test_pool
        for label in range(n):
            c, r = info["classes"][t, label], info["rotations"][t, label]
            s_draw = info["support_drawings"][t][ys[t] == label]
            q_draw = info["query_drawings"][t][yq[t] == label]
            # same character (image index // 20), never the same drawing
            assert (info["support_images"][t][ys[t] == label] // 20 == c).all()
            assert (info["query_images"][t][yq[t] == label] // 20 == c).all()
            assert len(set(s_draw)) == k and len(set(q_draw)) == q and not set(s_draw) & set(q_draw)
            # the pixels are that drawing of that character, with the class's rotation
            for x, dr in zip(xs[t][ys[t] == label], s_draw):
                assert np.array_equal(x[0], expected_image(omniglot_real, c, dr, r))
            for x, dr in zip(xq[t][yq[t] == label], q_draw):
                assert np.array_equal(x[0], expected_image(omniglot_real, c, dr, r))
            # by pixels alone: no query image repeats a support image of its class
            # (unless the cache itself holds two identical drawings: Braille 0192_03/_19)
            for x, dq in zip(xq[t][yq[t] == label], q_draw):
                for xsup, dsup in zip(xs[t][ys[t] == label], s_draw):
                    if not np.array_equal(omniglot_real.images[c, dq], omniglot_real.images[c, dsup]):
                        assert not np.array_equal(x, xsup)


def test_rotations_drawn_per_class_and_can_be_disabled(omniglot_real):
    b = Omniglot(5, 1, 1, data=omniglot_real).sample(200, np.random.default_rng(0), split="test")
    counts = np.bincount(b.info["rotations"].ravel(), minlength=4)
    assert counts.min() > 150  # all four angles, roughly uniform (1000 draws), at test too
    assert len({tuple(r) for r in b.info["rotations"]}) > 100  # per class per task, not per batch
    flat = Omniglot(5, 1, 1, data=omniglot_real, rotations="none").sample(20, np.random.default_rng(0))
    assert (flat.info["rotations"] == 0).all()
    t, idx = 3, flat.info["support_images"][3]
    assert np.array_equal(flat.x_support.numpy()[t, :, 0],
                          omniglot_real.images.reshape(-1, 28, 28)[idx] / np.float32(255))


def test_labels_and_order_are_shuffled(tasks):
    b = tasks.sample(64, np.random.default_rng(3))
    classes = b.info["classes"]
    # the class with label 0 is not always the smallest index: labels are a random assignment
    assert 0 < (np.argmin(classes, axis=1) == 0).mean() < 0.5
    yq = b.y_query.numpy()
    assert not (np.diff(yq, axis=1) >= 0).all()  # query examples are not grouped by label
    assert len({tuple(r) for r in b.y_support.numpy()}) > 20


def test_seeded_determinism(tasks):
    a = tasks.sample(4, np.random.default_rng(42))
    b = tasks.sample(4, np.random.default_rng(42))
    c = tasks.sample(4, np.random.default_rng(43))
    for name in ("x_support", "y_support", "x_query", "y_query"):
        assert np.array_equal(getattr(a, name).numpy(), getattr(b, name).numpy())
    for key in a.info:
        assert np.array_equal(a.info[key], b.info[key])
    assert not np.array_equal(a.info["classes"], c.info["classes"])
    assert not np.array_equal(a.x_query.numpy(), c.x_query.numpy())
    # consecutive samples from one generator differ
    rng = np.random.default_rng(0)
    assert not np.array_equal(tasks.sample(4, rng).info["classes"], tasks.sample(4, rng).info["classes"])


def test_splits_only_use_their_characters(omniglot_real, tasks):
    rng = np.random.default_rng(5)
    for split in ("train", "val", "test"):
        used = np.unique(tasks.sample(100, rng, split=split).info["classes"])
        assert set(used) <= set(tasks.pools[split])
    lake = Omniglot(5, 1, 15, data=omniglot_real, split_mode="lake")
    assert (lake.sample(50, rng, split="test").info["classes"] >= 964).all()
    assert (lake.sample(50, rng, split="train").info["classes"] < 964).all()


def test_float64_and_overrides(omniglot_real):
    b = Omniglot(5, 1, 15, data=omniglot_real, dtype="float64").sample(
        2, np.random.default_rng(0), n_way=10, k_support=2, k_query=3)
    assert b.x_support.dtype == np.float64 and b.x_support.shape == (2, 20, 1, 28, 28)
    assert b.x_query.shape == (2, 30, 1, 28, 28) and b.info["classes"].shape == (2, 10)


def test_limits_are_value_errors(omniglot_real, tasks):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"n_way=101 .*'val' split has only 100"):
        tasks.sample(1, rng, split="val", n_way=101)
    with pytest.raises(ValueError, match=r"= 21.*only 20"):
        tasks.sample(1, rng, k_support=6, k_query=15)
    with pytest.raises(ValueError, match="only 20 drawings"):
        Omniglot(5, 10, 11, data=omniglot_real)
    with pytest.raises(ValueError, match="only 100 characters"):
        Omniglot(101, 1, 1, data=omniglot_real)
    tasks.sample(1, rng, split="val", n_way=100, k_support=5, k_query=15)  # the limits themselves work
    with pytest.raises(ValueError, match="unknown split"):
        tasks.sample(1, rng, split="validation")
    with pytest.raises(TypeError, match="Generator"):
        tasks.sample(1, 123)


@pytest.mark.gpu
@pytest.mark.skipif(not tm.cuda_available(), reason="needs CuPy and a CUDA GPU")
def test_cuda_batch_matches_cpu(omniglot_real):
    g = Omniglot(5, 1, 15, data=omniglot_real, device="cuda").sample(4, np.random.default_rng(0))
    c = Omniglot(5, 1, 15, data=omniglot_real, device="cpu").sample(4, np.random.default_rng(0))
    assert g.device == "cuda" and g.y_support.device == "cuda"
    assert np.array_equal(g.x_query.numpy(), c.x_query.numpy())
    assert np.array_equal(g.y_query.numpy(), c.y_query.numpy())
