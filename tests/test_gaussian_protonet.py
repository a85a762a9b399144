"""Gaussian prototypical networks (Fort 2017): the confidence-weighted prototypes and distances by hand,
their gradients to second order, the reduction to prototypical networks, and the learner in the loop."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F
from tinymeta.algorithms import ALGORITHMS, GaussianProtoNet, Objective, ProtoNet, gaussian_protonet_scores
from tinymeta.algorithms.gaussian_protonet import gaussian_distances, gaussian_prototypes
from tinymeta.experiment.config import Config
from tinymeta.nn import ConvNet
from tinymeta.tasks.base import MetaBatch
from tinymeta.testing import gradcheck, gradgradcheck

from conftest import t64

CE = Objective("classification")


def softplus(x):
    return np.log1p(np.exp(x))


def test_a_two_way_episode_worked_by_hand():
    """Radius covariance, D = 1: class 0 at z = 0 and 2 with raw confidences 0 and 1, class 1 at z = 5."""
    zs = t64([[[0.0, 0.0], [2.0, 1.0], [5.0, -1.0]]])      # (T=1, S=3, D + 1): embedding, raw confidence
    ys = tm.tensor(np.array([[0, 0, 1]]))
    zq = t64([[[3.0, 7.0]]])                                # the query's own confidence is not used
    s0, s1, s2 = 1 + np.log(2.0), 1 + softplus(1.0), 1 + softplus(-1.0)
    p0 = (s0 * 0.0 + s1 * 2.0) / (s0 + s1)                  # weighted mean of class 0
    d0 = np.sqrt((s0 + s1) * (3.0 - p0) ** 2)               # class 0's inverse variance is the sum
    d1 = np.sqrt(s2 * (3.0 - 5.0) ** 2)
    logits = gaussian_protonet_scores(zs, ys, zq, 2, embed_dim=1)
    np.testing.assert_allclose(logits.numpy(), [[[-d0, -d1]]], rtol=1e-14)
    loss = F.cross_entropy(logits.reshape((1, 2)), tm.tensor(np.array([0])))
    np.testing.assert_allclose(loss.numpy(), -(-d0 - np.logaddexp(-d0, -d1)), rtol=1e-14)


def test_diagonal_covariance_weighs_each_dimension_by_hand():
    zs = t64([[[1.0, 3.0, 0.0, 2.0], [3.0, 5.0, -2.0, 0.0]]])   # D = 2, then two raw confidences
    ys = tm.tensor(np.array([[0, 0]]))
    zq = t64([[[0.0, 0.0, 9.0, 9.0]]])
    s = 1 + softplus(np.array([[0.0, 2.0], [-2.0, 0.0]]))       # (S, D)
    p = (s * np.array([[1.0, 3.0], [3.0, 5.0]])).sum(0) / s.sum(0)
    d = np.sqrt((s.sum(0) * (0.0 - p) ** 2).sum())
    np.testing.assert_allclose(gaussian_protonet_scores(zs, ys, zq, 1, embed_dim=2).numpy(), [[[-d]]], rtol=1e-14)


def test_equal_confidences_give_prototypical_networks_rescaled():
    """All S_i = s: the prototype is the class mean, S_c = K s, and d = sqrt(K s) ||z_q - c||."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 6, 4))
    raw = np.full((2, 6, 1), 0.7)
    zs, zq = t64(np.concatenate([z, raw], -1)), t64(np.concatenate([rng.standard_normal((2, 5, 4)),
                                                                      np.zeros((2, 5, 1))], -1))
    ys = tm.tensor(np.array([[0, 1, 2, 0, 1, 2]] * 2))
    ours = gaussian_protonet_scores(zs, ys, zq, 3, embed_dim=4).numpy()
    plain = ProtoNet(None, CE).scores({}, t64(z), ys, zq[..., :4], 3).numpy()    # -||z_q - c||^2
    s = 1 + softplus(0.7)
    np.testing.assert_allclose(ours, -np.sqrt(2 * s * -plain), rtol=1e-12)
    assert (ours.argmax(-1) == plain.argmax(-1)).all()


@pytest.mark.parametrize("extra", [1, 3])
def test_scores_differentiate_to_second_order(extra):
    rng = np.random.default_rng(extra)
    zs, zq = t64(rng.standard_normal((2, 4, 3 + extra))), t64(rng.standard_normal((2, 3, 3 + extra)))
    ys, yq = tm.tensor(np.array([[0, 1, 0, 1]] * 2)), tm.tensor(np.array([[1, 0, 1]] * 2))

    def loss(a, b):
        return F.cross_entropy(gaussian_protonet_scores(a, ys, b, 2, embed_dim=3), yq, reduction="none")

    assert gradcheck(loss, [zs, zq])
    assert gradgradcheck(loss, [zs, zq])


