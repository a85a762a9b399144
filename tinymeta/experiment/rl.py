"""2D navigation (MAML paper, Sec. 5.3): the ``nav2d-*`` presets, trained through the one front door.

    python -m tinymeta train --preset nav2d-maml [--logdir runs/nav2d-maml] [--time-limit SECONDS]
    python -m tinymeta train --resume --logdir runs/nav2d-maml
    python -m tinymeta evaluate --logdir runs/nav2d-maml
    python -m tinymeta plot runs/nav2d-maml

A run folder holds what every run's holds (:mod:`.runs`): ``config.json``, ``log.jsonl``
(one row per meta-iteration), ``checkpoint.npz`` (after every iteration, which takes
seconds; ``--resume`` continues from it exactly) and ``status.json``; once the last
iteration is done, ``results.json`` (average return after 0..3 inner steps for the trained
policy, the random initialisation and, given ``--pretrained``, a pretrained policy),
``returns.png`` and ``trajectories.png``. The loop shares the other presets' run folder,
checkpoints, status, Ctrl-C, ``--stop-at`` and ``--time-limit`` (seconds of this sitting);
what reinforcement learning needs (trajectories, the TRPO outer step) is in
:mod:`tinymeta.rl`.

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

``python -m tinymeta rl ...`` (this module's :func:`main`) is the older spelling, kept
because the committed runs' ``command.txt`` files use it; it prints a deprecation note.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..algorithms.common import summarize
from ..rl import navigation
from ..rl.maml_rl import ALGORITHMS, MetaRL
from ..rl.policy import GaussianMLPPolicy
from .checkpoint import config_diff, load_checkpoint, save_checkpoint
from .loop import StopFlag
from .runs import RL_DATASET, append_log, check_run_files, truncate_log, write_json, write_status

CHECKPOINT, LOG, RESULTS = "checkpoint.npz", "log.jsonl", "results.json"
# what --overwrite removes (and nothing else in the folder)
RL_RUN_FILES = (CHECKPOINT, LOG, RESULTS, "config.json", "status.json", "returns.png", "trajectories.png",
                "curves.png")
PAPER_ITERATIONS = 100  # maml_examples/maml_trpo_point.py:54 (n_itr=100)
PAPER_RETURNS = {  # average return after 0, 1, 2, 3 steps (see the module docstring)
    "meta-learned": [-40.41, -11.68, -3.33, -3.23],
    "pretrained": [-40.81, -19.73, -11.72, -8.47],
    "random": [-82.66, -57.96, -53.84, -46.81],
    "oracle": [-2.29],
}
# The fields that change the numbers training computes: the checkpoint's config (as written
# since the first runs), compared on --resume (all but ``iterations``).
TRAIN_FIELDS = ("algorithm", "iterations", "seed", "meta_batch", "fast_batch", "fast_lr", "inner_steps", "max_kl",
                "horizon", "hidden", "dtype")


@dataclass
class RLConfig:
    """Everything that defines a 2D-navigation run (``config.json``; its training fields go in the checkpoint)."""

    algorithm: str = "maml"            # maml | meta-sgd | pretrained (plain TRPO on all goals, no inner step)
    dataset: str = RL_DATASET          # marks the run folder as a 2D-navigation run
    iterations: int = PAPER_ITERATIONS
    seed: int = 1
    meta_batch: int = 40               # goals (tasks) per meta-iteration
    fast_batch: int = 20               # trajectories per goal and inner step
    fast_lr: float = 0.5               # inner learning rate alpha (Meta-SGD: its rates' initial value)
    inner_steps: int = 1               # inner policy-gradient steps while meta-training
    max_kl: float = 0.01               # TRPO's bound on the mean KL of the outer step
    horizon: int = navigation.HORIZON  # steps per trajectory
    hidden: tuple = (100, 100)         # the policy's hidden layer sizes
    dtype: str = "float32"
    eval_tasks: int = 40               # test goals of the final evaluation
    eval_trajectories: int = 40        # trajectories per test goal and step
    eval_steps: int = 3                # inner steps evaluated (every one is reported)
    eval_seed: int = 1                 # seed of the test goals
    pretrained: str | None = None      # a finished pretrained run folder to compare with at the evaluation

    def replace(self, **changes) -> "RLConfig":
        """A copy with ``changes`` applied."""
        if "hidden" in changes:
            changes["hidden"] = tuple(changes["hidden"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The JSON-ready dict of ``config.json``."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(d["hidden"])
        return d

    def training(self) -> dict:
        """The fields that change what training computes (the checkpoint's config)."""
        d = self.to_dict()
        return {k: d[k] for k in TRAIN_FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> "RLConfig":
        """From ``config.json`` or a checkpoint's config (its training fields only; the rest take defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown 2D-navigation config fields {unknown}; known fields: {sorted(known)}")
        return cls().replace(**d)

    def validate(self) -> "RLConfig":
        """Raise ValueError naming the first bad setting and the flag that sets it."""
        def integer(v, low):
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        def number(v, positive=False):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            return ok and (v > 0 if positive else v >= 0)

        checks = [
            (self.algorithm in ALGORITHMS, f"algorithm (--algorithm) must be one of {', '.join(ALGORITHMS)} for "
                                           f"2D navigation, got {self.algorithm!r}"),
            (self.dataset == RL_DATASET, f"dataset must be {RL_DATASET!r} for a 2D-navigation run"),
            (integer(self.iterations, 0), f"iterations (--iterations) must be an integer >= 0, got {self.iterations!r}"),
            (integer(self.seed, 0), f"seed (--seed) must be an integer >= 0, got {self.seed!r}"),
            (integer(self.meta_batch, 1), f"meta_batch (--meta-batch) must be an integer >= 1, got {self.meta_batch!r}"),
            (integer(self.fast_batch, 1), f"fast_batch (--fast-batch) must be an integer >= 1, got {self.fast_batch!r}"),
            (number(self.fast_lr), f"fast_lr (--inner-lr) must be a finite number >= 0, got {self.fast_lr!r}"),
            (integer(self.inner_steps, 0), f"inner_steps (--inner-steps) must be an integer >= 0, got {self.inner_steps!r}"),
            (number(self.max_kl, positive=True), f"max_kl (--max-kl) must be a finite number > 0, got {self.max_kl!r}"),
            (integer(self.horizon, 1), f"horizon (--horizon) must be an integer >= 1, got {self.horizon!r}"),
            (len(self.hidden) >= 1 and all(integer(h, 1) for h in self.hidden),
             f"hidden (--hidden) must be one or more layer sizes >= 1, got {list(self.hidden)!r}"),
            (self.dtype in ("float32", "float64"), f"dtype (--dtype) must be float32 or float64, got {self.dtype!r}"),
            (integer(self.eval_tasks, 1), f"eval_tasks (--test-tasks) must be an integer >= 1, got {self.eval_tasks!r}"),
            (integer(self.eval_trajectories, 1),
             f"eval_trajectories (--eval-trajectories) must be an integer >= 1, got {self.eval_trajectories!r}"),
            (integer(self.eval_steps, 1),
             f"eval_steps (--eval-inner-steps) must be an integer >= 1, got {self.eval_steps!r}"),
            (integer(self.eval_seed, 0), f"eval_seed must be an integer >= 0, got {self.eval_seed!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.pretrained is not None and not (Path(self.pretrained) / CHECKPOINT).is_file():
            raise ValueError(f"--pretrained {self.pretrained}: no {CHECKPOINT} there; train one first "
                             "(tinymeta train --preset nav2d-pretrained --logdir DIR)")
        return self


# The 2D-navigation presets (their sources: presets.RL_SOURCES, PROTOCOLS.md); `tinymeta presets` lists them.
RL_PRESETS: dict[str, RLConfig] = {
    "nav2d-maml": RLConfig(),  # the defaults are the original's point-robot settings
    "nav2d-meta-sgd": RLConfig(algorithm="meta-sgd"),  # MAML's settings, learned per-parameter rates
    "nav2d-pretrained": RLConfig(algorithm="pretrained"),  # the paper's baseline: TRPO on all goals
    # seconds on a laptop: to see every part run, not to learn anything (not a table cell)
    "nav2d-smoke": RLConfig(iterations=3, meta_batch=4, fast_batch=5, horizon=20, hidden=(16,), eval_tasks=4,
                            eval_trajectories=5),
}


# The flags of `tinymeta train` that mean the same for 2D navigation: Config field -> RLConfig field.
FROM_CONFIG_FLAGS = {"algorithm": "algorithm", "iterations": "iterations", "seed": "seed", "meta_batch": "meta_batch",
                     "inner_lr": "fast_lr", "inner_steps": "inner_steps", "dtype": "dtype",
                     "eval_inner_steps": "eval_steps", "test_tasks": "eval_tasks"}
# (flags, dest, type, help) of the settings only 2D navigation has; `tinymeta train` adds them
RL_FLAGS = [
    (["--fast-batch"], "fast_batch", int, "2D navigation: trajectories per goal and inner step"),
    (["--max-kl"], "max_kl", float, "2D navigation: TRPO step size (bound on the mean KL)"),
    (["--horizon"], "horizon", int, "2D navigation: steps per trajectory"),
    (["--hidden"], "hidden", int, "2D navigation: the policy's hidden layer sizes, e.g. --hidden 100 100"),
    (["--eval-trajectories"], "eval_trajectories", int, "2D navigation: trajectories per test goal and step"),
    (["--pretrained"], "pretrained", str, "2D navigation: a pretrained run folder to compare with at the evaluation"),
]


def flag_name(field: str) -> str:
    """The command-line flag of a config field."""
    return "--" + field.replace("_", "-")


def resolve_config(base: RLConfig, config_overrides: dict, rl_overrides: dict) -> RLConfig:
    """``base`` with the flags given: ``config_overrides`` by Config field, ``rl_overrides`` by RLConfig field.

    A flag of `tinymeta train` that has no meaning here raises ValueError naming it.
    """
    changes = dict(rl_overrides)
    for key, value in config_overrides.items():
        if key not in FROM_CONFIG_FLAGS:
            usable = ", ".join(sorted(flag_name(k) for k in FROM_CONFIG_FLAGS)
                               + [f[0][0] for f in RL_FLAGS])
            raise ValueError(f"{flag_name(key)} does not apply to 2D navigation (the nav2d-* presets); "
                             f"their settings: {usable}")
        changes[FROM_CONFIG_FLAGS[key]] = value
    return base.replace(**changes).validate()


def read_config(logdir) -> RLConfig:
    """A 2D-navigation run's configuration: config.json, else the checkpoint's (runs made before config.json)."""
    logdir = Path(logdir)
    if (logdir / "config.json").is_file():
        return RLConfig.from_dict(json.loads((logdir / "config.json").read_text()))
    if (logdir / CHECKPOINT).is_file():
        return RLConfig.from_dict(load_checkpoint(logdir / CHECKPOINT).config)
    if (logdir / RESULTS).is_file():
        return RLConfig.from_dict(json.loads((logdir / RESULTS).read_text())["config"])
    raise FileNotFoundError(f"{logdir} is not a 2D-navigation run folder (no config.json, {CHECKPOINT} or "
                            f"{RESULTS})")


def make_learner(config: RLConfig, algorithm: str | None = None) -> MetaRL:
    """The MetaRL learner (policy and TRPO settings) of ``config``."""
    policy = GaussianMLPPolicy(sizes=(2, *config.hidden, 2))
    return MetaRL(policy, algorithm=algorithm or config.algorithm, fast_lr=config.fast_lr,
                  inner_steps=config.inner_steps, meta_batch=config.meta_batch, fast_batch=config.fast_batch,
                  horizon=config.horizon, max_kl=config.max_kl)


def check_resume(cfg: RLConfig, saved: dict, path) -> None:
    """Refuse to resume a checkpoint trained with other settings (all but ``iterations`` matter)."""
    now = {k: v for k, v in cfg.training().items() if k != "iterations"}
    before = {k: v for k, v in RLConfig.from_dict(saved).training().items() if k != "iterations"}
    diffs = config_diff(before, now, labels=("checkpoint", "now"))
    if diffs:
        raise ValueError(f"cannot resume {path}: it was made with another configuration:\n  "
                         + "\n  ".join(diffs) + "\nresume with the same settings, or start a new --logdir")


def train(cfg: RLConfig, logdir, *, resume=False, overwrite=False, stop_at=None, time_limit=None,
          evaluate_at_end=True, evaluate_when_stopped=False, progress=True, echo=print) -> dict:
    """Meta-train ``cfg`` in ``logdir``: {'status', 'iteration', 'results' (if evaluated)}.

    As :func:`tinymeta.experiment.loop.train` does for the other presets: ``resume``
    continues from logdir/checkpoint.npz with exactly the numbers an uninterrupted run
    computes; ``stop_at`` (an iteration), ``time_limit`` (seconds of this sitting) and
    Ctrl-C end the sitting at an iteration boundary with a checkpoint; ``overwrite``
    replaces a previous run's files. A folder that does not fit raises before anything
    is written. After the last iteration (or any stop, with ``evaluate_when_stopped``) the
    policies are evaluated: results.json, returns.png, trajectories.png.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite contradict each other: choose one")
    cfg.validate()
    if time_limit is not None and not (math.isfinite(time_limit) and time_limit >= 0):
        raise ValueError(f"--time-limit must be a number of seconds >= 0, got {time_limit}")
    if stop_at is not None and not 1 <= stop_at <= cfg.iterations:
        raise ValueError(f"--stop-at {stop_at} must be an iteration from 1 to --iterations ({cfg.iterations})")
    logdir = Path(logdir)
    check_run_files(logdir, RL_RUN_FILES, resume, overwrite)  # no write through a link; no earlier run lost
    ckpt_path = logdir / CHECKPOINT
    ckpt = None
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}; train without --resume to start "
                                    "the run")
        ckpt = load_checkpoint(ckpt_path)
        check_resume(cfg, ckpt.config, ckpt_path)
    elif ckpt_path.exists() and not overwrite:
        raise FileExistsError(f"{logdir} already holds a run ({CHECKPOINT}): pass --resume to continue it, "
                              "--overwrite to replace it, or choose another --logdir")
    logdir.mkdir(parents=True, exist_ok=True)
    learner = make_learner(cfg)
    if ckpt is not None:
        params, rng, state = ckpt.params, ckpt.rng(), dict(ckpt.extra)
        truncate_log(logdir, state["iteration"])
        echo(f"resuming {logdir} at iteration {state['iteration']} ({state['train_seconds']:.0f} s trained)")
    else:
        if overwrite:
            for name in RL_RUN_FILES:
                (logdir / name).unlink(missing_ok=True)
        params = learner.init_params(cfg.seed, dtype=cfg.dtype)
        rng = np.random.default_rng(cfg.seed + 1000)  # training stream, distinct from the init seed
        state = {"iteration": 0, "train_seconds": 0.0}
        (logdir / LOG).write_text("")
    write_json(logdir / "config.json", cfg.to_dict())

    end = cfg.iterations if stop_at is None else min(cfg.iterations, int(stop_at))
    status, sitting_start = "finished", time.perf_counter()
    with StopFlag() as flag, open(logdir / LOG, "a") as log:
        while state["iteration"] < end:
            if flag.stop or (time_limit is not None and time.perf_counter() - sitting_start > time_limit):
                status = "interrupted" if flag.stop else "time limit"
                break
            t0 = time.perf_counter()
            info = learner.iteration(params, rng)
            seconds = time.perf_counter() - t0
            it = state["iteration"] + 1
            if not all(math.isfinite(v) for v in info.values() if isinstance(v, float)):
                message = (f"a training number is not finite at iteration {it}: {info}; the checkpoint of "
                           f"iteration {it - 1} is kept in {ckpt_path}. Try a smaller --max-kl or --inner-lr")
                write_status(logdir, "nan", it, message)
                raise FloatingPointError(message)
            state = {"iteration": it, "train_seconds": state["train_seconds"] + seconds}
            append_log(log, {"split": "train", **info, "iteration": it, "seconds": seconds,
                             "time": round(state["train_seconds"], 4)})
            save_checkpoint(ckpt_path, params, rng=rng, config=cfg.training(), extra=state)
            if progress:
                echo(f"it {it:4d}/{cfg.iterations}  return pre {info['return_pre']:8.2f}  "
                     f"post {info['return_post']:8.2f}  kl {info['kl']:.4f}  "
                     f"{'ok' if info['accepted'] else 'rejected'}  {seconds:.1f}s")
    it = state["iteration"]
    if not ckpt_path.exists():  # stopped before the first iteration: still a run to --resume
        save_checkpoint(ckpt_path, params, rng=rng, config=cfg.training(), extra=state)
    if it >= cfg.iterations:
        status = "finished"
    elif status == "finished":  # --stop-at
        status = "stopped"
    result = {"status": status, "iteration": it}
    if it < cfg.iterations:
        write_status(logdir, result["status"], it)
        echo(f"{result['status']} at iteration {it}: checkpoint saved in {ckpt_path}; continue with "
             f"tinymeta train --resume --logdir {logdir}")
        if not evaluate_when_stopped:
            return result
    if evaluate_at_end:
        summary = evaluate(cfg, params, state, echo=echo)
        paths = summary.pop("paths")
        write_json(logdir / RESULTS, summary)
        figs = plot(summary["average_return"], paths, logdir,
                            f"2D navigation, {cfg.algorithm}, {it} iterations")
        echo("wrote " + " ".join([str(logdir / RESULTS), *figs]))
        result["results"] = summary
    if it >= cfg.iterations:
        write_status(logdir, "finished", it)
    return result


