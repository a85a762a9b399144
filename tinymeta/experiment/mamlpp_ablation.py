"""MAML++'s options one at a time on sine (chapter 9, section 9.4): MAML with five steps, each option alone, all.

    python -m tinymeta.experiment.mamlpp_ablation --out results/mamlpp-sine-ablation

trains every condition for ``--iterations`` (the same number for all) with each of ``--seeds``
seeds, evaluates each on the same ``--test-tasks`` fixed test tasks after the five inner
steps, and writes ``ablation.json`` (every number) and ``ablation.png`` into ``--out``, each
atomically (a temporary file, then a rename). The conditions are the ``mamlpp-sine-5shot``
preset with options switched off or on:

- ``maml``: every option off, i.e. MAML with five inner steps (second order, constant outer rate);
- ``msl``: the multi-step loss alone, over the first tenth of training (as the preset);
- ``da``: derivative-order annealing alone, first order for the first third of training
  (tinymeta's choice: the preset and the original's Omniglot configuration have none);
- ``lslr``: learned per-layer per-step inner rates alone;
- ``ca``: cosine annealing of the outer rate alone;
- ``all``: the preset's options together (MSL, LSLR, CA; no DA, as the preset).

Per-step batch-norm weights (BNWB) are not among them: the sine network has no batch norm.
The schedules count in epochs of ``iterations / 100`` iterations, so that training is 100
epochs as in the original's Omniglot runs, however short it is.

For each condition: the test MSE of each seed (mean over the test tasks, with its 95%
interval over the tasks), the mean over seeds with a 95% t-interval over the seeds, and the
difference from ``maml`` paired by seed and by test task (the same tasks for every run).
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..files import make_folder, write_text
from .factories import TaskSource, build_algorithm, build_model, make_optimizer
from .loop import scheduled_lr
from .presets import PRESETS

CONDITIONS = ("maml", "msl", "da", "lslr", "ca", "all")
LABELS = {"maml": "MAML, 5 steps (all off)", "msl": "+ multi-step loss", "da": "+ derivative-order annealing",
          "lslr": "+ learned per-step rates", "ca": "+ cosine outer rate", "all": "MAML++ (MSL + LSLR + CA)"}
TICKS = {"maml": "MAML\n(all off)", "msl": "+ MSL", "da": "+ DA", "lslr": "+ LSLR", "ca": "+ CA",
         "all": "MAML++\n(MSL+LSLR+CA)"}
PRESET = "mamlpp-sine-5shot"
# two-sided 95% Student t quantiles for n - 1 degrees of freedom (n seeds), n = 2..10
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def condition_config(name: str, iterations: int, seed: int, test_tasks: int = 600):
    """The ``mamlpp-sine-5shot`` preset with the options of condition ``name``, for ``iterations`` iterations."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
    epoch = iterations // 100
    off = PRESETS[PRESET].replace(learned_step_rates=False, multi_step_loss_iterations=0, first_order_iterations=0,
                                  lr_schedule="constant", epoch_iterations=epoch)
    msl = 10 * epoch                      # the preset's tenth of training (7,000 of 70,000)
    da = (100 // 3) * epoch               # a third of training, in whole epochs
    options = {"maml": {}, "msl": {"multi_step_loss_iterations": msl}, "da": {"first_order_iterations": da},
               "lslr": {"learned_step_rates": True}, "ca": {"lr_schedule": "cosine"},
               "all": {"multi_step_loss_iterations": msl, "learned_step_rates": True, "lr_schedule": "cosine"}}[name]
    return off.replace(iterations=iterations, seed=seed, test_tasks=test_tasks, val_interval=0,
                       checkpoint_interval=0, **options).validate()


class Diverged(FloatingPointError):
    """A run whose meta-loss stopped being finite; ``iteration`` (1-based) is where."""

    def __init__(self, message, iteration):
        super().__init__(message)
        self.iteration = iteration


def train_and_test(cfg):
    """Meta-train ``cfg`` in memory; (per-task test MSE after ``eval_inner_steps`` steps, meta-parameters, seconds).

    Raises :class:`Diverged` when the meta-loss stops being finite.
    """
    # the same loop as `tinymeta train` (experiment.train), without a run folder: the ablation keeps numbers only
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    tasks = TaskSource(cfg, "cpu", verbose=False)
    init_rng = np.random.default_rng([cfg.seed, 0])  # the loop's seeding: the same run as `tinymeta train`
    meta_params = algo.init_meta_params(model.init_params(init_rng, dtype=cfg.dtype, device="cpu"), init_rng)
    rng = np.random.default_rng([cfg.seed, 1])
    opt = make_optimizer(cfg, meta_params)
    began = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a divergence is caught below, and said
        _train(cfg, algo, tasks, meta_params, opt, rng)
        seconds = time.perf_counter() - began
        per_task = np.concatenate([algo.evaluate(meta_params, batch, cfg.eval_inner_steps)["loss"][-1]
                                   for batch in tasks.fixed("test", cfg.test_tasks)]).astype(np.float64)
    return per_task, meta_params, seconds


def _train(cfg, algo, tasks, meta_params, opt, rng):
    """The training loop's iterations on ``meta_params`` (in place), stopped by a meta-loss that is not finite."""
    for it in range(cfg.iterations):
        opt.lr = scheduled_lr(cfg, it)
        grads, metrics = algo.meta_gradient(meta_params, tasks.train(rng), rng=rng, iteration=it)
        loss = float(next(iter(metrics.values())).item())
        if not math.isfinite(loss):
            raise Diverged(f"{cfg.algorithm} seed {cfg.seed}: the meta-loss became {loss} at iteration {it + 1}",
                           it + 1)
        opt.step(grads)


def interval(values) -> dict:
    """Mean and the half-width of a two-sided 95% Student t interval over ``values`` (0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0}
    half = T95[n - 1] * v.std(ddof=1) / math.sqrt(n) if n > 1 else 0.0
    return {"mean": float(v.mean()), "ci95": float(half), "n": int(n)}


def learned_rates(meta_params) -> dict:
    """{weight: [rate at step 0, ..., step S-1]} of a model trained with learned per-step rates."""
    from ..algorithms.maml_plus_plus import RATE_PREFIX
    return {k[len(RATE_PREFIX):]: [float(r) for r in v.numpy()] for k, v in meta_params.items()
            if k.startswith(RATE_PREFIX)}


def run_ablation(iterations: int, seeds: int, test_tasks: int = 600, conditions=CONDITIONS, echo=print,
                 on_condition=None) -> dict:
    """Train and test every condition with seeds 0..seeds-1; the whole result as a JSON-ready dict.

    A run that diverges (its meta-loss stops being finite) is kept as such: ``"diverged_at"`` its
    iteration and ``"mse"`` None; the condition's interval is over its finite runs, and says how many
    there are (``n``). ``on_condition(result)`` is called after each condition (to save what is done).
    """
    per_task, result = {}, {"preset": PRESET, "iterations": iterations, "preset_iterations": PRESETS[PRESET].iterations,
                            "seeds": list(range(seeds)), "test_tasks": test_tasks, "shots": PRESETS[PRESET].shots,
                            "inner_steps": PRESETS[PRESET].inner_steps, "metric": "test MSE after 5 inner steps",
                            "conditions": {}}
    for name in conditions:
        runs = []
        for seed in range(seeds):
            cfg = condition_config(name, iterations, seed, test_tasks)
            try:
                losses, meta_params, seconds = train_and_test(cfg)
            except Diverged as exc:
                per_task.setdefault(name, []).append(None)
                runs.append({"seed": seed, "mse": None, "diverged_at": exc.iteration})
                echo(f"{name:>5} seed {seed}: diverged (the meta-loss became NaN or inf at iteration {exc.iteration})")
                continue
            per_task.setdefault(name, []).append(losses)
            mean, ci = float(losses.mean()), float(1.96 * losses.std() / math.sqrt(losses.size))
            run = {"seed": seed, "mse": mean, "mse_ci95_over_tasks": ci, "train_seconds": round(seconds, 1)}
            if cfg.learned_step_rates:
                run["learned_rates"] = learned_rates(meta_params)
            runs.append(run)
            echo(f"{name:>5} seed {seed}: test MSE {mean:.4f} ± {ci:.4f} ({seconds:.0f} s)")
        cond = {"label": LABELS[name], "options": {k: v for k, v in condition_config(name, iterations, 0, test_tasks)
                                                   .to_dict().items()
                                                   if k in ("multi_step_loss_iterations", "first_order_iterations",
                                                            "learned_step_rates", "lr_schedule", "epoch_iterations")},
                "runs": runs, "mse": interval([r["mse"] for r in runs if r["mse"] is not None]),
                "diverged": sum(r["mse"] is None for r in runs)}
        if name != "maml" and "maml" in per_task:  # paired by seed and by test task: the same tasks for every run
            diff = [(a - b).mean() for a, b in zip(per_task[name], per_task["maml"]) if a is not None and b is not None]
            cond["minus_maml"] = interval(diff)
        result["conditions"][name] = cond
        if on_condition is not None:
            on_condition(result)
    return result


def plot(result: dict, path) -> Path:
    """A bar per condition: the mean test MSE over seeds with its 95% interval, and each seed as a dot."""
    from .viz import new_figure, save_png
    names = list(result["conditions"])
    fig = new_figure((7.5, 3.6))
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        c = result["conditions"][name]
        if c["mse"]["n"]:  # no interval from one seed
            ax.bar(i, c["mse"]["mean"], yerr=c["mse"]["ci95"] if c["mse"]["n"] > 1 else None, capsize=4,
                   color="#4c72b0" if name != "maml" else "#999999")
        finite = [r["mse"] for r in c["runs"] if r["mse"] is not None]
        ax.plot([i] * len(finite), finite, "k.", ms=5)
        if c["diverged"]:
            ax.annotate(f"{c['diverged']} of {len(c['runs'])} diverged", (i, c["mse"]["mean"] or 0), xytext=(0, 4),
                        textcoords="offset points", ha="center", fontsize=8, color="#c44e52")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([TICKS[n] for n in names], fontsize=8)
    ax.set_ylabel("test MSE after 5 steps")
    ax.set_title(f"MAML++ options on sine, K={result['shots']}: {result['iterations']:,} iterations, "
                 f"{len(result['seeds'])} seeds, {result['test_tasks']} test tasks", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)


def write_result(result: dict, out) -> tuple[Path, Path]:
    """ablation.json and ablation.png in ``out``, each written to a temporary file and renamed."""
    import json
    out = Path(out)
    make_folder(out, "output folder (--out)")
    write_text(out / "ablation.json", json.dumps(result, indent=1) + "\n")
    return out / "ablation.json", plot(result, out / "ablation.png")


def _positive(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, got {value}")
        return value
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, the house style: no usage block
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def main(argv=None) -> int:
    """The command line: ``python -m tinymeta.experiment.mamlpp_ablation --out DIR [--iterations N] [--seeds S] ...``."""
    p = _Parser(prog="python -m tinymeta.experiment.mamlpp_ablation", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for ablation.json and ablation.png")
    p.add_argument("--iterations", type=_positive("--iterations"), default=5000,
                   help="meta-training iterations of every run, a multiple of 100 (default 5000)")
    p.add_argument("--seeds", type=_positive("--seeds"), default=3, help="seeds per condition, 2 to 10 (default 3)")
    p.add_argument("--test-tasks", type=_positive("--test-tasks"), default=600, help="fixed test tasks (default 600)")
    p.add_argument("--conditions", default=",".join(CONDITIONS),
                   help=f"comma-separated conditions to run (default all: {','.join(CONDITIONS)})")
    args = p.parse_args(argv)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        p.error(f"--conditions {args.conditions!r}: unknown {', '.join(unknown) or 'none given'}; choose from "
                f"{','.join(CONDITIONS)}")
    if args.iterations % 100:
        p.error(f"--iterations must be a multiple of 100 (the schedules count in 100 epochs), got {args.iterations}")
    if not 2 <= args.seeds <= 10:
        p.error(f"--seeds must be between 2 and 10 (a 95% interval over seeds needs two), got {args.seeds}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        p.error(f"--out {out} exists and is not a folder: give a folder")
    try:
        with tempfile.TemporaryDirectory(dir=out.parent if out.parent.is_dir() else None) as probe:
            del probe  # the folder that will hold --out is writable: fail now, not after the training
    except OSError as exc:
        p.error(f"--out {out}: cannot write there ({exc.strerror}); give a writable folder")
    result = run_ablation(args.iterations, args.seeds, args.test_tasks,
                          [c for c in CONDITIONS if c in conditions],  # MAML first: the others' differences need it
                          on_condition=lambda partial: write_result(partial, out))  # a crash keeps what is done
    json_path, png_path = write_result(result, out)

    def shown(s, sign=""):
        if s["mean"] is None:
            return "no finite run"
        return f"{s['mean']:{sign}.4f} " + (f"± {s['ci95']:.4f} (n={s['n']})" if s["n"] > 1 else "(one seed: no interval)")
    for name, c in result["conditions"].items():
        extra = f"   minus MAML {shown(c['minus_maml'], '+')}" if "minus_maml" in c else ""
        diverged = f"   {c['diverged']} diverged" if c["diverged"] else ""
        print(f"{c['label']:<32} test MSE {shown(c['mse'])}{extra}{diverged}")
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
