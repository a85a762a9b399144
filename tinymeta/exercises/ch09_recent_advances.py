"""Chapter 9 (recent advances), section 9.1 exercise: NIL, classification without a head
(Raghu et al. 2020, arXiv:1909.09157, Sec. 5.1).

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
