"""The training loop, CLI, resume, interruption and bad input."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinymeta.experiment import PRESETS, Config, cli, load_checkpoint, read_log, train

from conftest import OMNIGLOT_DIR, REPO

QUIET = dict(progress=False, echo=lambda *a: None)


def sine_cfg(**kw):
    base = PRESETS["maml-sine-10shot"].replace(iterations=40, log_interval=10, val_interval=20, val_tasks=20,
                                               test_tasks=50, checkpoint_interval=20, eval_inner_steps=3)
    return base.replace(**kw)


def test_short_maml_sine_run_learns_to_adapt(tmp_path):
    cfg = sine_cfg(iterations=1500, log_interval=100, val_interval=500, checkpoint_interval=0, test_tasks=200)
    result = train(cfg, tmp_path / "run", **QUIET)
    mse = [s["mean"] for s in result["test"]["loss"]]
    assert mse[1] < 0.6 * mse[0] and mse[3] < 0.5 * mse[0]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 10_000
    test = json.loads((tmp_path / "run" / "test.json").read_text())
    assert test["tasks"] == 200 and len(test["loss"]) == 4 and test["loss"][0]["ci95"] > 0


def test_short_omniglot_run_beats_chance(tmp_path, omniglot_cache, monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    cfg = PRESETS["maml-omniglot-5w1s"].replace(iterations=200, meta_batch=4, queries=3, filters=16,
                                                 val_interval=0, checkpoint_interval=0, log_interval=50,
                                                 test_tasks=100, eval_inner_steps=2)
    result = train(cfg, tmp_path / "omni", data_dir=OMNIGLOT_DIR, **QUIET)
    acc = [s["mean"] for s in result["test"]["accuracy"]]
    assert abs(acc[0] - 0.2) < 0.05      # an untrained head: chance on 5 ways
    assert acc[1] > 0.3 and acc[2] > 0.4  # held-out characters after one and two inner steps (seen: 0.36, 0.47)


@pytest.mark.parametrize("algorithm,stop", [("maml", 20), ("maml", 15), ("meta-sgd", 25), ("reptile", 15),
                                            ("reptile-persistent", 15)])
def test_resume_gives_the_numbers_of_an_uninterrupted_run(tmp_path, algorithm, stop):
    """The same parameters, test figures and log rows, also when the stop falls inside a log row (15, 25)."""
    preset = {"maml": "maml-sine-10shot", "meta-sgd": "meta-sgd-sine-10shot", "reptile": "reptile-sine-10shot",
              "reptile-persistent": "reptile-sine-10shot"}
    cfg = PRESETS[preset[algorithm]].replace(iterations=40, log_interval=10, val_interval=20, val_tasks=20,
                                             test_tasks=50, checkpoint_interval=15, eval_inner_steps=2,
                                             inner_steps=1 if algorithm == "maml" or algorithm == "meta-sgd" else 4)
    if algorithm == "reptile-persistent":  # Adam's state carried across tasks and meta-iterations, checkpointed
        cfg = cfg.replace(inner_optimizer="adam", inner_lr=0.01, inner_state="persistent", eval_inner_batch=5)
    straight = train(cfg, tmp_path / "a", **QUIET)
    first = train(cfg, tmp_path / "b", stop_at=stop, **QUIET)
    assert first["status"] == "stopped" and first["iteration"] == stop
    second = train(cfg, tmp_path / "b", resume=True, **QUIET)
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.npz"), load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    for k in a.params:
        np.testing.assert_array_equal(a.params[k].numpy(), b.params[k].numpy())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    rows = strip(read_log(tmp_path / "a"))
    assert [r["iteration"] for r in rows if r["split"] == "train"] == [10, 20, 30, 40]
    assert rows == strip(read_log(tmp_path / "b"))
    assert straight["test"]["loss"] == second["test"]["loss"]
    if algorithm == "reptile-persistent":
        assert a.algorithm_state["inner/step"] == 40 * cfg.meta_batch * 4
        for k, v in a.algorithm_state.items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(b.algorithm_state[k]))
    else:
        assert a.algorithm_state is None


def test_resume_with_another_config_lists_the_differences(tmp_path):
    train(sine_cfg(iterations=20), tmp_path / "r", stop_at=10, **QUIET)
    with pytest.raises(ValueError, match=r"(?s)another configuration.*inner_lr.*meta_batch"):
        train(sine_cfg(iterations=20, inner_lr=0.02, meta_batch=5), tmp_path / "r", resume=True, **QUIET)
    train(sine_cfg(iterations=30), tmp_path / "r", resume=True, evaluate_at_end=False, **QUIET)  # more iterations: fine


def test_a_fresh_run_refuses_to_overwrite(tmp_path):
    train(sine_cfg(iterations=10), tmp_path / "r", evaluate_at_end=False, **QUIET)
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train(sine_cfg(iterations=10), tmp_path / "r", **QUIET)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_meta_loss_stops_with_the_iteration_and_keeps_the_last_checkpoint(tmp_path):
    cfg = sine_cfg(iterations=200, inner_lr=1.0, meta_lr=1e3, checkpoint_interval=1)
    with pytest.raises(FloatingPointError, match=r"at iteration (\d+).*last good checkpoint \(iteration \d+\) is kept"):
        train(cfg, tmp_path / "r", **QUIET)
    ckpt = load_checkpoint(tmp_path / "r" / "checkpoint.npz")
    assert all(np.all(np.isfinite(p.numpy())) for p in ckpt.params.values())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path, sig):
    logdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "tinymeta", "train", "--preset", "maml-sine-10shot", "--iterations", "200000",
           "--log-interval", "10", "--val-interval", "0", "--logdir", str(logdir), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = logdir / "log.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 3):
        time.sleep(0.1)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted at iteration" in out
    ckpt = load_checkpoint(logdir / "checkpoint.npz")
    assert ckpt.extra["iteration"] >= 30
    leftovers = [p for p in logdir.iterdir() if p.name.startswith(".")]
    assert not leftovers  # no half-written temp file


def test_maml_flags_are_accepted():
    parser = cli.build_parser()
    args = parser.parse_args("train --datasource=omniglot --metatrain_iterations=40000 --meta_batch_size=32 "
                             "--update_batch_size=1 --update_lr=0.4 --num_updates=1 "
                             "--logdir=logs/omniglot5way/".split())
    cfg = cli.resolve_config(args, parser)
    assert (cfg.dataset, cfg.iterations, cfg.meta_batch, cfg.shots, cfg.inner_lr, cfg.inner_steps, cfg.ways) == \
        ("omniglot", 40000, 32, 1, 0.4, 1, 5)
    assert cfg.queries == 1 and cfg.algorithm == "maml" and not cfg.first_order  # K queries, as main.py:249
    args = parser.parse_args("train --preset maml-omniglot-5w1s --update_batch_size=3 --logdir=x".split())
    assert cli.resolve_config(args, parser).queries == 3
    args = parser.parse_args("train --datasource=omniglot --logdir=x --train=False --test_set=True".split())
    assert args.train is False and args.test_set is True
    args = parser.parse_args("train --datasource=sinusoid --stop_grad=True".split())
    assert cli.resolve_config(args, parser).first_order is True


@pytest.mark.parametrize("flags,reason", [
    ("--preset maml-sine-10shot --inner-batch 5", "Reptile only"),
    ("--preset reptile-omniglot-5w1s --first-order", "first order already"),
    ("--preset maml-sine-10shot --ways 5", "image datasets"),
    ("--algorithm nil --dataset sine", "classification"),
    ("--preset maml-omniglot-5w1s --shots 20", "no query"),
    ("--dataset imagenet", "unknown dataset"),
    ("--resume", "--logdir"),
    ("--preset maml-sine-10shoot", "did you mean maml-sine-10shot"),
    ("--preset maml-sine-10shot --val-tasks 0", "val_tasks (--val-tasks) must be an integer >= 1"),
    ("--preset maml-sine-10shot --test-tasks -3", "test_tasks (--test-tasks) must be an integer >= 1"),
    ("--preset maml-sine-10shot --dtype int32", "must be float32 or float64"),
    ("--preset maml-sine-10shot --dtype float16", "float16 is unsupported"),
    ("--preset maml-sine-10shot --meta-lr nan", "meta_lr (--meta-lr) must be a finite number"),
    ("--preset maml-omniglot-5w1s --ways 200 --data-dir /nonexistent", "validation split has"),
])
def test_invalid_flag_combinations_are_argparse_errors(flags, reason, capsys):
    """An error line naming the setting (before any data loads: --data-dir does not exist); past argparse's
    own checks (an unknown flag or dataset shows the usage), no usage block."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["train"] + flags.split())
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert reason in err and "tinymeta train: error:" in err
    assert "usage:" not in err or "unknown dataset" in err


