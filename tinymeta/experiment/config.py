"""The run configuration, and its validation (in one place: :meth:`Config.validate`).

The papers' protocols are presets of it (:mod:`tinymeta.experiment.presets`); flags
override any field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..algorithms import ALGORITHMS
from ..tasks import TASK_FAMILIES


@dataclass
class Config:
    """Everything that defines a meta-training run (saved with every checkpoint)."""

    algorithm: str = "maml"            # a key of tinymeta.algorithms.ALGORITHMS (maml, fomaml, adml, caml, ...)
    dataset: str = "sine"              # a key of tinymeta.tasks.TASK_FAMILIES
    ways: int = 5                      # classes per task (classification)
    shots: int = 10                    # support examples per class (sine: support points)
    queries: int = 10                  # query examples per class (sine: query points)
    train_shots: int | None = None     # shots while meta-training, if different (Reptile: 10)
    meta_batch: int = 25               # tasks per meta-iteration
    inner_lr: float = 0.01             # alpha (Meta-SGD: initial range is fixed by the paper)
    inner_steps: int = 1               # inner gradient steps while meta-training
    eval_inner_steps: int = 10         # inner steps at evaluation (every step is reported)
    first_order: bool = False
    meta_optimizer: str = "adam"       # adam | sgd (Reptile: sgd, its step size epsilon)
    meta_lr: float = 1e-3
    lr_schedule: str = "constant"      # constant | linear (to 0 at the last iteration)
    iterations: int = 70000
    inner_optimizer: str = "sgd"       # Reptile's inner optimizer: sgd | adam (beta1 = 0)
    inner_batch: int | None = None     # Reptile's inner mini-batch (None: the whole support set)
    hidden: tuple = (40, 40)           # MLP hidden sizes (sine)
    filters: int = 64                  # conv filters (Omniglot 64, mini-ImageNet 32)
    pool: bool = False                 # max-pool instead of strided conv (mini-ImageNet)
    split_mode: str = "maml"           # Omniglot class split: maml (1100/100/423) | lake
    val_interval: int = 1000
    val_tasks: int = 100
    test_tasks: int = 600
    log_interval: int = 100
    checkpoint_interval: int = 1000
    seed: int = 0
    dtype: str = "float32"
    # ---- ADML and CAML (issue 15) ----
    adv_epsilon: float = 0.2           # ADML: FGSM step epsilon on [0, 1] images (source: presets.py)
    context_size: int = 5              # CAML: context parameters per task at the first layer (CAVIA code default)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(d["hidden"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; known fields: {sorted(known)}")
        d = dict(d)
        if "hidden" in d:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)

    def validate(self) -> "Config":
        """Raise ValueError naming the first inconsistent setting; the task family checks its own."""
        checks = [
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {sorted(ALGORITHMS)}"),
            (self.dataset in TASK_FAMILIES, f"dataset must be one of {sorted(TASK_FAMILIES)}"),
            (self.meta_optimizer in ("adam", "sgd"), "meta_optimizer must be adam or sgd"),
            (self.lr_schedule in ("constant", "linear"), "lr_schedule must be constant or linear"),
            (self.inner_optimizer in ("adam", "sgd"), "inner_optimizer must be adam or sgd"),
            (self.iterations >= 0 and self.meta_batch >= 1, "iterations >= 0 and meta_batch >= 1 are needed"),
            (self.shots >= 1 and self.queries >= 1 and self.ways >= 1, "ways, shots and queries must be >= 1"),
            (self.inner_steps >= 0 and self.eval_inner_steps >= 0, "inner steps must be >= 0"),
            (self.log_interval >= 1 and self.val_interval >= 0 and self.checkpoint_interval >= 0,
             "log_interval >= 1, val_interval >= 0 and checkpoint_interval >= 0 are needed"),
            # ADML and CAML (issue 15)
            (self.adv_epsilon >= 0, "adv_epsilon (ADML's FGSM epsilon) must be >= 0"),
            (self.context_size >= 1, "context_size (CAML's context parameters per task) must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        family = TASK_FAMILIES[self.dataset]
        if self.algorithm == "nil" and family.kind != "classification":
            raise ValueError(f"NIL needs a classification dataset ({self.dataset} is {family.kind})")
        if self.algorithm == "adml" and family.kind != "classification":
            raise ValueError(f"ADML attacks images of a classification task with FGSM (clipped to [0, 1]); "
                             f"{self.dataset} is {family.kind}")
        if self.algorithm == "caml" and family.kind != "regression":
            raise ValueError(f"CAML here conditions an MLP regressor on its context: it needs a regression dataset "
                             f"({self.dataset} is {family.kind})")
        family.check_config(self)
        return self
