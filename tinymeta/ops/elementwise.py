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


class Pow(Function):
    """``a ** b`` elementwise with a tensor exponent, PyTorch's rules at the edges.

    The forward is the backend's power, so a negative base with an integer-valued
    exponent is exact (``(-1.5) ** 2 = 2.25``) and with a non-integer one is NaN (not a
    real number), as in NumPy and PyTorch. Gradients, as PyTorch defines them:
    d/da = b a^(b-1), but 0 where b == 0; d/db = a^b log a, but 0 where a == 0 and
    b >= 0 (0 ** y is constant there), NaN for a negative base (log a is not real).
    """
    saves_inputs = saves_output = True

    def forward(self, a, b):
        xp = backend.get_xp(a, b)
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN/inf where the result is not real/finite
            return xp.power(a, b)

    def backward(self, g):
        a, b = self.inputs
        ga, gb = self.needs_input_grad
        xp = backend.get_xp(a.array)
        grad_a = grad_b = None
        if ga:
            zero_exponent = b.array == 0
            # where b == 0 the gradient is 0, also at a == 0 (where a^(b-1) is infinite): the
            # exponent is moved to 1 there so that no order of derivative meets 0 * inf
            b_safe = where(zero_exponent, 1.0, b)
            grad_a = sum_to(where(zero_exponent, 0.0, g * b_safe * pow(a, b_safe - 1.0)), a.shape)
        if gb:
            flat = xp.logical_and(a.array == 0, b.array >= 0)
            # log is taken of 1 where 0 ** y is flat, so its derivatives stay finite there too
            a_safe = where(flat, 1.0, a)
            with np.errstate(invalid="ignore"):  # log of a negative base: NaN, as documented
                log_a = log(a_safe)
            grad_b = sum_to(where(flat, 0.0, g * self.out * log_a), b.shape)
        return grad_a, grad_b


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


class Softplus(Function):
    """log(1 + exp(x)), computed stably (``logaddexp(0, x)``); d/dx = sigmoid(x), 1/2 at 0."""
    saves_inputs = True

    def forward(self, a):
        return backend.get_xp(a).logaddexp(0, a)

    def backward(self, g):
        return (g * sigmoid(self.inputs[0]),)


class Sin(Function):
    saves_inputs = True

    def forward(self, a):
        return backend.get_xp(a).sin(a)

    def backward(self, g):
        return (g * cos(self.inputs[0]),)


class Cos(Function):
    saves_inputs = True

    def forward(self, a):
        return backend.get_xp(a).cos(a)

    def backward(self, g):
        return (neg(g * sin(self.inputs[0])),)


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
def softplus(a): return Softplus.apply(a)
def sin(a): return Sin.apply(a)
def cos(a): return Cos.apply(a)
def tanh(a): return Tanh.apply(a)
def sigmoid(a): return Sigmoid.apply(a)
def relu(a): return Relu.apply(a)
def abs(a): return Abs.apply(a)  # noqa: A001 (mirrors numpy.abs)


def pow(a, b):  # noqa: A001 (mirrors numpy.power)
    """``a ** b``. A number exponent is the common case (one op, any base); a Tensor
    exponent is the :class:`Pow` op, which follows PyTorch: a negative base gives a real
    result for an integer-valued exponent and NaN otherwise, and ``0 ** y`` has gradient
    0 with respect to ``y`` (for ``y >= 0``)."""
    if isinstance(b, numbers.Number) and isinstance(a, Tensor):
        return PowScalar.apply(a, p=b)
    a, b = operands(a, b, "pow")
    return Pow.apply(a, b)


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
