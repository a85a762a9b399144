"""The ``tinymeta`` command (also ``python -m tinymeta``)."""
from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sys
from pathlib import Path

from .. import __version__, backend
from ..algorithms import ALGORITHMS
from ..files import check_writable, write_text
from ..tasks import TASK_FAMILIES
from . import bench, cli_data, copy_task, demo, docs, report, rl, runs
from .config import Config
from .curves import default_out, plot_runs
from .evaluation import evaluate_run
from .factories import task_family
from .loop import train
from .presets import ALL_PRESET_NAMES, PRESETS, RL_PRESETS, default_config, preset_source


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
    (["--algorithm"], "algorithm", str,
     "maml, fomaml, meta-sgd, reptile, anil, nil, gradient-agreement, adml, caml, taml, maml++, mann, protonet, "
     "gaussian-protonet, semi-protonet, siamese, matching or relationnet"),
    (["--dataset", "--datasource"], "dataset", _dataset, _dataset_names()),
    (["--ways", "--num_classes"], "ways", int, "classes per task"),
    (["--shots", "--update_batch_size"], "shots", int, "support examples per class (regression: points per task)"),
    (["--queries"], "queries", int, "query examples per class (regression: points per task)"),
    (["--train-shots"], "train_shots", int, "shots while meta-training, if different (Reptile)"),
    (["--train-ways"], "train_ways", int, "classes per task while meta-training, if different (no inner loop only)"),
    (["--train-queries"], "train_queries", int, "queries per class while meta-training, if different"),
    (["--meta-batch", "--meta_batch_size"], "meta_batch", int, "tasks per meta-iteration"),
    (["--task-chunk"], "task_chunk", int,
     "take a meta-batch's tasks this many at a time: the same gradient in less memory (default: all at once)"),
    (["--inner-lr", "--update_lr"], "inner_lr", float, "inner learning rate alpha"),
    (["--inner-steps", "--num_updates"], "inner_steps", int, "inner steps while meta-training"),
    (["--eval-inner-steps"], "eval_inner_steps", int, "inner steps at evaluation"),
    (["--meta-lr", "--meta_lr"], "meta_lr", float, "outer learning rate (Reptile: epsilon)"),
    (["--meta-optimizer"], "meta_optimizer", str, "adam or sgd"),
    (["--lr-schedule"], "lr_schedule", str,
     "constant, linear (to 0), cosine (to --meta-lr-min) or step (--lr-decay-every)"),
    (["--lr-decay-every"], "lr_decay_every", int, "step schedule: iterations between decays"),
    (["--lr-decay-factor"], "lr_decay_factor", float, "step schedule: factor of each decay (default 0.5)"),
    (["--iterations", "--metatrain_iterations"], "iterations", int, "meta-iterations"),
    (["--inner-optimizer"], "inner_optimizer", str, "Reptile's inner optimizer: sgd or adam (beta1 = 0)"),
    (["--inner-batch"], "inner_batch", int, "Reptile's inner mini-batch size"),
    (["--filters", "--num_filters"], "filters", int, "conv filters per layer"),
    (["--pool", "--max_pool"], "pool", _bool, "max-pool instead of strided conv (True/False)"),
    (["--split-mode"], "split_mode", str,
     "Omniglot split: maml, lake, reptile, koch, vinyals, vinyals-trainval or relationnet"),
    (["--rotations"], "rotations", str,
     "Omniglot rotations: per-task (MAML), per-task-train (MAML++), train-classes (Reptile), all-classes (ProtoNet), "
     "whole-task (relation networks) or none"),
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
    (["--adv-epsilon"], "adv_epsilon", float, "ADML: FGSM epsilon (images in [0, 1])"),
    (["--context-size"], "context_size", int, "CAML: context parameters per task"),
    (["--covariance"], "covariance", str, "Gaussian prototypical networks: radius or diagonal"),
    (["--unlabeled"], "unlabeled", int, "semi-supervised episodes: unlabeled examples per class"),
    (["--distractors"], "distractors", int, "semi-supervised episodes: distractor classes (unlabeled only)"),
    (["--refinement"], "refinement", str, "semi-protonet: soft-kmeans, distractor-cluster or masked"),
    (["--cluster-steps"], "cluster_steps", int, "semi-protonet: soft k-means refinement steps"),
    (["--taml-lambda"], "taml_lambda", float, "TAML: lambda, the weight of its entropy or inequality term"),
    (["--taml-measure"], "taml_measure", str,
     "TAML: entropy, theil, ge:ALPHA, atkinson:EPSILON, gini or variance-of-logs"),
    (["--memory-heads"], "memory_heads", int, "MANN: read heads (0: its LSTM baseline, no memory)"),
    (["--mann-write"], "mann_write", str,
     "MANN: what a head writes, key (the paper's) or add (a separate add vector, as tristandeleu/ntm-one-shot)"),
    (["--mann-least-used"], "mann_least_used", str,
     "MANN: head h writes a new memory to the h-th least-used location (each, as tristandeleu/ntm-one-shot) or "
     "every head to all n least-used ones (all, the paper's w^lu)"),
    (["--episode-shift"], "episode_shift", int,
     "online episodes (MANN): move each drawing by up to this many pixels each way, at random (0: not at all)"),
    (["--meta-lr-min"], "meta_lr_min", float, "the cosine schedule's last outer learning rate"),
    (["--epoch-iterations"], "epoch_iterations", int,
     "iterations per epoch of the cosine, multi-step-loss and first-order schedules (MAML++: 500)"),
    (["--multi-step-loss-iterations"], "multi_step_loss_iterations", int,
     "MAML++: weigh every inner step's query loss for this many iterations (0: off)"),
    (["--first-order-iterations"], "first_order_iterations", int,
     "MAML++: first order for this many iterations, then second order (0: off)"),
    (["--learned-step-rates"], "learned_step_rates", _bool,
     "MAML++: a learned inner rate per weight tensor and inner step (True/False)"),
    (["--per-step-bn"], "per_step_bn", _bool, "MAML++: batch-norm scale and shift per inner step (True/False)"),
    (["--activation"], "activation", str, "conv nets' nonlinearity: relu or leaky_relu (MAML++)"),
    (["--siamese-loss"], "siamese_loss", str, "Siamese: bce (Koch et al.: weighted L1, sigmoid) or contrastive (the book)"),
    (["--margin"], "margin", float, "Siamese, contrastive loss: the margin m"),
    (["--fce"], "fce", _bool, "matching networks: full context embeddings (True/False)"),
    (["--fce-steps"], "fce_steps", int, "matching networks: the attention LSTM's processing steps K"),
    (["--matching-distance"], "matching_distance", str,
     "matching networks: cosine (the paper's attention) or l2 (softmax of -squared distances, oscarknagg/few-shot)"),
]
REPTILE_ONLY = ("inner_optimizer", "inner_batch", "train_shots", "inner_state", "eval_inner_batch")
TAML_ONLY = ("taml_lambda", "taml_measure")
INNER_LOOP_ONLY = ("inner_lr", "inner_steps", "eval_inner_steps", "first_order", "inner_optimizer", "inner_batch",
                   "inner_state", "eval_inner_batch")


