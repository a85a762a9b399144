"""Chapter 2's checkers (Siamese networks): the reference solutions pass, each known mistake fails with its
diagnosis, and the reference agrees with tinymeta's own Siamese heads."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch02_siamese_networks as solution
from tinymeta.algorithms.siamese import contrastive_pair_losses, weighted_l1_logits
from tinymeta.exercises.ch02_siamese_networks import check_contrastive_losses, check_weighted_l1_logits

pytestmark = pytest.mark.ch02


# ---- exercise 1: Koch's weighted L1 logit --------------------------------------------------------------
def test_weighted_l1_reference_passes(capsys):
    assert_passes(check_weighted_l1_logits, solution.weighted_l1_logits, capsys)


def test_weighted_l1_not_attempted(capsys):
    assert_not_attempted(check_weighted_l1_logits, 4, capsys)


@pytest.mark.parametrize("wrong, message", [
    (lambda zq, zs, a, b: solution.weighted_l1_logits(zq, zs, a, b).T, "the result is (S, Q)"),
    (lambda zq, zs, a, b: (a * (zq[:, None] - zs[None]) ** 2).sum(-1) + b, "weighted squared (L2) distance"),
    (lambda zq, zs, a, b: (a * (zq[:, None] - zs[None])).sum(-1) + b, "need their absolute value"),
    (lambda zq, zs, a, b: 1 / (1 + np.exp(-solution.weighted_l1_logits(zq, zs, a, b))), "return the logit"),
    (lambda zq, zs, a, b: solution.weighted_l1_logits(zq, zs, a, 0.0), "the bias is missing"),
    (lambda zq, zs, a, b: solution.weighted_l1_logits(zq, zs, a, b) + 1e-3, "the logits is wrong at index"),
])
def test_weighted_l1_mistakes_are_named(wrong, message, capsys):
    assert_fails(check_weighted_l1_logits, wrong, message, capsys)


# ---- exercise 2: the contrastive loss and its convention ------------------------------------------------
def test_contrastive_reference_passes(capsys):
    assert_passes(check_contrastive_losses, solution.contrastive_losses, capsys)


def test_contrastive_not_attempted(capsys):
    assert_not_attempted(check_contrastive_losses, 3, capsys)


@pytest.mark.parametrize("wrong, message", [
    (lambda d, same, m: solution.contrastive_losses(d, 1 - same, m), "the labels are swapped"),
    (lambda d, same, m: 2 * solution.contrastive_losses(d, same, m), "a factor 1/2"),
    (lambda d, same, m: 0.5 * same * d ** 2 + 0.5 * (1 - same) * np.maximum(0, d - m) ** 2,
     "CLOSER than the margin"),
    (lambda d, same, m: 0.5 * same * d ** 2 + 0.5 * (1 - same) * np.maximum(0, m - d), "square the hinge"),
    (lambda d, same, m: 0.5 * same * d + 0.5 * (1 - same) * np.maximum(0, m - d) ** 2, "the squared distance"),
    (lambda d, same, m: solution.contrastive_losses(d, same, m)[:-1], "has shape (7,), expected (8,)"),
])
def test_contrastive_mistakes_are_named(wrong, message, capsys):
    assert_fails(check_contrastive_losses, wrong, message, capsys)


def test_the_references_agree_with_tinymetas_siamese_heads():
    rng = np.random.default_rng(1)
    zq, zs, alpha = rng.uniform(0, 1, (3, 4)), rng.uniform(0, 1, (5, 4)), rng.standard_normal(4)
    ours = weighted_l1_logits(tm.tensor(zq[None]), tm.tensor(zs[None]), tm.tensor(alpha), tm.tensor(0.2)).numpy()[0]
    np.testing.assert_allclose(solution.weighted_l1_logits(zq, zs, alpha, 0.2), ours, rtol=1e-5)
    d, same = rng.uniform(0, 3, 10), rng.integers(0, 2, 10).astype(float)
    ours = contrastive_pair_losses(tm.tensor(d, dtype="float64"), tm.tensor(same, dtype="float64"), 1.5).numpy()
    np.testing.assert_allclose(solution.contrastive_losses(d, same, 1.5), ours, rtol=1e-12)
