"""Make the results page from run folders: every number comes from a file a command wrote.

``python -m tinymeta report`` reads ``results/runs/*/test.json`` (written by
``tinymeta train``) and ``eval-*.json`` (written by ``tinymeta evaluate``) and
writes the tables and figures of RESULTS.md. Prose that needs a person's
judgement lives in ``results/notes.md`` and is included as it is.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from ..algorithms.mann import TABLE1_INSTANCES, ordinal
from ..files import atomic_write, read_json, write_text
from .presets import PRESETS
from .runs import CELL_FILES, check_cell_task, latest_test_evaluation, read_config, read_evaluation, read_log

# Published values (../shared/REFERENCE.md)
MAML_SINE_K5 = {1: 0.67, 5: 0.38, 10: 0.35}          # MAML paper, App. C
PRETRAINED_SINE_K5 = {1: 2.41, 5: 2.23, 10: 2.19}    # same table: pretrained on all tasks


# Papers whose Omniglot table could not be read (presets.PAPER_UNREAD): the row says so instead of a number
_TAML_UNVERIFIED = "TAML, Jamal & Qi 2019: unverified, the paper's table could not be read; see `presets --json`"
_MAMLPP_UNVERIFIED = ("MAML++, Antoniou et al. 2019: unverified, the paper's table could not be read; the figure "
                      "others quote is in `presets --json`")

# Omniglot test accuracy in % and where it was published (REFERENCE.md), in the order the cells are run;
# None where the paper's table could not be read (the source then says so): REFERENCE.md asks that a paper's
# table be read before its number goes on RESULTS.md, so an unverified figure stays in `presets --json`.
OMNIGLOT_PAPER = {
    "maml-omniglot-5w1s": (98.7, "MAML, Table 1"),
    "maml-omniglot-20w1s": (95.8, "MAML, Table 1"),
    "fomaml-omniglot-5w1s": (98.3, "Reptile paper"),
    "meta-sgd-omniglot-5w1s": (99.53, "Meta-SGD"),
    "anil-omniglot-20w1s": (96.2, "ANIL, Table 2"),
    "nil-omniglot-20w1s": (96.7, "ANIL, Table 4"),
    "reptile-omniglot-5w1s": (97.68, "Reptile, transductive"),
    "maml-omniglot-5w5s": (99.9, "MAML, Table 1"),
    "maml-omniglot-20w5s": (98.9, "MAML, Table 1"),
    "fomaml-omniglot-5w5s": (99.2, "Reptile paper"),
    "meta-sgd-omniglot-5w5s": (99.93, "Meta-SGD"),
    "anil-omniglot-20w5s": (98.0, "ANIL, Table 2"),
    "nil-omniglot-20w5s": (98.0, "ANIL, Table 4"),
    "reptile-omniglot-5w5s": (99.48, "Reptile, transductive"),
    # MAML++'s 20-way cells (issue 27: "the 20-way cells go to the GPU list of results/gpu.sh")
    "mamlpp-omniglot-20w1s": (None, _MAMLPP_UNVERIFIED),
    "mamlpp-omniglot-20w5s": (None, _MAMLPP_UNVERIFIED),
    "siamese-omniglot-20w1s": (92.0, "Koch et al. 2015, Table 2, within-alphabet"),
    "siamese-contrastive-omniglot-20w1s": (None, "no published number: Koch et al.'s cell with the book's contrastive "
                                                 "loss (Hands-On Meta Learning, ch. 2)"),
}
# Cells with an inner loop that the CPU trains (issue 27: TAML's and MAML++'s 5-way 1-shot cells), so they are
# not on results/gpu.sh's list
CPU_PAPER = {
    "taml-entropy-omniglot-5w1s": (None, _TAML_UNVERIFIED),
    "taml-theil-omniglot-5w1s": (None, _TAML_UNVERIFIED),
    "mamlpp-omniglot-5w1s": (None, _MAMLPP_UNVERIFIED),
}
# Learners without an inner loop, on their originals' splits (prototypical and matching networks: Vinyals', every
# rotation its own class; relation networks: their code's), not MAML's; trained on the CPU (results/gpu.sh runs
# the cells above, in their order)
VINYALS_PAPER = {
    "protonet-omniglot-5w1s": (98.8, "ProtoNet, Table 1, Vinyals' split"),
    "protonet-omniglot-5w5s": (99.7, "ProtoNet, Table 1, Vinyals' split"),
    "protonet-omniglot-20w1s": (96.0, "ProtoNet, Table 1, Vinyals' split"),
    "protonet-omniglot-20w5s": (98.9, "ProtoNet, Table 1, Vinyals' split"),
    "matching-omniglot-5w1s": (98.1, "Matching Nets, Table 1, Vinyals' split"),
    "matching-omniglot-5w5s": (98.9, "Matching Nets, Table 1, Vinyals' split"),
    "matching-omniglot-20w1s": (93.8, "Matching Nets, Table 1, Vinyals' split"),
    "matching-omniglot-20w5s": (98.5, "Matching Nets, Table 1, Vinyals' split"),
    # relation networks: their code's own 1200/423 split, one rotation per episode (not Vinyals')
    "relationnet-omniglot-5w1s": (99.6, "Relation Net, Table 1, its code's split"),
    "relationnet-omniglot-5w5s": (99.8, "Relation Net, Table 1, its code's split"),
    "relationnet-omniglot-20w1s": (97.6, "Relation Net, Table 1, its code's split"),
    "relationnet-omniglot-20w5s": (99.1, "Relation Net, Table 1, its code's split"),
}
OMNIGLOT_CELLS = {**OMNIGLOT_PAPER, **CPU_PAPER, **VINYALS_PAPER}  # every row of the Omniglot table


# ADML and CAML (issue 15): the runs of results/cpu.sh and what the papers report
ADML_RUNS = ("maml-omniglot-5w1s", "adml-omniglot-5w1s")   # MAML's flagship run, and ADML, same preset
CAML_SHOTS = (5, 10, 20)
CAML_CONTEXTS = (5, 2, 50)                                          # the preset's context size first


def _load(path: Path):
    """A run folder's JSON file (None if absent), checked as its kind requires: a damaged one raises
    UnreadableFileError naming it, before anything is written."""
    if not os.path.lexists(path):
        return None
    if path.name == "config.json":
        read_config(path.parent)  # validated as a Config; the report reads the dict as saved
    elif path.name in CELL_FILES:  # a cell's own figure: of the run's own ways and shots
        cfg = read_config(path.parent) if os.path.lexists(path.parent / "config.json") else None
        return check_cell_task(path, read_evaluation(path), cfg)
    elif path.name == "test.json" or path.name.startswith("eval-"):
        return read_evaluation(path)
    return read_json(path)


def _cell(summary) -> str:
    return f"{summary['mean']:.3f} ± {summary['ci95']:.3f}"


def _run_facts(run: Path) -> dict:
    test, cfg = _load(run / "test.json"), _load(run / "config.json")
    return {"test": test, "config": cfg}


def _command(name: str) -> str:
    return f"`python -m tinymeta train --preset {name} --logdir results/runs/{name} --overwrite --no-progress`"


def sine_maml_table(runs: Path) -> list[str]:
    lines = ["| method (K = 5) | steps | paper MSE | tinymeta MSE (600 tasks, 95% CI) | iterations | train time | device |",
             "|---|---|---|---|---|---|---|"]
    for name, paper in (("maml-sine-5shot", MAML_SINE_K5), ("pretrained-sine-5shot", PRETRAINED_SINE_K5)):
        f = _run_facts(runs / name)
        if f["test"] is None:
            lines.append(f"| {name} | | | not run yet | | | |")
            continue
        t = f["test"]
        for step, value in paper.items():
            lines.append(f"| {name} | {step} | {value} | {_cell(t['loss'][step])} | {t['iteration']} | "
                         f"{t['train_seconds']:.0f} s | {t['device']} |")
    return lines


def steps_table(runs: Path, names) -> list[str]:
    lines = ["| run | K | pre-update | 1 step | 5 steps | 10 steps | iterations | train time |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        f = _run_facts(runs / name)
        if f["test"] is None:
            lines.append(f"| {name} | | not run yet | | | | | |")
            continue
        t, k = f["test"], f["config"]["shots"]
        at = [(_cell(t["loss"][s]) if s < len(t["loss"]) else "not evaluated") for s in (0, 1, 5, 10)]
        lines.append(f"| {name} | {k} | {' | '.join(at)} | {t['iteration']} | {t['train_seconds']:.0f} s |")
    return lines


def meta_sgd_grid(runs: Path) -> list[str]:
    lines = ["| trained on K | tested on K | MAML MSE (1 step) | Meta-SGD MSE (1 step) | Meta-SGD lower |",
             "|---|---|---|---|---|"]
    for train in (5, 10, 20):
        for test in (5, 10, 20):
            ev = {a: _load(runs / f"{a}-sine-{train}shot" / f"eval-{test}shot-1step.json") for a in ("maml", "meta-sgd")}
            if None in ev.values():
                lines.append(f"| {train} | {test} | not run yet | | |")
                continue
            m, s = ev["maml"]["loss"][1], ev["meta-sgd"]["loss"][1]
            lines.append(f"| {train} | {test} | {_cell(m)} | {_cell(s)} | {'yes' if s['mean'] < m['mean'] else 'no'} |")
    return lines


def _test_result(run: Path):
    """A run's latest evaluation on the test tasks (``runs.latest_test_evaluation``), or None."""
    return latest_test_evaluation(run)[0]


