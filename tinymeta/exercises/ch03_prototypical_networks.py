"""Chapter 3 exercises: prototypical networks (Snell, Swersky & Zemel 2017) and two variants, Gaussian prototypical
networks (Fort 2017) and semi-supervised prototypical networks (Ren et al. 2018).

Every function works on a whole meta-batch, task axis first, with float64 Tensors:

- ``check_prototypes(student_fn)``: ``student_fn(z_support, y_support, n_way)`` returns the class means
  c_k (Eq. 1), (T, N, D). The support examples come shuffled; the checker names a sum instead of a
  mean, one mean over the whole support set, the mean over the wrong axis, and the book's reshape that
  assumes the examples sorted by class.
- ``check_log_probabilities(student_fn)``: ``student_fn(z_query, protos)`` returns log p(y = k | x)
  = log_softmax_k(-||f(x) - c_k||^2) (Eq. 2), (T, Q, N); names Euclidean instead of squared Euclidean,
  a softmax over distances instead of negative distances, the book's mean over dimensions, a
  normalisation over the queries instead of the classes, unnormalised logits and probabilities.
- ``check_gaussian_prototypes(student_fn)``: ``student_fn(z_support, precision, y_support, n_way)``
  returns Fort's (p_c, S_c): confidence-weighted means and summed inverse variances.
- ``check_soft_kmeans_step(student_fn)``: ``student_fn(protos, z_support, y_support, z_unlabeled)``
  returns Ren et al.'s refined prototypes (Eq. 4); names unnormalised or wrongly normalised soft
  assignments, a missing or misweighted labeled term, and hard assignments.
"""
from __future__ import annotations

import numpy as np

from ..autograd import grad
from ..tensor import Tensor, tensor
from ._check import Mismatch, as_array, compare, run_checker, same_values


def _t(a, requires_grad=True):
    return tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _labels(rng, T, n_way, shots):
    """(T, N * K) labels, every class ``shots`` times, shuffled within each task (the order carries no class)."""
    return np.stack([rng.permutation(np.repeat(np.arange(n_way), shots)) for _ in range(T)])


def _onehot(y, n):
    return (y[..., None] == np.arange(n)).astype(np.float64)


def _log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _sq(zq, c):
    """(T, Q, N) squared distances."""
    return ((zq[:, :, None, :] - c[:, None, :, :]) ** 2).sum(-1)


def _means(z, y, n):
    oh = _onehot(y, n)
    return np.swapaxes(oh, -1, -2) @ z / oh.sum(axis=1)[..., None]


def _diagnose(got, expected, mistakes, what, rtol=1e-6, atol=1e-9):
    """Name the first mistake ``got`` equals, else report the worst element."""
    g = as_array(got, what)
    if g.shape == expected.shape and not same_values({"x": g}, {"x": expected}, rtol, atol):
        for wrong, hint in mistakes:
            wrong = np.asarray(wrong)
            if wrong.shape == g.shape and same_values({"x": g}, {"x": wrong}, rtol, atol):
                raise Mismatch(hint)
    compare(g, expected, what, rtol=rtol, atol=atol)


def _shape(got, expected_shape, what, hints=()):
    """Mismatch on the shape, with a hint for a shape a known mistake gives (``hints``: [(shape, hint)])."""
    shape = as_array(got, what).shape
    if shape != tuple(expected_shape):
        for s, hint in hints:
            if shape == tuple(s):
                raise Mismatch(f"{what} has shape {shape}, expected {tuple(expected_shape)}: {hint}")
        raise Mismatch(f"{what} has shape {shape}, expected {tuple(expected_shape)}")


def _on_graph(got, inputs, what):
    """The answer must be a Tensor that gradients can flow back through to every input (the loss is trained)."""
    if not isinstance(got, Tensor):
        raise Mismatch(f"{what} is a {type(got).__name__}, not a Tensor: stay with Tensor operations (no .numpy()) "
                       "so that the episode loss can be differentiated with respect to the embeddings")
    if not got.requires_grad:
        raise Mismatch(f"{what} is cut from the graph (detached): the embedding network learns through it")
    probe = (got * tensor(np.random.default_rng(0).standard_normal(got.shape))).sum()
    for name, x in inputs:
        if grad(probe, [x], allow_unused=True)[0] is None:
            raise Mismatch(f"{what} does not depend on {name} in the graph: keep every step a Tensor operation")


