"""The checkers of chapters 8 (gradient agreement) and 9 (NIL): the reference passes, typical mistakes fail."""
import sys

import numpy as np
import pytest
from conftest import REPO

import tinymeta as tm
from tinymeta.exercises._check import ExerciseError
from tinymeta.exercises.anil import check_nil_predict
from tinymeta.exercises.gradient_agreement import check_gradient_agreement_weights

sys.path.insert(0, str(REPO / "chapters" / "solutions"))
ga_solution = __import__("08_gradient_agreement")
nil_solution = __import__("09_anil_feature_reuse")


# ---- chapter 8: gradient-agreement weights ------------------------------------------------------------
def test_ga_reference_passes():
    assert check_gradient_agreement_weights(ga_solution.agreement_weights) is True
    check_gradient_agreement_weights(ga_solution.agreement_weights, raise_on_failure=True)


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


def book_scalar_sum(G):
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
    (book_scalar_sum, "summed to a single number"),
    (no_abs, "lacks the absolute value"),
    (no_normalisation, "not normalised"),
    (lost_sign, "lost their sign"),
    (wrong_shape, "have shape (4, 4), expected (4,)"),
])
def test_ga_mistakes_are_named(fn, message, capsys):
    assert check_gradient_agreement_weights(fn) is False
    assert message in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_gradient_agreement_weights(fn, raise_on_failure=True)


def test_ga_unknown_mistake_gets_the_worst_element(capsys):
    assert check_gradient_agreement_weights(lambda G: ga_solution.agreement_weights(G) * 1.01) is False
    out = capsys.readouterr().out
    assert "is wrong at index" in out and "expected" in out and "got" in out


# ---- chapter 9: NIL ---------------------------------------------------------------------------------
def test_nil_reference_passes():
    assert check_nil_predict(nil_solution.nil_classify) is True
    check_nil_predict(nil_solution.nil_classify, raise_on_failure=True)


def test_nil_tensor_answer_passes():
    def with_tinymeta(fs, ys, fq, n_way):
        scores = tm.algorithms.nil_predict(tm.tensor(fs), tm.tensor(ys), tm.tensor(fq), n_way)
        return scores, scores.numpy().argmax(axis=-1)
    assert check_nil_predict(with_tinymeta) is True


def dot_products(fs, ys, fq, n_way):
    onehot = np.eye(n_way)[ys]
    scores = (fq @ np.swapaxes(fs, 1, 2)) @ onehot / onehot.sum(axis=1, keepdims=True)
    return scores, scores.argmax(axis=-1)


def argmax_wrong_axis(fs, ys, fq, n_way):
    scores, _ = nil_solution.nil_classify(fs, ys, fq, n_way)
    return scores, scores.argmax(axis=1)


def summed(fs, ys, fq, n_way):
    scores, pred = nil_solution.nil_classify(fs, ys, fq, n_way)
    return scores * np.eye(n_way)[ys].sum(axis=1)[:, None, :], pred


def one_output(fs, ys, fq, n_way):
    return nil_solution.nil_classify(fs, ys, fq, n_way)[0]


@pytest.mark.parametrize("fn, message", [
    (dot_products, "dot products"),
    (argmax_wrong_axis, "wrong axis"),
    (summed, "take their mean"),
    (one_output, "return two things"),
])
def test_nil_mistakes_are_named(fn, message, capsys):
    assert check_nil_predict(fn) is False
    assert message in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=message):
        check_nil_predict(fn, raise_on_failure=True)


def test_nil_not_attempted(capsys):
    def stub(fs, ys, fq, n_way):
        raise NotImplementedError("Exercise 1")
    assert check_nil_predict(stub) is False
    assert "not attempted yet" in capsys.readouterr().out