# The papers' non-transductive figures, where a paper gives one (Reptile, Table 1: "Reptile" without "+ Transduction")
NONTRANSDUCTIVE_PAPER = {"reptile-omniglot-5w1s": 95.39, "reptile-omniglot-5w5s": 98.90}
# The ANIL paper's NIL cells are the ANIL runs evaluated without their head (`evaluate --algorithm nil`)
NIL_OF = {"nil-omniglot-20w1s": "anil-omniglot-20w1s", "nil-omniglot-20w5s": "anil-omniglot-20w5s"}
# campaign runs without a row in the Omniglot table (ADML's table below)
PLAN_EXTRA = ("adml-omniglot-5w1s",)


def _cell_result(runs: Path, name: str):
    """(run folder, latest test evaluation, latest non-transductive one) of an Omniglot cell."""
    if name in NIL_OF:
        run = runs / NIL_OF[name]
        return run, _load(run / "eval-nil-test.json"), None
    run = runs / name
    return run, _test_result(run), _load(run / "eval-test-nontransductive.json")


def _accuracy(ev) -> str:
    acc, steps = ev["accuracy"][-1], len(ev["accuracy"]) - 1
    after = f"after {steps} step{'s' * (steps != 1)}" if steps else "no inner loop"
    return f"{100 * acc['mean']:.2f} ± {100 * acc['ci95']:.2f} {after} ({ev['tasks']} tasks)"


def omniglot_table(runs: Path) -> list[str]:
    """One row per Omniglot cell: its run's latest test evaluation (``_test_result``), transductive as the
    original code evaluates, and non-transductive where it has been evaluated so (``evaluate --transductive
    False``, written to ``eval-test-nontransductive.json`` at the same iteration)."""
    lines = ["| cell | paper accuracy | tinymeta accuracy (test tasks, 95% CI), transductive | non-transductive "
             "| iterations trained (paper) | device | train time | curves |", "|---|---|---|---|---|---|---|---|"]
    for name, (paper, source) in OMNIGLOT_CELLS.items():
        run, ev, nt = _cell_result(runs, name)
        paper_cell = (f"{paper} ({source})" if paper is not None else source) + (
            f"; {NONTRANSDUCTIVE_PAPER[name]} non-transductive" if name in NONTRANSDUCTIVE_PAPER else "")
        if ev is None:
            done = _trained_iteration(run) if name not in NIL_OF else 0
            state = f"trained {done} of {PRESETS[name].iterations}, not evaluated (the plan below)" if done \
                else "not run yet"
            lines.append(f"| {name} | {paper_cell} | {state} | | | | | |")
            continue
        seconds = ev["train_seconds"]
        iterations = PRESETS[NIL_OF.get(name, name)].iterations
        partial = ev["iteration"] < iterations
        trained = f"{ev['iteration']} ({iterations})" + (", stopped early" if partial else "")
        curves = f"[png](results/runs/{run.name}/curves.png)" if (run / "curves.png").exists() else ""
        other = _accuracy(nt) if nt is not None and nt["iteration"] == ev["iteration"] else ""
        lines.append(f"| {name} | {paper_cell} | {_accuracy(ev)} | {other} | {trained} | {ev['device']} | "
                     f"{seconds / 60:.0f} min | {curves} |")
    return lines