class _Setting(argparse.Action):
    """Store a run setting; refuse its other spelling giving another value (--first-order --stop_grad False).

    (A flag repeated in the same spelling overrides itself, as argparse's flags do.)
    """

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.const if self.nargs == 0 else values
        given = vars(namespace).setdefault("_settings_given", {})  # dest -> (flag, value)
        if self.dest in given and given[self.dest][0] != option_string and given[self.dest][1] != value:
            flag, before = given[self.dest]
            fail(parser, f"{flag} {before} and {option_string} {value} contradict each other (both set "
                         f"{self.dest}): give one")
        given[self.dest] = (option_string, value)
        setattr(namespace, self.dest, value)


def _add_config_flags(p):
    group = p.add_argument_group("run configuration (override the preset)")
    for flags, dest, typ, text in CONFIG_FLAGS:
        group.add_argument(*flags, dest=dest, type=typ, default=None, help=text, action=_Setting)
    group.add_argument("--first-order", dest="first_order", action=_Setting, nargs=0, const=True, default=None,
                       help="first-order MAML / Meta-SGD / ANIL (inner gradients as constants)")
    group.add_argument("--stop_grad", dest="first_order", type=_bool, action=_Setting,
                       help="MAML's flag for --first-order")


def _add_rl_flags(p):
    group = p.add_argument_group("2D navigation (the nav2d-* presets; reinforcement learning)")
    for flags, dest, typ, text in rl.RL_FLAGS:
        group.add_argument(*flags, dest=dest, type=typ, default=None, help=text,
                           **({"nargs": "+"} if dest == "hidden" else {}))


