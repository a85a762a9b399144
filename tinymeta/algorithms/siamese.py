"""Siamese networks (Koch, Zemel & Salakhutdinov 2015, "Siamese neural networks for one-shot image
recognition", ICML deep learning workshop), and the book's contrastive variant (chapter 2).

Twin networks with shared weights embed two images, h_1 = f(x_1) and h_2 = f(x_2); a
verification head says how likely they show the same character. Koch's head (Sec. 3.1) is
a weighted L1 distance fed to a sigmoid::

    p(x_1, x_2) = sigmoid( sum_j alpha_j |h_1^(j) - h_2^(j)| )

trained with the cross-entropy of same (y = 1) / different (y = 0) labels (Sec. 3.2; the
paper writes the log-likelihood y log p + (1 - y) log(1 - p) + lambda^T |w|^2, which is
maximised in its first two terms and minimised in the last: here the negative of the
first two, :func:`bce_pair_losses`). One-shot classification (Sec. 4.3) compares a test
image with the one image of each of N classes and answers the class of highest p.

The book's version (Hands-On Meta Learning with Python, ch. 2, notebook 2.4) replaces the
head by the Euclidean distance D = ||h_1 - h_2|| and trains with the contrastive loss of
Hadsell, Chopra & LeCun (2006, Eq. 4)::

    L = (1 - Y) 1/2 D^2 + Y 1/2 max(0, m - D)^2,     Y = 0 similar, Y = 1 dissimilar (theirs)

Here the label is ``same`` = 1 - Y (1 for a same pair, as Koch's y and the book's
``y_true``), so the loss reads ``same * D^2 / 2 + (1 - same) * max(0, m - D)^2 / 2``
(:func:`contrastive_pair_losses`; the book's notebook drops the 1/2). Scores are -D.

**Pairs from episodes.** tinymeta trains every learner on meta-batches of N-way tasks
(one loop, one evaluation). A Siamese network's training pairs are read off each
task: every query drawing against every class's support drawing is a pair, "same"
for its own class and "different" for the N - 1 others. Koch samples same and
different pairs with equal probability (Sec. 4.2); an episode holds N - 1 times more
different pairs, so :func:`balanced_pair_weights` gives each query's same pairs half
of its weight and its different pairs the other half: the expected loss of Koch's
50/50 sampling, without discarding pairs. With K > 1 shots a (query, class) pair
compares the query with the class's nearest support drawing (the class's score is
the highest over its drawings); Koch is one-shot, where this is every pair.
Evaluation is the paper's: N-way one-shot by the highest score, and the loss shown
is the same balanced pair loss.

**The twin net.** Koch's net (Sec. 3.1, Fig. 4) takes 105x105 images: conv 64@10x10,
max-pool, 128@7x7, max-pool, 128@4x4, max-pool, 256@4x4, then a 4096-unit sigmoid
layer. tinymeta's Omniglot is 28x28 (the 105x105 cache would be 14 times larger
and each image 14 times costlier); on it, the twin is the few-shot conv body of the
task family (``pool=True``: 4 x [3x3 conv, batch norm, ReLU, 2x2 max-pool], 64
filters, 64 features) followed by Koch's fully connected sigmoid layer of
``features`` units (4096); :class:`Siamese` adds that layer and the alphas to the
body as meta-parameters. Deviations, each named: the image size and conv stack (3x3
kernels with batch norm instead of 10/7/4/4 without), a bias on the output unit (the
paper's equation shows none, but its Sec. 3.2 initialises every layer's biases, and
without one a same pair cannot reach p > 1/2 while different pairs fall below it; a
bias cannot change the one-shot answer), no L2 penalty (lambda_j were tuned per layer, Sec. 3.2, and not reported), Adam
instead of per-layer SGD with momentum and decay, no affine distortions (Sec. 3.2, 'Affine distortions').
Initialisation follows Sec. 3.2 for the layers Koch describes and tinymeta adds:
the fully connected weights and the alphas N(0, 0.2^2), its biases N(0.5, 0.01^2)
(the conv body keeps the family's Glorot-uniform init); the output bias N(0.5, 0.01^2).
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..ops import abs as abs_, exp, log, relu, sigmoid, sqrt, where
from ..tensor import tensor
from .metric import MetricLearner

SIAMESE_LOSSES = ("bce", "contrastive")
FEATURES = 4096        # Koch et al. 2015, Sec. 3.1: the last hidden layer, 4096 sigmoid units
EPS = 1e-12            # inside the Euclidean distance's sqrt: a finite gradient when two embeddings coincide


# ---- the two heads ----------------------------------------------------------------------------------
def weighted_l1_logits(zq, zs, alpha, bias=None):
    """sum_j alpha_j |zq_j - zs_j| (+ bias) for every (query, support) pair, (T, Q, S): the logit of Koch's p.

    ``zq`` (T, Q, D), ``zs`` (T, S, D), ``alpha`` (D,), ``bias`` a scalar Tensor or None.
    ``sigmoid`` of this is p (Sec. 3.1).
    """
    logits = (abs_(zq.unsqueeze(-2) - zs.unsqueeze(-3)) * alpha).sum(axis=-1)
    return logits if bias is None else logits + bias


def euclidean_distances(zq, zs):
    """||zq - zs|| for every (query, support) pair, (T, Q, S) (the book's ``euclidean_distance``)."""
    d = zq.unsqueeze(-2) - zs.unsqueeze(-3)
    return sqrt((d * d).sum(axis=-1) + EPS)


def class_scores(pair_scores, ys, n_way: int):
    """Each class's score, (T, Q, n_way): the highest score over its support drawings (one-shot: its one).

    ``pair_scores`` (T, Q, S), ``ys`` (T, S) labels in 0..n_way-1.
    """
    member = F.one_hot(ys, n_way, dtype=pair_scores.dtype).unsqueeze(1)         # (T, 1, S, N): a constant mask
    masked = where(member, pair_scores.unsqueeze(-1), -math.inf)                # (T, Q, S, N)
    return masked.max(axis=2)


# ---- the pairs of an episode and their losses -----------------------------------------------------
def pair_labels(yq, n_way: int, dtype="float32"):
    """same[t, q, n] = 1 where query q of task t is of class n, else 0: (T, Q, n_way), a constant."""
    return F.one_hot(yq, n_way, dtype=dtype)


def balanced_pair_weights(same):
    """Weights of the (query, class) pairs, (T, Q, N): each query's same pairs share 1/2, its different pairs 1/2.

    So every query weighs 1, and same and different pairs weigh equally, as Koch's 50/50 sampling
    of pairs (Sec. 4.2) does in expectation. Needs N >= 2 (a different pair per query).
    """
    n_same = same.sum(axis=-1, keepdims=True)
    n_diff = (1.0 - same).sum(axis=-1, keepdims=True)
    return 0.5 * same / n_same + 0.5 * (1.0 - same) / n_diff


def bce_pair_losses(logits, same):
    """-[y log p + (1 - y) log(1 - p)] with p = sigmoid(logit), per pair (Koch Sec. 3.2, without the L2 term).

    Computed stably as max(s, 0) - y s + log(1 + exp(-|s|)).
    """
    return relu(logits) - same * logits + log(1.0 + exp(-abs_(logits)))


def contrastive_pair_losses(distances, same, margin: float):
    """Hadsell et al. 2006, Eq. 4 with same = 1 - Y: same D^2/2 + (1 - same) max(0, m - D)^2/2, per pair."""
    gap = relu(margin - distances)
    return 0.5 * same * distances * distances + 0.5 * (1.0 - same) * gap * gap


# ---- the learner --------------------------------------------------------------------------------------
class Siamese(MetricLearner):
    """Koch et al.'s Siamese network (``loss="bce"``), or the book's contrastive one (``loss="contrastive"``).

    Embedding: sigmoid(W f(x) + b), f the model's body (``features`` units). Scores of a
    query against each class: Koch's logit sum_j alpha_j |h_q - h_s| (bce), or -||h_q - h_s||
    (contrastive); the per-task loss is the balanced pair loss (module docstring).
    """

    name = "siamese"

    def __init__(self, model, objective, transductive: bool = True, loss: str = "bce", margin: float = 1.0,
                 features: int = FEATURES, **_inner_settings):
        super().__init__(model, objective, transductive=transductive)
        if loss not in SIAMESE_LOSSES:
            raise ValueError(f"Siamese loss must be one of {SIAMESE_LOSSES}, got {loss!r}")
        if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
            raise ValueError(f"the contrastive loss's margin must be a finite number > 0, got {margin!r}")
        if not (isinstance(features, int) and features >= 1):
            raise ValueError(f"features must be an integer >= 1, got {features!r}")
        self.loss, self.margin, self.features = loss, float(margin), features

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Reads ``cfg.transductive``, ``cfg.siamese_loss`` and ``cfg.margin``."""
        return cls(model, objective, transductive=cfg.transductive, loss=cfg.siamese_loss, margin=cfg.margin)

    def extra_params(self, rng, dtype, device) -> dict:
        """Koch's fully connected sigmoid layer, and (bce) the alphas of the weighted L1 distance and their bias."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        n_in, n_out = self.model.features, self.features
        arrays = {"siamese_fc": rng.normal(0.0, 0.2, (n_out, n_in)),        # Sec. 3.2: fc weights N(0, 0.2^2)
                  "siamese_fc_b": rng.normal(0.5, 0.01, n_out)}            # biases N(0.5, 0.01^2)
        if self.loss == "bce":
            arrays["siamese_alpha"] = rng.normal(0.0, 0.2, n_out)           # the last layer: a fc weight too
            arrays["siamese_alpha_b"] = rng.normal(0.5, 0.01, ())          # and its bias
        return {k: tensor(v, dtype=dtype, device=device, requires_grad=True) for k, v in arrays.items()}

    def embed(self, meta_params, x):
        """h = sigmoid(W f(x) + b), (T, n, features): the twin's last hidden layer (Sec. 3.1)."""
        return sigmoid(F.linear(self.model.body(meta_params, x), meta_params["siamese_fc"],
                                meta_params["siamese_fc_b"]))

    def pair_scores(self, meta_params, zs, zq):
        """(T, Q, S): Koch's logit (bce), or minus the Euclidean distance (contrastive)."""
        if self.loss == "bce":
            return weighted_l1_logits(zq, zs, meta_params["siamese_alpha"], meta_params["siamese_alpha_b"])
        return -euclidean_distances(zq, zs)

    def scores(self, meta_params, zs, ys, zq, n_way):
        return class_scores(self.pair_scores(meta_params, zs, zq), ys, n_way)

    def task_losses(self, scores, batch):
        """(T,) balanced pair loss of each task: mean over queries of its weighted (query, class) pair losses."""
        n_way = scores.shape[-1]
        if n_way < 2:
            raise ValueError("a Siamese network trains on same and different pairs: it needs tasks of 2 ways or more")
        same = pair_labels(batch.y_query, n_way, dtype=scores.dtype)
        weights = balanced_pair_weights(same)
        if self.loss == "bce":
            losses = bce_pair_losses(scores, same)
        else:
            losses = contrastive_pair_losses(-scores, same, self.margin)
        return (weights * losses).sum(axis=-1).mean(axis=-1)

    def __repr__(self):
        extra = "" if self.transductive else ", transductive=False"
        margin = f", margin={self.margin:g}" if self.loss == "contrastive" else ""
        return f"Siamese(loss={self.loss!r}{margin}, features={self.features}{extra})"
