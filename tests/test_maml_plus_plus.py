"""MAML++ (Antoniou et al. 2019): each option against a hand computation, MAML, FOMAML or finite differences."""
import math
import subprocess
import sys

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import (FOMAML, MAML, MAMLPlusPlus, Objective, inner_sgd, maml_meta_loss,
                                 maml_plus_plus_meta_loss, multi_step_loss_weights, per_task)
from tinymeta.experiment import PRESETS, load_checkpoint, read_log, train
from tinymeta.experiment.loop import scheduled_lr
from tinymeta.nn import MLP, ConvNet
from tinymeta.tasks.base import MetaBatch
from tinymeta.testing import gradcheck, gradgradcheck

from conftest import OMNIGLOT_DIR, REPO

QUIET = dict(progress=False, echo=lambda *a: None)
REG, CLS = Objective("regression"), Objective("classification")


def sine_problem(seed=0, T=3, d=2, n=4):
    """A tiny MLP on random regression tasks, float64."""
    rng = np.random.default_rng(seed)
    model = MLP((d, 5, 1), init_std=0.5)
    xs, xq = rng.normal(size=(T, n, d)), rng.normal(size=(T, n + 1, d))
    w = rng.normal(size=(T, d, 1))
    batch = MetaBatch(*(tm.tensor(a) for a in (xs, np.sin(xs @ w), xq, np.sin(xq @ w))))
    return model, model.init_params(seed, dtype="float64"), batch


def conv_problem(seed=0, T=3, ways=3, shots=2, queries=2):
    """A 2-block conv net with batch norm on random 8x8 images, float64."""
    rng = np.random.default_rng(seed)
    model = ConvNet(n_way=ways, filters=3, blocks=2, pool=True, image_size=8)
    xs, xq = rng.normal(size=(T, ways * shots, 1, 8, 8)), rng.normal(size=(T, ways * queries, 1, 8, 8))
    ys = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(ways), queries)) for _ in range(T)])
    return model, model.init_params(seed, dtype="float64"), MetaBatch(*(tm.tensor(a) for a in (xs, ys, xq, yq)))


def numbers(grads):
    return {k: v.numpy() for k, v in grads.items()}


# ---- multi-step loss (MSL) ------------------------------------------------------------------------------------
def test_multi_step_loss_weights_are_the_originals_by_hand():
    """get_per_step_loss_importance_vector with 5 steps, 10 epochs of 500 iterations (MAML++'s Omniglot json)."""
    w = lambda it: multi_step_loss_weights(5, it, 5000, 500)  # noqa: E731
    np.testing.assert_allclose(w(0), [0.2] * 5)
    np.testing.assert_allclose(w(499), [0.2] * 5)                       # constant within an epoch
    np.testing.assert_allclose(w(500), [0.18] * 4 + [0.28])             # 0.2 - 1/50 and 0.2 + 4/50
    np.testing.assert_allclose(w(2700), [0.1] * 4 + [0.6])              # epoch 5
    np.testing.assert_allclose(w(4999), [0.02] * 4 + [0.92])            # epoch 9, the last with MSL
    assert w(5000) is None and w(49999) is None                         # then the last step's loss alone
    # the floor 0.03 / S and the cap 1 - (S - 1) 0.03 / S: 100 one-iteration epochs, at epoch 98
    np.testing.assert_allclose(multi_step_loss_weights(5, 98, 100, 1), [0.006] * 4 + [0.976])
    assert multi_step_loss_weights(1, 0, 10) == [1.0]
    for it in (0, 700, 3100, 4999):
        assert math.isclose(sum(w(it)), 1.0)


def test_the_multi_step_loss_is_the_weighted_sum_of_every_steps_query_loss():
    model, params, batch = sine_problem(1)
    weights = [0.1, 0.3, 0.6]
    loss, _ = maml_plus_plus_meta_loss(model, REG, params, batch, 0.05, 3, step_weights=weights)
    by_hand = sum(v * maml_meta_loss(model, REG, params, batch, 0.05, s + 1)[0].item() for s, v in enumerate(weights))
    assert loss.item() == pytest.approx(by_hand, rel=1e-13)
    algo = MAMLPlusPlus(model, REG, 0.05, 3, multi_step_loss_iterations=20, epoch_iterations=10)
    loss, _ = algo.meta_loss(params, batch, 10)  # epoch 1 of 2: weights 1/3 - 1/6 = 1/6, 1/6 and 1/3 + 2/6 = 2/3
    by_hand = sum(v * maml_meta_loss(model, REG, params, batch, 0.05, s + 1)[0].item()
                  for s, v in enumerate([1 / 6, 1 / 6, 2 / 3]))
    assert loss.item() == pytest.approx(by_hand, rel=1e-13)
    past = algo.meta_loss(params, batch, 20)[0].item()  # past the multi-step loss: MAML's objective
    assert past == maml_meta_loss(model, REG, params, batch, 0.05, 3)[0].item()