def _rl_overrides(args) -> dict:
    return {dest: getattr(args, dest) for _, dest, _, _ in rl.RL_FLAGS if getattr(args, dest, None) is not None}


def _overrides(args) -> dict:
    names = [dest for _, dest, _, _ in CONFIG_FLAGS] + ["first_order"]
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def fail(parser, message: str):
    """End the command with one ``error:`` line (exit status 2), without the usage block."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes end in one ``error:`` line and a pointer to ``--help``, not the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\nsee `{self.prog} --help`\n")


def check_preset(name: str, names=None) -> str:
    """``name`` if it is one of ``names`` (default: the presets of the one loop); else ValueError suggesting the closest."""
    names = PRESETS if names is None else names
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ValueError(f"unknown preset {name!r}; {hint}`tinymeta presets` lists them")
    return name


def check_device(name):
    """tinymeta's name for the device asked for; ValueError saying how to get it when it cannot be used."""
    try:
        return backend.check_device(name)
    except RuntimeError as exc:  # CuPy missing or no GPU: a setting to change, not a bug
        raise ValueError(f"{exc}; or run on the CPU with --device cpu") from None


def resolve_config(args, parser) -> Config:
    """The run's Config: preset (or the nearest one), then the flags given; one error line on bad settings."""
    over = _overrides(args)
    try:
        if args.resume:
            if args.preset:
                fail(parser, "--resume takes the run's configuration from its checkpoint: drop --preset")
            ckpt = Path(args.logdir or "") / "checkpoint.npz"
            if not args.logdir or not ckpt.exists():
                fail(parser, f"--resume needs --logdir of an existing run (no {ckpt})")
            base = runs.checkpoint_config(ckpt)  # names the file when its configuration is invalid
        elif args.preset:
            base = PRESETS[check_preset(args.preset, ALL_PRESET_NAMES)]
        else:
            base = default_config(over.get("algorithm", "maml"), over.get("dataset", Config.dataset),
                                  over.get("ways"), over.get("shots"))
        if "shots" in over and "queries" not in over and base.queries == base.shots:
            over["queries"] = over["shots"]  # a protocol with K queries per class keeps them tied (MAML: main.py:249)
        if over.get("lr_schedule", "step") != "step" and not {"lr_decay_every", "lr_decay_factor"} & set(over):
            over.update(lr_decay_every=None, lr_decay_factor=Config.lr_decay_factor)  # the preset's step schedule, left
        if over.get("algorithm") == "fomaml" and "first_order" not in over:
            over["first_order"] = True  # another preset's protocol, first order (--stop_grad False contradicts it)
        cfg = base.replace(**over)
        if not ALGORITHMS[cfg.algorithm].inner_loop:  # a setting of a loop that is not there would be ignored
            given = [k for k in INNER_LOOP_ONLY if k in over]
            if given:
                fail(parser, f"--{given[0].replace('_', '-')} sets the inner loop, and {cfg.algorithm} has none "
                             "(it reads the support set in one pass): leave it out")
        if cfg.algorithm != "reptile":
            given = [k for k in REPTILE_ONLY if k in over]
            if given:
                fail(parser, f"--{given[0].replace('_', '-')} applies to Reptile only (algorithm is {cfg.algorithm})")
        if cfg.algorithm != "taml":
            given = [k for k in TAML_ONLY if k in over]
            if given:
                fail(parser, f"--{given[0].replace('_', '-')} applies to TAML only (algorithm is {cfg.algorithm})")
        unused = TASK_FAMILIES[cfg.dataset].unused_fields
        if any(k in over for k in unused):
            flags = "/".join(f"--{k.replace('_', '-')}" for k in unused)
            fail(parser, f"{flags} apply to image datasets, not {cfg.dataset}")
        return cfg.validate()
    except ValueError as exc:
        fail(parser, str(exc))


