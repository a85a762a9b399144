"""The engine at a glance: derivatives of every order next to finite differences,
and a second-order MAML meta-gradient checked the same way."""
from __future__ import annotations

import numpy as np

from ..autograd import enable_grad, grad
from ..nn import MLP
from ..ops import tanh
from ..tensor import tensor


def f(x):
    """f(x) = tanh(x) x^2 + exp(-x)/2 (any smooth function composed of tinymeta ops works)."""
    return tanh(x) * x ** 2 + (-x).exp() * 0.5


def derivative_table(x0=0.7):
    """(order, tinymeta's derivative, central finite difference of f's values)."""
    x = tensor(x0, dtype="float64", requires_grad=True)
    y = f(x)
    d1 = grad(y, x, create_graph=True)
    d2 = grad(d1, x, create_graph=True)
    d3 = grad(d2, x)

    def fv(v):
        return f(tensor(v, dtype="float64")).item()

    stencils = {  # central differences, error O(h^2)
        1: lambda h: (fv(x0 + h) - fv(x0 - h)) / (2 * h),
        2: lambda h: (fv(x0 + h) - 2 * fv(x0) + fv(x0 - h)) / h ** 2,
        3: lambda h: (fv(x0 + 2 * h) - 2 * fv(x0 + h) + 2 * fv(x0 - h) - fv(x0 - 2 * h)) / (2 * h ** 3),
    }
    # Richardson extrapolation cancels the h^2 term: (4 D(h/2) - D(h)) / 3 is O(h^4)
    fd1, fd2, fd3 = ((4 * stencils[n](h / 2) - stencils[n](h)) / 3
                     for n, h in ((1, 1e-3), (2, 1e-3), (3, 2e-2)))
    return [(1, d1.item(), fd1), (2, d2.item(), fd2), (3, d3.item(), fd3)]


def maml_check(seed=0, eps=1e-6):
    """Second-order MAML meta-gradient of a 1-40-40-1 MLP on 4 sine tasks vs finite differences.

    Returns (analytic directional derivative, finite difference) along a random direction.
    """
    rng = np.random.default_rng(seed)
    model = MLP(init_std=0.5)
    params = model.init_params(seed, dtype="float64")
    amp, phase = rng.uniform(0.1, 5, (4, 1, 1)), rng.uniform(0, np.pi, (4, 1, 1))
    xs, xq = rng.uniform(-5, 5, (4, 10, 1)), rng.uniform(-5, 5, (4, 10, 1))
    data = [tensor(a, dtype="float64") for a in (xs, amp * np.sin(xs - phase), xq, amp * np.sin(xq - phase))]

    def meta_loss(p):
        with enable_grad():
            fast = {k: v.broadcast_to((4,) + v.shape) for k, v in p.items()}
            inner = ((model(fast, data[0]) - data[1]) ** 2).mean(axis=(1, 2)).sum()
            g = grad(inner, fast, create_graph=True)
            fast = {k: fast[k] - 0.01 * g[k] for k in fast}
            return ((model(fast, data[2]) - data[3]) ** 2).mean()

    direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    g = grad(meta_loss(params), params)
    analytic = sum(float((g[k].numpy() * direction[k]).sum()) for k in params)

    def shifted(s):
        return meta_loss({k: tensor(v.numpy() + s * direction[k], dtype="float64", requires_grad=True) for k, v in params.items()}).item()
    return analytic, (shifted(eps) - shifted(-eps)) / (2 * eps)


def main(args=None) -> int:
    print("f(x) = tanh(x) x^2 + exp(-x)/2 at x = 0.7, float64")
    print(f"  {'order':>5}  {'tinymeta':>22}  {'finite difference':>22}  {'rel. diff':>9}")
    for order, exact, fd in derivative_table():
        print(f"  {order:>5}  {exact:>22.15f}  {fd:>22.15f}  {abs(exact - fd) / abs(exact):9.1e}")
    a, n = maml_check()
    print("\nSecond-order MAML meta-gradient (1-40-40-1 MLP, 4 sine tasks, 1 inner step),")
    print("directional derivative along a random direction:")
    print(f"  tinymeta {a:.12f}   finite difference {n:.12f}   rel. diff {abs(a - n) / abs(n):.1e}")
    return 0