def test_prototypes_and_distances_keep_the_task_axis():
    rng = np.random.default_rng(3)
    z, prec = t64(rng.standard_normal((3, 4, 2))), t64(1 + rng.random((3, 4, 2)))
    ys = tm.tensor(np.array([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]]))
    zq = t64(rng.standard_normal((3, 5, 2)))
    p, total = gaussian_prototypes(z, prec, ys, 2)
    d = gaussian_distances(zq, p, total)
    for t in range(3):
        pt, tt = gaussian_prototypes(z[t:t + 1], prec[t:t + 1], ys[t:t + 1], 2)
        np.testing.assert_allclose(d.numpy()[t:t + 1], gaussian_distances(zq[t:t + 1], pt, tt).numpy(), rtol=1e-13)


def small_net(**kw):
    return ConvNet(n_way=5, filters=6, pool=True, padding=1, **kw)


def test_the_last_block_is_widened_for_the_confidence_and_the_head_dropped():
    for covariance, extra in (("radius", 1), ("diagonal", 6)):
        model = small_net()
        algo = GaussianProtoNet(model, CE, covariance=covariance)
        meta = algo.init_meta_params(model.init_params(0, dtype="float64"), np.random.default_rng(0))
        assert "head" not in meta and "head_b" not in meta
        assert meta["conv4"].shape == (6 + extra, 6, 3, 3) and meta["bn4_b"].shape == (6 + extra,)
        assert all(v.requires_grad for v in meta.values())
        x = tm.tensor(np.random.default_rng(1).random((2, 3, 1, 28, 28)), dtype="float64")
        assert algo.embed(meta, x).shape == (2, 3, 6 + extra)


def test_a_body_without_one_value_per_channel_is_refused():
    with pytest.raises(ValueError, match="one value per channel"):
        GaussianProtoNet(ConvNet(n_way=5, filters=6, pool=False, features="flatten"), CE)
    with pytest.raises(ValueError, match="covariance must be one of radius, diagonal"):
        GaussianProtoNet(small_net(), CE, covariance="full")


def test_built_from_a_config_and_the_setting_validated():
    cfg = Config(algorithm="gaussian-protonet", dataset="omniglot", pool=True, covariance="diagonal").validate()
    algo = ALGORITHMS[cfg.algorithm].from_config(small_net(), CE, cfg)
    assert isinstance(algo, GaussianProtoNet) and algo.covariance == "diagonal" and not algo.inner_loop
    with pytest.raises(ValueError, match=r"covariance \(--covariance\) must be one of radius, diagonal"):
        cfg.replace(covariance="spherical").validate()


def test_an_episode_trains_and_evaluates_without_an_inner_loop():
    """Tiny synthetic images: each class is a bright square at its own place; training lowers the loss."""
    rng = np.random.default_rng(0)

    def episode(n_tasks):
        x = rng.random((n_tasks, 3, 2, 1, 28, 28)) * 0.3
        for c in range(3):
            x[:, c, :, 0, 4 + 6 * c:10 + 6 * c, 4:10] += 1.0
        x = x.reshape(n_tasks, 6, 1, 28, 28)
        y = np.tile(np.repeat(np.arange(3), 2), (n_tasks, 1))
        xs, xq = x.reshape(n_tasks, 3, 2, 1, 28, 28)[:, :, :1], x.reshape(n_tasks, 3, 2, 1, 28, 28)[:, :, 1:]
        ys, yq = y.reshape(n_tasks, 3, 2)[:, :, 0], y.reshape(n_tasks, 3, 2)[:, :, 1]
        return MetaBatch(tm.tensor(xs.reshape(n_tasks, 3, 1, 28, 28)), tm.tensor(ys),
                         tm.tensor(xq.reshape(n_tasks, 3, 1, 28, 28)), tm.tensor(yq))

    model = small_net()
    algo = GaussianProtoNet(model, CE)
    meta = algo.init_meta_params(model.init_params(0), np.random.default_rng(0))
    opt = tm.optim.Adam(meta, lr=0.01)
    fixed = episode(8)
    before = algo.evaluate(meta, fixed)
    for _ in range(15):
        grads, metrics = algo.meta_gradient(meta, episode(4))
        opt.step(grads)
    after = algo.evaluate(meta, fixed, steps=10)
    assert before["loss"].shape == after["accuracy"].shape == (1, 8)      # one row: no inner loop
    assert after["loss"].mean() < 0.5 * before["loss"].mean()
    assert after["accuracy"].mean() == 1.0
