"""Gradient checks by central differences, for tinymeta's ops and for your own code.

``gradcheck`` compares the analytic gradient of ``s(x) = sum(v * f(x))`` (a
random fixed ``v``, so every output element takes part) with
``(s(x + eps e_i) - s(x - eps e_i)) / (2 eps)`` for every input element ``i``.
``gradgradcheck`` does the same for the function ``x -> grad s(x)``, computed
with ``create_graph=True``: it checks the derivative of the backward pass
itself, which is exactly what second-order MAML relies on. Use float64 inputs:
in float32, rounding swamps the differences.
"""
from __future__ import annotations

import numpy as np

from .autograd import enable_grad, grad, no_grad
from .ops import concatenate, reshape
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical derivatives disagree (the message names the worst element)."""


def _outputs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _scalarize(f, inputs, seed):
    """s(x) = sum_k <v_k, f_k(x)> with fixed random v_k, plus the v_k."""
    outs = _outputs(f(*inputs))
    rng = np.random.default_rng(seed)
    vs = [Tensor(o.xp.asarray(rng.standard_normal(o.shape), dtype=o.dtype)) for o in outs]

    def s(*xs):
        total = None
        for o, v in zip(_outputs(f(*xs)), vs):
            term = (o * v).sum()
            total = term if total is None else total + term
        return total
    return s


def _check_inputs(inputs, name):
    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: input {i} is a {type(x).__name__}, not a Tensor")
        if x.dtype != np.float64:
            raise TypeError(f"{name}: input {i} is {x.dtype}; finite differences need float64 "
                            "(create it with dtype='float64')")
    return [x if x.requires_grad else x.detach().requires_grad_() for x in inputs]


def _compare(s, inputs, eps, atol, rtol, what):
    analytic = grad([s(*inputs)], inputs, allow_unused=True)
    worst = None
    for i, x in enumerate(inputs):
        a = np.zeros(x.shape) if analytic[i] is None else analytic[i].numpy()
        flat = x.numpy().reshape(-1)
        num = np.empty(flat.size)
        with no_grad():
            for j in range(flat.size):
                vals = []
                for step in (eps, -eps):
                    pert = flat.copy()
                    pert[j] += step
                    xs = list(inputs)
                    xs[i] = Tensor(x.xp.asarray(pert.reshape(x.shape)))
                    vals.append(s(*xs).item())
                num[j] = (vals[0] - vals[1]) / (2 * eps)
        a = a.reshape(-1)
        err = np.abs(a - num) - (atol + rtol * np.abs(num))
        if err.size:
            j = int(np.argmax(err))
            if worst is None or err[j] > worst[0]:
                worst = (err[j], i, np.unravel_index(j, x.shape), a[j], num[j])
    if worst is not None and worst[0] > 0:
        _, i, idx, a, n = worst
        raise GradcheckError(f"{what} mismatch at input {i}, element {tuple(int(k) for k in idx)}: "
                             f"analytic {a:.10g}, numerical {n:.10g} (difference {abs(a - n):.3g}, "
                             f"allowed {atol + rtol * abs(n):.3g})")
    return True


def gradcheck(f, inputs, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0) -> bool:
    """Check the first derivative of ``f(*inputs)`` (a Tensor or a list of Tensors).

    Returns True, or raises :class:`GradcheckError` naming the worst element with
    its analytic and numerical values. Inputs must be float64 Tensors.

    Example::

        x = tinymeta.tensor(np.random.randn(3, 4), dtype="float64", requires_grad=True)
        gradcheck(lambda x: (x * x).tanh(), [x])
    """
    inputs = _check_inputs(inputs, "gradcheck")
    return _compare(_scalarize(f, inputs, seed), inputs, eps, atol, rtol, "gradient")


def gradgradcheck(f, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
                  seed: int = 0) -> bool:
    """Check the second derivative: the backward pass of ``f`` is itself differentiated.

    The function checked is x -> d/dx sum(v * f(x)) (all inputs' gradients,
    flattened and joined), with gradients built by ``grad(create_graph=True)``.
    """
    inputs = _check_inputs(inputs, "gradgradcheck")
    s = _scalarize(f, inputs, seed)

    def first_derivative(*xs):
        # the numerical side calls this under no_grad with constant inputs: record anyway
        with enable_grad():
            xs = [x if x.requires_grad else x.detach().requires_grad_() for x in xs]
            gs = grad([s(*xs)], xs, create_graph=True, allow_unused=True)
            parts = [reshape(g, (-1,)) if g is not None else Tensor(x.xp.zeros(x.size)) for g, x in zip(gs, xs)]
            return concatenate(parts)

    return _compare(_scalarize(first_derivative, inputs, seed + 1), inputs, eps, atol, rtol,
                    "second derivative")
