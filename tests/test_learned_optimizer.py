"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al. 2016): the
preprocessing against hand-computed values, the LSTM optimiser's step against a NumPy forward,
its derivatives to second order, the truncated meta-gradient against central differences, the
baselines against tinymeta.optim, a short meta-training that beats tuned SGD, and saving/loading."""
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, t64

import tinymeta as tm
from tinymeta.algorithms import learned_optimizer as L
from tinymeta.experiment.checkpoint import CheckpointError, save_checkpoint
from tinymeta.experiment import l2l
from tinymeta.experiment.l2l import (compare_optimizers, held_out, load_learned_optimizer, save_learned_optimizer,
                                     train_learned_optimizer)
from tinymeta.nn import LSTMOptimizer, log_and_sign
from tinymeta.testing import gradcheck, gradgradcheck


# ---- the preprocessing (paper App. A) -------------------------------------------------------------
def test_log_and_sign_against_hand_computed_values():
    e10 = math.exp(10)
    g = [1.0, -1e-3, 1e-6, 0.0, 100.0, -2e-5, math.exp(-10) * 1.001]
    want = [[0.0, 1.0],                              # log 1 = 0
            [math.log(1e-3) / 10, -1.0],             # -0.690776
            [-1.0, 1e-6 * e10],                      # below e^-10: (-1, e^10 g) = (-1, 0.0220265)
            [-1.0, 0.0],
            [math.log(100.0) / 10, 1.0],             # 0.460517
            [-1.0, -2e-5 * e10],                     # -0.440529
            [math.log(math.exp(-10) * 1.001) / 10, 1.0]]   # just above the threshold: -0.9999
    got = log_and_sign(tm.tensor(g, dtype="float64")).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert np.allclose(want[1], [-0.690776, -1], atol=1e-6) and np.allclose(want[2], [-1, 0.0220265], atol=1e-7)


def test_log_and_sign_with_the_codes_k_5():
    got = log_and_sign(tm.tensor([1e-3, -1e-3], dtype="float64"), p=5).numpy()
    np.testing.assert_allclose(got, [[-1.0, 1e-3 * math.exp(5)], [-1.0, -1e-3 * math.exp(5)]], rtol=1e-12)


def test_log_and_sign_gradients_to_second_order(rng):
    """Away from its kinks (|g| = e^-p) it is smooth: both branches checked."""
    g = t64(np.array([0.5, -2.0, 1e-5, -3e-5, 0.02]))
    assert gradcheck(lambda x: log_and_sign(x, p=10.0), [g])
    assert gradgradcheck(lambda x: log_and_sign(x, p=10.0), [g])


# ---- the LSTM optimiser's step against NumPy --------------------------------------------------------
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_preprocess(g, p):
    small = np.abs(g) < math.exp(-p)
    log_part = np.where(small, -1.0, np.log(np.abs(g) + np.finfo(np.float64).eps) / p)
    sign_part = np.where(small, g * math.exp(p), np.sign(g))
    return np.stack([log_part, sign_part], axis=-1)


def numpy_step(phi, g, state, num_layers, preprocess=True, p=10.0, scale=0.1):
    """The coordinatewise LSTM written out: every coordinate a row, two stacked cells, a linear output."""
    x = g.reshape(-1, 1)
    if preprocess:
        x = numpy_preprocess(x[:, 0], p)
    new_state = []
    for layer in range(num_layers):
        h, c = state[layer]
        z = (x @ phi[f"weight_ih_l{layer}"].T + phi[f"bias_ih_l{layer}"] + h @ phi[f"weight_hh_l{layer}"].T
             + phi[f"bias_hh_l{layer}"])
        i, f, gg, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(gg)
        h = sigmoid(o) * np.tanh(c)
        new_state.append((h, c))
        x = h
    update = (x @ phi["weight_out"].T + phi["bias_out"]) * scale
    return update.reshape(g.shape), new_state


@pytest.mark.parametrize("preprocess", [True, False], ids=["log-and-sign", "raw-gradient"])
def test_lstm_optimizer_step_matches_numpy(preprocess, device, rng):
    opt = LSTMOptimizer(hidden_size=3, num_layers=2, preprocess=preprocess, output_scale=0.1)
    params = opt.init_params(0, dtype="float64", device=device)
    phi = {k: v.numpy() for k, v in params.items()}
    g = np.array([[0.3, -1e-6, 2.0], [0.0, -0.04, 1e-3]])      # 2 functions x 3 coordinates
    state_np = [(rng.standard_normal((6, 3)), rng.standard_normal((6, 3))) for _ in range(2)]
    state = [(tm.tensor(h, device=device), tm.tensor(c, device=device)) for h, c in state_np]
    update, new_state = opt(params, tm.tensor(g, device=device), state)
    want, want_state = numpy_step(phi, g, state_np, 2, preprocess)
    assert update.shape == (2, 3)
    np.testing.assert_allclose(update.numpy(), want, rtol=1e-12, atol=1e-15)
    for (h, c), (wh, wc) in zip(new_state, want_state):
        np.testing.assert_allclose(h.numpy(), wh, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(c.numpy(), wc, rtol=1e-12, atol=1e-15)
    # and the first step from the zero state: the same rule with h = c = 0
    g_t = tm.tensor(g, device=device)
    update0, _ = opt(params, g_t, opt.initial_state(g_t))
    zeros = [(np.zeros((6, 3)), np.zeros((6, 3)))] * 2
    np.testing.assert_allclose(update0.numpy(), numpy_step(phi, g, zeros, 2, preprocess)[0], rtol=1e-12, atol=1e-15)


def test_initialisation_follows_sonnet_forget_bias_and_paper_sizes():
    opt = LSTMOptimizer()
    params = opt.init_params(0, dtype="float64")
    assert opt.hidden_size == 20 and opt.num_layers == 2 and opt.input_size == 2
    assert params["weight_ih_l0"].shape == (80, 2) and params["weight_ih_l1"].shape == (80, 20)
    assert params["weight_out"].shape == (1, 20)
    b = params["bias_ih_l0"].numpy()
    assert b[20:40].mean() > 0.8 and abs(b[:20].mean()) < 0.2     # forget gate starts at about 1


def test_lstm_optimizer_derivatives_to_second_order(rng):
    """Through the step, with respect to its weights, the gradient it reads and its state."""
    opt = LSTMOptimizer(hidden_size=2, num_layers=2, preprocess=True)
    params = opt.init_params(3, dtype="float64")
    keys = sorted(params)
    g = t64(np.array([0.5, -0.2, 3e-3]))   # (the small branch, e^p g, is checked on log_and_sign alone)
    h, c = t64(rng.standard_normal((3, 2))), t64(rng.standard_normal((3, 2)))

    def checked_wrt(names):
        def step(g, h, c, *w):
            update, state = opt({**params, **dict(zip(names, w))}, g, [(h, c), (h * 0.5, c * 0.5)])
            return [update, state[1][1]]
        return step, [g, h, c] + [params[k] for k in names]
    assert gradcheck(*checked_wrt(keys))
    assert gradgradcheck(*checked_wrt(["weight_hh_l0", "weight_ih_l1", "weight_out"]))


def test_a_state_that_does_not_fit_is_refused():
    opt = LSTMOptimizer(hidden_size=3)
    params = opt.init_params(0, dtype="float64")
    g = tm.tensor(np.ones((2, 4)))
    with pytest.raises(ValueError, match="start from initial_state"):
        opt(params, g, opt.initial_state(tm.tensor(np.ones(5))))


# ---- the meta-gradient through a truncated unroll --------------------------------------------------
def small_setup(seed=0):
    opt = LSTMOptimizer(hidden_size=3, num_layers=2, output_scale=0.5)
    params = opt.init_params(seed, dtype="float64")
    rng = np.random.default_rng(seed + 10)
    problem = L.Quadratics.sample(2, rng, dims=3)
    theta = problem.initial_theta(rng, std=0.5)
    return opt, params, problem, theta


def numpy_unroll(phi, W, y, theta, steps, fixed_grads=None):
    """The unroll in NumPy: sum_t mean_i f_i(theta_t). With ``fixed_grads`` each step reads the given
    gradient instead of the one at theta_t (the optimisee's gradient as a constant); returns the
    gradients it read too."""
    state = [(np.zeros((theta.size, 3)), np.zeros((theta.size, 3)))] * 2
    total, read = 0.0, []
    for t in range(steps):
        g = 2 * np.einsum("nji,nj->ni", W, np.einsum("nij,nj->ni", W, theta) - y)
        g = g if fixed_grads is None else fixed_grads[t]
        read.append(g)
        update, state = numpy_step(phi, g, state, 2, True, 10.0, 0.5)
        theta = theta + update
        total += np.mean(np.sum((np.einsum("nij,nj->ni", W, theta) - y) ** 2, axis=-1))
    return total, read


def central_differences(f, phi, eps=1e-6):
    out = {}
    for k, v in phi.items():
        d = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            plus, minus = {**phi, k: v.copy()}, {**phi, k: v.copy()}
            plus[k][i] += eps
            minus[k][i] -= eps
            d[i] = (f(plus) - f(minus)) / (2 * eps)
        out[k] = d
    return out


@pytest.mark.parametrize("second_order", [False, True], ids=["first-order (the paper)", "second-order"])
def test_meta_gradient_of_a_two_step_unroll_matches_central_differences(second_order):
    """First order: the derivative of the unroll in which each step reads the gradient recorded at
    phi_0 as a constant (the dashed edges of the paper's Fig. 2). Second order: of the plain unroll."""
    opt, params, problem, theta = small_setup()
    phi = {k: v.numpy() for k, v in params.items()}
    W, y, th = problem.W.numpy(), problem.y.numpy(), theta.numpy()
    meta_loss, _, _ = L.unroll(opt, params, problem, theta, opt.initial_state(theta), 2, second_order=second_order)
    got = tm.grad(meta_loss, params)
    value, recorded = numpy_unroll(phi, W, y, th, 2)
    assert meta_loss.item() == pytest.approx(value, rel=1e-12)
    fixed = None if second_order else recorded
    want = central_differences(lambda p: numpy_unroll(p, W, y, th, 2, fixed)[0], phi)
    for k in phi:
        np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-6, atol=1e-9, err_msg=k)
    other = central_differences(lambda p: numpy_unroll(p, W, y, th, 2, recorded if second_order else None)[0], phi)
    assert not np.allclose(got["weight_ih_l0"].numpy(), other["weight_ih_l0"], rtol=1e-4, atol=1e-7), \
        "the two meta-gradients should differ here, or the test could not tell them apart"


def test_the_meta_loss_sums_every_steps_mean_loss():
    opt, params, problem, theta = small_setup(1)
    state = opt.initial_state(theta)
    meta_loss, theta_2, _ = L.unroll(opt, params, problem, theta, state, 2)
    _, theta_1, _ = L.unroll(opt, params, problem, theta, state, 1)
    want = problem.losses(theta_1).mean().item() + problem.losses(theta_2).mean().item()
    assert meta_loss.item() == pytest.approx(want, rel=1e-13)


def test_an_unroll_of_no_steps_is_refused():
    opt, params, problem, theta = small_setup()
    with pytest.raises(ValueError, match="steps must be >= 1"):
        L.unroll(opt, params, problem, theta, opt.initial_state(theta), 0)


def test_quadratic_loss_against_a_hand_computed_value():
    W = tm.tensor([[[1.0, 2.0], [0.0, -1.0]]])
    y = tm.tensor([[1.0, 1.0]])
    problem = L.Quadratics(W, y)
    # W theta - y = (1*1 + 2*2 - 1, 0 - 2 - 1) = (4, -3): 16 + 9 = 25
    assert problem.losses(tm.tensor([[1.0, 2.0]])).numpy().tolist() == [25.0]


def test_quadratic_loss_gradients_to_second_order(rng):
    W, y = t64(rng.standard_normal((2, 3, 3))), t64(rng.standard_normal((2, 3)))
    theta = t64(rng.standard_normal((2, 3)))
    assert gradcheck(lambda th, W, y: L.Quadratics(W, y).losses(th), [theta, W, y])
    assert gradgradcheck(lambda th, W, y: L.Quadratics(W, y).losses(th), [theta, W, y])


def test_quadratics_are_drawn_as_the_paper_or_the_code_says():
    normal = L.Quadratics.sample(200, np.random.default_rng(0))
    uniform = L.Quadratics.sample(200, np.random.default_rng(0), distribution="uniform")
    assert normal.W.shape == (200, 10, 10) and normal.y.shape == (200, 10)
    assert abs(normal.W.numpy().mean()) < 0.02 and abs(normal.W.numpy().std() - 1) < 0.02
    assert uniform.W.numpy().min() >= 0 and uniform.W.numpy().max() < 1
    with pytest.raises(ValueError, match="distribution must be one of"):
        L.Quadratics.sample(2, np.random.default_rng(0), distribution="gaussian")


# ---- the baselines ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_baselines_take_the_steps_of_tinymeta_optim(name, rng):
    theta0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(4)]
    rule = L.BASELINES[name](0.05)
    leaf = tm.tensor(theta0.copy(), dtype="float64", requires_grad=True)
    reference = tm.optim.SGD({"x": leaf}, lr=0.05) if name == "SGD" else tm.optim.Adam({"x": leaf}, lr=0.05)
    theta, state = tm.tensor(theta0, dtype="float64"), rule.initial_state(tm.tensor(theta0, dtype="float64"))
    for g in grads:
        update, state = rule(tm.tensor(g, dtype="float64"), state)
        theta = theta + update
        reference.step({"x": g})
    np.testing.assert_allclose(theta.numpy(), leaf.numpy(), rtol=1e-12, atol=1e-14)


