"""Standardisation, batch normalisation's core, as one op with an op for its gradient.

    xhat = (x - m(x)) r,    r = (m((x - m(x))^2) + eps)^(-1/2),

where m is the mean over the normalised axes (one group per task and channel).
Composed from primitives (mean, sub, mul, mean, add, pow, mul), its gradient is
a dozen more ops, and second-order MAML records that gradient and then
differentiates it again: batch norm alone made half of a meta-iteration's kernel
launches. Here the forward is one op and its gradient is one op too,

    dx = J g = r (g - m(g) - xhat m(g xhat)),   J = r (I - 11^T/n - xhat xhat^T/n),

whose own backward (J is symmetric, so d/dg is J again) is written below in
differentiable ops, so every order of derivative stays exact.
"""
from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..autograd import Function
from ..tensor import Tensor
from .common import normalize_axis
from .reduce import mean


class Standardize(Function):
    saves_inputs = saves_output = True

    def __init__(self, axes, eps):
        self.axes = axes
        self.eps = eps

    def forward(self, x):
        mu = x.mean(axis=self.axes, keepdims=True)
        centered = x - mu
        var = (centered * centered).mean(axis=self.axes, keepdims=True)
        self.r = (var + x.dtype.type(self.eps)) ** x.dtype.type(-0.5)  # kept: the gradient needs it
        centered *= self.r  # in place: ``centered`` is this op's own fresh array
        return centered

    def backward(self, g):
        (x,) = self.inputs
        return (StandardizeGrad.apply(x, g, standardize=self, xhat=self.out),)

    def r_tensor(self, x: Tensor) -> Tensor:
        """r as a tensor: recomputed from ``x`` when a graph is being recorded (third and
        higher derivatives need r's dependence on x), the saved array otherwise."""
        if not autograd.is_grad_enabled():
            return Tensor(self.r)
        centered = x - mean(x, self.axes, keepdims=True)
        return (mean(centered * centered, self.axes, keepdims=True) + self.eps) ** -0.5


def _gradient_reference(g, xhat, r, mean_g, q, out):
    np.multiply(r, g - mean_g - xhat * q, out=out)


_gradient_kernel = backend.ElementwiseKernel(  # r (g - m(g) - xhat q) in one pass on a GPU
    _gradient_reference, "T g, T xhat, T r, T mean_g, T q", "T out", "out = r * (g - mean_g - xhat * q);",
    "tinymeta_standardize_grad")


class StandardizeGrad(Function):
    """The gradient of :class:`Standardize` at x for the upstream gradient g: J g.

    Its own backward, for an upstream h (f = <h, J g>; p = m(h xhat), q = m(g xhat),
    a = m(h g) - m(h) m(g)):
        d f / d g = J h
        d f / d x = -r ((a - p q) r xhat + q J h + p J g)
    (from dr/dx = -(r^2/n) xhat and d xhat/dx = J).
    """
    saves_inputs = saves_output = True

    def __init__(self, standardize, xhat):
        self.standardize = standardize
        self.xhat = xhat  # the forward's output, held so that this gradient can be differentiated later

    def forward(self, x, g):
        axes, r, xhat = self.standardize.axes, self.standardize.r, self.xhat.array
        q = (g * xhat).mean(axis=axes, keepdims=True)
        out = backend.get_xp(g).empty(g.shape, dtype=g.dtype)
        _gradient_kernel(g, xhat, r, g.mean(axis=axes, keepdims=True), q, out)
        return out

    def backward(self, h):
        x, g = self.inputs
        axes, xhat = self.standardize.axes, self.xhat
        r = self.standardize.r_tensor(x)
        jh = StandardizeGrad.apply(x, h, standardize=self.standardize, xhat=xhat)
        p = mean(h * xhat, axes, keepdims=True)
        q = mean(g * xhat, axes, keepdims=True)
        a = mean(h * g, axes, keepdims=True) - mean(h, axes, keepdims=True) * mean(g, axes, keepdims=True)
        gx = -r * ((a - p * q) * r * xhat + q * jh + p * self.out)
        return gx, jh


def standardize(x: Tensor, axis=None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axis`` (an int, a tuple, or None for all), the
    biased variance; what batch norm computes before its scale and shift."""
    if x.dtype.kind != "f":
        raise TypeError(f"standardize: expected a float tensor, got {x.dtype}")
    if not eps > 0:
        raise ValueError(f"standardize: eps must be positive (it keeps 1/sqrt(var + eps) finite), got {eps}")
    axes = normalize_axis(axis, x.ndim)
    return Standardize.apply(x, axes=axes, eps=float(eps))
