"""The run configuration, and its validation (in one place: :meth:`Config.validate`).

The papers' protocols are presets of it (:mod:`tinymeta.experiment.presets`); flags
override any field.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from ..algorithms import ALGORITHMS
from ..tasks import TASK_FAMILIES


# Per-task losses: the mean over the task's examples (tinymeta's default), the sum (Reptile's
# minimize() of a vector), or the sum divided by the shots K (MAML's xent, utils.py:58).
TASK_LOSSES = ("mean", "sum", "sum/shots")

# Upper bounds, far above every paper's setting and low enough that a forged or mistyped
# number (shots = 10**8 in a checkpoint's config) is refused before it asks for memory.
LIMITS = {"ways": 10_000, "shots": 100_000, "queries": 100_000, "train_shots": 100_000, "meta_batch": 100_000,
          "inner_steps": 100_000, "eval_inner_steps": 100_000, "iterations": 10**9, "inner_batch": 100_000,
          "eval_inner_batch": 100_000, "filters": 4096, "val_tasks": 10**6, "test_tasks": 10**6,
          "val_interval": 10**9, "log_interval": 10**9, "checkpoint_interval": 10**9, "seed": 2**63 - 1,
          "context_size": 100_000, "hidden": 100_000, "fce_steps": 10_000}
MAX_BATCH_VALUES = 2**28  # input values in one meta-batch (support and query): 1 GiB of float32


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
    split_mode: str = "maml"           # Omniglot class split: maml (1100/100/423) | lake | reptile | relationnet (1200/423)
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
    rotations: str = "per-task"        # Omniglot: per-task (MAML) | train-classes (Reptile) | whole-task | none
    ink: int = 1                       # Omniglot pixel value of the strokes: 1 (MAML) | 0 (Reptile: PNGs as read)
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
    # ---- matching networks (issue 26) ----
    fce: bool = False                  # full context embeddings (Vinyals et al. 2016, appendix A)
    fce_steps: int = 5                 # K, the attention LSTM's processing steps (appendix A.1)

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

    def check_sitting(self, *, start: int = 0, stop_at=None, time_limit=None) -> "Config":
        """Raise ValueError when the settings of one sitting contradict the run (the other half of :meth:`validate`).

        ``start``: the iteration the sitting begins at (a resume's checkpoint); ``stop_at``: the
        iteration to end it at (--stop-at), after ``start`` and at most ``iterations``;
        ``time_limit``: seconds (--time-limit), a finite number > 0.
        """
        if start > self.iterations:
            raise ValueError(f"iterations (--iterations) {self.iterations} is below the iteration the run has "
                             f"reached ({start}): give --iterations {start} or more")
        if stop_at is not None:
            if not isinstance(stop_at, numbers.Integral) or isinstance(stop_at, bool):
                raise ValueError(f"--stop-at must be an iteration (an integer), got {stop_at!r}")
            if stop_at > self.iterations:
                raise ValueError(f"--stop-at {stop_at} is after the last iteration (--iterations {self.iterations}): "
                                 f"give --stop-at {self.iterations} or less, or more --iterations")
            if stop_at <= start:
                raise ValueError(f"--stop-at {stop_at} is not after the iteration the run starts at ({start}): "
                                 f"give --stop-at {start + 1} or more")
        if time_limit is not None and not (isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool)
                                           and math.isfinite(time_limit) and time_limit > 0):
            raise ValueError(f"--time-limit must be a number of seconds > 0, got {time_limit!r} "
                             "(leave it out for no limit)")
        return self

    def validate(self) -> "Config":
        """Raise ValueError naming the first bad setting and its fix; the task family checks its own.

        Every numeric and enumerated field is checked here, before any data loads or training starts.
        """
        def flag(name):  # the field and the command-line flag that sets it
            return f"{name} (--{name.replace('_', '-')})"

        def integer(v):  # bool is an int in Python: refuse it
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        def count(name, low):
            v = getattr(self, name)
            return (integer(v) and v >= low, f"{flag(name)} must be an integer >= {low}, got {v!r}")

        def optional(name):
            v = getattr(self, name)
            return (v is None or (integer(v) and v >= 1), f"{flag(name)} must be None or an integer >= 1, got {v!r}")

        def rate(name):
            v = getattr(self, name)
            return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
                    f"{flag(name)} must be a finite number >= 0, got {v!r}")

        def one_of(name, options):
            return (getattr(self, name) in options, f"{flag(name)} must be one of {', '.join(options)}, got {getattr(self, name)!r}")

        checks = [
            one_of("algorithm", sorted(ALGORITHMS)), one_of("dataset", sorted(TASK_FAMILIES)),
            one_of("meta_optimizer", ("adam", "sgd")), one_of("lr_schedule", ("constant", "linear")),
            one_of("inner_optimizer", ("adam", "sgd")), one_of("split_mode", ("maml", "lake", "reptile", "relationnet")),
            (self.dtype in ("float32", "float64"), f"dtype (--dtype) must be float32 or float64, got {self.dtype!r}"
             + (": float16 is unsupported (about 3 significant digits and a largest value of 65504: "
                "meta-gradients overflow to NaN within a few iterations)" if self.dtype == "float16" else "")),
            count("ways", 1), count("shots", 1), count("queries", 1), optional("train_shots"),
            count("meta_batch", 1), count("inner_steps", 0), count("eval_inner_steps", 0), count("iterations", 0),
            optional("inner_batch"), count("filters", 1), count("val_interval", 0), count("val_tasks", 1),
            count("test_tasks", 1), count("log_interval", 1), count("checkpoint_interval", 0), count("seed", 0),
            rate("inner_lr"), rate("meta_lr"),
            (isinstance(self.first_order, bool), f"first_order must be True or False, got {self.first_order!r}"),
            # combinations: a setting another one makes meaningless is a contradiction, not a choice
            (self.algorithm != "fomaml" or self.first_order is not False,
             "fomaml is first-order MAML: first_order (--first-order / --stop_grad) False contradicts it; "
             "use --algorithm maml for second order"),
            (self.algorithm != "reptile" or self.first_order is not True,
             "--first-order: Reptile is first order already (it has no meta-gradient through its inner steps)"),
            (isinstance(self.pool, bool), f"pool must be True or False, got {self.pool!r}"),
            (len(self.hidden) >= 1 and all(integer(h) and h >= 1 for h in self.hidden),
             f"hidden must be one or more layer sizes >= 1, got {self.hidden!r}"),
            # the reference codes' ways of computing (PROTOCOLS.md)
            one_of("task_loss", TASK_LOSSES), one_of("conv_padding", ("symmetric", "same")),
            (isinstance(self.adapt_norm, bool), f"adapt_norm must be True or False, got {self.adapt_norm!r}"),
            (isinstance(self.bn_scale, bool), f"bn_scale must be True or False, got {self.bn_scale!r}"),
            (isinstance(self.bn_eps, (int, float)) and self.bn_eps > 0, f"{flag('bn_eps')} must be > 0, got {self.bn_eps!r}"),
            (self.features in (None, "mean", "flatten"), f"{flag('features')} must be mean or flatten, got {self.features!r}"),
            (self.head_init in (None, "normal", "glorot"),
             f"{flag('head_init')} must be normal or glorot, got {self.head_init!r}"),
            # ADML and CAML (issue 15)
            rate("adv_epsilon"), count("context_size", 1),
            one_of("inner_state", ("fresh", "persistent")), optional("eval_inner_batch"),
            (self.algorithm == "reptile" or (self.inner_state == "fresh" and self.eval_inner_batch is None),
             "inner_state and eval_inner_batch are Reptile's settings (its inner optimizer and mini-batches)"),
            (isinstance(self.transductive, bool), f"transductive must be True or False, got {self.transductive!r}"),
            # matching networks (issue 26)
            (isinstance(self.fce, bool), f"fce (--fce) must be True or False, got {self.fce!r}"),
            count("fce_steps", 1),
            (self.algorithm == "matching" or (self.fce is False and self.fce_steps == 5),
             "fce and fce_steps are matching networks' settings (--algorithm matching)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self._check_limits(flag)
        family = TASK_FAMILIES[self.dataset]
        if self.algorithm == "nil" and family.kind != "classification":
            raise ValueError(f"NIL needs a classification dataset ({self.dataset} is {family.kind})")
        if self.algorithm == "adml" and family.kind != "classification":
            raise ValueError(f"ADML attacks images of a classification task with FGSM (clipped to [0, 1]); "
                             f"{self.dataset} is {family.kind}")
        if not ALGORITHMS[self.algorithm].inner_loop and family.kind != "classification":
            raise ValueError(f"{self.algorithm} compares query examples with a support set of labelled classes: it "
                             f"needs a classification dataset ({self.dataset} is {family.kind})")
        if self.algorithm == "caml" and family.kind != "regression":
            raise ValueError(f"CAML here conditions an MLP regressor on its context: it needs a regression dataset "
                             f"({self.dataset} is {family.kind})")
        family.check_config(self)
        return self

    def _check_limits(self, flag) -> None:
        """Refuse a number above :data:`LIMITS`, and a meta-batch too large to hold (runs after the type checks)."""
        for name, most in LIMITS.items():
            values = self.hidden if name == "hidden" else (getattr(self, name),)
            if any(v is not None and v > most for v in values):
                raise ValueError(f"{flag(name)} must be at most {most:,}, got {getattr(self, name)!r}")
        family = TASK_FAMILIES[self.dataset]
        per_example = math.prod(family.input_shape) if family.input_shape else 1
        examples = (self.ways if family.kind == "classification" else 1) * (
            max(self.shots, self.train_shots or 0) + self.queries)
        values = self.meta_batch * examples * per_example
        if values > MAX_BATCH_VALUES:
            raise ValueError(f"a meta-batch of {self.meta_batch} tasks with {examples:,} examples each is "
                             f"{values:,} input values, more than {MAX_BATCH_VALUES:,} (1 GiB of float32): "
                             "use fewer --shots, --queries, --ways or a smaller --meta-batch")
