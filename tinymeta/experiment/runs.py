"""A run folder (``logdir``) and its files.

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
from pathlib import Path

from ..files import write_text
from .checkpoint import config_diff
from .config import Config

RUN_FILES = ("checkpoint.npz", "log.jsonl", "config.json", "test.json", "curves.png")
# Settings a resumed run may change: they do not alter the numbers it computes.
RESUMABLE_CHANGES = {"iterations", "log_interval", "val_interval", "checkpoint_interval", "test_tasks",
                     "val_tasks"}


def read_log(logdir) -> list[dict]:
    """The rows of ``logdir/log.jsonl``, in order."""
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


def write_json(path, obj: dict) -> None:
    """An indented JSON file, atomically (test.json, evaluation results)."""
    write_text(path, json.dumps(obj, indent=2) + "\n")
