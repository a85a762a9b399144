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
book's ch. 8 text (its notebook 8.4 normalises by sum_ij |g_i . g_j| instead, see
appendix A3, the errata), which agree with the paper's abstract ("a positive (negative)
weight ... if the inner product between its gradients and the average of the
gradients of all tasks in the batch is a positive (negative) value"). The
paper's PDF could not be opened here, so its equation numbers are not cited.
Choices of ours: the weights use the full inner update over all inner steps
(with one inner step g_i = alpha grad L_i^support(theta)); when every update is
zero (e.g. ``inner_steps=0``) the weights fall back to 1/T, i.e. MAML.

Batched over the task axis: G is (T, P); the row sums of the Gram matrix G G^T
are G (G^T 1) = G @ G.sum(0), one matrix-vector product (O(TP), without forming
the T x T Gram matrix); no loop over tasks. ``first_order`` works as in MAML
and is passed to the inner loop explicitly.
"""
from __future__ import annotations

from ..autograd import no_grad
from ..ops import concatenate, where
from ..tensor import Tensor, tensor
from .base import MetaLearner
from .common import query_metrics
from .maml import maml_inner_loop


def agreement_weights(updates):
    """w (T,) from the task updates G (T, ...): w_i = (G G^T 1)_i / sum_k |(G G^T 1)_k|.

    ``updates`` is a Tensor (treated as a constant: the result is a constant
    float64 Tensor on its device) or a NumPy array (the result is a NumPy
    array). All-zero updates give 1/T, decided on the device (no host read).
    """
    if not isinstance(updates, Tensor):
        return agreement_weights(tensor(updates, dtype="float64", device="cpu")).numpy()
    with no_grad():
        g = updates.detach().astype("float64")
        g = g.reshape(g.shape[0], -1)
        agreement = g @ g.sum(axis=0)              # sum_j g_i . g_j = row sums of the Gram matrix G G^T  (T,)
        norm = agreement.abs().sum()
        # a Python `if` on norm would stall the GPU every iteration: where() keeps it on the device
        return where(norm > 0, agreement / where(norm > 0, norm, 1.0), 1.0 / g.shape[0])


def task_updates(params, fast):
    """G (T, P): each task's theta - theta_i', flattened over all parameters of ``params`` (a constant)."""
    with no_grad():
        num_tasks = fast[next(iter(params))].shape[0]
        return concatenate([(params[k] - fast[k]).reshape(num_tasks, -1) for k in params], axis=1)


def gradient_agreement_meta_loss(model, objective, params, batch, inner_lr, steps, first_order=False, keys=None):
    """(sum_i w_i L_i^query(theta_i'), metrics), the weights w_i = agreement_weights(G) held constant.

    theta_i' is MAML's inner loop (recorded unless ``first_order``); the
    metrics add ``weight_min``, the smallest weight of the meta-batch.
    """
    support_losses = []
    fast = maml_inner_loop(model, objective, params, batch.support, inner_lr, steps, first_order,
                           trace=support_losses, keys=keys)
    losses, metrics = query_metrics(objective, model(fast, batch.x_query), batch.y_query, support_losses)
    w = agreement_weights(task_updates(params, fast)).astype(losses.dtype)
    metrics["weight_min"] = w.min()
    return (w * losses).sum(), metrics


class GradientAgreement(MetaLearner):
    """MAML whose meta-loss weighs each task by its agreement with the meta-batch (constant weights)."""

    name = "gradient-agreement"

    @classmethod
    def chunk_refusal(cls, cfg):
        """Each task's weight is its update's agreement with every other task's: chunks cannot be weighted alone."""
        return ("weighs each task by the agreement of its update with those of all the meta-batch's tasks "
                "(w_i = sum_j g_i . g_j / sum_k |sum_j g_k . g_j|), so a chunk of tasks cannot be weighted alone")

    def meta_loss(self, meta_params, batch):
        return gradient_agreement_meta_loss(self.model, self.objective, meta_params, batch, self.inner_lr,
                                            self.inner_steps, self.first_order, self.inner_keys(meta_params))

    def weights(self, meta_params, batch):
        """The agreement weights (T,) of a meta-batch, as a NumPy array (for plots)."""
        fast = maml_inner_loop(self.model, self.objective, meta_params, batch.support, self.inner_lr,
                               self.inner_steps, first_order=True, keys=self.inner_keys(meta_params))   # the weights are constants: no graph needed
        return agreement_weights(task_updates(meta_params, fast)).numpy()
