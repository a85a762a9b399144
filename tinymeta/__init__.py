"""tinymeta: gradient-based meta-learning from scratch, on NumPy and CuPy.

The engine (Tensor, grad) differentiates to any order, so MAML's
gradient-through-a-gradient-step is exact; a leading task axis runs a whole
meta-batch of tasks in one batched computation.

Layers, from the bottom: backend -> tensor, autograd -> ops -> functional -> nn,
optim. ``import tinymeta as tm`` gives the ops as ``tm.exp``, ``tm.matmul``, ...
and the layers above as ``tm.functional``, ``tm.nn`` and ``tm.optim``.
"""
from .tensor import Tensor, tensor  # first: tensor.py's one late import then loads autograd and ops
from . import ops  # noqa: I001
from .autograd import ModifiedAfterUseError, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import cuda_available, default_device, set_default_device
from .ops import *  # noqa: F403  (the op names, listed once in ops.__all__)
from .ops import max as amax

# imported last: each builds on the names above (nn imports functional imports ops)
from . import functional, nn, optim  # noqa: E402, I001

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "ModifiedAfterUseError", "set_default_device", "default_device", "cuda_available", "amax",
           "functional", "nn", "optim"] + ops.__all__
