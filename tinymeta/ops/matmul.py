"""Batched, broadcasting matrix product, with BLAS's transpose flags.

``MatMul(ta, tb)`` computes op(a) @ op(b), where op swaps the last two axes when
its flag is set, as BLAS's gemm does. The flags are why a linear layer and every
matmul backward rule need no transpose op: with C = op(A) op(B),

    dL/dA = g op(B)^T        (transposed back when ``ta``: op(B) g^T)
    dL/dB = op(A)^T g        (transposed back when ``tb``: g^T op(A))

and each of these is again one flagged matmul, at every order of derivative.
NumPy is handed the same transposed views a separate transpose op would make,
so the values are bit for bit those of ``a @ b.swapaxes(-1, -2)``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .common import broadcast_shapes, operands
from .shape import reshape


def _op(x, transposed: bool):
    return x.swapaxes(-1, -2) if transposed else x


def _grads(fn, g):
    """(dL/da, dL/db) of op(a) @ op(b) for upstream ``g``, summed to the inputs' shapes."""
    a, b = fn.inputs
    ga, gb = fn.needs_input_grad
    ta, tb = fn.ta, fn.tb
    da = db = None
    if ga:
        da = matmul_sum_to(b, g, a.shape, tb, True) if ta else matmul_sum_to(g, b, a.shape, False, not tb)
    if gb:
        db = matmul_sum_to(g, a, b.shape, True, ta) if tb else matmul_sum_to(a, g, b.shape, not ta, False)
    return da, db


class MatMul(Function):
    """op(a) @ op(b) (see the module docstring for op and the backward rule)."""

    saves_inputs = True

    def __init__(self, ta=False, tb=False):
        self.ta, self.tb = ta, tb

    def forward(self, a, b):
        return _op(a, self.ta) @ _op(b, self.tb)

    def backward(self, g):
        return _grads(self, g)


class MatMulSumTo(Function):
    """``sum_to(op(x) @ op(y), shape)`` as one contraction.

    A weight shared across N images of a task gets the gradient sum_n g_n x_n^T.
    Computing every g_n x_n^T first and then summing writes an (N, out, in) array
    only to reduce it; one einsum over (n, position) never materialises it. NumPy
    takes the matmul and the sum where that array is no larger than the operands.
    """

    saves_inputs = True

    def __init__(self, shape, ta=False, tb=False):
        self.shape, self.ta, self.tb = shape, ta, tb

    def forward(self, x, y):
        xp = backend.get_xp(x, y)
        x, y = _op(x, self.ta), _op(y, self.tb)
        batch = broadcast_shapes(x.shape[:-2], y.shape[:-2])
        letters = "abcdefghlmnopqrs"[:len(batch)]  # i, j, k name the matrix axes
        lead = len(batch) - (len(self.shape) - 2)
        kept = "".join(c for d, c in enumerate(letters) if d >= lead and self.shape[d - lead] == batch[d])
        x = xp.broadcast_to(x, batch + x.shape[-2:])
        y = xp.broadcast_to(y, batch + y.shape[-2:])
        if xp is np and math.prod(batch) * x.shape[-2] * y.shape[-1] <= x.size + y.size:
            # the products are smaller than the operands (a first conv layer's few input
            # channels): BLAS's batched matmul and a sum beat einsum's copies of the operands
            # (2400 images, 64 x 196 @ 196 x 9 each: 19 against 54 ms)
            return (x @ y).sum(axis=tuple(d for d, c in enumerate(letters) if c not in kept)).reshape(self.shape)
        out = xp.einsum(f"{letters}ij,{letters}jk->{kept}ik", x, y, optimize=True)
        return xp.ascontiguousarray(out).reshape(self.shape)

    def backward(self, u):
        # u broadcasts back over the summed axes, exactly as in MatMul's backward
        return _grads(self, u)


def matmul_sum_to(x: Tensor, y: Tensor, shape, tx: bool = False, ty: bool = False) -> Tensor:
    """``sum_to(op(x) @ op(y), shape)`` (both at least 2-d): a plain matmul when nothing is summed."""
    shape = tuple(shape)
    rows = x.shape[-1] if tx else x.shape[-2]
    cols = y.shape[-2] if ty else y.shape[-1]
    full = broadcast_shapes(x.shape[:-2], y.shape[:-2]) + (rows, cols)
    if full == shape:
        return MatMul.apply(x, y, ta=tx, tb=ty)
    return MatMulSumTo.apply(x, y, shape=shape, ta=tx, tb=ty)


def matmul(a, b, *, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    """``a @ b`` with NumPy semantics: batch axes broadcast, 1-d operands are vectors.

    ``transpose_a`` / ``transpose_b`` use an operand with its last two axes swapped
    (``matmul(x, w, transpose_b=True)`` is ``x @ w.swapaxes(-1, -2)``) without a
    transpose op, as a linear layer does; they need operands of at least 2 axes.
    """
    a, b = operands(a, b, "matmul", broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes {a.shape} and {b.shape}")
    if (transpose_a and a.ndim < 2) or (transpose_b and b.ndim < 2):
        raise ValueError(f"matmul: transpose_a / transpose_b need operands with at least two axes, got shapes "
                         f"{a.shape} and {b.shape}")
    k_a = a.shape[-2] if transpose_a else a.shape[-1]
    k_b = b.shape[-1] if transpose_b else (b.shape[-2] if b.ndim > 1 else b.shape[0])
    if k_a != k_b:
        flags = "".join(f", {n}=True" for n, f in (("transpose_a", transpose_a), ("transpose_b", transpose_b)) if f)
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape}{flags} do not multiply "
                         f"(inner sizes {k_a} and {k_b} differ)")
    if a.ndim == 1 or b.ndim == 1:  # promote vectors to matrices, then drop the added axis
        a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
        b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
        out = matmul(a2, b2, transpose_a=transpose_a, transpose_b=transpose_b)
        drop = out.shape[:-2] + ((out.shape[-2],) if a.ndim > 1 else ()) + \
            ((out.shape[-1],) if b.ndim > 1 else ())
        return reshape(out, drop)
    try:
        broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch axes of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b, ta=bool(transpose_a), tb=bool(transpose_b))