def test_rmsprop_against_its_formula():
    rule = L.RMSpropRule(0.1, rho=0.9, eps=1e-8)
    g = tm.tensor([2.0, -0.5], dtype="float64")
    update, v = rule(g, rule.initial_state(g))
    # v = 0.1 g^2, update = -0.1 g / sqrt(0.1 g^2) = -0.1 sign(g) sqrt(10)
    np.testing.assert_allclose(update.numpy(), [-0.1 * math.sqrt(10), 0.1 * math.sqrt(10)], rtol=1e-7)
    np.testing.assert_allclose(v.numpy(), [0.4, 0.025], rtol=1e-12)


def test_tuning_picks_the_rate_that_ends_lowest_and_scores_divergence_as_inf():
    problem, theta = held_out(5, functions=8)
    best, finals = L.tune_learning_rate(L.SGDRule, problem, theta, rates=[1e-4, 1e-2, 10.0], steps=100)
    assert finals[10.0] == math.inf and finals[1e-2] < finals[1e-4] and best == 1e-2
    curve = L.optimise(L.SGDRule(10.0), problem, theta, steps=100)   # overflows after about 60 steps
    assert curve.shape == (101,) and curve[-1] == math.inf and np.isfinite(curve[:40]).all()
    curve, final = L.optimise(L.SGDRule(1e-2), problem, theta, steps=100, per_function=True)
    assert final.shape == (8,) and final.mean() == pytest.approx(curve[-1], rel=1e-12)


