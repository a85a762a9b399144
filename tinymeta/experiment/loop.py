"""One meta-training loop for every algorithm: sample a meta-batch, take the
algorithm's meta-gradient, step the outer optimizer; validate, log, checkpoint;
finally evaluate on held-out test tasks. The run folder's files: :mod:`.runs`.
"""
from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend
from .checkpoint import load_checkpoint, restore_rng, save_checkpoint
from .config import Config
from .curves import plot_runs
from .evaluation import evaluate_tasks, format_evaluation
from .factories import TaskSource, build_algorithm, build_model, make_optimizer
from .runs import append_log, check_resume, clear_run, truncate_log, write_config, write_json


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


def _begin(cfg: Config, logdir: Path, model, algo, device: str, resume: bool, overwrite: bool, echo):
    """(meta-parameters, optimizer, rng, iteration, elapsed): fresh, or exactly as the checkpoint left them."""
    ckpt_path = logdir / "checkpoint.npz"
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = load_checkpoint(ckpt_path, device=device)
        check_resume(cfg, Config.from_dict(ckpt.config), ckpt_path)
        opt = make_optimizer(cfg, ckpt.params)
        opt.load_state_dict(ckpt.optimizer_state)
        algo.load_state_dict(ckpt.algorithm_state or {})  # e.g. Reptile's persistent inner optimizer
        start = int(ckpt.extra["iteration"])
        truncate_log(logdir, start)
        echo(f"resuming {logdir} at iteration {start}")
        return ckpt.params, opt, restore_rng(ckpt.rng_state), start, float(ckpt.extra["elapsed"])
    if overwrite:
        clear_run(logdir)
    if ckpt_path.exists():
        raise FileExistsError(f"{logdir} already holds a run (checkpoint.npz); pass --resume to continue it "
                              "or choose another --logdir")
    init_rng = np.random.default_rng([cfg.seed, 0])
    meta_params = algo.init_meta_params(model.init_params(init_rng, dtype=cfg.dtype, device=device), init_rng)
    (logdir / "log.jsonl").write_text("")
    return meta_params, make_optimizer(cfg, meta_params), np.random.default_rng([cfg.seed, 1]), 0, 0.0


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

    meta_params, opt, rng, start, elapsed = _begin(cfg, logdir, model, algo, device, resume, overwrite, echo)
    write_config(logdir, cfg)

    def save(iteration):
        save_checkpoint(ckpt_path, meta_params, optimizer=opt, rng=rng, config=cfg.to_dict(),
                        extra={"iteration": iteration, "elapsed": elapsed}, algorithm_state=algo.state_dict() or None)

    end = cfg.iterations if stop_at is None else min(cfg.iterations, int(stop_at))
    check_every = 1 if device == "cpu" else cfg.log_interval  # a finiteness check syncs the GPU
    bar = None
    if progress:
        bar = tqdm(total=cfg.iterations, initial=start, desc=f"{cfg.algorithm} {cfg.dataset}", unit="it", disable=None,
                   dynamic_ncols=True)
    status, sums, count, last_saved = "finished", {}, 0, start
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
                append_log(log, row)
                sums, count = {}, 0
                if bar:
                    bar.set_postfix({k.replace("query_", "q_"): f"{v:.3f}" for k, v in row.items()
                                     if k not in ("split", "iteration", "time")})
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
        echo(f"{status} at iteration {it}: checkpoint saved in {ckpt_path}; continue with --resume")
        return {"status": status, "iteration": it}
    result = {"status": "finished", "iteration": it, "elapsed": elapsed}
    if evaluate_at_end:
        test = evaluate_tasks(algo, meta_params, tasks, "test", cfg.test_tasks, cfg.eval_inner_steps)
        test.update({"iteration": it, "train_seconds": round(elapsed, 2), "device": device})
        write_json(logdir / "test.json", test)
        result["test"] = test
        echo(format_evaluation(test, cfg))
        try:
            png = plot_runs([logdir], logdir / "curves.png")
            echo(f"learning curves: {png}")
        except ImportError:  # matplotlib missing: the numbers are written, the picture is not
            pass
    return result
