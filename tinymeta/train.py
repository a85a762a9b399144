"""One meta-training loop for every algorithm: sample a meta-batch, take the
algorithm's meta-gradient, step the outer optimizer; validate, log, checkpoint;
finally evaluate on held-out test tasks.

A run lives in one folder (``logdir``):
  config.json     the run's Config
  log.jsonl       one JSON object per line: training metrics every ``log_interval``
                  iterations ("split": "train"), validation every ``val_interval`` ("val")
  checkpoint.npz  meta-parameters, optimizer state, RNG state, config, iteration
  test.json       the final evaluation: mean and 95% CI per inner step
  curves.png      the learning curves
``time`` in the log counts seconds spent in meta-training iterations only
(validation, logging and checkpoints excluded), so runs compare fairly by time.
"""
from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import numpy as np

from . import backend
from ._io import write_text
from .algorithms import ALGORITHMS, Objective, summarize
from .checkpoint import config_diff, load_checkpoint, restore_rng, save_checkpoint
from .config import Config
from .nn import MLP, ConvNet
from .optim import SGD, Adam

# Validation and test tasks come from fixed seeds, independent of the training seed,
# so every run is measured on the same tasks.
VAL_SEED, TEST_SEED = 20170310, 20170309
# Settings a resumed run may change: they do not alter the numbers it computes.
RESUMABLE_CHANGES = {"iterations", "log_interval", "val_interval", "checkpoint_interval", "test_tasks",
                     "val_tasks"}


# ---- building blocks from a Config ---------------------------------------------------------------
def build_model(cfg: Config):
    if cfg.dataset == "sine":
        return MLP((1, *cfg.hidden, 1))
    if cfg.dataset == "omniglot":
        return ConvNet(n_way=cfg.ways, in_channels=1, filters=cfg.filters, pool=cfg.pool, image_size=28)
    return ConvNet(n_way=cfg.ways, in_channels=3, filters=cfg.filters, pool=cfg.pool, image_size=84)


def build_algorithm(cfg: Config, model):
    objective = Objective("regression" if cfg.dataset == "sine" else "classification")
    cls = ALGORITHMS[cfg.algorithm]
    if cfg.algorithm == "reptile":
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   inner_optimizer=cfg.inner_optimizer, inner_batch=cfg.inner_batch)
    return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps, first_order=cfg.first_order)


class TaskSource:
    """Meta-batches for training, and fixed task sets for validation and testing."""

    def __init__(self, cfg: Config, device: str, data_dir=None, verbose=True):
        self.cfg, self.device = cfg, device
        self.train_shots = cfg.train_shots or cfg.shots
        if cfg.dataset == "sine":
            from .tasks import Sinusoid  # noqa: PLC0415
            self.family = Sinusoid(cfg.shots, cfg.queries, dtype=cfg.dtype, device=device)
            self.train_queries = cfg.queries
        else:
            from .tasks import MiniImageNet, Omniglot  # noqa: PLC0415
            if cfg.dataset == "omniglot":
                self.family = Omniglot(cfg.ways, cfg.shots, cfg.queries, data_dir=data_dir, split_mode=cfg.split_mode,
                                       dtype=cfg.dtype, device=device, verbose=verbose)
                per_class = 20
            else:
                self.family = MiniImageNet(cfg.ways, cfg.shots, cfg.queries, data_dir=data_dir, dtype=cfg.dtype,
                                           device=device, verbose=verbose)
                per_class = 600
            # Reptile trains on more shots and needs no query set: keep K + Q within a class
            self.train_queries = max(1, min(cfg.queries, per_class - self.train_shots))

    def train(self, rng):
        if self.cfg.dataset == "sine":
            return self.family.sample(self.cfg.meta_batch, rng, k_support=self.train_shots,
                                      k_query=self.train_queries)
        return self.family.sample(self.cfg.meta_batch, rng, "train", k_support=self.train_shots,
                                  k_query=self.train_queries)

    def fixed(self, split: str, num_tasks: int, chunk: int):
        """The same ``num_tasks`` tasks of ``split`` every time, in chunks of at most ``chunk``."""
        seed = TEST_SEED if split == "test" else VAL_SEED
        if self.cfg.dataset == "sine":
            tasks = self.family.eval_set(num_tasks, seed=seed)
            for start in range(0, num_tasks, chunk):
                yield tasks.tasks(slice(start, min(start + chunk, num_tasks)))
            return
        rng = np.random.default_rng(seed)
        for start in range(0, num_tasks, chunk):
            yield self.family.sample(min(chunk, num_tasks - start), rng, split)


