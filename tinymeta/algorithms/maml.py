"""MAML: Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017, arXiv:1703.03400).

Inner step (Eq. 1), for every task i at once on the task axis:
    theta_i' = theta - alpha * grad_theta L_i^support(theta)
Meta-objective (Eq. 2-4), minimised by the outer optimizer:
    min_theta  mean_i L_i^query(theta_i')
Its gradient differentiates through the inner step,
    d/dtheta L^query(theta') = (I - alpha H^support(theta)) grad L^query(theta'),
which is why the engine's backward pass must itself be differentiable.
``first_order=True`` treats the inner gradients as constants, dropping the
Hessian term (first-order MAML, Sec. 5.2).
"""
from __future__ import annotations

from .base import MetaLearner
from .common import inner_sgd, per_task, query_metrics


def maml_inner_loop(model, objective, params, support, inner_lr, steps, first_order=False, trace=None,
                    keys=None) -> dict:
    """theta_i' for every task: ``steps`` steps of Eq. 1 from theta on the support set (x, y).

    ``inner_lr`` is alpha: a number, or a dict of per-parameter rates (Meta-SGD).
    The steps are recorded (second order) unless ``first_order``; ``trace``, if a
    list, receives the (T,) support losses before each step. Only ``keys`` are
    adapted when given (MAML's code leaves batch norm's shift to the outer loop).
    """
    x, y = support
    fast = per_task(params, x.shape[0])                                     # theta, once per task: (T, ...)
    return inner_sgd(lambda f: objective.losses(model(f, x), y), fast, inner_lr, steps,
                     create_graph=not first_order, keys=keys, trace=trace)


def maml_meta_loss(model, objective, params, batch, inner_lr, steps, first_order=False, keys=None):
    """(mean_i L_i^query(theta_i'), metrics): MAML's meta-objective (Eq. 2-3) on a meta-batch.

    ``params`` is theta (a dict of Tensors); the meta-gradient is ``grad(loss, params)``.

    Example::

        loss, metrics = maml_meta_loss(model, Objective("regression"), params, batch, inner_lr=0.01, steps=1)
        grads = tinymeta.grad(loss, params)
    """
    support_losses = []
    fast = maml_inner_loop(model, objective, params, batch.support, inner_lr, steps, first_order,
                           trace=support_losses, keys=keys)
    losses, metrics = query_metrics(objective, model(fast, batch.x_query), batch.y_query, support_losses)
    return losses.mean(), metrics


class MAML(MetaLearner):
    """MAML with any number of inner steps; first order with ``first_order=True``."""

    name = "maml"

    def meta_loss(self, meta_params, batch):
        return maml_meta_loss(self.model, self.objective, meta_params, batch, self.inner_lr, self.inner_steps,
                              self.first_order, self.inner_keys(meta_params))

    def adapted(self, meta_params, batch, trace=None):
        """The fast weights after the inner loop on the support set (recorded unless first order)."""
        return maml_inner_loop(self.model, self.objective, meta_params, batch.support, self.inner_lr,
                               self.inner_steps, self.first_order, trace, self.inner_keys(meta_params))


class FOMAML(MAML):
    """First-order MAML: MAML with the inner gradients treated as constants (``first_order`` fixed to True)."""

    name = "fomaml"

    def __init__(self, model, objective, inner_lr=0.01, inner_steps=1, first_order=True, adapt_norm=True,
                 transductive=True):
        super().__init__(model, objective, inner_lr, inner_steps, first_order=True, adapt_norm=adapt_norm,
                         transductive=transductive)
