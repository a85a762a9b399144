"""One meta-training loop for every algorithm: sample a meta-batch, take the
algorithm's meta-gradient, step the outer optimizer; validate, log, checkpoint;
finally evaluate on held-out test tasks. The run folder's files: :mod:`.runs`.
"""
from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend
from ..tensor import tensor
from .checkpoint import restore_rng, save_checkpoint
from .config import Config
from .curves import plot_runs
from .evaluation import evaluate_tasks, format_evaluation, is_finite
from .factories import TaskSource, build_algorithm, build_model, make_optimizer
from .runs import (append_log, check_resume, clear_run, load_run_checkpoint, truncate_log, write_config, write_json,
                   write_status)


class StopFlag:
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


def scheduled_lr(cfg: Config, iteration: int) -> float:
    """The outer learning rate at ``iteration``: constant, or linear to 0 at the last iteration."""
    if cfg.lr_schedule == "linear":
        return cfg.meta_lr * (1.0 - iteration / max(cfg.iterations, 1))
    return cfg.meta_lr


def oom_message(cfg: Config, device: str, iteration: int) -> str:
    """What ran out of memory, and the settings that shrink a second-order graph."""
    order = "first" if cfg.first_order or cfg.algorithm == "reptile" else "second"
    return (f"out of {device} memory at iteration {iteration}: meta-batch {cfg.meta_batch}, "
            f"{cfg.inner_steps} inner step(s), {order} order. A second-order graph keeps every inner "
            "step's activations alive; try --first-order, fewer --inner-steps or a smaller --meta-batch")


def _check_run_folder(cfg: Config, logdir: Path, device: str, resume: bool, overwrite: bool):
    """Refuse a run folder that does not fit (before any data loads); the checkpoint to resume, or None."""
    ckpt_path = logdir / "checkpoint.npz"
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}; train without --resume to start "
                                    "the run")
        ckpt, saved = load_run_checkpoint(ckpt_path, device=device, resume=True)  # every part checked
        check_resume(cfg, saved, ckpt_path)
        return ckpt
    if ckpt_path.exists() and not overwrite:
        raise FileExistsError(f"{logdir} already holds a run (checkpoint.npz): pass --resume to continue it, "
                              "--overwrite to replace it, or choose another --logdir")
    return None


def _begin(cfg: Config, logdir: Path, model, algo, device: str, ckpt, overwrite: bool, echo):
    """(meta-parameters, optimizer, rng, iteration, elapsed, log sums, count): fresh, or as the checkpoint left them.

    The log sums and count are the running totals of the log row in progress, so that
    the first row after a resume averages the same iterations as an uninterrupted run.
    """
    if ckpt is not None:
        params = ckpt.params
        opt = make_optimizer(cfg, params)
        opt.load_state_dict(ckpt.optimizer_state)
        algo.load_state_dict(ckpt.algorithm_state or {})  # e.g. Reptile's persistent inner optimizer
        start = int(ckpt.extra["iteration"])
        truncate_log(logdir, start)
        sums = {k: tensor(np.asarray(v), device=device) for k, v in ckpt.extra.get("log_sums", {}).items()}
        count = int(ckpt.extra.get("log_count", 0))
        echo(f"resuming {logdir} at iteration {start}")
        return params, opt, restore_rng(ckpt.rng_state), start, float(ckpt.extra["elapsed"]), sums, count
    if overwrite:
        clear_run(logdir)
    init_rng = np.random.default_rng([cfg.seed, 0])
    meta_params = algo.init_meta_params(model.init_params(init_rng, dtype=cfg.dtype, device=device), init_rng)
    (logdir / "log.jsonl").write_text("")
    return meta_params, make_optimizer(cfg, meta_params), np.random.default_rng([cfg.seed, 1]), 0, 0.0, {}, 0


def _on_disk(ckpt_path: Path, last_saved: int | None) -> str:
    """What a run stopped by NaN leaves to go back to."""
    if last_saved is None or not ckpt_path.exists():
        return "no checkpoint was written yet (the first is due at --checkpoint-interval)"
    return f"the last good checkpoint (iteration {last_saved}) is kept in {ckpt_path}"


