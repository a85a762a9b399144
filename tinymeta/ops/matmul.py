"""Batched, broadcasting matrix product."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from ._util import operands
from .shape import reshape, sum_to, swapaxes


class MatMul(Function):
    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        # dL/da = g b^T and dL/db = a^T g, summed over any broadcast batch axes
        return (sum_to(g @ swapaxes(b, -1, -2), a.shape) if ga else None,
                sum_to(swapaxes(a, -1, -2) @ g, b.shape) if gb else None)


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
