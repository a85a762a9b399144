"""Reference solution for chapter 9's exercise (section 9.1: NIL, Raghu et al. 2020, Sec. 5)."""
import numpy as np


def nil_classify(fs, ys, fq, n_way):
    """Scores (T, Q, n_way): mean cosine similarity of each query to each class's support features; and argmax."""
    fs_unit = fs / np.linalg.norm(fs, axis=-1, keepdims=True)
    fq_unit = fq / np.linalg.norm(fq, axis=-1, keepdims=True)
    sim = fq_unit @ np.swapaxes(fs_unit, 1, 2)            # (T, Q, S) cosine similarities
    onehot = np.eye(n_way)[ys]                            # (T, S, C)
    scores = sim @ onehot / onehot.sum(axis=1, keepdims=True)
    return scores, scores.argmax(axis=-1)