def test_with_every_option_off_maml_plus_plus_is_maml():
    model, params, batch = conv_problem(2)
    maml = MAML(model, CLS, 0.3, 2, adapt_norm=False)
    plus = MAMLPlusPlus(model, CLS, 0.3, 2, adapt_norm=False)
    a, b = maml.meta_gradient(params, batch), plus.meta_gradient(plus.init_meta_params(params), batch)
    assert a[0].keys() == b[0].keys()
    for k in params:
        np.testing.assert_array_equal(a[0][k].numpy(), b[0][k].numpy())
    np.testing.assert_array_equal(maml.evaluate(params, batch, 3)["loss"], plus.evaluate(params, batch, 3)["loss"])


# ---- derivative-order annealing (DA) ----------------------------------------------------------------------------
def test_derivative_order_annealing_is_fomaml_before_and_maml_from_the_switch():
    model, params, batch = sine_problem(3)
    first = numbers(FOMAML(model, REG, 0.1, 2).meta_gradient(params, batch)[0])
    second = numbers(MAML(model, REG, 0.1, 2).meta_gradient(params, batch)[0])
    assert max(np.abs(first[k] - second[k]).max() for k in params) > 1e-3  # the two orders differ here
    algo = MAMLPlusPlus(model, REG, 0.1, 2, first_order_iterations=4, epoch_iterations=2)
    for it, want in ((0, first), (3, first), (4, second), (1000, second)):
        got = numbers(algo.meta_gradient(params, batch, iteration=it)[0])
        for k in params:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15, err_msg=f"iteration {it}, {k}")


def test_the_training_loop_passes_every_iteration_also_after_a_resume(tmp_path, monkeypatch):
    seen = []
    original = MAMLPlusPlus.meta_gradient

    def spy(self, meta_params, batch, rng=None, iteration=0):
        seen.append(iteration)
        return original(self, meta_params, batch, rng, iteration)

    monkeypatch.setattr(MAMLPlusPlus, "meta_gradient", spy)
    cfg = PRESETS["mamlpp-sine-5shot"].replace(iterations=6, inner_steps=2, eval_inner_steps=2, val_interval=0,
                                               log_interval=2, test_tasks=5, multi_step_loss_iterations=4,
                                               epoch_iterations=2)
    train(cfg, tmp_path / "r", stop_at=4, evaluate_at_end=False, **QUIET)
    train(cfg, tmp_path / "r", resume=True, evaluate_at_end=False, **QUIET)
    assert seen == [0, 1, 2, 3, 4, 5]


# ---- learned per-layer per-step inner rates (LSLR) -------------------------------------------------------------------
def test_learned_rates_at_alpha_give_mamls_loss_exactly():
    model, params, batch = sine_problem(4)
    algo = MAMLPlusPlus(model, REG, 0.07, 3, learned_step_rates=True)
    meta = algo.init_meta_params(params)
    assert {k for k in meta if k.startswith("lr/")} == {"lr/" + k for k in params}
    assert all(meta["lr/" + k].shape == (3,) and (meta["lr/" + k].numpy() == 0.07).all() for k in params)
    assert algo.meta_loss(meta, batch)[0].item() == maml_meta_loss(model, REG, params, batch, 0.07, 3)[0].item()
    meta["lr/w1"] = tm.tensor([0.07, 0.0, 0.07], dtype="float64", requires_grad=True)  # each step reads its own rate
    assert algo.meta_loss(meta, batch)[0].item() != maml_meta_loss(model, REG, params, batch, 0.07, 3)[0].item()


