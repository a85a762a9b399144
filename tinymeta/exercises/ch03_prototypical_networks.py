"""Chapter 3 exercise: the scores of prototypical networks (Snell et al. 2017, arXiv:1703.05175, Eq. 1-2).

The student writes ``proto_scores(zs, ys, zq, n_way) -> scores``: for each task, the
prototype of class k is the mean of the support embeddings labelled k (Eq. 1), and the
score of query q for class k is minus the squared Euclidean distance from q to that
prototype (the logits of Eq. 2). The checker compares with
:func:`tinymeta.algorithms.protonet.protonet_scores` and recognises the usual mistakes:
the distance itself instead of its square, a missing minus sign (the farthest class
would win), class sums instead of class means (caught on a task with unequal shots),
one prototype for the whole support set, and the wrong output shape.
"""
from __future__ import annotations

import numpy as np

from ..algorithms.protonet import protonet_scores
from ..tensor import tensor
from ._check import Mismatch, as_array, compare, run_checker


def _case(seed, T, n_way, shots, Q, D, unequal=False):
    """Embeddings around a centre per class; ``unequal``: the classes get 1, 2, 3, ... support examples."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(T, n_way, D)) * 2
    counts = np.arange(1, n_way + 1) if unequal else np.full(n_way, shots)
    ys = np.stack([rng.permutation(np.repeat(np.arange(n_way), counts)) for _ in range(T)])
    zs = np.take_along_axis(centres, ys[..., None], axis=1) + rng.normal(size=ys.shape + (D,))
    yq = rng.integers(0, n_way, size=(T, Q))
    zq = np.take_along_axis(centres, yq[..., None], axis=1) + rng.normal(size=(T, Q, D))
    return zs, ys.astype(np.int64), zq


def _reference(zs, ys, zq, n_way):
    return protonet_scores(tensor(zs), tensor(ys), tensor(zq), n_way).numpy()


def _means(zs, ys, n_way, reduce="mean"):
    onehot = np.eye(n_way)[ys]                                    # (T, S, N)
    sums = np.swapaxes(onehot, 1, 2) @ zs                         # (T, N, D)
    return sums / onehot.sum(axis=1)[..., None] if reduce == "mean" else sums


def _sq(zq, c):
    return ((zq[:, :, None, :] - c[:, None, :, :]) ** 2).sum(-1)


def check_proto_scores(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(zs, ys, zq, n_way) -> scores (T, Q, n_way)``.

    zs (T, S, D) float64 support embeddings, ys (T, S) int64 labels in [0, n_way),
    zq (T, Q, D) float64 query embeddings (NumPy arrays). Higher scores are likelier.
    """

    def body():
        cases = [("a 5-way 1-shot case", _case(0, 3, 5, 1, 7, 4)),
                 ("a 3-way 5-shot case", _case(1, 2, 3, 5, 6, 8)),
                 ("a 4-way case with 1, 2, 3 and 4 shots", _case(2, 2, 4, 0, 6, 3, unequal=True))]
        for what, (zs, ys, zq) in cases:
            n_way = int(ys.max()) + 1
            got = as_array(student_fn(zs.copy(), ys.copy(), zq.copy(), n_way), "scores")
            ref = _reference(zs, ys, zq, n_way)
            if got.shape != ref.shape:
                raise Mismatch(f"on {what}: scores have shape {got.shape}, expected {ref.shape} "
                               "(tasks, queries, classes)")
            close = lambda a: np.all(np.isfinite(got)) and np.allclose(got, a, rtol=1e-6, atol=1e-9)  # noqa: E731
            if not close(ref):
                c = _means(zs, ys, n_way)
                if close(-np.sqrt(_sq(zq, c))):
                    raise Mismatch(f"on {what}: the scores are minus the Euclidean distance; prototypical networks "
                                   "use the squared distance (Eq. 2 with d(z, z') = ||z - z'||^2, a Bregman "
                                   "divergence, which makes the classifier linear in the query, Sec. 2.3)")
                if close(_sq(zq, c)):
                    raise Mismatch(f"on {what}: the scores are the squared distances themselves; a score must be "
                                   "higher for likelier classes, so take minus the distance (the nearest prototype "
                                   "wins)")
                if close(-_sq(zq, _means(zs, ys, n_way, "sum"))):
                    raise Mismatch(f"on {what}: the prototypes are sums of the class's support embeddings; Eq. 1 "
                                   "takes their mean (divide by the class's number of support examples)")
                if close(-_sq(zq, np.broadcast_to(zs.mean(axis=1, keepdims=True), c.shape))):
                    raise Mismatch(f"on {what}: every class has the same prototype, the mean of the whole support "
                                   "set; average only the examples labelled k for class k")
            compare(got, ref, f"scores on {what}")

    return run_checker("check_proto_scores", body, raise_on_failure)
