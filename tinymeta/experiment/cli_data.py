"""The data subcommands of the ``tinymeta`` command line: ``show-task`` and ``download``.

``tinymeta.experiment.cli`` calls :func:`add_subcommands` on its argparse subparsers; each command's
``func`` takes the parsed arguments and returns the exit code.

Examples::

    tinymeta show-task --dataset omniglot --ways 5 --shots 1 --out task.png
    tinymeta show-task --dataset sine --shots 10 --out sine.png
    tinymeta download omniglot --dest data/omniglot
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..data import download_omniglot
from ..tasks import TASK_FAMILIES
from . import viz
from .presets import default_config


def add_subcommands(subparsers) -> None:
    """Register ``show-task`` and ``download`` on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "show-task", help="sample one task and save a picture of it",
        description="Sample a meta-batch with a seed and save a picture of its first task "
                    "(support and query images per class, or sine curves).")
    p.add_argument("--dataset", choices=sorted(TASK_FAMILIES), default="omniglot")
    p.add_argument("--ways", type=int, default=5, help="classes per task (image datasets; default 5)")
    p.add_argument("--shots", type=int, default=None,
                   help="support examples per class (default: the dataset's MAML preset, 1; sine: points per "
                        "task, 10)")
    p.add_argument("--queries", type=int, default=None,
                   help="query examples per class (default: the dataset's MAML preset: Omniglot as many as --shots, "
                        "1 by default; mini-ImageNet 15; sine: query points, 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("train", "val", "test"), default="train",
                   help="character/class split (image datasets)")
    p.add_argument("--split-mode", choices=("maml", "lake", "reptile"), default="maml",
                   help="Omniglot character split (default maml: 1100/100/423)")
    p.add_argument("--no-rotate", action="store_true", help="no 90-degree rotations (datasets that rotate: Omniglot)")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default $TINYMETA_DATA, then ./data/<dataset>)")
    p.add_argument("--out", default="task.png", help="where to write the PNG (default task.png)")
    p.set_defaults(func=show_task)

    d = subparsers.add_parser(
        "download", help="download a dataset (Omniglot's two official zips)",
        description="Download Omniglot's images_background.zip and images_evaluation.zip from "
                    "https://github.com/brendenlake/omniglot into DEST (md5-checked).")
    d.add_argument("dataset", choices=("omniglot",),
                   help="only Omniglot can be downloaded; mini-ImageNet comes from ImageNet")
    d.add_argument("--dest", default="data/omniglot", help="folder for the zips (default data/omniglot)")
    d.add_argument("--base-url", default=None, help="a mirror holding the two zips (default: GitHub)")
    d.add_argument("--overwrite", action="store_true", help="download again even if the files exist")
    d.set_defaults(func=download)


def _fail(command: str, exc: Exception) -> int:
    """One ``tinymeta COMMAND: error:`` line naming what is missing and how to get it; exit status 2."""
    message = str(exc) or f"{type(exc).__name__} (no message)"
    print(f"tinymeta {command}: error: {message}", file=sys.stderr)
    return 2


def show_task(args: argparse.Namespace) -> int:
    """``tinymeta show-task``: sample one meta-batch (seeded) and save a picture of task 0."""
    rng = np.random.default_rng(args.seed)
    cfg = default_config("maml", args.dataset, args.ways, args.shots)  # its shots and queries are the defaults
    k = cfg.shots if args.shots is None else args.shots
    q = cfg.queries if args.queries is None else args.queries
    cfg = cfg.replace(ways=args.ways, shots=k, queries=q, split_mode=args.split_mode)
    if args.no_rotate:
        cfg = cfg.replace(rotations="none")
    try:
        tasks = TASK_FAMILIES[args.dataset].from_config(cfg, device="cpu", data_dir=args.data_dir)
        if tasks.kind == "regression":
            path = viz.plot_sine_tasks(tasks.sample(4, rng, args.split), args.out)
        else:
            batch = tasks.sample(1, rng, split=args.split)
            title = (f"{args.dataset} {args.split}, seed {args.seed}: {args.ways}-way {k}-shot, "
                     f"{q} {'query' if q == 1 else 'queries'} per class")
            path = viz.save_task_grid(batch, args.out, title=title)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        return _fail("show-task", exc)
    print(f"wrote {path}")
    return 0


def download(args: argparse.Namespace) -> int:
    """``tinymeta download omniglot --dest DIR``: fetch the two official zips."""
    kw = {} if args.base_url is None else {"base_url": args.base_url}
    try:
        paths = download_omniglot(args.dest, overwrite=args.overwrite, **kw)
    except (RuntimeError, OSError) as exc:
        return _fail("download", exc)
    for path in paths:
        print(f"ready: {path}")
    print(f"use it with --data-dir {args.dest} (or export TINYMETA_DATA={args.dest})")
    return 0


__all__ = ["add_subcommands", "show_task", "download"]
