"""A run folder's life cycle as a user meets it: short runs, file-system errors, contradictions, what
`runs` reports after a kill, links, leftovers of an earlier run, torn logs, stale temporary files,
where figures and evaluations go. CLI tests call the command as a user types it."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings

import pytest

from conftest import run_cli

from tinymeta import files
from tinymeta.experiment import PRESETS, load_checkpoint, loop, read_log, train
from tinymeta.experiment.runs import read_status

from conftest import OMNIGLOT_DIR, REPO

QUIET = dict(progress=False, echo=lambda *a: None)
FAST = ["--test-tasks", "10", "--eval-inner-steps", "2", "--val-tasks", "5", "--no-progress"]
SINE = ["--preset", "maml-sine-5shot", "--iterations", "20", "--log-interval", "10", "--val-interval", "0", *FAST]


def tinymeta(*argv, cwd=REPO, env=None):
    """``python -m tinymeta ARGV`` in a process of its own (for signals, kills and other working folders)."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "tinymeta", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tinymeta {command}: error:"), err
    return lines[0]


def sine(**kw):
    return PRESETS["maml-sine-5shot"].replace(iterations=20, log_interval=10, val_interval=0, test_tasks=10,
                                              eval_inner_steps=2, checkpoint_interval=10).replace(**kw)


# ---- issue 25, item 2: a run shorter than one log interval ------------------------------------------
@pytest.mark.parametrize("iterations", ["20", "1"])
def test_a_run_shorter_than_one_log_interval_finishes_with_a_last_row_and_its_figure(tmp_path, capsys, iterations):
    logdir = tmp_path / "r"
    code, out, err = run_cli(["train", "--preset", "maml-sine-10shot", "--iterations", iterations,
                              "--logdir", logdir, *FAST], capsys)  # the preset logs every 100 iterations
    assert code == 0, err
    assert read_status(logdir)["status"] == "finished"
    assert [r["iteration"] for r in read_log(logdir)] == [int(iterations)]
    assert (logdir / "curves.png").exists() and out.count("learning curves") == 1


def test_a_run_of_no_iteration_says_once_that_it_has_no_figure(tmp_path, capsys):
    code, out, err = run_cli(["train", *SINE, "--iterations", "0", "--logdir", tmp_path / "r"], capsys)
    assert code == 0 and not err and out.count("no learning curves") == 1
    assert read_status(tmp_path / "r")["status"] == "finished" and not (tmp_path / "r" / "curves.png").exists()


def test_a_shorter_last_row_does_not_change_the_rows_of_a_longer_resume(tmp_path):
    """A run ends with a row, however short; given more iterations, the resumed log is the uninterrupted one."""
    train(sine(iterations=40), tmp_path / "a", **QUIET)
    train(sine(iterations=25), tmp_path / "b", **QUIET)
    assert [r["iteration"] for r in read_log(tmp_path / "b")] == [10, 20, 25]
    train(sine(iterations=40), tmp_path / "b", resume=True, **QUIET)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(read_log(tmp_path / "b")) == strip(read_log(tmp_path / "a"))


# ---- issue 25, item 4: file-system errors -----------------------------------------------------------
NO_WRITE = "/sys/tinymeta-test"  # not writable, whoever runs the tests (root included)


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux's /sys")
def test_unwritable_paths_are_one_error_line_naming_the_path(tmp_path, capsys):
    code, _, err = run_cli(["train", *SINE, "--logdir", NO_WRITE], capsys)
    assert code == 2 and NO_WRITE in one_error_line(err, "train")
    (tmp_path / "a-file").write_text("")
    code, _, err = run_cli(["train", *SINE, "--logdir", tmp_path / "a-file" / "r"], capsys)
    assert code == 2 and "a-file" in one_error_line(err, "train")
    logdir = tmp_path / "r"
    assert run_cli(["train", *SINE, "--logdir", logdir], capsys)[0] == 0
    saved = {p.name: p.read_bytes() for p in logdir.iterdir()}
    code, out, err = run_cli(["evaluate", "--logdir", logdir, "--out", f"{NO_WRITE}/ev.json"], capsys)
    assert code == 2 and NO_WRITE in one_error_line(err, "evaluate") and "test tasks" not in out
    code, out, err = run_cli(["evaluate", "--logdir", logdir, "--out", "/sys/ev.json"], capsys)  # a folder, no write
    assert code == 2 and "/sys/ev.json" in one_error_line(err, "evaluate") and "test tasks" not in out
    code, _, err = run_cli(["plot", logdir, "--out", f"{NO_WRITE}/curves.png"], capsys)
    assert code == 2 and NO_WRITE in one_error_line(err, "plot")
    code, _, err = run_cli(["plot", logdir, "--out", tmp_path], capsys)  # a folder, not a file
    assert code == 2 and "is a folder" in one_error_line(err, "plot")
    assert {p.name: p.read_bytes() for p in logdir.iterdir()} == saved  # nothing saved was touched


