"""The presets: the papers' protocols, one published table cell each.

Each preset is one cell of a published table (see the results page and the papers
cited in each algorithm's module). ``tinymeta presets`` lists them; flags override
any field.
"""
from __future__ import annotations

from .config import Config


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


def _caml_sine(shots, context=5):
    """CAVIA's sine protocol (lmzintgraf/cavia, regression/arguments.py; line numbers at that repository's HEAD).

    iterations 50000 (arguments.py:11), 25 tasks per meta-update (:13), 10 query points while
    meta-training (k_meta_test, :16), inner lr 1.0 (:19), meta lr 0.001 with Adam (:20; cavia.py:59),
    1 inner step (:22), 5 context parameters (:24), hidden layers 40, 40 (:25), second order
    (first_order False, :27; cavia.py:99 create_graph=not first_order). K support points for the
    table's K-shot column (k_meta_train / k_shot_eval, :15, :17; the code's default is 10).
    """
    return Config(algorithm="caml", dataset="sine", shots=shots, queries=10, meta_batch=25, inner_lr=1.0,
                  inner_steps=1, eval_inner_steps=10, meta_lr=1e-3, iterations=50000, hidden=(40, 40),
                  context_size=context, val_interval=1000, val_tasks=100, log_interval=100)


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
    # CAML (CAVIA) on sine: 5 context parameters (the code's default), and the other context sizes of the
    # paper's sine table (2 and 50: unconfirmed against the paper's PDF)
    for k in (5, 10, 20):
        presets[f"caml-sine-{k}shot"] = _caml_sine(k)
        for context in (2, 50):
            presets[f"caml-sine-{k}shot-context{context}"] = _caml_sine(k, context)
    # ADML on Omniglot: MAML's protocol for the cell (whatever MAML's preset is), plus the FGSM epsilon.
    # epsilon 0.2 on images in [0, 1], as the book's ADML notebook; the paper's values and pixel scale are
    # unconfirmed (its text could not be read here), and its experiments are on MiniImageNet and CIFAR-100.
    for ways in (5, 20):
        for shots in (1, 5):
            presets[f"adml-omniglot-{ways}w{shots}s"] = presets[f"maml-omniglot-{ways}w{shots}s"].replace(
                algorithm="adml", adv_epsilon=0.2)
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
