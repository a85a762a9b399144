"""The task-family protocol and its registry: what the loop, the config checks and the CLI rely on."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from tinymeta.experiment import PRESETS, TaskSource, build_model
from tinymeta.experiment.cli import build_parser
from tinymeta.tasks import TASK_FAMILIES, TEST_SEED, VAL_SEED, Omniglot, Sinusoid, TaskFamily

from conftest import OMNIGLOT_DIR

PACKAGE = Path(__file__).resolve().parents[1] / "tinymeta"


def test_the_registry_names_each_family_by_its_own_name():
    assert set(TASK_FAMILIES) == {"sine", "omniglot", "miniimagenet", "omniglot-episodes"}
    for name, family in TASK_FAMILIES.items():
        assert issubclass(family, TaskFamily) and family.name == name
        assert family.kind in ("regression", "classification")
        for method in ("from_config", "build_model", "sample"):
            assert inspect.getattr_static(family, method) is not TaskFamily.__dict__[method], (name, method)


def test_cli_dataset_choices_come_from_the_registry():
    parser = build_parser()
    for name, family in TASK_FAMILIES.items():
        for spelling in (name, *family.aliases):
            args = parser.parse_args(["train", "--dataset", spelling])
            assert args.dataset == name


@pytest.mark.parametrize("module", ["loop.py", "factories.py", "config.py", "cli.py", "evaluation.py", "runs.py"])
def test_the_loop_config_and_cli_name_no_dataset(module):
    lines = (PACKAGE / "experiment" / module).read_text().splitlines()
    text = "\n".join(line for line in lines if "dataset: str =" not in line)  # Config's default value is one
    for name in TASK_FAMILIES:
        assert not re.search(rf"[\"']{name}[\"']", text), f"{module} names the dataset {name!r}"


def test_the_family_checks_shots_and_queries_against_its_examples_per_class():
    cfg = PRESETS["maml-omniglot-5w1s"]
    with pytest.raises(ValueError, match="shots \\+ queries <= 20"):
        cfg.replace(shots=6, queries=15).validate()
    with pytest.raises(ValueError, match="no query example"):
        cfg.replace(train_shots=20).validate()
    with pytest.raises(ValueError, match="ways <= 100"):
        cfg.replace(ways=101).validate()
    PRESETS["maml-sine-10shot"].replace(shots=500, queries=500).validate()  # sine: any number of points


def test_training_sizes_trim_queries_so_shots_and_queries_fit():
    reptile = PRESETS["reptile-omniglot-5w1s"]  # trains on 10 shots, evaluates on 1 with 1 query per class
    assert Omniglot.sizes(reptile) == (1, 1)
    assert Omniglot.sizes(reptile, training=True) == (10, 1)
    assert Omniglot.sizes(reptile.replace(queries=15), training=True) == (10, 10)
    assert Sinusoid.sizes(PRESETS["reptile-sine-10shot"], training=True) == (50, 10)


def test_sine_task_source_trains_on_train_shots_and_evaluates_on_the_fixed_test_set():
    cfg = PRESETS["reptile-sine-10shot"]
    tasks = TaskSource(cfg, "cpu")
    assert tasks.train(np.random.default_rng(0)).x_support.shape == (cfg.meta_batch, 50, 1)
    chunks = list(tasks.fixed("test", 250, 100))
    assert [b.num_tasks for b in chunks] == [100, 100, 50]
    reference = Sinusoid(cfg.shots, cfg.queries).eval_set(250, seed=TEST_SEED)
    np.testing.assert_array_equal(chunks[2].x_support.numpy(), reference.x_support.numpy()[200:])
    val = next(tasks.fixed("val", 5, 5))
    assert not np.array_equal(val.x_query.numpy(), reference.x_query.numpy()[:5])  # VAL_SEED differs
    assert VAL_SEED != TEST_SEED


def test_the_family_builds_the_model_that_fits_its_inputs():
    assert build_model(PRESETS["maml-sine-10shot"]).sizes == (1, 40, 40, 1)
    omniglot = build_model(PRESETS["maml-omniglot-20w1s"])
    assert (omniglot.n_way, omniglot.in_channels, omniglot.image_size) == (20, 1, 28)
    mini = build_model(PRESETS["maml-miniimagenet-5w1s"])
    assert (mini.n_way, mini.in_channels, mini.image_size, mini.filters, mini.pool) == (5, 3, 84, 32, True)


def test_omniglot_task_source_shares_data_between_training_and_evaluation(omniglot_cache, monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    cfg = PRESETS["reptile-omniglot-5w1s"].replace(meta_batch=3)
    tasks = TaskSource(cfg, "cpu", OMNIGLOT_DIR, verbose=False)
    assert tasks.training.data is tasks.evaluation.data
    batch = tasks.train(np.random.default_rng(0))
    assert batch.x_support.shape == (3, 50, 1, 28, 28) and batch.x_query.shape == (3, 5, 1, 28, 28)
    test = next(tasks.fixed("test", 4, 2))  # Reptile's evaluation: one held-out query per class
    assert test.x_support.shape == (2, 5, 1, 28, 28) and test.x_query.shape == (2, 5, 1, 28, 28)
    again = next(tasks.fixed("test", 4, 2))
    np.testing.assert_array_equal(test.info["classes"], again.info["classes"])  # fixed: TEST_SEED
