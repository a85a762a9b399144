"""Elementwise ops. Each forward works on arrays; each backward is written with
tinymeta ops on Tensors, so it can itself be differentiated."""
from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .common import operands
from .shape import sum_to


def _mask(array, like: Tensor) -> Tensor:
    """A constant 0/1 tensor in ``like``'s dtype (derivatives of a mask are zero)."""
    return Tensor(array.astype(like.dtype))


# ---- binary arithmetic: the output broadcasts, so each gradient is summed back -----------
class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        return sum_to(g, a.shape) if ga else None, sum_to(g, b.shape) if gb else None


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        return (sum_to(g, a.shape) if ga else None,
                neg(sum_to(g, b.shape)) if gb else None)  # negate after reducing: fewer elements


class Mul(Function):
    saves_inputs = True

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        return (sum_to(g * b, a.shape) if ga else None,
                sum_to(g * a, b.shape) if gb else None)


class Div(Function):
    saves_inputs = saves_output = True

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        return (sum_to(g / b, a.shape) if ga else None,
                sum_to(neg(g) * self.out / b, b.shape) if gb else None)  # d(a/b)/db = -(a/b)/b


class Maximum(Function):
    saves_inputs = True

    def forward(self, a, b):
        return backend.get_xp(a).maximum(a, b)

    def backward(self, g):
        a, b = self.inputs
        # where a == b the gradient is split evenly, as the subgradient midpoint
        wa = _mask((a.array > b.array) + 0.5 * (a.array == b.array), g)
        ga, gb = self.needs_input_grad
        return sum_to(g * wa, a.shape) if ga else None, sum_to(g * (1.0 - wa), b.shape) if gb else None


def add(a, b): return Add.apply(*operands(a, b, "add"))
def sub(a, b): return Sub.apply(*operands(a, b, "sub"))
def mul(a, b): return Mul.apply(*operands(a, b, "mul"))
def div(a, b): return Div.apply(*operands(a, b, "div"))


def maximum(a, b):
    """Elementwise maximum; at ties each side gets half the gradient."""
    return Maximum.apply(*operands(a, b, "maximum"))


def minimum(a, b):
    """Elementwise minimum, as -max(-a, -b) (numbers accepted on either side, as in maximum)."""
    a, b = operands(a, b, "minimum")
    return neg(maximum(neg(a), neg(b)))


# ---- unary ----------------------------------------------------------------------------------
class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (neg(g),)


class PowScalar(Function):
    saves_inputs = True

    def __init__(self, p):
        self.p = p

    def forward(self, a):
        return a ** self.p

    def backward(self, g):
        (a,) = self.inputs
        if self.p == 0:
            return (g * 0.0,)
        return (g * self.p * a ** (self.p - 1),)


class Exp(Function):
    saves_output = True

    def forward(self, a):
        return backend.get_xp(a).exp(a)

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    saves_inputs = True

    def forward(self, a):
        return backend.get_xp(a).log(a)

    def backward(self, g):
        return (g / self.inputs[0],)


class Sqrt(Function):
    saves_output = True

    def forward(self, a):
        return backend.get_xp(a).sqrt(a)

    def backward(self, g):
        return (g * 0.5 / self.out,)


class Tanh(Function):
    saves_output = True

    def forward(self, a):
        return backend.get_xp(a).tanh(a)

    def backward(self, g):
        y = self.out
        return (g * (1.0 - y * y),)


class Sigmoid(Function):
    saves_output = True

    def forward(self, a):
        xp = backend.get_xp(a)
        # two branches so that exp never overflows
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype)

    def backward(self, g):
        y = self.out
        return (g * y * (1.0 - y),)


class Relu(Function):
    saves_inputs = True

    def forward(self, a):
        return backend.get_xp(a).maximum(a, 0)

    def backward(self, g):
        return (ReluGrad.apply(g, x=self.inputs[0].array),)


def _relu_grad_reference(g, x, out):
    np.multiply(g, x > 0, out=out)


_relu_grad_kernel = backend.ElementwiseKernel(
    _relu_grad_reference, "T g, T x", "T out", "out = g * (x > 0);", "tinymeta_relu_grad")


class ReluGrad(Function):
    """g * [x > 0], relu's gradient at a constant x: one kernel (not a compare, a cast and a
    multiply). Linear in g, so its own gradient is the same mask: every order stays exact."""

    def __init__(self, x):
        self.x = x

    def forward(self, g):
        out = backend.get_xp(g).empty(g.shape, dtype=g.dtype)
        _relu_grad_kernel(g, self.x, out)
        return out

    def backward(self, h):
        return (ReluGrad.apply(h, x=self.x),)


class Abs(Function):
    saves_inputs = True

    def forward(self, a):
        return backend.get_xp(a).abs(a)

    def backward(self, g):
        return (g * _mask(backend.get_xp(g.array).sign(self.inputs[0].array), g),)


class Where(Function):
    """``where(cond, a, b)`` with a constant boolean ``cond``."""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        return backend.get_xp(a).where(self.cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        m = _mask(self.cond, g)
        ga, gb = self.needs_input_grad
        return sum_to(g * m, a.shape) if ga else None, sum_to(g * (1.0 - m), b.shape) if gb else None


def neg(a): return Neg.apply(a)
def exp(a): return Exp.apply(a)
def log(a): return Log.apply(a)
def sqrt(a): return Sqrt.apply(a)
def tanh(a): return Tanh.apply(a)
def sigmoid(a): return Sigmoid.apply(a)
def relu(a): return Relu.apply(a)
def abs(a): return Abs.apply(a)  # noqa: A001 (mirrors numpy.abs)


def pow(a, b):  # noqa: A001 (mirrors numpy.power)
    """``a ** b``. A number exponent is the common case; a Tensor exponent is
    computed as exp(b log a), so it needs a > 0."""
    if isinstance(b, numbers.Number) and isinstance(a, Tensor):
        return PowScalar.apply(a, p=b)
    a, b = operands(a, b, "pow")
    return exp(b * log(a))


def where(cond, a, b):
    """Elementwise ``a`` where ``cond`` holds, else ``b`` (``cond`` is not differentiated)."""
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError("where: a or b must be a Tensor")
    a, b = operands(a, b, "where")
    cond = cond.array if isinstance(cond, Tensor) else backend.to_device(cond, like.device)
    cond = cond.astype(bool)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape} (cond), {a.shape} and {b.shape} "
                         "do not broadcast") from None
    return Where.apply(a, b, cond=cond)
