"""One front door: every preset (the 2D-navigation ones too) is listed, trained, resumed, listed as a
run, evaluated and plotted by the same commands; and the command line's mistakes read as one line.

Each test calls ``python -m tinymeta ...`` as a user types it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# a 2D-navigation run that takes well under a second an iteration
TINY_RL = ["--preset", "nav2d-smoke", "--meta-batch", "2", "--fast-batch", "2", "--horizon", "8", "--hidden", "6",
           "--dtype", "float64", "--test-tasks", "2", "--eval-trajectories", "2", "--eval-inner-steps", "2",
           "--no-progress"]


def tinymeta(*argv, cwd=None, env=None):
    """``python -m tinymeta ARGV``: the CompletedProcess (text stdout and stderr)."""
    environ = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tinymeta", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd or REPO, env=environ, timeout=300)


def error_line(proc, command: str) -> str:
    """The one error line of a failed command (exit 2, no traceback, no usage block)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]  # (download's progress precedes it)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tinymeta" + (f" {command}" if command else "") + ": error:"), proc.stderr
    return lines[0]


# ---- item 9: the 2D-navigation presets through the front door ----------------------------------
def test_presets_lists_the_2d_navigation_cells_with_their_sources():
    listing = tinymeta("presets")
    assert listing.returncode == 0
    for name in ("maml-omniglot-5w1s", "nav2d-maml", "nav2d-meta-sgd", "nav2d-pretrained"):
        assert f"\n{name} " in listing.stdout
    rows = {r["name"]: r for r in map(json.loads, tinymeta("presets", "--json").stdout.splitlines())}
    maml = rows["nav2d-maml"]
    assert maml["config"]["max_kl"] == 0.01 and maml["config"]["hidden"] == [100, 100]
    assert "Fig. 4" in maml["source"]["paper"] and "-40.41" in maml["source"]["paper_value"]
    assert maml["source"]["code"].startswith("cbfinn/maml_rl")
    assert "maml_trpo_point.py:23" in maml["source"]["settings"]["max_kl"]
    assert rows["nav2d-pretrained"]["source"]["paper_value"].startswith("average return")


