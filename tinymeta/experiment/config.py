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
from ..algorithms.taml import parse_measure
from ..tasks import TASK_FAMILIES


# Per-task losses: the mean over the task's examples (tinymeta's default), the sum (Reptile's
# minimize() of a vector), or the sum divided by the shots K (MAML's xent, utils.py:58).
TASK_LOSSES = ("mean", "sum", "sum/shots")

# Outer learning-rate schedules: see tinymeta.experiment.loop.scheduled_lr.
LR_SCHEDULES = ("constant", "linear", "cosine", "step")

# Upper bounds, far above every paper's setting and low enough that a forged or mistyped
# number (shots = 10**8 in a checkpoint's config) is refused before it asks for memory.
LIMITS = {"ways": 10_000, "shots": 100_000, "queries": 100_000, "train_shots": 100_000, "meta_batch": 100_000,
          "task_chunk": 100_000, "train_ways": 10_000, "train_queries": 100_000, "lr_decay_every": 10**9,
          "inner_steps": 100_000, "eval_inner_steps": 100_000, "iterations": 10**9, "inner_batch": 100_000,
          "eval_inner_batch": 100_000, "filters": 4096, "val_tasks": 10**6, "test_tasks": 10**6,
          "val_interval": 10**9, "log_interval": 10**9, "checkpoint_interval": 10**9, "seed": 2**63 - 1,
          "context_size": 100_000, "hidden": 100_000, "unlabeled": 100_000, "distractors": 10_000,
          "cluster_steps": 1000, "memory_heads": 128,
          "epoch_iterations": 10**9, "multi_step_loss_iterations": 10**9, "first_order_iterations": 10**9, "fce_steps": 10_000}
MAX_BATCH_VALUES = 2**28  # input values in one meta-batch (support and query): 1 GiB of float32

EPISODE_SHIFT = 2  # Config.episode_shift's default: pixels each drawing of an online episode may move each way


