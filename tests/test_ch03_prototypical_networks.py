"""Chapter 3's checker (the scores of prototypical networks): the reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch03_prototypical_networks as solution
from tinymeta.algorithms.protonet import protonet_scores
from tinymeta.exercises.ch03_prototypical_networks import check_proto_scores

pytestmark = pytest.mark.ch03


def test_reference_passes(capsys):
    assert_passes(check_proto_scores, solution.proto_scores, capsys)


def test_a_tinymeta_answer_passes():
    assert check_proto_scores(lambda zs, ys, zq, n: protonet_scores(tm.tensor(zs), tm.tensor(ys), tm.tensor(zq), n))


def _prototypes(zs, ys, n_way, reduce="mean"):
    onehot = np.eye(n_way)[ys]
    sums = np.swapaxes(onehot, 1, 2) @ zs
    return sums / onehot.sum(axis=1)[..., None] if reduce == "mean" else sums


def _sq(zq, c):
    return ((zq[:, :, None] - c[:, None]) ** 2).sum(-1)


def euclidean(zs, ys, zq, n):
    return -np.sqrt(_sq(zq, _prototypes(zs, ys, n)))


def no_minus(zs, ys, zq, n):
    return _sq(zq, _prototypes(zs, ys, n))


def class_sums(zs, ys, zq, n):
    return -_sq(zq, _prototypes(zs, ys, n, "sum"))


def one_prototype(zs, ys, zq, n):
    c = np.broadcast_to(zs.mean(axis=1, keepdims=True), (zs.shape[0], n, zs.shape[2]))
    return -_sq(zq, c)


def transposed(zs, ys, zq, n):
    return np.swapaxes(solution.proto_scores(zs, ys, zq, n), 1, 2)


@pytest.mark.parametrize("fn, message", [
    (euclidean, "minus the Euclidean distance; prototypical networks use the squared distance"),
    (no_minus, "the squared distances themselves"),
    (class_sums, "sums of the class's support embeddings"),
    (one_prototype, "every class has the same prototype"),
    (transposed, "(tasks, queries, classes)"),
])
def test_mistakes_are_named(fn, message, capsys):
    assert_fails(check_proto_scores, fn, message, capsys)


def test_not_attempted(capsys):
    assert_not_attempted(check_proto_scores, 4, capsys)
