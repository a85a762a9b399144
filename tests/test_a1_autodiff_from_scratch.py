"""Appendix A1's checker (softplus as a Function, differentiable to second order): the reference solution
passes, typical mistakes fail with a message that names them."""
import numpy as np
import pytest
from exercise_helpers import assert_fails

import tinymeta as tm
from chapters.solutions import a1_autodiff_from_scratch as solution
from tinymeta.autograd import Function
from tinymeta.exercises.a1_autodiff_from_scratch import check_softplus

pytestmark = pytest.mark.a1


# ---- appendix A1: softplus as a Function, to second order ------------------------------------------
def test_softplus_reference_passes():
    assert check_softplus(solution.Softplus) is True
    check_softplus(solution.Softplus, raise_on_failure=True)


def test_softplus_composed_of_ops_passes():
    """A function composed from tinymeta ops (no Function subclass) is accepted too."""
    def softplus(x):
        return tm.maximum(x, 0.0) + tm.log(1.0 + tm.exp(-abs(x)))
    assert check_softplus(softplus) is True


def test_softplus_not_attempted(capsys):
    class Stub(Function):
        def forward(self, a):
            raise NotImplementedError("Exercise 1")

        def backward(self, g):
            raise NotImplementedError("Exercise 1")
    assert check_softplus(Stub) is False
    assert "not attempted yet" in capsys.readouterr().out


class FirstOrderOnly(Function):
    """Right values and first derivatives, but the backward runs on raw arrays."""

    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        s = 1.0 / (1.0 + np.exp(-self.inputs[0].data))
        return (tm.tensor(g.data * s),)


class ReturnsArrays(Function):
    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        return (g.data / (1.0 + np.exp(-self.inputs[0].data)),)


class Overflows(Function):
    def forward(self, a):
        with np.errstate(over="ignore"):
            return np.log(1.0 + np.exp(a))

    def backward(self, g):
        return (g * tm.sigmoid(self.inputs[0]),)


class ForgetsG(Function):
    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        return (tm.sigmoid(self.inputs[0]),)


class NotATuple(Function):
    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        return g * tm.sigmoid(self.inputs[0])


class WrongSecondDerivative(Function):
    """exp(a) / (1 + exp(a)) with a denominator made from the raw array: right first derivative,
    but the denominator's dependence on a is lost, so the second derivative is wrong."""

    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        (a,) = self.inputs
        return (g * tm.exp(a) / tm.tensor(1.0 + np.exp(a.data)),)


@pytest.mark.parametrize("cls, message", [
    (FirstOrderOnly, "the gradient is a constant"),
    (ReturnsArrays, "backward returned a NumPy array: it must return Tensors"),
    (Overflows, "exp overflows for large x"),
    (ForgetsG, "whatever the incoming gradient g is"),
    (NotATuple, "backward should return a tuple"),
    (WrongSecondDerivative, "the second derivative"),
])
def test_softplus_mistakes_are_named(cls, message, capsys):
    assert_fails(check_softplus, cls, message, capsys)
