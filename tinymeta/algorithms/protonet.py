"""Prototypical networks (Snell, Swersky & Zemel 2017, "Prototypical networks for few-shot learning").

Each class is represented by the mean of its embedded support examples, its
prototype (Eq. 1)::

    c_k = (1 / |S_k|) sum_{(x_i, y_i) in S_k} f_phi(x_i)

and a query is classified by a softmax over negative squared Euclidean distances
to the prototypes (Eq. 2)::

    p(y = k | x) = exp(-d(f_phi(x), c_k)) / sum_k' exp(-d(f_phi(x), c_k')),   d(z, z') = ||z - z'||^2

The episode's loss is the mean negative log-probability of the true class over the
query set (Algorithm 1). Original code: jakesnell/prototypical-networks,
protonets/models/few_shot.py (``Protonet.loss``: prototypes as means, ``euclidean_dist``,
``log_softmax(-dists)``).
"""
from __future__ import annotations

from .. import functional as F
from .metric import MetricLearner


def prototypes(zs, ys, n_way: int):
    """Class means of the support embeddings, (T, n_way, D), Eq. 1: ``onehot(ys)^T zs / counts``."""
    onehot = F.one_hot(ys, n_way, dtype=zs.dtype)                          # (T, S, N)
    return (onehot.swapaxes(-1, -2) @ zs) / onehot.sum(axis=1).unsqueeze(-1)


def squared_distances(zq, c):
    """||z_q - c_k||^2 for every query and prototype, (T, Q, N) (``euclidean_dist`` in the original)."""
    d = zq.unsqueeze(-2) - c.unsqueeze(-3)                                 # (T, Q, N, D)
    return (d * d).sum(axis=-1)


def protonet_scores(zs, ys, zq, n_way: int):
    """Logits of Eq. 2, -||f(x) - c_k||^2, (T, Q, n_way): cross-entropy of these is the episode loss."""
    return -squared_distances(zq, prototypes(zs, ys, n_way))


class ProtoNet(MetricLearner):
    """Prototypical networks: squared Euclidean distance to class means of the embeddings."""

    name = "protonet"

    def scores(self, meta_params, zs, ys, zq, n_way):
        return protonet_scores(zs, ys, zq, n_way)
