"""Appendix A1 exercise: a differentiable primitive, written as a :class:`tinymeta.autograd.Function`.

The student writes ``Softplus``: ``forward(a)`` computes softplus(a) = log(1 + exp(a))
on NumPy arrays (without overflow for large a), and ``backward(g)`` returns
``(g * sigmoid(a),)`` **built from tinymeta ops on Tensors**, so that the
backward pass is itself recorded and a second derivative exists.

The checker compares values, first and second derivatives with the closed
forms (sigmoid and sigmoid * (1 - sigmoid)), runs
:func:`tinymeta.testing.gradcheck` and :func:`~tinymeta.testing.gradgradcheck`,
and names the usual mistakes: an overflowing forward, a backward that returns
NumPy arrays or forgets the incoming gradient, and a backward computed on raw
arrays, which gives right first derivatives but no second ones.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, grad
from ..tensor import Tensor, tensor
from ..testing import GradcheckError, gradcheck, gradgradcheck
from ._check import Mismatch, compare, run_checker


def _kind(obj) -> str:
    return "NumPy array" if isinstance(obj, np.ndarray) else type(obj).__name__


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _applier(student):
    """The student's op as a function of one Tensor (a Function subclass, or any callable)."""
    if isinstance(student, type) and issubclass(student, Function):
        return student.apply
    if callable(student):
        return student
    raise Mismatch(f"pass the Function subclass itself (e.g. Softplus), got {type(student).__name__}")


def _call(op, x, what):
    try:
        y = op(x)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 (a bug in the student's code: report it)
        raise Mismatch(f"calling it on {what} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(y, Tensor):
        raise Mismatch(f"on {what} it returned a {type(y).__name__}; call it through .apply (Softplus.apply(x)) "
                       "so that it returns a Tensor")
    return y


def _check_backward_contract(student, x):
    """Call the student's backward directly, to name a wrong return type before grad() trips over it."""
    if not (isinstance(student, type) and issubclass(student, Function)):
        return
    y = student.apply(x)
    if y._ctx is None:
        raise Mismatch("the output is not connected to its input: was forward's result returned by "
                       "Softplus.apply(x) on an input with requires_grad=True?")
    g = Tensor(np.ones(y.shape, dtype=y.dtype))
    try:
        out = y._ctx.backward(g)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 (a bug in the student's code: report it)
        raise Mismatch(f"backward(g) raised {type(exc).__name__}: {exc}") from None
    if not isinstance(out, (tuple, list)):
        raise Mismatch(f"backward should return a tuple with one gradient per input, e.g. `return (g * s,)`; "
                       f"it returned a {type(out).__name__}")
    if len(out) != 1:
        raise Mismatch(f"backward returned {len(out)} gradients for the op's one input")
    if not isinstance(out[0], Tensor):
        raise Mismatch(f"backward returned a {_kind(out[0])}: it must return Tensors computed with "
                       "tinymeta ops (g, self.inputs[0], self.out, tm.sigmoid, *, ...) so that the backward pass "
                       "itself can be differentiated")
    if out[0].shape != x.shape:
        raise Mismatch(f"backward returned a gradient of shape {out[0].shape} for an input of shape {x.shape}")


def check_softplus(student, raise_on_failure: bool = False) -> bool:
    """Check a ``Softplus`` Function subclass (or a callable Tensor -> Tensor) to second order."""

    def body():
        op = _applier(student)
        rng = np.random.default_rng(2)
        x_np = np.concatenate([rng.uniform(-4, 4, 10), [-1.0, 0.25, 0.5, 2.0]]).reshape(2, 7)
        x = tensor(x_np, requires_grad=True)
        y = _call(op, x, "a (2, 7) float64 input")
        compare(y, np.logaddexp(0.0, x_np), "softplus(x) on a (2, 7) input", rtol=1e-10, atol=1e-12)
        if y.dtype != np.float64:
            raise Mismatch(f"a float64 input gave a {y.dtype} output: keep the input's dtype")

        big_np = np.array([-800.0, -50.0, 30.0, 50.0, 800.0])
        y_big = _call(op, tensor(big_np, requires_grad=True), "large inputs")
        got = y_big.numpy()
        if not np.all(np.isfinite(got)):
            raise Mismatch(f"softplus of {big_np.tolist()} gave {got.tolist()}: exp overflows for large x. Use "
                           "np.logaddexp(0, a), or max(a, 0) + log1p(exp(-|a|)), which never exponentiates a "
                           "large positive number")
        compare(y_big, np.logaddexp(0.0, big_np), "softplus(x) for large |x|", rtol=1e-10, atol=1e-12)

        _check_backward_contract(student, tensor(x_np, requires_grad=True))
        v = rng.normal(size=x_np.shape)
        x = tensor(x_np, requires_grad=True)
        try:
            g = grad(op(x), x, grad_outputs=tensor(v), create_graph=True)
        except Exception as exc:  # noqa: BLE001 (a bug in the student's code: report it)
            raise Mismatch(f"tm.grad through your op raised {type(exc).__name__}: {exc}") from None
        s = _sigmoid(x_np)
        if not np.allclose(g.numpy(), v * s, rtol=1e-8, atol=1e-10) and np.allclose(g.numpy(), s, rtol=1e-8):
            raise Mismatch("the gradient is sigmoid(x) whatever the incoming gradient g is: backward must return "
                           "g * sigmoid(x) (the chain rule: the gradient flowing in times the local derivative)")
        compare(g, v * s, "the first derivative (g * sigmoid(x) for a random g)", rtol=1e-8, atol=1e-10)

        if not g.requires_grad:
            raise Mismatch("first derivatives are right, but the gradient is a constant: backward computes it on "
                           "raw arrays (.data, NumPy) and wraps the result, so nothing records how it depends on x "
                           "and there is no second derivative (second-order MAML would silently become first "
                           "order). Write backward with tinymeta ops on Tensors: e.g. "
                           "`return (g * tm.sigmoid(self.inputs[0]),)`")
        w = rng.normal(size=x_np.shape)
        try:
            gg = grad(g, x, grad_outputs=tensor(w), allow_unused=True)
        except Exception as exc:  # noqa: BLE001 (a bug in the student's code: report it)
            raise Mismatch(f"differentiating your backward pass raised {type(exc).__name__}: {exc}") from None
        if gg is None:
            raise Mismatch("the gradient does not depend on x in the graph: backward must use the input tensor "
                           "(self.inputs[0]) or the output (self.out), not constants made from their arrays")
        compare(gg, v * w * s * (1 - s), "the second derivative (g * v * sigmoid(x) (1 - sigmoid(x)) for random g, v)",
                rtol=1e-7, atol=1e-9)

        x_small = tensor(rng.uniform(-3, 3, size=(3, 2)), requires_grad=True)
        for check, what in ((gradcheck, "gradcheck"), (gradgradcheck, "gradgradcheck")):
            try:
                check(op, [x_small])
            except GradcheckError as exc:
                raise Mismatch(f"tinymeta.testing.{what} fails: {exc}") from None

    return run_checker("check_softplus", body, raise_on_failure)


__all__ = ["check_softplus"]
