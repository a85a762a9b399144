"""A run folder (``logdir``) and its files.

  config.json     the run's Config
  log.jsonl       one JSON object per line: training metrics every ``log_interval``
                  iterations ("split": "train"), validation every ``val_interval`` ("val")
  checkpoint.npz  meta-parameters, optimizer state, RNG state, config, iteration
  test.json       the final evaluation: mean and 95% CI per inner step
  curves.png      the learning curves
  status.json     how the last sitting ended: finished, stopped, interrupted, time limit, nan or error;
                  running (with the pid and host) while it runs, shown as aborted once that process is gone
``time`` in the log counts seconds spent in meta-training iterations only
(validation, logging and checkpoints excluded), so runs compare fairly by time.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import socket
import sys
from pathlib import Path

import numpy as np

from .. import backend
from ..files import UnreadableFileError, parse_json, process_alive, read_json, read_text_bounded, write_text
from ..tasks import TASK_FAMILIES
from .checkpoint import Checkpoint, CheckpointError, config_diff, load_checkpoint
from .config import Config
from .factories import build_algorithm, build_model, make_optimizer

RUN_FILES = ("checkpoint.npz", "log.jsonl", "config.json", "test.json", "curves.png", "status.json")
# Settings a resumed run may change: they do not alter the meta-parameters it computes (more
# iterations only under a constant learning rate: a linear or cosine schedule's every step depends on them).
RESUMABLE_CHANGES = {"iterations", "log_interval", "val_interval", "checkpoint_interval", "test_tasks",
                     "val_tasks", "task_chunk"}
# The "dataset" of a 2D-navigation run's config.json (tinymeta.experiment.rl): its folder holds
# results.json (returns) instead of test.json, and runs made before config.json hold only results.json.
RL_DATASET = "nav2d"


MAX_LOG_BYTES = 1 << 30  # a log row is ~200 bytes: millions of rows


def _integer(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(v) -> bool:
    """A non-empty list of numbers: a value per inner step (0 = before adaptation)."""
    return isinstance(v, list) and len(v) > 0 and all(_number(x) for x in v)


def _check_log_row(path, n: int, row) -> dict:
    """A log row as the loop writes it, or UnreadableFileError naming the file and line."""
    def bad(problem):
        raise UnreadableFileError(path, f"line {n}: {problem}")

    if not isinstance(row, dict):
        bad(f"a log row is a JSON object, got {type(row).__name__}")
    if not _integer(row.get("iteration")) or row["iteration"] < 0:
        bad(f"'iteration' must be a non-negative integer, got {row.get('iteration')!r}")
    if not _number(row.get("time")) or not math.isfinite(row["time"]) or row["time"] < 0:
        bad(f"'time' must be a number of seconds >= 0, got {row.get('time')!r}")
    split = row.get("split")
    if split not in ("train", "val"):
        bad(f"'split' must be train or val, got {split!r}")
    for key, value in row.items():
        if key in ("split", "iteration", "time"):
            continue
        if split == "val" and not _numbers(value):  # one value per inner step (or per instance: MANN)
            bad(f"validation {key!r} must be a non-empty list of numbers, got {value!r}")
        if split == "train" and not _number(value):
            bad(f"training metric {key!r} must be a number, got {value!r}")
    return row


def _check_rl_log_row(path, n: int, row) -> dict:
    """A 2D-navigation log row (TRPO's numbers and flags per iteration; rows made before the shared loop
    have no split or time), or UnreadableFileError naming the file and line."""
    if not isinstance(row, dict):
        raise UnreadableFileError(path, f"line {n}: a log row is a JSON object, got {type(row).__name__}")
    if not _integer(row.get("iteration")) or row["iteration"] < 0:
        raise UnreadableFileError(path, f"line {n}: 'iteration' must be a non-negative integer, "
                                        f"got {row.get('iteration')!r}")
    for key, value in row.items():
        if key != "split" and not isinstance(value, (int, float)):  # bool is an int: TRPO's 'accepted'
            raise UnreadableFileError(path, f"line {n}: {key!r} must be a number or true/false, got {value!r}")
    return row


def read_log(logdir) -> list[dict]:
    """The rows of ``logdir/log.jsonl``, in order, each checked (UnreadableFileError names file and line)."""
    path = Path(logdir) / "log.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no log.jsonl in {logdir}: is it a tinymeta run folder?")
    check = _check_rl_log_row if is_rl_run(logdir) else _check_log_row
    rows = []
    text = read_text_bounded(path, MAX_LOG_BYTES)
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                row = parse_json(line, path)
            except UnreadableFileError as exc:
                if n == len(lines) and not text.endswith("\n"):  # a write cut off by a kill: skip, and say so
                    print(f"note: {path}, line {n}: skipped a torn last line (not a whole row)", file=sys.stderr)
                    break
                raise UnreadableFileError(path, f"line {n}: {exc.problem}") from None
            rows.append(check(path, n, row))
    return rows


def append_log(log, row: dict) -> None:
    """Write one row to an open log file and flush it (a crash loses at most the current row)."""
    log.write(json.dumps(row) + "\n")
    log.flush()


def truncate_log(logdir, iteration: int) -> None:
    """Drop log lines written after the checkpoint a run resumes from."""
    path = Path(logdir) / "log.jsonl"
    if path.exists():
        keep = [r for r in read_log(logdir) if r.get("iteration", 0) <= iteration]
        write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def check_resume(cfg: Config, saved: Config, path) -> None:
    """Refuse to resume a checkpoint made with settings that change the numbers, listing them."""
    a, b = saved.to_dict(), cfg.to_dict()
    for k in RESUMABLE_CHANGES:
        a.pop(k, None)
        b.pop(k, None)
    diffs = config_diff(a, b, labels=("checkpoint", "now"))
    if saved.lr_schedule in ("linear", "cosine") and cfg.iterations != saved.iterations:
        end = "0" if saved.lr_schedule == "linear" else f"meta_lr_min {saved.meta_lr_min:g}"
        raise ValueError(f"cannot resume {path} with --iterations {cfg.iterations}: its {saved.lr_schedule} "
                         f"learning-rate schedule decays to {end} at iteration {saved.iterations}, so every later "
                         f"step would change; resume with --iterations {saved.iterations}, or start a new --logdir")
    if diffs:
        raise ValueError(f"cannot resume {path}: it was made with another configuration:\n  "
                         + "\n  ".join(diffs) + "\nresume with the same settings, or start a new --logdir")


def checkpoint_config(path) -> Config:
    """The validated Config saved in the checkpoint at ``path`` (CheckpointError naming the file otherwise)."""
    return _checked_config(path, load_checkpoint(path, device="cpu"))


def _checked_config(path, ckpt: Checkpoint) -> Config:
    try:
        return Config.from_dict(ckpt.config).validate()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{str(path)!r}: its saved configuration is invalid: "
                              f"{str(exc).replace(chr(10), ' ')}") from None


def reference_params(cfg: Config, model, algo) -> dict:
    """The meta-parameters a fresh run of ``cfg`` starts from (fixed seed, on the CPU): the names,
    shapes and dtypes a checkpoint of that configuration must hold."""
    rng = np.random.default_rng(0)
    return algo.init_meta_params(model.init_params(rng, dtype=cfg.dtype, device="cpu"), rng)


def load_run_checkpoint(path, device=None, *, resume: bool = False) -> tuple[Checkpoint, Config]:
    """A run's checkpoint and its Config, every part checked against what it feeds.

    The checksum proves only that a file is as it was written; a file made or edited by hand
    can still hold anything. So: the configuration must validate; the parameters must be
    exactly the model's and algorithm's (names, shapes, dtypes, finite values); the saved
    iteration an integer from 0 to the configuration's iterations; the elapsed time and the
    log row in progress plain finite numbers; the optimizer and algorithm states must load
    into fresh ones. ``resume``: the optimizer and RNG states must be there too. Any
    mismatch raises CheckpointError naming the file, before any data loads.
    """
    ckpt = load_checkpoint(path, device=device)
    cfg = _checked_config(path, ckpt)

    def bad(problem):
        raise CheckpointError(f"{str(path)!r}: {problem}")

    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    reference = reference_params(cfg, model, algo)
    missing, unknown = sorted(set(reference) - set(ckpt.params)), sorted(set(ckpt.params) - set(reference))
    if missing or unknown:
        bad(f"its parameters are not those of the {cfg.algorithm} {cfg.dataset} model its configuration "
            f"describes (missing: {missing}; not in the model: {unknown})")
    for name, ref in reference.items():
        have = backend.to_numpy(ckpt.params[name].data)
        if have.shape != tuple(ref.shape) or have.dtype != backend.to_numpy(ref.data).dtype:
            bad(f"parameter {name!r} is {have.dtype} of shape {have.shape}; the model's is "
                f"{backend.to_numpy(ref.data).dtype} of shape {tuple(ref.shape)}")
        if not np.isfinite(have).all():
            bad(f"parameter {name!r} holds NaN or infinite values")
    extra = ckpt.extra
    it = extra.get("iteration")
    if not _integer(it) or not 0 <= it <= cfg.iterations:
        bad(f"its saved iteration must be an integer from 0 to {cfg.iterations} (the configuration's "
            f"iterations), got {it!r}")
    elapsed = extra.get("elapsed")
    if not _number(elapsed) or not math.isfinite(elapsed) or elapsed < 0:
        bad(f"its saved training time must be a number of seconds >= 0, got {elapsed!r}")
    count, sums = extra.get("log_count", 0), extra.get("log_sums", {})
    if not _integer(count) or count < 0:
        bad(f"its saved log_count must be a non-negative integer, got {count!r}")
    if not isinstance(sums, dict) or not all(
            np.ndim(v) == 0 and np.asarray(v).dtype.kind in "iuf" and np.isfinite(v) for v in sums.values()):
        bad("its saved log_sums must map metric names to finite numbers")
    if resume and (ckpt.optimizer_state is None or ckpt.rng_state is None):
        bad("it holds no optimizer or random-generator state to resume from")
    try:
        if ckpt.optimizer_state is not None:
            make_optimizer(cfg, ckpt.params).load_state_dict(ckpt.optimizer_state)
    except (ValueError, TypeError, KeyError) as exc:
        bad(f"its optimizer state does not fit the model: {exc}")
    try:
        algo.load_state_dict(ckpt.algorithm_state or {})
    except (ValueError, TypeError, KeyError) as exc:
        bad(f"its {cfg.algorithm} state does not fit: {exc}")
    return ckpt, cfg


def clear_run(logdir) -> None:
    """Remove a previous run's files from ``logdir`` (and nothing else there)."""
    for name in RUN_FILES:
        (Path(logdir) / name).unlink(missing_ok=True)


