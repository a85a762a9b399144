"""The Omniglot presets compute what the original code computes (PROTOCOLS.md).

The references here are written independently of the code under test: a plain
NumPy forward pass of the reference network and central differences for its
gradient, so a shared mistake in tinymeta's ops or losses cannot hide.
"""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import MAML
from tinymeta.experiment import PRESETS, build_algorithm, build_model
from tinymeta.tasks.base import MetaBatch


def _conv_same_stride2(x, w, b):
    """tf.nn.conv2d(x, w, [1, 2, 2, 1], 'SAME') + b on (N, C, H, W): pad (total // 2, rest), then valid."""
    n, c, h, _ = x.shape
    out = -(-h // 2)
    total = max((out - 1) * 2 + 3 - h, 0)
    xp = np.pad(x, ((0, 0), (0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2)))
    y = np.zeros((n, w.shape[0], out, out))
    for i in range(out):
        for j in range(out):
            y[:, :, i, j] = np.einsum("nchw,ochw->no", xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3], w)
    return y + b[None, :, None, None]


def _maml_net(p, x, blocks=4):
    """MAML's Omniglot net (maml.py:210-225, utils.py:26-41): conv, BN (shift only, eps 1e-3), ReLU; mean; head."""
    for i in range(1, blocks + 1):
        x = _conv_same_stride2(x, p[f"conv{i}"], p[f"conv{i}_b"])
        mu = x.mean(axis=(0, 2, 3), keepdims=True)
        var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        x = np.maximum((x - mu) / np.sqrt(var + 1e-3) + p[f"bn{i}_b"][None, :, None, None], 0)
    return x.mean(axis=(2, 3)) @ p["head"].T + p["head_b"]


def _xent_over_k(p, x, y, k):
    """utils.py:58 and maml.py:90: sum over examples of softmax CE / K."""
    logits = _maml_net(p, x)
    logits = logits - logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].sum() / k


def _numerical_grad(f, p, keys, h=1e-5):
    g = {}
    for key in keys:
        g[key] = np.zeros_like(p[key])
        for idx in np.ndindex(p[key].shape):
            old = p[key][idx]
            p[key][idx] = old + h
            up = f(p)
            p[key][idx] = old - h
            down = f(p)
            p[key][idx] = old
            g[key][idx] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("shots", [1, 2])
def test_one_inner_step_of_the_maml_omniglot_preset_is_the_original_update(shots):
    """theta' = theta - 0.4 * grad(sum_i CE_i / K) on conv, conv bias and head; BN's shift untouched."""
    cfg = PRESETS[f"maml-omniglot-5w{1 if shots == 1 else 5}s"].replace(shots=shots, queries=shots, filters=2,
                                                                          dtype="float64")
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    assert isinstance(algo, MAML) and algo.inner_lr == 0.4
    rng = np.random.default_rng(0)
    params = model.init_params(rng, dtype="float64")
    params["bn2_b"] = tm.tensor(rng.normal(size=2), requires_grad=True)  # a non-zero shift, to see it kept
    assert not any(k.startswith("bn") and k.endswith("_w") for k in params)  # shift only: no scale
    x = (rng.random((1, 5 * shots, 1, 28, 28)) < 0.2).astype(np.float64)  # binary images, strokes 1
    y = np.tile(np.arange(5), shots)[None]
    batch = MetaBatch(tm.tensor(x), tm.tensor(y), tm.tensor(x), tm.tensor(y))
    fast = algo.adapted(params, batch)

    ref = {k: v.numpy().copy() for k, v in params.items()}
    adapted = [k for k in ref if not k.startswith("bn")]
    g = _numerical_grad(lambda p: _xent_over_k(p, x[0], y[0], shots), ref, adapted)
    for k in ref:
        want = ref[k] - 0.4 * g[k] if k in adapted else ref[k]
        np.testing.assert_allclose(fast[k].numpy()[0], want, rtol=1e-6, atol=1e-8, err_msg=k)