# ---- learning to learn, briefly --------------------------------------------------------------------
@pytest.mark.slow
def test_a_short_meta_training_beats_tuned_sgd_on_held_out_quadratics():
    """15 epochs of 16 functions (seeded: the same numbers every run), then 100 steps on 64 held-out
    quadratics. SGD gets the rate that is best on those very functions (an oracle's tuning, kinder to
    SGD than tuning on others, which here picks a rate under which one of the 64 slowly diverges).
    Measured: learned 0.697, SGD 1.231 at rate 0.01."""
    opt, params, history = train_learned_optimizer(15, seed=0, functions=16)
    test = held_out(l2l.TEST_SEED, 64)
    lr, finals = L.tune_learning_rate(L.SGDRule, *test)
    lstm = L.optimise(L.LearnedRule(opt, params), *test)
    untrained = L.optimise(L.LearnedRule(opt, LSTMOptimizer().init_params(0, dtype="float64")), *test)
    assert lstm[-1] < 0.9 * finals[lr], f"learned {lstm[-1]:.4f} vs tuned SGD {finals[lr]:.4f} (rate {lr:.3g})"
    assert lstm[-1] < untrained[-1] and len(history) == 15 and history[-1] < history[0]


def test_meta_training_is_deterministic_and_changes_the_weights():
    a = train_learned_optimizer(1, seed=3, functions=4)
    b = train_learned_optimizer(1, seed=3, functions=4)
    start = LSTMOptimizer().init_params(3, dtype="float64")
    for k in start:
        np.testing.assert_array_equal(a[1][k].numpy(), b[1][k].numpy())
    assert not np.array_equal(a[1]["weight_out"].numpy(), start["weight_out"].numpy())
    assert a[2] == b[2]


