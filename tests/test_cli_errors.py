"""What a new user trips over: every user error is one ``error:`` line and a non-zero exit, found
before any slow work; NaN is never a result; runs can be listed; the listings read well."""
import json

import pytest

from conftest import run_cli

from tinymeta import backend
from tinymeta.experiment import PRESETS, Config, bench, cli, evaluation, read_log, train
from tinymeta.experiment.runs import read_status

TINY = ["--preset", "maml-sine-5shot", "--iterations", "20", "--log-interval", "10", "--val-interval", "10",
        "--val-tasks", "5", "--test-tasks", "10", "--eval-inner-steps", "2", "--no-progress"]


def one_error_line(err: str, command: str) -> str:
    first = err.splitlines()[0]
    assert first.startswith(f"tinymeta {command}: error:") and "Traceback" not in err, err
    return err


@pytest.fixture
def run(tmp_path, capsys):
    """A finished tiny sine run."""
    logdir = tmp_path / "run"
    assert cli.main(["train", *TINY, "--logdir", str(logdir)]) == 0
    capsys.readouterr()
    return logdir


def test_an_existing_run_is_refused_before_the_data_loads_and_the_message_names_the_flags(tmp_path, capsys):
    logdir = tmp_path / "omni"
    logdir.mkdir()
    (logdir / "checkpoint.npz").write_bytes(b"not really")  # the data folder does not exist: checked first
    code, _, err = run_cli(["train", "--preset", "maml-omniglot-5w1s", "--logdir", str(logdir),
                            "--data-dir", str(tmp_path / "none"), "--no-progress"], capsys)
    assert code == 2 and "--overwrite" in one_error_line(err, "train") and "--resume" in err


def test_resuming_with_another_configuration_is_an_error_line(run, capsys):
    code, _, err = run_cli(["train", "--resume", "--logdir", str(run), "--inner-lr", "0.5"], capsys)
    assert code == 2 and "another configuration" in one_error_line(err, "train") and "inner_lr" in err


def test_a_missing_data_folder_is_an_error_line(tmp_path, capsys):
    code, _, err = run_cli(["train", "--preset", "maml-omniglot-5w1s", "--logdir", str(tmp_path / "r"),
                            "--data-dir", str(tmp_path / "none"), "--no-progress"], capsys)
    assert code == 2 and "Omniglot data not found" in one_error_line(err, "train")


def test_cuda_without_cupy_is_an_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(backend, "_load_cupy", lambda: None)
    monkeypatch.setattr(backend, "_cupy_error", "CuPy is not installed")
    code, _, err = run_cli(["train", *TINY, "--logdir", str(tmp_path / "r"), "--device", "cuda"], capsys)
    assert code == 2 and "CuPy is not installed" in one_error_line(err, "train") and "--device cpu" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_evaluate_refuses_a_damaged_checkpoint_with_an_error_line(run, capsys, damage):
    path = run / "checkpoint.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-40] + bytes(40))
    code, _, err = run_cli(["evaluate", "--logdir", str(run)], capsys)
    assert code == 2 and "checkpoint" in one_error_line(err, "evaluate")


def test_evaluate_on_a_folder_without_a_run(tmp_path, capsys):
    code, _, err = run_cli(["evaluate", "--logdir", str(tmp_path)], capsys)
    assert code == 2 and "train first" in one_error_line(err, "evaluate").lower()


@pytest.mark.parametrize("flags,reason", [
    (["--tasks", "0"], "test_tasks (--test-tasks) must be an integer >= 1"),
    (["--tasks", "-5"], "must be an integer >= 1"),
    (["--split", "val", "--tasks", "0"], "val_tasks"),
    (["--shots", "0"], "shots (--shots) must be an integer >= 1"),
    (["--steps", "-1"], "eval_inner_steps (--eval-inner-steps) must be an integer >= 0"),
])
def test_evaluate_validates_its_settings(run, capsys, flags, reason):
    code, _, err = run_cli(["evaluate", "--logdir", str(run), *flags], capsys)
    assert code == 2 and reason in one_error_line(err, "evaluate")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_non_finite_final_evaluation_is_an_error(tmp_path, capsys):
    logdir = tmp_path / "r"
    code, out, err = run_cli(["train", *TINY, "--inner-lr", "1e6", "--logdir", str(logdir)], capsys)
    assert code == 1 and "final evaluation" in one_error_line(err, "train") and "--inner-lr" in err
    assert "nan" not in out and not (logdir / "curves.png").exists() and not (logdir / "test.json").exists()
    assert read_status(logdir)["status"] == "nan"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_nan_stop_says_what_is_on_disk(tmp_path, capsys):
    logdir = tmp_path / "r"
    code, _, err = run_cli(["train", *TINY, "--meta-lr", "1e8", "--inner-lr", "1", "--logdir", str(logdir)],
                           capsys)
    assert code == 1 and "no checkpoint was written" in one_error_line(err, "train")
    assert not (logdir / "checkpoint.npz").exists()


