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
import socket
import sys
from pathlib import Path

from ..files import process_alive, write_text
from ..tasks import TASK_FAMILIES
from .checkpoint import config_diff
from .config import Config

RUN_FILES = ("checkpoint.npz", "log.jsonl", "config.json", "test.json", "curves.png", "status.json")
# Settings a resumed run may change: they do not alter the meta-parameters it computes (more
# iterations only under a constant learning rate: a linear schedule's every step depends on them).
RESUMABLE_CHANGES = {"iterations", "log_interval", "val_interval", "checkpoint_interval", "test_tasks",
                     "val_tasks"}


def read_log(logdir) -> list[dict]:
    """The rows of ``logdir/log.jsonl``, in order."""
    path = Path(logdir) / "log.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no log.jsonl in {logdir}: is it a tinymeta run folder?")
    rows = []
    text = path.read_text()
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if n == len(lines) and not text.endswith("\n"):  # a write cut off by a kill: skip, and say so
                    print(f"note: {path}, line {n}: skipped a torn last line (not a whole row)", file=sys.stderr)
                    break
                raise ValueError(f"{path}, line {n}: not JSON ({exc})") from None
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
    if saved.lr_schedule == "linear" and cfg.iterations != saved.iterations:
        raise ValueError(f"cannot resume {path} with --iterations {cfg.iterations}: its linear learning-rate "
                         f"schedule decays to 0 at iteration {saved.iterations}, so every later step would "
                         f"change; resume with --iterations {saved.iterations}, or start a new --logdir")
    if diffs:
        raise ValueError(f"cannot resume {path}: it was made with another configuration:\n  "
                         + "\n  ".join(diffs) + "\nresume with the same settings, or start a new --logdir")


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


def read_status(logdir) -> dict:
    """How a run stands: {'status', 'iteration', 'message'} (from status.json, else guessed from its files)."""
    logdir = Path(logdir)
    if (logdir / "status.json").exists():
        state = json.loads((logdir / "status.json").read_text())
        if (state.get("status") == "running" and state.get("host") == socket.gethostname()
                and isinstance(state.get("pid"), int) and not process_alive(state["pid"])):
            state = {**state, "status": "aborted",  # killed (kill -9, power cut): what is on disk is the checkpoint
                     "message": f"the sitting ended without saving its status (killed?); resume continues from "
                                f"iteration {state.get('iteration')}"}
        return state
    rows = read_log(logdir) if (logdir / "log.jsonl").exists() else []
    iteration = rows[-1]["iteration"] if rows else 0
    return {"status": "finished" if (logdir / "test.json").exists() else "stopped", "iteration": iteration,
            "message": ""}


def _figure(values, kind: str) -> str:
    """'97.30%' for an accuracy, '0.0123' for a loss."""
    return f"{100 * values:.2f}%" if kind == "accuracy" else f"{values:.4f}"


def run_summary(logdir) -> dict:
    """One row of ``tinymeta runs``: what a run is, how far it got, its best validation and its test figures."""
    logdir = Path(logdir)
    cfg = Config.from_dict(json.loads((logdir / "config.json").read_text()))
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
    if (logdir / "test.json").exists():
        ev = json.loads((logdir / "test.json").read_text())
        key = "accuracy" if "accuracy" in ev else "loss"
        test = f"{_figure(ev[key][-1]['mean'], key)} ± {_figure(ev[key][-1]['ci95'], key)}"
        seconds = ev.get("train_seconds", seconds)
    classification = TASK_FAMILIES[cfg.dataset].kind == "classification"
    what = f"{cfg.algorithm} {cfg.dataset}" + (f" {cfg.ways}w{cfg.shots}s" if classification else f" {cfg.shots}-shot")
    if cfg.inner_steps == 0:  # no inner step while training: the pretrained baseline
        what += ", no inner step"
    return {"run": logdir.name, "what": what, "status": status,
            "iterations": f"{state['iteration']}/{cfg.iterations}",
            "best val": "-" if best_val is None else f"{kind} {_figure(best_val, kind)}",
            "test": test or "-", "train time": f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"}


def find_runs(folder) -> list[Path]:
    """The run folders in ``folder`` (a folder holding config.json), or ``folder`` itself if it is one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: give the folder that holds your run folders "
                                "(default runs/)")
    if (folder / "config.json").exists():
        return [folder]
    return sorted(p for p in folder.iterdir() if (p / "config.json").is_file())


def main(folder="runs") -> int:
    """``tinymeta runs [FOLDER]``: an aligned table of the runs in FOLDER."""
    found = find_runs(folder)
    if not found:
        print(f"no runs in {folder} (a run folder holds config.json; train one with tinymeta train)")
        return 0
    rows = [run_summary(p) for p in found]
    head = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in head}
    for r in [dict(zip(head, head))] + rows:
        print("  ".join(r[k].ljust(widths[k]) for k in head).rstrip())
    return 0
