"""Chapter 8 exercise: the gradient-agreement weights (Eshratifar, Eigen & Pedram 2018, arXiv:1810.08178).

The student writes ``weights(G)``: from the task updates G (T, P), one row
g_i = theta - theta_i' per task, return
    w_i = sum_j g_i . g_j / sum_k |sum_j g_k . g_j|      (T,)
The checker compares with :func:`tinymeta.algorithms.gradient_agreement.agreement_weights`
on a few matrices and recognises the usual mistakes: the book's normaliser
sum_i sum_j |g_i . g_j| (notebook 8.4, cell 13), each row summed to a scalar
before the inner products, no normalisation, a normalisation without the
absolute value, absolute values on the weights, a mean over tasks in the
numerator only.
"""
from __future__ import annotations

import numpy as np

from ..algorithms.gradient_agreement import agreement_weights
from ._check import Mismatch, as_array, compare, run_checker


def _cases():
    rng = np.random.default_rng(8)
    # tasks 0 and 1 sum to zero entry-wise but agree with task 2 (a scalar sum per row loses that), and
    # task 3's inner products have both signs (so the book's normaliser, sum_ij |g_i . g_j|, is larger)
    crafted = np.array([[1.0, -1.0, 0.5], [1.0, -1.0, 0.0], [2.0, 0.0, 0.5], [-1.0, 0.5, 0.0]])
    mixed = rng.normal(size=(6, 9))
    mixed[4] *= -3.0                       # one task pulling hard against the others: a negative weight
    agree = rng.normal(size=(5, 7)) * 0.3 + rng.normal(size=7)   # a batch that mostly agrees
    return [("a crafted 4-task batch", crafted), ("a 6-task batch with one strongly disagreeing task", mixed),
            ("a 5-task batch whose tasks mostly agree", agree)]


def _mistakes(G):
    """The weights that typical mistakes produce, with what to tell the student."""
    gram = G @ G.T
    s = gram.sum(axis=1)
    g = G.sum(axis=1)
    scalars = g * g.sum()
    return [
        (s / np.abs(gram).sum(),
         ("the normaliser is the sum over all pairs of |g_i . g_j| (the book's notebook 8.4 does this). The paper "
          "takes the absolute value of each task's summed agreement: divide by sum_k |sum_j g_k . g_j|, i.e. "
          "np.abs(numerators).sum(); the pairs' absolute values make it too large whenever tasks disagree")),
        (scalars / np.abs(scalars).sum(),
         ("each task's update was summed to a single number before the inner products. "
          "g_i . g_j is the inner product of two whole vectors: use the Gram matrix G @ G.T")),
        (s, "the weights are not normalised: divide by sum_k |sum_j g_k . g_j|"),
        (s / s.sum(), ("the normaliser lacks the absolute value: divide by the sum of |sum_j g_k . g_j|, "
                       "not by the plain sum (which can be tiny or negative when tasks disagree)")),
        (np.abs(s) / np.abs(s).sum(), ("the weights lost their sign: a task that disagrees with the batch must "
                                       "get a negative weight; only the normaliser takes absolute values")),
        ((G @ G.T).mean(axis=1) / np.abs(s).sum(), ("the numerator averages the inner products over tasks but the "
                                                    "normaliser sums them: use the sum over j in both")),
    ]


def check_gradient_agreement_weights(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(G) -> w``: G is a NumPy float64 array (T, P), w must be (T,)."""

    def body():
        for what, G in _cases():
            got = student_fn(G.copy())
            expected = agreement_weights(G)
            g = as_array(got, f"the weights for {what}")
            if g.shape != expected.shape:
                raise Mismatch(f"the weights for {what} have shape {g.shape}, expected {expected.shape} "
                               f"(one weight per task, i.e. per row of G)")
            if np.all(np.isfinite(g)) and not np.allclose(g, expected, rtol=1e-6, atol=1e-10):
                for wrong, hint in _mistakes(G):
                    if np.allclose(g, wrong, rtol=1e-6, atol=1e-10):
                        raise Mismatch(f"on {what}: {hint}")
            compare(g, expected, f"the weights for {what}", rtol=1e-6, atol=1e-10)

    return run_checker("check_gradient_agreement_weights", body, raise_on_failure)
