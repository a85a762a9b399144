"""Semi-supervised prototypical networks (Ren, Triantafillou, Ravi, Snell, Swersky, Tenenbaum, Larochelle &
Zemel 2018, "Meta-learning for semi-supervised few-shot classification", ICLR; arXiv:1803.00676).

An episode also holds unlabeled examples x~_j, some of the task's classes, some of
distractor classes. Prototypes start as the class means of the labeled support set
(prototypical networks, Eq. 1) and are refined by soft k-means steps over the labeled
and unlabeled embeddings together (Sec. 3.1, Eq. 4)::

    z~_j,c = softmax_c( -||h(x~_j) - p_c||^2 )
    p~_c   = ( sum_i h(x_i) z_i,c + sum_j h(x~_j) z~_j,c ) / ( sum_i z_i,c + sum_j z~_j,c )

with z_i,c the labeled examples' one-hot labels; queries are then scored by
-||h(x) - p~_c||^2 as in prototypical networks. Three refinements (``refinement``):

- ``'soft-kmeans'`` (Sec. 3.1): the steps above; the original's ``kmeans-refine`` model
  (fewshot/models/kmeans_refine_model.py:48-77).
- ``'distractor-cluster'`` (Sec. 3.2, Eq. 5-6): one more cluster, its centre starting at the
  origin, for the distractors; each cluster c has a length scale r_c (1 for the classes,
  a learned r for the distractor cluster, initialised at 100) and the assignment logits
  become ``-||h - p_c||^2 / (2 r_c^2) - (log(2 pi) / 2 + log r_c)``. Queries are scored
  the same way over the N + 1 clusters (a query put in the distractor cluster is wrong).
  The original's ``kmeans-refine-radius`` (kmeans_refine_radius_model.py:53-101; the
  distractor centre is updated like the others, kmeans_utils.py:66 without fix_last_row).
- ``'masked'`` (Sec. 3.3, Eq. 7-8): each unlabeled example's contribution to cluster c is
  masked by m_j,c = sigmoid(gamma_c (-d~_j,c / mean_j d~_j,c + beta_c)) (written in the
  original's signs), with soft threshold beta_c and slope gamma_c from a small MLP
  (5 -> 20 tanh -> 3) of statistics of the normalised distances to cluster c (min, max,
  variance, skewness, kurtosis; no gradient through them). The original's
  ``kmeans-refine-mask`` (kmeans_refine_mask_model.py:64-135); like that code, the mask
  multiplies the assignment twice (assign_cluster_soft_mask, then ``prob_unlabel * mask``
  at line 125), where the paper's Eq. 8 multiplies once: tinymeta follows the code.

The episodes (``--unlabeled M --distractors H``): M unlabeled drawings of each of the N
classes and of H distractor classes; Ren et al. draw 5 and 5 (fewshot/data/omniglot.py:151-152).
Deviation, named: the original keeps 90% of each training class's drawings unlabeled
for the whole run (label_ratio 0.1); tinymeta's episodes draw labeled and unlabeled
examples from all of a class's drawings.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import ops
from ..ops import concatenate
from ..tensor import tensor
from .common import with_support
from .metric import MetricLearner
from .protonet import prototypes, squared_distances

REFINEMENTS = ("soft-kmeans", "distractor-cluster", "masked")
DISTRACTOR_RADIUS = 100.0      # kmeans_refine_radius_model.py:46 init_radius
MASK_HIDDEN, MASK_INIT_STD = 20, 0.01   # kmeans_refine_mask_model.py:94-100


def _nonzero(x):
    """``x`` with its exact zeros replaced by 1 (constant guards, as the original's ``+ to_float(equal(x, 0))``)."""
    return ops.where(ops.equal(x, 0.0), 1.0, x)   # the condition stays on the device: no sync


def soft_kmeans_step(p, zs, ys_onehot, zu, logits_fn):
    """One refinement: assign the unlabeled softly by ``logits_fn(p, zu)`` (T, U, C), recompute the centres.

    ``ys_onehot`` (T, S, C) are the labeled examples' fixed assignments. Returns the new
    centres (T, C, D) and the unlabeled assignments (T, U, C).
    """
    r = ops.exp(F.log_softmax(logits_fn(p, zu), dim=-1))
    return update_centres(zs, ys_onehot, zu, r), r


def update_centres(zs, ys_onehot, zu, r):
    """(sum_i z_i,c h_i + sum_j r_j,c h~_j) / (sum_i z_i,c + sum_j r_j,c), a cluster with no mass left at 0."""
    mass = ys_onehot.sum(axis=1) + r.sum(axis=1)                              # (T, C)
    total = ys_onehot.swapaxes(-1, -2) @ zs + r.swapaxes(-1, -2) @ zu         # (T, C, D)
    return total / _nonzero(mass).unsqueeze(-1)                              # kmeans_utils.py:69


def radius_logits(p, z, radii):
    """-||z - p_c||^2 / (2 r_c^2) - (log(2 pi) / 2 + log r_c), (T, n, C) (kmeans_utils.py:118-137)."""
    return -squared_distances(z, p) / (2.0 * radii * radii) - (0.5 * math.log(2 * math.pi) + ops.log(radii))


def distance_statistics(d):
    """(T, C, 5): min, max, variance, skewness, kurtosis over j of d~_j,c = d_j,c / mean_j d_j,c; d is (T, C, U).

    Constants (no gradient), as the original's ``tf.stop_gradient`` (kmeans_refine_mask_model.py:89).
    """
    d = d.detach()
    mean = d.mean(axis=-1, keepdims=True)
    d = d / _nonzero(mean)
    m = d.mean(axis=-1, keepdims=True)
    var = ((d - m) * (d - m)).mean(axis=-1, keepdims=True)
    m, var = _nonzero(m), _nonzero(var)              # the original's guards against 0 (lines 80-81)
    c = d - m
    skew = (c * c * c / (var * ops.sqrt(var))).mean(axis=-1, keepdims=True)
    kurt = (c * c * c * c / (var * var) - 3.0).mean(axis=-1, keepdims=True)
    return concatenate([d.min(axis=-1, keepdims=True), d.max(axis=-1, keepdims=True), var, skew, kurt], axis=-1)


class SemiProtoNet(MetricLearner):
    """Prototypical networks whose prototypes are refined by soft k-means over unlabeled examples."""

    name = "semi-protonet"
    reads_unlabeled = True

    def __init__(self, model, objective, transductive: bool = True, refinement: str = "soft-kmeans",
                 cluster_steps: int = 1, **_inner):
        super().__init__(model, objective, transductive=transductive)
        if refinement not in REFINEMENTS:
            raise ValueError(f"refinement must be one of {', '.join(REFINEMENTS)}, got {refinement!r}")
        if not (isinstance(cluster_steps, int) and cluster_steps >= 1):
            raise ValueError(f"cluster_steps must be an integer >= 1, got {cluster_steps!r}")
        self.refinement, self.cluster_steps = refinement, cluster_steps

    @classmethod
    def from_config(cls, model, objective, cfg):
        return cls(model, objective, transductive=cfg.transductive, refinement=cfg.refinement,
                   cluster_steps=cfg.cluster_steps)

    def extra_params(self, rng, dtype, device) -> dict:
        """The distractor cluster's log length scale, or the masking MLP's weights (5 -> 20 -> 3)."""
        if self.refinement == "distractor-cluster":
            arrays = {"log_distractor_radius": math.log(DISTRACTOR_RADIUS)}
        elif self.refinement == "masked":
            rng = np.random.default_rng(0) if rng is None else rng
            arrays = {"mask_w1": MASK_INIT_STD * rng.standard_normal((MASK_HIDDEN, 5)), "mask_b1": [0.0] * MASK_HIDDEN,
                      "mask_w2": MASK_INIT_STD * rng.standard_normal((3, MASK_HIDDEN)), "mask_b2": [0.0] * 3}
        else:
            return {}
        return {k: tensor(v, dtype=dtype, device=device, requires_grad=True) for k, v in arrays.items()}

    # ---- the episode: support, unlabeled and query embedded together ------------------------------------
    def episode_scores(self, meta_params, batch, transductive: bool = True):
        """Query scores (T, Q, N), or (T, Q, N + 1) with the distractor cluster, after the refinement."""
        n_way = self.n_way(batch)
        xs, ys, xq, xu = batch.x_support, batch.y_support, batch.x_query, batch.x_unlabeled
        T, Q, S = xq.shape[0], xq.shape[1], xs.shape[1]
        labeled = xs if xu is None else concatenate([xs, xu], axis=1)
        if transductive:
            z = self.embed(meta_params, concatenate([labeled, xq], axis=1))
            zl, zq = z[:, :labeled.shape[1]], z[:, labeled.shape[1]:]
        else:  # each query with the support and unlabeled examples: T * Q passes
            z = self.embed(meta_params, with_support(labeled, xq))
            zl, zq = z[:, :-1], z[:, -1:]
            ys = ys.unsqueeze(1).broadcast_to((T, Q) + ys.shape[1:]).reshape((T * Q,) + ys.shape[1:])
        s = self.refined_scores(meta_params, zl[:, :S], ys, zl[:, S:], zq, n_way)
        return s.reshape((T, Q) + s.shape[2:])

    def refined_scores(self, meta_params, zs, ys, zu, zq, n_way):
        """Scores of the queries ``zq`` after ``cluster_steps`` refinements with the unlabeled ``zu``."""
        p = prototypes(zs, ys, n_way)
        onehot = F.one_hot(ys, n_way, dtype=zs.dtype)
        if self.refinement == "distractor-cluster":
            T = zs.shape[0]
            p = concatenate([p, (p[:, :1] * 0.0)], axis=1)                     # the distractor centre: 0
            onehot = concatenate([onehot, onehot[..., :1] * 0.0], axis=-1)      # no labeled example in it
            r = ops.exp(meta_params["log_distractor_radius"])
            radii = concatenate([tensor([1.0] * n_way, dtype=zs.dtype, device=zs.device), r.reshape((1,))])
            radii = radii.broadcast_to((T, 1, n_way + 1))

            def logits(c, z):
                return radius_logits(c, z, radii)
        else:
            def logits(c, z):
                return -squared_distances(z, c)

        if zu.shape[1] == 0:
            return logits(p, zq)
        if self.refinement == "masked":
            return logits(self._masked(meta_params, p, zs, onehot, zu), zq)
        for _ in range(self.cluster_steps):
            p, _ = soft_kmeans_step(p, zs, onehot, zu, logits)
        return logits(p, zq)

    def _masked(self, meta_params, p, zs, onehot, zu):
        """Soft k-means with masking (Sec. 3.3; kmeans_refine_mask_model.py:64-127)."""
        stats = distance_statistics(squared_distances(p, zu))                  # (T, N, 5) from the first prototypes
        h = ops.tanh(F.linear(stats, meta_params["mask_w1"], meta_params["mask_b1"]))
        out = F.linear(h, meta_params["mask_w2"], meta_params["mask_b2"])      # (T, N, 3)
        scale, start, add = ops.exp(out[..., 2]), ops.exp(out[..., 0]), out[..., 1]
        steps = self.cluster_steps
        for t in range(steps):
            neg = -squared_distances(zu, p)                                    # (T, U, N)
            mean = (-neg).mean(axis=1, keepdims=True)                          # (T, 1, N)
            mean = _nonzero(mean)
            bias = start if steps == 1 else start + (t / (steps - 1)) * add
            mask = ops.sigmoid((neg / mean + bias.unsqueeze(1)) * scale.unsqueeze(1))
            r = ops.exp(F.log_softmax(neg, dim=-1)) * mask
            p = update_centres(zs, onehot, zu, r * mask)                         # masked twice, as the code
        return p

    def __repr__(self):
        return (f"SemiProtoNet(refinement={self.refinement!r}, cluster_steps={self.cluster_steps}"
                + ("" if self.transductive else ", transductive=False") + ")")
