"""The copy-task training of the NTM: checkpoints during a sitting, a clean stop on SIGINT / SIGTERM, resumed runs
equal to uninterrupted ones bit for bit, and the figures of a run folder (``tinymeta copy-task-plot``)."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from tinymeta.autograd import grad
from tinymeta.experiment import copy_task
from tinymeta.experiment.checkpoint import load_checkpoint
from tinymeta.experiment.copy_task import train_copy
from tinymeta.optim import Adam

TINY = dict(hidden=6, memory_size=6, memory_width=3, batch=3, min_len=1, max_len=3, lr=0.01, seed=0)
TINY_ARGS = ["--hidden", "6", "--memory-size", "6", "--memory-width", "3", "--batch", "3", "--max-len", "3"]
QUIET = dict(echo=lambda *a: None)


def cli(*argv, **kw):
    """``python -m tinymeta ARGV`` as a user types it."""
    return subprocess.run([sys.executable, "-m", "tinymeta", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, **kw)


def assert_same_params(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


def test_checkpoints_are_written_during_a_sitting_and_resume_to_the_same_weights(tmp_path, monkeypatch):
    """--checkpoint-every 3 over 7 steps saves at 3 and 6 (and at the end); the step-3 checkpoint, resumed to 7,
    gives the weights of the uninterrupted 7 steps exactly (float64), and the log row in progress goes on."""
    saved = []
    real_save = copy_task.save_checkpoint

    def recording_save(path, *args, **kw):
        real_save(path, *args, **kw)
        saved.append(kw["extra"]["step"])
        if kw["extra"]["step"] == 3:  # what a sitting killed after step 3 would leave
            shutil.copytree(path.parent, tmp_path / "killed")
    monkeypatch.setattr(copy_task, "save_checkpoint", recording_save)
    whole = train_copy(tmp_path / "whole", steps=7, log_every=2, checkpoint_every=3, **QUIET, **TINY)
    assert saved == [3, 6, 7]
    assert load_checkpoint(tmp_path / "killed" / "checkpoint.npz").extra["step"] == 3
    resumed = train_copy(tmp_path / "killed", steps=7, resume=True, log_every=2, checkpoint_every=3, **QUIET)
    assert resumed["step"] == 7
    assert_same_params(whole["params"], resumed["params"])
    # the interval 3-4 was half done at the checkpoint: its row is the same mean of steps 3 and 4
    assert [r["step"] for r in resumed["log"]] == [2, 4, 6, 7]
    for a, b in zip(whole["log"], resumed["log"]):
        assert (a["loss"], a["bit_errors"]) == (b["loss"], b["bit_errors"])


def test_n_steps_in_one_sitting_equal_two_halves_bitwise(tmp_path):
    whole = train_copy(tmp_path / "a", steps=8, **QUIET, **TINY)
    train_copy(tmp_path / "b", steps=4, **QUIET, **TINY)
    half = train_copy(tmp_path / "b", steps=8, resume=True, **QUIET)
    assert_same_params(whole["params"], half["params"])
    assert all(p.dtype == np.float64 for p in half["params"].values())


def test_log_rows_record_wall_time_and_wrong_bits(tmp_path):
    out = train_copy(tmp_path / "r", steps=5, log_every=2, **QUIET, **TINY)
    rows = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert rows == out["log"] and [r["step"] for r in rows] == [2, 4, 5]
    for r in rows:
        assert set(r) == {"step", "loss", "bit_errors", "seconds", "lr"} and r["lr"] == TINY["lr"]
        assert r["seconds"] > 0 and 0 <= r["bit_errors"] <= 3 * 8 and 0 < r["loss"]


def test_a_new_rate_at_a_resume_is_recorded_and_replays(tmp_path):
    """--lr at a resume takes effect from that step: the first half's steps are the old rate's, the rest the new
    rate's with Adam's moments carried over (checked against one optimiser whose rate is set by hand at step 4);
    the change is in the config and the log rows, and a later resume keeps the new rate. Other settings still
    refuse to change."""
    train_copy(tmp_path / "r", steps=4, log_every=2, **QUIET, **TINY)
    out = train_copy(tmp_path / "r", steps=6, resume=True, log_every=2, lr=0.002, **QUIET)
    cfg = load_checkpoint(tmp_path / "r" / "checkpoint.npz").config
    assert cfg["lr"] == 0.002 and cfg["lr_changes"] == [[4, 0.01, 0.002]]
    assert [(r["step"], r["lr"]) for r in out["log"]] == [(2, 0.01), (4, 0.01), (6, 0.002)]

    # the same six steps by hand: the run's own model, sequences and clipping, the rate set at step 4
    model = copy_task.model_of({**copy_task.DEFAULTS, **TINY})
    params = model.init_params(np.random.default_rng([TINY["seed"], 0]), dtype="float64")
    opt, rng = Adam(params, lr=TINY["lr"]), np.random.default_rng([TINY["seed"], 1])
    for step in range(6):
        if step == 4:
            opt.lr = 0.002
        length = int(rng.integers(TINY["min_len"], TINY["max_len"] + 1))
        x, y, mask = copy_task.copy_batch(rng, TINY["batch"], length, dtype="float64")
        loss, _, _ = copy_task.copy_loss(model, params, x, y, mask)
        grads = grad(loss, params)
        opt.step({k: np.clip(g.numpy(), -copy_task.GRAD_CLIP, copy_task.GRAD_CLIP) for k, g in grads.items()})
    for k in params:
        np.testing.assert_allclose(out["params"][k].numpy(), params[k].numpy(), rtol=0, atol=1e-14, err_msg=k)

    again = train_copy(tmp_path / "r", steps=7, resume=True, log_every=2, **QUIET)  # no --lr: keeps 0.002
    assert again["log"][-1]["lr"] == 0.002
    with pytest.raises(ValueError, match="hidden 7"):
        train_copy(tmp_path / "r", steps=8, resume=True, hidden=7, **QUIET)
    with pytest.raises(ValueError, match="--lr must be a number > 0"):
        train_copy(tmp_path / "r", steps=8, resume=True, lr=-1.0, **QUIET)


def test_a_run_logged_before_rows_were_dicts_resumes(tmp_path):
    """The lead's run was begun with rows [step, loss] and no dtype in its config: it must resume."""
    from tinymeta.experiment.checkpoint import save_checkpoint
    out = train_copy(tmp_path / "r", steps=2, log_every=1, **QUIET, **TINY)
    ck = load_checkpoint(tmp_path / "r" / "checkpoint.npz")
    old_config = {k: v for k, v in ck.config.items() if k != "dtype"}
    opt = Adam(ck.params, lr=TINY["lr"])
    opt.load_state_dict(ck.optimizer_state)
    save_checkpoint(tmp_path / "r" / "checkpoint.npz", ck.params, optimizer=opt, rng=ck.rng(), config=old_config,
                    extra={"step": 2, "history": [[1, 0.7], [2, 0.69]]})
    again = train_copy(tmp_path / "r", steps=3, resume=True, log_every=1, dtype="float64", **QUIET)
    assert again["step"] == 3 and again["log"][:2] == [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.69}]
    assert out["step"] == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_sitting_after_the_step_with_a_checkpoint_and_exit_0(tmp_path, sig):
    logdir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "tinymeta", "copy-task", "--logdir", str(logdir), "--steps",
                             "100000", "--log-every", "1", "--checkpoint-every", "100000", *TINY_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert first.startswith("step 1 "), first + proc.stderr.read()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    step = load_checkpoint(logdir / "checkpoint.npz").extra["step"]
    assert step >= 1 and f"interrupted at step {step}; continue with: python -m tinymeta copy-task --resume " \
                          f"--logdir {logdir} --steps 100000" in out
    assert "length" not in out  # no evaluation after a stop
    more = cli("copy-task", "--resume", "--logdir", logdir, "--steps", step + 2, "--eval-lengths", "2")
    assert more.returncode == 0, more.stderr
    assert f"resuming {logdir} at step {step}" in more.stdout and f"checkpoint at step {step + 2}" in more.stdout


