"""Ops whose results are constants: comparisons, any/all, argmax, one_hot.

Their values are booleans or integers, so there is nothing to differentiate:
each computes on the arrays and returns a Tensor outside the graph (it never
requires grad). Accuracy is ``(argmax(logits, -1) == labels).mean()``.
"""
from __future__ import annotations

import numbers

from .. import backend
from ..tensor import Tensor
from .common import normalize_axis, operands


def _arrays(a, b, name: str):
    """The operands' arrays and their array module; a Python number stays a number
    (comparing with it copies nothing to the device)."""
    if isinstance(a, Tensor) and isinstance(b, numbers.Number):
        return a.xp, a.array, b
    if isinstance(b, Tensor) and isinstance(a, numbers.Number):
        return b.xp, a, b.array
    a, b = operands(a, b, name)
    return a.xp, a.array, b.array


def equal(a, b) -> Tensor:
    """Elementwise ``a == b`` as a constant boolean tensor (also the ``==`` operator)."""
    xp, x, y = _arrays(a, b, "equal")
    return Tensor(xp.equal(x, y))


def not_equal(a, b) -> Tensor:
    """Elementwise ``a != b`` as a constant boolean tensor."""
    xp, x, y = _arrays(a, b, "not_equal")
    return Tensor(xp.not_equal(x, y))


def less(a, b) -> Tensor:
    """Elementwise ``a < b`` as a constant boolean tensor."""
    xp, x, y = _arrays(a, b, "less")
    return Tensor(xp.less(x, y))


def less_equal(a, b) -> Tensor:
    """Elementwise ``a <= b`` as a constant boolean tensor."""
    xp, x, y = _arrays(a, b, "less_equal")
    return Tensor(xp.less_equal(x, y))


def greater(a, b) -> Tensor:
    """Elementwise ``a > b`` as a constant boolean tensor."""
    xp, x, y = _arrays(a, b, "greater")
    return Tensor(xp.greater(x, y))


def greater_equal(a, b) -> Tensor:
    """Elementwise ``a >= b`` as a constant boolean tensor."""
    xp, x, y = _arrays(a, b, "greater_equal")
    return Tensor(xp.greater_equal(x, y))


def any(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 (mirrors numpy.any)
    """Whether any element over ``axis`` is nonzero (a constant boolean tensor): ``if (x > 0).any():``."""
    return Tensor(a.array.astype(bool).any(axis=normalize_axis(axis, a.ndim), keepdims=keepdims))


def all(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 (mirrors numpy.all)
    """Whether every element over ``axis`` is nonzero (a constant boolean tensor): ``if (x > 0).all():``."""
    return Tensor(a.array.astype(bool).all(axis=normalize_axis(axis, a.ndim), keepdims=keepdims))


def argmax(a: Tensor, axis=None) -> Tensor:
    """Indices of the maxima (a constant integer tensor)."""
    return Tensor(a.xp.argmax(a.array, axis=axis))


def one_hot(target: Tensor, num_classes: int, dtype="float32") -> Tensor:
    """A constant (..., num_classes) tensor with 1 at each label of the integer ``target``.

    Example: ``one_hot(tm.tensor(np.array([2, 0])), 3)`` is [[0, 0, 1], [1, 0, 0]].
    A label outside [0, num_classes) gives a row of zeros.
    """
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"one_hot: target must be an integer Tensor of class indices, got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    hits = target.array[..., None] == target.xp.arange(num_classes)
    return Tensor(hits.astype(backend.resolve_dtype(dtype)))