def test_every_omniglot_preset_cites_its_sources_for_real_fields():
    from dataclasses import fields

    from tinymeta.experiment.config import Config
    from tinymeta.experiment.presets import preset_source
    names = {f.name for f in fields(Config)}
    for name in PRESETS:
        if "omniglot" not in name:
            continue
        source = preset_source(name)
        assert source["paper"] and source["code"]
        unknown = set(source["settings"]) - names - {"command"}
        assert not unknown, f"{name} cites settings that are not Config fields: {sorted(unknown)}"


def test_presets_json_prints_every_preset_with_its_configuration_and_source(capsys):
    import json

    from tinymeta.experiment.cli import main
    assert main(["presets", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    from tinymeta.experiment.presets import RL_PRESETS
    assert [r["name"] for r in rows] == list(PRESETS) + list(RL_PRESETS)  # 2D navigation too
    maml = next(r for r in rows if r["name"] == "maml-omniglot-5w1s")
    assert maml["config"]["queries"] == 1 and maml["config"]["task_loss"] == "sum/shots"
    assert maml["source"]["paper_value"] == "98.7 +- 0.4" and "main.py:249" in maml["source"]["settings"]["queries"]


def test_meta_sgd_learns_rates_only_for_the_weights_its_inner_loop_adapts():
    """On MAML's Omniglot protocol batch norm's shift is not adapted, so it gets no learned rate."""
    cfg = PRESETS["meta-sgd-omniglot-5w1s"].replace(filters=2, dtype="float64")
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    meta = algo.init_meta_params(model.init_params(0, dtype="float64"), 0)
    rates = {k[len("lr/"):] for k in meta if k.startswith("lr/")}
    assert rates == {k for k in model.init_params(0) if not k.startswith("bn")}
    x = np.zeros((2, 5, 1, 28, 28))
    x[:, :, :, 10:14, 10:14] = np.arange(5)[None, :, None, None, None] / 5
    y = np.tile(np.arange(5), (2, 1))
    grads, _ = algo.meta_gradient(meta, MetaBatch(tm.tensor(x), tm.tensor(y), tm.tensor(x), tm.tensor(y)))
    assert set(grads) == set(meta)


# ---- Reptile (openai/supervised-reptile) --------------------------------------------------------------------------
def _adam_by_hand(theta, grads_of, steps, v, t, lr, b2=0.999, eps=1e-8):
    """Adam with beta1 = 0 (models.py:10), torch's form: phi -= lr g / (sqrt(v / (1 - b2^t)) + eps)."""
    phi = {k: a.copy() for k, a in theta.items()}
    v = {k: a.copy() for k, a in v.items()}
    for _ in range(steps):
        g = grads_of(phi)
        t += 1
        for k in phi:
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            phi[k] = phi[k] - lr * g[k] / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
    return phi, v, t


def test_after_two_reptile_tasks_adams_second_moment_and_step_count_carry_on():
    """reptile.py:62-72: only the weights are restored around a task, so task 2's Adam starts where task 1's ended."""
    from tinymeta.algorithms import Objective, Reptile
    from tinymeta.nn import MLP
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 1))
    batch = MetaBatch(tm.tensor(x), tm.tensor(y), tm.tensor(x), tm.tensor(y))
    theta = {"w1": rng.normal(size=(1, 3)), "b1": rng.normal(size=1)}
    algo = Reptile(MLP((3, 1)), Objective("regression", reduction="sum"), inner_lr=0.01, inner_steps=3,
                   inner_optimizer="adam", inner_state="persistent")
    grads, _ = algo.meta_gradient({k: tm.tensor(v, requires_grad=True) for k, v in theta.items()}, batch, rng=None)

    def grads_of(t):  # loss = sum_j (x_j . w + b - y_j)^2: its gradient by hand
        def g(p):
            r = x[t] @ p["w1"][0] + p["b1"][0] - y[t, :, 0]
            return {"w1": (2 * r @ x[t])[None], "b1": np.array([2 * r.sum()])}
        return g

    v, step, phis = {k: np.zeros_like(a) for k, a in theta.items()}, 0, []
    for t in range(2):  # one task after the other, each from theta, the second with the first's v and step
        phi, v, step = _adam_by_hand(theta, grads_of(t), 3, v, step, lr=0.01)
        phis.append(phi)
    state = algo.state_dict()
    assert state["inner/step"] == 6
    for k in theta:
        np.testing.assert_allclose(state[f"inner/exp_avg_sq/{k}"][0], v[k], rtol=1e-12)
        np.testing.assert_allclose(grads[k].numpy(), theta[k] - (phis[0][k] + phis[1][k]) / 2, rtol=1e-10)
    # a fresh optimizer per meta-batch is the other choice: there, task 2 starts from v = 0, t = 0
    fresh = Reptile(MLP((3, 1)), Objective("regression", reduction="sum"), inner_lr=0.01, inner_steps=3)
    g_fresh, _ = fresh.meta_gradient({k: tm.tensor(a, requires_grad=True) for k, a in theta.items()}, batch)
    second = _adam_by_hand(theta, grads_of(1), 3, {k: np.zeros_like(a) for k, a in theta.items()}, 0, 0.01)[0]
    for k in theta:
        np.testing.assert_allclose(g_fresh[k].numpy(), theta[k] - (phis[0][k] + second[k]) / 2, rtol=1e-10)
    assert fresh.state_dict() == {}


