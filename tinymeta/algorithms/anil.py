"""ANIL and NIL (Raghu, Raghu, Bengio & Vinyals, ICLR 2020, arXiv:1909.09157).

ANIL, "Almost No Inner Loop" (Sec. 4): meta-train as MAML, but the inner loop
adapts only the head (the final linear layer); the body is shared by all tasks
and all inner steps, so its features are computed once per meta-batch:
    h_i' = h - alpha * grad_h L_i^support(h; body_theta)
    min_{theta, h} mean_i L_i^query(h_i'; body_theta)
NIL, "No Inner Loop" (Sec. 5): at test time drop the head; each query takes the
label of the support class whose features are most cosine-similar to its own
(the mean cosine similarity over that class's support examples).
"""
from __future__ import annotations

from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor
from .base import MetaLearner
from .common import inner_sgd, per_task, query_metrics, with_support


def body_features(model, params, batch, transductive=True):
    """Body features of the support and query sets, (T, N, D) each, with the shared weights.

    ``transductive=False``: each query example's features come from its own pass with its
    task's support set (batch norm sees the support set and that one query), as in
    :meth:`MetaLearner.query_predictions`.
    """
    fs = model.body(params, batch.x_support)
    if transductive:
        return fs, model.body(params, batch.x_query)
    T, Q, S = batch.x_query.shape[0], batch.x_query.shape[1], batch.x_support.shape[1]
    fq = model.body(params, with_support(batch.x_support, batch.x_query))[:, S]   # (T * Q, D)
    return fs, fq.reshape((T, Q) + fq.shape[1:])


def anil_meta_loss(model, objective, params, batch, inner_lr, steps, first_order=False):
    """(mean_i L_i^query(h_i'), metrics): MAML's meta-loss with only the head adapted (Sec. 4).

    The meta-gradient ``grad(loss, params)`` reaches the body through the features.
    """
    fs, fq = body_features(model, params, batch)                            # once per meta-batch
    head = per_task(params, batch.num_tasks, keys=model.head_keys())      # h, once per task
    support_losses = []
    head = inner_sgd(lambda h: objective.losses(model.head(h, fs), batch.y_support), head, inner_lr, steps,
                     create_graph=not first_order, trace=support_losses)
    losses, metrics = query_metrics(objective, model.head(head, fq), batch.y_query, support_losses)
    return losses.mean(), metrics


def nil_predict(fs: Tensor, ys: Tensor, fq: Tensor, n_way: int) -> Tensor:
    """Class scores (T, Q, n_way): mean cosine similarity of each query to each class's support features."""
    sim = F.cosine_similarity(fq.unsqueeze(2), fs.unsqueeze(1), dim=-1)       # (T, Q, S)
    onehot = F.one_hot(ys, n_way, dtype=sim.dtype)                            # (T, S, C)
    return (sim @ onehot) / onehot.sum(axis=1, keepdims=True)                 # (T, Q, C)


class ANIL(MetaLearner):
    """MAML whose inner loop adapts only the model's head."""

    name = "anil"

    def meta_loss(self, meta_params, batch):
        return anil_meta_loss(self.model, self.objective, meta_params, batch, self.inner_lr, self.inner_steps,
                              self.first_order)

    def features(self, meta_params, batch):
        """Body features of support and query, computed once with the shared weights (evaluation:
        the queries together if ``transductive``, else each with its support set)."""
        return body_features(self.model, meta_params, batch, self.transductive)

    def _heads(self, meta_params, batch, steps):
        """Query features, and the per-task head before adaptation and after each of ``steps`` steps."""
        with no_grad():
            fs, fq = self.features(meta_params, batch)
        head = per_task(meta_params, batch.num_tasks, keys=self.model.head_keys())
        yield fq, head
        for _ in range(steps):
            head = inner_sgd(lambda h: self.objective.losses(self.model.head(h, fs), batch.y_support), head,
                             self.inner_lr, 1, create_graph=False)
            yield fq, head

    def adapt(self, meta_params, batch, steps):
        """Yield theta_i' before and after each inner step: the body shared, the head adapted."""
        body = per_task(meta_params, batch.num_tasks)
        for _, head in self._heads(meta_params, batch, steps):
            yield {**body, **head}

    def predictions(self, meta_params, batch, steps):
        for fq, head in self._heads(meta_params, batch, steps):
            with no_grad():
                yield self.model.head(head, fq)


class NIL(ANIL):
    """Trained as ANIL (its meta-loss and body features, inherited); evaluated without a head or an
    inner loop (accuracy only)."""

    name = "nil"
    adapts_head = False  # the head is dropped altogether

    def adapt(self, meta_params, batch, steps):
        raise TypeError("NIL has no inner loop at test time: use NIL.evaluate (cosine similarity of features), "
                        "or ANIL to adapt the head")

    predictions = adapt  # no head to answer with either

    def evaluate(self, meta_params, batch, steps=None):
        """Query accuracy of every task, (1, T), by :func:`nil_predict` on the body's features."""
        if self.objective.kind != "classification":
            raise ValueError("NIL classifies by similarity to support classes: it needs classification tasks")
        with no_grad():
            fs, fq = self.features(meta_params, batch)
            n_way = int(batch.y_support.numpy().max()) + 1
            scores = nil_predict(fs, batch.y_support, fq, n_way)
            acc = F.accuracy(scores, batch.y_query, reduction="none").mean(axis=-1)
        return {"accuracy": acc.numpy()[None]}
