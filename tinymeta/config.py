"""Run configurations and the presets that encode the papers' protocols.

Each preset is one cell of a published table (see the results page and the
papers cited in each algorithm's module). Flags override any field.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Config:
    """Everything that defines a meta-training run (saved with every checkpoint)."""

    algorithm: str = "maml"            # maml | fomaml | meta-sgd | reptile | anil | nil | gradient-agreement
    dataset: str = "sine"              # sine | omniglot | miniimagenet
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
        """Raise ValueError naming the first inconsistent setting."""
        from .algorithms import ALGORITHMS  # noqa: PLC0415
        checks = [
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {sorted(ALGORITHMS)}"),
            (self.dataset in ("sine", "omniglot", "miniimagenet"), "dataset must be sine, omniglot or miniimagenet"),
            (self.meta_optimizer in ("adam", "sgd"), "meta_optimizer must be adam or sgd"),
            (self.lr_schedule in ("constant", "linear"), "lr_schedule must be constant or linear"),
            (self.inner_optimizer in ("adam", "sgd"), "inner_optimizer must be adam or sgd"),
            (self.iterations >= 0 and self.meta_batch >= 1, "iterations >= 0 and meta_batch >= 1 are needed"),
            (self.shots >= 1 and self.queries >= 1 and self.ways >= 1, "ways, shots and queries must be >= 1"),
            (self.inner_steps >= 0 and self.eval_inner_steps >= 0, "inner steps must be >= 0"),
            (self.log_interval >= 1 and self.val_interval >= 0 and self.checkpoint_interval >= 0,
             "log_interval >= 1, val_interval >= 0 and checkpoint_interval >= 0 are needed"),
            (not (self.algorithm == "nil" and self.dataset == "sine"), "NIL needs a classification dataset"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.dataset in ("omniglot", "miniimagenet"):
            per_class = 20 if self.dataset == "omniglot" else 600
            for k in {self.shots, self.train_shots or self.shots}:
                if k + 1 > per_class:
                    raise ValueError(f"{k} shots leave no query example: {self.dataset} has {per_class} per class")
        return self


# ---- presets: the papers' protocols -------------------------------------------------------------
def _sine(algorithm, shots):
    base = Config(algorithm=algorithm, dataset="sine", shots=shots, queries=10, meta_batch=25,
                  inner_lr=0.01, inner_steps=1, eval_inner_steps=10, meta_lr=1e-3, iterations=70000,
                  val_interval=1000, val_tasks=100, log_interval=100)
    if algorithm == "fomaml":
        base = base.replace(first_order=True)
    if algorithm == "meta-sgd":  # its rates are learned for one step (the paper evaluates one step)
        base = base.replace(eval_inner_steps=1)
    if algorithm == "reptile":  # Reptile's sine demo: one epoch of SGD (lr 0.02) over 50 points in batches of 10
        base = base.replace(inner_optimizer="sgd", inner_lr=0.02, inner_steps=5, inner_batch=10, train_shots=50,
                            meta_optimizer="sgd", meta_lr=0.1, lr_schedule="linear", iterations=30000)
    return base


def _omniglot(algorithm, ways, shots):
    five = ways == 5
    base = Config(algorithm=algorithm, dataset="omniglot", ways=ways, shots=shots, queries=15,
                  meta_batch=32 if five else 16, inner_lr=0.4 if five else 0.1,
                  inner_steps=1 if five else 5, eval_inner_steps=10, meta_lr=1e-3, iterations=60000,
                  filters=64, val_interval=1000, val_tasks=100, log_interval=100)
    if algorithm == "fomaml":
        base = base.replace(first_order=True)
    if algorithm == "meta-sgd":
        base = base.replace(eval_inner_steps=1)
    if algorithm == "reptile":  # Reptile paper, App. A: Adam(beta1=0) inner loop, epsilon 1 -> 0
        base = base.replace(inner_optimizer="adam", inner_lr=1e-3 if five else 5e-4,
                            inner_steps=5 if five else 10, inner_batch=10 if five else 20, train_shots=10,
                            meta_batch=5, meta_optimizer="sgd", meta_lr=1.0, lr_schedule="linear",
                            iterations=100000 if five else 200000, eval_inner_steps=50)
    return base


def _miniimagenet(algorithm, shots):
    base = Config(algorithm=algorithm, dataset="miniimagenet", ways=5, shots=shots, queries=15,
                  meta_batch=4 if shots == 1 else 2, inner_lr=0.01, inner_steps=5, eval_inner_steps=10,
                  meta_lr=1e-3, iterations=60000, filters=32, pool=True, val_interval=1000, val_tasks=100)
    if algorithm == "fomaml":
        base = base.replace(first_order=True)
    return base


def _build_presets():
    presets = {}
    for algo in ("maml", "fomaml", "meta-sgd", "reptile", "anil", "gradient-agreement"):
        for k in (5, 10, 20):
            presets[f"{algo}-sine-{k}shot"] = _sine(algo, k)
    for k in (5, 10, 20):  # MAML's baseline: one net trained on all tasks jointly, fine-tuned at test time
        presets[f"pretrained-sine-{k}shot"] = _sine("maml", k).replace(inner_steps=0)
    for algo in ("maml", "fomaml", "meta-sgd", "reptile", "anil", "nil", "gradient-agreement"):
        for ways in (5, 20):
            for shots in (1, 5):
                presets[f"{algo}-omniglot-{ways}w{shots}s"] = _omniglot(algo, ways, shots)
    for algo in ("maml", "fomaml"):
        for shots in (1, 5):
            presets[f"{algo}-miniimagenet-5w{shots}s"] = _miniimagenet(algo, shots)
    return presets


PRESETS: dict[str, Config] = _build_presets()


def default_config(algorithm: str, dataset: str, ways: int | None, shots: int | None) -> Config:
    """The protocol that best matches what was asked for without --preset.

    The nearest table cell for this algorithm (MAML's, with the algorithm
    swapped in, where the papers have no such cell).
    """
    if dataset == "sine":
        cell = f"sine-{shots if shots in (5, 10, 20) else 10}shot"
    elif dataset == "miniimagenet":
        cell = f"miniimagenet-5w{5 if shots == 5 else 1}s"
    else:
        cell = f"omniglot-{20 if ways == 20 else 5}w{5 if shots == 5 else 1}s"
    preset = PRESETS.get(f"{algorithm}-{cell}")
    return preset if preset is not None else PRESETS[f"maml-{cell}"].replace(algorithm=algorithm)