def evaluate_tasks(algo, meta_params, tasks: TaskSource, split: str, num_tasks: int, steps: int, chunk: int) -> dict:
    """Mean and 95% CI of query loss and accuracy before adaptation and after each inner step."""
    parts = [algo.evaluate(meta_params, batch, steps) for batch in tasks.fixed(split, num_tasks, chunk)]
    out = {"split": split, "tasks": num_tasks, "steps": steps}
    for key in parts[0]:
        values = np.concatenate([p[key] for p in parts], axis=1)  # (steps + 1, num_tasks)
        out[key] = [summarize(row) for row in values]
    return out


# ---- files -------------------------------------------------------------------------------------------
def read_log(logdir) -> list[dict]:
    path = Path(logdir) / "log.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no log.jsonl in {logdir}: is it a tinymeta run folder?")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {n}: not JSON ({exc})") from None
    return rows


def _truncate_log(logdir: Path, iteration: int):
    """Drop log lines written after the checkpoint a run resumes from."""
    path = logdir / "log.jsonl"
    if path.exists():
        keep = [r for r in read_log(logdir) if r.get("iteration", 0) <= iteration]
        write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


class _StopFlag:
    """Ctrl-C asks the loop to stop at the next iteration boundary (a second one aborts)."""

    def __init__(self):
        self.stop = False

    def __enter__(self):
        try:
            self.prev = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self.prev = None
        return self

    def _handle(self, *_):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        if self.prev is not None:
            signal.signal(signal.SIGINT, self.prev)
        return False


# ---- the loop -----------------------------------------------------------------------------------------
def _make_optimizer(cfg, meta_params):
    if cfg.meta_optimizer == "adam":
        return Adam(meta_params, lr=cfg.meta_lr)
    return SGD(meta_params, lr=cfg.meta_lr)


def _scheduled_lr(cfg, iteration):
    if cfg.lr_schedule == "linear":
        return cfg.meta_lr * (1.0 - iteration / max(cfg.iterations, 1))
    return cfg.meta_lr


def _oom_message(cfg, device, iteration):
    order = "first" if cfg.first_order or cfg.algorithm == "reptile" else "second"
    return (f"out of {device} memory at iteration {iteration}: meta-batch {cfg.meta_batch}, "
            f"{cfg.inner_steps} inner step(s), {order} order. A second-order graph keeps every inner "
            "step's activations alive; try --first-order, fewer --inner-steps or a smaller --meta-batch")


def _check_resume(cfg: Config, saved: Config, path):
    a, b = saved.to_dict(), cfg.to_dict()
    for k in RESUMABLE_CHANGES:
        a.pop(k, None)
        b.pop(k, None)
    diffs = config_diff(a, b, labels=("checkpoint", "now"))
    if diffs:
        raise ValueError(f"cannot resume {path}: it was made with another configuration:\n  "
                         + "\n  ".join(diffs) + "\nresume with the same settings, or start a new --logdir")


RUN_FILES = ("checkpoint.npz", "log.jsonl", "config.json", "test.json", "curves.png")


