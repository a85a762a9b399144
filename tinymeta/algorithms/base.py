"""The thin class every algorithm offers the training loop; the mathematics lives in each algorithm's file.

Every algorithm is one direct subclass of :class:`MetaLearner` that calls its
paper's function (``maml_meta_loss``, ``anil_meta_loss``, ...) from
:meth:`MetaLearner.meta_loss` (or, for Reptile, :meth:`MetaLearner.meta_gradient`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..autograd import grad, no_grad
from ..ops import stack
from .common import Objective, inner_sgd, per_task, with_support

if TYPE_CHECKING:  # annotations only: the algorithms need no task family
    from ..tasks.base import MetaBatch


class MetaLearner:
    """A meta-learning algorithm over a model ``model(params, x)``.

    The training loop builds one with :meth:`from_config`, asks for
    :meth:`meta_gradient` and hands it to an outer optimizer; evaluation asks
    for :meth:`evaluate`. An algorithm defines :meth:`meta_loss` (or
    :meth:`meta_gradient`, Reptile) and, where its inner loop is not plain SGD
    on every weight, :meth:`adapt`.
    """

    name = "base"
    inner_loop = True  # False: a learner that reads the support set in one pass (metric.MetricLearner)
    adapts_head = True  # whether the inner loop adapts the model's head from its meta-learned value

    def __init__(self, model, objective: Objective, inner_lr: float = 0.01, inner_steps: int = 1,
                 first_order: bool = False, adapt_norm: bool = True, transductive: bool = True):
        if inner_steps < 0:
            raise ValueError(f"inner_steps must be >= 0, got {inner_steps}")
        self.model, self.objective = model, objective
        self.inner_lr, self.inner_steps, self.first_order = float(inner_lr), int(inner_steps), bool(first_order)
        self.adapt_norm, self.transductive = bool(adapt_norm), bool(transductive)

    @classmethod
    def from_config(cls, model, objective: Objective, cfg):
        """The algorithm a run's config asks for; reads ``cfg.inner_lr``, ``cfg.inner_steps``, ``cfg.first_order``.

        ``cfg`` is any object with those attributes (a run's Config). Every
        algorithm is built this way: ``ALGORITHMS[cfg.algorithm].from_config(model, objective, cfg)``.
        """
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps, first_order=cfg.first_order,
                   adapt_norm=cfg.adapt_norm, transductive=cfg.transductive)

    # ---- state carried between meta-iterations (checkpointed with the run) ----------------------
    def state_dict(self) -> dict:
        """What the algorithm itself carries from one meta-iteration to the next: nothing here.

        Reptile with ``inner_state='persistent'`` keeps its inner optimizer's state.
        The training loop saves this dict in every checkpoint and restores it on resume.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (an algorithm without state takes only an empty dict)."""
        if state:
            raise ValueError(f"{type(self).__name__} carries no state between meta-iterations, but the checkpoint "
                             f"holds {sorted(state)}; was it saved by another algorithm or setting?")

    # ---- what is meta-learned --------------------------------------------------------------
    def init_meta_params(self, params: dict, rng=None) -> dict:
        """The meta-parameters: the model's initial weights theta (Meta-SGD adds its rates)."""
        return dict(params)

    def model_params(self, meta_params: dict) -> dict:
        """The model's weights within the meta-parameters."""
        return meta_params

    def inner_keys(self, params: dict):
        """The weights the inner loop adapts: all (None), or all but batch norm's when not ``adapt_norm``.

        MAML's code keeps batch norm's shift outside the adapted weights: the
        outer loop learns it, the inner loop leaves it alone (maml.py:94).
        """
        if self.adapt_norm:
            return None
        frozen = set(self.model.norm_keys())
        return [k for k in params if k not in frozen]

    def inner_rates(self, meta_params: dict):
        """The inner learning rate: a number (Meta-SGD: a tensor per parameter)."""
        return self.inner_lr

    # ---- meta-training --------------------------------------------------------------------------
    def meta_loss(self, meta_params: dict, batch: MetaBatch):
        """(meta-loss, metrics) for one meta-batch; metrics are constant Tensors."""
        raise NotImplementedError

    def meta_gradient(self, meta_params: dict, batch: MetaBatch, rng=None, iteration: int = 0):
        """(gradients of the meta-loss with respect to every meta-parameter, metrics).

        ``rng`` (a NumPy Generator) is for algorithms that draw inner mini-batches;
        ``iteration`` (the training loop's, 0-based) for objectives that follow a schedule
        over training (MAML++'s multi-step loss and derivative-order annealing). A resumed
        run passes the same iterations as an uninterrupted one.
        """
        loss, metrics = self.meta_loss(meta_params, batch)
        return grad(loss, meta_params), metrics

    # ---- a meta-batch in chunks of tasks (Config.task_chunk) ---------------------------------------
    # The training loop may compute a meta-batch's gradient over chunks of its tasks, one chunk's graph
    # at a time (tinymeta.experiment.loop.chunked_meta_gradient), and combine the chunks so that the
    # result is the unchunked one. That holds when a task's share of the meta-loss and of every metric
    # depends on that task alone (batch norm's statistics are per task: functional.batch_norm), so
    # each algorithm declares:
    #
    # - ``task_reduction``: how the meta-loss and every metric gather the tasks: "mean" (each chunk
    #   weighs its share of the tasks, n_chunk / T) or "sum" (chunks add).
    # - ``shared_task_draws``: True where every task uses the same draws from ``rng``, their number
    #   independent of how many tasks there are (Reptile's fresh inner mini-batches): each chunk then
    #   replays them from the state the meta-batch began with. False: the draws (if any) come task
    #   after task, so chunks in order continue the stream.
    # - :meth:`chunk_refusal`: a sentence saying why the tasks cannot be split (they are coupled),
    #   or None.
    # - :meth:`finish_gradient`: what is done to the whole meta-batch's gradient after the tasks'
    #   contributions are summed (relation networks clip it); :meth:`meta_gradient` is
    #   ``finish_gradient`` of :meth:`chunk_gradient` of the whole meta-batch.
    task_reduction = "mean"
    shared_task_draws = False

    @classmethod
    def chunk_refusal(cls, cfg) -> str | None:
        """Why a run of ``cfg`` cannot split its meta-batch into chunks of tasks, or None where it can."""
        return None

    def chunk_gradient(self, meta_params: dict, batch: MetaBatch, rng=None, iteration: int = 0):
        """(gradient, metrics) of the meta-loss over ``batch``'s tasks alone, before :meth:`finish_gradient`."""
        return self.meta_gradient(meta_params, batch, rng=rng, iteration=iteration)

    def finish_gradient(self, grads: dict) -> dict:
        """The meta-gradient from the sum of the tasks' contributions: unchanged here."""
        return grads

    # ---- evaluation ------------------------------------------------------------------------------
    def adapt(self, meta_params: dict, batch: MetaBatch, steps: int):
        """Yield the per-task fast weights before adaptation and after each of ``steps`` SGD steps."""
        fast = per_task(self.model_params(meta_params), batch.num_tasks)
        rates, keys = self.inner_rates(meta_params), self.inner_keys(self.model_params(meta_params))
        x, y = batch.support
        yield fast
        for _ in range(steps):
            fast = inner_sgd(lambda f: self.objective.losses(self.model(f, x), y), fast, rates, 1,
                             create_graph=False, keys=keys)
            yield fast

    def predictions(self, meta_params: dict, batch: MetaBatch, steps: int):
        """Yield the query predictions before adaptation and after each inner step."""
        for fast in self.adapt(meta_params, batch, steps):
            with no_grad():
                yield self.query_predictions(meta_params, fast, batch)

    def query_predictions(self, meta_params: dict, fast: dict, batch: MetaBatch):
        """The model's outputs on the query set with the fast weights, (T, n_query, ...).

        Transductive (default): a task's query examples go through the net together, so
        batch norm pools their statistics (and nothing else). Otherwise each query
        example goes through the net together with its task's support set, and the
        output for it is kept (supervised-reptile reptile.py:129-134); all T * Q of
        these passes run at once, as T * Q tasks that share their task's weights.
        """
        if self.transductive:
            return self.model(fast, batch.x_query)
        T, Q, S = batch.x_query.shape[0], batch.x_query.shape[1], batch.x_support.shape[1]
        shared = self.model_params(meta_params)
        weights = {}
        for k, w in fast.items():  # per task (T, ...) -> (T * Q, ...); a shared weight stays shared
            if w.ndim == shared[k].ndim + 1:
                w = w.unsqueeze(1).broadcast_to((T, Q) + w.shape[1:]).reshape((T * Q,) + w.shape[1:])
            weights[k] = w
        out = self.model(weights, with_support(batch.x_support, batch.x_query))[:, S]  # each pass's last: the query
        return out.reshape((T, Q) + out.shape[1:])

    def evaluate(self, meta_params: dict, batch: MetaBatch, steps: int | None = None) -> dict:
        """Query loss (and accuracy) of every task before adaptation and after each inner step.

        Returns NumPy arrays of shape (steps + 1, T) under 'loss' and 'accuracy'
        (read from the device once, at the end).
        """
        steps = self.inner_steps if steps is None else steps
        losses, accs = [], []
        for pred in self.predictions(meta_params, batch, steps):
            with no_grad():
                losses.append(self.objective.losses(pred, batch.y_query))
                acc = self.objective.accuracies(pred, batch.y_query)
            if acc is not None:
                accs.append(acc)
        out = {"loss": stack(losses).numpy()}
        if accs:
            out["accuracy"] = stack(accs).numpy()
        return out

    def __repr__(self):
        return (f"{type(self).__name__}(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, "
                f"first_order={self.first_order}" + ("" if self.adapt_norm else ", adapt_norm=False")
                + ("" if self.transductive else ", transductive=False") + ")")
