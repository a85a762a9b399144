r"""Learning to learn by gradient descent by gradient descent, on the paper's quadratics: meta-train
the LSTM optimiser, compare it with SGD, RMSprop and Adam at tuned rates (the paper's Fig. 4),
and save or load its weights (an .npz checkpoint, never a pickle).

From Python (chapter 1 does this)::

    from tinymeta.experiment.l2l import train_learned_optimizer, compare_optimizers
    opt, phi, history = train_learned_optimizer(epochs=200)
    table = compare_optimizers(opt, phi)        # {name: {"lr": ..., "curve": (101,) mean losses}}

From a shell::

    python -m tinymeta.experiment.l2l --epochs 200 --save l2l.npz
    python -m tinymeta.experiment.l2l --load l2l.npz          # compare a saved optimiser

The algorithm itself, with its sources, is :mod:`tinymeta.algorithms.learned_optimizer`.
"""
from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from ..algorithms.learned_optimizer import (BASELINES, COARSE_RATES, FUNCTIONS, LEARNING_RATES, STEPS, UNROLL_LENGTH, LearnedRule,
                                            Quadratics, meta_train, optimise, tune_learning_rate)
from ..files import WriteError, check_writable
from ..nn import LSTMOptimizer
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .cli import Parser

KIND = "lstm-optimizer"
PROG = "python -m tinymeta.experiment.l2l"
TRAIN_SEED, VAL_SEED, TEST_SEED = 0, 1, 2     # meta-training, rate tuning, the reported comparison
EPOCHS = 200           # a few minutes of one core; the original code allows 10,000 (train.py:37)
QUICK_EPOCHS = 5
META_LR = 0.01         # deviation: 10x the code's 0.001 (train.py:46), so that EPOCHS suffice
EVAL_FUNCTIONS = 1000  # held-out functions for tuning, and as many others for the comparison
_OPTIONS = ("hidden_size", "num_layers", "preprocess", "p", "output_scale")


