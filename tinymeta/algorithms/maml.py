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
from .common import expand, inner_sgd


class MAML(MetaLearner):
    """MAML with any number of inner steps; first order with ``first_order=True``."""

    name = "maml"

    def adapted(self, meta_params, batch, trace=None):
        """The fast weights after the inner loop on the support set (recorded unless first order)."""
        x, y = batch.support
        fast = expand(self.model_params(meta_params), batch.num_tasks)
        return inner_sgd(lambda f: self.objective.losses(self.model(f, x), y), fast,
                         self.inner_rates(meta_params), self.inner_steps,
                         create_graph=not self.first_order, trace=trace)

    def query_loss(self, pred, batch, trace):
        """Mean query loss over tasks (the meta-loss), with constant metrics for the logs."""
        yq = batch.y_query
        losses = self.objective.losses(pred, yq)
        metrics = {"query_loss": losses.mean().detach()}
        if trace:
            metrics["support_loss_pre"] = trace[0].mean().detach()
        acc = self.objective.accuracies(pred, yq)
        if acc is not None:
            metrics["query_accuracy"] = acc.mean().detach()
        return losses.mean(), metrics

    def meta_loss(self, meta_params, batch):
        trace = []
        fast = self.adapted(meta_params, batch, trace=trace)
        return self.query_loss(self.model(fast, batch.x_query), batch, trace)


class FOMAML(MAML):
    """First-order MAML: MAML with the inner gradients treated as constants."""

    name = "fomaml"

    def __init__(self, *args, **kwargs):
        kwargs["first_order"] = True
        super().__init__(*args, **kwargs)