def evaluate_policies(learner: MetaRL, policies: dict, cfg: RLConfig) -> tuple[dict, dict]:
    """Average return after 0..eval_steps inner steps for each named ``(params, rates)``; and the paths."""
    goals = navigation.sample_goals(np.random.default_rng(cfg.eval_seed), cfg.eval_tasks)
    results, paths = {}, {}
    for name, (params, rates) in policies.items():
        rng = np.random.default_rng(cfg.eval_seed + 1)  # the same action noise stream for every policy
        runs = learner.sample_adaptation(params, goals, rng, cfg.eval_trajectories, cfg.eval_steps, rates=rates)
        per_step = [summarize(p.task_returns()) for p in runs]
        results[name] = {"steps": list(range(len(runs))), "mean": [s["mean"] for s in per_step],
                         "ci95": [s["ci95"] for s in per_step]}
        paths[name] = runs
    return results, paths


def evaluate(cfg: RLConfig, params: dict, state: dict, echo=print) -> dict:
    """The trained policy, the random initialisation (and ``cfg.pretrained``) after 0..eval_steps steps.

    Returns the dict results.json holds, plus ``paths`` (the trajectories, for the figures).
    """
    t0 = time.monotonic()
    learner = make_learner(cfg)
    policies = {"meta-learned": (params, None),
                "random": (make_learner(cfg, "maml").init_params(cfg.seed, dtype=cfg.dtype), cfg.fast_lr)}
    if cfg.pretrained:
        policies["pretrained"] = (load_checkpoint(Path(cfg.pretrained) / CHECKPOINT).params, cfg.fast_lr)
    results, paths = evaluate_policies(learner, policies, cfg)
    iters = state["iteration"]
    for name, r in results.items():
        echo(f"{name:>13}: " + "  ".join(f"{m:8.2f}" for m in r["mean"]))
    return {"config": cfg.training(), "iterations_done": iters, "paper_iterations": PAPER_ITERATIONS,
            "train_seconds": state["train_seconds"],
            "seconds_per_iteration": state["train_seconds"] / iters if iters else None,
            "eval_seconds": time.monotonic() - t0, "pretrained_from": cfg.pretrained,
            "eval": {"tasks": cfg.eval_tasks, "trajectories": cfg.eval_trajectories, "seed": cfg.eval_seed},
            "average_return": results, "paper_average_return": PAPER_RETURNS, "paths": paths}


