"""Reductions: sum, mean and max are primitives; var and min are composed from them."""
from __future__ import annotations

import builtins

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


class Max(Function):
    saves_inputs = saves_output = True

    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, a):
        self.in_shape = a.shape
        return a.max(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        (a,) = self.inputs
        kshape = keepdims_shape(self.in_shape, self.axes)
        top = self.out.array.reshape(kshape)
        # the gradient goes to the maximal entries, shared evenly between ties
        hits = (a.array == top).astype(g.dtype)
        share = Tensor(hits / hits.sum(axis=self.axes, keepdims=True))
        return (broadcast_to(reshape(g, kshape), self.in_shape) * share,)


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
