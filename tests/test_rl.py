"""tinymeta.rl: 2D navigation, linear baseline, Gaussian policy, TRPO, MAML/Meta-SGD for RL.

Each piece against a hand computation or a closed form; gradients in float64
against finite differences.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.rl import navigation
from tinymeta.rl.baseline import features, fit, linear_feature_baseline
from tinymeta.rl.maml_rl import MetaRL, adapt, meta_objective, surrogate_losses
from tinymeta.rl.policy import GaussianMLPPolicy, kl_divergence, log_likelihood
from tinymeta.rl.trpo import conjugate_gradient, flatten, hessian_vector_product, trpo_step, unflatten
from tinymeta.testing import gradcheck


def _paths(rng, T=3, N=2, H=5, A=2):
    """Fixed synthetic trajectories (any numbers will do for gradient identities)."""
    valid = np.ones((T, N, H))
    valid[0, 1, 3:] = 0  # one trajectory that ended early
    p = navigation.Paths(goals=rng.uniform(-0.5, 0.5, (T, 2)), observations=rng.uniform(-0.5, 0.5, (T, N, H, 2)),
                         actions=rng.standard_normal((T, N, H, A)), rewards=-rng.uniform(0, 1, (T, N, H)),
                         valid=valid, means=0.3 * rng.standard_normal((T, N, H, A)),
                         log_stds=0.2 * rng.standard_normal((T, N, H, A)))
    p.advantages = rng.standard_normal((T, N, H)) * valid
    return p


def _params(policy, seed=0, scale=0.1):
    """float64 parameters with nonzero biases (ReLU kinks away from the fixed inputs)."""
    params = policy.init_params(seed, dtype="float64")
    rng = np.random.default_rng(seed + 100)
    return {k: tm.tensor(v.numpy() + scale * rng.standard_normal(v.shape), dtype="float64", requires_grad=True)
            for k, v in params.items()}


# ---- environment ------------------------------------------------------------------------------
def test_step_moves_by_clipped_action_and_rewards_minus_distance():
    pos, reward, done = navigation.step(np.zeros(2), np.array([0.5, -2.0]), np.array([0.2, 0.1]))
    np.testing.assert_allclose(pos, [0.05, -0.1])        # 0.1 * a = (0.05, -0.2), clipped to -0.1
    assert reward == pytest.approx(-math.hypot(0.15, 0.2))  # = -0.25
    assert not done
    _, _, done = navigation.step(np.array([0.195, 0.1]), np.array([0.04, 0.05]), np.array([0.2, 0.1]))
    assert done  # (0.199, 0.105): both coordinates within 0.01 of the goal


def test_rollout_by_hand_deterministic_policy_reaches_goal_and_stops():
    goal = np.array([[0.25, 0.0]])
    # mean action 1 in x -> move 0.1 per step; log_std -40: the noise is ~4e-18, the path exact
    paths = navigation.rollout(lambda obs: (np.tile([1.0, 0.0], obs.shape[:-1] + (1,)), np.full(2, -40.0)),
                               goal, num_trajectories=2, rng=np.random.default_rng(0), horizon=5)
    x = paths.observations[0, 0, :, 0]
    # positions before each action: 0, 0.1, 0.2, then 0.3 > goal ... never within 0.01, so no stop
    np.testing.assert_allclose(x, [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-12)
    np.testing.assert_allclose(paths.rewards[0, 0], [-0.15, -0.05, -0.05, -0.15, -0.25], atol=1e-12)
    assert paths.valid.all()
    goal = np.array([[0.2, 0.0]])  # now the second move lands on the goal: done, later steps invalid
    paths = navigation.rollout(lambda obs: (np.tile([1.0, 0.0], obs.shape[:-1] + (1,)), np.full(2, -40.0)),
                               goal, 1, np.random.default_rng(0), horizon=5)
    np.testing.assert_array_equal(paths.valid[0, 0], [1, 1, 0, 0, 0])
    np.testing.assert_allclose(paths.rewards[0, 0], [-0.1, 0.0, 0, 0, 0], atol=1e-12)
    assert paths.average_return() == pytest.approx(-0.1)


def test_rollout_rejects_bad_goals():
    with pytest.raises(ValueError, match=r"goals must be \(T, 2\)"):
        navigation.rollout(lambda o: (o, o), np.zeros(2), 1, np.random.default_rng(0))


def test_discounted_cumsum_by_hand():
    y = navigation.discounted_cumsum(np.array([[1.0, 2.0, 3.0]]), 0.5)
    np.testing.assert_allclose(y, [[1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3]])


def test_goals_uniform_in_the_square():
    g = navigation.sample_goals(np.random.default_rng(0), 5000)
    assert g.min() >= -0.5 and g.max() <= 0.5
    assert abs(g.mean()) < 0.02 and abs(g.var() - 1 / 12) < 0.005


# ---- baseline ---------------------------------------------------------------------------------
def test_linear_baseline_is_the_ridge_least_squares_solution():
    rng = np.random.default_rng(0)
    paths = _paths(rng, T=2, N=3, H=7)
    returns = rng.standard_normal((2, 3, 7))
    pred = linear_feature_baseline(paths, returns)
    for t in range(2):
        rows = paths.valid[t].reshape(-1) > 0
        phi = features(paths.observations[t]).reshape(-1, 8)
        # closed form on the valid rows only: argmin |Phi w - R|^2 + 1e-5 |w|^2
        aug = np.vstack([phi[rows], math.sqrt(1e-5) * np.eye(8)])
        w, *_ = np.linalg.lstsq(aug, np.concatenate([returns[t].reshape(-1)[rows], np.zeros(8)]), rcond=None)
        np.testing.assert_allclose(pred[t].reshape(-1), phi @ w, rtol=1e-6, atol=1e-8)


def test_baseline_features_by_hand():
    obs = np.array([[[0.5, -20.0], [1.0, 2.0]]])  # one path of two steps; -20 is clipped to -10
    f = features(obs)
    np.testing.assert_allclose(f[0, 0], [0.5, -10, 0.25, 100, 0, 0, 0, 1])
    np.testing.assert_allclose(f[0, 1], [1, 2, 1, 4, 0.01, 1e-4, 1e-6, 1])


def test_baseline_fit_recovers_exact_linear_targets():
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((1, 50, 8))
    w = rng.standard_normal(8)
    np.testing.assert_allclose(fit(phi, phi @ w, np.ones((1, 50)), reg_coeff=0.0)[0], w, rtol=1e-8)


def test_process_centres_advantages_per_task():
    rng = np.random.default_rng(2)
    paths = _paths(rng, T=2, N=3, H=6)
    navigation.process(paths, lambda p, r: np.zeros_like(r), discount=0.9)
    for t in range(2):
        a = paths.advantages[t][paths.valid[t] > 0]
        assert abs(a.mean()) < 1e-10 and a.std() == pytest.approx(1.0, abs=1e-6)
    assert (paths.advantages[paths.valid == 0] == 0).all()
    # zero baseline: before centring, the advantage is the discounted return
    np.testing.assert_allclose(paths.returns[1, 0, -1], paths.rewards[1, 0, -1])


# ---- policy -----------------------------------------------------------------------------------
def test_log_likelihood_is_the_gaussian_density():
    rng = np.random.default_rng(0)
    a, mu, ls = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2)), 0.3 * rng.standard_normal((3, 4, 2))
    got = log_likelihood(tm.tensor(a, dtype="float64"), tm.tensor(mu, dtype="float64"),
                         tm.tensor(ls, dtype="float64")).numpy()
    sd = np.exp(ls)
    density = np.prod(np.exp(-0.5 * ((a - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)), axis=-1)
    np.testing.assert_allclose(got, np.log(density), rtol=1e-12)


def test_kl_matches_the_multivariate_formula():
    rng = np.random.default_rng(1)
    m0, m1 = rng.standard_normal(2), rng.standard_normal(2)
    l0, l1 = 0.4 * rng.standard_normal(2), 0.4 * rng.standard_normal(2)
    S0, S1 = np.diag(np.exp(2 * l0)), np.diag(np.exp(2 * l1))
    S1i = np.linalg.inv(S1)
    want = 0.5 * (np.trace(S1i @ S0) + (m1 - m0) @ S1i @ (m1 - m0) - 2 + np.log(np.linalg.det(S1) / np.linalg.det(S0)))
    got = kl_divergence(*(tm.tensor(x, dtype="float64") for x in (m0, l0, m1, l1))).item()
    assert got == pytest.approx(want, rel=1e-12)


def test_policy_shapes_init_and_per_task_log_std():
    pol = GaussianMLPPolicy()
    p = pol.init_params(0, dtype="float64")
    assert pol.sizes == (2, 100, 100, 2) and p["w1"].shape == (100, 2) and p["w3"].shape == (2, 100)
    np.testing.assert_array_equal(p["log_std"].numpy(), [0, 0])   # init std 1
    assert np.abs(p["w2"].numpy()).max() <= math.sqrt(6 / 200)   # Glorot-uniform bound
    fast = {k: v.broadcast_to((3,) + v.shape) for k, v in p.items()}
    mean, log_std = pol.distribution(fast, tm.tensor(np.zeros((3, 4, 5, 2)), dtype="float64"))
    assert mean.shape == (3, 4, 5, 2) and log_std.shape == (3, 1, 1, 2)


# ---- policy gradient --------------------------------------------------------------------------
def test_surrogate_gradient_is_the_reinforce_estimator_by_hand():
    """Linear-Gaussian policy mu = W o + b: grad log pi is known in closed form."""
    rng = np.random.default_rng(3)
    pol = GaussianMLPPolicy(sizes=(2, 2))
    p = _params(pol, seed=3)
    paths = _paths(rng, T=1, N=2, H=4)
    g = tm.grad(surrogate_losses(pol, p, paths).sum(), p)
    W, b, ls = p["w1"].numpy(), p["b1"].numpy(), p["log_std"].numpy()
    o, a = paths.observations[0].reshape(-1, 2), paths.actions[0].reshape(-1, 2)
    adv, valid = paths.advantages[0].reshape(-1), paths.valid[0].reshape(-1)
    z = (a - (o @ W.T + b)) / np.exp(ls)
    dmu = z / np.exp(ls)                        # d log pi / d mu
    coef = -(adv * valid) / valid.sum()         # minus the mean over valid steps
    np.testing.assert_allclose(g["w1"].numpy(), np.einsum("m,mi,mj->ij", coef, dmu, o), rtol=1e-10)
    np.testing.assert_allclose(g["b1"].numpy(), coef @ dmu, rtol=1e-10)
    np.testing.assert_allclose(g["log_std"].numpy(), coef @ (z * z - 1), rtol=1e-10)


def test_batched_inner_step_equals_a_loop_over_tasks():
    rng = np.random.default_rng(4)
    pol = GaussianMLPPolicy(sizes=(2, 6, 5, 2))
    p = _params(pol, seed=4)
    paths = _paths(rng, T=3)
    rates = {k: tm.tensor(np.full(v.shape, 0.1 + 0.1 * i), dtype="float64") for i, (k, v) in enumerate(p.items())}
    fast = adapt(pol, {k: v.broadcast_to((3,) + v.shape) for k, v in p.items()}, paths, rates, create_graph=False)
    for t in range(3):
        one = navigation.Paths(**{f: (getattr(paths, f)[t:t + 1] if getattr(paths, f) is not None else None)
                                  for f in ("goals", "observations", "actions", "rewards", "valid", "means",
                                            "log_stds", "returns", "advantages")})
        g = tm.grad(surrogate_losses(pol, {k: v.broadcast_to((1,) + v.shape) for k, v in p.items()}, one).sum(), p)
        for k in p:
            np.testing.assert_allclose(fast[k].numpy()[t], p[k].numpy() - rates[k].numpy() * g[k].numpy(),
                                       rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("algorithm", ["maml", "meta-sgd"])
def test_meta_gradient_through_one_inner_step_matches_finite_differences(algorithm):
    rng = np.random.default_rng(5)
    learner = MetaRL(GaussianMLPPolicy(sizes=(2, 4, 2)), algorithm=algorithm, fast_lr=0.3)
    p = learner.init_params(5, dtype="float64")
    keys = list(p)
    p = {k: tm.tensor(v.numpy() + 0.1 * rng.standard_normal(v.shape), dtype="float64", requires_grad=True)
         for k, v in p.items()}
    inner, outer = _paths(rng), _paths(rng)

    def loss(*xs):
        params = dict(zip(keys, xs))
        return meta_objective(learner.policy, params, [inner], outer, learner.rates(params))[0]

    assert gradcheck(loss, list(p.values()), atol=1e-7, rtol=1e-6)


def test_first_order_inner_step_would_fail_the_check():
    """The check above can fail: dropping the inner step's graph changes the meta-gradient."""
    rng = np.random.default_rng(6)
    pol = GaussianMLPPolicy(sizes=(2, 4, 2))
    p = _params(pol, seed=6)
    inner, outer = _paths(rng), _paths(rng)
    exact = tm.grad(meta_objective(pol, p, [inner], outer, 0.3)[0], p)

    def first_order(params):
        fast = {k: v.broadcast_to((3,) + v.shape) for k, v in params.items()}
        g = tm.grad(surrogate_losses(pol, fast, inner).sum(), fast)  # constants
        fast = {k: fast[k] - 0.3 * g[k] for k in fast}
        mean, ls = pol.distribution(fast, tm.tensor(outer.observations, dtype="float64"))
        a = tm.tensor(outer.actions, dtype="float64")
        lp_old = log_likelihood(a, tm.tensor(outer.means, dtype="float64"), tm.tensor(outer.log_stds, dtype="float64"))
        r = (log_likelihood(a, mean, ls) - lp_old).exp() * tm.tensor(outer.advantages * outer.valid, dtype="float64")
        return -(r.sum(axis=(1, 2)) / tm.tensor(outer.valid.sum(axis=(1, 2)), dtype="float64")).mean()

    approx = tm.grad(first_order(p), p)
    assert max(np.abs(exact[k].numpy() - approx[k].numpy()).max() for k in p) > 1e-4