def evaluate_run(logdir, *, num_tasks=None, steps=None, pretrained=None, echo=print) -> dict:
    """``tinymeta evaluate`` on a 2D-navigation run: its checkpoint's policy (and the random one) on the test goals.

    Writes nothing into the run folder (``results.json`` is the end-of-training evaluation);
    returns the numbers results.json would hold.
    """
    logdir = Path(logdir)
    ckpt_path = logdir / CHECKPOINT
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"no checkpoint at {ckpt_path}: its results are in {logdir / RESULTS}"
                                if (logdir / RESULTS).is_file() else
                                f"no checkpoint at {ckpt_path}: train first (tinymeta train --preset nav2d-maml "
                                f"--logdir {logdir})")
    cfg = read_config(logdir)
    changes = {"eval_tasks": num_tasks, "eval_steps": steps, "pretrained": pretrained}
    cfg = cfg.replace(**{k: v for k, v in changes.items() if v is not None}).validate()
    ckpt = load_checkpoint(ckpt_path)
    summary = evaluate(cfg, ckpt.params, dict(ckpt.extra), echo=echo)
    del summary["paths"]
    return summary


def plot(results: dict, paths: dict, folder, title: str) -> list[str]:
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
    out = [str(save_png(fig, Path(folder) / "returns.png"))]

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
    out.append(str(save_png(fig, Path(folder) / "trajectories.png")))
    return out


