"""Relation networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales 2018, "Learning to compare:
relation network for few-shot learning", arXiv:1711.06025).

An embedding module f_phi maps each image to a feature map; the maps of a class's
support examples are summed into one (Sec. 3.3: "element-wise sum over the embedding
module outputs of all samples from each training class"); each class map is
concatenated, along the channels, with a query's map, and a relation module g_phi
scores the pair in [0, 1] (Eq. 1)::

    r_{i,j} = g_phi(C(f_phi(x_i), f_phi(x_j)))

The modules are trained by mean squared error against one-hot targets (Eq. 2)::

    phi, phi <- argmin sum_i sum_j (r_{i,j} - 1(y_i == y_j))^2

and a query is given the class of its highest relation score.

The spec is the original code, floodsung/LearningToCompare_FSL (commit b74e636),
omniglot/omniglot_train_one_shot.py (1-shot) and omniglot_train_few_shot.py (K-shot),
cited below as one_shot.py:N and few_shot.py:N:

- embedding (``CNNEncoder``, one_shot.py:47-76): four blocks of 3x3 conv with 64 filters,
  batch norm, ReLU; padding 0 and a 2x2 max-pool in the first two blocks
  (one_shot.py:51-60), padding 1 and no pool in the last two (one_shot.py:61-68): a
  28x28 image becomes a 64x5x5 map (26, 13, 11, 5), not flattened (one_shot.py:75).
- class maps: the sum over the K shots (few_shot.py:173-174); one shot is its own map.
- pairs: [class map, query map] on the channel axis, 128x5x5 (one_shot.py:178-182).
- relation module (``RelationNetwork``, one_shot.py:78-101): two blocks of 3x3 conv,
  64 filters, padding 1, batch norm, ReLU, 2x2 max-pool (5 -> 2 -> 1), then
  fc 64 -> 8 (``relation_dim``, one_shot.py:23) with ReLU and fc 8 -> 1 with a sigmoid.
- loss: ``nn.MSELoss`` (mean over the Q*N scores) against one-hot labels (one_shot.py:185-187).
- batch norm in training mode always (the code never calls ``.eval()``): statistics of
  the batch at hand, at test too; the support and query sets go through the embedding
  in two separate passes (one_shot.py:172-173), the pairs through the relation module
  in one (one_shot.py:183).
- initialisation (``weights_init``, one_shot.py:103-116): conv weights N(0, 2 / (3*3*out)),
  conv biases 0, batch norm scale 1 and shift 0, linear weights N(0, 0.01^2) and
  linear biases 1.
- gradients clipped to norm 0.5, the embedding's and the relation module's each
  on its own (one_shot.py:197-198, ``clip_grad_norm``), before Adam's step.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import ops
from ..autograd import grad
from ..nn import Model
from .metric import MetricLearner

CLIP_NORM = 0.5          # one_shot.py:197-198
RELATION_DIM = 8         # one_shot.py:23 --relation_dim
EMBED_BLOCKS = ((0, True), (0, True), (1, False), (1, False))   # (padding, max-pool): one_shot.py:51-68


def _map_size(size: int) -> int:
    """The side of the embedding's map for a ``size`` x ``size`` image (28 -> 5)."""
    for padding, pool in EMBED_BLOCKS:
        size = size + 2 * padding - 2
        size = size // 2 if pool else size
    return size


