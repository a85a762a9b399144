"""Build a run's parts from its Config: task family, model, algorithm, outer optimizer.

Nothing here names a dataset or an algorithm: the task family comes from
``tinymeta.tasks.TASK_FAMILIES`` and the algorithm from ``tinymeta.algorithms.ALGORITHMS``.
"""
from __future__ import annotations

from ..algorithms import ALGORITHMS, Objective
from ..optim import SGD, Adam
from ..tasks import TASK_FAMILIES
from .config import Config


def task_family(cfg: Config):
    """The task family class of ``cfg.dataset`` (a :class:`tinymeta.tasks.TaskFamily` subclass)."""
    return TASK_FAMILIES[cfg.dataset]


def build_model(cfg: Config):
    """The network for ``cfg``'s tasks (the family decides: an MLP for sine, a conv net for images)."""
    return task_family(cfg).build_model(cfg)


def build_algorithm(cfg: Config, model):
    """``cfg.algorithm`` over ``model``, with the objective of ``cfg``'s task family."""
    objective = Objective(task_family(cfg).kind, reduction=cfg.task_loss, shots=cfg.shots)
    return ALGORITHMS[cfg.algorithm].from_config(model, objective, cfg)


def make_optimizer(cfg: Config, meta_params: dict):
    """The outer optimizer over the meta-parameters: Adam or SGD at ``cfg.meta_lr``."""
    if cfg.meta_optimizer == "adam":
        return Adam(meta_params, lr=cfg.meta_lr)
    return SGD(meta_params, lr=cfg.meta_lr)


class TaskSource:
    """Meta-batches for training, and fixed task sets for validation and testing.

    Two views of one task family (sharing its data): ``evaluation`` with ``cfg.shots``
    and ``cfg.queries``, ``training`` with the sizes meta-training uses (Reptile trains
    on ``cfg.train_shots``; see :meth:`tinymeta.tasks.TaskFamily.sizes`).
    """

    def __init__(self, cfg: Config, device: str, data_dir=None, verbose=True):
        self.cfg = cfg
        self.evaluation = task_family(cfg).from_config(cfg, device=device, data_dir=data_dir, verbose=verbose)
        self.training = self.evaluation.for_training(cfg)
        self.eval_chunk = self.evaluation.eval_chunk or cfg.meta_batch

    def train(self, rng):
        """One meta-batch of ``cfg.meta_batch`` training tasks."""
        return self.training.sample(self.cfg.meta_batch, rng, "train")

    def fixed(self, split: str, num_tasks: int, chunk: int | None = None):
        """The same ``num_tasks`` tasks of ``split`` every time, in chunks of at most ``chunk``."""
        return self.evaluation.fixed_tasks(split, num_tasks, chunk or self.eval_chunk)
