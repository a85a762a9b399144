"""Chapter 9: section 9.1 (NIL: classification without a head) and section 9.2 (TAML's regularisers): the
references pass, typical mistakes fail with their hints."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch09_recent_advances as solution
from tinymeta.exercises.ch09_recent_advances import check_nil_predict, check_taml_regularisers

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


# ---- chapter 9, section 9.2: TAML's regularisers -------------------------------------------------------
def test_taml_reference_passes(capsys):
    assert_passes(check_taml_regularisers, solution.taml_regularisers, capsys)


def test_taml_tinymeta_answer_passes():
    from tinymeta.algorithms.taml import entropy, theil

    def with_tinymeta(before, after, losses):
        return (entropy(tm.tensor(after)) - entropy(tm.tensor(before))).mean(), theil(tm.tensor(losses))
    assert check_taml_regularisers(with_tinymeta) is True


def test_taml_reference_matches_a_hand_computed_theil_and_entropy():
    """Theil of [1, 2, 3] by hand; the entropy of uniform logits is ln C, of one certain class 0."""
    uniform, certain = np.zeros((1, 1, 3)), np.array([[[0.0, 0.0, 800.0]]])
    h, t = solution.taml_regularisers(uniform, certain, np.array([1.0, 2.0, 3.0]))
    assert np.isclose(t, (0.5 * np.log(0.5) + 1.5 * np.log(1.5)) / 3, rtol=1e-13)        # 0.0872080...
    assert np.isclose(h, 0.0 - np.log(3.0), rtol=1e-13)


def _with(entropy_term=None, theil_index=None):
    def fn(before, after, losses):
        h, t = solution.taml_regularisers(before, after, losses)
        return (h if entropy_term is None else entropy_term(before, after, losses, h),
                t if theil_index is None else theil_index(losses, t))
    return fn


def _h(logits, axis=-1):
    z = logits - logits.max(axis=axis, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(axis=axis)


TAML_MISTAKES = [
    (_with(entropy_term=lambda b, a, l, h: -h), "wrong sign"),
    (_with(entropy_term=lambda b, a, l, h: (_h(a).mean(-1) - _h(a).mean(-1)).mean()), "same predictions"),
    (_with(entropy_term=lambda b, a, l, h: -_h(b).mean()), "entropy-reduction part"),
    (_with(entropy_term=lambda b, a, l, h: -_h(a).mean()), "not the adapted one's"),
    (_with(entropy_term=lambda b, a, l, h: h / np.log(2.0)), "natural log"),
    (_with(entropy_term=lambda b, a, l, h: (_h(a, 1) - _h(b, 1)).mean()), "examples axis"),
    (_with(entropy_term=lambda b, a, l, h: h * b.shape[1]), "a sum where a mean is meant"),
    (_with(theil_index=lambda l, t: np.log(l.mean())), "log of the mean loss"),
    (_with(theil_index=lambda l, t: (l / l.mean() * np.log(l.mean())).mean()), "log of the mean loss"),
    (_with(theil_index=lambda l, t: (l * np.log(l / l.mean())).mean()), "weighs ln(l_i / mean) by l_i"),
    (_with(theil_index=lambda l, t: (l / l.mean() * np.log(l / l.mean())).sum()), "sums over the tasks"),
    (_with(theil_index=lambda l, t: (l / l.mean() * np.log(l)).mean()), "takes ln l_i"),
    (lambda b, a, l: solution.taml_regularisers(b, a, l)[0], "return two numbers"),
    (_with(entropy_term=lambda b, a, l, h: _h(a) - _h(b)), "one number"),
]


@pytest.mark.parametrize("fn, message", TAML_MISTAKES, ids=[m for _, m in TAML_MISTAKES])
def test_taml_mistakes_are_named(fn, message, capsys):
    assert_fails(check_taml_regularisers, fn, message, capsys)


def test_taml_not_attempted(capsys):
    assert_not_attempted(check_taml_regularisers, 3, capsys)


# ---- the chapter's text against the results page and the presets ----------------------------------------
def chapter_text():
    import json
    from pathlib import Path
    nb = json.loads((Path(__file__).resolve().parents[1] / "chapters" / "09_recent_advances.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_the_anil_and_nil_numbers_the_chapter_quotes_are_on_the_results_page():
    from pathlib import Path
    results = (Path(__file__).resolve().parents[1] / "RESULTS.md").read_text()
    text = chapter_text()
    for quoted in ["93.67 ± 0.42", "95.01 ± 0.39", "60,000"]:
        assert quoted in text
        assert quoted.replace(",", "") in results.replace(",", ""), f"the chapter quotes {quoted}, RESULTS.md has not"
    assert "ANIL lagged MAML here, unlike" not in text          # the old claim from a 2,000-iteration run


def test_the_chapter_says_the_taml_papers_numbers_were_not_read_while_the_presets_have_none():
    from tinymeta.experiment.presets import PAPERS
    if PAPERS["taml"][1]:
        pytest.fail("PAPERS['taml'] now has the paper's numbers: say so in chapter 9, section 9.2")
    assert "could not be read" in chapter_text()
