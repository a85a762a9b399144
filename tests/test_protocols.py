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
    assert [r["name"] for r in rows] == list(PRESETS)
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
