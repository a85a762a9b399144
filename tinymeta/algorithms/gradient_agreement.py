"""Gradient agreement (Eshratifar, Eigen & Pedram 2018, arXiv:1810.08178), on top of MAML.

MAML weighs every task of a meta-batch equally. Gradient agreement weighs each
task by how much its inner-loop update agrees with the others'. For task i,
with theta_i' the fast weights after the inner loop,
    g_i = theta - theta_i'                        (flattened over all parameters: one vector)
    w_i = sum_j g_i . g_j / sum_k |sum_j g_k . g_j|
    theta <- theta - beta * sum_i w_i grad_theta L_i^query(theta_i')
so the meta-loss is sum_i w_i L_i^query(theta_i') with the w_i held constant
(no gradient flows through them). sum_j g_i . g_j = T g_i . g_avg, so a task's
weight has the sign of its agreement with the average update: a task pulling
against the batch gets a negative weight, and sum_i |w_i| = 1.

What was followed: the update rule, the definition g_i = theta - theta_i' and
the normalised weights as summarised in the project's REFERENCE notes and the
book's ch. 8, which agree with the paper's abstract ("a positive (negative)
weight ... if the inner product between its gradients and the average of the
gradients of all tasks in the batch is a positive (negative) value"). The
paper's PDF could not be opened here, so its equation numbers are not cited.
Choices of ours: the weights use the full inner update over all inner steps
(with one inner step g_i = alpha grad L_i^support(theta)); when every update is
zero (e.g. ``inner_steps=0``) the weights fall back to 1/T, i.e. MAML.

Batched over the task axis: G is (T, P); the row sums of the Gram matrix G G^T
are G (G^T 1) = G @ G.sum(0), one matrix-vector product (O(TP), without forming
the T x T Gram matrix); no loop over tasks. ``first_order`` works as in MAML.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor
from .maml import MAML


def agreement_weights(updates):
    """w (T,) from the task updates G (T, ...): w_i = (G G^T 1)_i / sum_k |(G G^T 1)_k|.

    ``updates`` is a NumPy/CuPy array or a Tensor (treated as a constant); the
    result is a float64 array on the same device. All-zero updates give 1/T.
    """
    g = updates.data if isinstance(updates, Tensor) else updates
    xp = backend.get_xp(g)
    g = g.astype(np.float64).reshape(g.shape[0], -1)
    agreement = g @ g.sum(axis=0)              # sum_j g_i . g_j = row sums of the Gram matrix G G^T  (T,)
    norm = xp.abs(agreement).sum()
    # decided on the device: a Python `if` on norm would stall the GPU every iteration
    return xp.where(norm > 0, agreement / xp.where(norm > 0, norm, 1.0), 1.0 / g.shape[0])


class GradientAgreement(MAML):
    """MAML whose meta-loss weighs each task by its agreement with the meta-batch (constant weights)."""

    name = "gradient-agreement"

    def task_updates(self, meta_params, fast):
        """G (T, P): each task's theta - theta_i', flattened over all parameters (a constant array)."""
        theta = self.model_params(meta_params)
        with no_grad():
            parts = [(theta[k].data[None] - fast[k].data).reshape(fast[k].shape[0], -1) for k in theta]
        xp = backend.get_xp(parts[0])
        return xp.concatenate(parts, axis=1)

    def weights(self, meta_params, batch):
        """The agreement weights (T,) of a meta-batch, as a NumPy array (for plots)."""
        fast = self._adapt_constant(meta_params, batch)
        return backend.to_numpy(agreement_weights(self.task_updates(meta_params, fast)))

    def _adapt_constant(self, meta_params, batch):
        first_order, self.first_order = self.first_order, True
        try:
            return self.adapted(meta_params, batch)
        finally:
            self.first_order = first_order

    def meta_loss(self, meta_params, batch):
        trace = []
        fast = self.adapted(meta_params, batch, trace=trace)
        w = agreement_weights(self.task_updates(meta_params, fast))
        pred = self.model(fast, batch.x_query)
        losses = self.objective.losses(pred, batch.y_query)
        w = Tensor(w.astype(losses.dtype))
        metrics = {"query_loss": losses.mean().detach(), "weight_min": Tensor(w.data.min())}
        if trace:
            metrics["support_loss_pre"] = trace[0].mean().detach()
        acc = self.objective.accuracies(pred, batch.y_query)
        if acc is not None:
            metrics["query_accuracy"] = acc.mean()
        return (losses * w).sum(), metrics
