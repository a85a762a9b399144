"""Batched, broadcasting matrix product."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .common import operands
from .shape import reshape, swapaxes


class MatMul(Function):
    saves_inputs = True

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        # dL/da = g b^T and dL/db = a^T g, summed over any broadcast batch axes
        return (matmul_sum_to(g, swapaxes(b, -1, -2), a.shape) if ga else None,
                matmul_sum_to(swapaxes(a, -1, -2), g, b.shape) if gb else None)


class MatMulSumTo(Function):
    """``sum_to(x @ y, shape)`` as one contraction.

    A weight shared across N images of a task gets the gradient sum_n g_n x_n^T.
    Computing every g_n x_n^T first and then summing writes an (N, out, in) array
    only to reduce it; one einsum over (n, position) never materialises it.
    """

    saves_inputs = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x, y):
        xp = backend.get_xp(x, y)
        batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        letters = "abcdefghlmnopqrs"[:len(batch)]  # i, j, k name the matrix axes
        lead = len(batch) - (len(self.shape) - 2)
        kept = "".join(c for d, c in enumerate(letters) if d >= lead and self.shape[d - lead] == batch[d])
        x = xp.broadcast_to(x, batch + x.shape[-2:])
        y = xp.broadcast_to(y, batch + y.shape[-2:])
        out = xp.einsum(f"{letters}ij,{letters}jk->{kept}ik", x, y, optimize=True)
        return xp.ascontiguousarray(out).reshape(self.shape)

    def backward(self, u):
        x, y = self.inputs
        gx, gy = self.needs_input_grad
        # u broadcasts back over the summed axes, exactly as in MatMul's backward
        return (matmul_sum_to(u, swapaxes(y, -1, -2), x.shape) if gx else None,
                matmul_sum_to(swapaxes(x, -1, -2), u, y.shape) if gy else None)


def matmul_sum_to(x: Tensor, y: Tensor, shape) -> Tensor:
    """``sum_to(x @ y, shape)`` (both at least 2-d): a plain matmul when nothing is summed."""
    shape = tuple(shape)
    full = np.broadcast_shapes(x.shape[:-2], y.shape[:-2]) + (x.shape[-2], y.shape[-1])
    if full == shape:
        return MatMul.apply(x, y)
    return MatMulSumTo.apply(x, y, shape=shape)


def matmul(a, b) -> Tensor:
    """``a @ b`` with NumPy semantics: batch axes broadcast, 1-d operands are vectors."""
    a, b = operands(a, b, "matmul", broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes {a.shape} and {b.shape}")
    k_a, k_b = a.shape[-1], b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply "
                         f"(inner sizes {k_a} and {k_b} differ)")
    if a.ndim == 1 or b.ndim == 1:  # promote vectors to matrices, then drop the added axis
        a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
        b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
        out = matmul(a2, b2)
        drop = out.shape[:-2] + ((out.shape[-2],) if a.ndim > 1 else ()) + \
            ((out.shape[-1],) if b.ndim > 1 else ())
        return reshape(out, drop)
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch axes of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b)
