"""Reference solutions for chapter 6's ADML and CAML exercises (Yin et al. 2018; Zintgraf et al. 2019)."""

import tinymeta as tm


def fgsm(model, loss_fn, params, x, y, epsilon):
    """FGSM (Goodfellow et al. 2015) on every task at once: clip(x + epsilon * sign(grad_x L), 0, 1), a constant."""
    x = x.detach().requires_grad_()
    g = tm.grad(loss_fn(model(params, x), y).sum(), x)          # each task's input gradient (its own loss)
    sign = (g > 0).astype(x.dtype) - (g < 0).astype(x.dtype)
    return tm.minimum(tm.maximum(x + epsilon * sign, 0.0), 1.0).detach()


def caml_inner_step(model, loss_fn, params, x_support, y_support, n_context, alpha):
    """CAML's inner step (Zintgraf et al. 2019, Eq. 2): phi_i = 0 - alpha * grad_phi L_i^support, per task.

    The context starts at zero for every task; the gradient is kept on the graph (create_graph=True),
    so the meta-gradient reaches theta through phi_i (second order).
    """
    T = x_support.shape[0]
    phi = tm.tensor([[0.0] * n_context for _ in range(T)], dtype=x_support.dtype, requires_grad=True)
    losses = loss_fn(model({**params, "context": phi}, x_support), y_support)     # (T,), one per task
    g = tm.grad(losses.sum(), phi, create_graph=True)                              # every task's own gradient
    return phi - alpha * g
