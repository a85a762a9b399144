"""What every algorithm shares: the per-task loss, the task axis, the inner step, the query metrics.

Convention: the inner loss is a **mean within each task, summed over tasks**.
Task t's loss depends only on slice t of the fast weights, so one ``grad``
call returns every task's own gradient, stacked; a mean over tasks would
shrink each task's step by T.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..autograd import enable_grad, grad
from ..ops import concatenate
from ..tensor import Tensor


def per_task(params: dict, num_tasks: int, keys=None) -> dict:
    """Per-task copies of the parameters, (T, ...) each, without copying memory.

    Broadcasting's backward is a sum over the task axis, so the gradient that
    reaches a shared parameter is the sum of every task's contribution.
    Only ``keys`` are copied when given (ANIL: the head).
    """
    keys = params.keys() if keys is None else keys
    return {k: params[k].broadcast_to((num_tasks,) + params[k].shape) for k in keys}


def with_support(x_support: Tensor, x_query: Tensor) -> Tensor:
    """Each query example with its task's support set: (T * Q, S + 1, ...), the query last.

    Non-transductive evaluation passes each of these through the net on its own, so batch
    norm's statistics come from the support set and that one query example, never from the
    other queries (supervised-reptile reptile.py:129-134). Row t * Q + q is task t's query q.
    """
    T, Q, S = x_query.shape[0], x_query.shape[1], x_support.shape[1]
    support = x_support.unsqueeze(1).broadcast_to((T, Q) + x_support.shape[1:])   # (T, Q, S, ...)
    both = concatenate([support, x_query.unsqueeze(2)], axis=2)                    # (T, Q, S + 1, ...)
    return both.reshape((T * Q, S + 1) + x_support.shape[2:])


class Objective:
    """Per-task loss and accuracy for a kind of task: 'regression' (MSE) or 'classification' (CE).

    :meth:`losses` is the one per-task loss every algorithm uses, in its inner
    loop and on the query set alike. ``reduction`` says how a task's per-example
    losses l_1..l_n make its loss:

    - ``"mean"``: (1/n) sum_j l_j (tinymeta's default; MAML's code for sine);
    - ``"sum"``: sum_j l_j (Reptile's code minimises the vector of losses);
    - ``"sum/shots"``: (1/K) sum_j l_j with K = ``shots`` (MAML's code for Omniglot:
      ``xent`` is CE / K per example, summed by ``tf.gradients``). For N-way
      K-shot this is N times the mean, so the inner step of size alpha on it is
      a step of alpha N on the mean loss.
    """

    def __init__(self, kind: str, reduction: str = "mean", shots: int | None = None):
        if kind not in ("regression", "classification"):
            raise ValueError(f"objective must be 'regression' or 'classification', got {kind!r}")
        if reduction not in ("mean", "sum", "sum/shots"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'sum/shots', got {reduction!r}")
        if reduction == "sum/shots" and not (isinstance(shots, int) and shots >= 1):
            raise ValueError(f"reduction 'sum/shots' needs the number of shots K >= 1, got shots={shots!r}")
        self.kind, self.reduction, self.shots = kind, reduction, shots

    def losses(self, pred: Tensor, y: Tensor) -> Tensor:
        """(T,) loss of each task (reduced as ``reduction`` says); inputs carry the task axis first (T, N, ...)."""
        if self.kind == "regression":
            d = pred - y
            per_example = (d * d).mean(axis=tuple(range(2, d.ndim))) if d.ndim > 2 else d * d
        else:
            per_example = F.cross_entropy(pred, y, reduction="none")
        if self.reduction == "mean":
            return per_example.mean(axis=-1)
        total = per_example.sum(axis=-1)
        return total if self.reduction == "sum" else total * (1.0 / self.shots)

    def accuracies(self, pred: Tensor, y: Tensor):
        """(T,) accuracy of each task, or None for regression."""
        if self.kind == "regression":
            return None
        return F.accuracy(pred, y, reduction="none").mean(axis=-1)

    def __repr__(self):
        extra = "" if self.reduction == "mean" else f", reduction={self.reduction!r}" + (
            f", shots={self.shots}" if self.reduction == "sum/shots" else "")
        return f"Objective({self.kind!r}{extra})"


def inner_sgd(loss_fn, fast: dict, lr, steps: int, create_graph: bool, keys=None, trace=None) -> dict:
    """``steps`` gradient steps on every task at once: fast <- fast - lr * grad (MAML Eq. 1).

    ``loss_fn(fast)`` returns the (T,) support losses. ``lr`` is a number or a
    dict of per-parameter rates (Meta-SGD). Only ``keys`` are adapted (ANIL: the
    head). With ``create_graph`` the steps are recorded, so the meta-gradient
    flows through them (second order); without, each step's gradient is a constant.
    ``trace``, if a list, receives the (T,) support losses before each step.
    """
    keys = list(fast) if keys is None else list(keys)
    with enable_grad():  # adaptation needs gradients even when called under no_grad (evaluation)
        for _ in range(steps):
            losses = loss_fn(fast)
            if trace is not None:
                trace.append(losses)
            grads = grad(losses.sum(), {k: fast[k] for k in keys}, create_graph=create_graph)
            fast = dict(fast)
            for k in keys:
                step = lr[k] if isinstance(lr, dict) else lr
                fast[k] = fast[k] - step * grads[k]
    return fast


def query_metrics(objective: Objective, pred: Tensor, y: Tensor, support_losses=()):
    """(per-task query losses (T,), metrics): what every meta-loss is built from and logs.

    The losses stay in the graph (the meta-loss is made from them); the metrics
    are constant 0-d Tensors on the device (no host read): ``query_loss``
    (mean over tasks, always first), ``support_loss_pre`` (the support loss
    before the first inner step, when there was one; ``support_losses`` is the
    ``trace`` of :func:`inner_sgd`) and ``query_accuracy`` (classification).
    """
    losses = objective.losses(pred, y)
    metrics = {"query_loss": losses.mean().detach()}
    if support_losses:
        metrics["support_loss_pre"] = support_losses[0].mean().detach()
    acc = objective.accuracies(pred, y)
    if acc is not None:
        metrics["query_accuracy"] = acc.mean().detach()
    return losses, metrics


def summarize(values) -> dict:
    """Mean and 95% confidence interval (1.96 std / sqrt(n)) of per-task values (host numbers)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    return {"mean": float(v.mean()), "ci95": float(1.96 * v.std() / math.sqrt(n)) if n > 1 else 0.0, "n": int(n)}