def test_every_numeric_and_enumerated_field_is_validated():
    base = PRESETS["maml-sine-10shot"]
    bad = dict(ways=0, shots=0, queries=-1, train_shots=0, meta_batch=0, inner_lr=-1.0, inner_steps=-1,
               eval_inner_steps=-1, meta_lr=float("inf"), iterations=-1, inner_batch=0, hidden=(0,), filters=0,
               val_interval=-1, val_tasks=0, test_tasks=0, log_interval=0, checkpoint_interval=-1, seed=-1,
               dtype="int32", algorithm="mammal", dataset="imagenet", meta_optimizer="rmsprop",
               lr_schedule="exponential", inner_optimizer="lbfgs", split_mode="random", first_order="yes", pool=1)
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name):
            base.replace(**{name: value}).validate()
    with pytest.raises(ValueError, match="meta_batch"):
        base.replace(meta_batch=True).validate()


def test_resuming_a_linear_schedule_with_other_iterations_is_refused(tmp_path):
    quiet = dict(progress=False, echo=lambda *a: None)
    cfg = PRESETS["reptile-sine-10shot"].replace(iterations=20, log_interval=10, val_interval=0, test_tasks=5)
    train(cfg, tmp_path / "r", stop_at=10, **quiet)
    with pytest.raises(ValueError, match="linear learning-rate schedule.*--iterations 20"):
        train(cfg.replace(iterations=40), tmp_path / "r", resume=True, **quiet)
    assert train(cfg, tmp_path / "r", resume=True, **quiet)["status"] == "finished"


def test_without_a_terminal_training_prints_a_line_per_log_row_and_evaluation_has_a_bar(tmp_path, monkeypatch):
    shown = []
    real = evaluation.tqdm
    monkeypatch.setattr(evaluation, "tqdm", lambda *a, **kw: shown.append(kw["desc"]) or real(*a, **kw))
    lines = []
    cfg = PRESETS["maml-sine-5shot"].replace(iterations=30, log_interval=10, val_interval=0, test_tasks=10)
    train(cfg, tmp_path / "r", progress=True, echo=lines.append)  # pytest's stderr is not a terminal
    assert [line.split()[1] for line in lines if line.startswith("iteration ")] == ["10/30", "20/30", "30/30"]
    assert shown == ["evaluating 10 test tasks"]


def test_plot_refuses_a_label_mismatch_and_an_empty_run_and_writes_next_to_the_run(run, tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    (run / "curves.png").unlink()
    code, _, err = run_cli(["plot", str(run), str(run), "--labels", "one"], capsys)
    assert code == 2 and "1 label(s) for 2 run(s)" in one_error_line(err, "plot")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "log.jsonl").write_text("")
    code, _, err = run_cli(["plot", str(empty)], capsys)
    assert code == 2 and "nothing to plot" in one_error_line(err, "plot")
    assert run_cli(["plot", str(run)], capsys)[0] == 0
    assert (run / "curves.png").exists() and not (tmp_path / "curves.png").exists()


def test_bench_says_the_omniglot_data_was_not_found_instead_of_nan(tmp_path, capsys):
    code, out, _ = run_cli(["bench", "--quick", "--only", "tasks", "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and "Omniglot data not found" in out and "nan" not in out
    bench.print_rows([{"name": "x", "value": float("nan"), "unit": "ms", "note": "not measured: why"}], "t")
    assert "nan" not in capsys.readouterr().out


def test_the_presets_listing_is_aligned_and_shows_what_tells_presets_apart(capsys):
    assert cli.main(["presets"]) == 0
    lines = capsys.readouterr().out.split("\n\n")[0].splitlines()  # then the 2D-navigation table
    head = lines[0].split()
    assert head[:8] == ["preset", "algorithm", "order", "dataset", "ways", "shots", "queries", "meta-batch"]
    column = lines[0].index("dataset")
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert len(by_name) == len(PRESETS)
    for name, line in by_name.items():
        assert line[column:].split()[0] == PRESETS[name].dataset  # every row's columns line up
    assert by_name["fomaml-omniglot-5w1s"].split()[2] == "first"


def test_an_unknown_flag_is_one_line_in_the_subcommands_words(capsys):
    code, _, err = run_cli(["train", "--bogus", "1"], capsys)
    assert code == 2 and err.splitlines() == ["tinymeta train: error: unrecognized arguments: --bogus 1",
                                              "see `tinymeta train --help`"]


def test_runs_lists_status_iterations_figures_and_time(run, tmp_path, capsys):
    quiet = dict(progress=False, echo=lambda *a: None)
    cfg = Config.from_dict(json.loads((run / "config.json").read_text()))
    train(cfg.replace(iterations=40), tmp_path / "stopped", stop_at=10, **quiet)
    code, out, _ = run_cli(["runs", str(tmp_path)], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["run", "what", "status"]
    finished = next(line for line in lines[1:] if line.startswith("run "))
    assert "finished" in finished and "20/20" in finished and "loss" in finished and "±" in finished
    assert "stopped at 10" in next(line for line in lines if line.startswith("stopped"))
    assert read_log(run)  # the listing reads the runs without changing them
    code, _, err = run_cli(["runs", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "no folder" in err


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out.startswith("tinymeta 0.")
