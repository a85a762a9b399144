"""Helpers the op families share: constants, operand matching, axis handling.

Not ops themselves (they record nothing); :mod:`tinymeta.functional` uses
:func:`operands` too, to match a loss's target to its input.
"""
from __future__ import annotations

import functools
import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor
from .cast import astype


def const(value, like: Tensor) -> Tensor:
    """``value`` (a number or an array) as a constant tensor on ``like``'s device.

    A Python number takes ``like``'s float dtype, so ``x * 2`` stays float64 for a
    float64 ``x`` (no silent change of precision).
    """
    if isinstance(value, Tensor):
        return value
    xp = like.xp
    if isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_):
        if like.dtype.kind == "f":
            dtype = like.dtype
        else:
            dtype = np.float32 if isinstance(value, float) else like.dtype
        return Tensor(_scalar_array(value, dtype, xp))
    if isinstance(value, (list, tuple)):
        value = np.asarray(value, dtype=like.dtype if like.dtype.kind == "f" else None)
    return Tensor(backend.to_device(value, like.device) if hasattr(value, "__array__")
                  or hasattr(value, "__cuda_array_interface__") else xp.asarray(value))


_SCALARS: dict = {}


def _scalar_array(value, dtype, xp):
    """A 0-d array holding ``value``, made once per (value, dtype, device) and then reused.

    On a GPU each new one is a host-to-device copy (a synchronous transfer), and the
    same few numbers (learning rates, 0.5, -1) recur in every iteration. Sharing is
    safe: tensors are values, and the engine never writes into a constant's array.
    """
    key = (type(value), repr(value), np.dtype(dtype).str, xp)  # repr: -0.0 and nan are their own keys
    array = _SCALARS.get(key)
    if array is None:
        if len(_SCALARS) > 4096:  # a bound, for code that makes ever new constants
            _SCALARS.clear()
        array = _SCALARS[key] = xp.asarray(value, dtype=dtype)
    return array


@functools.lru_cache(maxsize=4096)
def broadcast_shapes(*shapes) -> tuple:
    """``np.broadcast_shapes``, remembered (the shapes are tuples).

    NumPy's builds a throwaway array per shape (about 2 us a call), and every
    iteration asks the same few dozen questions again; raises ValueError alike.
    """
    return np.broadcast_shapes(*shapes)


def promote(a: Tensor, b: Tensor):
    """The dtype two operands are computed in: the float one's, or NumPy's promotion."""
    if a.dtype == b.dtype:
        return a.dtype
    fa, fb = a.dtype.kind == "f", b.dtype.kind == "f"
    if fa != fb:
        return a.dtype if fa else b.dtype
    return np.result_type(a.dtype, b.dtype)


def operands(a, b, name: str, broadcast: bool = True):
    """Make ``a`` and ``b`` tensors of one device and dtype, and check their shapes."""
    # the common case first, cheaply: two tensors of one array type, dtype and shape
    if type(a) is Tensor and type(b) is Tensor:
        xa, xb = a.array, b.array
        if type(xa) is type(xb) and xa.dtype == xb.dtype and xa.shape == xb.shape:
            return a, b
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
    a = const(a, b) if not isinstance(a, Tensor) else a
    b = const(b, a) if not isinstance(b, Tensor) else b
    if a.device != b.device:
        raise RuntimeError(f"{name}: operands are on different devices ({a.device} and {b.device}); "
                           f"move one with .to('{a.device}') or .to('{b.device}')")
    dtype = promote(a, b)
    if a.dtype != dtype:
        a = astype(a, dtype)
    if b.dtype != dtype:
        b = astype(b, dtype)
    if broadcast:
        try:
            broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not broadcast "
                             "(trailing axes must be equal or 1)") from None
    return a, b


def sum_kept(a, axes, b=None):
    """The sum of array ``a`` (or of ``a * b``) over ``axes``, keeping them as size-1 axes.

    On NumPy one ``einsum`` pass, which never writes the product and runs 2-3x faster
    than ``ndarray.sum`` over non-adjacent axes (batch norm's, a conv bias's gradient:
    9.0 against 5.1 ms on (32, 75, 64, 14, 14) over axes (1, 3, 4)).
    """
    if backend.get_xp(a) is not np or a.dtype.kind not in "fc":
        return (a if b is None else a * b).sum(axis=axes, keepdims=True)
    letters = "abcdefghijklmnopqrstuvwxyz"[:a.ndim]
    kept = "".join(c for d, c in enumerate(letters) if d not in axes)
    total = np.einsum(f"{letters}->{kept}" if b is None else f"{letters},{letters}->{kept}",
                      *((a,) if b is None else (a, b)))
    return total.reshape([1 if d in axes else a.shape[d] for d in range(a.ndim)])


def normalize_axis(axis, ndim: int):
    """A sorted tuple of non-negative axes (``None`` means all).

    A 0-d tensor accepts axis 0 or -1 and has no axis to reduce, as in PyTorch
    (``tm.tensor(3.).sum(0)`` is 3, where NumPy raises): the result is ``()``.
    """
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    out = []
    for ax in axes:
        if not isinstance(ax, numbers.Integral):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= ax < max(ndim, 1):
            raise ValueError(f"axis {ax} is out of range for a tensor with {ndim} dimensions "
                             f"(valid: {-max(ndim, 1)} to {max(ndim, 1) - 1})")
        out.append(ax % ndim if ndim else None)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(ax for ax in out if ax is not None))


def keepdims_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def check_float(t: Tensor, name: str):
    if t.requires_grad and t.dtype.kind != "f":
        raise TypeError(f"{name}: cannot differentiate an integer tensor ({t.dtype})")


def blend_into(buffer, value: Tensor, weight: float) -> None:
    """``buffer <- (1 - weight) * buffer + weight * value`` in place: a running average
    (batch norm's running statistics). ``buffer`` is a backend array or a Tensor; a
    Tensor is changed through ``.data``, so its version records the change."""
    array = buffer.data if isinstance(buffer, Tensor) else buffer
    array *= 1 - weight
    array += weight * value.array.astype(array.dtype)