def test_meta_train_refuses_steps_that_are_not_whole_unrolls():
    opt = LSTMOptimizer(hidden_size=2)
    with pytest.raises(ValueError, match="multiple of unroll_length"):
        L.meta_train(opt, opt.init_params(0, dtype="float64"), 1, np.random.default_rng(0), steps=30,
                     unroll_length=20)


# ---- saving and loading ----------------------------------------------------------------------------
def test_save_and_load_round_trip(tmp_path):
    opt = LSTMOptimizer(hidden_size=4, preprocess=False, output_scale=0.3)
    params = opt.init_params(1, dtype="float64")
    path = save_learned_optimizer(tmp_path / "opt.npz", opt, params, extra={"epochs": 7})
    loaded, got, extra = load_learned_optimizer(path)
    assert repr(loaded) == repr(opt) and extra == {"epochs": 7}
    for k in params:
        np.testing.assert_array_equal(got[k].numpy(), params[k].numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["opt.npz"]   # no temporary file left behind


def test_load_refuses_other_checkpoints_and_wrong_shapes(tmp_path):
    other = save_checkpoint(tmp_path / "other.npz", {"w": tm.tensor(np.ones(2))}, config={"algorithm": "maml"})
    with pytest.raises(CheckpointError, match="not of a learned optimiser"):
        load_learned_optimizer(other)
    opt = LSTMOptimizer(hidden_size=4)
    params = opt.init_params(0, dtype="float64")
    params["weight_out"] = tm.tensor(np.ones((1, 5)))
    bad = save_learned_optimizer(tmp_path / "bad.npz", opt, params)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_learned_optimizer(bad)


def l2l_command(*argv, cwd=REPO):
    """``python -m tinymeta.experiment.l2l ARGV`` as a user types it."""
    return subprocess.run([sys.executable, "-m", "tinymeta.experiment.l2l", *map(str, argv)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_command_trains_saves_loads_and_compares(tmp_path):
    path = tmp_path / "l2l.npz"
    out = l2l_command("--quick", "--epochs", "1", "--functions", "8", "--save", path)
    assert out.returncode == 0, out.stderr
    assert "meta-trained LSTMOptimizer" in out.stdout and "saved to" in out.stdout
    assert all(name in out.stdout for name in ("SGD", "RMSprop", "Adam", "LSTM", "median", "worse"))
    again = l2l_command("--quick", "--load", path, "--functions", "8")
    assert again.returncode == 0, again.stderr
    assert "(1 epochs of meta-training)" in again.stdout and "LSTM" in again.stdout


def run_main(argv, capsys):
    code = l2l.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-1"], "--epochs must be >= 0"),
    (["--functions", "0"], "--functions must be >= 1"),
    (["--lr", "nan"], "--lr must be a number > 0"),
    (["--load", "missing.npz"], "no checkpoint at"),
    (["--save", "no/such/folder/x.npz"], "does not exist"),
    (["--save", "a.npz", "--load", "b.npz"], "give one of them"),
])
def test_the_command_refuses_bad_input_with_one_error_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(args, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"{l2l.PROG}: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_a_mistyped_option_is_one_error_line_and_a_pointer_to_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        l2l.main(["--epochs", "many"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"{l2l.PROG}: error: ") and "--epochs" in err
    assert "usage" not in err and "--help" in err


def test_the_command_refuses_files_that_are_not_a_learned_optimiser(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    other = save_checkpoint(tmp_path / "other.npz", {"w": tm.tensor(np.ones(2))}, config={"algorithm": "maml"})
    for path, message in ((junk, "not a tinymeta checkpoint"), (other, "not of a learned optimiser")):
        out = l2l_command("--load", path)
        assert out.returncode == 2 and out.stderr.startswith(f"{l2l.PROG}: error: ") and message in out.stderr, \
            out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
