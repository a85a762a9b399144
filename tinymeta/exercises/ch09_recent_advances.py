"""Chapter 9 (recent advances): section 9.1's exercise, NIL, classification without a head
(Raghu et al. 2020, arXiv:1909.09157, Sec. 5.1), and section 9.2's, TAML's two regularisers
(Jamal & Qi 2019, arXiv:1805.07722; :func:`check_taml_regularisers`).

The student writes ``nil_classify(fs, ys, fq, n_way) -> (scores, predictions)``:
for each task, the score of query q for class c is the mean cosine similarity
of q's features to the support features of class c, and the prediction is the
class with the highest score. The checker compares with
:func:`tinymeta.algorithms.nil_predict` and recognises dot products in place of
cosine similarities, sums in place of means (the paper's own form: same predictions
in balanced tasks, and the hint says so), and an argmax over the wrong axis.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import nil_predict
from ..tensor import tensor
from ._check import Mismatch, as_array, compare, run_checker


def _case(seed, T, n_way, shots, Q, D):
    """Features whose norms vary a lot, so that dot products and cosines rank classes differently."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(T, n_way, D))
    ys = np.stack([rng.permutation(np.repeat(np.arange(n_way), shots)) for _ in range(T)])
    scale = rng.uniform(0.2, 5.0, size=(T, n_way * shots, 1))
    fs = (np.take_along_axis(protos, ys[..., None], axis=1) + 0.7 * rng.normal(size=(T, n_way * shots, D))) * scale
    yq = rng.integers(0, n_way, size=(T, Q))
    fq = (np.take_along_axis(protos, yq[..., None], axis=1) + 0.7 * rng.normal(size=(T, Q, D))) \
        * rng.uniform(0.2, 5.0, size=(T, Q, 1))
    return fs, ys.astype(np.int64), fq


def _reference(fs, ys, fq, n_way):
    scores = nil_predict(tensor(fs), tensor(ys), tensor(fq), n_way).numpy()
    return scores, scores.argmax(axis=-1)


def _dot_scores(fs, ys, fq, n_way):
    onehot = np.eye(n_way)[ys]                                   # (T, S, C)
    return (fq @ np.swapaxes(fs, 1, 2)) @ onehot / onehot.sum(axis=1, keepdims=True)


