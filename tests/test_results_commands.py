"""The results page's commands keep working: each line of results/cpu.sh, run tiny."""
import json
import os
import shlex
import subprocess
import sys

from tinymeta.experiment import PRESETS

from conftest import OMNIGLOT_DIR, REPO

TINY = ["--iterations", "6", "--log-interval", "3", "--val-interval", "3", "--val-tasks", "4",
        "--test-tasks", "12", "--checkpoint-interval", "3", "--meta-batch", "4"]
SHARED_OMNIGLOT = "../shared/data/omniglot"  # as the commands name it, from the repo root


def commands(script="cpu.sh"):
    lines = (REPO / "results" / script).read_text().splitlines()
    return [shlex.split(line) for line in lines if line.startswith("python -m tinymeta")]


def _run(argv, cwd, env=None):
    argv = [sys.executable] + [str(OMNIGLOT_DIR) if a == SHARED_OMNIGLOT else a for a in argv[1:]]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_every_cpu_results_command_runs_tiny_and_writes_what_the_page_reads(tmp_path):
    cmds = commands()
    assert any(c[3] == "train" for c in cmds) and any(c[3] == "evaluate" for c in cmds)
    env = {"TINYMETA_CACHE": str(tmp_path / "cache")}
    for argv in cmds:
        if argv[3] == "train":
            if "--stop-at" in argv:  # a stop past the tiny run's last iteration contradicts it: the whole tiny run
                i = argv.index("--stop-at")
                argv = argv[:i] + argv[i + 2:]
            if "--resume" in argv and "--iterations" in argv:  # a resume that lengthens the run: 3 more, tiny
                i = argv.index("--iterations")
                argv = argv[:i + 1] + [str(int(TINY[1]) + 3)] + argv[i + 2:]
            out = _run(argv + ([] if "--resume" in argv else TINY), tmp_path, env)  # resume: the saved config
            assert "0 (pre-update)" in out or "no inner loop" in out   # a learner without an inner loop: one row
            logdir = tmp_path / argv[argv.index("--logdir") + 1]
            test = json.loads((logdir / "test.json").read_text())
            assert test["tasks"] == 12 and {"mean", "ci95", "n"} <= set(test["loss"][0])
            assert len(test["loss"]) == test["steps"] + 1 and test["device"] == "cpu"
    for argv in cmds:
        if argv[3] == "evaluate":
            _run(argv + ["--tasks", "8"], tmp_path, env)
            ev = json.loads((tmp_path / argv[argv.index("--out") + 1]).read_text())
            assert ev["tasks"] == 8 and ev["train_seconds"] > 0
            if ev["algorithm"] == "nil":  # no head, no inner loop: one accuracy, by similarity to the support set
                assert len(ev["accuracy"]) == 1 and "loss" not in ev
            else:
                assert len(ev["loss"]) == ev["steps"] + 1
        if argv[3] == "plot":
            _run(argv, tmp_path)
            assert (tmp_path / argv[argv.index("--out") + 1]).stat().st_size > 10_000
    report = [c for c in cmds if c[3] == "report"]
    assert report
    _run(report[0] + ["--root", str(tmp_path)], REPO)
    page = (tmp_path / "RESULTS.md").read_text()
    sine, omniglot = page.split("## Omniglot")
    compared = page.split("## MAML vs Meta-SGD on Omniglot")[1].split("\n## ")[0]
    assert "not run yet" not in compared and "| 3 | " in compared  # both tiny runs validated at iteration 3
    assert (tmp_path / "results" / "figure_maml_vs_meta_sgd_omniglot.png").stat().st_size > 10_000
    flagship = page.split("## The flagship cell")[1].split("\n## ")[0]
    assert "| 6 (6), finished | " in flagship and "curves.png)" in flagship  # the tiny run: 1 and 10 steps
    adml = page.split("## ADML vs MAML")[1].split("\n## ")[0]
    assert "not run yet" not in adml and "| 3 | " in adml  # both rows attacked; validation at equal iterations
    assert "not run yet" not in sine and "| 5 | 5 |" in page
    for argv in cmds:  # every Omniglot cell the CPU commands train has its row filled
        if argv[3] == "train" and "--preset" in argv and "omniglot" in argv[argv.index("--preset") + 1]:
            name = argv[argv.index('--preset') + 1]
            rows = [r for r in omniglot.splitlines() if r.startswith(f"| {name} |")]
            row = next(r for r in rows if " ± " in r)  # its result, not its line in the plan of what is left
            assert "not run yet" not in row and "| cpu |" in row