def _check_logdir(parser, logdir) -> None:
    """Refuse a --logdir that is a file, or lies under one, before anything runs."""
    path = Path(logdir)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                fail(parser, f"--logdir {logdir}: {p} is a file, not a folder; give a folder for the run")
            return


@contextlib.contextmanager
def _remove_if_left_empty(folder):
    """On failure, remove the folders this command created and left empty (e.g. before the data was found)."""
    created, p = [], Path(folder).absolute()
    while not p.exists():
        created.append(p)  # deepest first
        p = p.parent
    try:
        yield
    except BaseException:
        for p in created:
            if not p.exists():  # already removed (the loop removes a run folder it made itself)
                continue
            try:
                p.rmdir()  # only if empty: a run that wrote anything keeps it
            except OSError:
                break
        raise


def _is_rl(args) -> bool:
    """Whether `train` is asked for a 2D-navigation run: its preset, or --resume / --train=False of such a run."""
    if args.preset is not None:
        return args.preset in RL_PRESETS
    return bool(args.logdir) and (args.resume or args.train is False) and runs.is_rl_run(args.logdir)


def _train_rl(args, parser):
    """`train` of a nav2d-* preset: the 2D-navigation loop (tinymeta.experiment.rl), the same run folder files."""
    for flag, given in (("--device", args.device not in (None, "cpu")), ("--data-dir", args.data_dir is not None)):
        if given:
            fail(parser, f"{flag} does not apply to 2D navigation (it runs on the CPU and simulates its tasks)")
    logdir = args.logdir or str(Path("runs") / args.preset)
    if args.train is False:  # MAML's --train=False: evaluate the run in --logdir
        rl.evaluate_run(logdir)
        return 0
    try:
        if args.resume:
            if args.preset:
                fail(parser, "--resume takes the run's configuration from its checkpoint: drop --preset")
            base = rl.read_config(logdir)
        else:
            base = RL_PRESETS[args.preset]
        cfg = rl.resolve_config(base, _overrides(args), _rl_overrides(args))
    except ValueError as exc:
        fail(parser, str(exc))
    _check_logdir(parser, logdir)
    print(f"run: {logdir}\nconfig: {cfg}")
    with _remove_if_left_empty(logdir):
        result = rl.train(cfg, logdir, resume=args.resume, overwrite=args.overwrite, stop_at=args.stop_at,
                          time_limit=args.time_limit, progress=not args.no_progress)
    return 0 if result["status"] in ("finished", "stopped", "time limit") else 130


def _train(args, parser):
    if args.resume and args.overwrite:
        fail(parser, "--resume continues the run in --logdir, --overwrite replaces it: choose one")
    if _is_rl(args):
        return _train_rl(args, parser)
    given = _rl_overrides(args)
    if given:
        fail(parser, f"--{next(iter(given)).replace('_', '-')} applies to 2D navigation only (the nav2d-* presets)")
    if args.train is False:  # MAML's --train=False evaluates: a sitting's flags would be ignored
        given = [flag for flag, on in (("--resume", args.resume), ("--overwrite", args.overwrite),
                                       ("--stop-at", args.stop_at is not None),
                                       ("--time-limit", args.time_limit is not None)) if on]
        if given:
            fail(parser, f"{given[0]} trains, --train=False evaluates the run in --logdir: drop one")
    elif args.test_set:
        fail(parser, "--test_set=True chooses the tasks of --train=False (an evaluation): add --train=False, "
                     "or drop --test_set (training ends with the test tasks anyway)")
    device = check_device(args.device)
    cfg = resolve_config(args, parser)
    logdir = args.logdir or str(Path("runs") / (args.preset or f"{cfg.algorithm}-{cfg.dataset}"))
    _check_logdir(parser, logdir)
    if args.train is False:  # MAML's --train=False: evaluate the run in --logdir
        split = "test" if args.test_set else "val"
        evaluate_run(logdir, device=device, data_dir=args.data_dir, split=split, progress=not args.no_progress)
        return 0
    print(f"run: {logdir}\nconfig: {cfg}")
    with _remove_if_left_empty(logdir):  # a run that fails before it writes (no data) leaves no empty folder
        result = train(cfg, logdir, device=device, data_dir=args.data_dir, resume=args.resume,
                       overwrite=args.overwrite, stop_at=args.stop_at, time_limit=args.time_limit,
                       progress=not args.no_progress)
    return 0 if result["status"] in ("finished", "stopped", "time limit") else 130


