"""The ``tinymeta`` command (also ``python -m tinymeta``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..files import write_text
from ..tasks import TASK_FAMILIES
from . import bench, cli_data, demo, report
from .checkpoint import load_checkpoint
from .config import Config
from .curves import plot_runs
from .evaluation import evaluate_run
from .loop import train
from .presets import PRESETS, default_config, preset_source


def _bool(text: str) -> bool:
    """'True'/'False' (and 1/0, yes/no), as MAML's flags take them."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def _dataset_names() -> str:
    """'sine (sinusoid), omniglot, miniimagenet': the registry's names and their aliases."""
    return ", ".join(name + (f" ({', '.join(f.aliases)})" if f.aliases else "") for name, f in TASK_FAMILIES.items())


def _dataset(text: str) -> str:
    value = text.lower()
    for name, family in TASK_FAMILIES.items():
        if value == name or value in family.aliases:
            return name
    raise argparse.ArgumentTypeError(f"unknown dataset {text!r}: use one of {_dataset_names()}")


# (flags, dest, type, help); the second spelling of a flag is the original MAML code's name
CONFIG_FLAGS = [
    (["--algorithm"], "algorithm", str, "maml, fomaml, meta-sgd, reptile, anil, nil or gradient-agreement"),
    (["--dataset", "--datasource"], "dataset", _dataset, _dataset_names()),
    (["--ways", "--num_classes"], "ways", int, "classes per task"),
    (["--shots", "--update_batch_size"], "shots", int, "support examples per class (regression: points per task)"),
    (["--queries"], "queries", int, "query examples per class (regression: points per task)"),
    (["--train-shots"], "train_shots", int, "shots while meta-training, if different (Reptile)"),
    (["--meta-batch", "--meta_batch_size"], "meta_batch", int, "tasks per meta-iteration"),
    (["--inner-lr", "--update_lr"], "inner_lr", float, "inner learning rate alpha"),
    (["--inner-steps", "--num_updates"], "inner_steps", int, "inner steps while meta-training"),
    (["--eval-inner-steps"], "eval_inner_steps", int, "inner steps at evaluation"),
    (["--meta-lr", "--meta_lr"], "meta_lr", float, "outer learning rate (Reptile: epsilon)"),
    (["--meta-optimizer"], "meta_optimizer", str, "adam or sgd"),
    (["--lr-schedule"], "lr_schedule", str, "constant or linear (to 0)"),
    (["--iterations", "--metatrain_iterations"], "iterations", int, "meta-iterations"),
    (["--inner-optimizer"], "inner_optimizer", str, "Reptile's inner optimizer: sgd or adam (beta1 = 0)"),
    (["--inner-batch"], "inner_batch", int, "Reptile's inner mini-batch size"),
    (["--filters", "--num_filters"], "filters", int, "conv filters per layer"),
    (["--pool", "--max_pool"], "pool", _bool, "max-pool instead of strided conv (True/False)"),
    (["--split-mode"], "split_mode", str, "Omniglot split: maml, lake or reptile"),
    (["--rotations"], "rotations", str, "Omniglot rotations: per-task (MAML), train-classes (Reptile) or none"),
    (["--ink"], "ink", int, "Omniglot stroke value: 1 (MAML) or 0 (Reptile: the PNGs as read)"),
    (["--inner-state"], "inner_state", str, "Reptile's inner optimizer state: fresh or persistent (the original)"),
    (["--eval-inner-batch"], "eval_inner_batch", int, "Reptile's inner mini-batch at evaluation"),
    (["--transductive"], "transductive", _bool, "query examples through batch norm together (True/False)"),
    (["--val-interval"], "val_interval", int, "iterations between validations (0: never)"),
    (["--val-tasks"], "val_tasks", int, "validation tasks"),
    (["--test-tasks"], "test_tasks", int, "test tasks of the final evaluation"),
    (["--log-interval"], "log_interval", int, "iterations between log lines"),
    (["--checkpoint-interval"], "checkpoint_interval", int, "iterations between checkpoints (0: only at the end)"),
    (["--seed"], "seed", int, "training seed (task sampling and initialisation)"),
    (["--dtype"], "dtype", str, "float32 or float64"),
]
REPTILE_ONLY = ("inner_optimizer", "inner_batch", "train_shots", "inner_state", "eval_inner_batch")