COPY_TINY = ["--hidden", "8", "--memory-size", "8", "--memory-width", "4", "--max-len", "3", "--batch", "2"]


def test_the_copy_task_commands_run_tiny_in_order(tmp_path):
    """cpu.sh's NTM sittings (copy-task, then --resume) and its copy-task-plot, as tiny as they go."""
    cmds = [c for c in commands() if c[3] in ("copy-task", "copy-task-plot")]
    assert [c[3] for c in cmds][:1] == ["copy-task"] and cmds[-1][3] == "copy-task-plot"
    for n, argv in enumerate(cmds):
        argv = list(argv)
        if argv[3] == "copy-task":
            i = argv.index("--steps")
            argv[i + 1] = str(3 * (n + 1))  # each sitting a few steps further than the last
            if "--time-limit" in argv:
                i = argv.index("--time-limit")
                del argv[i:i + 2]
            extra = ["--eval-lengths", "2"] + ([] if "--resume" in argv else COPY_TINY)
            out = _run(argv + extra, tmp_path)
            assert f"checkpoint at step {3 * (n + 1)}" in out, out
        else:
            _run(argv + ["--lengths", "2", "4", "--batch", "2"], tmp_path)
            ev = json.loads((tmp_path / argv[4] / "evaluation.json").read_text())
            assert ev["step"] == 3 * n


def test_the_gpu_campaign_names_real_presets_and_parses():
    text = (REPO / "results" / "gpu.sh").read_text()
    block = text.split("PRESETS=(")[1].split(")")[0].split()
    assert block and all(name in PRESETS for name in block)
    from tinymeta.algorithms import ALGORITHMS
    from tinymeta.experiment.report import OMNIGLOT_PAPER
    # the page lists the cells in the order they are run; the GPU runs the learners with an inner loop
    # (learners without one, issue 26, are the cheap cells the CPU trains)
    assert block == [name for name in OMNIGLOT_PAPER if ALGORITHMS[PRESETS[name].algorithm].inner_loop]
    subprocess.run(["bash", "-n", str(REPO / "results" / "gpu.sh")], check=True)


def test_long_comparison_tables_keep_every_early_row_then_every_5000th_and_the_last():
    from tinymeta.experiment.report import _table_iterations
    logged = list(range(1000, 31_001, 1000))
    assert _table_iterations(logged) == list(range(1000, 10_001, 1000)) + [15_000, 20_000, 25_000, 30_000, 31_000]
    assert _table_iterations(logged[:12]) == list(range(1000, 10_001, 1000)) + [12_000]
    assert _table_iterations([3]) == [3] and _table_iterations([]) == []


def test_a_cells_row_reads_its_latest_test_evaluation(tmp_path):
    """A run evaluated part-way (eval-test.json) and then trained to the end (test.json) is reported at
    the end, and a later evaluate of a finished-then-resumed run wins over its older test.json."""
    from tinymeta.experiment.report import _test_result

    def evaluation(iteration):  # what train (test.json) and evaluate --out (eval-test.json) write
        return {"split": "test", "tasks": 600, "steps": 1, "iteration": iteration, "train_seconds": 1.0,
                "device": "cpu", "accuracy": [{"mean": 0.2, "ci95": 0.01}, {"mean": 0.9, "ci95": 0.01}]}
    run = tmp_path / "run"
    run.mkdir()
    assert _test_result(run) is None
    (run / "eval-test.json").write_text(json.dumps(evaluation(46966)))
    assert _test_result(run)["iteration"] == 46966
    (run / "test.json").write_text(json.dumps(evaluation(60000)))
    assert _test_result(run)["iteration"] == 60000
    (run / "eval-test.json").write_text(json.dumps(evaluation(70000)))
    assert _test_result(run)["iteration"] == 70000
