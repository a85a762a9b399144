"""Semi-supervised prototypical networks (Ren et al. 2018): the refinements by hand and in plain NumPy, their
gradients to second order, the episodes with unlabeled examples and distractors, and the settings' checks."""
import math

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F
from tinymeta.algorithms import ALGORITHMS, Objective, ProtoNet, SemiProtoNet, soft_kmeans_step
from tinymeta.algorithms.semi_protonet import distance_statistics, radius_logits
from tinymeta.experiment.config import Config
from tinymeta.nn import ConvNet
from tinymeta.tasks.base import MetaBatch
from tinymeta.testing import gradcheck, gradgradcheck

from conftest import run_cli, t64

CE = Objective("classification")


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_one_soft_kmeans_step_worked_by_hand():
    """Labeled 0 (class 0) and 4 (class 1), one unlabeled example at 1: it pulls class 0 much more than 1."""
    zs, zu = t64([[[0.0], [4.0]]]), t64([[[1.0]]])
    onehot = t64([[[1.0, 0.0], [0.0, 1.0]]])
    p = t64([[[0.0], [4.0]]])
    new, r = soft_kmeans_step(p, zs, onehot, zu, lambda c, z: -((z.unsqueeze(-2) - c.unsqueeze(-3)) ** 2).sum(-1))
    r0, r1 = 1 / (1 + math.exp(-8.0)), 1 / (1 + math.exp(8.0))    # softmax(-1, -9)
    np.testing.assert_allclose(r.numpy(), [[[r0, r1]]], rtol=1e-14)
    np.testing.assert_allclose(new.numpy(), [[[r0 / (1 + r0)], [(4 + r1) / (1 + r1)]]], rtol=1e-14)


def test_the_distractor_cluster_logits_by_hand():
    p, z = t64([[[0.0, 0.0], [3.0, 4.0]]]), t64([[[3.0, 0.0]]])
    radii = t64([[[1.0, 100.0]]])
    want = [-9.0 / 2 - 0.5 * math.log(2 * math.pi), -(0.0 + 16.0) / (2 * 1e4) - 0.5 * math.log(2 * math.pi)
            - math.log(100.0)]
    np.testing.assert_allclose(radius_logits(p, z, radii).numpy(), [[want]], rtol=1e-14)


def test_distance_statistics_against_numpy():
    d = np.random.default_rng(0).random((2, 3, 7)) * 5
    n = d / d.mean(-1, keepdims=True)
    m, v = n.mean(-1, keepdims=True), n.var(-1, keepdims=True)
    want = np.concatenate([n.min(-1, keepdims=True), n.max(-1, keepdims=True), v,
                           ((n - m) ** 3 / v ** 1.5).mean(-1, keepdims=True),
                           ((n - m) ** 4 / v ** 2 - 3).mean(-1, keepdims=True)], -1)
    np.testing.assert_allclose(distance_statistics(t64(d)).numpy(), want, rtol=1e-12)


def numpy_refinement(zs, ys, zu, zq, n, refinement, steps, params):
    """The three refinements of Ren et al. in plain NumPy (one task), for the comparison below."""
    onehot = np.eye(n)[ys]
    p = (onehot.T @ zs) / onehot.sum(0)[:, None]
    sq = lambda a, c: ((a[:, None] - c[None]) ** 2).sum(-1)    # noqa: E731
    if refinement == "distractor-cluster":
        p = np.vstack([p, np.zeros_like(p[:1])])
        onehot = np.hstack([onehot, np.zeros((len(ys), 1))])
        radii = np.append(np.ones(n), np.exp(params["log_distractor_radius"]))
        logit = lambda a, c: -sq(a, c) / (2 * radii ** 2) - (0.5 * np.log(2 * np.pi) + np.log(radii))  # noqa: E731
    else:
        logit = lambda a, c: -sq(a, c)                             # noqa: E731
    if refinement == "masked":
        d = sq(p, zu)                                              # (N, U)
        nd = d / d.mean(-1, keepdims=True)
        m, v = nd.mean(-1, keepdims=True), nd.var(-1, keepdims=True)
        stats = np.concatenate([nd.min(-1, keepdims=True), nd.max(-1, keepdims=True), v,
                                ((nd - m) ** 3 / v ** 1.5).mean(-1, keepdims=True),
                                ((nd - m) ** 4 / v ** 2 - 3).mean(-1, keepdims=True)], -1)
        out = np.tanh(stats @ params["mask_w1"].T + params["mask_b1"]) @ params["mask_w2"].T + params["mask_b2"]
        scale, start, add = np.exp(out[:, 2]), np.exp(out[:, 0]), out[:, 1]
        for t in range(steps):
            neg = -sq(zu, p)
            bias = start if steps == 1 else start + t / (steps - 1) * add
            mask = 1 / (1 + np.exp(-(neg / (-neg).mean(0) + bias) * scale))
            r = np_softmax(neg) * mask * mask
            p = (onehot.T @ zs + r.T @ zu) / (onehot.sum(0) + r.sum(0))[:, None]
        return logit(zq, p)
    for _ in range(steps):
        r = np_softmax(logit(zu, p))
        p = (onehot.T @ zs + r.T @ zu) / (onehot.sum(0) + r.sum(0))[:, None]
    return logit(zq, p)


