"""The run configuration, and its validation (in one place: :meth:`Config.validate`).

The papers' protocols are presets of it (:mod:`tinymeta.experiment.presets`); flags
override any field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..algorithms import ALGORITHMS
from ..tasks import TASK_FAMILIES


# Per-task losses: the mean over the task's examples (tinymeta's default), the sum (Reptile's
# minimize() of a vector), or the sum divided by the shots K (MAML's xent, utils.py:58).
TASK_LOSSES = ("mean", "sum", "sum/shots")


@dataclass
class Config:
    """Everything that defines a meta-training run (saved with every checkpoint)."""

    algorithm: str = "maml"            # maml | fomaml | meta-sgd | reptile | anil | nil | gradient-agreement
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
    split_mode: str = "maml"           # Omniglot class split: maml (1100/100/423) | lake | reptile (1200/423)
    # How the reference codes compute; tinymeta's own defaults first (see PROTOCOLS.md)
    task_loss: str = "mean"            # per-task loss: mean | sum | sum/shots (see TASK_LOSSES)
    adapt_norm: bool = True            # the inner loop adapts batch norm's parameters (MAML's code: no)
    bn_scale: bool = True              # batch norm with a scale and a shift, or the shift only (tf.contrib default)
    bn_eps: float = 1e-5               # 1e-5 (PyTorch) | 1e-3 (TensorFlow, both reference codes)
    conv_padding: str = "symmetric"    # symmetric (1 pixel each side) | same (TensorFlow: the odd pixel after)
    features: str | None = None        # conv features: mean (spatial mean) | flatten; None: flatten iff pool
    head_init: str | None = None       # normal (N(0,1)) | glorot; None: glorot iff pool
    inner_state: str = "fresh"         # Reptile's inner optimizer state: fresh per meta-batch | persistent (the original)
    eval_inner_batch: int | None = None  # Reptile's inner mini-batch at evaluation (None: inner_batch)
    transductive: bool = True          # queries through batch norm together; False: each with the support set
    rotations: str = "per-task"        # Omniglot: per-task (MAML) | train-classes (Reptile) | none
    ink: int = 1                       # Omniglot pixel value of the strokes: 1 (MAML) | 0 (Reptile: PNGs as read)
    val_interval: int = 1000
    val_tasks: int = 100
    test_tasks: int = 600
    log_interval: int = 100
    checkpoint_interval: int = 1000
    seed: int = 0
    dtype: str = "float32"

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
            # the reference codes' ways of computing (PROTOCOLS.md)
            (self.task_loss in TASK_LOSSES, f"task_loss must be one of {TASK_LOSSES}"),
            (self.bn_eps > 0, "bn_eps must be > 0"),
            (self.conv_padding in ("symmetric", "same"), "conv_padding must be symmetric or same"),
            (self.features in (None, "mean", "flatten"), "features must be mean or flatten"),
            (self.head_init in (None, "normal", "glorot"), "head_init must be normal or glorot"),
            (self.inner_state in ("fresh", "persistent"), "inner_state must be fresh or persistent"),
            (self.eval_inner_batch is None or self.eval_inner_batch >= 1, "eval_inner_batch must be >= 1 (or None)"),
            (self.algorithm == "reptile" or (self.inner_state == "fresh" and self.eval_inner_batch is None),
             "inner_state and eval_inner_batch are Reptile's settings (its inner optimizer and mini-batches)"),
            (isinstance(self.transductive, bool), "transductive must be True or False"),
            (self.transductive or self.algorithm not in ("anil", "nil"),
             "transductive=False is not implemented for anil and nil (their evaluation works on features)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        family = TASK_FAMILIES[self.dataset]
        if self.algorithm == "nil" and family.kind != "classification":
            raise ValueError(f"NIL needs a classification dataset ({self.dataset} is {family.kind})")
        family.check_config(self)
        return self
