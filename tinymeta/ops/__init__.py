"""tinymeta's primitive ops, by family. Every op here is differentiable to any order,
except the constant ones in :mod:`.compare` (comparisons, any/all, argmax, one_hot).

The primitives a backend must provide are few: elementwise arithmetic and
functions, sum, mean and max reductions, reshape/transpose/broadcast/index/pad/
concatenate, matmul, and unfold/fold. Everything else (var, conv2d, pooling,
softmax, losses) is composed from them, except three compositions that are single
ops for speed, each with an op for its gradient: standardisation, batch norm's
core (:mod:`.norm`), softmax cross-entropy (:mod:`.softmax`), and a convolution's
matmul with its transposed convolution (:mod:`.conv`).

``__all__`` below is the one list of op names; ``tinymeta`` exports it too.
Helpers that are not ops (operands, const, axis handling) stay in :mod:`.common`.
"""
from .cast import astype, to_device
from .compare import all, any, argmax, equal, greater, greater_equal, less, less_equal, not_equal, one_hot
from .conv import fold, unfold
from .elementwise import (abs, add, cos, div, exp, log, maximum, minimum, mul, neg, pow, relu, sigmoid, sin,
                          softplus, sqrt, sub, tanh, where)
from .matmul import matmul
from .norm import standardize
from .reduce import max, mean, min, sum, var
from .shape import (broadcast_to, concatenate, expand, flatten, getitem, pad, reshape, squeeze, stack, sum_to,
                    swapaxes, transpose, unsqueeze)
from .softmax import softmax_cross_entropy

__all__ = ["abs", "add", "all", "any", "argmax", "astype", "broadcast_to", "concatenate", "cos", "div", "equal", "exp", "expand",
           "flatten", "fold", "getitem", "greater", "greater_equal", "less", "less_equal", "log", "matmul",
           "max", "maximum", "mean", "min", "minimum", "mul", "neg", "not_equal", "one_hot", "pad", "pow",
           "relu", "reshape", "sigmoid", "sin", "softmax_cross_entropy", "softplus", "sqrt", "squeeze", "stack",
           "standardize", "sub", "sum", "sum_to", "swapaxes", "tanh", "to_device", "transpose", "unfold", "unsqueeze", "var",
           "where"]