def train(cfg: Config, logdir, *, device=None, data_dir=None, resume=False, overwrite=False, stop_at=None,
          time_limit=None, progress=True, evaluate_at_end=True, echo=print) -> dict:
    """Meta-train ``cfg`` in ``logdir``; returns {'status', 'iteration', 'test' (if evaluated)}.

    ``resume`` continues from logdir/checkpoint.npz with exactly the numbers an
    uninterrupted run would compute. ``stop_at`` (an iteration) and
    ``time_limit`` (seconds) end this sitting early with a checkpoint, as
    Ctrl-C does; run again with ``resume=True`` to continue. ``overwrite``
    replaces a previous run's files in ``logdir`` (and nothing else there).
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other: choose one")
    cfg.validate()
    device = backend.check_device(device)
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    ckpt_path = logdir / "checkpoint.npz"
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    tasks = TaskSource(cfg, device, data_dir, verbose=progress)

    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = load_checkpoint(ckpt_path, device=device)
        _check_resume(cfg, Config.from_dict(ckpt.config), ckpt_path)
        meta_params = ckpt.params
        opt = _make_optimizer(cfg, meta_params)
        opt.load_state_dict(ckpt.optimizer_state)
        rng = restore_rng(ckpt.rng_state)
        start, elapsed = int(ckpt.extra["iteration"]), float(ckpt.extra["elapsed"])
        _truncate_log(logdir, start)
        echo(f"resuming {logdir} at iteration {start}")
    else:
        if overwrite:
            for name in RUN_FILES:
                (logdir / name).unlink(missing_ok=True)
        if ckpt_path.exists():
            raise FileExistsError(f"{logdir} already holds a run (checkpoint.npz); pass --resume to continue it "
                                  "or choose another --logdir")
        init_rng = np.random.default_rng([cfg.seed, 0])
        params = model.init_params(init_rng, dtype=cfg.dtype, device=device)
        meta_params = algo.init_meta_params(params, init_rng)
        opt = _make_optimizer(cfg, meta_params)
        rng = np.random.default_rng([cfg.seed, 1])
        start, elapsed = 0, 0.0
        (logdir / "log.jsonl").write_text("")
    write_text(logdir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")

    def save(iteration):
        save_checkpoint(ckpt_path, meta_params, optimizer=opt, rng=rng, config=cfg.to_dict(),
                        extra={"iteration": iteration, "elapsed": elapsed})

    end = cfg.iterations if stop_at is None else min(cfg.iterations, int(stop_at))
    chunk = 100 if cfg.dataset == "sine" else cfg.meta_batch
    check_every = 1 if device == "cpu" else cfg.log_interval  # a finiteness check syncs the GPU
    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        bar = tqdm(total=cfg.iterations, initial=start, desc=f"{cfg.algorithm} {cfg.dataset}", unit="it", disable=None,
                   dynamic_ncols=True)
    status, sums, count, last_saved = "finished", {}, 0, start
    sitting_start = time.perf_counter()
    it = start
    with _StopFlag() as flag, open(logdir / "log.jsonl", "a") as log:
        while it < end:
            if flag.stop or (time_limit is not None and time.perf_counter() - sitting_start > time_limit):
                status = "interrupted" if flag.stop else "time limit"
                break
            t0 = time.perf_counter()
            opt.lr = _scheduled_lr(cfg, it)
            batch = tasks.train(rng)
            try:
                grads, metrics = algo.meta_gradient(meta_params, batch, rng=rng)
            except Exception as exc:
                if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # CuPy's
                    raise MemoryError(_oom_message(cfg, device, it + 1)) from exc
                raise
            main = next(iter(metrics.values()))
            if (it + 1) % check_every == 0 and not math.isfinite(main.item()):
                if bar:
                    bar.close()
                raise FloatingPointError(
                    f"the meta-loss became {main.item()} at iteration {it + 1}; the last good checkpoint "
                    f"(iteration {last_saved}) is kept in {ckpt_path}. Try a smaller meta or inner learning rate."
                    + ("" if device == "cpu" else " (On a GPU, class labels outside [0, ways) also give NaN.)"))
            opt.step(grads)
            for k, v in metrics.items():
                sums[k] = v if k not in sums else sums[k] + v
            count += 1
            if (it + 1) % cfg.log_interval == 0:  # the GPU runs ahead of Python in between: time it here
                backend.synchronize(device)
            elapsed += time.perf_counter() - t0
            it += 1
            if bar:
                bar.update(1)
            if it % cfg.log_interval == 0:
                row = {"split": "train", "iteration": it, "time": round(elapsed, 4)}
                row.update({k: float(v.item()) / count for k, v in sums.items()})
                if not all(math.isfinite(v) for v in row.values() if isinstance(v, float)):
                    raise FloatingPointError(f"a training metric is not finite at iteration {it}: {row}; the last "
                                             f"good checkpoint (iteration {last_saved}) is kept in {ckpt_path}")
                log.write(json.dumps(row) + "\n")
                log.flush()
                sums, count = {}, 0
                if bar:
                    bar.set_postfix({k.replace("query_", "q_"): f"{v:.3f}" for k, v in row.items()
                                     if k not in ("split", "iteration", "time")})
            if cfg.val_interval and it % cfg.val_interval == 0:
                val = evaluate_tasks(algo, meta_params, tasks, "val", cfg.val_tasks, cfg.inner_steps, chunk)
                row = {"split": "val", "iteration": it, "time": round(elapsed, 4)}
                row.update({k: [s["mean"] for s in val[k]] for k in ("loss", "accuracy") if k in val})
                log.write(json.dumps(row) + "\n")
                log.flush()
            if cfg.checkpoint_interval and it % cfg.checkpoint_interval == 0:
                save(it)
                last_saved = it
    if bar:
        bar.close()
    save(it)
    if it < cfg.iterations:
        status = status if status != "finished" else "stopped"
        echo(f"{status} at iteration {it}: checkpoint saved in {ckpt_path}; continue with --resume")
        return {"status": status, "iteration": it}
    result = {"status": "finished", "iteration": it, "elapsed": elapsed}
    if evaluate_at_end:
        test = evaluate_tasks(algo, meta_params, tasks, "test", cfg.test_tasks, cfg.eval_inner_steps, chunk)
        test.update({"iteration": it, "train_seconds": round(elapsed, 2), "device": device})
        write_text(logdir / "test.json", json.dumps(test, indent=2) + "\n")
        result["test"] = test
        echo(format_evaluation(test, cfg))
        try:
            from .curves import plot_runs  # noqa: PLC0415
            png = plot_runs([logdir], logdir / "curves.png")
            echo(f"learning curves: {png}")
        except ImportError:
            pass
    return result


def format_evaluation(ev: dict, cfg: Config | None = None) -> str:
    """A table of the evaluation: one row per inner step (0 = before adaptation)."""
    lines = [f"{ev['split']} tasks: {ev['tasks']}, mean ± 95% CI (1.96 std / sqrt(n))"]
    has_loss, has_acc = "loss" in ev, "accuracy" in ev
    metric = "MSE" if cfg is not None and cfg.dataset == "sine" else "loss"
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
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    tasks = TaskSource(cfg, device, data_dir)
    steps = cfg.eval_inner_steps if steps is None else steps
    n = cfg.test_tasks if num_tasks is None else num_tasks
    chunk = 100 if cfg.dataset == "sine" else cfg.meta_batch
    ev = evaluate_tasks(algo, ckpt.params, tasks, split, n, steps, chunk)
    ev.update({"iteration": int(ckpt.extra["iteration"]), "train_seconds": round(float(ckpt.extra["elapsed"]), 2),
               "device": device, "algorithm": cfg.algorithm, "shots": cfg.shots})
    echo(format_evaluation(ev, cfg))
    return ev