def test_reptile_evaluation_starts_each_task_from_the_training_state_and_keeps_it():
    """reptile.py:114,122: the full state (Adam's too) is saved before an evaluation task and restored after it."""
    from tinymeta.algorithms import Objective, Reptile
    from tinymeta.nn import MLP
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 4, 1))
    batch = MetaBatch(tm.tensor(x), tm.tensor(y), tm.tensor(x), tm.tensor(y))
    theta = {"w1": rng.normal(size=(1, 3)), "b1": rng.normal(size=1)}
    params = {k: tm.tensor(v, requires_grad=True) for k, v in theta.items()}
    algo = Reptile(MLP((3, 1)), Objective("regression", reduction="sum"), inner_lr=0.01, inner_steps=2,
                   inner_state="persistent")
    algo.meta_gradient(params, batch.tasks(slice(0, 2)))
    before = algo.state_dict()
    v0 = {k: before[f"inner/exp_avg_sq/{k}"][0] for k in theta}
    ev = algo.evaluate(params, batch, steps=4)
    after = algo.state_dict()
    assert after["inner/step"] == before["inner/step"] == 4
    for k in before:
        np.testing.assert_array_equal(np.asarray(after[k]), np.asarray(before[k]))
    for t in range(3):  # every task: 4 Adam steps from (theta, v0, step 4), by hand
        def g(p, t=t):
            r = x[t] @ p["w1"][0] + p["b1"][0] - y[t, :, 0]
            return {"w1": (2 * r @ x[t])[None], "b1": np.array([2 * r.sum()])}
        phi = _adam_by_hand(theta, g, 4, v0, 4, lr=0.01)[0]
        loss = ((x[t] @ phi["w1"][0] + phi["b1"][0] - y[t, :, 0]) ** 2).sum()
        np.testing.assert_allclose(ev["loss"][4, t], loss, rtol=1e-10)


def _bn_relu(x, w, b, eps=1e-3):
    """tf.layers.batch_normalization(training=True): the batch's statistics over (N, H, W), scale and shift."""
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return np.maximum((x - mu) / np.sqrt(var + eps) * w[None, :, None, None] + b[None, :, None, None], 0)


def _reptile_net(p, x):
    """Reptile's Omniglot net (models.py:20-25): 4 x [conv 'same' stride 2, BN, ReLU], flatten, dense."""
    for i in range(1, 5):
        x = _bn_relu(_conv_same_stride2(x, p[f"conv{i}"], p[f"conv{i}_b"]), p[f"bn{i}_w"], p[f"bn{i}_b"])
    return x.reshape(len(x), -1) @ p["head"].T + p["head_b"]


def _reptile_problem(transductive, seed=0):
    cfg = PRESETS["reptile-omniglot-5w1s"].replace(filters=3, dtype="float64", transductive=transductive)
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    rng = np.random.default_rng(seed)
    params = model.init_params(rng, dtype="float64")
    for i in range(1, 5):  # non-trivial scale and shift
        params[f"bn{i}_w"] = tm.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True)
        params[f"bn{i}_b"] = tm.tensor(rng.normal(size=3), requires_grad=True)
    xs = (rng.random((2, 5, 1, 28, 28)) < 0.8).astype(np.float64)  # two tasks, ink 0: strokes are 0
    xq = (rng.random((2, 5, 1, 28, 28)) < 0.8).astype(np.float64)
    y = np.tile(np.arange(5), (2, 1))
    return algo, params, xs, xq, y


