"""One meta-training loop for every algorithm: sample a meta-batch, take the
algorithm's meta-gradient, step the outer optimizer; validate, log, checkpoint;
finally evaluate on held-out test tasks. The run folder's files: :mod:`.runs`.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend
from ..algorithms import ALGORITHMS
from ..algorithms.mann import TABLE1_INSTANCES, ordinal
from ..autograd import no_grad
from ..files import WriteError, make_folder, remove_stale_temporaries, write_text
from ..tensor import tensor
from .checkpoint import restore_rng, save_checkpoint
from .config import Config
from .curves import plot_runs
from .evaluation import evaluate_tasks, format_evaluation, is_finite
from .factories import TaskSource, build_algorithm, build_model, make_optimizer
from .runs import (RUN_FILES, check_resume, check_run_files, clear_run, load_run_checkpoint, read_log, write_config,
                   write_json, write_status)


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop at the next iteration boundary, with a checkpoint;
    a second SIGINT aborts. SIGTERM is what a batch scheduler, a session's end or ``kill`` sends: without
    this a long run killed that way would lose everything since its last periodic checkpoint."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.stop = False
        self.prev = {}

    def __enter__(self):
        for sig in self.SIGNALS:
            try:
                self.prev[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, _frame):
        if self.stop and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, prev in self.prev.items():
            signal.signal(sig, prev)
        self.prev = {}
        return False


def scheduled_lr(cfg: Config, iteration: int) -> float:
    """The outer learning rate at ``iteration`` (0-based): constant; linear to 0 at the last iteration
    (Reptile); cosine; or step, ``meta_lr * lr_decay_factor ** (iteration // lr_decay_every)`` (prototypical
    networks: halved every 2000 episodes, PyTorch's ``StepLR`` stepped once per 100-episode epoch).

    ``"cosine"`` is MAML++'s annealing (few_shot_learning_system.py:70-71, 346: PyTorch's
    ``CosineAnnealingLR(T_max=total_epochs, eta_min=min_learning_rate)`` stepped with the
    epoch before each iteration), with epoch e = iteration // ``epoch_iterations`` and
    E = ``iterations / epoch_iterations`` epochs:
    ``meta_lr_min + (meta_lr - meta_lr_min) (1 + cos(pi e / E)) / 2``.
    """
    if cfg.lr_schedule == "linear":
        return cfg.meta_lr * (1.0 - iteration / max(cfg.iterations, 1))
    if cfg.lr_schedule == "cosine":
        epoch, epochs = iteration // cfg.epoch_iterations, max(cfg.iterations, 1) / cfg.epoch_iterations
        return cfg.meta_lr_min + (cfg.meta_lr - cfg.meta_lr_min) * (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0
    if cfg.lr_schedule == "step":
        return cfg.meta_lr * cfg.lr_decay_factor ** (iteration // cfg.lr_decay_every)
    return cfg.meta_lr


def chunked_meta_gradient(algo, meta_params: dict, batch, chunk: int | None, rng=None, iteration: int = 0):
    """``algo.meta_gradient`` of ``batch``, computed over chunks of at most ``chunk`` tasks (Config.task_chunk).

    Each chunk's graph is built, differentiated and freed before the next, so the memory
    is that of ``chunk`` tasks; the chunks' gradients and metrics are combined into the
    unchunked ones (equal to rounding): weighted by their share of the tasks where the
    algorithm's meta-loss is a mean over tasks (``algo.task_reduction``), then passed to
    ``algo.finish_gradient`` (relation networks clip the whole gradient). ``chunk`` None,
    or at least the number of tasks: one call of ``algo.meta_gradient``. The combination
    runs on the device, with no host read. Each algorithm's decision (``MetaLearner``'s
    chunking declarations), from reading its meta-loss:

    - a mean over tasks of per-task terms, combined exactly: MAML, FOMAML, Meta-SGD, ANIL,
      NIL, CAML, ADML (the sum of two means), MAML++ (every option), MANN, and every
      learner without an inner loop (prototypical, Gaussian and semi-supervised
      prototypical, Siamese, matching with or without FCE, relation networks, the last
      with its gradient clipped after the chunks are combined); entropy TAML;
    - Reptile: theta - mean_i phi_i is a mean; with a fresh inner optimizer every task
      takes the same mini-batches, so each chunk replays the meta-batch's draws from
      ``rng``; with the persistent state the tasks run in order and so do the chunks;
    - refused (Config.validate says why): gradient agreement (each task's weight reads
      every task's update) and TAML with an inequality measure (a function of all the
      tasks' losses).
    """
    T = batch.num_tasks
    if chunk is None or chunk >= T:
        return algo.meta_gradient(meta_params, batch, rng=rng, iteration=iteration)
    if algo.task_reduction not in ("mean", "sum"):
        raise ValueError(f"{type(algo).__name__}.task_reduction must be 'mean' or 'sum', got {algo.task_reduction!r}")
    replay = rng.bit_generator.state if algo.shared_task_draws and rng is not None else None
    grads, metrics = None, None
    for start in range(0, T, chunk):
        part = batch.tasks(slice(start, start + chunk))
        if replay is not None:
            rng.bit_generator.state = replay
        g, m = algo.chunk_gradient(meta_params, part, rng=rng, iteration=iteration)
        share = part.num_tasks / T if algo.task_reduction == "mean" else 1.0
        with no_grad():  # constants: the chunk's graph is gone once g and m are summed in
            g = {k: v * share for k, v in g.items()}
            m = {k: v * share for k, v in m.items()}
            grads = g if grads is None else {k: grads[k] + g[k] for k in grads}
            metrics = m if metrics is None else {k: metrics[k] + m[k] for k in metrics}
        del g, m, part
    return algo.finish_gradient(grads), metrics


def oom_message(cfg: Config, device: str, iteration: int) -> str:
    """What ran out of memory, and the settings that shrink a second-order graph (or any meta-batch's)."""
    order = "first" if cfg.first_order or cfg.algorithm == "reptile" else "second"
    chunk = cfg.meta_batch if cfg.task_chunk is None else min(cfg.task_chunk, cfg.meta_batch)
    chunkable = ALGORITHMS[cfg.algorithm].chunk_refusal(cfg) is None
    advice = (f"; or --task-chunk {max(1, chunk // 2)} to take the meta-batch's tasks {max(1, chunk // 2)} at a "
              "time (the same gradient, a fraction of the memory)" if chunk > 1 and chunkable else "")
    head = (f"out of {device} memory at iteration {iteration}: meta-batch {cfg.meta_batch}"
            + (f" in chunks of {chunk} tasks" if cfg.task_chunk is not None and chunk < cfg.meta_batch else ""))
    if not ALGORITHMS[cfg.algorithm].inner_loop or cfg.inner_steps == 0:  # no inner loop to shorten (MANN: 0 steps)
        return head + f", {cfg.ways}-way episodes; try a smaller --meta-batch" + advice
    return (head + f", {cfg.inner_steps} inner step(s), {order} order. A second-order graph keeps every inner "
            "step's activations alive; try --first-order, fewer --inner-steps or a smaller --meta-batch" + advice)


def _check_run_folder(cfg: Config, logdir: Path, device: str, resume: bool, overwrite: bool):
    """Refuse a run folder that does not fit (before any data loads); the checkpoint to resume, or None.

    A folder holding any file of a run is an existing run, checkpoint or not; a run file that
    is a symbolic link is refused (a write through it would land outside the run folder).
    """
    if logdir.exists() and not logdir.is_dir():
        raise WriteError(f"cannot use {logdir} as the run folder (--logdir): it is a file")
    check_run_files(logdir, RUN_FILES, resume, overwrite)
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


def _data_dir(data_dir, ckpt, echo):
    """The data folder: the one given, else the one the run was trained from (remembered in its checkpoint)."""
    if data_dir is not None or ckpt is None:
        return data_dir
    remembered = ckpt.extra.get("data_dir")
    if isinstance(remembered, str) and Path(remembered).is_dir():
        echo(f"data: {remembered} (the --data-dir this run was trained with)")
        return remembered
    return None


def _drop_torn_row(path: Path, echo) -> None:
    """Remove a last line of the log that a killed write cut off (it is not JSON), saying so."""
    text = path.read_text()
    head, sep, last = text.rstrip("\n").rpartition("\n")
    if not last.strip():
        return
    try:
        json.loads(last)
    except json.JSONDecodeError:
        write_text(path, head + sep)
        echo(f"dropped the torn last line of {path} ({len(last)} characters, not a whole row: a write cut off "
             "when an earlier sitting was killed)")


def _resumed_rows(logdir: Path, start: int, partial: bool, echo) -> list[dict]:
    """The log rows a run resumed at ``start`` keeps: those of the iterations the checkpoint holds.

    ``partial``: the checkpoint holds a log row in progress, so a train row at ``start`` is the
    shorter last row of a finished run now given more iterations; the continued run writes it whole.
    """
    path = logdir / "log.jsonl"
    if not path.exists():
        return []
    _drop_torn_row(path, echo)
    return [r for r in read_log(logdir) if r.get("iteration", 0) <= start
            and not (partial and r.get("iteration") == start and r.get("split") == "train")]


def _begin(cfg: Config, logdir: Path, model, algo, device: str, ckpt, overwrite: bool, echo):
    """(meta-parameters, optimizer, rng, iteration, elapsed, log sums, count, log rows): fresh or resumed.

    The log sums and count are the running totals of the log row in progress, so that
    the first row after a resume averages the same iterations as an uninterrupted run.
    """
    if ckpt is not None:
        params = ckpt.params
        opt = make_optimizer(cfg, params)
        opt.load_state_dict(ckpt.optimizer_state)
        algo.load_state_dict(ckpt.algorithm_state or {})  # e.g. Reptile's persistent inner optimizer
        start = int(ckpt.extra["iteration"])
        sums = {k: tensor(np.asarray(v), device=device) for k, v in ckpt.extra.get("log_sums", {}).items()}
        count = int(ckpt.extra.get("log_count", 0))
        rows = _resumed_rows(logdir, start, count > 0, echo)
        echo(f"resuming {logdir} at iteration {start}")
        return params, opt, restore_rng(ckpt.rng_state), start, float(ckpt.extra["elapsed"]), sums, count, rows
    if overwrite:
        clear_run(logdir)
    init_rng = np.random.default_rng([cfg.seed, 0])
    meta_params = algo.init_meta_params(model.init_params(init_rng, dtype=cfg.dtype, device=device), init_rng)
    return meta_params, make_optimizer(cfg, meta_params), np.random.default_rng([cfg.seed, 1]), 0, 0.0, {}, 0, []


def _on_disk(ckpt_path: Path, last_saved: int | None) -> str:
    """What a run stopped by NaN leaves to go back to."""
    if last_saved is None or not ckpt_path.exists():
        return "no checkpoint was written yet (the first is due at --checkpoint-interval)"
    return f"the last good checkpoint (iteration {last_saved}) is kept in {ckpt_path}"


def resume_command(logdir, device: str = "cpu") -> str:
    """The command that continues the run in ``logdir`` (its data folder is remembered in the checkpoint)."""
    return (f"python -m tinymeta train --resume --logdir {shlex.quote(str(logdir))}"
            + ("" if device == "cpu" else f" --device {device}"))


def validation_line(val: dict, iteration: int, cfg: Config) -> str:
    """'validation at iteration 20/40 (20 tasks): loss 3.1 -> 0.51 after 1 inner step': what a validation found.

    Before adaptation and after the last inner step, for the loss and the accuracy (those ``val`` has).
    """
    parts = []
    for key, show in (("loss", lambda v: f"{v:.4g}"), ("accuracy", lambda v: f"{100 * v:.2f}%")):
        if key in val:
            first, last = val[key][0]["mean"], val[key][-1]["mean"]
            parts.append(f"{key} {show(first)}" if len(val[key]) == 1 else f"{key} {show(first)} -> {show(last)}")
    steps = max(len(val[k]) for k in ("loss", "accuracy") if k in val) - 1
    after = f" after {steps} inner step{'s' if steps != 1 else ''}" if steps else ""
    if "instance_accuracy" in val:  # MANN: at the k-th drawing of a class, as the paper's Table 1
        by = val["instance_accuracy"]
        shown = [k for k in TABLE1_INSTANCES if k <= len(by)]
        after += " (" + ", ".join(f"{ordinal(k)} {100 * by[k - 1]['mean']:.1f}%" for k in shown) + ")"
    return f"validation at iteration {iteration}/{cfg.iterations} ({val['tasks']} tasks): {', '.join(parts)}{after}"


def _draw_curves(logdir: Path, rows: list, echo) -> None:
    """curves.png of a finished run, or one line saying why there is none (the run's results are saved either way)."""
    if not rows:
        echo("no learning curves: the run has no log rows (it ran no iteration)")
        return
    try:
        echo(f"learning curves: {plot_runs([logdir], logdir / 'curves.png')}")
    except ImportError:
        echo("no learning curves: matplotlib is not installed (pip install matplotlib)")
    except (ValueError, OSError) as exc:
        echo(f"no learning curves: {exc}")


def train(cfg: Config, logdir, *, device=None, data_dir=None, resume=False, overwrite=False, stop_at=None,
          time_limit=None, progress=True, evaluate_at_end=True, echo=print) -> dict:
    """Meta-train ``cfg`` in ``logdir``; returns {'status', 'iteration', 'test' (if evaluated)}.

    ``resume`` continues from logdir/checkpoint.npz with exactly the numbers (and log
    rows) an uninterrupted run would compute. ``stop_at`` (an iteration) and
    ``time_limit`` (seconds) end this sitting early with a checkpoint, as
    Ctrl-C does; run again with ``resume=True`` to continue. ``overwrite``
    replaces a previous run's files in ``logdir`` (and nothing else there).
    ``data_dir`` is remembered in the checkpoint: a resume or an evaluation without one uses it.
    ``progress``: a progress bar on a terminal, else a line per log row (False: silent);
    validation results are printed (``echo``) either way.
    Bad settings, an unusable device and a run folder that does not fit raise
    before any data loads; a non-finite meta-loss or final evaluation raises FloatingPointError.
    ``logdir/status.json`` always tells how the sitting ended, or that it is running (with the
    iteration of the checkpoint on disk).
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other: choose one")
    cfg.validate().check_sitting(stop_at=stop_at, time_limit=time_limit)
    device = backend.check_device(device)
    logdir = Path(logdir)
    ckpt_path = logdir / "checkpoint.npz"
    ckpt = _check_run_folder(cfg, logdir, device, resume, overwrite)
    if ckpt is not None:
        cfg.check_sitting(start=int(ckpt.extra["iteration"]), stop_at=stop_at, time_limit=time_limit)
    data_dir = _data_dir(data_dir, ckpt, echo)
    sitting_began = time.time()
    created = not logdir.exists()
    make_folder(logdir, "run folder (--logdir)")
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    try:
        tasks = TaskSource(cfg, device, data_dir, verbose=progress)
    except BaseException:
        if created:  # no data: leave no empty run folder behind
            with contextlib.suppress(OSError):
                logdir.rmdir()
        raise
    stale = remove_stale_temporaries(logdir, RUN_FILES, older_than=sitting_began)
    if stale:
        echo(f"removed {len(stale)} temporary file(s) that killed saves left in {logdir}: {', '.join(stale)}")

    meta_params, opt, rng, start, elapsed, sums, count, rows = _begin(cfg, logdir, model, algo, device, ckpt,
                                                                      overwrite, echo)
    remembered = {} if data_dir is None else {"data_dir": str(Path(data_dir).expanduser().resolve())}
    log_text = "".join(json.dumps(r) + "\n" for r in rows)

    def add_row(row):  # the whole log, replaced atomically: no torn row, no write through a link
        nonlocal log_text
        rows.append(row)
        log_text += json.dumps(row) + "\n"
        write_text(logdir / "log.jsonl", log_text)

    def running(iteration):
        write_status(logdir, "running", iteration, f"the checkpoint on disk is at iteration {iteration}"
                     if iteration else "no checkpoint yet", pid=os.getpid(), host=socket.gethostname())

    def save(iteration):
        log_sums = {k: np.asarray(v.numpy()) for k, v in sums.items()}  # the log row in progress
        save_checkpoint(ckpt_path, meta_params, optimizer=opt, rng=rng, config=cfg.to_dict(),
                        extra={"iteration": iteration, "elapsed": elapsed, "log_sums": log_sums, "log_count": count,
                               **remembered},
                        algorithm_state=algo.state_dict() or None)

    ended = False  # status.json already says how the sitting ended

    def fail(message, iteration):
        nonlocal ended
        write_status(logdir, "nan", iteration, message)
        ended = True
        return FloatingPointError(message)

    write_text(logdir / "log.jsonl", log_text)
    write_config(logdir, cfg)
    last_saved = start if ckpt is not None else None
    running(last_saved or 0)
    end = cfg.iterations if stop_at is None else min(cfg.iterations, int(stop_at))
    check_every = 1 if device == "cpu" else cfg.log_interval  # a finiteness check syncs the GPU
    bar = None
    if progress and sys.stderr.isatty():
        bar = tqdm(total=cfg.iterations, initial=start, desc=f"{cfg.algorithm} {cfg.dataset}", unit="it",
                   dynamic_ncols=True)
    say = bar.write if bar else echo  # a line above the bar, not through it
    status = "finished"
    sitting_start = time.perf_counter()
    it = start
    where = "by a second Ctrl-C"  # where a KeyboardInterrupt can reach the loop
    try:
        # The loop tests the meta-loss and every logged metric for NaN and inf itself, and says
        # what to do: NumPy's overflow warnings on the way there would only bury that line.
        with StopFlag() as flag, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while it < end:
                if flag.stop or (time_limit is not None and time.perf_counter() - sitting_start > time_limit):
                    status = "interrupted" if flag.stop else "time limit"
                    break
                t0 = time.perf_counter()
                opt.lr = scheduled_lr(cfg, it)
                batch = tasks.train(rng)
                try:
                    grads, metrics = chunked_meta_gradient(algo, meta_params, batch, cfg.task_chunk, rng=rng,
                                                           iteration=it)
                except Exception as exc:
                    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # CuPy's
                        raise MemoryError(oom_message(cfg, device, it + 1)) from exc
                    raise
                main = next(iter(metrics.values()))
                if (it + 1) % check_every == 0 and not math.isfinite(main.item()):
                    raise fail(f"the meta-loss became {main.item()} at iteration {it + 1}; "
                               f"{_on_disk(ckpt_path, last_saved)}. Try a smaller meta or inner learning rate."
                               + ("" if device == "cpu" else
                                  " (On a GPU, class labels outside [0, ways) also give NaN.)"), it + 1)
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
                last = it == cfg.iterations and count > 0  # a run ends with a row, however short it is
                if it % cfg.log_interval == 0 or last:
                    row = {"split": "train", "iteration": it, "time": round(elapsed, 4)}
                    row.update({k: float(v.item()) / count for k, v in sums.items()})
                    if not all(math.isfinite(v) for v in row.values() if isinstance(v, float)):
                        raise fail(f"a training metric is not finite at iteration {it}: {row}; "
                                   f"{_on_disk(ckpt_path, last_saved)}", it)
                    add_row(row)
                    if it % cfg.log_interval == 0:  # a shorter last row stays in progress, for a longer resume
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
                    # every metric the learner's evaluation gives: loss and accuracy per inner step, and any
                    # other (MANN's accuracy at the k-th drawing of a class: the paper's Fig. 2 over training)
                    row.update({k: [s["mean"] for s in v] for k, v in val.items() if isinstance(v, list)})
                    add_row(row)
                    say(validation_line(val, it, cfg))
                if cfg.checkpoint_interval and it % cfg.checkpoint_interval == 0:
                    save(it)
                    last_saved = it
                    running(it)
        if bar:
            bar.close()
            bar = None
        where = "while the checkpoint was saved"
        save(it)
        last_saved = it
        if it < cfg.iterations:
            status = status if status != "finished" else "stopped"
            write_status(logdir, status, it)
            ended = True
            echo(f"{status} at iteration {it}: checkpoint saved in {ckpt_path}; continue with: "
                 f"{resume_command(logdir, device)}")
            return {"status": status, "iteration": it}
        result = {"status": "finished", "iteration": it, "elapsed": elapsed}
        if evaluate_at_end:
            where = "during the final evaluation"
            running(it)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # is_finite below says it better
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
        write_status(logdir, "finished", it)
        ended = True
        if evaluate_at_end:
            _draw_curves(logdir, rows, echo)
        return result
    except KeyboardInterrupt:  # a second Ctrl-C, or one during the final evaluation
        if bar:
            bar.close()
        if not ended:
            message = (f"interrupted {where}; " + (f"the checkpoint on disk is at iteration {last_saved}: continue "
                       f"with: {resume_command(logdir, device)}" if last_saved is not None else "no checkpoint saved"))
            write_status(logdir, "interrupted", last_saved or 0, message)
            echo(message)
        raise
    except Exception as exc:
        if bar:
            bar.close()
        if not ended:
            write_status(logdir, "error", last_saved or 0, f"{type(exc).__name__}: {exc}")
        raise
