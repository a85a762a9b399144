"""Chapter 3's checkers (prototypes, the softmax over negative squared distances, Gaussian prototypes, one soft
k-means refinement): the reference passes, each known mistake fails with its hint, and the reference agrees with
the library's learners."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch03_prototypical_networks as solution
from tinymeta import functional as F
from tinymeta.algorithms import gaussian_protonet, protonet, semi_protonet
from tinymeta.exercises.ch03_prototypical_networks import (
    check_gaussian_prototypes,
    check_log_probabilities,
    check_prototypes,
    check_soft_kmeans_step,
)

pytestmark = pytest.mark.ch03


@pytest.mark.parametrize("checker, fn", [
    (check_prototypes, solution.prototypes),
    (check_log_probabilities, solution.log_probabilities),
    (check_gaussian_prototypes, solution.gaussian_prototypes),
    (check_soft_kmeans_step, solution.soft_kmeans_step),
], ids=lambda v: getattr(v, "__name__", ""))
def test_reference_passes(checker, fn, capsys):
    assert_passes(checker, fn, capsys)


@pytest.mark.parametrize("checker, nargs", [(check_prototypes, 3), (check_log_probabilities, 2),
                                            (check_gaussian_prototypes, 4), (check_soft_kmeans_step, 4)])
def test_not_attempted(checker, nargs, capsys):
    assert_not_attempted(checker, nargs, capsys)


def onehot(y, n, like):
    return F.one_hot(y, n, dtype=like.dtype)


# ---- Exercise 1: prototypes -------------------------------------------------------------------------------------
def proto_sum(z, y, n):
    return onehot(y, n, z).swapaxes(-1, -2) @ z


def proto_global_mean(z, y, n):
    T, _, D = z.shape
    return z.mean(axis=1, keepdims=True).broadcast_to((T, n, D))


def proto_book_reshape(z, y, n):
    """The book's notebook 3.3, cell 46: reshape to (classes, shots, D), mean over the shots."""
    T, S, D = z.shape
    return z.reshape((T, n, S // n, D)).mean(axis=2)


def proto_over_dims(z, y, n):
    return z.mean(axis=-1)


def proto_numpy(z, y, n):
    return solution.prototypes(z, y, n).numpy()


@pytest.mark.parametrize("fn, message", [
    (proto_sum, "Eq. 1 is their MEAN"),
    (proto_global_mean, "every class got the mean of the whole support set"),
    (proto_book_reshape, "as if sorted by class (the book's notebook does this)"),
    (proto_over_dims, "the mean ran over the embedding's dimensions"),
    (proto_numpy, "not a Tensor"),
])
def test_prototype_mistakes(fn, message, capsys):
    assert_fails(check_prototypes, fn, message, capsys)


# ---- Exercise 2: log-probabilities --------------------------------------------------------------------------
def sq(zq, c):
    d = zq.unsqueeze(-2) - c.unsqueeze(-3)
    return (d * d).sum(axis=-1)


def logp_euclidean(zq, c):
    return F.log_softmax(-tm.sqrt(sq(zq, c)), dim=-1)


def logp_positive(zq, c):
    return F.log_softmax(sq(zq, c), dim=-1)


def logp_book_mean(zq, c):
    return F.log_softmax(-sq(zq, c) / zq.shape[-1], dim=-1)


def logp_over_queries(zq, c):
    return F.log_softmax(-sq(zq, c), dim=1)


def logp_logits(zq, c):
    return -sq(zq, c)


def logp_probabilities(zq, c):
    return tm.exp(F.log_softmax(-sq(zq, c), dim=-1))


def logp_naive(zq, c):
    e = tm.exp(-sq(zq, c))
    return tm.log(e / e.sum(axis=-1, keepdims=True))


def logp_detached(zq, c):
    return solution.log_probabilities(zq, c).detach()


@pytest.mark.parametrize("fn, message", [
    (logp_euclidean, "its SQUARE (a Bregman divergence"),
    (logp_positive, "the logits are the NEGATIVE squared distances"),
    (logp_book_mean, "averaged over the D dimensions (the book's reduce_mean)"),
    (logp_over_queries, "normalised over the QUERIES for each class"),
    (logp_logits, "not log-probabilities"),
    (logp_probabilities, "these are the probabilities"),
    (logp_naive, "use log_softmax (subtract the largest logit)"),
    (logp_detached, "cut from the graph"),
])
def test_log_probability_mistakes(fn, message, capsys):
    assert_fails(check_log_probabilities, fn, message, capsys)


# ---- Exercise 3: Gaussian prototypes --------------------------------------------------------------------------
def gauss_plain_mean(z, s, y, n):
    _, S = solution.gaussian_prototypes(z, s, y, n)
    return solution.prototypes(z, y, n), S


def gauss_unnormalised(z, s, y, n):
    oh = onehot(y, n, z).swapaxes(-1, -2)
    return oh @ (s * z), oh @ s


def gauss_by_variance(z, s, y, n):
    oh = onehot(y, n, z).swapaxes(-1, -2)
    return (oh @ (z / s)) / (oh @ (1.0 / s)), oh @ s


def gauss_mean_precision(z, s, y, n):
    oh = onehot(y, n, z).swapaxes(-1, -2)
    p, S = solution.gaussian_prototypes(z, s, y, n)
    return p, S / oh.sum(axis=-1, keepdims=True)


def gauss_variance(z, s, y, n):
    p, S = solution.gaussian_prototypes(z, s, y, n)
    return p, 1.0 / S


def gauss_not_pair(z, s, y, n):
    return solution.gaussian_prototypes(z, s, y, n)[0]


@pytest.mark.parametrize("fn, message", [
    (gauss_plain_mean, "p is the plain class mean"),
    (gauss_unnormalised, "the weighted sum is not normalised"),
    (gauss_by_variance, "weighted by their variance 1/s_i"),
    (gauss_mean_precision, "Fort sums them"),
    (gauss_variance, "this is the variance"),
    (gauss_not_pair, "return a pair (p, S)"),
])
def test_gaussian_prototype_mistakes(fn, message, capsys):
    assert_fails(check_gaussian_prototypes, fn, message, capsys)


# ---- Exercise 4: soft k-means -----------------------------------------------------------------------------------
def kmeans_with(assign, labeled="examples"):
    """A refinement whose soft assignments come from ``assign(neg_sq_dist)`` and whose labeled term is ``labeled``."""
    def step(c, z, y, u):
        n = c.shape[1]
        r = assign(-sq(u, c))
        oh = onehot(y, n, z)
        if labeled == "examples":
            top, mass = oh.swapaxes(-1, -2) @ z, oh.sum(axis=1)
        elif labeled == "prototype":
            top, mass = c, oh.sum(axis=1) * 0.0 + 1.0
        elif labeled == "numerator only":
            top, mass = oh.swapaxes(-1, -2) @ z, oh.sum(axis=1) * 0.0
        else:
            top, mass = c * 0.0, oh.sum(axis=1) * 0.0
        return (top + r.swapaxes(-1, -2) @ u) / (mass + r.sum(axis=1)).unsqueeze(-1)
    return step


def softmax(dim):
    return lambda logits: tm.exp(F.log_softmax(logits, dim=dim))


@pytest.mark.parametrize("fn, message", [
    (kmeans_with(tm.exp), "the soft assignments were not normalised"),
    (kmeans_with(softmax(1)), "normalised over the unlabeled examples"),
    (kmeans_with(lambda lg: tm.exp(F.log_softmax(-lg, dim=-1))), "the assignments favour FAR clusters"),
    (kmeans_with(softmax(-1), labeled="none"), "the labeled term is missing"),
    (kmeans_with(softmax(-1), labeled="prototype"), "the labeled term counts the old prototype once"),
    (kmeans_with(softmax(-1), labeled="numerator only"), "the denominator lacks the labeled examples' count"),
    (kmeans_with(lambda lg: tm.tensor((lg.numpy() == lg.numpy().max(-1, keepdims=True)).astype(float))),
     "hard assignments"),
])
def test_soft_kmeans_mistakes(fn, message, capsys):
    assert_fails(check_soft_kmeans_step, fn, message, capsys)


# ---- the reference solutions are the library's pieces -------------------------------------------------------------
def test_solutions_agree_with_the_learners():
    rng = np.random.default_rng(0)
    y = tm.tensor(np.stack([rng.permutation(np.repeat(np.arange(3), 2)) for _ in range(2)]))
    z, zq, u = (tm.tensor(rng.standard_normal(s)) for s in ((2, 6, 4), (2, 5, 4), (2, 7, 4)))
    c = solution.prototypes(z, y, 3)
    np.testing.assert_allclose(c.numpy(), protonet.prototypes(z, y, 3).numpy(), rtol=1e-12)
    np.testing.assert_allclose(solution.log_probabilities(zq, c).numpy(),
                               F.log_softmax(protonet.protonet_scores(z, y, zq, 3), dim=-1).numpy(), rtol=1e-12)
    s = tm.tensor(1.0 + rng.random((2, 6, 1)))
    for a, b in zip(solution.gaussian_prototypes(z, s, y, 3), gaussian_protonet.gaussian_prototypes(z, s, y, 3)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    refined, _ = semi_protonet.soft_kmeans_step(c, z, onehot(y, 3, z), u,
                                                lambda p, h: -protonet.squared_distances(h, p))
    np.testing.assert_allclose(solution.soft_kmeans_step(c, z, y, u).numpy(), refined.numpy(), rtol=1e-12)


# ---- other right answers pass ------------------------------------------------------------------------------------
def proto_by_class(z, y, n):
    """A loop over the classes with a mask per class, stacked: the same means."""
    rows = []
    for k in range(n):
        mask = tm.tensor((y.numpy() == k).astype(np.float64)).unsqueeze(-1)      # (T, S, 1)
        rows.append((z * mask).sum(axis=1) / mask.sum(axis=1))
    return tm.stack(rows, axis=1)


def logp_linear(zq, c):
    """Section 2's linear form: logits 2 c_k . z - |c_k|^2 (the |z|^2 term cancels in the softmax)."""
    logits = 2.0 * (zq @ c.swapaxes(-1, -2)) - (c * c).sum(axis=-1).unsqueeze(-2)
    return F.log_softmax(logits, dim=-1)


@pytest.mark.parametrize("checker, fn", [(check_prototypes, proto_by_class),
                                         (check_log_probabilities, logp_linear)], ids=["by-class", "linear"])
def test_other_right_answers_pass(checker, fn):
    assert checker(fn) is True