def write_config(logdir, cfg: Config) -> None:
    """``logdir/config.json``, atomically."""
    write_text(Path(logdir) / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")


def write_status(logdir, status: str, iteration: int, message: str = "", **more) -> None:
    """``logdir/status.json``: how the last sitting ended (``tinymeta runs`` lists it).

    A sitting in progress writes ``running`` with the iteration of its checkpoint on disk and
    its ``pid`` and ``host``, so that a sitting killed without a word shows as ``aborted``.
    """
    write_json(Path(logdir) / "status.json", {"status": status, "iteration": iteration, "message": message, **more})


def write_json(path, obj: dict) -> None:
    """An indented JSON file, atomically (test.json, evaluation results)."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def check_run_files(logdir: Path, files, resume: bool, overwrite: bool) -> None:
    """Refuse a run folder whose ``files`` would be written through a link, or that holds an earlier
    run's files but no checkpoint to resume (a folder with any run file in it is an existing run)."""
    links = [name for name in files if (logdir / name).is_symlink()]
    if links:
        raise ValueError(f"{logdir / links[0]} is a symbolic link: tinymeta writes a run's files only inside its "
                         "run folder, never through a link; remove the link, or choose another --logdir")
    if resume or (logdir / "checkpoint.npz").exists():
        return  # resuming, or refused (or replaced) for its checkpoint by the caller
    old = [name for name in files if (logdir / name).exists()]
    if old and not overwrite:
        raise FileExistsError(f"{logdir} holds the files of an earlier run ({', '.join(old)}) but no checkpoint to "
                              "resume: pass --overwrite to remove them, or choose another --logdir")


def read_config(logdir) -> Config:
    """``logdir/config.json`` as a validated Config (UnreadableFileError naming the file otherwise)."""
    path = Path(logdir) / "config.json"
    d = read_json(path)
    if not isinstance(d, dict):
        raise UnreadableFileError(path, f"holds a JSON {type(d).__name__}, not a run configuration")
    try:
        return Config.from_dict(d).validate()
    except (ValueError, TypeError) as exc:
        raise UnreadableFileError(path, str(exc).replace("\n", " ")) from None


def read_status(logdir) -> dict:
    """How a run stands: {'status', 'iteration', 'message'} (from status.json, else guessed from its files)."""
    logdir = Path(logdir)
    path = logdir / "status.json"
    if os.path.lexists(path):
        state = read_json(path)
        if not isinstance(state, dict):
            raise UnreadableFileError(path, f"holds a JSON {type(state).__name__}, not a run status")
        if not isinstance(state.get("status"), str) or not state["status"]:
            raise UnreadableFileError(path, f"'status' must be a word such as finished, got {state.get('status')!r}")
        if not _integer(state.get("iteration")) or state["iteration"] < 0:
            raise UnreadableFileError(path, f"'iteration' must be a non-negative integer, got "
                                            f"{state.get('iteration')!r}")
        if not isinstance(state.get("message", ""), str):
            raise UnreadableFileError(path, f"'message' must be text, got {state['message']!r}")
        if (state["status"] == "running" and state.get("host") == socket.gethostname()
                and _integer(state.get("pid")) and not process_alive(state["pid"])):
            state = {**state, "status": "aborted",  # killed (kill -9, power cut): what is on disk is the checkpoint
                     "message": f"the sitting ended without saving its status (killed?); resume continues from "
                                f"iteration {state['iteration']}"}
        return {"message": "", **state}
    rows = read_log(logdir) if (logdir / "log.jsonl").exists() else []
    iteration = rows[-1]["iteration"] if rows else 0
    return {"status": "finished" if (logdir / "test.json").exists() else "stopped", "iteration": iteration,
            "message": ""}


def check_evaluation(path, ev) -> dict:
    """An evaluation as ``train`` (test.json) or ``evaluate --out`` writes it; UnreadableFileError otherwise."""
    def bad(problem):
        raise UnreadableFileError(path, problem)

    if not isinstance(ev, dict):
        bad(f"holds a JSON {type(ev).__name__}, not an evaluation")
    if "loss" not in ev and "accuracy" not in ev:
        bad("has neither 'loss' nor 'accuracy'")
    for key in ("loss", "accuracy", "attacked_loss", "attacked_accuracy"):
        steps = ev.get(key, [{"mean": 0, "ci95": 0}])
        if not isinstance(steps, list) or not steps or not all(
                isinstance(s, dict) and _number(s.get("mean")) and _number(s.get("ci95")) for s in steps):
            bad(f"{key!r} must be a non-empty list of {{'mean', 'ci95'}} numbers (one per inner step), "
                f"got {str(steps)[:80]}")
    if not _integer(ev.get("iteration")) or ev["iteration"] < 0:
        bad(f"'iteration' must be a non-negative integer, got {ev.get('iteration')!r}")
    for key in ("train_seconds", "tasks", "steps"):
        if key in ev and (not _number(ev[key]) or not math.isfinite(ev[key]) or ev[key] < 0):
            bad(f"{key!r} must be a number >= 0, got {ev[key]!r}")
    if "device" in ev and not isinstance(ev["device"], str):
        bad(f"'device' must be text, got {ev['device']!r}")
    return ev


def read_evaluation(path) -> dict:
    """A checked evaluation file (test.json, eval-*.json)."""
    return check_evaluation(path, read_json(path))


# The files a run's own row on RESULTS.md is read from: each must hold tasks of the run's own ways and shots
CELL_FILES = ("test.json", "eval-test.json", "eval-test-nontransductive.json", "eval-nil-test.json")


def check_cell_task(path, ev: dict, cfg: Config | None) -> dict:
    """``ev`` read from one of a run's CELL_FILES: UnreadableFileError if it records tasks of other ways or
    shots than the run's (``evaluate --ways/--shots`` written under a name the report takes as the cell's).
    ``cfg`` None (a folder without config.json): nothing to compare with."""
    if cfg is None:
        return ev
    other = {k: ev[k] for k in ("ways", "shots") if k in ev and ev[k] != getattr(cfg, k)}
    if other:
        raise UnreadableFileError(path, f"it evaluates tasks of {other}, the run's are ways={cfg.ways}, "
                                        f"shots={cfg.shots}: this name stands for the run's own result on "
                                        "RESULTS.md; write other tasks' evaluations under another name "
                                        "(evaluate --out RUN/eval-test-20way.json)")
    return ev


def latest_test_evaluation(logdir) -> tuple:
    """A run's latest evaluation on the test tasks and its file's name, or (None, None): ``test.json``
    (written when training finishes) or ``eval-test.json`` (``tinymeta evaluate --out eval-test.json`` of a
    run stopped part-way), whichever is of the later iteration; a tie goes to ``test.json``. Each must be
    of the run's own ways and shots (:func:`check_cell_task`)."""
    logdir = Path(logdir)
    names = [name for name in ("test.json", "eval-test.json") if os.path.lexists(logdir / name)]
    cfg = read_config(logdir) if names and os.path.lexists(logdir / "config.json") else None
    found = [(check_cell_task(logdir / name, read_evaluation(logdir / name), cfg), name) for name in names]
    return max(found, key=lambda e: e[0]["iteration"], default=(None, None))


def _figure(values, kind: str) -> str:
    """'97.30%' for an accuracy, '0.0123' for a loss."""
    return f"{100 * values:.2f}%" if kind == "accuracy" else f"{values:.4f}"


def is_rl_run(logdir) -> bool:
    """Whether ``logdir`` is a 2D-navigation run folder (``tinymeta train --preset nav2d-...``)."""
    logdir = Path(logdir)
    try:
        if (logdir / "config.json").is_file():
            return json.loads((logdir / "config.json").read_text()).get("dataset") == RL_DATASET
        if (logdir / "results.json").is_file():  # made before config.json: the config is in results.json
            return "max_kl" in json.loads((logdir / "results.json").read_text()).get("config", {})
    except (OSError, ValueError, AttributeError):
        return False
    return False


def rl_summary(logdir) -> dict:
    """:func:`run_summary` of a 2D-navigation run: the test column is the average return after the last step."""
    logdir = Path(logdir)
    results = json.loads((logdir / "results.json").read_text()) if (logdir / "results.json").is_file() else None
    if (logdir / "config.json").is_file():
        cfg = json.loads((logdir / "config.json").read_text())
    else:
        cfg = results["config"]
    rows = read_log(logdir) if (logdir / "log.jsonl").exists() else []
    done = rows[-1]["iteration"] if rows else 0
    if (logdir / "status.json").exists():
        state = read_status(logdir)
    else:  # made before status.json: its results were written when its last sitting ended
        state = {"status": "finished" if results and done >= cfg["iterations"] else "stopped", "iteration": done}
    status = state["status"] if state["status"] == "finished" else f"{state['status']} at {state['iteration']}"
    test, seconds = "-", rows[-1].get("time", sum(r.get("seconds", 0.0) for r in rows)) if rows else 0.0
    if results:
        r = results["average_return"]["meta-learned"]
        test = f"return {r['mean'][-1]:.2f} ± {r['ci95'][-1]:.2f} after {r['steps'][-1]} steps"
        seconds = results.get("train_seconds", seconds)
    what = f"{cfg['algorithm']} {RL_DATASET}"
    return {"run": logdir.name, "what": what, "status": status, "iterations": f"{state['iteration']}/{cfg['iterations']}",
            "best val": "-", "test": test,
            "train time": f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"}


def run_summary(logdir) -> dict:
    """One row of ``tinymeta runs``: what a run is, how far it got, its best validation and its test figures.

    Every file is checked as it is read; a damaged one raises UnreadableFileError (or OSError) naming it.
    """
    logdir = Path(logdir)
    if is_rl_run(logdir):
        return rl_summary(logdir)
    cfg = read_config(logdir)
    state = read_status(logdir)
    status = state["status"]
    if status == "nan":
        status = f"NaN at {state['iteration']}"
    elif status != "finished":
        status = f"{status} at {state['iteration']}"
    rows = read_log(logdir) if (logdir / "log.jsonl").exists() else []
    kind = "accuracy" if any("accuracy" in r for r in rows if r.get("split") == "val") else "loss"
    val = [r[kind][-1] for r in rows if r.get("split") == "val" and kind in r]
    best_val = (max(val) if kind == "accuracy" else min(val)) if val else None
    test, seconds = None, (rows[-1]["time"] if rows else 0.0)
    ev, name = latest_test_evaluation(logdir)
    if ev is not None:
        key = "accuracy" if "accuracy" in ev else "loss"
        test = f"{_figure(ev[key][-1]['mean'], key)} ± {_figure(ev[key][-1]['ci95'], key)}"
        if name == "test.json":
            seconds = ev.get("train_seconds", seconds)
        else:
            test += f" (at {ev['iteration']})"
    classification = TASK_FAMILIES[cfg.dataset].kind == "classification"
    what = f"{cfg.algorithm} {cfg.dataset}" + (f" {cfg.ways}w{cfg.shots}s" if classification else f" {cfg.shots}-shot")
    if cfg.inner_steps == 0:  # no inner step while training: the pretrained baseline
        what += ", no inner step"
    return {"run": logdir.name, "what": what, "status": status,
            "iterations": f"{state['iteration']}/{cfg.iterations}",
            "best val": "-" if best_val is None else f"{kind} {_figure(best_val, kind)}",
            "test": test or "-", "train time": f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"}


def find_runs(folder) -> list[Path]:
    """The run folders in ``folder`` (a folder holding config.json), or ``folder`` itself if it is one.

    A folder whose config.json is there but unreadable (a dangling link, a device) is listed too, so
    that ``tinymeta runs`` reports it rather than leaving it out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: give the folder that holds your run folders "
                                "(default runs/)")
    if os.path.lexists(folder / "config.json") or is_rl_run(folder):
        return [folder]
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and (os.path.lexists(p / "config.json") or is_rl_run(p)))


def printable(text: str) -> str:
    """``text`` with every control character (terminal escape codes, newlines) shown as an escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def _summary_or_problem(logdir: Path) -> tuple[dict, str | None]:
    """(the run's row, None), or (a row marking it unreadable, what is wrong and in which file)."""
    try:
        return run_summary(logdir), None
    except (ValueError, OSError) as exc:  # UnreadableFileError, FileNotFoundError, PermissionError, ...
        problem = str(exc) or type(exc).__name__
        file = getattr(exc, "path", None) or getattr(exc, "filename", None)
        where = os.path.basename(file) if file else "?"
        return {"run": logdir.name, "what": "?", "status": f"unreadable ({where})", "iterations": "-",
                "best val": "-", "test": "-", "train time": "-"}, problem


def main(folder="runs") -> int:
    """``tinymeta runs [FOLDER]``: an aligned table of the runs in FOLDER.

    As ``ls`` does with a partly unreadable tree, a run folder with a damaged or unreadable file
    does not hide the others: its row says ``unreadable (FILE)``, one ``error:`` line per such
    folder on stderr names the file and the problem, and the exit status is 1 (0 when every run
    was read). Text from the files is printed with control characters escaped.
    """
    found = find_runs(folder)
    if not found:
        print(f"no runs in {printable(folder)} (a run folder holds config.json; train one with tinymeta train)")
        return 0
    results = [_summary_or_problem(p) for p in found]
    rows = [{k: printable(v) for k, v in row.items()} for row, _ in results]
    head = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in head}
    for r in [dict(zip(head, head))] + rows:
        print("  ".join(r[k].ljust(widths[k]) for k in head).rstrip(), flush=True)
    problems = [problem for _, problem in results if problem is not None]
    for problem in problems:
        print(f"tinymeta runs: error: {printable(problem)}", file=sys.stderr)
    return 1 if problems else 0