def test_transductive_evaluation_puts_the_query_images_through_batch_norm_together_and_nothing_else():
    """reptile.py:126-128: the test inputs of a task go through the net together (the support set does not)."""
    algo, params, xs, xq, y = _reptile_problem(transductive=True)
    ref = {k: v.numpy() for k, v in params.items()}
    for support in (xs, 1 - xs):  # another support set changes nothing at the query
        batch = MetaBatch(tm.tensor(support), tm.tensor(y), tm.tensor(xq), tm.tensor(y))
        fast = {k: v.broadcast_to((2,) + v.shape) for k, v in params.items()}
        out = algo.query_predictions(params, fast, batch).numpy()
        for t in range(2):
            np.testing.assert_allclose(out[t], _reptile_net(ref, xq[t]), rtol=1e-9, atol=1e-10)


def test_non_transductive_evaluation_puts_each_query_image_through_with_the_support_set():
    """reptile.py:129-134: one pass per test example, inputs = the train set + that example; its prediction kept."""
    algo, params, xs, xq, y = _reptile_problem(transductive=False)
    ref = {k: v.numpy() for k, v in params.items()}
    batch = MetaBatch(tm.tensor(xs), tm.tensor(y), tm.tensor(xq), tm.tensor(y))
    fast = {k: v.broadcast_to((2,) + v.shape) for k, v in params.items()}
    out = algo.query_predictions(params, fast, batch).numpy()
    for t in range(2):
        for j in range(5):
            want = _reptile_net(ref, np.concatenate([xs[t], xq[t, j:j + 1]]))[-1]
            np.testing.assert_allclose(out[t, j], want, rtol=1e-9, atol=1e-10)
    assert not np.allclose(out[0], _reptile_net(ref, xq[0]))  # not the transductive answer


@pytest.mark.parametrize("name", ["anil", "nil"])
def test_non_transductive_anil_and_nil_features_pass_each_query_with_the_support_set(name):
    """ANIL's and NIL's evaluation work on body features: without transduction, each query's features
    come from one pass of the support set and that query (batch norm sees nothing else)."""
    cfg = PRESETS["anil-omniglot-20w1s"].replace(algorithm=name, ways=3, filters=3, dtype="float64",
                                                 transductive=False).validate()
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    rng = np.random.default_rng(1)
    params = model.init_params(rng, dtype="float64")
    xs, xq = rng.random((2, 3, 1, 28, 28)), rng.random((2, 4, 1, 28, 28))
    y = np.tile(np.arange(3), (2, 1))
    batch = MetaBatch(tm.tensor(xs), tm.tensor(y), tm.tensor(xq), tm.tensor(y[:, [0, 1, 2, 0]]))
    fs, fq = algo.features(params, batch)
    body = lambda x: model.body(params, tm.tensor(x[None])).numpy()[0]  # noqa: E731 (one task's pass)
    for t in range(2):
        np.testing.assert_allclose(fs.numpy()[t], body(xs[t]), rtol=1e-9, atol=1e-12)
        for j in range(4):
            want = body(np.concatenate([xs[t], xq[t, j:j + 1]]))[-1]
            np.testing.assert_allclose(fq.numpy()[t, j], want, rtol=1e-9, atol=1e-12)
    transductive = type(algo).from_config(model, algo.objective, cfg.replace(transductive=True))
    assert not np.allclose(transductive.features(params, batch)[1].numpy(), fq.numpy())


