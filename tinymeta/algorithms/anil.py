"""ANIL and NIL (Raghu, Raghu, Bengio & Vinyals, ICLR 2020, arXiv:1909.09157).

ANIL, "Almost No Inner Loop" (Sec. 4): meta-train as MAML, but the inner loop
adapts only the head (the final linear layer); the body is shared by all tasks
and all inner steps, so its features are computed once per meta-batch:
    h_i' = h - alpha * grad_h L_i^support(h; body_theta)
NIL, "No Inner Loop" (Sec. 5): at test time drop the head; each query takes the
label of the support class whose features are most cosine-similar to its own
(the mean cosine similarity over that class's support examples).
"""
from __future__ import annotations

from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor
from .common import expand, inner_sgd
from .maml import MAML


class ANIL(MAML):
    """MAML whose inner loop adapts only the model's head."""

    name = "anil"

    def features(self, meta_params, batch):
        """Body features of support and query, computed once with the shared weights."""
        params = self.model_params(meta_params)
        return self.model.body(params, batch.x_support), self.model.body(params, batch.x_query)

    def _head_steps(self, meta_params, head, feats, batch, steps, create_graph, trace=None):
        """``steps`` inner steps on the head alone, on precomputed support features."""
        return inner_sgd(lambda h: self.objective.losses(self.model.head(h, feats), batch.y_support), head,
                         self.inner_rates(meta_params), steps, create_graph=create_graph, trace=trace)

    def _initial_head(self, meta_params, batch):
        return expand(self.model_params(meta_params), batch.num_tasks, keys=self.model.head_keys())

    def meta_loss(self, meta_params, batch):
        fs, fq = self.features(meta_params, batch)
        trace = []
        head = self._head_steps(meta_params, self._initial_head(meta_params, batch), fs, batch,
                                self.inner_steps, not self.first_order, trace)
        return self.query_loss(self.model.head(head, fq), batch, trace)

    def predictions(self, meta_params, batch, steps):
        with no_grad():
            fs, fq = self.features(meta_params, batch)
        head = self._initial_head(meta_params, batch)
        for step in range(steps + 1):
            if step:
                head = self._head_steps(meta_params, head, fs, batch, 1, create_graph=False)
            with no_grad():
                yield self.model.head(head, fq)


def nil_predict(fs: Tensor, ys: Tensor, fq: Tensor, n_way: int) -> Tensor:
    """Class scores (T, Q, n_way): mean cosine similarity of each query to each class's support features."""
    sim = F.cosine_similarity(fq.unsqueeze(2), fs.unsqueeze(1), dim=-1)       # (T, Q, S)
    onehot = F.one_hot(ys, n_way, dtype=sim.dtype)                            # (T, S, C)
    return (sim @ onehot) / onehot.sum(axis=1, keepdims=True)                 # (T, Q, C)


class NIL(ANIL):
    """Trained as ANIL; evaluated without a head or an inner loop (accuracy only)."""

    name = "nil"

    def evaluate(self, meta_params, batch, steps=None):
        if self.objective.kind != "classification":
            raise ValueError("NIL classifies by similarity to support classes: it needs classification tasks")
        with no_grad():
            fs, fq = self.features(meta_params, batch)
            n_way = int(batch.y_support.numpy().max()) + 1
            scores = nil_predict(fs, batch.y_support, fq, n_way)
            acc = F.accuracy(scores, batch.y_query, reduction="none").mean(axis=-1)
        return {"accuracy": acc.numpy()[None]}
