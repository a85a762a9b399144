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
# elementwise maximum of the four strided windows' views; its gradient, broadcast over the
# windows, 1.4x slower than written view by view (measured on a (360, 64, 28, 28) map).
# Reductions over at most this many entries each go view by view on the CPU; the numbers are the
# same to the bit (a maximum and a count of ties are exact in any order, and each gradient entry is
# the same one product).
SLICEWISE_MAX_ENTRIES = 16


def _slicewise(a, axes) -> bool:
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    return isinstance(a, np.ndarray) and 1 < n <= SLICEWISE_MAX_ENTRIES


def _views(shape, axes) -> list:
    """Indices of the views ``a[..., i, ..., j, ...]`` (kept dims) over every entry of the reduced ``axes``."""
    views = []
    for index in itertools.product(*(range(shape[ax]) for ax in axes)):
        where = [slice(None)] * len(shape)
        for ax, i in zip(axes, index):
            where[ax] = slice(i, i + 1)
        views.append(tuple(where))
    return views


class Spread(Function):
    """g (the reduced shape, dims kept) -> the array of ``shape`` whose view ``views[v]`` is ``hits[v] * g``.

    A max's gradient, written view by view: ``hits[v]`` is 1 where view v holds the maximum, else 0
    (constants). Linear in g, with :class:`Gather` as its adjoint, so each is the other's backward.
    """

    def __init__(self, hits, views, shape):
        self.hits, self.views, self.shape = hits, views, shape

    def forward(self, g):
        out = np.empty(self.shape, dtype=g.dtype)
        for where, hit in zip(self.views, self.hits):
            np.multiply(hit, g, out=out[where])
        return out

    def backward(self, g):
        return (Gather.apply(g, hits=self.hits, views=self.views, shape=self.shape),)


class Gather(Function):
    """G (of ``shape``) -> sum over the views of ``hits[v] * G[views[v]]``: Spread's adjoint."""

    def __init__(self, hits, views, shape):
        self.hits, self.views, self.shape = hits, views, shape

    def forward(self, G):
        out = None
        for where, hit in zip(self.views, self.hits):
            term = hit * G[where]
            out = term if out is None else np.add(out, term, out=out)
        return out

    def backward(self, g):
        return (Spread.apply(g, hits=self.hits, views=self.views, shape=self.shape),)


class Max(Function):
    saves_inputs = saves_output = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, a):
        self.in_shape = a.shape
        if not _slicewise(a, self.axes):
            return a.max(axis=self.axes, keepdims=self.keepdims)
        out = None
        for where in _views(a.shape, self.axes):
            out = a[where].copy() if out is None else np.maximum(out, a[where], out=out)
        return out if self.keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        (a,) = self.inputs
        kshape = keepdims_shape(self.in_shape, self.axes)
        top = self.out.array.reshape(kshape)
        # the gradient goes to the maximal entries, shared evenly between ties: g / (number of ties)
        if not _slicewise(a.array, self.axes):
            hits = a.array == top
            ties = hits.sum(axis=self.axes, keepdims=True, dtype=g.dtype)
            return (broadcast_to(reshape(g, kshape) * Tensor(1.0 / ties), self.in_shape)
                    * Tensor(hits.astype(g.dtype)),)
        views = _views(self.in_shape, self.axes)
        hits = [(a.array[where] == top).astype(g.dtype) for where in views]  # contiguous: 1.5x faster than views
        ties = hits[0].copy()
        for hit in hits[1:]:
            ties += hit
        return (Spread.apply(reshape(g, kshape) * Tensor(1.0 / ties), hits=hits, views=views, shape=self.in_shape),)


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
