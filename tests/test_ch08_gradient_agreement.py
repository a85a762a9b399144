"""Chapter 8's checker (gradient-agreement weights): the reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails

import tinymeta as tm
from chapters.solutions import ch08_gradient_agreement as solution
from tinymeta.exercises.ch08_gradient_agreement import check_gradient_agreement_weights

pytestmark = pytest.mark.ch08


# ---- chapter 8: gradient-agreement weights ------------------------------------------------------------
def test_ga_reference_passes():
    assert check_gradient_agreement_weights(solution.agreement_weights) is True
    check_gradient_agreement_weights(solution.agreement_weights, raise_on_failure=True)


def test_ga_tensor_answer_passes():
    def as_tensor(G):
        g = tm.tensor(G)
        s = (g @ g.transpose()).sum(axis=1)
        return s / abs(s).sum()
    assert check_gradient_agreement_weights(as_tensor) is True


def test_ga_not_attempted(capsys):
    def stub(G):
        raise NotImplementedError("Exercise 1")
    assert check_gradient_agreement_weights(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def book_normaliser(G):
    """The book's notebook 8.4, cell 13: the normaliser sums |g_i . g_j| over all pairs (i, j)."""
    gram = G @ G.T
    return gram.sum(axis=1) / np.abs(gram).sum()


def scalar_sum(G):
    g = G.sum(axis=1)
    s = g * g.sum()
    return s / np.abs(s).sum()


def no_abs(G):
    s = (G @ G.T).sum(axis=1)
    return s / s.sum()


def no_normalisation(G):
    return (G @ G.T).sum(axis=1)


def lost_sign(G):
    s = np.abs((G @ G.T).sum(axis=1))
    return s / s.sum()


def wrong_shape(G):
    s = G @ G.T
    return s / np.abs(s.sum(axis=1)).sum()


@pytest.mark.parametrize("fn, message", [
    (book_normaliser, "the sum over all pairs of |g_i . g_j| (the book's notebook 8.4 does this)"),
    (scalar_sum, "summed to a single number before the inner products"),
    (no_abs, "lacks the absolute value"),
    (no_normalisation, "not normalised"),
    (lost_sign, "lost their sign"),
    (wrong_shape, "have shape (4, 4), expected (4,)"),
])
def test_ga_mistakes_are_named(fn, message, capsys):
    assert_fails(check_gradient_agreement_weights, fn, message, capsys)


def test_ga_unknown_mistake_gets_the_worst_element(capsys):
    assert check_gradient_agreement_weights(lambda G: solution.agreement_weights(G) * 1.01) is False
    out = capsys.readouterr().out
    assert "is wrong at index" in out and "expected" in out and "got" in out