class RelationModel(Model):
    """The embedding module and the relation module of relation networks, as one param dict.

    Keys: ``embed{i}_w`` (filters, c_in, 3, 3), ``embed{i}_b``, ``embed{i}_bn_w``,
    ``embed{i}_bn_b`` for i = 1..4; ``relation{i}_...`` likewise for i = 1, 2 (the first
    reads 2 * filters channels); ``fc1_w`` (hidden, filters), ``fc1_b``, ``fc2_w`` (1, hidden),
    ``fc2_b``. Every layer's source line is in the module docstring.
    """

    def __init__(self, in_channels=1, image_size=28, filters=64, hidden=RELATION_DIM, bn_eps=1e-5):
        self.in_channels, self.image_size, self.filters = int(in_channels), int(image_size), int(filters)
        self.hidden, self.bn_eps = int(hidden), float(bn_eps)
        self.map_size = _map_size(self.image_size)
        if self.map_size < 4:  # the relation module pools twice: 2x2 at least after the first pool
            raise ValueError(f"RelationModel: a {image_size}x{image_size} image gives {self.map_size}x{self.map_size} "
                             "maps, too small for the relation module's two 2x2 pools (28x28 gives 5x5)")
        self.relation_size = self.map_size // 2 // 2

    def _init(self, rng):
        p = {}

        def const(value, n):  # host arrays at initialisation (no array math)
            return np.asarray([float(value)] * n)

        def conv(name, c_in):
            p[f"{name}_w"] = rng.normal(0.0, math.sqrt(2.0 / (9 * self.filters)), (self.filters, c_in, 3, 3))
            p[f"{name}_b"] = const(0, self.filters)
            p[f"{name}_bn_w"] = const(1, self.filters)
            p[f"{name}_bn_b"] = const(0, self.filters)

        c_in = self.in_channels
        for i in range(1, 5):
            conv(f"embed{i}", c_in)
            c_in = self.filters
        conv("relation1", 2 * self.filters)
        conv("relation2", self.filters)
        features = self.filters * self.relation_size ** 2
        p["fc1_w"], p["fc1_b"] = rng.normal(0.0, 0.01, (self.hidden, features)), const(1, self.hidden)
        p["fc2_w"], p["fc2_b"] = rng.normal(0.0, 0.01, (1, self.hidden)), const(1, 1)
        return p

    def embed_keys(self) -> list[str]:
        """The embedding module's parameters (clipped as one group)."""
        return [f"embed{i}_{s}" for i in range(1, 5) for s in ("w", "b", "bn_w", "bn_b")]

    def _block(self, params, name, x, padding, pool):
        x = F.conv2d(x, params[f"{name}_w"], params[f"{name}_b"], padding=padding)
        x = F.relu(F.batch_norm(x, weight=params[f"{name}_bn_w"], bias=params[f"{name}_bn_b"], eps=self.bn_eps))
        return F.max_pool2d(x, 2) if pool else x

    def body(self, params, x):
        """f_phi: (T, n, C, H, W) images -> (T, n, filters, 5, 5) feature maps (batch statistics per task)."""
        for i, (padding, pool) in enumerate(EMBED_BLOCKS, start=1):
            x = self._block(params, f"embed{i}", x, padding, pool)
        return x

    def relation(self, params, pairs):
        """g_phi: (T, P, 2 * filters, 5, 5) concatenated maps -> (T, P) relation scores in (0, 1)."""
        x = self._block(params, "relation1", pairs, 1, True)
        x = self._block(params, "relation2", x, 1, True)
        x = x.reshape(x.shape[:-3] + (-1,))
        x = F.relu(F.linear(x, params["fc1_w"], params["fc1_b"]))
        return ops.sigmoid(F.linear(x, params["fc2_w"], params["fc2_b"]))[..., 0]

    def head_keys(self):
        return []

    def __call__(self, params, x):
        return self.body(params, x)

    def __repr__(self):
        return (f"RelationModel(in_channels={self.in_channels}, image_size={self.image_size}, "
                f"filters={self.filters}, hidden={self.hidden})")


def class_maps(zs, ys, n_way: int):
    """Each class's support maps summed over its shots (few_shot.py:173-174): (T, n_way, C, H, W)."""
    onehot = F.one_hot(ys, n_way, dtype=zs.dtype)                          # (T, S, N)
    flat = zs.reshape(zs.shape[:2] + (-1,))                                # (T, S, C*H*W)
    return (onehot.swapaxes(-1, -2) @ flat).reshape((zs.shape[0], n_way) + zs.shape[2:])


def relation_scores(net: RelationModel, params, zs, ys, zq, n_way: int):
    """r_{i,j} of Eq. 1 for every query and class, (T, Q, n_way)."""
    T, Q = zq.shape[0], zq.shape[1]
    cm = class_maps(zs, ys, n_way)
    shape = (T, Q, n_way) + zq.shape[2:]
    pairs = ops.concatenate([cm.unsqueeze(1).broadcast_to(shape), zq.unsqueeze(2).broadcast_to(shape)], axis=3)
    r = net.relation(params, pairs.reshape((T, Q * n_way) + pairs.shape[3:]))
    return r.reshape((T, Q, n_way))


def relation_losses(r, y_query, n_way: int):
    """(T,) loss of each task, Eq. 2 as nn.MSELoss computes it: the mean of (r - onehot(y))^2 over Q * N."""
    d = r - F.one_hot(y_query, n_way, dtype=r.dtype)
    return (d * d).mean(axis=(-2, -1))


