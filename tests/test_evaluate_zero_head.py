"""`tinymeta evaluate --zero-head`: adapt from a head of zeros (Kao et al.'s zeroing trick), checked
against the same evaluation of a copy of the run whose checkpoint has the head zeroed on disk."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinymeta.experiment import PRESETS, cli
from tinymeta.experiment.checkpoint import load_checkpoint, save_checkpoint
from tinymeta.experiment.evaluation import with_zero_head
from tinymeta.experiment.factories import build_algorithm, build_model
from tinymeta.tensor import tensor

TINY = ["--preset", "maml-sine-5shot", "--iterations", "20", "--log-interval", "10", "--val-interval", "10",
        "--val-tasks", "5", "--test-tasks", "10", "--eval-inner-steps", "2", "--no-progress"]


def _evaluate(logdir, out, *flags):
    assert cli.main(["evaluate", "--logdir", str(logdir), "--out", str(out), *flags]) == 0
    return json.loads(out.read_text())


def test_zero_head_equals_evaluating_a_checkpoint_whose_head_was_zeroed_on_disk(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", *TINY, "--logdir", str(run)]) == 0
    copy = tmp_path / "zeroed"
    shutil.copytree(run, copy)
    ckpt = load_checkpoint(run / "checkpoint.npz", device="cpu")
    params = dict(ckpt.params)
    for name in ("w3", "b3"):  # the MLP 1-40-40-1's last layer, written out by hand
        zeros = tensor(np.zeros(params[name].shape), dtype=params[name].dtype)
        params[name] = zeros.requires_grad_(True)
    save_checkpoint(copy / "checkpoint.npz", params, optimizer=ckpt.optimizer_state, config=ckpt.config,
                    extra=ckpt.extra, algorithm_state=ckpt.algorithm_state)

    trick = _evaluate(run, tmp_path / "trick.json", "--zero-head")
    by_hand = _evaluate(copy, tmp_path / "by-hand.json")
    plain = _evaluate(run, tmp_path / "plain.json")
    capsys.readouterr()
    assert trick["zero_head"] is True and "zero_head" not in plain
    for key in ("loss", "accuracy"):
        if key in trick:
            assert [s["mean"] for s in trick[key]] == [s["mean"] for s in by_hand[key]]
    assert [s["mean"] for s in trick["loss"]] != [s["mean"] for s in plain["loss"]]  # it did change something


def test_zero_head_leaves_the_body_and_the_run_s_parameters_alone():
    cfg = PRESETS["anil-omniglot-20w1s"].replace(filters=4)
    algo = build_algorithm(cfg, build_model(cfg))
    params = algo.model.init_params(np.random.default_rng(0))
    before = {k: v.numpy().copy() for k, v in params.items()}
    zeroed = with_zero_head(algo, params)
    assert set(zeroed) == set(params) and before["head"].any()
    for name in algo.model.head_keys():
        assert not zeroed[name].numpy().any() and zeroed[name].requires_grad == params[name].requires_grad
        np.testing.assert_array_equal(params[name].numpy(), before[name])   # the given dict is not touched
    for name in set(params) - set(algo.model.head_keys()):
        assert zeroed[name] is params[name]


@pytest.mark.parametrize("preset, algorithm", [("protonet-omniglot-5w1s", None), ("anil-omniglot-20w1s", "nil"),
                                               ("mann-omniglot-5way", None), ("caml-sine-10shot", None)])
def test_zero_head_is_refused_where_no_inner_loop_adapts_a_head(preset, algorithm):
    cfg = PRESETS[preset].replace(**({"algorithm": algorithm} if algorithm else {}))
    algo = build_algorithm(cfg, build_model(cfg))
    with pytest.raises(ValueError, match=f"zero_head: {algo.name} has no head that an inner loop adapts"):
        with_zero_head(algo, algo.model.init_params(np.random.default_rng(0)))


def test_zero_head_is_refused_for_a_2d_navigation_run_before_anything_runs(capsys):
    committed = Path(__file__).resolve().parents[1] / "results" / "runs" / "rl-nav2d-meta-sgd"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--logdir", str(committed), "--zero-head"])
    assert exit_.value.code == 2
    assert "--zero-head does not apply to a 2D-navigation run" in capsys.readouterr().err
