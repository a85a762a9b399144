"""Chapter 4 exercises: matching networks (Vinyals et al. 2016) and relation networks (Sung et al. 2018).

- ``check_matching_probs``: the student writes ``matching_probs(zs, ys, zq, n_way) -> P (T, Q, n_way)``,
  Eq. 1-2 of matching networks: a softmax over the support set of cosine similarities, then the
  attention-weighted sum of one-hot labels. Known mistakes named: dot products instead of cosines, the
  softmax over the queries instead of the support set, the cosines without a softmax, and an average of
  the attention per class instead of a sum.
- ``check_relation_loss``: ``relation_loss(r, yq, n_way) -> (T,)``, relation networks' Eq. 2 as their
  code computes it (nn.MSELoss against one-hot targets, the mean over the Q x N scores). Named: the
  sum instead of the mean, cross-entropy instead of MSE, and a loss per query left unreduced.
- ``check_class_maps``: ``class_maps(zs, ys, n_way) -> (T, n_way, C, H, W)``, each class's support maps
  summed over the shots (LearningToCompare_FSL few_shot.py:173-174). Named: the mean instead of the
  sum, and support maps taken in their order as if sorted by class.
"""
from __future__ import annotations

import numpy as np

from ..algorithms.matching import matching_log_probs
from ..algorithms.relation import class_maps, relation_losses
from ..tensor import tensor
from ._check import Mismatch, as_array, compare, run_checker


def _features(seed, T, n_way, shots, Q, D):
    """Support and query features whose norms vary a lot (dot products and cosines then disagree)."""
    rng = np.random.default_rng(seed)
    ys = np.stack([rng.permutation(np.repeat(np.arange(n_way), shots)) for _ in range(T)]).astype(np.int64)
    zs = rng.normal(size=(T, n_way * shots, D)) * rng.uniform(0.2, 5.0, size=(T, n_way * shots, 1))
    zq = rng.normal(size=(T, Q, D)) * rng.uniform(0.2, 5.0, size=(T, Q, 1))
    return zs, ys, zq


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _cosines(zs, zq):
    unit = lambda z: z / np.linalg.norm(z, axis=-1, keepdims=True)  # noqa: E731
    return unit(zq) @ np.swapaxes(unit(zs), 1, 2)                     # (T, Q, S)


