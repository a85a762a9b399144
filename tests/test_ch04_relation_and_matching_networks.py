"""Chapter 4's checkers (matching and relation networks): the reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch04_relation_and_matching_networks as solution
from tinymeta.algorithms.matching import matching_log_probs
from tinymeta.exercises.ch04_relation_and_matching_networks import (check_class_maps, check_matching_probs,
                                                                     check_relation_loss)

pytestmark = pytest.mark.ch04


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _cos(zs, zq):
    unit = lambda z: z / np.linalg.norm(z, axis=-1, keepdims=True)  # noqa: E731
    return unit(zq) @ np.swapaxes(unit(zs), 1, 2)


# ---- matching networks ---------------------------------------------------------------------------------
def test_matching_reference_passes(capsys):
    assert_passes(check_matching_probs, solution.matching_probs, capsys)


def test_matching_tinymeta_answer_passes(capsys):
    def with_tinymeta(zs, ys, zq, n_way):
        return tm.exp(matching_log_probs(tm.tensor(zq), tm.tensor(zs), tm.tensor(ys), n_way))
    assert_passes(check_matching_probs, with_tinymeta, capsys)


@pytest.mark.parametrize("fn, message", [
    (lambda zs, ys, zq, n: _softmax(zq @ np.swapaxes(zs, 1, 2), -1) @ np.eye(n)[ys], "softmax of dot products"),
    (lambda zs, ys, zq, n: _softmax(_cos(zs, zq), 1) @ np.eye(n)[ys], "the softmax runs over the queries"),
    (lambda zs, ys, zq, n: _cos(zs, zq) @ np.eye(n)[ys], "weighted by the raw cosines"),
    (lambda zs, ys, zq, n: solution.matching_probs(zs, ys, zq, n) / np.eye(n)[ys].sum(axis=1, keepdims=True),
     "averaged within each class"),
    (lambda zs, ys, zq, n: solution.matching_probs(zs, ys, zq, n)[:, :, :-1], "has shape"),
], ids=["dot", "softmax-axis", "no-softmax", "class-mean", "shape"])
def test_matching_mistakes_are_named(fn, message, capsys):
    assert_fails(check_matching_probs, fn, message, capsys)


def test_matching_not_attempted(capsys):
    assert_not_attempted(check_matching_probs, 4, capsys)


# ---- relation networks: the loss ---------------------------------------------------------------------------
def test_relation_loss_reference_passes(capsys):
    assert_passes(check_relation_loss, solution.relation_loss, capsys)


@pytest.mark.parametrize("fn, message", [
    (lambda r, y, n: ((r - np.eye(n)[y]) ** 2).sum(axis=(1, 2)), "are summed"),
    (lambda r, y, n: -np.log(np.take_along_axis(r, y[..., None], -1)[..., 0]).mean(axis=1), "cross-entropy"),
    (lambda r, y, n: ((r - y[..., None]) ** 2).mean(axis=(1, 2)), "label number"),
    (lambda r, y, n: ((r - np.eye(n)[y]) ** 2).mean(axis=2), "one per query"),
], ids=["sum", "cross-entropy", "label-number", "per-query"])
def test_relation_loss_mistakes_are_named(fn, message, capsys):
    assert_fails(check_relation_loss, fn, message, capsys)


def test_relation_loss_not_attempted(capsys):
    assert_not_attempted(check_relation_loss, 3, capsys)


# ---- relation networks: the class maps ----------------------------------------------------------------------
def test_class_maps_reference_passes(capsys):
    assert_passes(check_class_maps, solution.class_maps, capsys)


def class_means(zs, ys, n):
    return solution.class_maps(zs, ys, n) / np.eye(n)[ys].sum(axis=1)[:, :, None, None, None]


def grouped_by_position(zs, ys, n):
    return zs.reshape((zs.shape[0], n, -1) + zs.shape[2:]).sum(axis=2)


@pytest.mark.parametrize("fn, message", [(class_means, "class means"), (grouped_by_position, "by position")],
                         ids=["mean", "by-position"])
def test_class_maps_mistakes_are_named(fn, message, capsys):
    assert_fails(check_class_maps, fn, message, capsys)


def test_class_maps_not_attempted(capsys):
    assert_not_attempted(check_class_maps, 3, capsys)
