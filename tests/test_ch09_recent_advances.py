"""Chapter 9, section 9.1 (NIL: classification without a head): the reference passes, typical mistakes fail."""
import numpy as np
import pytest
from exercise_helpers import assert_fails

import tinymeta as tm
from chapters.solutions import ch09_recent_advances as solution
from tinymeta.exercises.ch09_recent_advances import check_nil_predict

pytestmark = pytest.mark.ch09


# ---- chapter 9, section 9.1: NIL --------------------------------------------------------------------
def test_nil_reference_passes():
    assert check_nil_predict(solution.nil_classify) is True
    check_nil_predict(solution.nil_classify, raise_on_failure=True)


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
    scores, _ = solution.nil_classify(fs, ys, fq, n_way)
    return scores, scores.argmax(axis=1)


def summed(fs, ys, fq, n_way):
    scores, pred = solution.nil_classify(fs, ys, fq, n_way)
    return scores * np.eye(n_way)[ys].sum(axis=1)[:, None, :], pred


def test_summed_similarities_predict_like_the_mean_in_balanced_tasks():
    """Why the hint does not call the sum a different algorithm: K shots per class scale every score by K."""
    from tinymeta.exercises.ch09_recent_advances import _case
    fs, ys, fq = _case(1, 2, 3, 4, 10, 8)
    mean_scores, mean_pred = solution.nil_classify(fs, ys, fq, 3)
    sum_scores, sum_pred = summed(fs, ys, fq, 3)
    np.testing.assert_allclose(sum_scores, 4 * mean_scores)
    np.testing.assert_array_equal(sum_pred, mean_pred)


def one_output(fs, ys, fq, n_way):
    return solution.nil_classify(fs, ys, fq, n_way)[0]


@pytest.mark.parametrize("fn, message", [
    (dot_products, "dot products"),
    (argmax_wrong_axis, "wrong axis"),
    (summed, "it predicts the same classes as the mean; this exercise asks for the mean"),
    (one_output, "return two things"),
])
def test_nil_mistakes_are_named(fn, message, capsys):
    assert_fails(check_nil_predict, fn, message, capsys)


def test_nil_not_attempted(capsys):
    def stub(fs, ys, fq, n_way):
        raise NotImplementedError("Exercise 1")
    assert check_nil_predict(stub) is False
    assert "not attempted yet" in capsys.readouterr().out
