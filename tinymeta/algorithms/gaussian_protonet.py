"""Gaussian prototypical networks (Fort 2017, "Gaussian prototypical networks for few-shot learning on
Omniglot", arXiv:1708.02735): prototypical networks whose encoder also says how sure it is.

The encoder's last layer has ``D + s`` channels: an embedding z (D) and a raw confidence
r, one number (``covariance='radius'``) or one per dimension (``'diagonal'``), turned
into an inverse variance ``S = 1 + softplus(r)`` (Sec. 3.1; the original's "v7" transform,
utils/cnn6.py:114-118). A class's prototype is the confidence-weighted mean of its
support embeddings, and its own inverse variance is the sum of theirs (Sec. 3.3,
cnn6.py:163-168)::

    p_c = sum_i S_i * z_i / sum_i S_i          S_c = sum_i S_i          (i in class c)

A query is scored by the negative distance in the class's metric (Sec. 3.4,
cnn6.py:193-196: the norm, not its square)::

    d_c(q) = sqrt( sum_d S_c,d (z_q,d - p_c,d)^2 ),      logits = -d_c(q)

and trained, like prototypical networks, by the cross-entropy of those logits.
Original code: stanislavfort/gaussian-prototypical-networks (TensorFlow).

Deviations, named: the encoder is tinymeta's ConvNet body (conv, batch norm, ReLU,
pool), the original puts batch norm after the ReLU (cnn6.py:72-74), so here the raw
confidence is >= 0 and S >= 1 + log 2 (the original's S >= 1); the original divides the
loss by the number of classes (cnn6.py:252), a constant factor Adam does not see.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import ops
from ..nn import glorot_uniform
from ..tensor import tensor
from .metric import MetricLearner

COVARIANCES = ("radius", "diagonal")


def gaussian_prototypes(zs, precision, ys, n_way: int):
    """(p, S_c): confidence-weighted class means (T, N, D) and class inverse variances (T, N, 1 or D)."""
    onehot = F.one_hot(ys, n_way, dtype=zs.dtype).swapaxes(-1, -2)        # (T, N, S)
    total = onehot @ precision                                              # S_c = sum_i S_i
    return (onehot @ (precision * zs)) / total, total


def gaussian_distances(zq, p, total):
    """d_c(q) = sqrt(sum_d S_c,d (z_q,d - p_c,d)^2), (T, Q, N)."""
    diff = zq.unsqueeze(-2) - p.unsqueeze(-3)                               # (T, Q, N, D)
    return ops.sqrt((total.unsqueeze(-3) * diff * diff).sum(axis=-1))


def gaussian_protonet_scores(zs, ys, zq, n_way: int, embed_dim: int):
    """Logits -d_c(q), (T, Q, n_way), from encoder outputs (..., embed_dim + s) of support and query."""
    z, precision = zs[..., :embed_dim], 1.0 + ops.softplus(zs[..., embed_dim:])
    p, total = gaussian_prototypes(z, precision, ys, n_way)
    return -gaussian_distances(zq[..., :embed_dim], p, total)


class GaussianProtoNet(MetricLearner):
    """Prototypical networks with a learned confidence per embedding (radius or diagonal covariance)."""

    name = "gaussian-protonet"

    def __init__(self, model, objective, transductive: bool = True, covariance: str = "radius", **_inner):
        super().__init__(model, objective, transductive=transductive)
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {', '.join(COVARIANCES)}, got {covariance!r}")
        if not hasattr(model, "filters") or model.features != model.filters:
            raise ValueError(f"Gaussian prototypical networks split the last conv block's channels into embedding and "
                             f"confidence, so the body must give one value per channel: {model!r} gives "
                             f"{getattr(model, 'features', '?')} features (use --pool True on 28x28 images, or "
                             "features 'mean')")
        self.covariance = covariance
        self.embed_dim = model.filters
        self.extra_channels = 1 if covariance == "radius" else model.filters

    @classmethod
    def from_config(cls, model, objective, cfg):
        return cls(model, objective, transductive=cfg.transductive, covariance=cfg.covariance)

    def init_meta_params(self, params: dict, rng=None) -> dict:
        """The body, its last block widened to ``D + s`` channels: the embedding and the raw confidence."""
        rng = np.random.default_rng(0) if rng is None else rng
        meta = super().init_meta_params(params, rng)
        b, c_in, out = self.model.blocks, self.model.filters, self.embed_dim + self.extra_channels
        like = meta[f"conv{b}"]
        fresh = {f"conv{b}": glorot_uniform(rng, (out, c_in, 3, 3), c_in * 9, out * 9), f"conv{b}_b": [0.0] * out,
                 f"bn{b}_b": [0.0] * out}
        if f"bn{b}_w" in meta:
            fresh[f"bn{b}_w"] = [1.0] * out
        meta.update({k: tensor(v, dtype=like.dtype, device=like.device, requires_grad=True) for k, v in fresh.items()})
        return meta

    def scores(self, meta_params, zs, ys, zq, n_way):
        return gaussian_protonet_scores(zs, ys, zq, n_way, self.embed_dim)

    def __repr__(self):
        return (f"GaussianProtoNet(covariance={self.covariance!r}"
                + ("" if self.transductive else ", transductive=False") + ")")
