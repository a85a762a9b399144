"""The results page's commands keep working: each line of results/cpu.sh, run tiny."""
import json
import shlex
import subprocess
import sys


from conftest import REPO

TINY = ["--iterations", "6", "--log-interval", "3", "--val-interval", "3", "--val-tasks", "4",
        "--test-tasks", "12", "--checkpoint-interval", "3"]


def commands():
    lines = (REPO / "results" / "cpu.sh").read_text().splitlines()
    return [shlex.split(line) for line in lines if line.startswith("python -m tinymeta")]


def _run(argv, cwd):
    argv = [sys.executable] + argv[1:]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_every_cpu_results_command_runs_tiny_and_writes_what_the_page_reads(tmp_path):
    cmds = commands()
    assert any(c[3] == "train" for c in cmds) and any(c[3] == "evaluate" for c in cmds)
    for argv in cmds:
        if argv[3] == "train":
            out = _run(argv + TINY, tmp_path)
            assert "0 (pre-update)" in out
            logdir = tmp_path / argv[argv.index("--logdir") + 1]
            test = json.loads((logdir / "test.json").read_text())
            assert test["tasks"] == 12 and {"mean", "ci95", "n"} <= set(test["loss"][0])
            assert len(test["loss"]) == test["steps"] + 1 and test["device"] == "cpu"
    for argv in cmds:
        if argv[3] == "evaluate":
            _run(argv + ["--tasks", "8"], tmp_path)
            ev = json.loads((tmp_path / argv[argv.index("--out") + 1]).read_text())
            assert ev["tasks"] == 8 and len(ev["loss"]) == 2
    report = [c for c in cmds if c[3] == "report"]
    assert report
    _run(report[0] + ["--root", str(tmp_path)], REPO)
    page = (tmp_path / "RESULTS.md").read_text()
    assert "not run yet" not in page and "| 5 | 5 |" in page