def _trained_iteration(run: Path) -> int:
    """The iteration a run's next sitting starts from: its checkpoint's, as status.json or the log says."""
    status = _load(run / "status.json")
    if isinstance(status, dict) and isinstance(status.get("iteration"), int):
        return status["iteration"]
    return 0


def omniglot_plan(runs: Path, bench_file: Path) -> list[str]:
    """What the unfinished Omniglot cells cost (:func:`cost_plan` of the table's cells, ADML and the seeds)."""
    cells = {name: SEED_RUNS.get(name, name) for name in (*OMNIGLOT_CELLS, *PLAN_EXTRA, *SEED_RUNS)
             if name not in NIL_OF}   # NIL is trained as ANIL: its cost is the ANIL cell's
    return cost_plan(runs, bench_file, cells, "cell")


def cost_plan(runs: Path, bench_file: Path, runs_of: dict, what: str) -> list[str]:
    """What unfinished runs cost: iterations left (of their preset's) times seconds per iteration.

    ``runs_of``: {run folder: its preset}. Seconds per iteration come from ``bench_file`` (``tinymeta bench
    --only algorithms --presets ... --out``, measured on a quiet machine) and, for a started run, from the log
    of its last sitting (beside other jobs, so usually slower). Runs are listed cheapest first.
    """
    bench = _load(bench_file) if bench_file.exists() else None
    measured = {}
    if bench:
        for rows in bench["groups"].values():
            measured.update({r["preset"]: r["value"] / 1e3 for r in rows if "preset" in r and "value" in r})
    plan = []
    for name, preset in runs_of.items():
        run = runs / name
        total = PRESETS[preset].iterations
        done = _trained_iteration(run)
        if done >= total:
            continue
        log = _load_log(run)
        last = _seconds_per_iteration(log[-40:]) if log else None
        rate = measured.get(preset)
        hours = rate * (total - done) / 3600 if rate is not None else None
        plan.append((hours if hours is not None else float("inf"), name, done, total, rate, last, hours))
    if not plan:
        return []
    where = (f"{bench['device']}, {bench['threads']} BLAS thread{'s' * (bench['threads'] != '1')}, "
             f"{bench['machine']}, {bench['date']}") if bench else "not measured"
    lines = [f"What the unfinished {what}s cost, cheapest first: seconds per iteration from `{bench_file.as_posix()}` "
             f"({where}; `python -m tinymeta bench --only algorithms --presets PRESET ... --out "
             f"{bench_file.as_posix()}`, every training run paused), and from each started run's log over its last "
             "rows. Hours are of one core at the benchmark's rate.", "",
             f"| {what} | trained | iterations left | s / iteration (bench) | s / iteration (its last sitting) | "
             "core-hours left |", "|---|---|---|---|---|---|"]
    for _, name, done, total, rate, last, hours in sorted(plan):
        lines.append(f"| {name} | {done} of {total} | {total - done} | "
                     + (f"{rate:.2f}" if rate is not None else "not measured") + " | "
                     + (f"{last:.2f}" if last is not None else "") + " | "
                     + (f"{hours:.1f}" if hours is not None else "") + " |")
    return lines


def _load_log(run: Path) -> list[dict]:
    """A run's log rows, or none where it has no readable log."""
    try:
        return read_log(run)
    except (FileNotFoundError, ValueError):
        return []


def rl_table(runs: Path) -> list[str]:
    """2D navigation: average return after 0-3 inner steps, tinymeta's runs beside the MAML paper's Fig. 4 data."""
    maml = _load(runs / "rl-nav2d-maml" / "results.json")
    if maml is None:
        return ["(not run yet)"]

    def row(label, r, iters=""):
        cells = " | ".join(f"{m:.2f} ± {c:.2f}" for m, c in zip(r["mean"], r["ci95"]))
        return f"| {label} | {iters} | {cells} |"

    lines = ["| policy | iterations (paper's) | 0 steps | 1 step | 2 steps | 3 steps |", "|---|---|---|---|---|---|"]
    lines.append(row("MAML", maml["average_return"]["meta-learned"],
                     f"{maml['iterations_done']} ({maml['paper_iterations']})"))
    sgd = _load(runs / "rl-nav2d-meta-sgd" / "results.json")
    if sgd is not None:
        early = ", stopped early" if sgd["iterations_done"] < sgd["paper_iterations"] else ""
        lines.append(row("Meta-SGD", sgd["average_return"]["meta-learned"],
                         f"{sgd['iterations_done']} ({sgd['paper_iterations']}){early}"))
    pre = _load(runs / "rl-nav2d-pretrained" / "results.json")
    if "pretrained" in maml["average_return"]:
        its = "" if pre is None else f"{pre['iterations_done']} ({pre['paper_iterations']})"
        lines.append(row("pretrained (TRPO on all goals)", maml["average_return"]["pretrained"], its))
    lines.append(row("random initialisation", maml["average_return"]["random"]))
    for name, label in (("meta-learned", "MAML"), ("pretrained", "pretrained"), ("random", "random")):
        paper = maml["paper_average_return"][name]
        lines.append(f"| *MAML paper, {label}* | | " + " | ".join(f"{v:.2f}" for v in paper) + " |")
    return lines


