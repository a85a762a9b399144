"""Evaluation on fixed held-out tasks: the numbers, their table, and a run's checkpoint evaluated."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend
from ..algorithms import evaluate_under_attack, summarize
from ..tensor import tensor
from .config import Config
from .factories import TaskSource, build_algorithm, build_model, task_family
from .runs import load_run_checkpoint, reference_params


def _in_chunks(batches, task_chunk: int | None):
    """Each batch of ``batches``, split into consecutive chunks of at most ``task_chunk`` tasks (None: whole)."""
    for batch in batches:
        if task_chunk is None or task_chunk >= batch.num_tasks:
            yield batch
            continue
        for start in range(0, batch.num_tasks, task_chunk):
            yield batch.tasks(slice(start, start + task_chunk))


def evaluate_tasks(algo, meta_params, tasks: TaskSource, split: str, num_tasks: int, steps: int,
                   chunk: int | None = None, progress: bool = False, attack_epsilon: float | None = None,
                   task_chunk: int | None = None) -> dict:
    """Mean and 95% CI of query loss and accuracy before adaptation and after each inner step.

    ``chunk``: tasks per batch drawn (default: the task family's evaluation chunk).
    ``task_chunk``: tasks per evaluation pass (default: the run's ``task_chunk``, None = each
    batch drawn at once): each batch is drawn as without it, so the tasks are the same, and
    evaluated in slices of ``task_chunk`` tasks, so a pass holds the activations of that many.
    Every task is evaluated on its own (batch norm per task), so the numbers do not change.
    ``progress``: a progress bar over the batches (shown on a terminal only).
    ``attack_epsilon``: also the FGSM-attacked query loss and accuracy, the attack made
    against each adapted model (ADML's evaluation, for any algorithm).
    """
    chunk = chunk or tasks.eval_chunk
    task_chunk = task_chunk or getattr(tasks.cfg, "task_chunk", None)
    batches = tasks.fixed(split, num_tasks, chunk)
    if progress:
        batches = tqdm(batches, total=math.ceil(num_tasks / chunk), desc=f"evaluating {num_tasks} {split} tasks",
                       unit="chunk", disable=None, leave=False, dynamic_ncols=True)
    if attack_epsilon is None:
        parts = [algo.evaluate(meta_params, batch, steps) for batch in _in_chunks(batches, task_chunk)]
    else:
        parts = [evaluate_under_attack(algo, meta_params, batch, steps, attack_epsilon)
                 for batch in _in_chunks(batches, task_chunk)]
    rows = len(next(iter(parts[0].values())))  # steps + 1, or 1 for a learner without an inner loop
    out = {"split": split, "tasks": num_tasks, "steps": rows - 1}
    if attack_epsilon is not None:
        out["attack_epsilon"] = attack_epsilon
    for key in parts[0]:
        values = np.concatenate([p[key] for p in parts], axis=1)  # (steps + 1, num_tasks)
        out[key] = [summarize(row) for row in values]
    return out


def is_finite(ev: dict) -> bool:
    """Whether every mean of an evaluation is a finite number (a diverged adaptation gives NaN or inf)."""
    return all(math.isfinite(s["mean"]) for k in ("loss", "accuracy") for s in ev.get(k, []))


def format_evaluation(ev: dict, cfg: Config | None = None) -> str:
    """A table of the evaluation: one row per inner step (0 = before adaptation)."""
    lines = [f"{ev['split']} tasks: {ev['tasks']}, mean ± 95% CI (1.96 std / sqrt(n))"]
    has_loss, has_acc, has_att = "loss" in ev, "accuracy" in ev, "attacked_accuracy" in ev
    metric = "MSE" if cfg is not None and task_family(cfg).kind == "regression" else "loss"
    header = f"  {'inner steps':>16}" + (f"  {metric:>18}" if has_loss else "") + (f"  {'accuracy':>18}" if has_acc else "")
    if has_att:
        header += f"  {'FGSM-attacked accuracy':>22}"
    lines.append(header)
    rows = len(ev["loss"] if has_loss else ev["accuracy"])
    for s in range(rows):
        name = "0 (pre-update)" if s == 0 and rows > 1 else str(s) if rows > 1 else "no inner loop"
        line = f"  {name:>16}"
        if has_loss:
            line += f"  {ev['loss'][s]['mean']:>9.4f} ± {ev['loss'][s]['ci95']:<6.4f}"
        if has_acc:
            line += f"  {100 * ev['accuracy'][s]['mean']:>8.2f}% ± {100 * ev['accuracy'][s]['ci95']:<5.2f}%"
        if has_att:
            a = ev["attacked_accuracy"][s]
            line += f"  {100 * a['mean']:>12.2f}% ± {100 * a['ci95']:<5.2f}%"
        lines.append(line)
    if "instance_accuracy" in ev:  # online learners: accuracy at the k-th drawing of a class in an episode
        lines.append("  accuracy at the k-th drawing of a class in an episode:")
        for k, s in enumerate(ev["instance_accuracy"], start=1):
            lines.append(f"  {k:>16}  {100 * s['mean']:>8.2f}% ± {100 * s['ci95']:<5.2f}%")
    return "\n".join(lines)


def with_zero_head(algo, params: dict) -> dict:
    """``params`` with the model's head (final linear layer, weights and bias) set to zeros.

    Only for a learner that adapts a head in an inner loop; anything else raises ValueError.
    """
    try:
        keys = algo.model.head_keys()
    except (NotImplementedError, AttributeError):  # a model without a final linear layer
        keys = None
    if not (algo.inner_loop and algo.adapts_head) or keys is None:
        raise ValueError(f"zero_head: {algo.name} has no head that an inner loop adapts from its "
                         "meta-learned value; it applies to MAML, first-order MAML, Meta-SGD, ANIL, ... runs")
    out = dict(params)
    for k in keys:  # a fresh leaf, as the checkpoint's own: the inner loop differentiates from it
        p = params[k]
        out[k] = tensor(np.zeros(p.shape), dtype=p.dtype, device=p.device).requires_grad_(p.requires_grad)
    return out


def _check_ways_fit(algo, model, params: dict, cfg: Config, ckpt_path) -> None:
    """Raise ValueError unless the run's parameters are the shapes a ``cfg.ways``-way model has: a head
    of one output per class cannot answer another number of classes."""
    for name, ref in reference_params(cfg, model, algo).items():
        have = tuple(params[name].shape) if name in params else None
        if have != tuple(ref.shape):
            raise ValueError(f"ways={cfg.ways}: the network of {ckpt_path} has parameter {name!r} of shape {have}, "
                             f"a {cfg.ways}-way one {tuple(ref.shape)}: its shapes depend on the number of classes "
                             "(a head of one output per class, or labels as input), so it answers only the number "
                             "of classes it was trained on. Another number of ways can be "
                             "evaluated for learners that compare a query with the support set (prototypical, "
                             "matching, relation and Siamese networks)")


def evaluate_run(logdir, *, device=None, data_dir=None, split="test", num_tasks=None, steps=None,
                 algorithm=None, shots=None, ways=None, attack_epsilon=None, transductive=None,
                 within_alphabet=None, zero_head=False, progress=True, echo=print) -> dict:
    """Evaluate a run's checkpoint on fixed ``split`` tasks (``algorithm='nil'`` for NIL on an ANIL run).

    Every setting is checked (:meth:`Config.validate`) before the data loads; ``progress``
    shows a progress bar on a terminal. A non-finite result raises FloatingPointError.
    ``attack_epsilon``: also report FGSM-attacked accuracy (attack against each adapted model).
    ``transductive``: False passes each query example through the net with its task's support
    set instead of with the other queries (default: the run's setting, True in every preset).
    ``data_dir``: default, the folder the run was trained with (remembered in its checkpoint).
    ``split``: 'test', 'val' or 'train': fixed tasks of the training classes (drawn with the
    validation seed; ``num_tasks`` defaults to the run's ``test_tasks``), to see how much of
    the test's gap is unseen classes rather than the task itself.
    ``shots``, ``ways``: evaluate on tasks of another number of shots or classes; ``ways`` only for
    learners that compare a query with the support set (prototypical, matching, relation, Siamese
    networks), whose parameters do not depend on the number of classes.
    ``within_alphabet`` (Omniglot runs): True draws each task's classes from one alphabet (the
    one-shot test of Lake et al. and Koch et al.), False irrespective of alphabet; default, as
    the run's ``split_mode`` draws that split.
    ``zero_head``: adapt from a head of zeros instead of the meta-learned one: every class
    starts from the same logits, so the labels' order in a task no longer matters before the
    first step; the body is the run's. (Kao, Chiu & Chen, ICLR 2022, arXiv:2106.15367, zero the
    head before every outer step of training too, their "zeroing trick"; here, at test only.)
    """
    logdir = Path(logdir)
    ckpt_path = logdir / "checkpoint.npz"
    if not ckpt_path.exists():
        raise FileNotFoundError(f"no checkpoint at {ckpt_path}: is {logdir} a run folder? Train first "
                                f"(tinymeta train --logdir {logdir})")
    if split not in ("test", "val", "train"):
        raise ValueError(f"split must be 'test', 'val' or 'train', got {split!r}")
    device = backend.check_device(device)
    ckpt, cfg = load_run_checkpoint(ckpt_path, device=device)  # every part checked before the data loads
    if split == "train" and num_tasks is not None and (not isinstance(num_tasks, int) or num_tasks < 1):
        raise ValueError(f"num_tasks must be a positive integer, got {num_tasks!r}")
    changes = {"algorithm": algorithm, "shots": shots, "ways": ways, "eval_inner_steps": steps,
               "transductive": transductive}
    if split != "train":
        changes[f"{split}_tasks"] = num_tasks
    cfg = cfg.replace(**{k: v for k, v in changes.items() if v is not None}).validate()  # checked like any setting
    grouped = hasattr(task_family(cfg), "within_alphabet")  # task families whose classes have alphabets
    if within_alphabet is not None and not grouped:
        raise ValueError(f"within_alphabet: tasks within one alphabet are Omniglot's; this run's tasks are "
                         f"{cfg.dataset!r}")
    if ways is not None and task_family(cfg).kind != "classification":
        raise ValueError(f"ways={ways}: {cfg.dataset} tasks are regression, with no classes to count")
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    if ways is not None:
        _check_ways_fit(algo, model, ckpt.params, cfg, ckpt_path)
    if steps is not None and not algo.inner_loop:  # it would be ignored: say so instead
        raise ValueError(f"--steps {steps}: {cfg.algorithm} has no inner loop (it reads the support set in one "
                         "pass); leave --steps out")
    algo.load_state_dict(ckpt.algorithm_state or {})  # Reptile's persistent inner state: evaluation starts from it
    params = ckpt.params
    if zero_head:
        params = with_zero_head(algo, params)
    if attack_epsilon is not None and task_family(cfg).kind != "classification":
        raise ValueError("--attack-epsilon: FGSM attacks images of a classification task")
    remembered = ckpt.extra.get("data_dir")  # the --data-dir the run was trained with
    if data_dir is None and isinstance(remembered, str) and Path(remembered).is_dir():
        data_dir = remembered
    tasks = TaskSource(cfg, device, data_dir, verbose=progress)
    if within_alphabet is not None:
        tasks.evaluation.within_alphabet(split, bool(within_alphabet))
    steps = cfg.eval_inner_steps
    n = (num_tasks or cfg.test_tasks) if split == "train" else getattr(cfg, f"{split}_tasks")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverging adaptation: said below
        ev = evaluate_tasks(algo, params, tasks, split, n, steps, progress=progress,
                            attack_epsilon=attack_epsilon)
    if not is_finite(ev):
        raise FloatingPointError(f"the evaluation of {ckpt_path} is not finite: its adaptation diverges "
                                 f"(inner_lr {cfg.inner_lr:g}, {steps} steps); try fewer --steps")
    ev.update({"iteration": int(ckpt.extra["iteration"]), "train_seconds": round(float(ckpt.extra["elapsed"]), 2),
               "device": device, "algorithm": cfg.algorithm, "shots": cfg.shots, "ways": cfg.ways,
               "transductive": cfg.transductive})
    if zero_head:
        ev["zero_head"] = True
    if grouped:
        ev["within_alphabet"] = split in tasks.evaluation.class_groups
    echo(format_evaluation(ev, cfg))
    return ev