def test_atomic_write_reports_one_error_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("kept")  # os.replace cannot put a file over a folder that holds files
    with pytest.raises(files.WriteError, match=f"cannot write {target}: "):
        files.write_text(target, "new")
    if os.path.isdir("/sys/kernel"):  # the temporary file cannot be made: one error, not a second from the clean-up
        with pytest.raises(files.WriteError, match="cannot write /sys/tinymeta-test.txt: ") as exc:
            files.write_text("/sys/tinymeta-test.txt", "new")
        assert exc.value.__suppress_context__ or exc.value.__context__ is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary file left
    assert (target / "inside").read_text() == "kept"


# ---- issue 25, item 6: --resume remembers --data-dir ------------------------------------------------
def test_resume_and_evaluate_remember_the_data_dir_and_the_stop_prints_the_whole_command(tmp_path, omniglot_cache):
    elsewhere = tmp_path / "elsewhere"  # no ./data/omniglot here, no $TINYMETA_DATA
    elsewhere.mkdir()
    env = {"TINYMETA_CACHE": str(omniglot_cache), "TINYMETA_DATA": ""}
    small = ["--meta-batch", "2", "--queries", "1", "--filters", "4", "--val-interval", "0", "--test-tasks", "2",
             "--eval-inner-steps", "1", "--iterations", "2", "--no-progress"]
    logdir = tmp_path / "omni"
    first = tinymeta("train", "--preset", "maml-omniglot-5w1s", *small, "--stop-at", "1", "--logdir", logdir,
                     "--data-dir", OMNIGLOT_DIR, cwd=elsewhere, env=env)
    assert first.returncode == 0, first.stderr
    assert f"continue with: python -m tinymeta train --resume --logdir {logdir}" in first.stdout
    again = tinymeta("train", "--resume", "--logdir", logdir, cwd=elsewhere, env=env)
    assert again.returncode == 0, again.stderr
    assert read_status(logdir)["status"] == "finished"
    ev = tinymeta("evaluate", "--logdir", logdir, "--tasks", "2", "--steps", "1", cwd=elsewhere, env=env)
    assert ev.returncode == 0, ev.stderr


# ---- issue 25, item 7: contradictory settings -------------------------------------------------------
@pytest.mark.parametrize("flags,reason", [
    ("--first-order --stop_grad False", "contradict each other"),
    ("--stop_grad False --first-order", "contradict each other"),
    ("--shots 5 --update_batch_size 1", "contradict each other"),
    ("--algorithm fomaml --stop_grad False", "fomaml is first-order MAML"),
    ("--time-limit -3", "--time-limit must be a number of seconds > 0"),
    ("--time-limit nan", "--time-limit must be a number of seconds > 0"),
    ("--stop-at 500 --iterations 100", "--stop-at 500 is after the last iteration"),
    ("--stop-at 0", "--stop-at 0 is not after"),
    ("--train False --stop-at 5", "--train=False evaluates"),
    ("--test_set True", "--test_set=True chooses the tasks of --train=False"),
])
def test_contradictory_settings_are_refused(tmp_path, capsys, flags, reason):
    code, _, err = run_cli(["train", *SINE, "--logdir", tmp_path / "r", *flags.split()], capsys)
    assert code == 2 and reason in one_error_line(err, "train")
    assert not (tmp_path / "r").exists()


def test_a_resume_refuses_a_stop_or_an_end_before_its_checkpoint(tmp_path, capsys):
    logdir = tmp_path / "r"
    assert run_cli(["train", *SINE, "--logdir", logdir, "--stop-at", "10"], capsys)[0] == 0
    code, _, err = run_cli(["train", "--resume", "--logdir", logdir, "--stop-at", "5"], capsys)
    assert code == 2 and "--stop-at 5 is not after the iteration the run starts at (10)" in one_error_line(err, "train")
    code, _, err = run_cli(["train", "--resume", "--logdir", logdir, "--iterations", "5"], capsys)
    assert code == 2 and "below the iteration the run has reached (10)" in one_error_line(err, "train")


