"""tinymeta's primitive ops, by family. Every op here is differentiable to any order.

The primitives a backend must provide are few: elementwise arithmetic and
functions, sum and max reductions, reshape/transpose/broadcast/index/pad/
concatenate, matmul, and unfold/fold. Everything else (mean, var, conv2d,
pooling, softmax, losses) is composed from them.
"""
from .conv import fold, unfold
from .elementwise import (abs, add, compare, div, exp, log, maximum, minimum, mul, neg, pow, relu,
                          sigmoid, sqrt, sub, tanh, where)
from .matmul import matmul
from .reduce import argmax, max, mean, min, sum, var
from .shape import (astype, broadcast_to, concatenate, flatten, getitem, pad, reshape, squeeze, stack,
                    sum_to, swapaxes, to_device, transpose, unsqueeze)

__all__ = ["abs", "add", "argmax", "astype", "broadcast_to", "compare", "concatenate", "div", "exp",
           "flatten", "fold", "getitem", "log", "matmul", "max", "maximum", "mean", "min", "minimum",
           "mul", "neg", "pad", "pow", "relu", "reshape", "sigmoid", "sqrt", "squeeze", "stack", "sub",
           "sum", "sum_to", "swapaxes", "tanh", "to_device", "transpose", "unfold", "unsqueeze", "var",
           "where"]
