"""CAML / CAVIA: fast context adaptation (Zintgraf, Shiarlis, Kurin, Hofmann & Whiteson, ICML 2019, arXiv:1810.03642).

The network's weights theta are shared by every task; each task owns a small
context vector phi, concatenated to the input of the first layer. The context
starts at zero for every task and is the only thing the inner loop adapts
(Sec. 3, Eq. 2 there):
    phi_0 = 0,    phi_i = phi_0 - alpha * grad_phi L_i^support(f_{phi_0, theta})
and theta is meta-learned on the query loss with the adapted contexts (Eq. 3):
    min_theta  mean_i L_i^query(f_{phi_i, theta})
The meta-gradient differentiates through the inner step (phi_i depends on theta
through its gradient), so it is second order, as in the paper; ``first_order``
treats the context gradient as a constant. On the task axis, the contexts of a
meta-batch are one (T, n_context) tensor: task t's loss depends only on row t,
so one ``grad`` call returns every task's context gradient.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..nn import MLP, truncated_normal
from ..tensor import tensor
from .base import MetaLearner
from .common import inner_sgd, query_metrics

CONTEXT = "context"  # the key of the (T, n_context) context in a fast-weight dict


class ContextModel:
    """``model`` fed with [x, phi]: the task's context concatenated to every input (CAVIA's first layer).

    ``params`` holds the network's weights plus ``params['context']`` of shape
    (T, n_context); inputs are (T, N, d). The network's first layer takes
    d + n_context inputs. Example::

        net = ContextModel(MLP((1 + 5, 40, 40, 1)), n_context=5)
        y = net({**theta, "context": phi}, x)          # x (T, N, 1), phi (T, 5) -> y (T, N, 1)
    """

    def __init__(self, model, n_context: int):
        if n_context < 1:
            raise ValueError(f"n_context must be >= 1, got {n_context}")
        self.model, self.n_context = model, int(n_context)

    def init_params(self, seed=0, dtype="float32", device=None) -> dict:
        """The network's weights (the context is not a parameter: it starts at zero for each task)."""
        return self.model.init_params(seed, dtype=dtype, device=device)

    def __call__(self, params, x):
        phi = params[CONTEXT]
        if phi.ndim != 2 or phi.shape[-1] != self.n_context or x.ndim != 3 or x.shape[0] != phi.shape[0]:
            raise ValueError(f"ContextModel: needs x (T, N, d) and params['context'] (T, {self.n_context}), "
                             f"got x {x.shape} and context {phi.shape}")
        T, N = x.shape[0], x.shape[1]
        phi = ops.broadcast_to(ops.unsqueeze(phi, 1), (T, N, self.n_context))   # the same phi for every input
        weights = {k: v for k, v in params.items() if k != CONTEXT}
        return self.model(weights, ops.concatenate([x, phi], axis=-1))

    def __repr__(self):
        return f"ContextModel({self.model!r}, n_context={self.n_context})"


def zero_context(num_tasks: int, n_context: int, like) -> "tensor":
    """phi_0 = 0 for every task: a (T, n_context) leaf on ``like``'s device and dtype."""
    return tensor([[0.0] * n_context for _ in range(num_tasks)], dtype=like.dtype, device=like.device,
                  requires_grad=True)


def caml_inner_loop(model, objective, params, support, inner_lr, steps, first_order=False, trace=None):
    """The adapted contexts phi_i, (T, n_context): ``steps`` steps of Eq. 2 from phi = 0 on the support set.

    ``model`` is a :class:`ContextModel`; ``params`` (theta) stay shared and are not adapted.
    The steps are recorded (second order) unless ``first_order``.
    """
    x, y = support
    phi = {CONTEXT: zero_context(x.shape[0], model.n_context, next(iter(params.values())))}
    phi = inner_sgd(lambda c: objective.losses(model({**params, **c}, x), y), phi, inner_lr, steps,
                    create_graph=not first_order, trace=trace)
    return phi[CONTEXT]