def clip_by_norm(grads: dict, keys, max_norm: float) -> dict:
    """``grads[keys]`` scaled to a joint norm of at most ``max_norm`` (torch's clip_grad_norm, its 1e-6 included)."""
    total = ops.sqrt(sum((grads[k] * grads[k]).sum() for k in keys))
    scale = ops.minimum(max_norm / (total + 1e-6), 1.0)
    return {k: grads[k] * scale for k in keys}


class RelationNet(MetricLearner):
    """Relation networks: a learned relation module on concatenated feature maps, MSE to one-hot targets.

    The embedding is its own (:class:`RelationModel`), not the task family's model: the
    meta-parameters are :class:`RelationModel`'s weights only. ``clip_norm`` (0.5, the
    original's) clips the embedding's and the relation module's gradients each to that
    norm; None leaves them as they are.
    """

    name = "relationnet"

    def __init__(self, model, objective, transductive: bool = True, filters: int = 64, hidden: int = RELATION_DIM,
                 clip_norm: float | None = CLIP_NORM, **_inner_settings):
        super().__init__(model, objective, transductive=transductive)
        self.net = RelationModel(getattr(model, "in_channels", 1), getattr(model, "image_size", 28), filters,
                                 hidden, getattr(model, "bn_eps", 1e-5))
        self.clip_norm = clip_norm

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Built from ``cfg.transductive`` and ``cfg.filters`` (64 in the original)."""
        return cls(model, objective, transductive=cfg.transductive, filters=cfg.filters)

    def init_meta_params(self, params: dict, rng=None) -> dict:
        """:class:`RelationModel`'s weights, drawn from ``rng``, of ``params``' dtype and device."""
        some = next(iter(params.values()))
        return self.extra_params(rng, some.dtype, some.device)

    def extra_params(self, rng, dtype, device) -> dict:
        return self.net.init_params(rng if rng is not None else 0, dtype=dtype, device=device)

    def embed(self, meta_params, x):
        """f_phi: the 64x5x5 feature maps (one_shot.py:47-76)."""
        return self.net.body(meta_params, x)

    def embed_episode(self, meta_params, batch, transductive: bool = True):
        """Support and query sets in two passes, as the original (one_shot.py:172-173); else each query alone
        with the support set (:meth:`MetricLearner.embed_episode`)."""
        if not transductive:
            return super().embed_episode(meta_params, batch, transductive)
        return self.embed(meta_params, batch.x_support), batch.y_support, self.embed(meta_params, batch.x_query)

    def scores(self, meta_params, zs, ys, zq, n_way):
        return relation_scores(self.net, meta_params, zs, ys, zq, n_way)

    def task_losses(self, scores, batch):
        """MSE of the relation scores against one-hot targets (Eq. 2), not cross-entropy."""
        return relation_losses(scores, batch.y_query, scores.shape[-1])

    def meta_gradient(self, meta_params, batch, rng=None, iteration: int = 0):
        """The meta-loss's gradient, each module's clipped to norm ``clip_norm`` (one_shot.py:197-198)."""
        grads, metrics = self.chunk_gradient(meta_params, batch, rng, iteration)
        return self.finish_gradient(grads), metrics

    def chunk_gradient(self, meta_params, batch, rng=None, iteration: int = 0):
        """The meta-loss's gradient before clipping (a chunk of tasks' share, Config.task_chunk)."""
        loss, metrics = self.meta_loss(meta_params, batch)
        return grad(loss, meta_params), metrics

    def finish_gradient(self, grads):
        """Clip the whole meta-batch's gradient: the norm is of the sum over every task, so it comes last."""
        if self.clip_norm is None:
            return grads
        embed = set(self.net.embed_keys())
        out = clip_by_norm(grads, [k for k in grads if k in embed], self.clip_norm)
        out.update(clip_by_norm(grads, [k for k in grads if k not in embed], self.clip_norm))
        return {k: out[k] for k in grads}

    def __repr__(self):
        extra = [f"filters={self.net.filters}"] + ([] if self.clip_norm == CLIP_NORM else [f"clip_norm={self.clip_norm}"])
        extra += [] if self.transductive else ["transductive=False"]
        return f"RelationNet({', '.join(extra)})"
