"""Train and evaluate MAML / Meta-SGD / pretrained TRPO on 2D navigation, resumably.

    python -m tinymeta rl --algorithm maml --iterations 100 --seed 1 --logdir DIR \\
        [--time-limit SECONDS] [--resume] [--pretrained PRETRAINED_DIR]

Writes into DIR: ``checkpoint.npz`` (after every iteration; ``--resume`` continues
from it exactly), ``log.jsonl`` (one line per iteration), and after training
``results.json`` (average return after 0..3 inner steps for the trained policy,
the random initialisation and, given ``--pretrained``, a pretrained policy),
``returns.png`` and ``trajectories.png``.

Evaluation follows the original's test script (cbfinn/maml_rl, maml_examples/
test_maml_point.py): 40 goals drawn with seed 1 (lines 26-28), 40 trajectories
per goal and step (batch_size=4000 of horizon 100, line 72), inner rate 0.5 for
the first step and half of it after (line 75), the same for every policy
(lines 35-36); the original plots steps 0-3 (icml/make_point_plots.py:18).
The goals differ (drawn with NumPy's Generator, not ``np.random.seed(1)``), and the
random initialisation is this ReLU policy freshly initialised (the original's
random policy used rllab's default tanh network, test_maml_point.py:56-60).

``PAPER_RETURNS`` holds the numbers behind the MAML paper's Fig. 4 (left), the
mean over 40 goals of the files icml/icml_point_results_{maml,sens0,random,oracle}.pkl
in cbfinn/maml_rl (read as data with ``pickletools``, never unpickled; "sens0" is the
pretrained policy, ``maml0`` in test_maml_point.py:36-38). That MAML policy was
trained with 20 tasks per meta-batch (test_maml_point.py:21), the launcher says 40.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from ..files import write_text
from ..algorithms.common import summarize
from ..rl import navigation
from ..rl.maml_rl import ALGORITHMS, MetaRL
from ..rl.policy import GaussianMLPPolicy
from .checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT, LOG, RESULTS = "checkpoint.npz", "log.jsonl", "results.json"
PAPER_ITERATIONS = 100  # maml_examples/maml_trpo_point.py:54 (n_itr=100)
PAPER_RETURNS = {  # average return after 0, 1, 2, 3 steps (see the module docstring)
    "meta-learned": [-40.41, -11.68, -3.33, -3.23],
    "pretrained": [-40.81, -19.73, -11.72, -8.47],
    "random": [-82.66, -57.96, -53.84, -46.81],
    "oracle": [-2.29],
}


# Settings by name; explicit flags override a preset's values.
PRESETS = {
    # the original's point-robot run: maml_examples/maml_trpo_point.py:15-23, 38, 54, 63
    "nav2d-maml": {"algorithm": "maml", "iterations": 100, "seed": 1, "meta_batch": 40, "fast_batch": 20,
                   "fast_lr": 0.5, "inner_steps": 1, "max_kl": 0.01, "horizon": 100, "hidden": [100, 100]},
    "nav2d-meta-sgd": {"algorithm": "meta-sgd", "iterations": 100, "seed": 1, "meta_batch": 40, "fast_batch": 20,
                       "fast_lr": 0.5, "inner_steps": 1, "max_kl": 0.01, "horizon": 100, "hidden": [100, 100]},
    "nav2d-pretrained": {"algorithm": "pretrained", "iterations": 100, "seed": 1, "meta_batch": 40,
                         "fast_batch": 20, "fast_lr": 0.5, "max_kl": 0.01, "horizon": 100, "hidden": [100, 100]},
    # seconds on a laptop: to see every part run, not to learn anything
    "nav2d-smoke": {"iterations": 3, "meta_batch": 4, "fast_batch": 5, "horizon": 20, "hidden": [16],
                    "eval_tasks": 4, "eval_trajectories": 5},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinymeta rl", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="named settings (flags override)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="maml")
    p.add_argument("--iterations", type=int, default=PAPER_ITERATIONS, help="meta-iterations (original: 100)")
    p.add_argument("--seed", type=int, default=1, help="training seed (original: 1, maml_trpo_point.py:63)")
    p.add_argument("--logdir", required=True, help="folder for checkpoint, log, results and figures")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop training before this many seconds of training time (then evaluate)")
    p.add_argument("--resume", action="store_true", help="continue from LOGDIR/checkpoint.npz")
    p.add_argument("--pretrained", default=None, help="logdir of a --algorithm pretrained run to compare with")
    p.add_argument("--meta-batch", type=int, default=40, help="tasks per meta-batch (maml_trpo_point.py:20)")
    p.add_argument("--fast-batch", type=int, default=20, help="trajectories per task (maml_trpo_point.py:19)")
    p.add_argument("--fast-lr", type=float, default=0.5, help="inner learning rate (maml_trpo_point.py:17)")
    p.add_argument("--inner-steps", type=int, default=1, help="inner steps in training (maml_trpo_point.py:22)")
    p.add_argument("--max-kl", type=float, default=0.01, help="TRPO step size (maml_trpo_point.py:23)")
    p.add_argument("--horizon", type=int, default=navigation.HORIZON)
    p.add_argument("--hidden", type=int, nargs="+", default=[100, 100], help="(maml_trpo_point.py:38)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--eval-tasks", type=int, default=40, help="test goals (test_maml_point.py:26)")
    p.add_argument("--eval-trajectories", type=int, default=40, help="per goal and step (test_maml_point.py:72)")
    p.add_argument("--eval-steps", type=int, default=3)
    p.add_argument("--eval-seed", type=int, default=1, help="seed of the test goals (test_maml_point.py:27)")
    p.add_argument("--no-eval", action="store_true", help="train only")
    return p


def _config(args) -> dict:
    keys = ("algorithm", "iterations", "seed", "meta_batch", "fast_batch", "fast_lr", "inner_steps", "max_kl",
            "horizon", "hidden", "dtype")
    return {k: getattr(args, k) for k in keys}


def make_learner(config: dict) -> MetaRL:
    policy = GaussianMLPPolicy(sizes=(2, *config["hidden"], 2))
    return MetaRL(policy, algorithm=config["algorithm"], fast_lr=config["fast_lr"],
                  inner_steps=config["inner_steps"], meta_batch=config["meta_batch"],
                  fast_batch=config["fast_batch"], horizon=config["horizon"], max_kl=config["max_kl"])


def train(args, log=print) -> tuple[MetaRL, dict, dict]:
    """Train (or resume) until ``--iterations`` or ``--time-limit``; returns (learner, params, state)."""
    os.makedirs(args.logdir, exist_ok=True)
    ckpt_path = os.path.join(args.logdir, CHECKPOINT)
    config = _config(args)
    if args.resume and os.path.exists(ckpt_path):
        ck = load_checkpoint(ckpt_path)
        saved = {k: v for k, v in ck.config.items() if k != "iterations"}
        if saved != {k: v for k, v in config.items() if k != "iterations"}:
            raise ValueError(f"--resume: {ckpt_path} was trained with {ck.config}, not {config}; "
                             "pass the same settings or a new --logdir")
        params, rng, state = ck.params, ck.rng(), dict(ck.extra)
        log(f"resumed at iteration {state['iteration']} ({state['train_seconds']:.0f} s trained)")
    else:
        if os.path.exists(ckpt_path) and not args.resume:
            raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue it, or another --logdir")
        params = None
        state = {"iteration": 0, "train_seconds": 0.0}
        rng = np.random.default_rng(args.seed + 1000)  # training stream, distinct from the init seed
    learner = make_learner(config)
    if params is None:
        params = learner.init_params(args.seed, dtype=args.dtype)
    started, last = time.monotonic(), 0.0
    base = state["train_seconds"]
    while state["iteration"] < args.iterations:
        spent = base + time.monotonic() - started
        if args.time_limit is not None and spent + last > args.time_limit:
            log(f"time limit: stopping at iteration {state['iteration']} of {args.iterations}")
            break
        t0 = time.monotonic()
        info = learner.iteration(params, rng)
        last = time.monotonic() - t0
        state["iteration"] += 1
        state["train_seconds"] = base + time.monotonic() - started
        info.update(iteration=state["iteration"], seconds=last)
        with open(os.path.join(args.logdir, LOG), "a") as f:
            f.write(json.dumps(info) + "\n")
        save_checkpoint(ckpt_path, params, rng=rng, config=config, extra=state)
        log(f"it {state['iteration']:4d}  return pre {info['return_pre']:8.2f}  post {info['return_post']:8.2f}  "
            f"kl {info['kl']:.4f}  {'ok' if info['accepted'] else 'rejected'}  {last:.1f}s")
    return learner, params, state


def evaluate_policies(learner: MetaRL, policies: dict, args) -> tuple[dict, dict]:
    """Average return after 0..steps inner steps for each named ``(params, rates)``; and the paths."""
    goals = navigation.sample_goals(np.random.default_rng(args.eval_seed), args.eval_tasks)
    results, paths = {}, {}
    for name, (params, rates) in policies.items():
        rng = np.random.default_rng(args.eval_seed + 1)  # the same action noise stream for every policy
        runs = learner.sample_adaptation(params, goals, rng, args.eval_trajectories, args.eval_steps, rates=rates)
        per_step = [summarize(p.task_returns()) for p in runs]
        results[name] = {"steps": list(range(len(runs))), "mean": [s["mean"] for s in per_step],
                         "ci95": [s["ci95"] for s in per_step]}
        paths[name] = runs
    return results, paths


def plot(results: dict, paths: dict, folder: str, title: str) -> list[str]:
    """returns.png (average return vs inner steps) and trajectories.png (before/after adaptation)."""
    from .viz import new_figure, save_png  # noqa: PLC0415 (matplotlib only when plotting)

    fig = new_figure((5.5, 4))
    ax = fig.add_subplot(1, 1, 1)
    styles = {"meta-learned": ("g", "-", "o"), "pretrained": ("b", "--", "s"), "random": ("k", ":", "^")}
    for name, r in results.items():
        c, ls, m = styles.get(name, ("r", "-", "v"))
        ax.errorbar(r["steps"], r["mean"], yerr=r["ci95"], color=c, linestyle=ls, marker=m, label=name, capsize=3)
        paper = PAPER_RETURNS[name][:len(r["steps"])]
        ax.plot(range(len(paper)), paper, color=c, linestyle=ls, marker=m, alpha=0.3,
                label=f"{name}, MAML paper" if name == "meta-learned" else None)
    ax.axhline(PAPER_RETURNS["oracle"][0], color="r", alpha=0.3, linestyle="-.", label="oracle, MAML paper")
    ax.set_xlabel("number of gradient steps")
    ax.set_ylabel("average return")
    ax.set_xticks(results[next(iter(results))]["steps"])
    ax.set_title(title + "\n(faint: the MAML paper's Fig. 4 data)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = [str(save_png(fig, os.path.join(folder, "returns.png")))]

    runs = paths["meta-learned"]
    fig = new_figure((12, 3.4))
    shown = min(4, runs[0].num_tasks)
    for j in range(shown):
        ax = fig.add_subplot(1, shown, j + 1)
        g = runs[0].goals[j]
        for k, (color, lw, label) in enumerate((("r", 2.0, "pre-update"), ("b", 1.2, "after 1 step"))):
            p = runs[k]
            for n in range(min(3, p.valid.shape[1])):
                steps = int(p.valid[j, n].sum())
                xy = np.concatenate([p.observations[j, n, :steps], p.observations[j, n, steps - 1:steps]
                                     + np.clip(0.1 * p.actions[j, n, steps - 1:steps], -0.1, 0.1)])
                ax.plot(xy[:, 0], xy[:, 1], color=color, lw=lw, ls=("-", "--", "-.")[n],
                        label=label if n == 0 else None)
        ax.plot(g[0], g[1], "k*", markersize=12, label="goal")
        ax.plot(0, 0, "k.", markersize=5)
        ax.set_xlim(-0.8, 0.8)
        ax.set_ylim(-0.8, 0.8)
        ax.set_aspect("equal")
        if j == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{title}: trajectories before (red) and after one policy-gradient step (blue)")
    fig.tight_layout()
    out.append(str(save_png(fig, os.path.join(folder, "trajectories.png"))))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    """Flags, with ``--preset``'s values as the defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preset:
        parser.set_defaults(**PRESETS[args.preset])
        args = parser.parse_args(argv)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.pretrained and not os.path.exists(os.path.join(args.pretrained, CHECKPOINT)):
        raise SystemExit(f"--pretrained {args.pretrained}: no {CHECKPOINT} there; train one with "
                         "--algorithm pretrained --logdir DIR first")
    learner, params, state = train(args)
    if args.no_eval:
        return 0
    t0 = time.monotonic()
    random_init = make_learner({**_config(args), "algorithm": "maml"})
    policies = {"meta-learned": (params, None),
                "random": (random_init.init_params(args.seed, dtype=args.dtype), args.fast_lr)}
    if args.pretrained:
        policies["pretrained"] = (load_checkpoint(os.path.join(args.pretrained, CHECKPOINT)).params, args.fast_lr)
    results, paths = evaluate_policies(learner, policies, args)
    iters = state["iteration"]
    summary = {"config": _config(args), "iterations_done": iters, "paper_iterations": PAPER_ITERATIONS,
               "train_seconds": state["train_seconds"],
               "seconds_per_iteration": state["train_seconds"] / iters if iters else None,
               "eval_seconds": time.monotonic() - t0, "pretrained_from": args.pretrained,
               "eval": {"tasks": args.eval_tasks, "trajectories": args.eval_trajectories, "seed": args.eval_seed},
               "average_return": results, "paper_average_return": PAPER_RETURNS}
    write_text(os.path.join(args.logdir, RESULTS), json.dumps(summary, indent=2) + "\n")
    figs = plot(results, paths, args.logdir, f"2D navigation, {args.algorithm}, {iters} iterations")
    for name, r in results.items():
        print(f"{name:>13}: " + "  ".join(f"{m:8.2f}" for m in r["mean"]))
    print("wrote", os.path.join(args.logdir, RESULTS), *figs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
