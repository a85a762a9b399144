"""Chapter 5's checkers (the NTM's circular shift, MANN's LRU write weights): the reference passes,
each known mistake fails with its own hint."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

from chapters.solutions import ch05_memory_augmented_networks as solution
from tinymeta.exercises.ch05_memory_augmented_networks import check_circular_convolution, check_lru_write_weights

pytestmark = pytest.mark.ch05


def test_circular_convolution_reference_passes(capsys):
    assert_passes(check_circular_convolution, solution.circular_convolution, capsys)


def test_circular_convolution_not_attempted(capsys):
    assert_not_attempted(check_circular_convolution, 2, capsys)


def test_a_shift_the_wrong_way_is_named(capsys):
    def backwards(w, s):
        return sum(s[:, [k + 1]] * np.roll(w, -k, axis=1) for k in (-1, 0, 1))
    assert_fails(check_circular_convolution, backwards, "the mass moves the wrong way", capsys)


def test_a_shift_without_wraparound_is_named(capsys):
    def no_wrap(w, s):
        left = np.pad(w[:, 1:], ((0, 0), (0, 1)))
        right = np.pad(w[:, :-1], ((0, 0), (1, 0)))
        return s[:, [0]] * left + s[:, [1]] * w + s[:, [2]] * right
    assert_fails(check_circular_convolution, no_wrap, "does not wrap around", capsys)


def test_a_wrong_shape_is_named(capsys):
    assert_fails(check_circular_convolution, lambda w, s: w[0], "has shape", capsys)


def test_lru_reference_passes(capsys):
    assert_passes(check_lru_write_weights, solution.lru_write_weights, capsys)


def test_lru_not_attempted(capsys):
    assert_not_attempted(check_lru_write_weights, 4, capsys)


def _variant(swap=False, most=False, raw=False, one_location=False):
    def fn(alpha, w_read, usage, heads):
        gate = (alpha if raw else 1 / (1 + np.exp(-alpha)))[..., None]
        order = np.argsort(usage, axis=-1, kind="stable")
        pick = order[:, ::-1][:, :heads] if most else np.repeat(order[:, :1], heads, 1) if one_location \
            else order[:, :heads]
        lu = np.zeros_like(w_read)
        for b in range(usage.shape[0]):
            lu[b, np.arange(heads), pick[b]] = 1.0
        return (1 - gate) * w_read + gate * lu if swap else gate * w_read + (1 - gate) * lu
    return fn


@pytest.mark.parametrize("mistake, message", [
    (dict(swap=True), "the gates are swapped"),
    (dict(most=True), "the most used locations"),
    (dict(raw=True), "squash it with the sigmoid"),
    (dict(one_location=True), "every head writes to the one least-used location"),
])
def test_lru_mistakes_are_named(mistake, message, capsys):
    assert_fails(check_lru_write_weights, _variant(**mistake), message, capsys)