def check_nil_predict(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(fs, ys, fq, n_way) -> (scores (T, Q, n_way), predictions (T, Q))``.

    fs (T, S, D) float64 support features, ys (T, S) int64 labels in [0, n_way),
    fq (T, Q, D) float64 query features (NumPy arrays).
    """

    def body():
        cases = [("a 5-way 1-shot case", _case(0, 3, 5, 1, 7, 6)),
                 ("a 3-way 4-shot case", _case(1, 2, 3, 4, 10, 8))]
        for what, (fs, ys, fq) in cases:
            n_way = int(ys.max()) + 1
            out = student_fn(fs.copy(), ys.copy(), fq.copy(), n_way)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise Mismatch("the function should return two things: (scores, predictions)")
            got_scores, got_pred = as_array(out[0], "scores"), as_array(out[1], "predictions")
            scores, pred = _reference(fs, ys, fq, n_way)
            if got_scores.shape != scores.shape:
                raise Mismatch(f"on {what}: scores have shape {got_scores.shape}, expected {scores.shape} "
                               "(tasks, queries, classes)")
            if np.all(np.isfinite(got_scores)) and not np.allclose(got_scores, scores, rtol=1e-6, atol=1e-9):
                if np.allclose(got_scores, _dot_scores(fs, ys, fq, n_way), rtol=1e-6, atol=1e-9):
                    raise Mismatch(f"on {what}: the scores are dot products of the features; NIL uses the cosine "
                                   "similarity (divide by both features' norms), so a feature's length does not "
                                   "decide the class")
                shots = np.eye(n_way)[ys].sum(axis=1)[:, None, :]          # (T, 1, C)
                if np.allclose(got_scores, scores * shots, rtol=1e-6, atol=1e-9):
                    raise Mismatch(f"on {what}: the scores sum the similarities over a class's support examples. "
                                   "That is the paper's own form (support labels weighted by the similarities, as "
                                   "in matching networks), and in a balanced task, where every class has the same "
                                   "number of shots, it predicts the same classes as the mean; this exercise asks "
                                   "for the mean (divide by each class's number of support examples) so that scores "
                                   "compare across shots")
            compare(got_scores, scores, f"scores on {what}")
            if got_pred.shape != pred.shape:
                hint = ""
                if got_pred.shape == scores.shape[:1] + scores.shape[2:] or got_pred.shape == scores.shape[1:]:
                    hint = ": the argmax ran over the wrong axis; take it over the classes (the last axis)"
                raise Mismatch(f"on {what}: predictions have shape {got_pred.shape}, expected {pred.shape} "
                               f"(tasks, queries){hint}")
            if not np.array_equal(got_pred, pred):
                t, q = (int(i) for i in np.argwhere(got_pred != pred)[0])
                raise Mismatch(f"on {what}: task {t}, query {q} is predicted {got_pred[t, q]:g}, expected class "
                               f"{pred[t, q]} (the class with the highest score)")

    return run_checker("check_nil_predict", body, raise_on_failure)


# ---- section 9.2: TAML's two regularisers (Jamal & Qi 2019, arXiv:1805.07722) ------------------------
def _taml_case(seed, T, N, C):
    """Logits of the initial and the adapted model (T tasks, N examples, C classes) and T unequal task losses."""
    rng = np.random.default_rng(seed)
    before = rng.normal(scale=0.5, size=(T, N, C))
    after = rng.normal(scale=3.0, size=(T, N, C))                  # sharper: the adapted model is more confident
    losses = rng.uniform(0.2, 3.0, size=T)
    return before, after, losses


def _np_entropy(logits, axis=-1):
    z = logits - logits.max(axis=axis, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(axis=axis)


def _taml_reference(before, after, losses):
    from ..algorithms.taml import entropy, theil
    h_before, h_after = entropy(tensor(before)).numpy(), entropy(tensor(after)).numpy()
    return float((h_after - h_before).mean()), float(theil(tensor(losses)).item())


def _close(a, b):
    return bool(np.isfinite(a)) and abs(a - b) <= 1e-6 * max(1.0, abs(b))


def check_taml_regularisers(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(logits_before, logits_after, losses_before) -> (entropy_term, theil_index)``.

    logits_before (T, N, C): the initial model f_theta's logits on each task's examples; logits_after (T, N, C):
    the adapted model f_theta_i's; losses_before (T,): each task's loss under the initial model (NumPy float64).
    entropy_term = mean_i [H_i(f_theta_i) - H_i(f_theta)] (the term lambda multiplies, to be minimised: the initial
    model's entropy maximised, the adapted model's reduced), H_i the mean over task i's examples of
    -sum_c p_c ln p_c; theil_index = (1/M) sum_i (l_i / mean(l)) ln(l_i / mean(l)).
    """

    def scalar(value, what):
        a = as_array(value, what)
        if a.size != 1:
            raise Mismatch(f"{what} should be one number (a mean over the tasks), got shape {a.shape}")
        return float(a.reshape(()))

    def body():
        for what, (before, after, losses) in [("a case of 4 tasks, 6 examples, 5 classes", _taml_case(0, 4, 6, 5)),
                                              ("a case of 3 tasks, 2 examples, 3 classes", _taml_case(1, 3, 2, 3))]:
            out = student_fn(before.copy(), after.copy(), losses.copy())
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise Mismatch("the function should return two numbers: (entropy_term, theil_index)")
            got_h, got_t = scalar(out[0], "entropy_term"), scalar(out[1], "theil_index")
            ref_h, ref_t = _taml_reference(before, after, losses)
            h_b, h_a = _np_entropy(before), _np_entropy(after)
            if not _close(got_h, ref_h):
                if _close(got_h, -ref_h):
                    raise Mismatch(f"on {what}: entropy_term has the wrong sign. TAML *maximises* the initial "
                                   "model's entropy (no class favoured before adaptation) and *reduces* the adapted "
                                   "model's, so the term to minimise is H(adapted) - H(initial)")
                if abs(got_h) < 1e-9:
                    raise Mismatch(f"on {what}: entropy_term is 0: both entropies were computed on the same "
                                   "predictions. The maximised one is the initial model's (theta, logits_before), "
                                   "the reduced one the adapted model's (theta_i, logits_after)")
                if _close(got_h, float(-h_b.mean())):
                    raise Mismatch(f"on {what}: entropy_term is -H(initial) alone: the entropy-reduction part, "
                                   "+H of the adapted model's predictions, is missing")
                if _close(got_h, float(-h_a.mean())):
                    raise Mismatch(f"on {what}: entropy_term is -H(adapted): the entropy to maximise is the "
                                   "initial model's (logits_before), not the adapted one's")
                if _close(got_h, ref_h / np.log(2.0)):
                    raise Mismatch(f"on {what}: entropy_term is in bits; use the natural log, as the cross-entropy "
                                   "loss it is added to does")
                if _close(got_h, float((_np_entropy(after, 1) - _np_entropy(before, 1)).mean())):
                    raise Mismatch(f"on {what}: the softmax ran over the examples axis; the probabilities are over "
                                   "the classes (the last axis)")
                if _close(got_h, ref_h * before.shape[1]) or _close(got_h, ref_h * before.shape[0]):
                    raise Mismatch(f"on {what}: entropy_term is a sum where a mean is meant (H_i is the mean over "
                                   "a task's examples, and the term the mean over tasks)")
                compare(got_h, ref_h, f"entropy_term on {what}")
            if not _close(got_t, ref_t):
                mean, m = losses.mean(), losses.shape[0]
                if _close(got_t, float(np.log(mean))) or _close(got_t, float((losses / mean * np.log(mean)).mean())):
                    raise Mismatch(f"on {what}: theil_index took the log of the mean loss; the log is of each "
                                   "task's ratio l_i / mean(l), so that equal losses give 0")
                if _close(got_t, ref_t * mean):
                    raise Mismatch(f"on {what}: theil_index weighs ln(l_i / mean) by l_i; the weight is the ratio "
                                   "l_i / mean(l) too (otherwise the index changes when every loss is scaled)")
                if _close(got_t, ref_t * m):
                    raise Mismatch(f"on {what}: theil_index sums over the tasks; it is the mean (1/M) sum_i")
                if _close(got_t, float((losses / mean * np.log(losses)).mean())):
                    raise Mismatch(f"on {what}: theil_index takes ln l_i; it is ln(l_i / mean(l))")
                compare(got_t, ref_t, f"theil_index on {what}")
        # equal losses: no inequality
        _, t = student_fn(*(_taml_case(2, 3, 2, 3)[:2]), np.full(3, 0.8))
        if abs(scalar(t, "theil_index")) > 1e-9:
            raise Mismatch("theil_index of equal losses [0.8, 0.8, 0.8] should be 0, got "
                           f"{scalar(t, 'theil_index'):.6g}")

    return run_checker("check_taml_regularisers", body, raise_on_failure)