def test_cli_train_evaluate_plot(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--preset", "maml-sine-5shot", "--iterations", "30", "--log-interval", "10",
                     "--val-interval", "10", "--val-tasks", "10", "--test-tasks", "20", "--eval-inner-steps", "2",
                     "--logdir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 (pre-update)" in out and "learning curves" in out
    assert cli.main(["evaluate", "--logdir", str(run), "--tasks", "30", "--steps", "1", "--shots", "10",
                     "--out", str(tmp_path / "ev.json")]) == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["tasks"] == 30 and ev["shots"] == 10 and len(ev["loss"]) == 2
    other = tmp_path / "other"
    cli.main(["train", "--preset", "meta-sgd-sine-5shot", "--iterations", "20", "--log-interval", "10",
              "--val-interval", "10", "--val-tasks", "10", "--test-tasks", "10", "--logdir", str(other), "--no-progress"])
    assert cli.main(["plot", str(run), str(other), "--out", str(tmp_path / "both.png")]) == 0
    assert (tmp_path / "both.png").stat().st_size > 10_000


def test_config_round_trip_and_unknown_fields():
    cfg = PRESETS["reptile-omniglot-20w1s"]
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config fields"):
        Config.from_dict({**cfg.to_dict(), "learning_rate": 1})


def test_running_out_of_memory_names_the_settings_and_the_remedies(tmp_path, monkeypatch):
    from tinymeta.algorithms import MAML

    def exhausted(*args, **kwargs):
        raise MemoryError("simulated")
    monkeypatch.setattr(MAML, "meta_gradient", exhausted)
    with pytest.raises(MemoryError, match=r"meta-batch 25, 1 inner step\(s\), second order.*--first-order"):
        train(sine_cfg(), tmp_path / "r", **QUIET)