def _train_rows(logdir) -> list[dict]:
    """The per-iteration rows of a run's log, each with ``time`` (runs made before it: summed ``seconds``)."""
    rows, total = [], 0.0
    for n, line in enumerate((Path(logdir) / LOG).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{Path(logdir) / LOG}, line {n}: not JSON ({exc})") from None
        total = row.get("time", total + row.get("seconds", 0.0))
        rows.append({**row, "time": total})
    return rows


def plot_curves(logdirs, out, labels=None) -> Path:
    """``tinymeta plot`` for 2D-navigation runs: average return before and after adaptation per iteration.

    Solid lines: after the inner step(s) (the meta-objective's trajectories); dashed: before.
    Against iteration (left) and training time (right). Returns the PNG's path.
    """
    from .viz import new_figure, save_png  # noqa: PLC0415 (matplotlib only when plotting)

    logdirs = [Path(d) for d in logdirs]
    if labels is not None and len(labels) != len(logdirs):
        raise ValueError(f"{len(labels)} label(s) for {len(logdirs)} run(s): give one --labels entry per run, "
                         "or none to use the folder names")
    for d in logdirs:
        if not (d / LOG).is_file():
            raise FileNotFoundError(f"no {LOG} in {d}: is it a run folder?")
    runs = [(d, _train_rows(d)) for d in logdirs]
    if not any(rows for _, rows in runs):
        raise ValueError(f"nothing to plot: {', '.join(str(d) for d, _ in runs)} has no log rows yet")
    labels = labels or [d.name or str(d) for d in logdirs]
    fig = new_figure((11, 3.8))
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    colors = [f"C{i % 10}" for i in range(len(runs))]
    for (d, rows), label, color in zip(runs, labels, colors):
        for ax, x in zip(axes, ("iteration", "time")):
            xs = [r[x] for r in rows]
            ax.plot(xs, [r["return_post"] for r in rows], color=color, label=f"{label}, after adaptation")
            ax.plot(xs, [r["return_pre"] for r in rows], color=color, linestyle="--", alpha=0.6,
                    label=f"{label}, before")
    for ax, xlabel in zip(axes, ("meta-iteration", "training time (s)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("average return (training goals)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("2D navigation: average return of the meta-batch's trajectories")
    fig.tight_layout()
    return save_png(fig, Path(out))


# ---- the older spelling: `tinymeta rl ...` ---------------------------------------------------
DEPRECATION = ("note: `tinymeta rl` is deprecated and will go: use `tinymeta train --preset nav2d-maml` "
               "(also nav2d-meta-sgd, nav2d-pretrained; `tinymeta presets` lists them)")


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``tinymeta rl`` (deprecated), as the committed runs' command.txt files use them."""
    d = RLConfig()
    p = argparse.ArgumentParser(prog="tinymeta rl", description="Deprecated: use `tinymeta train --preset "
                                "nav2d-maml`. " + __doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(RL_PRESETS), default=None, help="named settings (flags override)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default=d.algorithm)
    p.add_argument("--iterations", type=int, default=d.iterations, help="meta-iterations (original: 100)")
    p.add_argument("--seed", type=int, default=d.seed, help="training seed (original: 1, maml_trpo_point.py:64)")
    p.add_argument("--logdir", required=True, help="folder for checkpoint, log, results and figures")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop training after this many seconds of this sitting (then evaluate)")
    p.add_argument("--resume", action="store_true", help="continue from LOGDIR/checkpoint.npz")
    p.add_argument("--pretrained", default=None, help="logdir of a --algorithm pretrained run to compare with")
    p.add_argument("--meta-batch", type=int, default=d.meta_batch, help="tasks per meta-batch (maml_trpo_point.py:20)")
    p.add_argument("--fast-batch", type=int, default=d.fast_batch, help="trajectories per task (maml_trpo_point.py:19)")
    p.add_argument("--fast-lr", type=float, default=d.fast_lr, help="inner learning rate (maml_trpo_point.py:17)")
    p.add_argument("--inner-steps", type=int, default=d.inner_steps, help="inner steps in training (maml_trpo_point.py:22)")
    p.add_argument("--max-kl", type=float, default=d.max_kl, help="TRPO step size (maml_trpo_point.py:23)")
    p.add_argument("--horizon", type=int, default=d.horizon)
    p.add_argument("--hidden", type=int, nargs="+", default=list(d.hidden), help="(maml_trpo_point.py:38)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=d.dtype)
    p.add_argument("--eval-tasks", type=int, default=d.eval_tasks, help="test goals (test_maml_point.py:26)")
    p.add_argument("--eval-trajectories", type=int, default=d.eval_trajectories,
                   help="per goal and step (test_maml_point.py:72)")
    p.add_argument("--eval-steps", type=int, default=d.eval_steps)
    p.add_argument("--eval-seed", type=int, default=d.eval_seed, help="seed of the test goals (test_maml_point.py:27)")
    p.add_argument("--no-eval", action="store_true", help="train only")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Flags of ``tinymeta rl``, with ``--preset``'s values as the defaults."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preset:
        parser.set_defaults(**RL_PRESETS[args.preset].to_dict())
        args = parser.parse_args(argv)
    return args


def config_from_args(args: argparse.Namespace) -> RLConfig:
    """The RLConfig that ``tinymeta rl``'s flags describe."""
    names = {f.name for f in dataclasses.fields(RLConfig)} - {"dataset"}
    return RLConfig().replace(**{k: getattr(args, k) for k in names})


def main(argv=None) -> int:
    """``tinymeta rl ...`` (deprecated): train, then evaluate even after a time limit, as it always did."""
    print(DEPRECATION, file=sys.stderr)
    args = parse_args(argv)
    cfg = config_from_args(args)
    train(cfg, args.logdir, resume=args.resume, time_limit=args.time_limit, evaluate_at_end=not args.no_eval,
          evaluate_when_stopped=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
