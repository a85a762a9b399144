"""Shape ops: reshape, transpose, broadcast and its adjoint sum_to, indexing,
concatenate, stack, pad.

Each pair of adjoint linear maps serves as the other's backward:
broadcast_to <-> sum_to, getitem <-> index_scatter, pad <-> slice.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .cast import astype
from .common import broadcast_shapes, normalize_axis, sum_kept


# ---- reshape / transpose ----------------------------------------------------------
class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.in_shape = a.shape
        return a.reshape(self.shape)

    def backward(self, g):
        return (reshape(g, self.in_shape),)


def reshape(a: Tensor, shape) -> Tensor:
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if shape == a.shape:
        return a
    try:
        return Reshape.apply(a, shape=shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                         f"({a.size} elements) into {shape}") from None


class Transpose(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, a):
        return a.transpose(self.axes)

    def backward(self, g):
        return (transpose(g, tuple(np.argsort(self.axes))),)


def transpose(a: Tensor, axes=None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None), like numpy.transpose."""
    axes = tuple(range(a.ndim))[::-1] if axes is None else tuple(ax % a.ndim for ax in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: {axes} is not a permutation of the {a.ndim} axes")
    if axes == tuple(range(a.ndim)):
        return a
    src = a._ctx
    if type(src) is Transpose and all(src.axes[ax] == i for i, ax in enumerate(axes)):
        # undoing a recorded transpose (a transpose's own backward does): the tensor it came
        # from, same values and same graph, one op and one copy fewer at every order
        return src.inputs[0]
    return Transpose.apply(a, axes=axes)


def swapaxes(a: Tensor, ax1: int, ax2: int) -> Tensor:
    axes = list(range(a.ndim))
    axes[ax1], axes[ax2] = axes[ax2], axes[ax1]
    return transpose(a, axes)


def flatten(a: Tensor, start_axis: int = 0) -> Tensor:
    start_axis %= max(a.ndim, 1)
    return reshape(a, a.shape[:start_axis] + (-1,))


def unsqueeze(a: Tensor, axis: int) -> Tensor:
    axis = axis % (a.ndim + 1)
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


def squeeze(a: Tensor, axis) -> Tensor:
    axes = normalize_axis(axis, a.ndim)
    for ax in axes:
        if a.shape[ax] != 1:
            raise ValueError(f"squeeze: axis {ax} has size {a.shape[ax]}, not 1")
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if i not in axes))


# ---- broadcasting and its adjoint ---------------------------------------------------
class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        self.in_shape = a.shape
        return backend.get_xp(a).broadcast_to(a, self.shape)

    def backward(self, g):
        return (sum_to(g, self.in_shape),)


def broadcast_to(a: Tensor, shape) -> Tensor:
    """Repeat ``a`` along new leading axes and axes of size 1 (no copy).

    Its backward is :func:`sum_to`: a parameter used by every task receives the
    sum of the tasks' gradients.
    """
    shape = tuple(shape)
    if shape == a.shape:
        return a
    try:
        if len(shape) < a.ndim or broadcast_shapes(a.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None
    return BroadcastTo.apply(a, shape=shape)


# PyTorch's name for the same op (Tensor.expand); in tinymeta "expand" always means broadcast.
expand = broadcast_to


class SumTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, g):
        self.in_shape = g.shape
        lead = g.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(self.shape)
                                          if s == 1 and g.shape[lead + i] != 1)
        return sum_kept(g, axes).reshape(self.shape)

    def backward(self, g):
        return (broadcast_to(g, self.in_shape),)


