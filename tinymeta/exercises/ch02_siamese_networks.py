"""Chapter 2 exercises: the two heads of a Siamese network.

1. ``weighted_l1_logits(zq, zs, alpha, bias)``: Koch et al.'s (2015, Sec. 3.1) logit
   ``sum_j alpha_j |zq_j - zs_j| + bias`` for every query (Q, D) against every support
   embedding (S, D): an array (Q, S). ``sigmoid`` of it is p, the probability "same".
2. ``contrastive_losses(d, same, margin)``: the contrastive loss of Hadsell, Chopra & LeCun
   (2006, Eq. 4) per pair, with ``same`` = 1 for a same pair (the paper's Y = 1 - same):
   ``same * d^2 / 2 + (1 - same) * max(0, margin - d)^2 / 2``.

Each checker compares with the reference on random inputs and names the known mistakes.
"""
from __future__ import annotations

import numpy as np

from ._check import Mismatch, as_array, compare, run_checker


def _weighted_l1(zq, zs, alpha, bias):
    return (alpha * np.abs(zq[:, None] - zs[None])).sum(-1) + bias


def check_weighted_l1_logits(fn, raise_on_failure: bool = False) -> bool:
    """Grade ``fn(zq, zs, alpha, bias) -> (Q, S)`` against Koch's weighted L1 logit."""
    def body():
        rng = np.random.default_rng(0)
        zq, zs = rng.uniform(0, 1, (3, 5)), rng.uniform(0, 1, (4, 5))
        alpha, bias = rng.standard_normal(5), 0.3
        expected = _weighted_l1(zq, zs, alpha, bias)
        got = as_array(fn(zq.copy(), zs.copy(), alpha.copy(), bias), "the logits")
        mistakes = [
            (expected.T, "the result is (S, Q): row q should be query q against every support embedding"),
            ((alpha * (zq[:, None] - zs[None]) ** 2).sum(-1) + bias,
             "that is a weighted squared (L2) distance: Koch's is the weighted L1, sum_j alpha_j |h1_j - h2_j|"),
            ((alpha * (zq[:, None] - zs[None])).sum(-1) + bias,
             "the differences need their absolute value |h1_j - h2_j| (a signed difference is not a distance)"),
            (1 / (1 + np.exp(-expected)), "that is p = sigmoid(logit): return the logit, the argument of the sigmoid"),
            (expected - bias, "the bias is missing: add it after the weighted sum"),
        ]
        right = got.shape == expected.shape and np.allclose(got, expected, rtol=1e-6, atol=1e-9)
        if not right:  # (a 3 x 4 answer cannot be mistaken for its 4 x 3 transpose: the shapes differ)
            for wrong, hint in mistakes:
                if wrong.shape == got.shape and np.allclose(got, wrong, rtol=1e-6, atol=1e-9):
                    raise Mismatch(hint)
        compare(got, expected, "the logits")
    return run_checker("weighted_l1_logits", body, raise_on_failure)


def _contrastive(d, same, margin):
    return 0.5 * same * d ** 2 + 0.5 * (1 - same) * np.maximum(0.0, margin - d) ** 2


def check_contrastive_losses(fn, raise_on_failure: bool = False) -> bool:
    """Grade ``fn(d, same, margin) -> (n,)`` against Hadsell et al.'s contrastive loss, same = 1 - Y."""
    def body():
        d = np.array([0.0, 0.4, 0.9, 1.3, 2.5, 0.2, 1.1, 3.0])
        same = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=np.float64)
        margin = 2.0
        expected = _contrastive(d, same, margin)
        got = as_array(fn(d.copy(), same.copy(), margin), "the losses")
        mistakes = [
            (_contrastive(d, 1 - same, margin),
             "the labels are swapped: in Hadsell et al.'s Eq. 4 Y = 0 marks a SIMILAR pair; here same = 1 - Y, so a "
             "same pair pays d^2 / 2 and a different pair pays max(0, m - d)^2 / 2"),
            (2 * expected, "each term has a factor 1/2 in Eq. 4 (the book's notebook drops it: "
                           "same minimiser, twice the loss)"),
            (0.5 * same * d ** 2 + 0.5 * (1 - same) * np.maximum(0.0, d - margin) ** 2,
             "the hinge is max(0, m - d): a different pair costs something only while it is CLOSER than the margin"),
            (0.5 * same * d ** 2 + 0.5 * (1 - same) * np.maximum(0.0, margin - d),
             "square the hinge: max(0, m - d)^2 / 2"),
            (0.5 * same * d + 0.5 * (1 - same) * np.maximum(0.0, margin - d) ** 2,
             "a same pair pays d^2 / 2, the squared distance"),
        ]
        if got.shape == expected.shape:
            for wrong, hint in mistakes:
                if np.allclose(got, wrong, rtol=1e-6, atol=1e-9):
                    raise Mismatch(hint)
        compare(got, expected, "the losses")
    return run_checker("contrastive_losses", body, raise_on_failure)


__all__ = ["check_contrastive_losses", "check_weighted_l1_logits"]