def caml_meta_loss(model, objective, params, batch, inner_lr, steps, first_order=False):
    """(mean_i L_i^query(f_{phi_i, theta}), metrics): CAVIA's meta-objective (Eq. 3) on a meta-batch.

    The meta-gradient ``grad(loss, params)`` reaches theta directly and through phi_i.

    Example::

        net = ContextModel(MLP((6, 40, 40, 1)), n_context=5)
        loss, metrics = caml_meta_loss(net, Objective("regression"), theta, batch, inner_lr=1.0, steps=1)
    """
    support_losses = []
    phi = caml_inner_loop(model, objective, params, batch.support, inner_lr, steps, first_order, support_losses)
    losses, metrics = query_metrics(objective, model({**params, CONTEXT: phi}, batch.x_query), batch.y_query,
                                    support_losses)
    return losses.mean(), metrics


class CAML(MetaLearner):
    """CAVIA on an MLP: a context of ``n_context`` numbers per task at the first layer's input.

    :meth:`from_config` takes the task family's MLP and widens its first layer by
    ``cfg.context_size`` inputs; :meth:`init_meta_params` widens the first weight
    matrix of the MLP's initial weights the same way (the new columns drawn as the
    MLP draws its weights).
    """

    name = "caml"
    adapts_head = False  # the inner loop adapts the context parameters only

    def __init__(self, model, objective, inner_lr=1.0, inner_steps=1, first_order=False, adapt_norm=True,
                 transductive=True, *, n_context=5):
        if not isinstance(model, MLP):
            raise TypeError(f"CAML conditions an MLP's first layer on the context; got {type(model).__name__} "
                            "(use a regression task family such as 'sine')")
        super().__init__(ContextModel(MLP((model.sizes[0] + n_context,) + model.sizes[1:], model.init_std),
                                      n_context), objective, inner_lr, inner_steps, first_order, adapt_norm, transductive)
        self.n_context = int(n_context)

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Reads ``cfg.inner_lr``, ``cfg.inner_steps``, ``cfg.first_order`` and ``cfg.context_size``."""
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   first_order=cfg.first_order, adapt_norm=cfg.adapt_norm, transductive=cfg.transductive,
                   n_context=cfg.context_size)

    def init_meta_params(self, params, rng=None):
        """The MLP's weights with ``n_context`` more input columns in ``w1`` (the context's weights)."""
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        w1 = params["w1"]
        if w1.shape[1] + self.n_context != self.model.model.sizes[0]:
            raise ValueError(f"CAML.init_meta_params: w1 has {w1.shape[1]} inputs, expected "
                             f"{self.model.model.sizes[0] - self.n_context} (the task's input size)")
        extra = tensor(truncated_normal(rng, (w1.shape[0], self.n_context), self.model.model.init_std),
                       dtype=w1.dtype, device=w1.device)
        wide = ops.concatenate([w1.detach(), extra], axis=1).detach().requires_grad_()
        return {**params, "w1": wide}

    def meta_loss(self, meta_params, batch):
        return caml_meta_loss(self.model, self.objective, meta_params, batch, self.inner_lr, self.inner_steps,
                              self.first_order)

    def adapt(self, meta_params, batch, steps):
        """Yield theta with the per-task context: phi = 0, then after each inner step (theta unchanged)."""
        x, y = batch.support
        phi = {CONTEXT: zero_context(batch.num_tasks, self.n_context, next(iter(meta_params.values())))}
        yield {**meta_params, **phi}
        for _ in range(steps):
            phi = inner_sgd(lambda c: self.objective.losses(self.model({**meta_params, **c}, x), y), phi,
                            self.inner_lr, 1, create_graph=False)
            phi = {CONTEXT: phi[CONTEXT].detach().requires_grad_()}
            yield {**meta_params, **phi}

    def __repr__(self):
        return (f"CAML(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, first_order={self.first_order}, "
                f"n_context={self.n_context})")
