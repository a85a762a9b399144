"""Softmax cross-entropy as one op, with one op for its gradient.

For logits z (..., C) and a constant one-hot target y (..., C), per example:

    nll = log sum_c exp(z_c) - <y, z>,        d nll / dz = p - y,   p = softmax(z).

Composed from primitives (max, sub, exp, sum, log, sub, mul, sum, neg) the loss
is nine ops and its gradient a dozen more, which second-order MAML records in
the inner step and differentiates again. Here the gradient g (p - y) is one op
too, and its own backward, for an upstream h (..., C),

    d <h, g (p - y)> / d g = <h, p - y>,     d <h, g (p - y)> / d z = g p (h - <p, h>)

(the softmax Jacobian diag(p) - p p^T is symmetric), is one pass when nothing
records and differentiable ops when a graph is recorded, so every order is exact.
"""
from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import exp, log
from .reduce import max as max_, sum as sum_
from .shape import reshape


def _exp_reference(z, top, e):
    np.exp(z - top, out=e)


_exp_kernel = backend.ElementwiseKernel(
    _exp_reference, "T z, T top", "T e", "e = exp(z - top);", "tinymeta_softmax_ce_exp")


def _nll_reference(total, top, z_dot_y, y_sum, nll):
    np.subtract(z_dot_y, top, out=nll)
    np.subtract(np.log(total), nll, out=nll)
    nll *= y_sum
    with np.errstate(invalid="ignore"):  # 0/0 is the point
        nll /= y_sum


# log sum exp(z - top) - (<z, y> - top), i.e. log sum exp(z) - <z, y>: the label's logit is
# shifted first (exactly, being near top when the loss is small), so a small loss keeps its
# relative precision ((log(total) + top) - z_y would round it to the spacing of floats at top);
# times y_sum / y_sum, which is exact for a one-hot row and 0/0 = NaN for a row of zeros
# (a label outside [0, C), unchecked on a GPU)
_nll_kernel = backend.ElementwiseKernel(
    _nll_reference, "T total, T top, T z_dot_y, T y_sum", "T nll",
    "nll = (log(total) - (z_dot_y - top)) * y_sum / y_sum;", "tinymeta_softmax_ce_nll")


def _gradient_reference(g, p, y, out):
    np.multiply(g, p - y, out=out)


_gradient_kernel = backend.ElementwiseKernel(
    _gradient_reference, "T g, T p, T y", "T out", "out = g * (p - y);", "tinymeta_softmax_ce_grad")


def _second_reference(g, p, h, p_dot_h, out):
    np.multiply(g * p, h - p_dot_h, out=out)


_second_kernel = backend.ElementwiseKernel(
    _second_reference, "T g, T p, T h, T p_dot_h", "T out", "out = g * p * (h - p_dot_h);",
    "tinymeta_softmax_ce_grad_grad")


class SoftmaxCrossEntropy(Function):
    saves_inputs = True

    def __init__(self, target):
        self.target = target  # the one-hot array: a constant

    def forward(self, z):
        xp = backend.get_xp(z)
        top = z.max(axis=-1, keepdims=True)  # exp never overflows; the result does not depend on it
        e = xp.empty(z.shape, dtype=z.dtype)
        _exp_kernel(z, top, e)
        total = e.sum(axis=-1, keepdims=True)
        self.p = e / total  # kept: the gradient is p - y
        nll = xp.empty(z.shape[:-1], dtype=z.dtype)
        _nll_kernel(total[..., 0], top[..., 0], (z * self.target).sum(axis=-1), self.target.sum(axis=-1), nll)
        return nll

    def backward(self, g):
        (z,) = self.inputs
        return (SoftmaxCrossEntropyGrad.apply(z, g, loss=self),)

    def p_tensor(self, z: Tensor) -> Tensor:
        """softmax(z) recomputed as a graph: what third and higher derivatives differentiate."""
        shifted = z - max_(z.detach(), -1, keepdims=True)
        return exp(shifted - log(sum_(exp(shifted), -1, keepdims=True)))


class SoftmaxCrossEntropyGrad(Function):
    """g (p - y): the gradient of :class:`SoftmaxCrossEntropy` for per-example upstream g."""
    saves_inputs = True

    def __init__(self, loss):
        self.loss = loss  # the forward op: its p and target

    def forward(self, z, g):
        out = backend.get_xp(z).empty(z.shape, dtype=z.dtype)
        _gradient_kernel(g[..., None], self.loss.p, self.loss.target, out)
        return out

    def backward(self, h):
        z, g = self.inputs
        loss = self.loss
        if not autograd.is_grad_enabled():  # one pass on arrays (second-order MAML's outer backward)
            hh, p = h.array, loss.p
            grad_g = (hh * (p - loss.target)).sum(axis=-1)
            grad_z = backend.get_xp(hh).empty(hh.shape, dtype=hh.dtype)
            _second_kernel(g.array[..., None], p, hh, (p * hh).sum(axis=-1, keepdims=True), grad_z)
            return Tensor(grad_z), Tensor(grad_g)
        p = loss.p_tensor(z)
        grad_g = sum_(h * (p - Tensor(loss.target)), -1)
        grad_z = reshape(g, g.shape + (1,)) * p * (h - sum_(p * h, -1, keepdims=True))
        return grad_z, grad_g


def softmax_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Per-example ``log sum exp(logits) - <target, logits>`` over the last axis.

    ``target`` is a constant one-hot tensor of the logits' shape (see :func:`one_hot`);
    a row of zeros (a label outside [0, C)) gives NaN for that example.
    """
    if logits.ndim < 1 or target.shape != logits.shape:
        raise ValueError(f"softmax_cross_entropy: target shape {target.shape} must equal logits shape "
                         f"{logits.shape} (one-hot rows over the last axis)")
    if logits.dtype.kind != "f" or target.dtype != logits.dtype:
        raise TypeError(f"softmax_cross_entropy: logits and target must share a float dtype, got "
                        f"{logits.dtype} and {target.dtype}")
    if target.requires_grad:
        raise ValueError("softmax_cross_entropy: the target is a constant (labels); detach it")
    return SoftmaxCrossEntropy.apply(logits, target=target.array)