def old_protocol_lines(runs: Path) -> list[str]:
    """The Omniglot runs trained before the presets followed the original code (results/runs/old-protocol/)."""
    old = runs / "old-protocol"
    rows = []
    for run in sorted(old.glob("*")) if old.exists() else []:
        ev = _load(run / "eval-test.json") or _load(run / "eval-attack-test.json")
        if ev is not None:
            acc = ev["accuracy"][-1]
            attacked = ev.get("attacked_accuracy")
            under_attack = (f" ({100 * attacked[-1]['mean']:.2f} ± {100 * attacked[-1]['ci95']:.2f} under FGSM, "
                            f"epsilon {ev['attack_epsilon']})" if attacked else "")
            rows.append(f"{run.name}: {100 * acc['mean']:.2f} ± {100 * acc['ci95']:.2f}{under_attack} after "
                        f"{len(ev['accuracy']) - 1} steps, {ev['iteration']} iterations")
    if not rows:
        return []
    return ["Earlier runs, trained before the presets followed the original code (a mean inner loss, batch "
            "norm with an adapted scale and shift, padding 1, 15 queries per class except the two FGSM runs; "
            "Reptile with a fresh Adam per meta-batch and MAML's network), are kept in "
            "`results/runs/old-protocol/` and are **not comparable** with the papers: " + "; ".join(rows)
            + ". [PROTOCOLS.md](PROTOCOLS.md) lists every setting of the presets next to the original code's line."]


