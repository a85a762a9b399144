"""Reductions: sum, mean and max are primitives; var and min are composed from them."""
from __future__ import annotations

import builtins
import itertools

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .common import keepdims_shape, normalize_axis
from .shape import broadcast_to, reshape


class Sum(Function):
    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, a):
        self.in_shape = a.shape
        return a.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        if not self.keepdims:
            g = reshape(g, keepdims_shape(self.in_shape, self.axes))
        return (broadcast_to(g, self.in_shape),)


class Mean(Function):
    """A primitive rather than sum times 1/n: one pass (one kernel on a GPU) instead of two."""

    def __init__(self, axes, keepdims, n):
        self.axes = axes
        self.keepdims = keepdims
        self.n = n

    def forward(self, a):
        self.in_shape = a.shape
        return a.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        if not self.keepdims:
            g = reshape(g, keepdims_shape(self.in_shape, self.axes))
        return (broadcast_to(g * (1.0 / self.n), self.in_shape),)


# NumPy reduces over a few short axes slowly: a max over 2x2 pooling windows, (..., Ho, 2, Wo, 2)
# over axes (-3, -1), runs an inner loop of length 2 per output entry, 13x slower than the
# elementwise maximum of the four strided windows' views (measured on a (360, 64, 28, 28) map).
# Reductions over at most this many entries each go view by view on the CPU; the result is the
# same to the bit (a maximum and a count of ties are exact in any order).
SLICEWISE_MAX_ENTRIES = 16


def _slicewise(a, axes) -> bool:
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    return isinstance(a, np.ndarray) and 1 < n <= SLICEWISE_MAX_ENTRIES


def _fold_views(ufunc, a, axes, dtype=None):
    """``ufunc`` folded over every view ``a[..., i, ..., j, ...]`` of the reduced ``axes``, keepdims shape."""
    out = None
    for index in itertools.product(*(range(a.shape[ax]) for ax in axes)):
        where = [slice(None)] * a.ndim
        for ax, i in zip(axes, index):
            where[ax] = slice(i, i + 1)
        view = a[tuple(where)]
        if out is None:
            out = view.astype(dtype or a.dtype)  # a fresh array, written in place from here on
        else:
            ufunc(out, view, out=out)
    return out


class Max(Function):
    saves_inputs = saves_output = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, a):
        self.in_shape = a.shape
        if _slicewise(a, self.axes):
            out = _fold_views(np.maximum, a, self.axes)
            return out if self.keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in self.axes])
        return a.max(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        (a,) = self.inputs
        kshape = keepdims_shape(self.in_shape, self.axes)
        top = self.out.array.reshape(kshape)
        # the gradient goes to the maximal entries, shared evenly between ties: g / (number of ties)
        hits = a.array == top
        if _slicewise(a.array, self.axes):
            ties = _fold_views(np.add, hits, self.axes, dtype=g.dtype)
        else:
            ties = hits.sum(axis=self.axes, keepdims=True, dtype=g.dtype)
        return (broadcast_to(reshape(g, kshape) * Tensor(1.0 / ties), self.in_shape) * Tensor(hits.astype(g.dtype)),)


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple, or None for all)."""
    return Sum.apply(a, axes=normalize_axis(axis, a.ndim), keepdims=keepdims)


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; 0 over no elements (a sum of nothing, divided by 1)."""
    axes = normalize_axis(axis, a.ndim)
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    if n == 0:
        return sum(a, axes, keepdims)
    return Mean.apply(a, axes=axes, keepdims=keepdims, n=n)


def var(a: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance, ``sum((a - mean)^2) / (n - ddof)``; ddof=0 is the biased one batch norm uses."""
    axes = normalize_axis(axis, a.ndim)
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    if n - ddof <= 0:
        raise ValueError(f"var: {n} elements over axes {axes} with ddof={ddof}")
    centered = a - mean(a, axes, keepdims=True)
    return sum(centered * centered, axes, keepdims) * (1.0 / (n - ddof))


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; the gradient is shared evenly between tied maxima."""
    axes = normalize_axis(axis, a.ndim)
    empty = [ax for ax in axes if a.shape[ax] == 0]
    if empty:
        raise ValueError(f"max: cannot reduce over axis {empty[0]} of shape {a.shape}, which has no elements "
                         "(the maximum of nothing is undefined)")
    return Max.apply(a, axes=axes, keepdims=keepdims)


def min(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return -max(-a, axis, keepdims)
