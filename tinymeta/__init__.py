"""tinymeta: gradient-based meta-learning from scratch, on NumPy and CuPy.

The engine (Tensor, grad) differentiates to any order, so MAML's
gradient-through-a-gradient-step is exact; a leading task axis runs a whole
meta-batch of tasks in one batched computation.
"""
from .autograd import enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import cuda_available, default_device, set_default_device
from .ops import (abs, broadcast_to, concatenate, exp, fold, log, matmul, maximum, mean, minimum, pad,
                  relu, reshape, sigmoid, sqrt, stack, sum, tanh, transpose, unfold, var, where)
from .ops import max as amax
from .tensor import Tensor, tensor

expand = broadcast_to
__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "set_default_device", "default_device", "cuda_available", "abs", "amax", "broadcast_to",
           "concatenate", "exp", "expand", "fold", "log", "matmul", "maximum", "mean", "minimum", "pad",
           "relu", "reshape", "sigmoid", "sqrt", "stack", "sum", "tanh", "transpose", "unfold", "var",
           "where"]