def sum_to(g: Tensor, shape) -> Tensor:
    """Sum ``g`` down to ``shape``: the adjoint of broadcasting (unbroadcast)."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    return SumTo.apply(g, shape=shape)


# ---- indexing -----------------------------------------------------------------------
def _prepare_index(index, device):
    """Index with Tensors replaced by backend arrays; also tells whether it is basic."""
    if not isinstance(index, tuple):
        index = (index,)
    out, basic = [], True
    for ix in index:
        if isinstance(ix, Tensor):
            ix = ix.array
        if isinstance(ix, (list, np.ndarray)) or hasattr(ix, "__cuda_array_interface__"):
            ix = backend.to_device(np.asarray(ix) if isinstance(ix, list) else ix, device)
            if ix.dtype.kind not in "iub":
                raise IndexError(f"index arrays must be integer or boolean, got {ix.dtype}")
            basic = False
        elif not (ix is None or ix is Ellipsis or isinstance(ix, (slice, numbers.Integral))):
            raise IndexError(f"unsupported index {ix!r}: use ints, slices, None, ... or integer arrays")
        out.append(ix)
    return tuple(out), basic


class GetItem(Function):
    def __init__(self, index, basic):
        self.index = index
        self.basic = basic

    def forward(self, a):
        self.in_shape = a.shape
        return a[self.index]

    def backward(self, g):
        return (index_scatter(g, self.in_shape, self.index, self.basic),)


class IndexScatter(Function):
    """Place ``g`` at ``index`` in zeros of ``shape``, adding where indices repeat."""

    def __init__(self, shape, index, basic):
        self.shape = shape
        self.index = index
        self.basic = basic

    def forward(self, g):
        xp = backend.get_xp(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        if self.basic:  # basic indexing never repeats an element: plain assignment
            out[self.index] = g
        else:
            backend.index_add(out, self.index, g)
        return out

    def backward(self, g):
        return (GetItem.apply(g, index=self.index, basic=self.basic),)


def index_scatter(g: Tensor, shape, index, basic) -> Tensor:
    return IndexScatter.apply(g, shape=tuple(shape), index=index, basic=basic)


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` for ints, slices, None, ``...`` and integer/boolean arrays."""
    index, basic = _prepare_index(index, a.device)
    try:
        return GetItem.apply(a, index=index, basic=basic)
    except IndexError as exc:
        raise IndexError(f"getitem: {exc} (tensor shape {a.shape})") from None


# ---- joining and padding ---------------------------------------------------------------
class Concatenate(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        self.sizes = [x.shape[self.axis] for x in arrays]
        return backend.get_xp(*arrays).concatenate(arrays, axis=self.axis)

    def backward(self, g):
        grads, start = [], 0
        lead = (slice(None),) * self.axis
        for size in self.sizes:
            grads.append(getitem(g, lead + (slice(start, start + size),)))
            start += size
        return tuple(grads)


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    first = tensors[0]
    if any(t.ndim == 0 for t in tensors):
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use stack to make a 1-d "
                         "tensor of them")
    axis = normalize_axis(axis, first.ndim)[0]
    for t in tensors[1:]:
        if t.device != first.device:
            raise RuntimeError(f"concatenate: tensors on different devices ({first.device} and {t.device})")
        if t.ndim != first.ndim or any(s != f for i, (s, f) in enumerate(zip(t.shape, first.shape))
                                       if i != axis):
            raise ValueError(f"concatenate: shapes {first.shape} and {t.shape} differ outside axis {axis}")
    if len({t.dtype for t in tensors}) > 1:
        dtype = np.result_type(*[t.dtype for t in tensors])
        tensors = [astype(t, dtype) for t in tensors]
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all shapes must be equal, got {tensors[0].shape} and {t.shape}")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis=axis)


class Pad(Function):
    def __init__(self, pad_width, value):
        self.pad_width = pad_width
        self.value = value

    def forward(self, a):
        return backend.get_xp(a).pad(a, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, g):
        index = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(self.pad_width))
        return (getitem(g, index),)


def pad(a: Tensor, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding; ``pad_width`` as numpy.pad: ((before, after), ...) per axis, or an int."""
    if isinstance(pad_width, numbers.Integral):
        pad_width = [(pad_width, pad_width)] * a.ndim
    pad_width = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    if len(pad_width) != a.ndim or any(lo < 0 or hi < 0 for lo, hi in pad_width):
        raise ValueError(f"pad: need one non-negative (before, after) pair per axis ({a.ndim}), "
                         f"got {pad_width}")
    if not any(lo or hi for lo, hi in pad_width):
        return a
    return Pad.apply(a, pad_width=pad_width, value=value)