# ---- Exercise 1: prototypes (Eq. 1) ------------------------------------------------------------------------
def check_prototypes(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(z_support, y_support, n_way) -> (T, n_way, D)`` class means of the support embeddings.

    z_support: float64 Tensor (T, S, D); y_support: int64 Tensor (T, S), labels 0..n_way-1 in any order.
    """

    def body():
        rng = np.random.default_rng(3)
        for T, N, K, D in ((2, 3, 4, 5), (3, 5, 2, 4)):
            y = _labels(rng, T, N, K)
            z = rng.standard_normal((T, N * K, D))
            zt = _t(z)
            what = f"the prototypes ({T} tasks, {N}-way {K}-shot, D = {D})"
            got = student_fn(zt, tensor(y), N)
            ref = _means(z, y, N)
            _shape(got, ref.shape, what, [
                ((T, N * K), "the mean ran over the embedding's dimensions; average the EXAMPLES of each class "
                             "(one D-vector per class)"),
                ((T, D), "one mean over the whole support set: a prototype per class, from that class's examples"),
                ((N, D), "the task axis is gone: every task has its own prototypes, (T, N, D)")])
            mistakes = [
                (ref * K, "the prototype is the SUM of the class's embeddings: Eq. 1 is their MEAN, divide by the "
                          "number of support examples of the class"),
                (np.broadcast_to(z.mean(axis=1, keepdims=True), ref.shape),
                 "every class got the mean of the whole support set: average only the examples labeled k"),
                (z.reshape(T, N, K, D).mean(axis=2),
                 "the support set was reshaped to (T, N, K, D) as if sorted by class (the book's notebook does "
                 "this); here the examples come in any order: use the labels (e.g. one-hot(y)^T z / counts)"),
                (z.reshape(T, K, N, D).mean(axis=1),
                 "the support set was reshaped as if its examples cycled through the classes: use the labels"),
            ]
            _diagnose(got, ref, mistakes, what)
            _on_graph(got, [("z_support", zt)], what)

    return run_checker("check_prototypes", body, raise_on_failure)


# ---- Exercise 2: the softmax over negative squared distances (Eq. 2) ---------------------------------------
def check_log_probabilities(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(z_query, protos) -> (T, Q, N)`` log-probabilities log_softmax_k(-||z_q - c_k||^2).

    z_query: float64 Tensor (T, Q, D); protos: float64 Tensor (T, N, D).
    """

    def body():
        rng = np.random.default_rng(4)
        for T, Q, N, D in ((2, 6, 3, 4), (1, 8, 5, 3)):
            zq, c = rng.standard_normal((T, Q, D)), rng.standard_normal((T, N, D))
            zqt, ct = _t(zq), _t(c)
            what = f"log p(y = k | x) ({T} tasks, {Q} queries, {N} classes, D = {D})"
            got = student_fn(zqt, ct)
            d = _sq(zq, c)
            ref = _log_softmax(-d)
            _shape(got, ref.shape, what, [
                ((T, N, Q), "the axes are swapped: one row per QUERY, one column per class, (T, Q, N)")])
            mistakes = [
                (_log_softmax(-np.sqrt(d)), "this uses the Euclidean distance ||z - c||: prototypical networks use "
                                             "its SQUARE (a Bregman divergence, Sec. 2.3), no square root"),
                (_log_softmax(d), "the softmax ran over the distances: a near prototype must get a HIGH probability, "
                                  "so the logits are the NEGATIVE squared distances"),
                (_log_softmax(np.sqrt(d)), "the softmax ran over (unsquared) distances: use -||z - c||^2"),
                (_log_softmax(-d / D), "the squared distance was averaged over the D dimensions (the book's "
                                       "reduce_mean): Eq. 2 sums them; the mean divides every logit by D"),
                (_log_softmax(-d, axis=1), "the softmax normalised over the QUERIES for each class (the book's "
                                           "notebook, with its distance matrix transposed): it must normalise over "
                                           "the classes k for each query"),
                (-d, "these are the logits -||z - c_k||^2, not log-probabilities: apply log_softmax over the classes"),
                (np.exp(ref), "these are the probabilities: return their log (log_softmax, which is also stable)"),
                (np.log(np.exp(-d) / np.exp(-d).sum(axis=1, keepdims=True)),
                 "the softmax normalised over the queries: normalise over the classes (the last axis)"),
            ]
            _diagnose(got, ref, mistakes, what)
            _on_graph(got, [("z_query", zqt), ("the prototypes", ct)], what)
        # far from the prototypes, exp(-d) underflows: a naive log(softmax) gives -inf, log_softmax does not
        zq, c = np.array([[[30.0, 0.0]]]), np.array([[[0.0, 0.0], [1.0, 0.0]]])
        got = student_fn(_t(zq), _t(c))
        g = as_array(got, "log p for a query far from every prototype")
        if not np.all(np.isfinite(g)):
            raise Mismatch("for a query at distance 30 from the prototypes the answer is not finite: exp(-900) "
                           "underflows to 0; use log_softmax (subtract the largest logit) instead of log(softmax)")
        compare(g, _log_softmax(-_sq(zq, c)), "log p for a query far from every prototype")

    return run_checker("check_log_probabilities", body, raise_on_failure)


# ---- Exercise 3: Gaussian prototypes (Fort 2017, Sec. 3.3) -------------------------------------------------------
def check_gaussian_prototypes(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(z_support, precision, y_support, n_way) -> (p, S)``.

    z_support (T, S, D), precision (T, S, 1) or (T, S, D) positive inverse variances, y_support int (T, S).
    p (T, N, D): sum_i s_i z_i / sum_i s_i over each class; S (T, N, 1 or D): sum_i s_i.
    """

    def body():
        rng = np.random.default_rng(5)
        for T, N, K, D, width in ((2, 3, 3, 4, 1), (1, 4, 2, 3, 3)):
            y = _labels(rng, T, N, K)
            z = rng.standard_normal((T, N * K, D))
            s = 1.0 + rng.exponential(2.0, (T, N * K, width))
            zt, st = _t(z), _t(s)
            what = f"({T} tasks, {N}-way {K}-shot, {'radius' if width == 1 else 'diagonal'} covariance)"
            out = student_fn(zt, st, tensor(y), N)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise Mismatch(f"return a pair (p, S): the prototypes and their inverse variances, got "
                               f"{type(out).__name__}")
            p, S = out
            oh = np.swapaxes(_onehot(y, N), -1, -2)                      # (T, N, S)
            total = oh @ s
            ref_p, ref_S = oh @ (s * z) / total, total
            _shape(p, ref_p.shape, f"p {what}")
            _shape(S, ref_S.shape, f"S {what}")
            _diagnose(p, ref_p, [
                (_means(z, y, N), "p is the plain class mean (prototypical networks): weigh each embedding by its "
                                  "confidence s_i, p = sum s_i z_i / sum s_i"),
                (oh @ (s * z), "the weighted sum is not normalised: divide by the class's total confidence sum s_i"),
                (oh @ (s * z) / K, "the weighted sum was divided by the number of examples: divide by sum_i s_i, "
                                   "the weights' total, so that p is a weighted MEAN"),
                (oh @ (z / s) / (oh @ (1 / s)), "the embeddings were weighted by their variance 1/s_i: the weight is "
                                                "the inverse variance s_i, a confident example counts MORE"),
            ], f"p {what}")
            _diagnose(S, ref_S, [
                (total / K, "S is the mean of the class's inverse variances: Fort sums them (S_c = sum_i s_i), so "
                            "a class seen more often, or more confidently, is sharper"),
                (1 / total, "this is the variance 1 / sum s_i: return the inverse variance S_c = sum_i s_i"),
            ], f"S {what}")
            _on_graph(p, [("z_support", zt), ("the confidences", st)], f"p {what}")
            _on_graph(S, [("the confidences", st)], f"S {what}")

    return run_checker("check_gaussian_prototypes", body, raise_on_failure)


# ---- Exercise 4: one soft k-means refinement (Ren et al. 2018, Eq. 4) -------------------------------------------
def soft_kmeans_variants(c, z, y, u):
    """The refined prototypes and what the usual mistakes give instead, with hints (NumPy)."""
    N, K = c.shape[1], z.shape[1] // c.shape[1]
    d = _sq(u, c)                                                          # (T, U, N)
    r = np.exp(_log_softmax(-d))
    oh = _onehot(y, N)
    lab_sum, lab_n = np.swapaxes(oh, -1, -2) @ z, oh.sum(axis=1)[..., None]

    def centres(r):
        return (lab_sum + np.swapaxes(r, -1, -2) @ u) / (lab_n + r.sum(axis=1)[..., None])

    ref = centres(r)
    hard = (d == d.min(axis=-1, keepdims=True)).astype(float)
    mistakes = [
        (centres(np.exp(-d)), "the soft assignments were not normalised: exp(-d_j,c) must be divided by its sum over "
                              "the clusters c (a softmax over c), so that each unlabeled example has weight 1 in all"),
        (centres(np.exp(_log_softmax(-d, axis=1))),
         "the soft assignments were normalised over the unlabeled examples: normalise each example's row over the "
         "clusters c (softmax over the last axis)"),
        (centres(np.exp(_log_softmax(d))), "the assignments favour FAR clusters: the softmax is over -||h - p_c||^2"),
        (np.swapaxes(r, -1, -2) @ u / r.sum(axis=1)[..., None],
         "the labeled term is missing: Eq. 4 adds the labeled support examples (with weight 1 each) to the unlabeled "
         "ones in numerator and denominator"),
        ((c + np.swapaxes(r, -1, -2) @ u) / (1.0 + r.sum(axis=1)[..., None]),
         f"the labeled term counts the old prototype once; Eq. 4 counts each of the class's {K} labeled EXAMPLES "
         "once: sum_i h(x_i) z_i,c in the numerator and sum_i z_i,c in the denominator"),
        ((lab_sum + np.swapaxes(r, -1, -2) @ u) / r.sum(axis=1)[..., None],
         "the denominator lacks the labeled examples' count sum_i z_i,c: the labeled term is in both"),
        (centres(hard), "hard assignments (each unlabeled example to its nearest prototype): Ren et al. assign "
                        "softly, softmax over -||h - p_c||^2, which keeps the refinement differentiable"),
    ]
    return ref, mistakes


def check_soft_kmeans_step(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(protos, z_support, y_support, z_unlabeled) -> (T, N, D)`` refined prototypes.

    protos (T, N, D) the class means of the labeled support set; z_support (T, S, D) with labels y_support
    int (T, S); z_unlabeled (T, U, D).
    """

    def body():
        rng = np.random.default_rng(6)
        for T, N, K, U, D in ((2, 3, 2, 7, 4), (1, 4, 3, 10, 2)):
            y = _labels(rng, T, N, K)
            z = rng.standard_normal((T, N * K, D))
            u = rng.standard_normal((T, U, D)) * 1.2
            c = _means(z, y, N)
            ct, zt, ut = _t(c), _t(z), _t(u)
            what = f"the refined prototypes ({T} tasks, {N}-way {K}-shot, {U} unlabeled)"
            got = student_fn(ct, zt, tensor(y), ut)
            ref, mistakes = soft_kmeans_variants(c, z, y, u)
            _shape(got, ref.shape, what, [((T, U, N), "these look like the soft assignments; return the new "
                                                      "centres, (T, N, D)")])
            _diagnose(got, ref, mistakes, what)
            _on_graph(got, [("z_unlabeled", ut), ("z_support", zt)], what)

    return run_checker("check_soft_kmeans_step", body, raise_on_failure)


__all__ = ["check_gaussian_prototypes", "check_log_probabilities", "check_prototypes", "check_soft_kmeans_step",
           "soft_kmeans_variants"]