def test_the_learned_rates_meta_gradient_matches_central_differences():
    model, params, batch = sine_problem(5)
    algo = MAMLPlusPlus(model, REG, 0.1, 2, learned_step_rates=True)
    meta = algo.init_meta_params(params)
    meta["lr/w2"] = tm.tensor([0.3, 0.05], dtype="float64", requires_grad=True)
    grads = algo.meta_gradient(meta, batch)[0]
    h = 1e-6
    for key in ("lr/w1", "lr/b1", "lr/w2", "lr/b2"):
        for s in range(2):
            values = {}
            for sign in (1, -1):
                moved = dict(meta)
                r = meta[key].numpy().copy()
                r[s] += sign * h
                moved[key] = tm.tensor(r)
                values[sign] = algo.meta_loss(moved, batch)[0].item()
            numeric = (values[1] - values[-1]) / (2 * h)
            assert grads[key].numpy()[s] == pytest.approx(numeric, rel=1e-6, abs=1e-9), (key, s)


def test_the_meta_loss_is_gradient_checked_to_second_order_in_every_kind_of_input():
    """theta (a conv bias, the head), the per-step rates and the per-step batch-norm weights, multi-step loss on."""
    model, params, batch = conv_problem(6, T=2, ways=2, shots=1, queries=1)
    checked = ["conv2_b", "head", "head_b"]
    keys = [k for k in params if not k.startswith("bn")]

    def loss(*xs):
        # the finite differences call this with constants under no_grad: the inner loop needs its gradients anyway
        xs = [x if x.requires_grad else x.detach().requires_grad_() for x in xs]
        with tm.enable_grad():
            given = dict(zip(checked + ["rate", "bn1_w", "bn1_b"], xs))
            theta = {**params, **{k: given[k] for k in checked}}
            rates = {k: given["rate"] for k in keys}  # one (steps,) tensor shared by every weight: fewer inputs
            norm = {"bn1_w": given["bn1_w"], "bn1_b": given["bn1_b"]}
            return maml_plus_plus_meta_loss(model, CLS, theta, batch, rates, 2, step_weights=[0.3, 0.7], keys=keys,
                                            step_norm=norm)[0]

    rng = np.random.default_rng(0)
    inputs = [params[k] for k in checked] + [tm.tensor([0.2, 0.1], dtype="float64", requires_grad=True),
                                            tm.tensor(1 + 0.1 * rng.normal(size=(2, 3)), requires_grad=True),
                                            tm.tensor(0.1 * rng.normal(size=(2, 3)), requires_grad=True)]
    assert gradcheck(loss, inputs)
    assert gradgradcheck(loss, inputs)