def _add_config_flags(p):
    group = p.add_argument_group("run configuration (override the preset)")
    for flags, dest, typ, text in CONFIG_FLAGS:
        group.add_argument(*flags, dest=dest, type=typ, default=None, help=text)
    group.add_argument("--first-order", dest="first_order", action="store_const", const=True, default=None,
                       help="first-order MAML / Meta-SGD / ANIL (inner gradients as constants)")
    group.add_argument("--stop_grad", dest="first_order", type=_bool, help="MAML's flag for --first-order")


def _overrides(args) -> dict:
    names = [dest for _, dest, _, _ in CONFIG_FLAGS] + ["first_order"]
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def resolve_config(args, parser) -> Config:
    """The run's Config: preset (or the nearest one), then the flags given; argparse errors on bad combinations."""
    over = _overrides(args)
    try:
        if args.resume:
            if args.preset:
                parser.error("--resume takes the run's configuration from its checkpoint: drop --preset")
            ckpt = Path(args.logdir or "") / "checkpoint.npz"
            if not args.logdir or not ckpt.exists():
                parser.error(f"--resume needs --logdir of an existing run (no {ckpt})")
            base = Config.from_dict(load_checkpoint(ckpt).config)
        elif args.preset:
            base = PRESETS[args.preset]
        else:
            base = default_config(over.get("algorithm", "maml"), over.get("dataset", Config.dataset),
                                  over.get("ways"), over.get("shots"))
        if "shots" in over and "queries" not in over and base.queries == base.shots:
            over["queries"] = over["shots"]  # a protocol with K queries per class keeps them tied (MAML: main.py:249)
        cfg = base.replace(**over)
        if cfg.algorithm != "reptile":
            given = [k for k in REPTILE_ONLY if k in over]
            if given:
                parser.error(f"--{given[0].replace('_', '-')} applies to Reptile only (algorithm is {cfg.algorithm})")
        if cfg.algorithm == "reptile" and over.get("first_order"):
            parser.error("--first-order: Reptile is first order already")
        unused = TASK_FAMILIES[cfg.dataset].unused_fields
        if any(k in over for k in unused):
            flags = "/".join(f"--{k.replace('_', '-')}" for k in unused)
            parser.error(f"{flags} apply to image datasets, not {cfg.dataset}")
        return cfg.validate()
    except ValueError as exc:
        parser.error(str(exc))


def _train(args, parser):
    cfg = resolve_config(args, parser)
    logdir = args.logdir or str(Path("runs") / (args.preset or f"{cfg.algorithm}-{cfg.dataset}"))
    if args.train is False:  # MAML's --train=False: evaluate the run in --logdir
        split = "test" if args.test_set else "val"
        evaluate_run(logdir, device=args.device, data_dir=args.data_dir, split=split,
                     num_tasks=cfg.test_tasks if split == "test" else cfg.val_tasks)
        return 0
    print(f"run: {logdir}\nconfig: {cfg}")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in --logdir, --overwrite replaces it: choose one")
    result = train(cfg, logdir, device=args.device, data_dir=args.data_dir, resume=args.resume, overwrite=args.overwrite,
                   stop_at=args.stop_at, time_limit=args.time_limit, progress=not args.no_progress)
    return 0 if result["status"] in ("finished", "stopped", "time limit") else 130