@dataclass
class Config:
    """Everything that defines a meta-training run (saved with every checkpoint)."""

    algorithm: str = "maml"            # a key of tinymeta.algorithms.ALGORITHMS (maml, fomaml, adml, caml, ...)
    dataset: str = "sine"              # a key of tinymeta.tasks.TASK_FAMILIES
    ways: int = 5                      # classes per task (classification)
    shots: int = 10                    # support examples per class (sine: support points)
    queries: int = 10                  # query examples per class (sine: query points)
    train_shots: int | None = None     # shots while meta-training, if different (Reptile: 10)
    train_ways: int | None = None      # classes per task while meta-training, if different (ProtoNet: 60)
    train_queries: int | None = None   # queries per class while meta-training, if different (ProtoNet: 5)
    meta_batch: int = 25               # tasks per meta-iteration
    task_chunk: int | None = None      # tasks per chunk of a meta-batch, one chunk's graph at a time: the same
                                       # gradient in less memory (None: the whole meta-batch at once)
    inner_lr: float = 0.01             # alpha (Meta-SGD: initial range is fixed by the paper)
    inner_steps: int = 1               # inner gradient steps while meta-training
    eval_inner_steps: int = 10         # inner steps at evaluation (every step is reported)
    first_order: bool = False
    meta_optimizer: str = "adam"       # adam | sgd (Reptile: sgd, its step size epsilon)
    meta_lr: float = 1e-3
    lr_schedule: str = "constant"      # constant | linear (to 0 at the last iteration) | cosine (to meta_lr_min) | step
    lr_decay_every: int | None = None  # step schedule: iterations between decays (ProtoNet: 2000)
    lr_decay_factor: float = 0.5       # step schedule: the rate is multiplied by this at each decay
    iterations: int = 70000
    inner_optimizer: str = "sgd"       # Reptile's inner optimizer: sgd | adam (beta1 = 0)
    inner_batch: int | None = None     # Reptile's inner mini-batch (None: the whole support set)
    hidden: tuple = (40, 40)           # MLP hidden sizes (sine)
    filters: int = 64                  # conv filters (Omniglot 64, mini-ImageNet 32)
    pool: bool = False                 # max-pool instead of strided conv (mini-ImageNet)
    split_mode: str = "maml"           # Omniglot class split: maml (1100/100/423) | lake | reptile (1200/423) | koch | vinyals (1028/172/423) | vinyals-trainval | relationnet (1200/423)
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
    rotations: str = "per-task"        # Omniglot: per-task (MAML) | train-classes (Reptile) | all-classes (ProtoNet) | whole-task (RelationNet) | none
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
    # ---- learners without an inner loop (issue 26) ----
    covariance: str = "radius"         # Gaussian prototypical networks: radius (one confidence) | diagonal (one per dim)
    unlabeled: int = 0                 # semi-supervised episodes: unlabeled examples per class (Ren et al.: 5)
    distractors: int = 0               # semi-supervised episodes: classes of unlabeled examples only (Ren et al.: 5)
    refinement: str = "soft-kmeans"    # semi-protonet: soft-kmeans | distractor-cluster | masked (Ren et al. Sec. 3)
    cluster_steps: int = 1             # semi-protonet: soft k-means refinement steps (the original: 1)
    # ---- TAML (issue 27) ----
    taml_lambda: float = 1.0           # TAML: lambda, the regulariser's weight (tinymeta's choice; see presets.py)
    taml_measure: str = "theil"        # TAML: entropy | theil | ge:ALPHA | atkinson:EPSILON | gini | variance-of-logs
    # ---- memory-augmented networks (issue 27) ----
    memory_heads: int = 4              # MANN's read heads on online episodes (Santoro et al.: 4); 0: the LSTM baseline
    mann_write: str = "key"            # MANN: what a head writes, key (the paper's Sec. 3.2) | add (a separate vector)
    mann_least_used: str = "each"      # MANN: head h writes to the h-th least-used location (each) | all n (paper)
    episode_shift: int = EPISODE_SHIFT  # online episodes: each drawing moved up to this many pixels each way (0: none)
    # ---- MAML++ (issue 27; Antoniou et al. 2019; PROTOCOLS.md cites the original's lines) ----
    meta_lr_min: float = 0.0           # the cosine schedule's last rate (MAML++'s min_learning_rate 1e-5)
    epoch_iterations: int = 1          # iterations per epoch of the cosine, multi-step loss and DA schedules (500)
    multi_step_loss_iterations: int = 0  # MAML++ MSL: weigh every step's query loss for this many iterations (0: off)
    first_order_iterations: int = 0    # MAML++ DA: first order for this many iterations, then second (0: off)
    learned_step_rates: bool = False   # MAML++ LSLR: a learned inner rate per weight tensor and inner step
    per_step_bn: bool = False          # MAML++ BNWB: batch-norm scale and shift per inner step (meta-learned)
    activation: str = "relu"           # conv nets' nonlinearity: relu | leaky_relu (MAML++'s, slope 0.01)
    # ---- Siamese networks (issue 26) ----
    siamese_loss: str = "bce"          # bce: Koch et al.'s weighted L1 + sigmoid | contrastive: the book's (Hadsell et al.)
    margin: float = 1.0                # the contrastive loss's margin m (the book's notebook: 1)
    # ---- matching networks (issue 26) ----
    fce: bool = False                  # full context embeddings (Vinyals et al. 2016, appendix A)
    fce_steps: int = 5                 # K, the attention LSTM's processing steps (appendix A.1)
    matching_distance: str = "cosine"  # cosine: the paper's attention | l2: softmax of -squared distances (oscarknagg)

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
            one_of("meta_optimizer", ("adam", "sgd")), one_of("lr_schedule", LR_SCHEDULES),
            one_of("inner_optimizer", ("adam", "sgd")),
            one_of("split_mode", ("maml", "lake", "reptile", "koch", "vinyals", "vinyals-trainval", "relationnet")),
            (self.dtype in ("float32", "float64"), f"dtype (--dtype) must be float32 or float64, got {self.dtype!r}"
             + (": float16 is unsupported (about 3 significant digits and a largest value of 65504: "
                "meta-gradients overflow to NaN within a few iterations)" if self.dtype == "float16" else "")),
            count("ways", 1), count("shots", 1), count("queries", 1), optional("train_shots"),
            optional("train_ways"), optional("train_queries"), optional("lr_decay_every"),
            (isinstance(self.lr_decay_factor, (int, float)) and not isinstance(self.lr_decay_factor, bool)
             and 0 < self.lr_decay_factor <= 1,
             f"{flag('lr_decay_factor')} must be a number in (0, 1], got {self.lr_decay_factor!r}"),
            (self.lr_schedule != "step" or self.lr_decay_every is not None,
             "lr_schedule (--lr-schedule) step needs lr_decay_every (--lr-decay-every), the iterations between "
             "decays (prototypical networks: 2000)"),
            (self.lr_schedule == "step" or (self.lr_decay_every is None and self.lr_decay_factor == 0.5),
             "lr_decay_every and lr_decay_factor (--lr-decay-every, --lr-decay-factor) belong to the step "
             f"schedule: give --lr-schedule step, or leave them out (lr_schedule is {self.lr_schedule!r})"),
            count("meta_batch", 1), optional("task_chunk"), count("inner_steps", 0), count("eval_inner_steps", 0),
            count("iterations", 0),
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
            # ADML and CAML (issue 15), TAML (issue 27)
            rate("adv_epsilon"), count("context_size", 1), rate("taml_lambda"),
            # learners without an inner loop (issue 26)
            one_of("covariance", ("radius", "diagonal")),
            count("unlabeled", 0), count("distractors", 0), count("cluster_steps", 1),
            one_of("refinement", ("soft-kmeans", "distractor-cluster", "masked")),
            (not self.distractors or self.unlabeled, "distractors (--distractors) are classes of unlabeled examples: "
                                                     "give --unlabeled too"),
            count("memory_heads", 0), count("episode_shift", 0),
            one_of("mann_write", ("key", "add")), one_of("mann_least_used", ("each", "all")),
            *[(getattr(self, field) == default or (self.algorithm == "mann" and self.memory_heads > 0),
               f"{flag(field)} sets how a MANN's heads write to memory: it needs --algorithm mann with "
               "--memory-heads 1 or more (the LSTM baseline has no memory)")
              for field, default in (("mann_write", "key"), ("mann_least_used", "each"))],
            one_of("inner_state", ("fresh", "persistent")), optional("eval_inner_batch"),
            (self.algorithm == "reptile" or (self.inner_state == "fresh" and self.eval_inner_batch is None),
             "inner_state and eval_inner_batch are Reptile's settings (its inner optimizer and mini-batches)"),
            (isinstance(self.transductive, bool), f"transductive must be True or False, got {self.transductive!r}"),
            # MAML++ (issue 27)
            rate("meta_lr_min"), count("epoch_iterations", 1), count("multi_step_loss_iterations", 0),
            count("first_order_iterations", 0),
            (isinstance(self.learned_step_rates, bool),
             f"learned_step_rates must be True or False, got {self.learned_step_rates!r}"),
            (isinstance(self.per_step_bn, bool), f"per_step_bn must be True or False, got {self.per_step_bn!r}"),
            one_of("activation", ("relu", "leaky_relu")),
            # Siamese networks (issue 26)
            one_of("siamese_loss", ("bce", "contrastive")),
            (isinstance(self.margin, (int, float)) and not isinstance(self.margin, bool) and math.isfinite(self.margin)
             and self.margin > 0, f"{flag('margin')} must be a finite number > 0, got {self.margin!r}"),
            (self.algorithm == "siamese" or self.siamese_loss == "bce",
             "siamese_loss (--siamese-loss) is the Siamese network's setting: use --algorithm siamese"),
            (self.siamese_loss == "contrastive" or self.margin == 1.0,
             "margin (--margin) is the contrastive loss's setting: use --siamese-loss contrastive"),
            # matching networks (issue 26)
            (isinstance(self.fce, bool), f"fce (--fce) must be True or False, got {self.fce!r}"),
            count("fce_steps", 1),
            (self.algorithm == "matching" or (self.fce is False and self.fce_steps == 5),
             "fce and fce_steps are matching networks' settings (--algorithm matching)"),
            one_of("matching_distance", ("cosine", "l2")),
            (self.algorithm == "matching" or self.matching_distance == "cosine",
             "matching_distance (--matching-distance) is matching networks' setting (--algorithm matching)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        try:
            parse_measure(self.taml_measure)
        except ValueError as exc:
            raise ValueError(f"taml_measure (--taml-measure): {exc}") from None
        self._check_limits(flag)
        self._check_maml_plus_plus(flag)
        refusal = ALGORITHMS[self.algorithm].chunk_refusal(self) if self.task_chunk is not None else None
        if refusal:
            raise ValueError(f"{flag('task_chunk')} {self.task_chunk}: {self.algorithm} {refusal}; leave it out "
                             "(a smaller --meta-batch also needs less memory, but changes the protocol)")
        family = TASK_FAMILIES[self.dataset]
        if self.train_ways is not None:
            if family.kind != "classification":
                raise ValueError(f"train_ways (--train-ways) is a number of classes: {self.dataset} is "
                                 f"{family.kind}; leave it out")
            if ALGORITHMS[self.algorithm].inner_loop:
                raise ValueError(f"train_ways (--train-ways) {self.train_ways}: {self.algorithm} adapts a head of "
                                 f"{self.ways} classes (ways), the same in training and test; only a learner "
                                 "without an inner loop (no head, e.g. protonet) trains on other ways: leave it out")
        if not ALGORITHMS[self.algorithm].inner_loop and family.kind != "classification":
            raise ValueError(f"{self.algorithm} answers a query with one of its support set's classes: it needs a "
                             f"classification dataset ({self.dataset} is {family.kind})")
        if self.algorithm == "nil" and family.kind != "classification":
            raise ValueError(f"NIL needs a classification dataset ({self.dataset} is {family.kind})")
        if self.algorithm == "adml" and family.kind != "classification":
            raise ValueError(f"ADML attacks images of a classification task with FGSM (clipped to [0, 1]); "
                             f"{self.dataset} is {family.kind}")
        if self.unlabeled and not getattr(family, "unlabeled_examples", False):
            raise ValueError(f"unlabeled (--unlabeled): {self.dataset} tasks have no unlabeled examples to draw")
        if self.unlabeled and not getattr(ALGORITHMS[self.algorithm], "reads_unlabeled", False):
            readers = sorted(k for k, a in ALGORITHMS.items() if getattr(a, "reads_unlabeled", False))
            raise ValueError(f"unlabeled (--unlabeled): {self.algorithm} would ignore unlabeled examples; "
                             f"algorithms that read them: {', '.join(readers)}")
        if self.algorithm == "siamese" and (family.kind != "classification" or self.ways < 2):
            raise ValueError(f"a Siamese network learns from same and different pairs of a classification task with "
                             f"2 ways or more ({self.dataset} is {family.kind}, ways={self.ways})")
        if self.algorithm == "caml" and family.kind != "regression":
            raise ValueError(f"CAML here conditions an MLP regressor on its context: it needs a regression dataset "
                             f"({self.dataset} is {family.kind})")
        if self.algorithm == "taml" and parse_measure(self.taml_measure)[0] == "entropy" \
                and family.kind != "classification":
            raise ValueError(f"taml_measure (--taml-measure) entropy is the entropy of predicted labels: it needs a "
                             f"classification dataset ({self.dataset} is {family.kind}); use an inequality measure "
                             "such as theil")
        online = getattr(family, "online", False)  # episodes predicted step by step, labelled one step late
        if online != (self.algorithm == "mann"):
            raise ValueError(f"{self.dataset} and {self.algorithm} do not fit: "
                             + ("its episodes are learned within the sequence by a memory-augmented network: use "
                                "--algorithm mann" if online else "mann learns online episodes (a dataset whose "
                                "labels arrive one step late); this one has support and query sets"))
        if self.episode_shift != EPISODE_SHIFT and not online:  # the default passes, for every other dataset
            raise ValueError(f"episode_shift (--episode-shift) moves the drawings of online episodes; {self.dataset} "
                             "has none: leave it out")
        if self.algorithm == "mann" and (self.inner_steps or self.eval_inner_steps):
            raise ValueError("mann has no inner steps (the network learns within the episode): inner_steps "
                             "(--inner-steps) and eval_inner_steps (--eval-inner-steps) must be 0")
        family.check_config(self)
        return self

    def _check_maml_plus_plus(self, flag) -> None:
        """Refuse MAML++'s options where they mean nothing or contradict another setting (after the type checks)."""
        options = {"multi_step_loss_iterations": self.multi_step_loss_iterations != 0,
                   "first_order_iterations": self.first_order_iterations != 0,
                   "learned_step_rates": self.learned_step_rates, "per_step_bn": self.per_step_bn}
        given = [flag(name) for name, on in options.items() if on]
        if self.lr_schedule == "cosine" and self.meta_lr_min > self.meta_lr:
            raise ValueError(f"{flag('meta_lr_min')} {self.meta_lr_min:g} is above {flag('meta_lr')} "
                             f"{self.meta_lr:g}: the cosine schedule decays from meta_lr to meta_lr_min")
        if self.algorithm != "maml++":
            if given:
                raise ValueError(f"{', '.join(given)}: MAML++'s options; use --algorithm maml++ (with them all off "
                                 "it is MAML)")
            return
        if self.inner_steps < 1:
            raise ValueError(f"{flag('inner_steps')} must be >= 1 for MAML++, got {self.inner_steps}")
        for name in ("multi_step_loss_iterations", "first_order_iterations"):
            if getattr(self, name) % self.epoch_iterations:
                raise ValueError(f"{flag(name)} {getattr(self, name)} is not a whole number of epochs of "
                                 f"{flag('epoch_iterations')} {self.epoch_iterations}: MAML++'s schedules change "
                                 "at epoch boundaries")
        if self.first_order_iterations and self.first_order:
            raise ValueError(f"{flag('first_order_iterations')}: derivative-order annealing switches from first to "
                             "second order, but first_order (--first-order) keeps it first order throughout: "
                             "give one")
        if self.per_step_bn:
            if self.adapt_norm:
                raise ValueError(f"{flag('per_step_bn')}: per-step batch-norm weights are meta-learned, not adapted "
                                 "by the inner loop (each step replaces them): it needs adapt_norm False")
            if not TASK_FAMILIES[self.dataset].build_model(self).norm_keys():
                raise ValueError(f"{flag('per_step_bn')}: the {self.dataset} model has no batch norm")
        if (self.per_step_bn or self.learned_step_rates) and self.eval_inner_steps > self.inner_steps:
            what = " and ".join(n for n, on in (("batch-norm weights", self.per_step_bn),
                                                ("inner rates", self.learned_step_rates)) if on)
            raise ValueError(f"{flag('eval_inner_steps')} {self.eval_inner_steps} is more than the "
                             f"{self.inner_steps} inner steps MAML++ learns per-step {what} for: give "
                             f"--eval-inner-steps {self.inner_steps} or less")

    def _check_limits(self, flag) -> None:
        """Refuse a number above :data:`LIMITS`, and a meta-batch too large to hold (runs after the type checks)."""
        for name, most in LIMITS.items():
            values = self.hidden if name == "hidden" else (getattr(self, name),)
            if any(v is not None and v > most for v in values):
                raise ValueError(f"{flag(name)} must be at most {most:,}, got {getattr(self, name)!r}")
        family = TASK_FAMILIES[self.dataset]
        per_example = math.prod(family.input_shape) if family.input_shape else 1
        examples = (max(self.ways, self.train_ways or 0) if family.kind == "classification" else 1) * (
            max(self.shots, self.train_shots or 0) + max(self.queries, self.train_queries or 0))
        values = self.meta_batch * examples * per_example
        if values > MAX_BATCH_VALUES:
            raise ValueError(f"a meta-batch of {self.meta_batch} tasks with {examples:,} examples each is "
                             f"{values:,} input values, more than {MAX_BATCH_VALUES:,} (1 GiB of float32): "
                             "use fewer --shots, --queries, --ways or a smaller --meta-batch")
