"""Evaluation on fixed held-out tasks: the numbers, their table, and a run's checkpoint evaluated."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import backend
from ..algorithms import summarize
from .checkpoint import load_checkpoint
from .config import Config
from .factories import TaskSource, build_algorithm, build_model, task_family


def evaluate_tasks(algo, meta_params, tasks: TaskSource, split: str, num_tasks: int, steps: int,
                   chunk: int | None = None) -> dict:
    """Mean and 95% CI of query loss and accuracy before adaptation and after each inner step.

    ``chunk``: tasks per batch (default: the task family's evaluation chunk).
    """
    parts = [algo.evaluate(meta_params, batch, steps) for batch in tasks.fixed(split, num_tasks, chunk)]
    out = {"split": split, "tasks": num_tasks, "steps": steps}
    for key in parts[0]:
        values = np.concatenate([p[key] for p in parts], axis=1)  # (steps + 1, num_tasks)
        out[key] = [summarize(row) for row in values]
    return out


def format_evaluation(ev: dict, cfg: Config | None = None) -> str:
    """A table of the evaluation: one row per inner step (0 = before adaptation)."""
    lines = [f"{ev['split']} tasks: {ev['tasks']}, mean ± 95% CI (1.96 std / sqrt(n))"]
    has_loss, has_acc = "loss" in ev, "accuracy" in ev
    metric = "MSE" if cfg is not None and task_family(cfg).kind == "regression" else "loss"
    header = f"  {'inner steps':>16}" + (f"  {metric:>18}" if has_loss else "") + (f"  {'accuracy':>18}" if has_acc else "")
    lines.append(header)
    rows = len(ev["loss"] if has_loss else ev["accuracy"])
    for s in range(rows):
        name = "0 (pre-update)" if s == 0 and rows > 1 else str(s)
        line = f"  {name:>16}"
        if has_loss:
            line += f"  {ev['loss'][s]['mean']:>9.4f} ± {ev['loss'][s]['ci95']:<6.4f}"
        if has_acc:
            line += f"  {100 * ev['accuracy'][s]['mean']:>8.2f}% ± {100 * ev['accuracy'][s]['ci95']:<5.2f}%"
        lines.append(line)
    return "\n".join(lines)


def evaluate_run(logdir, *, device=None, data_dir=None, split="test", num_tasks=None, steps=None,
                 algorithm=None, shots=None, echo=print) -> dict:
    """Evaluate a run's checkpoint on fixed ``split`` tasks (``algorithm='nil'`` for NIL on an ANIL run)."""
    logdir = Path(logdir)
    ckpt_path = logdir / "checkpoint.npz"
    if not ckpt_path.exists():
        raise FileNotFoundError(f"no checkpoint at {ckpt_path}: train first (tinymeta train --logdir {logdir})")
    device = backend.check_device(device)
    ckpt = load_checkpoint(ckpt_path, device=device)
    cfg = Config.from_dict(ckpt.config)
    if algorithm:
        cfg = cfg.replace(algorithm=algorithm)
    if shots:
        cfg = cfg.replace(shots=shots)
    cfg.validate()
    algo = build_algorithm(cfg, build_model(cfg))
    algo.load_state_dict(ckpt.algorithm_state or {})  # Reptile's persistent inner state: evaluation starts from it
    tasks = TaskSource(cfg, device, data_dir)
    steps = cfg.eval_inner_steps if steps is None else steps
    n = cfg.test_tasks if num_tasks is None else num_tasks
    ev = evaluate_tasks(algo, ckpt.params, tasks, split, n, steps)
    ev.update({"iteration": int(ckpt.extra["iteration"]), "train_seconds": round(float(ckpt.extra["elapsed"]), 2),
               "device": device, "algorithm": cfg.algorithm, "shots": cfg.shots})
    echo(format_evaluation(ev, cfg))
    return ev