def train_learned_optimizer(epochs=EPOCHS, seed=TRAIN_SEED, *, lr=META_LR, functions=FUNCTIONS,
                            preprocess=True, output_scale=0.1, distribution="normal", dtype="float64",
                            progress=None):
    """A fresh :class:`tinymeta.nn.LSTMOptimizer` meta-trained for ``epochs`` epochs on random quadratics.

    Returns ``(optimizer, params, history)``: the model, its trained parameter dict and the mean
    final loss of each training epoch. ``progress(epoch, loss)`` is called after every epoch.
    Seeded: the same arguments give the same parameters.
    """
    optimizer = LSTMOptimizer(preprocess=preprocess, output_scale=output_scale)
    params = optimizer.init_params(seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    history = meta_train(optimizer, params, epochs, rng, functions=functions, lr=lr, distribution=distribution,
                         callback=progress)
    return optimizer, params, history


def held_out(seed, functions=EVAL_FUNCTIONS, distribution="normal", dtype="float64"):
    """``functions`` quadratics and their theta_0, the same for every call with the same seed."""
    rng = np.random.default_rng(seed)
    problem = Quadratics.sample(functions, rng, distribution=distribution, dtype=dtype)
    return problem, problem.initial_theta(rng)


def compare_optimizers(optimizer, params, *, functions=EVAL_FUNCTIONS, steps=STEPS, rates=LEARNING_RATES,
                       distribution="normal"):
    """The learned optimiser against SGD, RMSprop and Adam, each at the rate that ends lowest on
    ``functions`` held-out quadratics (seed VAL_SEED), all run on ``functions`` others (TEST_SEED).

    Returns ``{name: {"lr": rate or None, "curve": (steps + 1,) mean loss after each step, "final":
    (functions,) each function's loss after the last step, "start": (functions,) each one's loss at
    theta_0}}``, the learned optimiser under "LSTM".
    """
    dtype = next(iter(params.values())).dtype
    val, val_theta = held_out(VAL_SEED, functions, distribution, dtype)
    test, test_theta = held_out(TEST_SEED, functions, distribution, dtype)
    rules = {}
    for name, make_rule in BASELINES.items():
        lr, _ = tune_learning_rate(make_rule, val, val_theta, rates, steps)
        rules[name] = (lr, make_rule(lr))
    rules["LSTM"] = (None, LearnedRule(optimizer, params))
    start = test.losses(test_theta).numpy()
    table = {}
    for name, (lr, rule) in rules.items():
        curve, final = optimise(rule, test, test_theta, steps, per_function=True)
        table[name] = {"lr": lr, "curve": curve, "final": final, "start": start}
    return table


def format_comparison(table) -> str:
    """The comparison as text: the rate, the mean loss after 0, 1, 10, 50 and the last step, the median
    final loss, and on how many functions the run ended above where it started."""
    steps = len(next(iter(table.values()))["curve"]) - 1
    marks = sorted({0, 1, min(10, steps), min(50, steps), steps})
    lines = [f"{'optimiser':10s} {'rate':>8s} " + " ".join(f"{'step ' + str(t):>10s}" for t in marks)
             + f" {'median':>10s} {'worse':>6s}"]
    for name, row in table.items():
        rate = "learned" if row["lr"] is None else f"{row['lr']:.3g}"
        worse = int((row["final"] > row["start"]).sum())
        lines.append(f"{name:10s} {rate:>8s} " + " ".join(f"{row['curve'][t]:10.4g}" for t in marks)
                     + f" {float(np.median(row['final'])):10.4g} {worse:6d}")
    lines.append(f"(mean over {len(row['final'])} functions after each step; median: of the final losses; worse: "
                 "functions that ended above their start)")
    return "\n".join(lines)


# ---- saving and loading -----------------------------------------------------------------------
def save_learned_optimizer(path, optimizer, params, extra=None) -> str:
    """Write the optimiser's settings and weights to one .npz file, atomically (no pickle)."""
    config = {"kind": KIND, **{k: getattr(optimizer, k) for k in _OPTIONS}}
    return save_checkpoint(path, params, config=config, extra=extra)


def load_learned_optimizer(path):
    """``(optimizer, params, extra)`` from a file written by :func:`save_learned_optimizer`.

    Raises FileNotFoundError, or CheckpointError (a ValueError) naming the file when it is not
    an intact checkpoint, or a checkpoint of something else, or weights of the wrong shapes.
    Never unpickles.
    """
    ckpt = load_checkpoint(path, device="cpu")
    config = ckpt.config
    if config.get("kind") != KIND or any(k not in config for k in _OPTIONS):
        raise CheckpointError(f"{os.fspath(path)!r} is a tinymeta checkpoint but not of a learned optimiser "
                              "(save one with save_learned_optimizer)")
    try:
        optimizer = LSTMOptimizer(**{k: config[k] for k in _OPTIONS})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{os.fspath(path)!r}: its optimiser settings are invalid ({exc})") from None
    expected = {k: v.shape for k, v in optimizer.init_params(0).items()}
    got = {k: v.shape for k, v in ckpt.params.items()}
    if got != expected:
        raise CheckpointError(f"{os.fspath(path)!r}: its weights {got} do not fit {optimizer!r}, which needs "
                              f"{expected}")
    return optimizer, ckpt.params, ckpt.extra


# ---- the command ------------------------------------------------------------------------------
def _parser():
    p = Parser(
        prog=PROG,
        description="Meta-train the LSTM optimiser of Andrychowicz et al. 2016 on random 10-d quadratics and "
                    "compare it with SGD, RMSprop and Adam at tuned learning rates (100 steps).")
    p.add_argument("--epochs", type=int, default=None, help=f"meta-training epochs (default {EPOCHS}, quick "
                                                            f"{QUICK_EPOCHS})")
    p.add_argument("--quick", action="store_true", help="a few epochs, 100 functions, one rate per decade: seconds")
    p.add_argument("--seed", type=int, default=TRAIN_SEED)
    p.add_argument("--lr", type=float, default=META_LR, help="Adam's rate on the optimiser's weights")
    p.add_argument("--no-preprocess", action="store_true", help="feed the raw gradient, not log|g|/p and sign")
    p.add_argument("--output-scale", type=float, default=0.1)
    p.add_argument("--functions", type=int, default=None,
                   help=f"held-out functions for tuning, and as many for the comparison (default {EVAL_FUNCTIONS})")
    p.add_argument("--save", metavar="FILE", help="write the trained optimiser here (.npz)")
    p.add_argument("--load", metavar="FILE", help="compare this saved optimiser instead of training one")
    return p


def _fail(message) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """The command above; returns its exit status (2 with one ``error:`` line on bad input)."""
    args = _parser().parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (QUICK_EPOCHS if args.quick else EPOCHS)
    functions = args.functions if args.functions is not None else (100 if args.quick else EVAL_FUNCTIONS)
    if epochs < 0:
        return _fail(f"--epochs must be >= 0, got {epochs}")
    if functions < 1:
        return _fail(f"--functions must be >= 1, got {functions}")
    if not (math.isfinite(args.lr) and args.lr > 0) or not math.isfinite(args.output_scale):
        return _fail(f"--lr must be a number > 0 and --output-scale finite, got {args.lr} and {args.output_scale}")
    if args.load and args.save:
        return _fail("--load compares a saved optimiser; --save writes a newly trained one: give one of them")
    if args.save:
        try:
            check_writable(args.save, "optimiser file")
        except WriteError as exc:
            return _fail(str(exc))
    start = time.perf_counter()
    if args.load:
        try:
            optimizer, params, extra = load_learned_optimizer(args.load)
        except (FileNotFoundError, CheckpointError) as exc:
            return _fail(str(exc).strip("'\""))
        print(f"loaded {optimizer!r} from {args.load} ({extra.get('epochs', '?')} epochs of meta-training)")
    else:
        def progress(epoch, loss):
            if (epoch + 1) % max(1, epochs // 10) == 0 or epoch + 1 == epochs:
                print(f"epoch {epoch + 1:4d}/{epochs}: mean f after {STEPS} steps {loss:.4g} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
        optimizer, params, history = train_learned_optimizer(
            epochs, args.seed, lr=args.lr, preprocess=not args.no_preprocess, output_scale=args.output_scale,
            progress=progress)
        print(f"meta-trained {optimizer!r} for {epochs} epochs ({UNROLL_LENGTH}-step truncations) in "
              f"{time.perf_counter() - start:.0f} s")
        if args.save:
            save_learned_optimizer(args.save, optimizer, params,
                                   extra={"epochs": epochs, "seed": args.seed, "lr": args.lr, "history": history})
            print(f"saved to {args.save}")
    table = compare_optimizers(optimizer, params, functions=functions,
                               rates=COARSE_RATES if args.quick else LEARNING_RATES)
    print(f"mean f over {functions} held-out quadratics (rates tuned on {functions} others):")
    print(format_comparison(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