@pytest.mark.parametrize("refinement", ["soft-kmeans", "distractor-cluster", "masked"])
@pytest.mark.parametrize("steps", [1, 3])
def test_each_refinement_against_a_plain_numpy_forward(refinement, steps):
    rng = np.random.default_rng(steps)
    T, N, D, U, Q = 2, 3, 4, 5, 4
    algo = SemiProtoNet(None, CE, refinement=refinement, cluster_steps=steps)
    params = algo.extra_params(np.random.default_rng(9), dtype="float64", device=None)
    if refinement == "distractor-cluster":
        params["log_distractor_radius"] = t64(np.log(2.5))   # a radius at which the distractor cluster matters
    if refinement == "masked":
        params = {k: t64(rng.standard_normal(v.shape)) for k, v in params.items()}
    zs, zu, zq = rng.standard_normal((T, 2 * N, D)), rng.standard_normal((T, U, D)), rng.standard_normal((T, Q, D))
    ys = np.array([[0, 1, 2, 2, 1, 0], [2, 0, 1, 0, 1, 2]])
    ours = algo.refined_scores(params, t64(zs), tm.tensor(ys), t64(zu), t64(zq), N).numpy()
    plain = {k: v.numpy() for k, v in params.items()}
    for t in range(T):
        np.testing.assert_allclose(ours[t], numpy_refinement(zs[t], ys[t], zu[t], zq[t], N, refinement, steps, plain),
                                   rtol=1e-11, atol=1e-12)


def test_without_unlabeled_examples_it_is_prototypical_networks():
    rng = np.random.default_rng(0)
    zs, zq = t64(rng.standard_normal((2, 4, 3))), t64(rng.standard_normal((2, 5, 3)))
    ys = tm.tensor(np.array([[0, 1, 0, 1]] * 2))
    ours = SemiProtoNet(None, CE).refined_scores({}, zs, ys, t64(np.zeros((2, 0, 3))), zq, 2)
    np.testing.assert_allclose(ours.numpy(), ProtoNet(None, CE).scores({}, zs, ys, zq, 2).numpy(), rtol=1e-14)


@pytest.mark.parametrize("refinement", ["soft-kmeans", "distractor-cluster", "masked"])
def test_refined_scores_differentiate_to_second_order(refinement, monkeypatch):
    rng = np.random.default_rng(4)
    algo = SemiProtoNet(None, CE, refinement=refinement, cluster_steps=2)
    extra = {k: t64(v.numpy() + (0.3 * rng.standard_normal(v.shape) if refinement == "masked" else 0.0))
             for k, v in algo.extra_params(np.random.default_rng(1), "float64", None).items()}
    if refinement == "distractor-cluster":
        extra["log_distractor_radius"] = t64(np.log(1.5))
    names = sorted(k for k in extra if k != "mask_w1")     # the 100 first-layer weights: a constant, for speed
    ys, yq = tm.tensor(np.array([[0, 1, 0, 1]])), tm.tensor(np.array([[1, 0, 1]]))

    def loss(zs, zu, zq, *values):
        s = algo.refined_scores({**extra, **dict(zip(names, values))}, zs, ys, zu, zq, 2)
        return F.cross_entropy(s, yq, reduction="none")

    inputs = [t64(rng.standard_normal((1, 4, 3))), t64(rng.standard_normal((1, 3, 3))),
              t64(rng.standard_normal((1, 3, 3)))] + [extra[k] for k in names]
    if refinement == "masked":  # its distance statistics are constants (stop_gradient): freeze them for the check
        from tinymeta.algorithms import semi_protonet
        fixed = semi_protonet.distance_statistics(
            semi_protonet.squared_distances(semi_protonet.prototypes(inputs[0], ys, 2), inputs[1]))
        monkeypatch.setattr(semi_protonet, "distance_statistics", lambda d: fixed)
    assert gradcheck(loss, inputs)
    assert gradgradcheck(loss, inputs)


def test_settings_are_checked():
    base = Config(algorithm="semi-protonet", dataset="omniglot", ways=5, shots=1, queries=5, pool=True,
                  unlabeled=5, distractors=5)
    base.validate()
    with pytest.raises(ValueError, match="maml would ignore unlabeled examples; algorithms that read them: "
                                         "semi-protonet"):
        base.replace(algorithm="maml").validate()
    with pytest.raises(ValueError, match="distractors .* give --unlabeled too"):
        base.replace(unlabeled=0).validate()
    with pytest.raises(ValueError, match="1 shots \\+ 5 queries \\+ 15 unlabeled examples per class need 21"):
        base.replace(unlabeled=15).validate()
    with pytest.raises(ValueError, match="miniimagenet tasks have no unlabeled examples"):
        Config(algorithm="semi-protonet", dataset="miniimagenet", ways=5, shots=1, queries=5, pool=True,
               unlabeled=2).validate()
    with pytest.raises(ValueError, match="refinement \\(--refinement\\) must be one of"):
        base.replace(refinement="hard").validate()
    algo = ALGORITHMS["semi-protonet"].from_config(None, CE, base.replace(refinement="masked", cluster_steps=3))
    assert (algo.refinement, algo.cluster_steps, algo.inner_loop) == ("masked", 3, False)