def _evaluate_rl(args, parser):
    """`evaluate` of a 2D-navigation run: average return after 0..steps inner steps on the test goals."""
    given = [flag for flag, value in (("--shots", args.shots), ("--ways", args.ways), ("--algorithm", args.algorithm),
                                      ("--attack-epsilon", args.attack_epsilon), ("--data-dir", args.data_dir),
                                      ("--within-alphabet", args.within_alphabet),
                                      ("--zero-head", args.zero_head or None))
             if value is not None]
    given += [f"--split {args.split}"] * (args.split != "test") + ["--device"] * (args.device not in (None, "cpu"))
    if given:
        fail(parser, f"{given[0]} does not apply to a 2D-navigation run (its test goals are drawn with a seed, "
                     "on the CPU); it takes --tasks, --steps and --out")
    ev = rl.evaluate_run(args.logdir, num_tasks=args.tasks, steps=args.steps)
    if args.out:
        write_text(args.out, json.dumps(ev, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _evaluate(args, parser):
    if args.out:  # before the evaluation, not after it
        check_writable(args.out, "--out file")
    if runs.is_rl_run(args.logdir):
        return _evaluate_rl(args, parser)
    if args.out and Path(args.out).name in runs.CELL_FILES and (args.ways or args.shots) \
            and Path(args.out).resolve().parent == Path(args.logdir).resolve():
        cfg = runs.read_config(args.logdir)
        if (args.ways or cfg.ways, args.shots or cfg.shots) != (cfg.ways, cfg.shots):
            fail(parser, f"--out {args.out}: that name stands for the run's own result on RESULTS.md, and "
                         f"these tasks are not the run's ({cfg.ways}-way {cfg.shots}-shot); write them under "
                         f"another name, e.g. --out {Path(args.logdir) / 'eval-test-other.json'}")
    ev = evaluate_run(args.logdir, device=check_device(args.device), data_dir=args.data_dir, split=args.split,
                      num_tasks=args.tasks, steps=args.steps, algorithm=args.algorithm, shots=args.shots,
                      ways=args.ways,
                      attack_epsilon=args.attack_epsilon, transductive=args.transductive,
                      within_alphabet=args.within_alphabet, zero_head=args.zero_head)
    if args.out:
        write_text(args.out, json.dumps(ev, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _plot(args, parser):
    if args.out:
        check_writable(args.out, "--out file")
    rl_runs = [runs.is_rl_run(d) for d in args.logdirs]
    if all(rl_runs):  # returns per iteration, not losses
        out = args.out or default_out(args.logdirs)
        print(f"wrote {rl.plot_curves(args.logdirs, out, labels=args.labels)}")
        return 0
    if any(rl_runs):
        fail(parser, "2D-navigation runs (returns) and the other runs (losses, accuracies) do not share a figure: "
                     "plot them separately")
    print(f"wrote {plot_runs(args.logdirs, args.out, labels=args.labels)}")
    return 0


def _bench(args):
    """The benchmarks, once the device and every preset named are known to be usable (before any timing)."""
    device = check_device(args.device)
    for name in args.presets or ():
        check_preset(name)
    if args.task_chunk is not None:  # the same check as a run's, with the preset of every row
        for name in args.presets or bench.default_presets(device):
            PRESETS[name].replace(task_chunk=args.task_chunk).validate()
    return bench.main(args, device)


def _docs(args, parser):
    """The API reference, generated from the docstrings by pdoc (one HTML page per module)."""
    try:
        import pdoc  # noqa: F401, PLC0415
    except ImportError:
        fail(parser, "pdoc is not installed: pip install -e '.[dev]' (or pip install pdoc)")
    print(f"wrote the API reference: {docs.build_docs(args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tinymeta", description="Gradient-based meta-learning from scratch.")
    parser.add_argument("--version", action="version", version=f"tinymeta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_demo = sub.add_parser("demo", help="derivatives of order 1-3 and a MAML meta-gradient next to finite differences")
    p_demo.set_defaults(func=demo.main)

    p_bench = sub.add_parser("bench", help="benchmarks: meta-gradient phases, each algorithm's meta-iteration, task sampling")
    p_bench.add_argument("--device", default=None, help="cpu or cuda (default: $TINYMETA_DEVICE or cpu)")
    p_bench.add_argument("--repeat", type=int, default=5, help="timed repeats per measurement (median reported)")
    p_bench.add_argument("--only", choices=["goals", "engine", "algorithms", "tasks"], help="run one group only")
    p_bench.add_argument("--compare", choices=["torch"], default=None,
                         help="also time the goal problems in PyTorch (MAML: a task loop and torch.func.vmap; the "
                              "prototypical step as its original code), "
                              "interleaved in the same run, and print the ratios (needs PyTorch installed)")
    p_bench.add_argument("--quick", action="store_true", help="skip the slow Omniglot conv-net timing")
    p_bench.add_argument("--presets", nargs="+", default=None,
                         help="presets to time one meta-iteration of (default: sine and Omniglot 5w1s for each "
                              "algorithm, plus 20w1s on a GPU)")
    p_bench.add_argument("--data-dir", default=None, help="Omniglot folder (default: $TINYMETA_DATA, ./data/omniglot)")
    p_bench.add_argument("--out", help="also write the measured rows as JSON here (with device, threads, date)")
    p_bench.add_argument("--task-chunk", type=int, default=None,
                         help="time each preset's meta-batch taken this many tasks at a time (default: the "
                              "preset's task_chunk, else all at once)")
    p_bench.set_defaults(func=_bench)

    p_train = sub.add_parser("train", help="meta-train (and finally evaluate) a preset or configuration",
                             description="Meta-train with one of the papers' protocols (--preset), any field "
                                         "overridden by flags. The original MAML code's flags are accepted too. "
                                         "Without --preset, the nearest table cell for --algorithm, --dataset, "
                                         "--ways and --shots runs (none given: maml-sine-10shot, MAML on sine "
                                         "regression with 10 points per task).")
    p_train.add_argument("--preset", metavar="PRESET",
                         help="a cell of the papers' tables, e.g. maml-omniglot-5w1s, meta-sgd-sine-10shot, "
                              "nav2d-maml (see `tinymeta presets`; default: see above)")
    p_train.add_argument("--logdir", help="run folder (default runs/PRESET)")
    p_train.add_argument("--device", help="cpu or cuda")
    p_train.add_argument("--data-dir", help="dataset folder (default $TINYMETA_DATA, then ./data/<dataset>)")
    p_train.add_argument("--resume", action="store_true", help="continue the run in --logdir from its checkpoint")
    p_train.add_argument("--overwrite", action="store_true", help="replace a previous run in --logdir")
    p_train.add_argument("--stop-at", type=int, help="end this sitting at this iteration (checkpoint saved)")
    p_train.add_argument("--time-limit", type=float, help="end this sitting after this many seconds (checkpoint saved)")
    p_train.add_argument("--no-progress", action="store_true",
                         help="no progress output (default: a bar on a terminal, else a line per log row)")
    p_train.add_argument("--train", type=_bool, default=True, help="MAML's flag: --train=False evaluates --logdir")
    p_train.add_argument("--test_set", type=_bool, default=False, help="MAML's flag: with --train=False, use test tasks")
    _add_config_flags(p_train)
    _add_rl_flags(p_train)
    p_train.set_defaults(func=lambda args: _train(args, p_train))

    p_ev = sub.add_parser("evaluate", help="evaluate a run's checkpoint on held-out tasks")
    p_ev.add_argument("--logdir", required=True, help="the run folder to evaluate (its checkpoint.npz)")
    p_ev.add_argument("--split", choices=["test", "val", "train"], default="test",
                      help="test (default), val, or train: fixed tasks of the training classes, to separate "
                           "what unseen classes cost from what the task itself costs")
    p_ev.add_argument("--tasks", type=int, help="number of tasks (default: the run's test_tasks or val_tasks)")
    p_ev.add_argument("--steps", type=int, help="inner steps (default: the run's eval_inner_steps)")
    p_ev.add_argument("--shots", type=int, help="evaluate with another number of shots")
    p_ev.add_argument("--ways", type=int,
                      help="evaluate with another number of classes per task (learners without a head: "
                           "prototypical, matching, relation and Siamese networks)")
    p_ev.add_argument("--algorithm", choices=["nil"], help="nil: evaluate an ANIL run without its head")
    p_ev.add_argument("--attack-epsilon", type=float,
                      help="also FGSM-attacked accuracy, the attack made against each adapted model (ADML's test)")
    p_ev.add_argument("--transductive", type=_bool,
                      help="False: each query image through batch norm with its task's support set only, not with "
                           "the other queries (default: the run's setting; the original MAML code is transductive)")
    p_ev.add_argument("--within-alphabet", type=_bool,
                      help="Omniglot: True draws each task's characters from one alphabet (Lake's and Koch's "
                           "one-shot test), False irrespective of alphabet (default: as the run's split_mode does)")
    p_ev.add_argument("--zero-head", action="store_true",
                      help="adapt from a head of zeros instead of the meta-learned one (at test, Kao et al.'s "
                           "zeroing trick): every class starts equal, whatever order a task's labels come in")
    p_ev.add_argument("--device")
    p_ev.add_argument("--data-dir")
    p_ev.add_argument("--out", help="also write the numbers as JSON here")
    p_ev.set_defaults(func=lambda args: _evaluate(args, p_ev))

    p_plot = sub.add_parser("plot", help="learning curves of one or more runs on one figure")
    p_plot.add_argument("logdirs", nargs="+", metavar="LOGDIR")
    p_plot.add_argument("--out", help="the PNG to write (default: curves.png in the run folder; for several "
                                      "runs, in the current folder)")
    p_plot.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    p_plot.set_defaults(func=lambda args: _plot(args, p_plot))

    p_report = sub.add_parser("report", help="write RESULTS.md from the run folders in results/runs")
    p_report.add_argument("--root", default=".", help="repository root (default: here)")
    p_report.set_defaults(func=report.main)

    p_presets = sub.add_parser("presets", help="list the presets and what they set")
    p_presets.add_argument("--json", action="store_true",
                           help="one JSON object per preset: its whole configuration and its sources")
    p_presets.set_defaults(func=lambda args: _presets_json() if args.json else _list_presets())

    p_runs = sub.add_parser("runs", help="list the runs in a folder: status, iterations, best figures, train time")
    p_runs.add_argument("folder", nargs="?", default=None, help="folder of run folders (default: runs)")
    p_runs.set_defaults(func=_runs)

    p_docs = sub.add_parser("docs", help="build the API reference from the docstrings (needs pdoc: the dev extra)")
    p_docs.add_argument("--out", default="docs/api", help="output folder (default: docs/api)")
    p_docs.set_defaults(func=lambda args: _docs(args, p_docs))

    p_rl = sub.add_parser("rl", add_help=False, help="deprecated: use `tinymeta train --preset nav2d-maml` "
                          "(2D navigation; `tinymeta presets` lists the nav2d-* presets)")
    p_rl.set_defaults(func=lambda args: rl.main([]))  # main() hands `rl ...` to rl.main whole

    cli_data.add_subcommands(sub)
    copy_task.add_subcommand(sub)
    parser.subcommands = sub.choices  # name -> its parser, for errors in a subcommand's own words
    return parser


def _schedule(cfg) -> str:
    """The outer learning-rate schedule in a few characters: '', ' linear' or ' x0.5/2000'."""
    if cfg.lr_schedule == "step":
        return f" x{cfg.lr_decay_factor:g}/{cfg.lr_decay_every}"
    return "" if cfg.lr_schedule == "constant" else f" {cfg.lr_schedule}"


def preset_table() -> list[str]:
    """One aligned line per preset with the fields that tell presets apart."""
    head = ("preset", "algorithm", "order", "dataset", "ways", "shots", "queries", "meta-batch", "inner",
            "meta", "iterations")
    rows = [head]
    for name, cfg in PRESETS.items():
        order = "first" if cfg.first_order or cfg.algorithm == "reptile" else "second"
        inner = f"{cfg.inner_steps} x {cfg.inner_lr:g}" + (" adam" if cfg.inner_optimizer == "adam" else "")
        if not ALGORITHMS[cfg.algorithm].inner_loop:  # one pass over the support set: no inner steps
            order, inner = "-", "none"
        elif cfg.inner_steps == 0:  # no inner step while training (MANN, the pretrained baselines): no order
            order = "-"
        kind = task_family(cfg).kind
        shots = str(cfg.shots) + (f" ({cfg.train_shots} train)" if cfg.train_shots else "")
        ways = str(cfg.ways) + (f" ({cfg.train_ways} train)" if cfg.train_ways else "")
        queries = str(cfg.queries) + (f" ({cfg.train_queries} train)" if cfg.train_queries else "")
        rows.append((name, cfg.algorithm, order, cfg.dataset, ways if kind == "classification" else "-",
                     shots, queries, str(cfg.meta_batch), inner,
                     f"{cfg.meta_optimizer} {cfg.meta_lr:g}" + _schedule(cfg),
                     str(cfg.iterations)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def rl_preset_table() -> list[str]:
    """One aligned line per 2D-navigation preset (reinforcement learning: other fields than the table above)."""
    head = ("preset", "algorithm", "meta-batch", "trajectories", "inner", "outer", "horizon", "hidden", "iterations")
    rows = [head]
    for name, cfg in RL_PRESETS.items():
        inner = "-" if cfg.algorithm == "pretrained" else f"{cfg.inner_steps} x {cfg.fast_lr:g}"
        rows.append((name, cfg.algorithm, str(cfg.meta_batch), str(cfg.fast_batch), inner, f"trpo kl {cfg.max_kl:g}",
                     str(cfg.horizon), "x".join(map(str, cfg.hidden)), str(cfg.iterations)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def _list_presets() -> int:
    print("\n".join(preset_table()))
    print("\n2D navigation (reinforcement learning, MAML paper Sec. 5.3; the same `tinymeta train --preset`):")
    print("\n".join(rl_preset_table()))
    return 0


def _presets_json() -> int:
    """Every preset as one line of JSON: {"name", "config", "source"} (source: paper, cell, code lines)."""
    for name, cfg in [*PRESETS.items(), *RL_PRESETS.items()]:
        print(json.dumps({"name": name, "config": cfg.to_dict(), "source": preset_source(name)}))
    return 0


def _runs(args) -> int:
    """`tinymeta runs [FOLDER]`; with no runs/ folder yet, says so rather than failing."""
    if args.folder is None and not Path("runs").exists():
        print("no runs yet (no runs/ folder here): train one with `tinymeta train --preset PRESET`, "
              "or give the folder that holds your runs")
        return 0
    return runs.main(args.folder or "runs")


# Errors that a user's input or setup causes: one ``error:`` line, no traceback (set
# TINYMETA_DEBUG=1 to see it). Exit 2 for a setting or file to fix, 1 for a run that diverged.
USER_ERRORS = [((ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, OSError), 2),
               ((FloatingPointError, MemoryError), 1)]


def main(argv=None) -> int:
    """Run the command in ``argv`` (default: sys.argv); its exit status."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:  # the reader went away (`tinymeta presets --json | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not fail again
        return 1


def _check_command(parser, argv) -> None:
    """An unknown subcommand: one error line with the closest commands (difflib), not argparse's list."""
    if argv and not argv[0].startswith("-") and argv[0] not in parser.subcommands:
        close = difflib.get_close_matches(argv[0], list(parser.subcommands), n=2, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        parser.error(f"unknown command {argv[0]!r}{hint} (the commands: {', '.join(parser.subcommands)})")


def _main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["rl"]:  # its own parser takes every flag (argparse would eat --help before it)
        return rl.main(argv[1:])
    parser = build_parser()
    _check_command(parser, argv)
    args, extra = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if extra:  # say it in the subcommand's words, with its usage
        (parser.subcommands[command] if command else parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    if args.command in ("train", "bench"):  # tinymeta's own long-running processes
        backend.retain_freed_memory()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # not a file-system error of the user's: main() ends quietly
        raise
    except Exception as exc:
        for kinds, code in USER_ERRORS:
            if isinstance(exc, kinds) and not os.environ.get("TINYMETA_DEBUG"):
                print(f"tinymeta {command}: error: {exc}", file=sys.stderr)
                return code
        raise


if __name__ == "__main__":
    sys.exit(main())