# ---- issue 25, item 8: `runs` reports what is on disk ----------------------------------------------
def _wait_for(predicate, what):
    deadline = time.time() + 120
    while not predicate():
        assert time.time() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _status(logdir):
    try:
        return json.loads((logdir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_after_kill_9_runs_reports_the_checkpoint_not_the_last_log_row(tmp_path, capsys):
    logdir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "tinymeta", "train", *SINE, "--iterations", "1000000",
                             "--log-interval", "5", "--checkpoint-interval", "40", "--logdir", str(logdir)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def past_a_checkpoint():  # log rows written after the checkpoint at 40, before the next one
            rows = read_log(logdir) if (logdir / "log.jsonl").exists() else []
            return rows and rows[-1]["iteration"] >= 60 and rows[-1]["iteration"] % 40 >= 20
        _wait_for(past_a_checkpoint, "log rows after a checkpoint")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = load_checkpoint(logdir / "checkpoint.npz").extra["iteration"]
    assert read_log(logdir)[-1]["iteration"] >= saved  # (> unless a checkpoint came between the look and the kill)
    code, out, _ = run_cli(["runs", tmp_path], capsys)
    line = next(line for line in out.splitlines() if line.startswith("killed"))
    assert code == 0 and f"aborted at {saved}" in line and f"{saved}/1000000" in line
    again = tinymeta("train", "--resume", "--logdir", logdir, "--stop-at", saved + 1)
    assert again.returncode == 0 and f"resuming {logdir} at iteration {saved}" in again.stdout


def test_ctrl_c_in_the_final_evaluation_leaves_a_true_status_and_resume_finishes(tmp_path, capsys, monkeypatch):
    real = loop.evaluate_tasks

    def ctrl_c_in_the_test(algo, params, tasks, split, *args, **kwargs):  # Ctrl-C lands in the final evaluation
        assert _status(logdir) == {**_status(logdir), "status": "running", "iteration": 20}  # as a kill would leave
        if split == "test":
            raise KeyboardInterrupt
        return real(algo, params, tasks, split, *args, **kwargs)
    logdir = tmp_path / "r"
    monkeypatch.setattr(loop, "evaluate_tasks", ctrl_c_in_the_test)
    code, out, err = run_cli(["train", *SINE, "--checkpoint-interval", "0", "--logdir", logdir], capsys)
    assert code == 130 and "interrupted" in err
    state = read_status(logdir)
    assert state["status"] == "interrupted" and state["iteration"] == 20
    assert "during the final evaluation" in state["message"] and f"--resume --logdir {logdir}" in out
    code, out, _ = run_cli(["runs", tmp_path], capsys)
    assert "interrupted at 20" in out
    monkeypatch.setattr(loop, "evaluate_tasks", real)
    assert run_cli(["train", "--resume", "--logdir", logdir], capsys)[0] == 0
    assert read_status(logdir)["status"] == "finished" and (logdir / "test.json").exists()


# ---- issue 25, items 13 and 14: a diverging run, validation lines --------------------------------------
def test_a_diverging_run_shows_its_error_line_and_no_numpy_warning(tmp_path):
    result = tinymeta("train", *SINE, "--meta-lr", "1e6", "--logdir", tmp_path / "r")
    assert result.returncode == 1
    # nan or inf: which one overflows first depends on the BLAS kernel's order of summation (AVX2 or AVX-512)
    assert re.search(r"the meta-loss became (nan|-?inf) at iteration \d+", one_error_line(result.stderr, "train"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(FloatingPointError, match="final evaluation"):
            train(sine(inner_lr=1e6), tmp_path / "s", **QUIET)


def test_each_validation_is_printed_while_training(tmp_path, capsys):
    code, out, _ = run_cli(["train", *SINE, "--val-interval", "10", "--logdir", tmp_path / "r"], capsys)
    lines = [line for line in out.splitlines() if line.startswith("validation at iteration")]
    assert code == 0 and [line.split()[3] for line in lines] == ["10/20", "20/20"]
    assert "(5 tasks): loss" in lines[0] and "after 1 inner step" in lines[0]


# ---- issue 30, item 1: links ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["log.jsonl", "status.json", "checkpoint.npz"])
@pytest.mark.parametrize("flag", [[], ["--overwrite"]])
def test_a_run_file_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, capsys, name, flag):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    logdir = tmp_path / "x"
    logdir.mkdir()
    (logdir / name).symlink_to(outside)
    code, _, err = run_cli(["train", *SINE, "--logdir", logdir, *flag], capsys)
    assert code == 2 and "symbolic link" in one_error_line(err, "train") and name in err
    assert outside.read_text() == "keep me\n" and sorted(p.name for p in logdir.iterdir()) == [name]


def test_a_link_put_in_place_of_the_log_during_a_run_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    logdir = tmp_path / "x"

    def swap(line):  # called after each log row: someone sharing the folder swaps the log for a link
        if line.startswith("iteration 10/"):
            (logdir / "log.jsonl").unlink()
            (logdir / "log.jsonl").symlink_to(outside)
    train(sine(), logdir, progress=True, echo=swap)
    assert outside.read_text() == "keep me\n" and not (logdir / "log.jsonl").is_symlink()
    assert [r["iteration"] for r in read_log(logdir)] == [10, 20]


# ---- issue 30, item 2: an earlier run without its checkpoint -----------------------------------------
def test_a_folder_with_an_earlier_run_but_no_checkpoint_is_refused_and_overwrite_clears_it(tmp_path, capsys):
    logdir = tmp_path / "r"
    assert run_cli(["train", *SINE, "--logdir", logdir], capsys)[0] == 0
    (logdir / "checkpoint.npz").unlink()
    before = {p.name: p.read_bytes() for p in logdir.iterdir()}
    other = ["--preset", "meta-sgd-sine-5shot", "--iterations", "10", "--log-interval", "5", "--stop-at", "5",
             "--no-progress", "--logdir", logdir]
    code, _, err = run_cli(["train", *other], capsys)
    assert code == 2 and "log.jsonl" in one_error_line(err, "train") and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in logdir.iterdir()} == before
    assert run_cli(["train", *other, "--overwrite"], capsys)[0] == 0
    assert not (logdir / "test.json").exists() and not (logdir / "curves.png").exists()
    code, out, _ = run_cli(["runs", tmp_path], capsys)
    line = next(line for line in out.splitlines() if line.startswith("r "))
    assert "meta-sgd" in line and "stopped at 5" in line and line.split()[-3] == "-"  # no stale test figure


# ---- issue 30, item 7: a torn last line -------------------------------------------------------------
def test_a_torn_last_log_line_is_skipped_by_readers_and_dropped_by_a_resume(tmp_path, capsys):
    straight = tmp_path / "straight"
    train(sine(), straight, **QUIET)
    logdir = tmp_path / "torn"
    train(sine(), logdir, stop_at=10, **QUIET)
    with open(logdir / "log.jsonl", "a") as f:
        f.write('{"split": "train", "iteration": 1')  # a write cut off by kill -9
    code, out, err = run_cli(["runs", tmp_path], capsys)
    assert code == 0 and "stopped at 10" in out and "torn last line" in err
    code, _, err = run_cli(["plot", logdir, "--out", tmp_path / "c.png"], capsys)
    assert code == 0 and "torn last line" in err
    code, out, _ = run_cli(["train", "--resume", "--logdir", logdir, *FAST], capsys)
    assert code == 0 and "dropped the torn last line" in out
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(read_log(logdir)) == strip(read_log(straight))


# ---- issue 30, item 8: temporary files of killed saves ------------------------------------------------
def test_the_next_sitting_removes_temporaries_of_killed_saves_but_not_of_live_writers(tmp_path):
    logdir = tmp_path / "r"
    train(sine(), logdir, stop_at=10, **QUIET)
    dead = logdir / ".checkpoint.npz.999999999.0123456789ab.tmp"  # no such process id can exist
    older = logdir / ".checkpoint.npz.0123456789ab.tmp"           # the name older versions used
    live = logdir / f".curves.png.{os.getpid()}.0123456789ab.tmp"  # this test process: a live writer
    other = logdir / ".notes.txt.999999999.0123456789ab.tmp"      # not a file of the run
    for path in (dead, older, live, other):
        path.write_bytes(b"half a file")
        os.utime(path, (time.time() - 60, time.time() - 60))
    result = tinymeta("train", "--resume", "--logdir", logdir, "--stop-at", "11")
    assert result.returncode == 0, result.stderr
    assert "removed 2 temporary file(s)" in result.stdout
    assert not dead.exists() and not older.exists() and live.exists() and other.exists()


# ---- issue 30, item 11: where plot and evaluate write ----------------------------------------------
def test_plot_of_runs_in_unrelated_folders_writes_in_the_current_folder(tmp_path, capsys, monkeypatch):
    a, b, here = tmp_path / "one" / "a", tmp_path / "two" / "b", tmp_path / "here"
    for logdir in (a, b):
        train(sine(iterations=10), logdir, evaluate_at_end=False, **QUIET)
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, _ = run_cli(["plot", a, b], capsys)
    assert code == 0 and (here / "curves.png").exists() and "wrote curves.png" in out
    assert not (tmp_path / "curves.png").exists()


def test_evaluate_into_a_missing_folder_fails_before_the_evaluation(tmp_path, capsys):
    logdir = tmp_path / "r"
    train(sine(iterations=10), logdir, evaluate_at_end=False, **QUIET)
    code, out, err = run_cli(["evaluate", "--logdir", logdir, "--out", tmp_path / "missing" / "ev.json"], capsys)
    assert code == 2 and "does not exist" in one_error_line(err, "evaluate") and "test tasks" not in out