def _mse_by_steps_figure(runs: Path, out: Path, curves, log_scale: bool) -> Path | None:
    """One panel per K = 5, 10, 20: test MSE (95% CI) against inner steps for each run that has a
    test.json. ``curves(k)`` gives (run name, label, matplotlib style) per line. None if nothing drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415
    fig = Figure(figsize=(11, 3.3))
    FigureCanvasAgg(fig)
    drawn = False
    for ax, k in zip(fig.subplots(1, 3), (5, 10, 20)):
        for name, label, style in curves(k):
            t = _load(runs / name / "test.json")
            if t is None:
                continue
            drawn = True
            ax.errorbar(range(len(t["loss"])), [s["mean"] for s in t["loss"]], yerr=[s["ci95"] for s in t["loss"]],
                        fmt=style, ms=3, capsize=2, label=label)
        ax.set_title(f"K = {k}")
        ax.set_xlabel("gradient steps at test time")
        ax.set_ylabel("MSE on 600 held-out tasks")
        if log_scale:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if not drawn:
        return None
    fig.tight_layout()
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    return out


def figure2(runs: Path, out: Path) -> Path | None:
    """MSE against inner steps at test time, MAML vs the pretrained net, for K = 5, 10, 20 (MAML Fig. 3)."""
    return _mse_by_steps_figure(runs, out, lambda k: ((f"maml-sine-{k}shot", "MAML", "-o"),
                                                      (f"pretrained-sine-{k}shot", "pretrained", "--s")),
                                log_scale=False)


def _validation_rows(logs: dict) -> tuple[dict, list[int]]:
    """From {run: its log rows}: each run's validation rows by iteration, and the iterations every run
    logged (sorted)."""
    val = {name: {r["iteration"]: r for r in rows if r.get("split") == "val"} for name, rows in logs.items()}
    return val, sorted(set.intersection(*(set(v) for v in val.values())))


def _table_iterations(common: list[int], dense_until: int = 10_000, every: int = 5_000) -> list[int]:
    """The rows a table shows: every logged iteration up to ``dense_until`` (where the runs
    differ most), then every ``every``-th, and the last one the runs share."""
    shown = [it for it in common if it <= dense_until or it % every == 0]
    return shown + common[-1:] if common and common[-1] not in shown else shown


def adml_table(runs: Path) -> list[str]:
    """Clean and FGSM-attacked test accuracy of MAML and ADML (attack against each adapted model)."""
    lines = ["| run | iterations trained (preset) | epsilon | clean accuracy (600 test tasks, 95% CI) | "
             "FGSM-attacked accuracy | inner steps | device | train time | curves |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ADML_RUNS:
        run = runs / name
        ev = _load(run / "eval-attack-test.json")
        cfg = _load(run / "config.json")
        if ev is None or "attacked_accuracy" not in ev:
            lines.append(f"| {name} | not run yet | | | | | | | |")
            continue
        steps = len(ev["accuracy"]) - 1
        eps = ev.get("attack_epsilon", cfg["adv_epsilon"] if cfg else "")
        clean, att = ev["accuracy"][-1], ev["attacked_accuracy"][-1]
        curves = f"[png](results/runs/{name}/curves.png)" if (run / "curves.png").exists() else ""
        total = cfg["iterations"] if cfg else ""
        if cfg is not None and "task_loss" not in cfg:  # made before the presets followed MAML's code
            total = f"{total}; old protocol: mean inner loss, adapted BN scale and shift, padding 1"
        lines.append(f"| {name} | {ev['iteration']} ({total}) | {eps} | {100 * clean['mean']:.2f} ± "
                     f"{100 * clean['ci95']:.2f} | {100 * att['mean']:.2f} ± {100 * att['ci95']:.2f} | {steps} | "
                     f"{ev['device']} | {ev['train_seconds'] / 60:.0f} min | {curves} |")
    return lines


def adml_validation(runs: Path) -> list[str]:
    """Clean validation accuracy after one step of MAML and ADML at the iterations both logged: the two
    runs compared at equal training, where their test rows above are not."""
    if not all((runs / name / "log.jsonl").exists() for name in ADML_RUNS):
        return []
    val, common = _validation_rows({name: read_log(runs / name) for name in ADML_RUNS})
    if not common:
        return []
    lines = ["| iteration | MAML: clean val accuracy after 1 step | ADML: clean val accuracy after 1 step |",
             "|---|---|---|"]
    for it in _table_iterations(common):
        m, a = val[ADML_RUNS[0]][it], val[ADML_RUNS[1]][it]
        lines.append(f"| {it} | {100 * m['accuracy'][1]:.1f}% | {100 * a['accuracy'][1]:.1f}% |")
    return ["At equal iterations (validation, 100 tasks per point, clean queries; from the two logs):", "",
            *lines, ""]


def caml_table(runs: Path) -> list[str]:
    """CAML (CAVIA) against MAML on sine, K = 5, 10, 20: MSE after 1 and 10 inner steps at test time."""
    lines = ["| K | method | context | MSE, 1 step (600 tasks, 95% CI) | MSE, 10 steps | iterations | train time |",
             "|---|---|---|---|---|---|---|"]
    for k in CAML_SHOTS:
        names = [(f"caml-sine-{k}shot" + ("" if c == 5 else f"-context{c}"), "CAML", c) for c in CAML_CONTEXTS]
        for name, method, context in names + [(f"maml-sine-{k}shot", "MAML", "")]:
            t = _load(runs / name / "test.json")
            if t is None:
                lines.append(f"| {k} | {method} ({name}) | {context} | not run yet | | | |")
                continue
            at10 = _cell(t["loss"][10]) if len(t["loss"]) > 10 else "not evaluated"
            lines.append(f"| {k} | {method} ({name}) | {context} | {_cell(t['loss'][1])} | {at10} | "
                         f"{t['iteration']} | {t['train_seconds']:.0f} s |")
    return lines


def caml_figure(runs: Path, out: Path) -> Path | None:
    """MSE against inner steps at test time, CAML vs MAML, K = 5, 10, 20 (as CAVIA's Fig. 2a)."""
    return _mse_by_steps_figure(runs, out, lambda k: ((f"caml-sine-{k}shot", "CAML (5 context)", "-o"),
                                                      (f"maml-sine-{k}shot", "MAML", "--s")),
                                log_scale=True)


COMPARED = ("maml-omniglot-5w1s", "meta-sgd-omniglot-5w1s")  # Meta-SGD's claim, on Omniglot 5-way 1-shot


# MANN and its LSTM baseline (issue 27): accuracy at these instances of a class within an episode (Table 1's columns)
MANN_RUNS = {"mann-omniglot-5way": ("mann-omniglot-5way", "MANN (LRU access, 4 read heads; writes its keys, as the paper)"),
             "mann-add-omniglot-5way": ("mann-add-omniglot-5way",
                                        "MANN writing separate add vectors (tristandeleu/ntm-one-shot)"),
             "lstm-omniglot-5way": ("lstm-omniglot-5way", "LSTM (no memory)"),
             # run folder: (its preset, label); the "-long" run is the run above, continued from its checkpoint
             "mann-add-omniglot-5way-long": ("mann-add-omniglot-5way", "the add-vector MANN above, trained on"),
             # the same presets with the drawings not translated (--episode-shift 0), as tristandeleu's run
             "mann-omniglot-5way-noshift": ("mann-omniglot-5way", "MANN writing its keys, drawings not translated"),
             "mann-add-omniglot-5way-noshift": ("mann-add-omniglot-5way",
                                                "MANN writing add vectors, drawings not translated"),
             "lstm-omniglot-5way-noshift": ("lstm-omniglot-5way", "LSTM, drawings not translated")}


# The runs whose next sittings go on to their preset's length (the add-vector preset's goes on as its "-long" run;
# the untranslated ones are ablations at 6,250 updates, compared with the translated runs at that length)
MANN_PLAN = {"mann-omniglot-5way": "mann-omniglot-5way", "lstm-omniglot-5way": "lstm-omniglot-5way",
             "mann-add-omniglot-5way-long": "mann-add-omniglot-5way"}


def _after_gap(lines: list[str]) -> list[str]:
    """``lines`` after a blank line, or nothing where there are none."""
    return ["", *lines] if lines else []


def mann_table(runs: Path) -> list[str]:
    """One row per run: test accuracy at the 1st, 2nd, 3rd, 5th and 10th drawing of a class in an episode
    (``instance_accuracy`` of its latest test evaluation), then over every step of the episode."""
    lines = ["| run | model | " + " | ".join(f"{ordinal(k)} instance" for k in TABLE1_INSTANCES)
             + " | every step | test episodes | iterations trained (paper's) | device | train time |",
             "|---|---|" + "---|" * (len(TABLE1_INSTANCES) + 5)]
    for name, (preset, label) in MANN_RUNS.items():
        run = runs / name
        paper = PRESETS[preset].iterations
        planned = (_load(run / "config.json") or {}).get("iterations", paper)  # a continued run: more than the paper's
        ev = _test_result(run)
        if ev is None or "instance_accuracy" not in ev:
            done = _trained_iteration(run)
            state = f"trained {done} of {planned}, not evaluated" if done else "not run yet"
            lines.append(f"| {name} | {label} | {state} |" + " |" * (len(TABLE1_INSTANCES) + 4))
            continue
        by_instance = ev["instance_accuracy"]
        cells = [_cell_pct(by_instance[k - 1]) if k <= len(by_instance) else "" for k in TABLE1_INSTANCES]
        trained = f"{ev['iteration']} ({paper})"
        if ev["iteration"] < max(planned, paper):  # a run's own plan may be shorter than its preset's (an older one)
            trained += f", of {planned} planned" if planned > paper else ", stopped early"
        lines.append(f"| {name} | {label} | {' | '.join(cells)} | {_cell_pct(ev['accuracy'][-1])} | {ev['tasks']} | "
                     f"{trained} | {ev['device']} | {ev['train_seconds'] / 60:.0f} min |")
    return lines


def _cell_pct(summary, digits: int = 1) -> str:
    return f"{100 * summary['mean']:.{digits}f} ± {100 * summary['ci95']:.{digits}f}"


def _seconds_per_iteration(rows) -> float | None:
    """Median seconds per iteration between consecutive training log rows of one sitting."""
    train = [r for r in rows if r.get("split") == "train"]
    rates = [(b["time"] - a["time"]) / (b["iteration"] - a["iteration"]) for a, b in zip(train, train[1:])
             if b["iteration"] > a["iteration"] and b["time"] >= a["time"]]
    return sorted(rates)[len(rates) // 2] if rates else None


FLAGSHIP = "maml-omniglot-5w1s"
FLAGSHIP_PAPER = "98.7 ± 0.4"   # MAML paper, Table 1: 5-way 1-shot Omniglot


def flagship_lines(runs: Path) -> list[str]:
    """MAML 5-way 1-shot, the table's first cell: test accuracy after 1 and after 10 steps, where the run
    stands against the paper's 60,000 iterations, and its learning curves (against iteration and time)."""
    run = runs / FLAGSHIP
    ev = _test_result(run)
    cfg = _load(run / "config.json")
    if ev is None or cfg is None:
        return ["(not run yet)"]
    acc = ev["accuracy"]
    cells = " | ".join(f"{100 * acc[k]['mean']:.2f} ± {100 * acc[k]['ci95']:.2f}" for k in (1, len(acc) - 1))
    done = "finished" if ev["iteration"] >= cfg["iterations"] else "in progress"
    lines = [f"| iterations (paper's) | after 1 step ({ev['tasks']} test tasks, 95% CI) | after {len(acc) - 1} "
             f"steps | paper | device | train time |", "|---|---|---|---|---|---|",
             f"| {ev['iteration']} ({cfg['iterations']}), {done} | {cells} | {FLAGSHIP_PAPER} | {ev['device']} | "
             f"{ev['train_seconds'] / 3600:.1f} h |"]
    if (run / "curves.png").exists():
        lines += ["", f"![MAML 5-way 1-shot learning curves](results/runs/{FLAGSHIP}/curves.png)", "",
                  "Post-update loss and accuracy (one inner step, as in training) on meta-train batches and on 100 "
                  "validation tasks per point, against iteration and against training time (the sittings' clocks "
                  "added up; each ran beside another job on the 2 cores)."]
    return lines


# The flagship trained again with other seeds, so that its lead over the paper can be told from seed spread
FLAGSHIP_SEEDS = (1, 2)
SEED_RUNS = {f"{FLAGSHIP}-seed{seed}": FLAGSHIP for seed in FLAGSHIP_SEEDS}   # run folder -> its preset


def seed_lines(runs: Path) -> list[str]:
    """The flagship and its runs with other training seeds (``SEED_RUNS``), each on the same fixed test tasks
    (drawn with the test seed, never the training one): accuracy after 1 and after 10 steps, transductive, and
    after 10 steps non-transductive where evaluated so at the same iteration; the mean and sample standard
    deviation of each over the seeds that finished the paper's iterations."""
    total = PRESETS[FLAGSHIP].iterations
    lines = ["| run | seed | iterations (paper's) | after 1 step (test tasks, 95% CI) | after 10 steps | "
             "after 10 steps, non-transductive | device |", "|---|---|---|---|---|---|---|"]
    finals, finals_nt = [], []
    for name in (FLAGSHIP, *SEED_RUNS):
        run = runs / name
        cfg = _load(run / "config.json")
        seed = cfg["seed"] if isinstance(cfg, dict) and "seed" in cfg else \
            PRESETS[FLAGSHIP].seed if name == FLAGSHIP else int(name.rsplit("-seed", 1)[1])
        _, ev, nt = _cell_result(runs, name)
        if ev is None:
            done = _trained_iteration(run)
            state = f"trained {done} of {total}, not evaluated" if done else "not run yet"
            lines.append(f"| {name} | {seed} | {state} | | | | |")
            continue
        acc = ev["accuracy"]
        nt = nt["accuracy"][-1] if nt is not None and nt["iteration"] == ev["iteration"] else None
        finished = ev["iteration"] >= total
        if finished:
            finals.append(100 * acc[-1]["mean"])
            if nt is not None:
                finals_nt.append(100 * nt["mean"])
        lines.append(f"| {name} | {seed} | {ev['iteration']} ({total}){'' if finished else ', stopped early'} | "
                     f"{_cell_pct(acc[1], 2)} | {_cell_pct(acc[-1], 2)} ({ev['tasks']} tasks) | "
                     f"{_cell_pct(nt, 2) if nt is not None else ''} | {ev['device']} |")
    lines.append("")
    if len(finals) >= 2:
        mean, std = statistics.mean(finals), statistics.stdev(finals)
        spread = (f"; non-transductive, over the {len(finals_nt)} evaluated so: mean "
                  f"{statistics.mean(finals_nt):.2f}%, standard deviation {statistics.stdev(finals_nt):.2f}"
                  if len(finals_nt) >= 2 else "")
        lines.append(f"Over the {len(finals)} seeds that finished, after 10 steps: mean {mean:.2f}%, standard "
                     f"deviation {std:.2f} points (sample, n - 1){spread}, against the paper's {FLAGSHIP_PAPER} "
                     "(transductive), a 95% interval over the 600 test tasks of one run (cbfinn/maml main.py:201), "
                     "not a spread over seeds.")
    else:
        lines.append(f"Fewer than two seeds have finished {total} iterations: no spread yet. Each seed is its own "
                     f"run: `python -m tinymeta train --preset {FLAGSHIP} --seed S --logdir results/runs/"
                     f"{FLAGSHIP}-seedS` (S in {', '.join(map(str, FLAGSHIP_SEEDS))}).")
    return lines


def meta_sgd_vs_maml_omniglot(runs: Path, out: Path) -> list[str]:
    """MAML against Meta-SGD, 5-way 1-shot: validation accuracy after one step at the iterations both
    reached, time per iteration, and the learning-curve figure (``plot_runs`` of both runs)."""
    from .curves import plot_runs  # noqa: PLC0415 (matplotlib only when a report is made)
    if not all((runs / name / "log.jsonl").exists() for name in COMPARED):
        return ["(not run yet)"]
    logs = {name: read_log(runs / name) for name in COMPARED}
    plot_runs([runs / name for name in COMPARED], out=out, labels=["MAML", "Meta-SGD"])
    val, common = _validation_rows(logs)
    lines = [f"![MAML vs Meta-SGD, Omniglot 5-way 1-shot](results/{out.name})", "",
             "| iteration | MAML: val accuracy after 1 step | Meta-SGD: val accuracy after 1 step | "
             "MAML: val loss | Meta-SGD: val loss |", "|---|---|---|---|---|"]
    for it in _table_iterations(common):
        m, s = val[COMPARED[0]][it], val[COMPARED[1]][it]
        lines.append(f"| {it} | {100 * m['accuracy'][1]:.1f}% | {100 * s['accuracy'][1]:.1f}% | "
                     f"{m['loss'][1]:.3f} | {s['loss'][1]:.3f} |")
    per_it = {label: _seconds_per_iteration(logs[name]) for name, label in zip(COMPARED, ("MAML", "Meta-SGD"))}
    rates = ", ".join(f"{label} {sec:.2f} s" for label, sec in per_it.items() if sec is not None)
    lines += ["", f"Median time per iteration on the CPU (1 BLAS thread, in the logs): {rates}. Validation: "
              "100 tasks per point (a 95% CI of about ±3 points), one inner step as in training."]
    return lines


def check_run_files(runs: Path) -> None:
    """Read and check every file of the run folders in ``runs`` that the report uses, before anything is
    written: a damaged one stops the report with its name, and no figure or page is left half made."""
    folders = sorted(p for p in runs.iterdir() if p.is_dir() and os.path.lexists(p / "config.json")) \
        if runs.is_dir() else []
    for run in folders:
        read_config(run)
        for ev in [run / "test.json", *sorted(run.glob("eval-*.json"))]:
            if os.path.lexists(ev):
                read_evaluation(ev)
        if os.path.lexists(run / "log.jsonl"):
            read_log(run)


def make_report(root: Path = Path(".")) -> str:
    runs = root / "results" / "runs"
    check_run_files(runs)
    fig = figure2(runs, root / "results" / "figure2_sine.png")
    caml_fig = caml_figure(runs, root / "results" / "figure_caml_sine.png")
    notes = root / "results" / "notes.md"
    parts = [
        "# Results",
        "",
        "Every number on this page was written by the command beside it (`results/cpu.sh` lists them in the "
        "order they were run) and gathered by `python -m tinymeta report`; nothing is typed in by hand. "
        "Test numbers are means over the same 600 held-out tasks for every run, with 95% confidence "
        "intervals (1.96 std / sqrt(600)). Seed 0 unless said otherwise.",
        "",
        "## Sine regression: MAML vs a pretrained network (MAML paper, App. C, K = 5)",
        "",
        *sine_maml_table(runs),
        "",
        "Commands: " + ", ".join(_command(n) for n in ("maml-sine-5shot", "pretrained-sine-5shot")) + ".",
        "",
        "## Learning curves at meta-test time: MSE against gradient steps (MAML paper, Fig. 3)",
        "",
        ("![Figure 2](results/figure2_sine.png)" if fig else "(not run yet)"),
        "",
        *steps_table(runs, [f"{a}-sine-{k}shot" for a in ("maml", "pretrained") for k in (5, 10, 20)]),
        "",
        "## Meta-SGD vs MAML on sine: train shots x test shots (one inner step)",
        "",
        *meta_sgd_grid(runs),
        "",
        "Commands: the `train` lines for `maml-sine-{5,10,20}shot` and `meta-sgd-sine-{5,10,20}shot` in "
        "`results/cpu.sh`, then `python -m tinymeta evaluate --logdir results/runs/ALGO-sine-TRAINshot "
        "--shots TEST --steps 1 --out .../eval-TESTshot-1step.json` for each cell.",
        "",
        "## First-order MAML and Reptile on sine (K = 10)",
        "",
        *steps_table(runs, ["maml-sine-10shot", "fomaml-sine-10shot", "reptile-sine-10shot", "meta-sgd-sine-10shot"]),
        "",
        "Commands: " + ", ".join(_command(n) for n in ("fomaml-sine-10shot", "reptile-sine-10shot")) + ".",
        "",
        "## Omniglot few-shot classification (MAML Table 1, and the papers named)",
        "",
        *omniglot_table(runs),
        "",
        "Transductive or not: the original MAML code normalises with the statistics of the batch being "
        "evaluated (cbfinn/maml utils.py:41, `tf_layers.batch_norm` in its default training mode, at meta-test "
        "too), so a task's query images go through batch norm together, and the MAML and first-order MAML "
        "figures of its paper are transductive; the Reptile paper reports both (Table 1, its \"+ Transduction\" "
        "row is the transductive one); the Meta-SGD and ANIL papers do not say. tinymeta's main column evaluates "
        "as the original code does; the non-transductive column passes each query image through the net with "
        "its task's support set only (supervised-reptile reptile.py:129-134), as `python -m tinymeta evaluate "
        "--logdir RUN --transductive False --out RUN/eval-test-nontransductive.json` does, at the same "
        "iteration. NIL's rows are the ANIL runs evaluated without their head (`evaluate --algorithm nil`, "
        "written to `eval-nil-test.json`).",
        "",
        "Splits differ between rows, as between the papers: the MAML-family rows use MAML's split (1100 training, "
        "100 validation, 423 test characters, each class turned by a random multiple of 90 degrees per task), "
        "Reptile's rows its own (1200/423, rotations as extra training classes), the prototypical-network "
        "rows Vinyals et al.'s split by alphabet as jakesnell/prototypical-networks ships it (1200 training "
        "characters, 423 test, every rotation its own class: 4800 and 1692 classes), trained on 60-way episodes "
        "and evaluated on 1000 tasks with 15 queries per class; the matching-network rows the same split, "
        "trained on one N-way episode per step with 15 queries per class (as oscarknagg/few-shot trains; the "
        "authors released no code) and tested with 1 query per class; the relation-network rows their code's own "
        "1200/423 split, one rotation per episode; the Siamese rows Koch et al.'s (the 30 background alphabets "
        "train, 20-way tasks within one of 10 evaluation alphabets test). The test classes are not the same "
        "across these groups.",
        "",
        *omniglot_plan(runs, root / "results" / "bench-cpu.json"),
        "",
        "Commands: rows trained on the CPU are the Omniglot lines of `results/cpu.sh` (a run stopped before "
        "the paper's iterations is evaluated on the same fixed test tasks by `tinymeta evaluate`, written to "
        "`eval-test.json`); rows trained on a GPU come from `results/gpu.sh`, which runs the cells in this "
        "order and resumes unfinished runs.",
        "",
        *old_protocol_lines(runs),
        "",
        "## The flagship cell: MAML, Omniglot 5-way 1-shot, under the original protocol",
        "",
        *flagship_lines(runs),
        "",
        "### Seed spread",
        "",
        *seed_lines(runs),
        "",
        "## MAML vs Meta-SGD on Omniglot 5-way 1-shot (Meta-SGD's claim: it learns faster)",
        "",
        "Post-update (one inner step) meta-training and meta-validation loss and accuracy against iteration and "
        "against training time, both runs under the corrected presets (PROTOCOLS.md). Training time is each "
        "run's own clock across its sittings, on a machine that also ran other jobs, so compare it only roughly.",
        "",
        *meta_sgd_vs_maml_omniglot(runs, root / "results" / "figure_maml_vs_meta_sgd_omniglot.png"),
        "",
        "Commands: the `maml-omniglot-5w1s` and `meta-sgd-omniglot-5w1s` lines of `results/cpu.sh`; the figure "
        "and table are drawn by `python -m tinymeta report` from the two runs' logs.",
        "",
        "## Reinforcement learning: 2D navigation (MAML paper, Sec. 5.3, Fig. 4)",
        "",
        "Average return over 40 test goals x 40 trajectories (95% CI) after 0-3 policy-gradient steps; "
        "the paper's rows are the data behind its Fig. 4 (cbfinn/maml_rl `icml/icml_point_results_*.pkl`).",
        "",
        *rl_table(runs),
        "",
        "Commands: `results/runs/rl-nav2d-*/command.txt` (`python -m tinymeta rl ...`); curves and "
        "trajectories before and after adaptation: `results/runs/rl-nav2d-maml/returns.png`, "
        "`trajectories.png`.",
        "",
        "## ADML vs MAML under FGSM attack, Omniglot 5-way 1-shot (ADML paper's claim, on another dataset)",
        "",
        "The ADML paper (Yin et al. 2018, arXiv:1806.03316) reports MiniImageNet and CIFAR-100, not Omniglot, so "
        "there is no published number for this cell; its claim is that ADML keeps its accuracy under attack where "
        "MAML's drops. Both rows use the same preset, MAML's 5-way 1-shot protocol (ADML adds FGSM support and "
        "query sets, epsilon 0.2), and the same 600 test tasks: the learner adapts on the clean support set, "
        "then each query set is attacked with FGSM against the adapted weights. MAML's row is the flagship run "
        "of the Omniglot table above; ADML's trained for one CPU sitting (an ADML iteration costs two MAML "
        "iterations and more), so their training budgets differ (the iterations column): read each row's drop "
        "under attack, and the validation table below for the two at equal iterations.",
        "",
        *adml_table(runs),
        "",
        *adml_validation(runs),
        "Commands: the `adml-omniglot-5w1s` lines and the `--attack-epsilon` line of `maml-omniglot-5w1s` in "
        "`results/cpu.sh` (train with a time limit, then `python -m tinymeta evaluate --logdir results/runs/RUN "
        "--attack-epsilon 0.2 --out results/runs/RUN/eval-attack-test.json`, then `python -m tinymeta plot "
        "results/runs/RUN --out results/runs/RUN/curves.png`).",
        "",
        "## MANN and its LSTM baseline on Omniglot episodes (Santoro et al. 2016, Table 1)",
        "",
        "Accuracy (%) at the k-th drawing of a class within an episode of 5 classes x 10 drawings, each label shown "
        "one step after its image, on fixed test episodes of the 423 test characters (95% CI over episodes); "
        "every step: over all 50 steps. Each run is a preset of the one training loop (PROTOCOLS.md lists "
        "every setting and its source); the first two MANN rows differ only in what a head writes to memory. The "
        "paper's 100,000 episodes are 100,000 updates of 16 episodes, as both reimplementations count them "
        "(PROTOCOLS.md); until 2026-12-07 the presets read them as 6,250 updates (100,000 / 16), and the rows "
        "trained to that length say \"stopped early\". The row marked trained on is the add-vector preset's run "
        "continued from its checkpoint at 6,250 (`train --resume --iterations 100000` on a copy of the run "
        "folder, which the loop resumes exactly: one run of the preset, the same episodes and seed), trained "
        "in sittings and evaluated where it stands. The rows whose drawings "
        "are not translated are their preset with `--episode-shift 0` "
        "(the presets move each drawing by up to 2 pixels each way; tristandeleu's run moves none), trained "
        "and tested on episodes without the translation. The paper's Table 1 could not be read with this project's tools "
        "(`PAPER_UNREAD` in `tinymeta/experiment/presets.py`): the figures others quote for it are in "
        "`python -m tinymeta presets --json`, marked unverified, and are not put on this page.",
        "",
        *mann_table(runs),
        "",
        "Commands: " + ", ".join(_command(n) for n in MANN_RUNS if n in PRESETS) + " (in sittings: `results/cpu.sh`; "
        "a run trained to 6,250 updates goes on with `train --logdir RUN --resume --iterations 100000`).",
        *_after_gap(cost_plan(runs, root / "results" / "bench-cpu.json", MANN_PLAN, "run")),
        "",
        "## CAML (CAVIA) vs MAML on sine regression (CAVIA paper, sine table)",
        "",
        "CAML adapts only a context vector (zero at the start of every task) fed to the first layer; MAML adapts "
        "every weight. MAML's rows are the MAML runs of this page (inner rate 0.01, MAML's protocol); CAML's follow "
        "the CAVIA code's defaults (`tinymeta.experiment.presets._caml_sine`). The CAVIA paper's own table "
        "(arXiv:1810.03642, sine results for 5/10/20 shots and several context sizes) could not be read with this "
        "project's search tools: its numbers are not reproduced here (unconfirmed); the settings and their sources "
        "are in `results/protocols-adml-caml.md`.",
        "",
        ("![CAML vs MAML](results/figure_caml_sine.png)" if caml_fig else "(figure: not run yet)"),
        "",
        *caml_table(runs),
        "",
        "Commands: " + ", ".join(_command(n) for n in [f"caml-sine-{k}shot" for k in CAML_SHOTS]
                                 + [f"caml-sine-{k}shot-context{c}" for k in CAML_SHOTS for c in CAML_CONTEXTS[1:]])
        + "; the MAML rows: "
        + ", ".join(_command(f"maml-sine-{k}shot") for k in CAML_SHOTS) + ". The figure is drawn by "
        "`python -m tinymeta report` from those runs' test.json.",
        "",
    ]
    if notes.exists():
        parts += [notes.read_text().rstrip(), ""]
    return "\n".join(parts)


def main(args) -> int:
    text = make_report(Path(args.root))
    out = Path(args.root) / "RESULTS.md"
    write_text(out, text)
    print(f"wrote {out}")
    return 0