def _evaluate(args, parser):
    ev = evaluate_run(args.logdir, device=args.device, data_dir=args.data_dir, split=args.split,
                      num_tasks=args.tasks, steps=args.steps, algorithm=args.algorithm, shots=args.shots)
    if args.out:
        write_text(args.out, json.dumps(ev, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _plot(args, parser):
    try:
        out = plot_runs(args.logdirs, args.out, labels=args.labels)
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinymeta", description="Gradient-based meta-learning from scratch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_demo = sub.add_parser("demo", help="derivatives of order 1-3 and a MAML meta-gradient next to finite differences")
    p_demo.set_defaults(func=demo.main)

    p_bench = sub.add_parser("bench", help="benchmarks: meta-gradient phases, each algorithm's meta-iteration, task sampling")
    p_bench.add_argument("--device", default=None, help="cpu or cuda (default: $TINYMETA_DEVICE or cpu)")
    p_bench.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement (median reported)")
    p_bench.add_argument("--only", choices=["engine", "algorithms", "tasks"], help="run one group only")
    p_bench.add_argument("--quick", action="store_true", help="skip the slow Omniglot conv-net timing")
    p_bench.add_argument("--presets", nargs="+", default=None,
                         help="presets to time one meta-iteration of (default: sine and Omniglot 5w1s for each "
                              "algorithm, plus 20w1s on a GPU)")
    p_bench.add_argument("--data-dir", default=None, help="Omniglot folder (default: $TINYMETA_DATA, ./data/omniglot)")
    p_bench.set_defaults(func=bench.main)

    p_train = sub.add_parser("train", help="meta-train (and finally evaluate) a preset or configuration",
                             description="Meta-train with one of the papers' protocols (--preset), any field "
                                         "overridden by flags. The original MAML code's flags are accepted too.")
    p_train.add_argument("--preset", choices=sorted(PRESETS), metavar="PRESET",
                         help="a cell of the papers' tables, e.g. maml-omniglot-5w1s, meta-sgd-sine-10shot "
                              "(see `tinymeta presets`)")
    p_train.add_argument("--logdir", help="run folder (default runs/PRESET)")
    p_train.add_argument("--device", help="cpu or cuda")
    p_train.add_argument("--data-dir", help="dataset folder (default $TINYMETA_DATA, then ./data/<dataset>)")
    p_train.add_argument("--resume", action="store_true", help="continue the run in --logdir from its checkpoint")
    p_train.add_argument("--overwrite", action="store_true", help="replace a previous run in --logdir")
    p_train.add_argument("--stop-at", type=int, help="end this sitting at this iteration (checkpoint saved)")
    p_train.add_argument("--time-limit", type=float, help="end this sitting after this many seconds (checkpoint saved)")
    p_train.add_argument("--no-progress", action="store_true", help="no progress bar")
    p_train.add_argument("--train", type=_bool, default=True, help="MAML's flag: --train=False evaluates --logdir")
    p_train.add_argument("--test_set", type=_bool, default=False, help="MAML's flag: with --train=False, use test tasks")
    _add_config_flags(p_train)
    p_train.set_defaults(func=lambda args: _train(args, p_train))

    p_ev = sub.add_parser("evaluate", help="evaluate a run's checkpoint on held-out tasks")
    p_ev.add_argument("--logdir", required=True)
    p_ev.add_argument("--split", choices=["test", "val"], default="test")
    p_ev.add_argument("--tasks", type=int, help="number of tasks (default: the run's test_tasks, 600)")
    p_ev.add_argument("--steps", type=int, help="inner steps (default: the run's eval_inner_steps)")
    p_ev.add_argument("--shots", type=int, help="evaluate with another number of shots")
    p_ev.add_argument("--algorithm", choices=["nil"], help="nil: evaluate an ANIL run without its head")
    p_ev.add_argument("--device")
    p_ev.add_argument("--data-dir")
    p_ev.add_argument("--out", help="also write the numbers as JSON here")
    p_ev.set_defaults(func=lambda args: _evaluate(args, p_ev))

    p_plot = sub.add_parser("plot", help="learning curves of one or more runs on one figure")
    p_plot.add_argument("logdirs", nargs="+", metavar="LOGDIR")
    p_plot.add_argument("--out", default="curves.png")
    p_plot.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    p_plot.set_defaults(func=lambda args: _plot(args, p_plot))

    p_report = sub.add_parser("report", help="write RESULTS.md from the run folders in results/runs")
    p_report.add_argument("--root", default=".", help="repository root (default: here)")
    p_report.set_defaults(func=report.main)

    p_presets = sub.add_parser("presets", help="list the presets and what they set")
    p_presets.add_argument("--json", action="store_true",
                           help="one JSON object per preset: its whole configuration and its sources")
    p_presets.set_defaults(func=lambda args: _presets_json() if args.json else _list_presets())

    cli_data.add_subcommands(sub)
    return parser


def _list_presets() -> int:
    for name, cfg in PRESETS.items():
        print(f"{name:28} {cfg.meta_batch:>3} tasks/it  inner {cfg.inner_steps} x {cfg.inner_lr:g}  "
              f"meta {cfg.meta_optimizer} {cfg.meta_lr:g}  {cfg.iterations} its")
    return 0


def _presets_json() -> int:
    """Every preset as one line of JSON: {"name", "config", "source"} (source: paper, cell, code lines)."""
    for name, cfg in PRESETS.items():
        print(json.dumps({"name": name, "config": cfg.to_dict(), "source": preset_source(name)}))
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