def test_reptile_minibatches_are_drawn_as_the_original_draws_them():
    """reptile.py:236-248: shuffle, cut, reshuffle each pass, a partial batch completed from the next pass."""
    from tinymeta.algorithms.reptile import minibatches
    for n, b, steps in [(25, 10, 7), (20, 10, 50), (5, 5, 3), (7, 3, 9)]:
        got = list(minibatches(n, b, steps, np.random.default_rng(n)))
        perms = np.random.default_rng(n)  # the same permutations, used the original's way
        want, cur = [], []
        while len(want) < steps:
            for s in perms.permutation(n):
                cur.append(s)
                if len(cur) < b:
                    continue
                want.append(cur)
                cur = []
                if len(want) == steps:
                    break
        assert len(got) == steps
        for g, w in zip(got, want):
            if g is None:  # the whole set: order is irrelevant (summed loss, pooled batch norm)
                assert sorted(w) == list(range(n))
            else:
                assert list(g) == w


def test_the_reptile_split_is_pythons_shuffle_of_the_sorted_characters(omniglot_real):
    """run_omniglot.py:22-24 and omniglot.py:28-49, recomputed from the character names."""
    import random

    from tinymeta.tasks import omniglot_splits
    data = omniglot_real
    by_alphabet = {}
    for a, c in zip(data.alphabets, data.characters):
        by_alphabet.setdefault(str(a), []).append(str(c))
    order = [f"{a}/{c}" for a in sorted(by_alphabet) for c in sorted(by_alphabet[a])]  # read_dataset's order
    random.seed(0)
    random.shuffle(order)
    split = omniglot_splits(data, "reptile")
    assert sorted(data.name(c) for c in split["train"]) == sorted(order[:1200])
    assert sorted(data.name(c) for c in split["test"]) == sorted(order[1200:])
    assert len(order) == 1623 and list(split["val"]) == list(split["test"])  # no validation split: monitoring only


def test_reptile_rotations_make_classes_of_the_training_characters_only(omniglot_real):
    """omniglot.py:51-63 augment_dataset on the training set only (run_omniglot.py:25-26)."""
    from tinymeta.tasks import Omniglot
    tasks = Omniglot(20, 1, 1, data=omniglot_real, split_mode="reptile", rotations="train-classes", ink=0)
    for split in ("val", "test"):
        b = tasks.sample(100, np.random.default_rng(1), split)
        assert (b.info["rotations"] == 0).all()
        t, idx = 5, b.info["support_images"][5]
        np.testing.assert_array_equal(b.x_support.numpy()[t, :, 0],
                                      1 - omniglot_real.images.reshape(-1, 28, 28)[idx] / np.float32(255))
    b = tasks.sample(300, np.random.default_rng(2), "train")
    assert np.bincount(b.info["rotations"].ravel(), minlength=4).min() > 1300  # 6000 draws, each angle ~1500
    pairs = b.info["classes"] * 4 + b.info["rotations"]
    assert all(len(set(p)) == 20 for p in pairs)  # distinct classes; one character may come twice, turned
    assert any(len(set(c)) < 20 for c in b.info["classes"])


@pytest.mark.parametrize("change, message", [
    (dict(inner_state="kept"), "inner_state .* must be one of fresh, persistent"),
    (dict(algorithm="maml", inner_state="fresh", eval_inner_batch=5), "Reptile's settings"),
    (dict(algorithm="maml", inner_state="persistent", eval_inner_batch=None), "Reptile's settings"),
    (dict(eval_inner_batch=0), "eval_inner_batch .* must be None or an integer >= 1"),
    (dict(rotations="sometimes"), "unknown rotations"),
    (dict(ink=255), "ink must be 1"),
    (dict(split_mode="random"), "split_mode .* must be one of maml, lake, reptile"),
])
def test_the_reptile_protocol_fields_refuse_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["reptile-omniglot-5w1s"].replace(**change).validate()


def test_the_reptile_presets_take_the_original_settings():
    for ways, shots in [(5, 1), (5, 5), (20, 1), (20, 5)]:
        cfg = PRESETS[f"reptile-omniglot-{ways}w{shots}s"]
        assert (cfg.inner_state, cfg.transductive, cfg.rotations, cfg.ink, cfg.split_mode) == \
            ("persistent", True, "train-classes", 0, "reptile")
        assert cfg.eval_inner_batch == (5 if ways == 5 else 10)  # README --eval-batch
        maml = PRESETS[f"maml-omniglot-{ways}w{shots}s"]
        assert (maml.inner_state, maml.rotations, maml.ink, maml.split_mode) == ("fresh", "per-task", 1, "maml")
