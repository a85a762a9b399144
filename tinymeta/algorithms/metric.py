"""Learners without an inner loop (the book's chapters 2-4): one pass from a support set to answers.

A metric-based learner (Siamese, prototypical, matching and relation networks) meets
the training loop on the same terms as MAML: it takes a meta-batch of tasks, each
with a support and a query set, returns a meta-loss whose gradient the outer
optimizer follows, and is evaluated on fixed held-out tasks. What it lacks is the
inner loop: nothing is adapted to a task, the support set is read, not trained on.
So its evaluation has one row, not one per inner step (``evaluate`` returns arrays
of shape (1, T)), and the training loop, the evaluation table and the report treat
it like any algorithm evaluated after 0 steps ("no inner loop").

A subclass defines :meth:`MetricLearner.scores`, the class scores of each query
given the embedded support set; the base class embeds each task's examples
(:meth:`MetricLearner.embed_episode`), forms the per-task loss and the metrics, and
evaluates.
"""
from __future__ import annotations

from ..autograd import no_grad
from ..ops import concatenate, stack
from .base import MetaLearner
from .common import query_metrics, with_support


class MetricLearner(MetaLearner):
    """A learner that answers a task's query set from its embedded support set, with no inner loop.

    The meta-parameters are the model's body (its head is dropped: the support set,
    not a trained layer, decides the classes) plus whatever a subclass adds
    (:meth:`extra_params`, e.g. a relation module). Subclasses define :meth:`scores`;
    the per-task loss is the objective's cross-entropy of those scores unless
    :meth:`task_losses` is overridden (relation networks: MSE against one-hot targets).
    """

    name = "metric"
    inner_loop = False
    adapts_head = False
    # images per forward pass when each query goes with its support set alone: under twice a 60-way 5-shot
    # training episode (600 images), so evaluation needs about the memory training needs
    max_pass_examples = 1024

    def __init__(self, model, objective, transductive: bool = True, **_inner_settings):
        super().__init__(model, objective, inner_lr=0.0, inner_steps=0, transductive=transductive)

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Built from ``cfg.transductive`` only: the inner-loop settings do not apply."""
        return cls(model, objective, transductive=cfg.transductive)

    # ---- what is meta-learned --------------------------------------------------------------
    def init_meta_params(self, params: dict, rng=None) -> dict:
        """The model's body weights (no head) and :meth:`extra_params`."""
        head = set(self.model.head_keys())
        meta = {k: v for k, v in params.items() if k not in head}
        some = next(iter(meta.values()))
        meta.update(self.extra_params(rng, dtype=some.dtype, device=some.device))
        return meta

    def extra_params(self, rng, dtype, device) -> dict:
        """Meta-parameters beyond the embedding network's body: none here."""
        return {}

    # ---- one pass over an episode ----------------------------------------------------------------
    def embed(self, meta_params: dict, x):
        """The embedding of each example, (T, n, ...): the model's body."""
        return self.model.body(meta_params, x)

    def embed_episode(self, meta_params: dict, batch, transductive: bool = True):
        """(support embeddings, support labels, query embeddings) with a leading task axis.

        ``transductive`` (training, and evaluation by default): a task's support and query
        examples go through the net together, in one batch, so batch norm pools the
        statistics of the whole episode, as the original codes do in training mode
        (prototypical-networks few_shot.py: ``torch.cat([xs, xq])``). Otherwise each query
        example goes through with its task's support set alone: the result has T * Q tasks
        of one query each, every one with its own pass's support embeddings.
        """
        xs, ys, xq = batch.x_support, batch.y_support, batch.x_query
        S = xs.shape[1]
        if transductive:
            z = self.embed(meta_params, concatenate([xs, xq], axis=1))
            return z[:, :S], ys, z[:, S:]
        T, Q = xq.shape[0], xq.shape[1]
        passes = with_support(xs, xq)                                      # (T * Q, S + 1, ...)
        # Each pass is independent (its own batch statistics), so the passes go through the net in
        # groups of at most ``max_pass_examples`` images: the same numbers, bounded memory (a 20-way
        # 5-shot task with 15 queries per class is 300 passes of 101 images).
        group = max(1, self.max_pass_examples // (S + 1))
        parts = [self.embed(meta_params, passes[i:i + group]) for i in range(0, T * Q, group)]
        z = parts[0] if len(parts) == 1 else concatenate(parts, axis=0)
        ys = ys.unsqueeze(1).broadcast_to((T, Q) + ys.shape[1:]).reshape((T * Q,) + ys.shape[1:])
        return z[:, :S], ys, z[:, S:]

    def scores(self, meta_params: dict, zs, ys, zq, n_way: int):
        """Class scores of each query, (T, Q, n_way), from the embedded episode; higher is likelier."""
        raise NotImplementedError

    def episode_scores(self, meta_params: dict, batch, transductive: bool = True):
        """:meth:`scores` of ``batch``'s queries, (T, Q, n_way), in either mode of :meth:`embed_episode`."""
        n_way = self.n_way(batch)
        zs, ys, zq = self.embed_episode(meta_params, batch, transductive)
        s = self.scores(meta_params, zs, ys, zq, n_way)
        T, Q = batch.x_query.shape[0], batch.x_query.shape[1]
        return s.reshape((T, Q) + s.shape[2:])

    @staticmethod
    def n_way(batch) -> int:
        """Classes per task: ``batch.n_way`` where the sampler set it; else read from the support labels
        (0..N-1, every class present), which on a GPU waits for the device once."""
        if batch.n_way is not None:
            return int(batch.n_way)
        return int(batch.y_support.numpy().max()) + 1

    def task_losses(self, scores, batch):
        """(T,) loss of each task: cross-entropy of the scores, reduced as the objective says."""
        return self.objective.losses(scores, batch.y_query)

    # ---- meta-training and evaluation ---------------------------------------------------------
    def meta_loss(self, meta_params: dict, batch):
        """(mean over tasks of the query loss, metrics): the episode loss the paper trains on."""
        s = self.episode_scores(meta_params, batch)
        losses = self.task_losses(s, batch)
        _, metrics = query_metrics(self.objective, s.detach(), batch.y_query)
        metrics["query_loss"] = losses.mean().detach()
        return losses.mean(), metrics

    def adapt(self, meta_params, batch, steps):
        raise TypeError(f"{type(self).__name__} has no inner loop: it reads the support set in one pass "
                        "(use evaluate or episode_scores)")

    def evaluate(self, meta_params: dict, batch, steps=None) -> dict:
        """Query loss and accuracy of every task, arrays of shape (1, T) ("no inner loop"; ``steps`` is ignored)."""
        with no_grad():
            s = self.episode_scores(meta_params, batch, self.transductive)
            out = {"loss": stack([self.task_losses(s, batch)]).numpy()}
            acc = self.objective.accuracies(s, batch.y_query)
            if acc is not None:
                out["accuracy"] = stack([acc]).numpy()
        return out

    def __repr__(self):
        return f"{type(self).__name__}(" + ("" if self.transductive else "transductive=False") + ")"