def train(cfg: Config, logdir, *, device=None, data_dir=None, resume=False, overwrite=False, stop_at=None,
          time_limit=None, progress=True, evaluate_at_end=True, echo=print) -> dict:
    """Meta-train ``cfg`` in ``logdir``; returns {'status', 'iteration', 'test' (if evaluated)}.

    ``resume`` continues from logdir/checkpoint.npz with exactly the numbers (and log
    rows) an uninterrupted run would compute. ``stop_at`` (an iteration) and
    ``time_limit`` (seconds) end this sitting early with a checkpoint, as
    Ctrl-C does; run again with ``resume=True`` to continue. ``overwrite``
    replaces a previous run's files in ``logdir`` (and nothing else there).
    ``progress``: a progress bar on a terminal, else a line per log row (False: silent).
    Bad settings, an unusable device and a run folder that does not fit raise
    before any data loads; a non-finite meta-loss or final evaluation raises FloatingPointError.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other: choose one")
    cfg.validate()
    device = backend.check_device(device)
    logdir = Path(logdir)
    ckpt_path = logdir / "checkpoint.npz"
    ckpt = _check_run_folder(cfg, logdir, device, resume, overwrite)
    logdir.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    tasks = TaskSource(cfg, device, data_dir, verbose=progress)

    meta_params, opt, rng, start, elapsed, sums, count = _begin(cfg, logdir, model, algo, device, ckpt, overwrite,
                                                                 echo)
    write_config(logdir, cfg)

    def save(iteration):
        log_sums = {k: np.asarray(v.numpy()) for k, v in sums.items()}  # the log row in progress
        save_checkpoint(ckpt_path, meta_params, optimizer=opt, rng=rng, config=cfg.to_dict(),
                        extra={"iteration": iteration, "elapsed": elapsed, "log_sums": log_sums, "log_count": count},
                        algorithm_state=algo.state_dict() or None)

    def fail(message, iteration):
        write_status(logdir, "nan", iteration, message)
        return FloatingPointError(message)

    end = cfg.iterations if stop_at is None else min(cfg.iterations, int(stop_at))
    check_every = 1 if device == "cpu" else cfg.log_interval  # a finiteness check syncs the GPU
    bar = None
    if progress and sys.stderr.isatty():
        bar = tqdm(total=cfg.iterations, initial=start, desc=f"{cfg.algorithm} {cfg.dataset}", unit="it",
                   dynamic_ncols=True)
    status, last_saved = "finished", (start if ckpt is not None else None)
    sitting_start = time.perf_counter()
    it = start
    with StopFlag() as flag, open(logdir / "log.jsonl", "a") as log:
        while it < end:
            if flag.stop or (time_limit is not None and time.perf_counter() - sitting_start > time_limit):
                status = "interrupted" if flag.stop else "time limit"
                break
            t0 = time.perf_counter()
            opt.lr = scheduled_lr(cfg, it)
            batch = tasks.train(rng)
            try:
                grads, metrics = algo.meta_gradient(meta_params, batch, rng=rng)
            except Exception as exc:
                if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # CuPy's
                    raise MemoryError(oom_message(cfg, device, it + 1)) from exc
                raise
            main = next(iter(metrics.values()))
            if (it + 1) % check_every == 0 and not math.isfinite(main.item()):
                if bar:
                    bar.close()
                raise fail(f"the meta-loss became {main.item()} at iteration {it + 1}; "
                           f"{_on_disk(ckpt_path, last_saved)}. Try a smaller meta or inner learning rate."
                           + ("" if device == "cpu" else " (On a GPU, class labels outside [0, ways) also give NaN.)"),
                           it + 1)
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
                    if bar:
                        bar.close()
                    raise fail(f"a training metric is not finite at iteration {it}: {row}; "
                               f"{_on_disk(ckpt_path, last_saved)}", it)
                append_log(log, row)
                sums, count = {}, 0
                shown = {k.replace("query_", "q_"): f"{v:.3f}" for k, v in row.items()
                         if k not in ("split", "iteration", "time")}
                if bar:
                    bar.set_postfix(shown)
                elif progress:  # no terminal (a log file, CI): one line per log row instead of a bar
                    echo(f"iteration {it}/{cfg.iterations}  {elapsed:.1f} s  "
                         + "  ".join(f"{k} {v}" for k, v in shown.items()))
            if cfg.val_interval and it % cfg.val_interval == 0:
                val = evaluate_tasks(algo, meta_params, tasks, "val", cfg.val_tasks, cfg.inner_steps)
                row = {"split": "val", "iteration": it, "time": round(elapsed, 4)}
                row.update({k: [s["mean"] for s in val[k]] for k in ("loss", "accuracy") if k in val})
                append_log(log, row)
            if cfg.checkpoint_interval and it % cfg.checkpoint_interval == 0:
                save(it)
                last_saved = it
    if bar:
        bar.close()
    save(it)
    if it < cfg.iterations:
        status = status if status != "finished" else "stopped"
        write_status(logdir, status, it)
        echo(f"{status} at iteration {it}: checkpoint saved in {ckpt_path}; continue with --resume")
        return {"status": status, "iteration": it}
    result = {"status": "finished", "iteration": it, "elapsed": elapsed}
    if evaluate_at_end:
        test = evaluate_tasks(algo, meta_params, tasks, "test", cfg.test_tasks, cfg.eval_inner_steps,
                              progress=progress)
        if not is_finite(test):
            raise fail(f"the final evaluation on {cfg.test_tasks} test tasks is not finite (adaptation with "
                       f"inner_lr {cfg.inner_lr:g} diverges); the trained checkpoint is kept in {ckpt_path}. "
                       "Try a smaller --inner-lr (or --eval-inner-steps)", it)
        test.update({"iteration": it, "train_seconds": round(elapsed, 2), "device": device})
        write_json(logdir / "test.json", test)
        result["test"] = test
        echo(format_evaluation(test, cfg))
        try:
            png = plot_runs([logdir], logdir / "curves.png")
            echo(f"learning curves: {png}")
        except ImportError:  # matplotlib missing: the numbers are written, the picture is not
            pass
    write_status(logdir, "finished", it)
    return result