# ---- TRPO -------------------------------------------------------------------------------------
def test_conjugate_gradient_solves_an_spd_system():
    rng = np.random.default_rng(7)
    M = rng.standard_normal((6, 6))
    A = M @ M.T + 0.5 * np.eye(6)
    b = rng.standard_normal(6)
    np.testing.assert_allclose(conjugate_gradient(lambda v: A @ v, b, iters=6), np.linalg.solve(A, b), rtol=1e-8)


def test_kl_hessian_vector_product_is_exact_and_equals_the_fisher_product():
    """At the old policy: HVP of the mean KL = finite difference of its gradient = Fisher-vector product."""
    rng = np.random.default_rng(8)
    pol = GaussianMLPPolicy(sizes=(2, 2))
    p = _params(pol, seed=8)
    paths = _paths(rng)
    # the old distribution is the current policy itself, as after sampling
    with tm.no_grad():
        mean, ls = pol.distribution(p, tm.tensor(paths.observations, dtype="float64"))
    paths.means, paths.log_stds = mean.numpy(), np.broadcast_to(ls.numpy(), mean.shape).copy()

    def kl(params):
        return meta_objective(pol, params, [], paths, 0.0)[1]

    assert kl(p).item() == pytest.approx(0.0, abs=1e-14)
    v = rng.standard_normal(flatten(p).size)
    hv = hessian_vector_product(tm.grad(kl(p), p, create_graph=True), p, v)

    x0, eps = flatten(p), 1e-6

    def kl_grad_at(x):
        q = {k: tm.tensor(t.numpy(), dtype="float64", requires_grad=True) for k, t in unflatten(x, p).items()}
        return flatten(tm.grad(kl(q), q))

    fd = (kl_grad_at(x0 + eps * v) - kl_grad_at(x0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-8)

    # Fisher of a linear-Gaussian policy: F v = mean_valid [ J^T diag(1/sigma^2, 2) J v ]
    dv = unflatten(v, p)
    dW, db, dls = (dv[k].numpy() for k in ("w1", "b1", "log_std"))
    o = paths.observations.reshape(-1, 2)
    w = paths.valid.reshape(-1) / paths.valid.sum()
    inv_var = np.exp(-2 * p["log_std"].numpy())
    dmu = (o @ dW.T + db) * inv_var                      # (M, A): M J v for the mean part
    fisher = np.concatenate([np.einsum("m,mi,mj->ij", w, dmu, o).ravel(), w @ dmu, 2 * dls])
    np.testing.assert_allclose(hv, fisher, rtol=1e-10)


def test_trpo_step_on_a_quadratic_is_the_closed_form_natural_step():
    """loss = g.x, KL = x^T A x / 2: the step is -sqrt(2 delta / g^T A^-1 g) A^-1 g (times 0.8^backtracks)."""
    rng = np.random.default_rng(9)
    M = rng.standard_normal((3, 3))
    A = M @ M.T + np.eye(3)
    gvec = rng.standard_normal(3)
    x = {"x": tm.tensor(np.zeros(3), dtype="float64", requires_grad=True)}
    At, gt = tm.tensor(A, dtype="float64"), tm.tensor(gvec, dtype="float64")

    def objective(p):
        return (p["x"] * gt).sum(), 0.5 * (p["x"] * (At @ p["x"])).sum()

    info = trpo_step(x, objective, max_kl=0.05, cg_iters=3, reg_coeff=0.0)
    d = np.linalg.solve(A, gvec)
    want = -math.sqrt(2 * 0.05 / (gvec @ d)) * d * 0.8 ** info["backtracks"]
    assert info["accepted"] and info["kl"] <= 0.05
    np.testing.assert_allclose(x["x"].numpy(), want, rtol=1e-6)


def test_trpo_rejects_a_step_that_cannot_improve():
    """loss = -x + 1e4 x^2 improves only for 0 < x < 1e-4; even 0.8^14 of the KL-sized step overshoots."""
    x = {"x": tm.tensor(np.zeros(1), dtype="float64", requires_grad=True)}

    def objective(p):
        return (1e4 * p["x"] * p["x"] - p["x"]).sum(), 0.5 * (p["x"] * p["x"]).sum()

    info = trpo_step(x, objective, max_kl=0.01, reg_coeff=0.0)
    assert not info["accepted"] and info["backtracks"] == 14
    np.testing.assert_array_equal(x["x"].numpy(), [0.0])


# ---- the training loop ------------------------------------------------------------------------
def test_iteration_improves_meta_objective_and_respects_kl():
    learner = MetaRL(GaussianMLPPolicy(sizes=(2, 8, 2)), meta_batch=3, fast_batch=3, horizon=10)
    p = learner.init_params(0, dtype="float64")
    before = flatten(p)
    info = learner.iteration(p, np.random.default_rng(0))
    assert info["accepted"] and info["loss_after"] < info["loss_before"] and 0 < info["kl"] <= 0.01
    assert not np.array_equal(flatten(p), before)


TINY = dict(meta_batch=2, fast_batch=2, horizon=8, hidden=(6,), dtype="float64", eval_tasks=4, eval_trajectories=2)


def _config(**changes):
    from tinymeta.experiment.rl import RLConfig
    return RLConfig().replace(**{**TINY, **changes})


def test_run_trains_evaluates_and_resumes_exactly(tmp_path):
    from tinymeta.experiment.checkpoint import load_checkpoint
    from tinymeta.experiment.rl import train
    quiet = {"progress": False, "echo": lambda *a: None}
    train(_config(algorithm="pretrained", iterations=2), tmp_path / "pre", **quiet)
    straight = train(_config(iterations=3), tmp_path / "a", evaluate_at_end=False, **quiet)
    assert straight == {"status": "finished", "iteration": 3}
    assert train(_config(iterations=3), tmp_path / "b", stop_at=2, **quiet)["status"] == "stopped"
    resumed = train(_config(iterations=3, pretrained=str(tmp_path / "pre")), tmp_path / "b", resume=True, **quiet)
    pa = load_checkpoint(tmp_path / "a" / "checkpoint.npz").params
    pb = load_checkpoint(tmp_path / "b" / "checkpoint.npz").params
    for k in pa:
        np.testing.assert_array_equal(pa[k].numpy(), pb[k].numpy())
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert res == resumed["results"]
    assert res["iterations_done"] == 3 and set(res["average_return"]) == {"meta-learned", "random", "pretrained"}
    assert len(res["average_return"]["random"]["mean"]) == 4  # after 0, 1, 2, 3 steps
    assert (tmp_path / "b" / "returns.png").exists() and (tmp_path / "b" / "trajectories.png").exists()
    assert [json.loads(r)["iteration"] for r in (tmp_path / "b" / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert json.loads((tmp_path / "b" / "status.json").read_text())["status"] == "finished"


def test_run_refuses_to_resume_with_other_settings(tmp_path):
    from tinymeta.experiment.rl import train
    quiet = {"progress": False, "echo": lambda *a: None, "evaluate_at_end": False}
    train(_config(iterations=1), tmp_path / "c", **quiet)
    with pytest.raises(ValueError, match="another configuration(.|\n)*fast_lr"):
        train(_config(iterations=2, fast_lr=0.1), tmp_path / "c", resume=True, **quiet)
    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(iterations=2), tmp_path / "c", **quiet)


def test_the_old_command_keeps_its_flags_and_presets():
    from tinymeta.experiment.rl import config_from_args, parse_args
    a = parse_args(["--preset", "nav2d-maml", "--logdir", "x"])
    assert (a.meta_batch, a.fast_batch, a.fast_lr, a.max_kl, a.hidden, a.iterations) == (40, 20, 0.5, 0.01,
                                                                                          [100, 100], 100)
    assert parse_args(["--preset", "nav2d-smoke", "--logdir", "x", "--meta-batch", "3"]).meta_batch == 3
    cfg = config_from_args(parse_args(["--preset", "nav2d-meta-sgd", "--logdir", "x", "--fast-lr", "0.1"]))
    assert (cfg.algorithm, cfg.fast_lr, cfg.hidden) == ("meta-sgd", 0.1, (100, 100))


def test_a_checkpoint_of_the_first_runs_resumes(tmp_path):
    """Runs made before config.json (results/runs/rl-nav2d-meta-sgd) keep their configuration in the checkpoint."""
    import shutil

    from tinymeta.experiment.rl import RLConfig, read_config
    committed = Path(__file__).resolve().parents[1] / "results" / "runs" / "rl-nav2d-meta-sgd"
    shutil.copy(committed / "checkpoint.npz", tmp_path / "checkpoint.npz")
    assert read_config(tmp_path) == RLConfig(algorithm="meta-sgd")