def test_copy_task_refuses_bad_checkpoint_every_and_dtype(tmp_path):
    bad = cli("copy-task", "--logdir", tmp_path / "r", "--steps", "2", "--checkpoint-every", "0")
    assert bad.returncode == 2 and bad.stderr.startswith("tinymeta copy-task: error: --checkpoint-every must be")
    bad = cli("copy-task", "--logdir", tmp_path / "r", "--steps", "2", "--dtype", "float16")
    assert bad.returncode == 2 and "--dtype must be one of float64, float32" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "r" / "checkpoint.npz").exists()


def test_copy_task_plot_writes_the_figures_and_the_evaluation(tmp_path):
    run = tmp_path / "run"
    train_copy(run, steps=3, log_every=1, **QUIET, **TINY)
    done = cli("copy-task-plot", run, "--out", tmp_path / "figs", "--lengths", "2", "5", "--batch", "3")
    assert done.returncode == 0, done.stderr
    for name in copy_task.FIGURES:
        assert (tmp_path / "figs" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["step"] == 3 and ev["trained_lengths"] == [1, 3] and ev["memory_size"] == 6
    assert [r["length"] for r in ev["results"]] == [2, 5] and [r["bits"] for r in ev["results"]] == [16, 40]
    assert all(0 <= r["bit_errors"] <= r["bits"] and r["loss"] > 0 for r in ev["results"])
    assert "length   5: loss" in done.stdout
    assert not [p for p in (tmp_path / "figs").iterdir() if p.name.startswith(".")]  # no temporary left


def test_copy_task_plot_refuses_a_missing_or_foreign_run_folder(tmp_path):
    from tinymeta.experiment.checkpoint import save_checkpoint
    from tinymeta.tensor import tensor
    missing = cli("copy-task-plot", tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    empty = cli("copy-task-plot", tmp_path / "empty")
    (tmp_path / "maml").mkdir()
    save_checkpoint(tmp_path / "maml" / "checkpoint.npz", {"w": tensor(np.zeros(2))},
                    config={"algorithm": "maml", "ways": 5})
    foreign = cli("copy-task-plot", tmp_path / "maml")
    for done, words in ((missing, "no such run folder"), (empty, "holds no checkpoint.npz"),
                        (foreign, "is not a copy-task run")):
        assert done.returncode == 2 and done.stderr.startswith("tinymeta copy-task-plot: error:"), done.stderr
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "maml" / "evaluation.json").exists()
