"""`tinymeta evaluate --ways`: a learner without a head (prototypical, matching, relation, Siamese
networks) answers tasks of any number of classes, so a run trained on 5-way episodes can be tested on
20-way ones; a learner with a head of one output per class is refused, and an evaluation of other tasks
never takes the place of a run's own result on RESULTS.md."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import OMNIGLOT_DIR, REPO

from tinymeta.experiment import PRESETS
from tinymeta.experiment.evaluation import evaluate_run, evaluate_tasks
from tinymeta.experiment.factories import TaskSource, build_algorithm, build_model
from tinymeta.experiment.loop import train
from tinymeta.experiment.runs import UnreadableFileError, latest_test_evaluation, load_run_checkpoint

QUIET = {"progress": False, "echo": lambda *a, **k: None}


@pytest.fixture(scope="module")
def matching_run(tmp_path_factory, omniglot_cache):
    """A tiny matching-network run trained on 5-way 1-shot episodes, two iterations."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYMETA_CACHE", str(omniglot_cache))
        logdir = tmp_path_factory.mktemp("matching") / "run"
        cfg = PRESETS["matching-omniglot-5w1s"].replace(filters=4, train_queries=2, iterations=2, val_interval=0,
                                                        test_tasks=3)
        train(cfg, logdir, data_dir=OMNIGLOT_DIR, evaluate_at_end=False, **QUIET)
        yield logdir


def test_a_run_without_a_head_is_evaluated_on_tasks_of_another_number_of_classes(matching_run, omniglot_cache,
                                                                                 monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    ev = evaluate_run(matching_run, ways=7, shots=2, num_tasks=3, data_dir=OMNIGLOT_DIR, **QUIET)
    assert (ev["ways"], ev["shots"], ev["tasks"]) == (7, 2, 3)
    ckpt, cfg = load_run_checkpoint(matching_run / "checkpoint.npz")
    seven = cfg.replace(ways=7, shots=2, test_tasks=3)
    source = TaskSource(seven, "cpu", OMNIGLOT_DIR, verbose=False)
    batch = next(iter(source.fixed("test", 3)))
    assert batch.x_support.shape[1] == 14 and sorted(set(batch.y_support.numpy().ravel())) == list(range(7))
    direct = evaluate_tasks(build_algorithm(seven, build_model(seven)), ckpt.params, source, "test", 3, 0,
                            progress=False)
    assert ev["accuracy"] == direct["accuracy"] and ev["loss"] == direct["loss"]
    five = evaluate_run(matching_run, num_tasks=3, data_dir=OMNIGLOT_DIR, **QUIET)
    assert five["ways"] == 5 and five["loss"] != ev["loss"]
    # a 7-way task's loss starts near log 7, a 5-way one's near log 5: a tiny net is close to chance
    assert abs(ev["loss"][0]["mean"] - np.log(7)) < abs(ev["loss"][0]["mean"] - np.log(5))


def test_a_run_with_a_head_is_refused_another_number_of_classes(tmp_path, omniglot_cache, monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    cfg = PRESETS["maml-omniglot-5w1s"].replace(filters=2, meta_batch=1, iterations=1, val_interval=0, test_tasks=2)
    train(cfg, tmp_path / "maml", data_dir=OMNIGLOT_DIR, evaluate_at_end=False, **QUIET)
    with pytest.raises(ValueError, match=r"ways=20: .* parameter 'head' of shape \(5, 2\), a 20-way one \(20, 2\): "
                                         r"its shapes depend on the number of classes"):
        evaluate_run(tmp_path / "maml", ways=20, num_tasks=2, data_dir=OMNIGLOT_DIR, **QUIET)


def test_a_regression_run_has_no_ways_to_change(tmp_path):
    cfg = PRESETS["maml-sine-5shot"].replace(iterations=1, val_interval=0, test_tasks=2, meta_batch=2)
    train(cfg, tmp_path / "sine", evaluate_at_end=False, **QUIET)
    with pytest.raises(ValueError, match="ways=3: sine tasks are regression, with no classes to count"):
        evaluate_run(tmp_path / "sine", ways=3, num_tasks=2, **QUIET)


def test_the_cli_will_not_write_other_tasks_under_the_name_of_the_run_s_own_result(matching_run, omniglot_cache):
    env = dict(os.environ, TINYMETA_CACHE=str(omniglot_cache), OPENBLAS_NUM_THREADS="1")
    for name in ("eval-test.json", "test.json", "eval-test-nontransductive.json"):
        out = subprocess.run([sys.executable, "-m", "tinymeta", "evaluate", "--logdir", str(matching_run),
                              "--ways", "20", "--tasks", "2", "--data-dir", str(OMNIGLOT_DIR),
                              "--out", str(matching_run / name)],
                             capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert f"{name}: that name stands for the run's own result on RESULTS.md, and these tasks are not the " \
               "run's (5-way 1-shot)" in out.stderr
        assert not (matching_run / name).exists()
    out = subprocess.run([sys.executable, "-m", "tinymeta", "evaluate", "--logdir", str(matching_run),
                          "--ways", "6", "--tasks", "2", "--data-dir", str(OMNIGLOT_DIR),
                          "--out", str(matching_run / "eval-test-6way.json")],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    written = json.loads((matching_run / "eval-test-6way.json").read_text())
    assert (written["ways"], written["tasks"]) == (6, 2)


def test_an_evaluation_of_other_tasks_under_the_run_s_own_name_stops_the_report(matching_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    (run / "config.json").write_text((matching_run / "config.json").read_text())
    ev = {"split": "test", "tasks": 2, "iteration": 2, "loss": [{"mean": 2.9, "ci95": 0.1}],
          "accuracy": [{"mean": 0.1, "ci95": 0.05}], "ways": 20, "shots": 1}
    (run / "eval-test.json").write_text(json.dumps(ev))
    with pytest.raises(UnreadableFileError, match=r"eval-test.json.*evaluates tasks of \{'ways': 20\}, the run's are "
                                                  r"ways=5, shots=1"):
        latest_test_evaluation(run)
    ev["ways"] = 5
    (run / "eval-test.json").write_text(json.dumps(ev))
    assert latest_test_evaluation(run)[1] == "eval-test.json"