# ---- per-step batch-norm weights (BNWB) ----------------------------------------------------------------------------
def test_per_step_batch_norm_with_equal_steps_is_plain_maml():
    model, params, batch = conv_problem(7)
    maml = MAML(model, CLS, 0.3, 3, adapt_norm=False)
    plus = MAMLPlusPlus(model, CLS, 0.3, 3, adapt_norm=False, per_step_bn=True)
    meta = plus.init_meta_params(params)
    norm = model.norm_keys()
    assert not set(norm) & set(meta) and all(meta["step_bn/" + k].shape == (3, 3) for k in norm)
    loss_a, grads_a = maml.meta_loss(params, batch)[0], numbers(maml.meta_gradient(params, batch)[0])
    assert plus.meta_loss(meta, batch)[0].item() == loss_a.item()
    grads_b = numbers(plus.meta_gradient(meta, batch)[0])
    for k in params:  # a weight shared by every step collects what the per-step copies collect
        got = grads_b["step_bn/" + k].sum(axis=0) if k in norm else grads_b[k]
        np.testing.assert_allclose(got, grads_a[k], rtol=1e-10, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(plus.evaluate(meta, batch, 3)["loss"], maml.evaluate(params, batch, 3)["loss"],
                               rtol=1e-12)
    each = dict(adapt_norm=False, transductive=False)  # each query through the net with its support set
    np.testing.assert_allclose(MAMLPlusPlus(model, CLS, 0.3, 3, per_step_bn=True, **each).evaluate(meta, batch, 3)["loss"],
                               MAML(model, CLS, 0.3, 3, **each).evaluate(params, batch, 3)["loss"], rtol=1e-12)


def test_each_inner_step_and_the_query_after_it_use_that_steps_batch_norm():
    model, params, batch = conv_problem(8)
    plus = MAMLPlusPlus(model, CLS, 0.3, 2, adapt_norm=False, per_step_bn=True)
    meta = plus.init_meta_params(params)
    meta["step_bn/bn2_b"] = tm.tensor([[0.0, 0.0, 0.0], [0.5, -1.0, 2.0]], requires_grad=True)
    fast = list(plus.adapt(meta, batch, 2))
    np.testing.assert_array_equal(fast[0]["bn2_b"].numpy()[0], [0, 0, 0])   # before adaptation: step 0's
    np.testing.assert_array_equal(fast[1]["bn2_b"].numpy(), [0, 0, 0])      # after step 0
    np.testing.assert_array_equal(fast[2]["bn2_b"].numpy(), [0.5, -1, 2])   # after step 1
    keys = [k for k in params if k not in model.norm_keys()]
    row = lambda s: {"bn2_b": meta["step_bn/bn2_b"][s]}  # noqa: E731
    x, y = batch.support
    fast = per_task(params, batch.num_tasks)
    for s in range(2):  # step s's support pass with row s
        fast = inner_sgd(lambda f: CLS.losses(model({**f, **row(s)}, x), y), fast, 0.3, 1, True, keys=keys)
    loss_by_hand = CLS.losses(model({**fast, **row(1)}, batch.x_query), batch.y_query).mean()  # the last row
    assert plus.meta_loss(meta, batch)[0].item() == pytest.approx(loss_by_hand.item(), rel=1e-12)
    with pytest.raises(ValueError, match="at most 2"):
        list(plus.adapt(meta, batch, 3))


# ---- the task axis ------------------------------------------------------------------------------------------------
def test_every_option_on_the_task_axis_equals_a_per_task_loop():
    model, params, batch = conv_problem(9, T=4)
    algo = MAMLPlusPlus(model, CLS, 0.2, 2, adapt_norm=False, per_step_bn=True, learned_step_rates=True,
                        multi_step_loss_iterations=10)
    meta = algo.init_meta_params(params)
    grads = numbers(algo.meta_gradient(meta, batch)[0])
    loop = {k: 0.0 for k in meta}
    for t in range(batch.num_tasks):
        g = algo.meta_gradient(meta, batch.task(t))[0]
        for k in meta:
            loop[k] = loop[k] + g[k].numpy() / batch.num_tasks
    for k in meta:  # a conv bias before batch norm has a zero gradient: rounding noise on both sides
        np.testing.assert_allclose(grads[k], loop[k], rtol=1e-9, atol=1e-12, err_msg=k)
    ev = algo.evaluate(meta, batch, 2)
    for t in range(batch.num_tasks):
        np.testing.assert_allclose(ev["loss"][:, t], algo.evaluate(meta, batch.task(t), 2)["loss"][:, 0], rtol=1e-10)


def test_every_option_runs_on_the_gpu_path_without_a_synchronisation(gpu_device):
    from tinymeta import backend
    from tinymeta.optim import Adam
    if not hasattr(backend._cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no cupyx.allow_synchronize to check with")
    rng = np.random.default_rng(1)
    model = ConvNet(n_way=3, filters=4, blocks=2, pool=True, image_size=8, activation="leaky_relu")
    algo = MAMLPlusPlus(model, CLS, 0.1, 2, adapt_norm=False, per_step_bn=True, learned_step_rates=True,
                        multi_step_loss_iterations=2, first_order_iterations=1)
    meta = algo.init_meta_params(model.init_params(rng, dtype="float32", device=gpu_device), rng)
    xs, xq = rng.normal(size=(2, 3, 1, 8, 8)), rng.normal(size=(2, 6, 1, 8, 8))
    ys, yq = np.tile(np.arange(3), (2, 1)), np.tile(np.arange(3).repeat(2), (2, 1))
    batch = MetaBatch(tm.tensor(xs, dtype="float32", device=gpu_device), tm.tensor(ys, device=gpu_device),
                      tm.tensor(xq, dtype="float32", device=gpu_device), tm.tensor(yq, device=gpu_device))
    opt = Adam(meta, lr=1e-3)
    with backend._cupyx.allow_synchronize(False):
        for it in range(3):  # first order, then second with the multi-step loss, then the last step's loss alone
            grads, metrics = algo.meta_gradient(meta, batch, iteration=it)
            opt.step(grads)
    assert all(p.device == "cuda" for p in meta.values()) and metrics["query_loss"].device == "cuda"


# ---- cosine annealing of the outer rate (CA) --------------------------------------------------------------------------
def test_the_cosine_schedule_by_hand():
    cfg = PRESETS["maml-sine-10shot"].replace(lr_schedule="cosine", meta_lr=1e-3, meta_lr_min=1e-5, iterations=2000,
                                              epoch_iterations=500)
    # 1e-5 + (1e-3 - 1e-5) (1 + cos(pi e / 4)) / 2 for epochs e = 0, 1, 2, 3
    for it, want in ((0, 1e-3), (499, 1e-3), (500, 8.55017857e-4), (1000, 5.05e-4), (1999, 1.54982143e-4)):
        assert scheduled_lr(cfg, it) == pytest.approx(want, rel=1e-7), it
    assert scheduled_lr(cfg.replace(epoch_iterations=1), 1000) == pytest.approx(5.05e-4)  # every iteration its own


def test_resuming_a_cosine_schedule_with_other_iterations_is_refused(tmp_path):
    cfg = PRESETS["mamlpp-sine-5shot"].replace(iterations=4, inner_steps=1, eval_inner_steps=1, val_interval=0,
                                               log_interval=2, multi_step_loss_iterations=0, epoch_iterations=1)
    train(cfg, tmp_path / "r", stop_at=2, evaluate_at_end=False, **QUIET)
    with pytest.raises(ValueError, match="cosine learning-rate schedule"):
        train(cfg.replace(iterations=8), tmp_path / "r", resume=True, **QUIET)


# ---- the config ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes,message", [
    (dict(algorithm="maml", learned_step_rates=True), "--algorithm maml\\+\\+"),
    (dict(algorithm="meta-sgd", multi_step_loss_iterations=500), "MAML\\+\\+'s options"),
    (dict(multi_step_loss_iterations=700), "whole number of epochs"),
    (dict(first_order_iterations=500, first_order=True), "first order throughout"),
    (dict(eval_inner_steps=10), "at most|or less"),
    (dict(per_step_bn=True, adapt_norm=False), "no batch norm"),
    (dict(lr_schedule="cosine", meta_lr_min=0.1), "meta_lr_min"),
    (dict(inner_steps=0), "inner_steps"),
    (dict(learned_step_rates="yes"), "learned_step_rates"),
    (dict(epoch_iterations=0), "epoch_iterations"),
])
def test_bad_maml_plus_plus_settings_are_refused_with_their_fix(changes, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["mamlpp-sine-5shot"].replace(**changes).validate()


def test_every_existing_preset_keeps_the_new_fields_at_their_defaults():
    for name, cfg in PRESETS.items():
        if cfg.algorithm != "maml++":
            assert (cfg.multi_step_loss_iterations, cfg.first_order_iterations, cfg.learned_step_rates,
                    cfg.per_step_bn, cfg.meta_lr_min, cfg.epoch_iterations) == (0, 0, False, False, 0.0, 1), name
            assert cfg.lr_schedule != "cosine", name


def test_the_omniglot_presets_cite_the_original_and_the_papers_number(capsys):
    import json

    from tinymeta.experiment.cli import main
    assert main(["presets", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    cell = rows["mamlpp-omniglot-5w1s"]
    assert cell["source"]["paper_value"] == "99.47" and "HowToTrainYourMAMLPytorch" in cell["source"]["code"]
    settings = cell["source"]["settings"]
    assert "few_shot_learning_system.py:83-103" in settings["multi_step_loss_iterations"]
    assert "omniglot_maml++-omniglot_1_8_0.1_64_5_0.json" in settings["command"]
    assert "_1_8_0.1_64_20_0" in rows["mamlpp-omniglot-20w1s"]["source"]["settings"]["command"]
    assert cell["config"]["iterations"] == 50000 and cell["config"]["multi_step_loss_iterations"] == 5000


def test_per_step_batch_norm_needs_the_inner_loop_to_leave_batch_norm_alone():
    with pytest.raises(ValueError, match="adapt_norm False"):
        PRESETS["mamlpp-omniglot-5w1s"].replace(adapt_norm=True).validate()


# ---- runs: checkpoints and the command line ---------------------------------------------------------------------------
def test_a_resumed_maml_plus_plus_run_carries_its_rates_and_batch_norm_weights(tmp_path, omniglot_cache, monkeypatch):
    """Omniglot, every option on: stop, resume, and the same meta-parameters as an uninterrupted run."""
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    cfg = PRESETS["mamlpp-omniglot-5w1s"].replace(iterations=4, meta_batch=2, filters=3, inner_steps=2,
                                                  eval_inner_steps=2, val_interval=0, log_interval=2,
                                                  checkpoint_interval=0, multi_step_loss_iterations=2,
                                                  epoch_iterations=1, first_order_iterations=1, test_tasks=4)
    train(cfg, tmp_path / "a", data_dir=OMNIGLOT_DIR, evaluate_at_end=False, **QUIET)
    train(cfg, tmp_path / "b", data_dir=OMNIGLOT_DIR, stop_at=3, evaluate_at_end=False, **QUIET)
    train(cfg, tmp_path / "b", resume=True, evaluate_at_end=False, **QUIET)
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.npz"), load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert a.params["step_bn/bn1_w"].shape == (2, 3) and a.params["lr/conv1"].shape == (2,)
    assert not (a.params["lr/conv1"].numpy() == 0.1).all()  # learned, not left at alpha
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k].numpy(), b.params[k].numpy(), err_msg=k)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(read_log(tmp_path / "a")) == strip(read_log(tmp_path / "b"))


@pytest.mark.slow
def test_train_a_maml_plus_plus_preset_from_the_command_line(tmp_path):
    if not (OMNIGLOT_DIR / "images_background.zip").is_file():
        pytest.skip(f"real Omniglot zips not found in {OMNIGLOT_DIR}")
    logdir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--preset", "mamlpp-omniglot-5w1s",
                           "--iterations", "3", "--meta-batch", "2", "--filters", "4", "--val-interval", "0",
                           "--test-tasks", "4", "--data-dir", str(OMNIGLOT_DIR), "--logdir", str(logdir),
                           "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "5 " in done.stdout and "accuracy" in done.stdout  # the test table, five inner steps
    ckpt = load_checkpoint(logdir / "checkpoint.npz")
    assert ckpt.config["algorithm"] == "maml++" and ckpt.params["step_bn/bn4_b"].shape == (5, 4)
    bad = subprocess.run([sys.executable, "-m", "tinymeta", "train", "--preset", "mamlpp-omniglot-5w1s",
                          "--eval-inner-steps", "10", "--logdir", str(tmp_path / "bad"), "--no-progress"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("tinymeta train: error:") and "Traceback" not in bad.stderr
    assert "--eval-inner-steps 5 or less" in bad.stderr


# ---- the original's network and data: leaky ReLU, rotations while training only -----------------------------------
def test_leaky_relu_by_hand_and_gradient_checked_to_second_order():
    from tinymeta import functional as F
    x = tm.tensor(np.array([-2.0, -0.5, 0.0, 0.25, 3.0]), requires_grad=True)
    np.testing.assert_allclose(F.leaky_relu(x).numpy(), [-0.02, -0.005, 0.0, 0.25, 3.0])
    np.testing.assert_allclose(tm.grad(F.leaky_relu(x).sum(), x).numpy(), [0.01, 0.01, 0.01, 1, 1])  # PyTorch's at 0
    np.testing.assert_allclose(F.leaky_relu(x, 0.2).numpy(), [-0.4, -0.1, 0.0, 0.25, 3.0])
    y = tm.tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)  # away from the kink
    assert gradcheck(lambda a: F.leaky_relu(a) * a, [y]) and gradgradcheck(lambda a: F.leaky_relu(a) * a, [y])


def test_the_conv_net_takes_leaky_relu_after_batch_norm():
    from tinymeta import functional as F
    relu, leaky = ConvNet(n_way=2, filters=2, blocks=1, image_size=4), ConvNet(n_way=2, filters=2, blocks=1,
                                                                                image_size=4, activation="leaky_relu")
    params = relu.init_params(0, dtype="float64")
    x = tm.tensor(np.random.default_rng(1).normal(size=(3, 1, 4, 4)))
    h = F.batch_norm(F.conv2d(x, params["conv1"], params["conv1_b"], stride=2, padding=1), weight=params["bn1_w"],
                     bias=params["bn1_b"])
    np.testing.assert_allclose(leaky.body(params, x).numpy(), F.leaky_relu(h).mean(axis=(-2, -1)).numpy())
    assert not np.allclose(leaky.body(params, x).numpy(), relu.body(params, x).numpy())
    with pytest.raises(ValueError, match="activation"):
        ConvNet(activation="tanh")
    assert PRESETS["mamlpp-omniglot-5w1s"].activation == "leaky_relu"


def test_per_task_train_rotations_turn_training_tasks_only(omniglot_real):
    from tinymeta.tasks import Omniglot
    tasks = Omniglot(5, 1, 1, data=omniglot_real, rotations="per-task-train")
    train_rot = tasks.sample(100, np.random.default_rng(0), split="train").info["rotations"]
    assert np.bincount(train_rot.ravel(), minlength=4).min() > 80  # all four angles while training
    for split in ("val", "test"):
        assert (tasks.sample(50, np.random.default_rng(0), split=split).info["rotations"] == 0).all()