def test_train_an_rl_preset_stops_resumes_and_is_listed_by_runs(tmp_path):
    logdir = tmp_path / "runs" / "nav"
    first = tinymeta("train", *TINY_RL, "--logdir", logdir, "--stop-at", "1")
    assert first.returncode == 0, first.stderr
    assert json.loads((logdir / "status.json").read_text())["status"] == "stopped"
    assert {"checkpoint.npz", "config.json", "log.jsonl"} <= {p.name for p in logdir.iterdir()}
    assert "stopped at 1" in tinymeta("runs", tmp_path / "runs").stdout

    refused = tinymeta("train", *TINY_RL, "--logdir", logdir)
    assert "--resume" in error_line(refused, "train") and "--overwrite" in refused.stderr

    resumed = tinymeta("train", "--resume", "--logdir", logdir, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((logdir / "status.json").read_text())["status"] == "finished"
    results = json.loads((logdir / "results.json").read_text())
    assert results["iterations_done"] == 3 and len(results["average_return"]["meta-learned"]["mean"]) == 3
    assert (logdir / "returns.png").is_file() and (logdir / "trajectories.png").is_file()
    assert len((logdir / "log.jsonl").read_text().splitlines()) == 3
    listed = tinymeta("runs", tmp_path / "runs").stdout
    assert "maml nav2d" in listed and "finished" in listed and "3/3" in listed and "return" in listed


def test_an_rl_run_resumed_after_a_time_limit_computes_what_a_straight_run_does(tmp_path):
    from tinymeta.experiment.checkpoint import load_checkpoint
    straight = tinymeta("train", *TINY_RL, "--logdir", tmp_path / "a", "--iterations", "2")
    assert straight.returncode == 0, straight.stderr
    stopped = tinymeta("train", *TINY_RL, "--logdir", tmp_path / "b", "--iterations", "2", "--time-limit", "0")
    assert stopped.returncode == 0 and "time limit at iteration 0" in stopped.stdout
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "time limit"
    assert tinymeta("train", "--resume", "--logdir", tmp_path / "b", "--no-progress").returncode == 0
    a = load_checkpoint(tmp_path / "a" / "checkpoint.npz").params
    b = load_checkpoint(tmp_path / "b" / "checkpoint.npz").params
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    again = tinymeta("train", *TINY_RL, "--logdir", tmp_path / "b", "--iterations", "1", "--overwrite")
    assert again.returncode == 0 and json.loads((tmp_path / "b" / "results.json").read_text())["iterations_done"] == 1


def test_rl_settings_are_checked_like_the_others(tmp_path):
    assert "--shots does not apply to 2D navigation" in error_line(
        tinymeta("train", *TINY_RL, "--logdir", tmp_path / "x", "--shots", "5"), "train")
    assert "--max-kl applies to 2D navigation only" in error_line(
        tinymeta("train", "--preset", "maml-sine-5shot", "--max-kl", "0.1", "--logdir", tmp_path / "y"), "train")
    assert "max_kl (--max-kl)" in error_line(
        tinymeta("train", *TINY_RL, "--logdir", tmp_path / "z", "--max-kl", "0"), "train")
    assert "did you mean nav2d-maml" in error_line(tinymeta("train", "--preset", "nav2d-mam"), "train")
    assert "--time-limit must be" in error_line(
        tinymeta("train", *TINY_RL, "--logdir", tmp_path / "x", "--time-limit", "-3"), "train")
    assert "--stop-at 500 must be" in error_line(
        tinymeta("train", *TINY_RL, "--logdir", tmp_path / "x", "--stop-at", "500"), "train")
    assert not any((tmp_path / d).exists() for d in "xyz")


def test_evaluate_and_plot_take_an_rl_run(tmp_path):
    logdir = tmp_path / "nav"
    assert tinymeta("train", *TINY_RL, "--logdir", logdir, "--iterations", "1").returncode == 0
    ev = tinymeta("evaluate", "--logdir", logdir, "--steps", "1", "--tasks", "3", "--out", tmp_path / "ev.json")
    assert ev.returncode == 0, ev.stderr
    numbers = json.loads((tmp_path / "ev.json").read_text())
    assert numbers["eval"]["tasks"] == 3 and len(numbers["average_return"]["random"]["mean"]) == 2
    assert "--attack-epsilon does not apply" in error_line(
        tinymeta("evaluate", "--logdir", logdir, "--attack-epsilon", "0.1"), "evaluate")
    plot = tinymeta("plot", logdir)
    assert plot.returncode == 0 and (logdir / "curves.png").is_file(), plot.stderr
    mixed = tinymeta("plot", logdir, REPO / "results" / "runs" / "maml-sine-5shot", "--out", tmp_path / "m.png")
    assert "plot them separately" in error_line(mixed, "plot")


def test_the_committed_rl_runs_are_listed_beside_the_others():
    before = {p: p.stat().st_mtime_ns for p in (REPO / "results" / "runs").glob("rl-*/*")}
    listed = tinymeta("runs", REPO / "results" / "runs")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "maml-omniglot-5w1s" in rows
    assert "finished" in rows["rl-nav2d-maml"] and "100/100" in rows["rl-nav2d-maml"]
    assert "return -" in rows["rl-nav2d-maml"]
    assert "75/100" in rows["rl-nav2d-pretrained"]
    assert {p: p.stat().st_mtime_ns for p in (REPO / "results" / "runs").glob("rl-*/*")} == before


def test_the_old_rl_command_still_runs_and_points_to_train(tmp_path):
    old = tinymeta("rl", "--preset", "nav2d-smoke", "--logdir", tmp_path / "old", "--iterations", "1",
                   "--meta-batch", "2", "--fast-batch", "2", "--horizon", "8", "--hidden", "6", "--eval-tasks", "2",
                   "--eval-trajectories", "2")
    assert old.returncode == 0, old.stderr
    assert "deprecated" in old.stderr and "tinymeta train --preset nav2d-maml" in old.stderr
    assert (tmp_path / "old" / "results.json").is_file()


# ---- item 11: mistakes read as one line -------------------------------------------------------
@pytest.mark.parametrize("argv", [["train", "--iterations", "ten"], ["train", "--dataset", "mnist"]])
def test_an_argparse_mistake_is_one_error_line_and_a_help_hint(argv):
    proc = tinymeta(*argv)
    error_line(proc, "train")
    assert proc.stderr.strip().splitlines()[1:] == ["see `tinymeta train --help`"]


def test_presets_json_into_a_pipe_closed_early_exits_quietly():
    environ = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tinymeta", "presets", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO, env=environ)
    proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""


def test_show_task_without_data_and_download_offline_say_what_is_missing(tmp_path):
    show = tinymeta("show-task", "--dataset", "omniglot", "--data-dir", tmp_path / "none", "--out", tmp_path / "t.png")
    line = error_line(show, "show-task")
    assert "Omniglot data not found" in line and "tinymeta download omniglot" in show.stderr
    down = tinymeta("download", "omniglot", "--dest", tmp_path / "dl", "--base-url", "http://127.0.0.1:9/")
    assert "could not download" in error_line(down, "download") and "by hand" in down.stderr


def test_a_logdir_that_is_a_file_is_named_as_a_file(tmp_path):
    (tmp_path / "afile").write_text("")
    for logdir in (tmp_path / "afile", tmp_path / "afile" / "run"):
        line = error_line(tinymeta("train", "--preset", "maml-sine-5shot", "--logdir", logdir), "train")
        assert "is a file, not a folder" in line and "Errno" not in line


def test_missing_data_leaves_no_empty_run_folder(tmp_path):
    logdir = tmp_path / "new" / "run"
    proc = tinymeta("train", "--preset", "maml-omniglot-5w1s", "--logdir", logdir, "--data-dir", tmp_path / "none",
                    "--no-progress")
    assert "Omniglot data not found" in error_line(proc, "train")
    assert not (tmp_path / "new").exists()


# ---- item 15: polish --------------------------------------------------------------------------
def test_runs_without_a_runs_folder_says_no_runs_yet(tmp_path):
    proc = tinymeta("runs", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("no runs yet") and proc.stderr == ""
    assert "no folder" in error_line(tinymeta("runs", tmp_path / "typo"), "runs")


def test_a_mistyped_command_gets_a_suggestion():
    proc = tinymeta("trian", "--preset", "maml-sine-5shot")
    assert "did you mean train?" in error_line(proc, "")


def test_help_says_what_train_runs_without_a_preset_and_what_evaluate_logdir_is():
    train = " ".join(tinymeta("train", "--help").stdout.split())
    assert "Without --preset" in train and "maml-sine-10shot" in train
    evaluate = " ".join(tinymeta("evaluate", "--help").stdout.split())
    assert "--logdir LOGDIR the run folder to evaluate" in evaluate
    show = " ".join(tinymeta("show-task", "--help").stdout.split())
    assert "Omniglot as many as --shots" in show and "preset, 15" not in show


def test_protocols_md_lists_the_2d_navigation_presets_with_their_lines():
    from tinymeta.experiment.presets import RL_PRESETS, RL_SOURCES
    text = (REPO / "PROTOCOLS.md").read_text()
    assert all(f"`{name}`" in text for name in RL_PRESETS)
    assert "maml_trpo_point.py:23" in text and "maml_trpo_point.py:23" in RL_SOURCES["max_kl"]


def test_a_2d_navigation_run_is_never_written_through_a_link_nor_over_an_earlier_run(tmp_path):
    """Issue 30's run-folder rules hold for the nav2d presets too: a run file that is a link is refused and
    its target untouched; a folder with an earlier run's files but no checkpoint needs --overwrite."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "log.jsonl").symlink_to(outside)
    line = error_line(tinymeta("train", *TINY_RL, "--iterations", "1", "--logdir", linked), "train")
    assert "symbolic link" in line and outside.read_text() == "keep me\n"
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.json").write_text("{}")
    line = error_line(tinymeta("train", *TINY_RL, "--iterations", "1", "--logdir", old), "train")
    assert "earlier run" in line and "--overwrite" in line and (old / "results.json").read_text() == "{}"


def test_the_presets_table_gives_an_order_only_where_an_inner_gradient_is_differentiated():
    from tinymeta.experiment.cli import preset_table
    rows = {line.split()[0]: line.split() for line in preset_table()[1:]}
    assert rows["maml-omniglot-5w1s"][2] == "second" and rows["fomaml-omniglot-5w1s"][2] == "first"
    assert rows["reptile-omniglot-5w1s"][2] == "first"
    for name in ("protonet-omniglot-5w1s", "mann-omniglot-5way", "pretrained-sine-5shot"):  # no inner step trained
        assert rows[name][2] == "-", name