def test_episodes_hold_unlabeled_examples_of_the_task_and_of_distractor_classes(omniglot_real):
    from tinymeta.tasks.omniglot import Omniglot
    tasks = Omniglot(5, 1, 3, data=omniglot_real, unlabeled=4, distractors=2, verbose=False)
    b = tasks.sample(6, np.random.default_rng(0), "train")
    again = tasks.sample(6, np.random.default_rng(0), "train")
    assert np.array_equal(b.x_unlabeled.numpy(), again.x_unlabeled.numpy())
    assert b.x_support.shape == (6, 5, 1, 28, 28) and b.x_query.shape == (6, 15, 1, 28, 28)
    assert b.x_unlabeled.shape == (6, 7 * 4, 1, 28, 28)
    labels = b.info["unlabeled_labels"]
    for t in range(6):
        assert sorted(labels[t]) == sorted([-1] * 8 + list(range(5)) * 4)
        assert set(b.y_support.numpy()[t]) == set(range(5)) and sorted(b.y_query.numpy()[t]) == sorted(
            list(range(5)) * 3)
        seen = np.concatenate([b.info["support_images"][t], b.info["query_images"][t], b.info["unlabeled_images"][t]])
        assert len(set(seen)) == len(seen)                                       # every drawing once
        chars = seen // 20
        task_chars = set(b.info["classes"][t, :5])
        assert set(chars[:20]) == task_chars                                     # support and query: the task
        distractor_chars = {c for c, y in zip(b.info["unlabeled_images"][t] // 20, labels[t]) if y == -1}
        assert len(distractor_chars) == 2 and not distractor_chars & task_chars
    # each unlabeled image is the drawing its label says, rotated as its class
    u = b.info["unlabeled_images"][0][labels[0] >= 0][0]
    lab = labels[0][labels[0] >= 0][0]
    rot = b.info["rotations"][0, lab]
    want = np.rot90(omniglot_real.images.reshape(-1, 28, 28)[u], rot) / 255.0
    got = b.x_unlabeled.numpy()[0][labels[0] >= 0][0, 0]
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_an_episode_with_distractors_trains_and_evaluates():
    """Synthetic squares: 3 classes plus a distractor class; the masked refinement's loss falls in training."""
    rng = np.random.default_rng(0)

    def images(n_tasks, classes, per):
        x = rng.random((n_tasks, classes, per, 1, 28, 28)) * 0.3
        for c in range(classes):
            x[:, c, :, 0, 2 + 6 * c:8 + 6 * c, 4:10] += 1.0
        return x

    def episode(n_tasks):
        x = images(n_tasks, 4, 4)                       # class 3 is the distractor
        xs, xq = x[:, :3, :1].reshape(n_tasks, 3, 1, 28, 28), x[:, :3, 1:2].reshape(n_tasks, 3, 1, 28, 28)
        xu = x[:, :, 2:].reshape(n_tasks, 8, 1, 28, 28)
        y = np.tile(np.arange(3), (n_tasks, 1))
        return MetaBatch(tm.tensor(xs), tm.tensor(y), tm.tensor(xq), tm.tensor(y), x_unlabeled=tm.tensor(xu))

    model = ConvNet(n_way=3, filters=6, pool=True, padding=1)
    algo = SemiProtoNet(model, CE, refinement="masked")
    meta = algo.init_meta_params(model.init_params(0), np.random.default_rng(0))
    opt = tm.optim.Adam(meta, lr=0.01)
    fixed = episode(6)
    before = algo.evaluate(meta, fixed)
    for _ in range(15):
        grads, _ = algo.meta_gradient(meta, episode(4))
        opt.step(grads)
    after = algo.evaluate(meta, fixed)
    assert after["loss"].shape == (1, 6) and after["loss"].mean() < 0.5 * before["loss"].mean()
    algo.transductive = False                           # each query with the support and unlabeled sets
    assert algo.evaluate(meta, fixed)["accuracy"].shape == (1, 6)


def test_semi_protonet_trains_from_the_command_line(tmp_path, omniglot_real, capsys):
    from conftest import OMNIGLOT_DIR
    code, out, err = run_cli(["train", "--algorithm", "semi-protonet", "--dataset", "omniglot", "--ways", "3",
                              "--shots", "1", "--queries", "2", "--unlabeled", "2", "--distractors", "1",
                              "--refinement", "distractor-cluster", "--pool", "True", "--filters", "4",
                              "--meta-batch", "2", "--iterations", "3", "--val-interval", "0", "--test-tasks", "4",
                              "--logdir", tmp_path / "run", "--data-dir", OMNIGLOT_DIR, "--no-progress"], capsys)
    assert code == 0, err
    assert "no inner loop" in out and (tmp_path / "run" / "checkpoint.npz").is_file()
