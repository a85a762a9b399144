"""Standardisation, batch normalisation's core, as one op with an op for its gradient.

    xhat = (x - m(x)) r,    r = (m((x - m(x))^2) + eps)^(-1/2),

where m is the mean over the normalised axes (one group per task and channel).
Composed from primitives (mean, sub, mul, mean, add, pow, mul), its gradient is
a dozen more ops, and second-order MAML records that gradient and then
differentiates it again: batch norm alone made half of a meta-iteration's kernel
launches. Here the forward is one op and its gradient is one op too,

    dx = J g = r (g - m(g) - xhat m(g xhat)),   J = r (I - 11^T/n - xhat xhat^T/n),

whose own backward (J is symmetric, so d/dg is J again) is one pass on arrays
when nothing records, and differentiable ops when a graph is recorded, so every
order of derivative stays exact. The elementwise passes are ``ElementwiseKernel``s:
a NumPy reference, and the same line compiled to one kernel on a GPU.
"""
from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..autograd import Function
from ..tensor import Tensor
from .common import normalize_axis, sum_kept
from .reduce import mean


def _centre_reference(x, mu, centered, squared):
    np.subtract(x, mu, out=centered)
    np.multiply(centered, centered, out=squared)


_centre_kernel = backend.ElementwiseKernel(  # x - m(x) and its square in one pass on a GPU
    _centre_reference, "T x, T mu", "T centered, T squared", "centered = x - mu; squared = centered * centered;",
    "tinymeta_standardize_centre")


def _rsqrt_reference(var, eps, r):
    np.divide(1, np.sqrt(var + eps), out=r)


_rsqrt_kernel = backend.ElementwiseKernel(
    _rsqrt_reference, "T var, T eps", "T r", "r = 1 / sqrt(var + eps);", "tinymeta_standardize_rsqrt")


def _mean(a, axes, b=None):
    """The mean of ``a`` (or of ``a * b``) over ``axes``, keeping them as size-1 axes: on NumPy
    one einsum pass that never writes the product (:func:`.common.sum_kept`)."""
    if backend.get_xp(a) is not np:
        return (a if b is None else a * b).mean(axis=axes, keepdims=True)
    n = int(np.prod([a.shape[d] for d in axes]))
    return sum_kept(a, axes, b) / a.dtype.type(n)


class Standardize(Function):
    saves_inputs = saves_output = True

    def __init__(self, axes, eps):
        self.axes = axes
        self.eps = eps

    def forward(self, x):
        xp = backend.get_xp(x)
        if xp is np:  # the variance straight from x - m(x), without writing the squares
            centered = x - _mean(x, self.axes)
            var = _mean(centered, self.axes, centered)
        else:
            centered, squared = xp.empty(x.shape, dtype=x.dtype), xp.empty(x.shape, dtype=x.dtype)
            _centre_kernel(x, x.mean(axis=self.axes, keepdims=True), centered, squared)
            var = squared.mean(axis=self.axes, keepdims=True)
        self.r = xp.empty(var.shape, dtype=var.dtype)  # kept: the gradient needs it
        _rsqrt_kernel(var, x.dtype.type(self.eps), self.r)
        centered *= self.r  # in place: ``centered`` is this op's own fresh array
        return centered

    def backward(self, g):
        (x,) = self.inputs
        return (StandardizeGrad.apply(x, g, standardize=self, xhat=self.out),)

    def r_tensor(self, x: Tensor) -> Tensor:
        """r recomputed from ``x`` as a graph: what third and higher derivatives differentiate."""
        centered = x - mean(x, self.axes, keepdims=True)
        return (mean(centered * centered, self.axes, keepdims=True) + self.eps) ** -0.5


def _gradient_reference(g, xhat, r, mean_g, q, out):
    # out = r (g - mean_g - xhat q), one step at a time in ``out``: no temporary arrays
    np.multiply(xhat, q, out=out)
    np.subtract(g, out, out=out)
    out -= mean_g
    out *= r


_gradient_kernel = backend.ElementwiseKernel(  # r (g - m(g) - xhat q) in one pass on a GPU
    _gradient_reference, "T g, T xhat, T r, T mean_g, T q", "T out", "out = r * (g - mean_g - xhat * q);",
    "tinymeta_standardize_grad")


def _second_reference(xhat, jh, jg, r, p, q, mean_hg, mean_h, mean_g, out):
    # out = -r ((mean_hg - mean_h mean_g - p q) r xhat + q jh + p jg), accumulated in ``out``
    np.multiply(xhat, (mean_hg - mean_h * mean_g - p * q) * r, out=out)
    term = np.multiply(q, jh)
    out += term
    out += np.multiply(p, jg, out=term)
    out *= -r


_second_kernel = backend.ElementwiseKernel(  # d<h, J g>/dx in one pass on a GPU
    _second_reference, "T xhat, T jh, T jg, T r, T p, T q, T mean_hg, T mean_h, T mean_g", "T out",
    "out = -r * ((mean_hg - mean_h * mean_g - p * q) * r * xhat + q * jh + p * jg);",
    "tinymeta_standardize_grad_grad")


class StandardizeGrad(Function):
    """The gradient of :class:`Standardize` at x for the upstream gradient g: J g.

    Its own backward, for an upstream h (f = <h, J g>; p = m(h xhat), q = m(g xhat),
    a = m(h g) - m(h) m(g)):
        d f / d g = J h
        d f / d x = -r ((a - p q) r xhat + q J h + p J g)
    (from dr/dx = -(r^2/n) xhat and d xhat/dx = J). When nothing records (second-order
    MAML's outer backward) that is one kernel on arrays; when a graph is recorded, the
    same formula in differentiable ops.
    """
    saves_inputs = saves_output = True

    def __init__(self, standardize, xhat):
        self.standardize = standardize
        self.xhat = xhat  # the forward's output, held so that this gradient can be differentiated later

    def forward(self, x, g):
        axes, r, xhat = self.standardize.axes, self.standardize.r, self.xhat.array
        self.q = _mean(g, axes, xhat)
        self.mean_g = _mean(g, axes)
        out = backend.get_xp(g).empty(g.shape, dtype=g.dtype)
        _gradient_kernel(g, xhat, r, self.mean_g, self.q, out)
        return out

    def backward(self, h):
        x, g = self.inputs
        std, xhat = self.standardize, self.xhat
        jh = StandardizeGrad.apply(x, h, standardize=std, xhat=xhat)
        if not autograd.is_grad_enabled():
            hh, axes = h.array, std.axes
            p, mean_hg = _mean(hh, axes, xhat.array), _mean(hh, axes, g.array)
            out = backend.get_xp(hh).empty(hh.shape, dtype=hh.dtype)
            _second_kernel(xhat.array, jh.array, self.out.array, std.r, p, self.q, mean_hg,
                           _mean(hh, axes), self.mean_g, out)
            return Tensor(out), jh
        axes, r = std.axes, std.r_tensor(x)
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
