"""`tinymeta evaluate --split train --within-alphabet`: tasks of the training characters, and Omniglot
tasks within one alphabet or across alphabets, so that a gap to a paper splits into what unseen
alphabets cost and what the task's rule costs."""
import json

import numpy as np
import pytest

from conftest import OMNIGLOT_DIR

from tinymeta.experiment import PRESETS, cli
from tinymeta.experiment.evaluation import evaluate_run
from tinymeta.experiment.loop import train
from tinymeta.tasks.base import VAL_SEED
from tinymeta.tasks.omniglot import Omniglot, omniglot_splits

QUIET = {"progress": False, "echo": lambda *a, **k: None}


def _alphabets_per_task(data, batch):
    return [len(set(a)) for a in data.alphabets[batch.info["classes"]]]


def test_within_alphabet_draws_each_task_from_one_alphabet_of_its_split_and_false_undoes_it(omniglot_real):
    tasks = Omniglot(5, 1, 1, data=omniglot_real, split_mode="maml", rotations="none")
    pools = omniglot_splits(omniglot_real, "maml")
    across = tasks.sample(40, np.random.default_rng(0), "train")
    assert max(_alphabets_per_task(omniglot_real, across)) > 1               # MAML's split: any characters
    tasks.within_alphabet("train")
    within = tasks.sample(40, np.random.default_rng(0), "train")
    assert _alphabets_per_task(omniglot_real, within) == [1] * 40
    assert np.isin(within.info["classes"], pools["train"]).all()
    assert all(len(set(c)) == 5 for c in within.info["classes"])               # 5 distinct characters
    assert len(set(omniglot_real.alphabets[within.info["classes"][:, 0]])) > 5  # many alphabets, one per task
    assert max(_alphabets_per_task(omniglot_real, tasks.sample(40, np.random.default_rng(0), "test"))) > 1
    tasks.within_alphabet("train", False)
    again = tasks.sample(40, np.random.default_rng(0), "train")
    np.testing.assert_array_equal(again.info["classes"], across.info["classes"])


def test_kochs_test_tasks_can_be_drawn_across_its_test_alphabets(omniglot_real):
    tasks = Omniglot(20, 1, 1, data=omniglot_real, split_mode="koch", rotations="none")
    test = omniglot_splits(omniglot_real, "koch")["test"]
    assert _alphabets_per_task(omniglot_real, tasks.sample(20, np.random.default_rng(0), "test")) == [1] * 20
    tasks.within_alphabet("test", False)
    across = tasks.sample(20, np.random.default_rng(0), "test")
    assert min(_alphabets_per_task(omniglot_real, across)) > 1 and np.isin(across.info["classes"], test).all()
    assert _alphabets_per_task(omniglot_real, tasks.sample(5, np.random.default_rng(0), "val")) == [1] * 5


def test_within_alphabet_refuses_what_it_cannot_draw(omniglot_real):
    rotated = Omniglot(5, 1, 1, data=omniglot_real, split_mode="reptile", rotations="train-classes")
    with pytest.raises(ValueError, match="every rotation of a character as its own class"):
        rotated.within_alphabet("train")
    rotated.within_alphabet("test")                                          # its test split has no rotations as classes
    big = Omniglot(60, 1, 1, data=omniglot_real, split_mode="maml", rotations="none")
    with pytest.raises(ValueError, match=r"n_way=60, but train tasks are drawn within one alphabet and its largest"):
        big.within_alphabet("train")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        big.within_alphabet("dev")


@pytest.fixture(scope="module")
def siamese_run(tmp_path_factory, omniglot_cache):
    """A tiny Siamese run on Koch's split (one alphabet per test task), three iterations."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYMETA_CACHE", str(omniglot_cache))
        logdir = tmp_path_factory.mktemp("siamese") / "run"
        cfg = PRESETS["siamese-omniglot-20w1s"].replace(filters=4, meta_batch=2, iterations=3, val_interval=0,
                                                        test_tasks=4)
        train(cfg, logdir, data_dir=OMNIGLOT_DIR, evaluate_at_end=False, **QUIET)
        yield logdir


def test_evaluate_on_training_tasks_within_an_alphabet_is_the_sampler_s_fixed_tasks(siamese_run, omniglot_cache,
                                                                                  monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    from tinymeta.experiment.factories import TaskSource, build_algorithm, build_model
    from tinymeta.experiment.runs import load_run_checkpoint
    ev = evaluate_run(siamese_run, split="train", num_tasks=3, within_alphabet=True, data_dir=OMNIGLOT_DIR, **QUIET)
    assert (ev["split"], ev["tasks"], ev["within_alphabet"]) == ("train", 3, True)
    ckpt, cfg = load_run_checkpoint(siamese_run / "checkpoint.npz")     # the same, by hand
    source = TaskSource(cfg, "cpu", OMNIGLOT_DIR, verbose=False)
    family = source.evaluation
    batch = family.sample(3, np.random.default_rng(VAL_SEED), "train")
    assert max(_alphabets_per_task(family.data, batch)) > 1                   # as trained: across alphabets
    family.within_alphabet("train")
    algo = build_algorithm(cfg, build_model(cfg))
    accuracy = []
    for batch in source.fixed("train", 3):                                    # the validation seed, in chunks
        assert _alphabets_per_task(family.data, batch) == [1] * batch.num_tasks
        accuracy.extend(algo.evaluate(ckpt.params, batch, 0)["accuracy"][-1])
    assert len(accuracy) == 3
    assert ev["accuracy"][-1]["mean"] == pytest.approx(float(np.mean(accuracy)), abs=1e-6)  # float32 sums


def test_the_default_is_the_run_s_own_rule_and_the_file_says_which_rule_ran(siamese_run, omniglot_cache, tmp_path,
                                                                           monkeypatch, capsys):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    outs = {}
    for name, flags in (("default", []), ("within", ["--within-alphabet", "True"]),
                        ("across", ["--within-alphabet", "False"])):
        out = tmp_path / f"eval-{name}.json"
        assert cli.main(["evaluate", "--logdir", str(siamese_run), "--data-dir", str(OMNIGLOT_DIR), *flags,
                         "--out", str(out)]) == 0
        outs[name] = json.loads(out.read_text())
    capsys.readouterr()
    assert outs["default"]["within_alphabet"] is True and outs["across"]["within_alphabet"] is False
    assert outs["default"]["accuracy"] == outs["within"]["accuracy"]         # Koch's split: within, already
    assert all(o["split"] == "test" and o["tasks"] == 4 for o in outs.values())


def test_within_alphabet_is_refused_for_a_run_that_is_not_omniglot(tmp_path, capsys):
    logdir = tmp_path / "sine"
    assert cli.main(["train", "--preset", "maml-sine-5shot", "--iterations", "2", "--val-interval", "0",
                     "--test-tasks", "2", "--logdir", str(logdir), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "--logdir", str(logdir), "--within-alphabet", "True"]) == 2
    assert "tasks within one alphabet are Omniglot's; this run's tasks are 'sine'" in capsys.readouterr().err
    assert cli.main(["evaluate", "--logdir", str(logdir), "--split", "train", "--tasks", "3"]) == 0
    assert "train tasks: 3" in capsys.readouterr().out
