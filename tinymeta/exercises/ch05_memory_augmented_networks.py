"""Chapter 5 exercises: the NTM's circular shift and MANN's least-recently-used write weights.

1. ``circular_convolution(w, s)`` (Graves et al. 2014, eq. 8): w (B, N) weightings,
   s (B, 3) the weights of the shifts -1, 0, +1; return w~ (B, N) with
   w~(i) = sum_j w(j) s(i - j), indices modulo N. The checker compares with
   :func:`tinymeta.memory.circular_convolution` and recognises: the shift weights
   read in reverse (mass moves the wrong way), no wrap-around (the edges lose mass),
   and s applied to w's neighbours as a correlation (the same as reversing s).
2. ``lru_write_weights(alpha, w_read_prev, usage_prev, heads)`` (Santoro et al. 2016,
   Sec. 3.2): alpha (B, heads), w_read_prev (B, heads, N), usage_prev (B, N); return
   w^w (B, heads, N) = sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) w^lu_{t-1},
   head h's w^lu one-hot at the h-th least-used location. Recognised: the two gates
   swapped, the *most* used locations, alpha used without the sigmoid, every head
   writing to the one least-used location.
"""
from __future__ import annotations

import numpy as np

from .. import memory
from ..tensor import tensor
from ._check import Mismatch, as_array, compare, run_checker


def _conv_cases():
    rng = np.random.default_rng(5)
    one = np.zeros((1, 6))
    one[0, 0] = 1.0                          # all mass at location 0: wrap-around shows at once
    plus = np.array([[0.0, 0.0, 1.0]])       # all on the shift +1
    mixed_w = rng.dirichlet(np.ones(7), size=3)
    mixed_s = rng.dirichlet(np.ones(3), size=3)
    return [("all mass at location 0 shifted by +1", one, plus), ("a weighting at the last location shifted by +1",
            np.roll(one, -1, axis=1), plus), ("three random weightings and shifts", mixed_w, mixed_s)]


def _reference_conv(w, s):
    return memory.circular_convolution(tensor(w, dtype="float64"), tensor(s, dtype="float64")).numpy()


def _conv_mistakes(w, s):
    no_wrap = s[:, 0:1] * np.pad(w[:, 1:], ((0, 0), (0, 1))) + s[:, 1:2] * w + s[:, 2:3] * np.pad(w[:, :-1], ((0, 0), (1, 0)))
    return [
        (_reference_conv(w, s[:, ::-1].copy()),
         "the mass moves the wrong way: s[:, 2] is the weight of the shift +1, which moves location i's mass to "
         "i + 1, i.e. w~(i) gets s(+1) w(i - 1) (np.roll(w, +1) along the locations)"),
        (no_wrap, "the shift does not wrap around: location N - 1 shifted by +1 lands on location 0 (indices are "
                  "modulo N; use np.roll, not a padded slice)"),
    ]


def check_circular_convolution(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(w, s) -> w~`` on NumPy float64 arrays w (B, N), s (B, 3)."""

    def body():
        for what, w, s in _conv_cases():
            got = as_array(student_fn(w.copy(), s.copy()), f"the shifted weighting for {what}")
            expected = _reference_conv(w, s)
            if got.shape != expected.shape:
                raise Mismatch(f"the shifted weighting for {what} has shape {got.shape}, expected {expected.shape}")
            if np.all(np.isfinite(got)) and not np.allclose(got, expected, atol=1e-12):
                for wrong, hint in _conv_mistakes(w, s):
                    if np.allclose(got, wrong, atol=1e-12):
                        raise Mismatch(f"on {what}: {hint}")
            compare(got, expected, f"the shifted weighting for {what}", rtol=1e-9, atol=1e-12)

    return run_checker("check_circular_convolution", body, raise_on_failure)


def _lru_cases():
    rng = np.random.default_rng(6)
    usage = np.array([[0.9, 0.1, 0.5, 0.05, 0.7]])
    return [("one episode, 2 heads", rng.normal(size=(1, 2)), rng.dirichlet(np.ones(5), size=(1, 2)), usage, 2),
            ("three episodes, 3 heads", rng.normal(size=(3, 3)) * 2, rng.dirichlet(np.ones(6), size=(3, 3)),
             rng.random((3, 6)), 3)]


def _reference_lru(alpha, w_read, usage, heads):
    lu = memory.least_used(tensor(usage, dtype="float64"), heads)
    return memory.lru_write_weights(tensor(alpha[..., None], dtype="float64"), tensor(w_read, dtype="float64"),
                                    lu).numpy()


def _lru_mistakes(alpha, w_read, usage, heads):
    sig = 1 / (1 + np.exp(-alpha[..., None]))
    order = np.argsort(usage, axis=-1, kind="stable")
    B, N = usage.shape

    def one_hot(idx):
        out = np.zeros((B, heads, N))
        for b in range(B):
            out[b, np.arange(heads), idx[b]] = 1.0
        return out
    lu, most = one_hot(order[:, :heads]), one_hot(order[:, ::-1][:, :heads])
    first = one_hot(np.repeat(order[:, :1], heads, axis=1))
    return [
        ((1 - sig) * w_read + sig * lu, "the gates are swapped: sigmoid(alpha) weighs the previous read weights, "
                                        "1 - sigmoid(alpha) the least-used location"),
        (sig * w_read + (1 - sig) * most, "these are the most used locations: w^lu marks the smallest usage "
                                          "(np.argsort(usage)[..., :heads], ascending)"),
        (alpha[..., None] * w_read + (1 - alpha[..., None]) * lu,
         "alpha is the gate's logit: squash it with the sigmoid, sigma(alpha) = 1 / (1 + exp(-alpha))"),
        (sig * w_read + (1 - sig) * first, "every head writes to the one least-used location: head h takes the "
                                           "h-th least-used (the first head the least used, the second the next)"),
    ]


def check_lru_write_weights(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(alpha, w_read_prev, usage_prev, heads) -> w_write`` on NumPy float64 arrays."""

    def body():
        for what, alpha, w_read, usage, heads in _lru_cases():
            got = as_array(student_fn(alpha.copy(), w_read.copy(), usage.copy(), heads), f"the write weights for {what}")
            expected = _reference_lru(alpha, w_read, usage, heads)
            if got.shape != expected.shape:
                raise Mismatch(f"the write weights for {what} have shape {got.shape}, expected {expected.shape} "
                               "(episodes, heads, locations)")
            if np.all(np.isfinite(got)) and not np.allclose(got, expected, atol=1e-12):
                for wrong, hint in _lru_mistakes(alpha, w_read, usage, heads):
                    if np.allclose(got, wrong, atol=1e-12):
                        raise Mismatch(f"on {what}: {hint}")
            compare(got, expected, f"the write weights for {what}", rtol=1e-9, atol=1e-12)

    return run_checker("check_lru_write_weights", body, raise_on_failure)
