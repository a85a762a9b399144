"""The meta-batch (every task's support and query sets stacked on a leading task axis) and
the protocol every task family follows."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..tensor import Tensor


@dataclass(frozen=True)
class MetaBatch:
    """T tasks at once.

    ``x_support`` is (T, n_support, ...features), ``y_support`` (T, n_support[, 1]);
    likewise the query set. Classification labels are int64 in [0, n_way);
    regression targets are floats. All four live on one device. ``info`` holds
    NumPy arrays with a leading task axis (e.g. sine amplitudes and phases).
    ``x_unlabeled`` (T, n_unlabeled, ...), where a family draws them (``--unlabeled``), holds
    examples without labels: of the task's classes and of distractor classes
    (semi-supervised prototypical networks); their true labels, -1 for a distractor, are in
    ``info['unlabeled_labels']`` for plots and checks only.
    """

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    info: dict | None = None  # per-task facts for plots (amplitudes, class ids); not used in training
    x_unlabeled: Tensor | None = None
    n_way: int | None = None  # classes per task, where the sampler knows it (read without a device sync)

    @property
    def num_tasks(self) -> int:
        return self.x_support.shape[0]

    @property
    def support(self):
        return self.x_support, self.y_support

    @property
    def query(self):
        return self.x_query, self.y_query

    @property
    def device(self) -> str:
        return self.x_support.device

    def task(self, t: int) -> "MetaBatch":
        """Task ``t`` alone, keeping a task axis of length 1 (for per-task reference loops)."""
        return self.tasks(slice(t, t + 1))

    def tasks(self, index: slice) -> "MetaBatch":
        """The tasks selected by a slice of the task axis (e.g. evaluation in chunks)."""
        info = None if self.info is None else {k: v[index] for k, v in self.info.items()}
        return MetaBatch(self.x_support[index], self.y_support[index], self.x_query[index],
                         self.y_query[index], info,
                         None if self.x_unlabeled is None else self.x_unlabeled[index], self.n_way)


# Validation and test tasks come from fixed seeds, independent of the training seed,
# so every run is measured on the same tasks.
VAL_SEED, TEST_SEED = 20170310, 20170309


class TaskFamily:
    """What every task family offers the training loop, the config checks and the CLI.

    A family is a distribution over tasks. Subclasses set the class attributes, take
    ``k_support`` / ``k_query`` in their constructor, and implement :meth:`from_config`,
    :meth:`build_model` and :meth:`sample`. Adding a family is one module plus one line
    in ``tinymeta.tasks.TASK_FAMILIES``.

    - ``name``: the registry key (``--dataset``); ``aliases``: other spellings the CLI takes.
    - ``kind``: ``"regression"`` or ``"classification"`` (the :class:`~tinymeta.algorithms.Objective`).
    - ``examples_per_class``: drawings per class, so shots + queries must fit (None: unlimited).
    - ``input_shape``: one example's shape, e.g. (1,) or (1, 28, 28).
    - ``unused_fields``: Config fields the family ignores (the CLI refuses them as flags).
    - ``eval_chunk``: tasks per evaluation batch (None: the config's meta-batch).
    """

    name: str = ""
    aliases: tuple = ()
    kind: str = "classification"
    examples_per_class: int | None = None
    input_shape: tuple = ()
    unused_fields: tuple = ()
    eval_chunk: int | None = None
    k_support: int
    k_query: int

    @classmethod
    def from_config(cls, cfg, *, device=None, data_dir=None, verbose: bool = True) -> "TaskFamily":
        """The family with ``cfg``'s ways, shots and queries, as evaluation uses it."""
        raise NotImplementedError

    @classmethod
    def build_model(cls, cfg):
        """The network that fits this family's tasks, sized by ``cfg``."""
        raise NotImplementedError

    @classmethod
    def check_config(cls, cfg) -> None:
        """Raise ValueError naming the first setting of ``cfg`` this family cannot serve."""
        per_class = cls.examples_per_class
        if per_class is None:
            return
        for shots in {cfg.shots, cfg.train_shots or cfg.shots}:
            if shots + 1 > per_class:
                raise ValueError(f"{shots} shots leave no query example: {cls.name} has {per_class} per class")
        if cfg.shots + cfg.queries > per_class:
            raise ValueError(f"{cfg.shots} shots + {cfg.queries} queries need {cfg.shots + cfg.queries} examples "
                             f"per class, but {cls.name} has {per_class}; use shots + queries <= {per_class}")

    @classmethod
    def sizes(cls, cfg, training: bool = False) -> tuple[int, int]:
        """(support, query) examples per class (per task for regression) under ``cfg``.

        Meta-training may use more shots than evaluation (``cfg.train_shots``: Reptile
        trains on 10); the queries then shrink so that shots + queries fit in a class.
        """
        if not training:
            return cfg.shots, cfg.queries
        shots = cfg.train_shots or cfg.shots
        queries = cfg.train_queries or cfg.queries
        if cls.examples_per_class is None:
            return shots, queries
        return shots, max(1, min(queries, cls.examples_per_class - shots))

    @classmethod
    def ways_of(cls, cfg, training: bool = False) -> int:
        """Classes per task under ``cfg``: ``cfg.train_ways`` while meta-training where it is set
        (prototypical networks train on 60 classes and test on 5 or 20), else ``cfg.ways``."""
        return (cfg.train_ways or cfg.ways) if training else cfg.ways

    def for_training(self, cfg) -> "TaskFamily":
        """This family (sharing its data) with the sizes meta-training samples (:meth:`sizes`, :meth:`ways_of`)."""
        shots, queries = self.sizes(cfg, training=True)
        ways = self.ways_of(cfg, training=True) if self.kind == "classification" else None
        if (shots, queries) == (self.k_support, self.k_query) and ways in (None, getattr(self, "n_way", None)):
            return self
        other = copy.copy(self)
        other.k_support, other.k_query = shots, queries
        if ways is not None:
            other.n_way = ways
        return other

    def sample(self, num_tasks: int, rng: np.random.Generator, split: str = "train") -> MetaBatch:
        """Draw ``num_tasks`` tasks of ``split`` ('train', 'val' or 'test') from ``rng``."""
        raise NotImplementedError

    def fixed_tasks(self, split: str, num_tasks: int, chunk: int):
        """Yield the same ``num_tasks`` tasks of ``split`` every time, in batches of at most ``chunk``.

        The tasks come from ``VAL_SEED`` or ``TEST_SEED``, never from the training seed.
        """
        rng = np.random.default_rng(TEST_SEED if split == "test" else VAL_SEED)
        for start in range(0, num_tasks, chunk):
            yield self.sample(min(chunk, num_tasks - start), rng, split)