def check_matching_probs(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(zs, ys, zq, n_way) -> P (T, Q, n_way)`` (NumPy float64 in, array or Tensor out)."""

    def body():
        for what, (zs, ys, zq) in (("a 5-way 1-shot case", _features(0, 3, 5, 1, 4, 6)),
                                   ("a 3-way 4-shot case", _features(1, 2, 3, 4, 5, 8))):
            n_way = int(ys.max()) + 1
            got = as_array(student_fn(zs.copy(), ys.copy(), zq.copy(), n_way), "P")
            want = np.exp(matching_log_probs(tensor(zq), tensor(zs), tensor(ys), n_way).numpy())
            onehot = np.eye(n_way)[ys]
            if got.shape == want.shape and not np.allclose(got, want, rtol=1e-6, atol=1e-10):
                cos = _cosines(zs, zq)
                dots = zq @ np.swapaxes(zs, 1, 2)
                per_class = (_softmax(cos, -1) @ onehot) / onehot.sum(axis=1, keepdims=True)
                for wrong, hint in (
                        (_softmax(dots, -1) @ onehot, "the attention is a softmax of dot products; Eq. 2 uses the "
                         "cosine similarity (divide by both embeddings' norms)"),
                        (_softmax(cos, 1) @ onehot, "the softmax runs over the queries; it normalises over the "
                         "support set (the last axis of the similarities), so each query's attention sums to one"),
                        (cos @ onehot, "the labels are weighted by the raw cosines; Eq. 2 turns them into attention "
                         "with a softmax over the support set first"),
                        (per_class, "the attention is averaged within each class; Eq. 1 sums a(x, x_i) y_i over the "
                         "support set, so the class probabilities sum to one")):
                    if np.allclose(got, wrong, rtol=1e-6, atol=1e-10):
                        raise Mismatch(f"on {what}: {hint}")
            compare(got, want, f"P on {what}")

    return run_checker("check_matching_probs", body, raise_on_failure)


def _scores(seed, T, Q, n_way):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, size=(T, Q, n_way)), rng.integers(0, n_way, size=(T, Q)).astype(np.int64)


def check_relation_loss(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(r, yq, n_way) -> (T,)``: r (T, Q, n_way) relation scores in (0, 1), yq (T, Q) labels."""

    def body():
        for what, (r, yq) in (("a 5-way case", _scores(0, 3, 6, 5)), ("a 2-way case", _scores(1, 2, 4, 2))):
            n_way = r.shape[-1]
            got = as_array(student_fn(r.copy(), yq.copy(), n_way), "the losses")
            want = relation_losses(tensor(r), tensor(yq), n_way).numpy()
            sq = (r - np.eye(n_way)[yq]) ** 2
            if got.shape == sq.shape[:2]:
                raise Mismatch(f"on {what}: the losses have shape {got.shape}, one per query; a task's loss is "
                               "the mean over all its Q x N scores, shape (T,)")
            if got.shape == want.shape and not np.allclose(got, want, rtol=1e-6, atol=1e-10):
                picked = np.take_along_axis(r, yq[..., None], -1)[..., 0]
                for wrong, hint in (
                        (sq.sum(axis=(1, 2)), "the squared errors are summed; nn.MSELoss (one_shot.py:185-187) "
                         "takes their mean over the Q x N scores"),
                        (-np.log(picked).mean(axis=1), "this is cross-entropy on the true class's score; relation "
                         "networks regress every score onto its one-hot target with the squared error (Eq. 2)"),
                        (((r - yq[..., None]) ** 2).mean(axis=(1, 2)), "the scores are compared with the label "
                         "number; the target of score (q, c) is 1 when query q is of class c, else 0 (one-hot)")):
                    if np.allclose(got, wrong, rtol=1e-6, atol=1e-10):
                        raise Mismatch(f"on {what}: {hint}")
            compare(got, want, f"the losses on {what}")

    return run_checker("check_relation_loss", body, raise_on_failure)


def check_class_maps(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(zs, ys, n_way) -> (T, n_way, C, H, W)``: zs (T, S, C, H, W) support maps, ys (T, S)."""

    def body():
        rng = np.random.default_rng(0)
        for what, (n_way, shots) in (("a 3-way 2-shot case", (3, 2)), ("a 2-way 3-shot case", (2, 3))):
            ys = np.stack([rng.permutation(np.repeat(np.arange(n_way), shots)) for _ in range(2)]).astype(np.int64)
            zs = rng.normal(size=(2, n_way * shots, 2, 3, 3))
            got = as_array(student_fn(zs.copy(), ys.copy(), n_way), "the class maps")
            want = class_maps(tensor(zs), tensor(ys), n_way).numpy()
            if got.shape == want.shape and not np.allclose(got, want, rtol=1e-6, atol=1e-10):
                if np.allclose(got * shots, want, rtol=1e-6, atol=1e-10):
                    raise Mismatch(f"on {what}: these are the class means; relation networks' code sums the K maps "
                                   "of a class (few_shot.py:173-174: torch.sum over the shots)")
                in_order = zs.reshape((2, n_way, shots) + zs.shape[2:]).sum(axis=2)
                if np.allclose(got, want, rtol=1e-6, atol=1e-10) is False and \
                        np.allclose(got, in_order, rtol=1e-6, atol=1e-10):
                    raise Mismatch(f"on {what}: the support maps were grouped by position, as if sorted by class; "
                                   "here the support set is shuffled, so group them by their labels ys")
            compare(got, want, f"the class maps on {what}")

    return run_checker("check_class_maps", body, raise_on_failure)
