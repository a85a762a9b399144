"""Reference solution for appendix A1's exercise: softplus as a tinymeta Function, differentiable to any order."""
import numpy as np

import tinymeta as tm
from tinymeta.autograd import Function


class Softplus(Function):
    """softplus(a) = log(1 + exp(a)); its derivative is sigmoid(a)."""

    def forward(self, a):
        return np.logaddexp(0.0, a)          # log(exp(0) + exp(a)), computed without overflow

    def backward(self, g):
        (a,) = self.inputs                   # the input Tensor: the backward is recorded with tinymeta ops
        return (g * tm.sigmoid(a),)
