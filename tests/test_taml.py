"""TAML (Jamal & Qi 2019): each entropy and inequality measure by hand, the meta-loss as MAML's plus the
regulariser, its meta-gradient by central differences, the task axis against a loop, the config and the CLI."""
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import ALGORITHMS, TAML, Objective, maml_meta_loss, per_task, taml_meta_loss
from tinymeta.algorithms.maml import maml_inner_loop
from tinymeta.algorithms.taml import (atkinson, entropy, generalized_entropy, gini, inequality, parse_measure, theil,
                                      variance_of_logarithms)
from tinymeta.experiment import PRESETS
from tinymeta.experiment.presets import preset_source
from tinymeta.nn import MLP, ConvNet
from tinymeta.optim import Adam
from tinymeta.tasks import MetaBatch, Sinusoid
from tinymeta.testing import GradcheckError, gradcheck, gradgradcheck

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT_DIR = Path(os.environ.get("TINYMETA_TEST_OMNIGLOT", REPO.parent / "shared" / "data" / "omniglot"))
CLS, REG = Objective("classification"), Objective("regression")
D, WAYS = 4, 3
MEASURES = ["theil", "ge:0", "ge:2", "ge:0.5", "atkinson:0.5", "atkinson:1", "atkinson:2", "gini", "variance-of-logs"]


def t64(values):
    return tm.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


# ---- the measures, by hand ------------------------------------------------------------------------
def test_theil_index_by_hand():
    assert theil(t64([1.0, 1.0, 1.0])).item() == 0.0
    # mean 2, shares r = [1/2, 1, 3/2]: (1/3)(1/2 ln 1/2 + 0 + 3/2 ln 3/2) = 0.0872080...
    hand = (0.5 * math.log(0.5) + 1.5 * math.log(1.5)) / 3
    assert math.isclose(hand, 0.0872080239607580, rel_tol=1e-12)
    assert math.isclose(theil(t64([1.0, 2.0, 3.0])).item(), hand, rel_tol=1e-14)
    assert math.isclose(theil(t64([0.0, 2.0])).item(), math.log(2.0), rel_tol=1e-14)  # 0 ln 0 = 0: ln M, its maximum


def test_generalized_entropy_by_hand():
    losses = [1.0, 2.0, 3.0]
    # GE(2) = half the squared coefficient of variation: (2/3) / 2^2 / 2 = 1/12
    assert math.isclose(generalized_entropy(t64(losses), 2).item(), 1 / 12, rel_tol=1e-14)
    # GE(0) = mean log deviation: -(1/3)(ln 1/2 + ln 1 + ln 3/2)
    assert math.isclose(generalized_entropy(t64(losses), 0).item(), -(math.log(0.5) + math.log(1.5)) / 3,
                        rel_tol=1e-14)
    assert generalized_entropy(t64(losses), 1).item() == theil(t64(losses)).item()
    # GE(alpha) tends to Theil as alpha -> 1 (the alpha != 0, 1 branch, checked against its limit)
    assert math.isclose(generalized_entropy(t64(losses), 1 + 1e-7).item(), theil(t64(losses)).item(), rel_tol=1e-6)


def test_atkinson_index_by_hand():
    losses = [1.0, 4.0]                                                   # mean 2.5
    assert math.isclose(atkinson(t64(losses), 0.5).item(), 1 - ((1 + 2) / 2) ** 2 / 2.5, rel_tol=1e-14)   # 0.1
    assert math.isclose(atkinson(t64(losses), 1).item(), 1 - 2 / 2.5, rel_tol=1e-14)                     # geometric
    assert math.isclose(atkinson(t64(losses), 2).item(), 1 - 1.6 / 2.5, rel_tol=1e-14)                   # harmonic
    assert abs(atkinson(t64(losses), 0).item()) < 1e-15                  # epsilon 0: no aversion, always 0


def test_gini_and_variance_of_logarithms_by_hand():
    # sum_ij |l_i - l_j| = 2 (1 + 2 + 1) = 8, over 2 M sum l = 2 * 3 * 6
    assert math.isclose(gini(t64([1.0, 2.0, 3.0])).item(), 8 / 36, rel_tol=1e-14)
    assert math.isclose(gini(t64([0.0, 0.0, 0.0, 1.0])).item(), 0.75, rel_tol=1e-14)   # (M - 1) / M: one holds all
    # ln l = [0, 1, 2]: population variance 2/3
    assert math.isclose(variance_of_logarithms(t64([1.0, math.e, math.e ** 2])).item(), 2 / 3, rel_tol=1e-14)


@pytest.mark.parametrize("measure", MEASURES)
def test_every_measure_is_zero_for_equal_losses_and_scale_invariant(measure):
    assert abs(inequality(t64([0.7] * 4), measure).item()) < 1e-15
    losses = np.array([0.3, 1.2, 0.8, 2.5])
    a, b = inequality(t64(losses), measure).item(), inequality(t64(7.0 * losses), measure).item()
    assert a > 1e-3 and math.isclose(a, b, rel_tol=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
def test_every_measure_has_exact_first_and_second_derivatives(measure):
    losses = t64(np.random.default_rng(1).uniform(0.2, 2.0, 5))
    f = lambda x: inequality(x, measure)  # noqa: E731
    assert gradcheck(f, [losses]) and gradgradcheck(f, [losses])


def test_entropy_of_predictions_by_hand():
    # task 0: uniform over 3 classes (ln 3); task 1: p = [1/4, 3/4, 0+] and uniform, averaged over its 2 examples
    logits = np.array([[[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]],
                       [[0.0, math.log(3.0), -800.0], [1.0, 1.0, 1.0]]])
    h = entropy(tm.tensor(logits)).numpy()
    h_quarter = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))       # 0.5623351...
    np.testing.assert_allclose(h, [math.log(3.0), (h_quarter + math.log(3.0)) / 2], rtol=1e-14)
    x = tm.tensor(np.random.default_rng(2).normal(size=(2, 3, 4)), requires_grad=True)
    assert gradcheck(entropy, [x]) and gradgradcheck(entropy, [x])


@pytest.mark.parametrize("text, fragment", [("foo", "one of"), ("ge", "alpha"), ("ge:x", "alpha"),
                                            ("atkinson:-1", ">= 0"), ("gini:2", "no parameter"), ("ge:nan", "finite"),
                                            (None, "one of")])
def test_a_bad_measure_is_refused_by_name(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_measure(text)
    assert parse_measure("ge:2") == ("ge", 2.0) and parse_measure("entropy") == ("entropy", None)
    with pytest.raises(ValueError, match="not an inequality"):
        inequality(t64([1.0, 2.0]), "entropy")


# ---- the meta-loss ----------------------------------------------------------------------------------
def problem(seed=0, T=3, shots=2, queries=2, hidden=(5,)):
    """A tiny float64 classifier D -> hidden -> WAYS and T tasks."""
    rng = np.random.default_rng(seed)
    model = MLP((D, *hidden, WAYS))
    params = {k: tm.tensor(rng.normal(size=v.shape), requires_grad=True)
              for k, v in model.init_params(0, dtype="float64").items()}
    xs, xq = rng.normal(size=(T, WAYS * shots, D)), rng.normal(size=(T, WAYS * queries, D))
    ys = np.stack([rng.permutation(np.repeat(np.arange(WAYS), shots)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(WAYS), queries)) for _ in range(T)])
    return model, params, MetaBatch(tm.tensor(xs), tm.tensor(ys), tm.tensor(xq), tm.tensor(yq))


def np_entropy(logits):
    z = logits - logits.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return -(p * np.log(p)).sum(-1).mean(-1)


@pytest.mark.parametrize("measure", ["entropy", "theil", "gini"])
@pytest.mark.parametrize("steps", [0, 1, 2])
def test_lambda_zero_is_maml_exactly(measure, steps):
    model, params, batch = problem(seed=1)
    loss, metrics = taml_meta_loss(model, CLS, params, batch, 0.4, steps, 0.0, measure)
    ref, ref_metrics = maml_meta_loss(model, CLS, params, batch, 0.4, steps)
    assert loss.item() == ref.item()
    g, h = tm.grad(loss, params), tm.grad(ref, params)
    for k in params:
        np.testing.assert_array_equal(g[k].numpy(), h[k].numpy())
    assert all(metrics[k].item() == ref_metrics[k].item() for k in ref_metrics)


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_entropy_meta_loss_is_mamls_plus_lambda_times_the_entropy_change_in_numpy(steps):
    model, params, batch = problem(seed=2)
    lam = 0.7
    loss, metrics = taml_meta_loss(model, CLS, params, batch, 0.4, steps, lam, "entropy")
    maml, _ = maml_meta_loss(model, CLS, params, batch, 0.4, steps)
    before = model(per_task(params, batch.num_tasks), batch.x_support).numpy()          # theta on the support sets
    fast = maml_inner_loop(model, CLS, params, batch.support, 0.4, steps)
    after = model(fast, batch.x_query).numpy()                                          # theta_i on the query sets
    hand = maml.item() + lam * np.mean(np_entropy(after) - np_entropy(before))
    assert math.isclose(loss.item(), hand, rel_tol=1e-13)
    assert math.isclose(metrics["entropy_before"].item(), np_entropy(before).mean(), rel_tol=1e-13)
    assert math.isclose(metrics["entropy_after"].item(), np_entropy(after).mean(), rel_tol=1e-13)
    # not the brief's misreading, -H_before + (H_after - H_before): H_before counted twice
    assert not math.isclose(loss.item(), hand - lam * np.mean(np_entropy(before)), rel_tol=1e-6)


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_theil_meta_loss_is_mamls_plus_lambda_times_the_theil_index_of_the_initial_support_losses(steps):
    model, params, batch = problem(seed=3)
    lam = 2.5
    loss, metrics = taml_meta_loss(model, CLS, params, batch, 0.4, steps, lam, "theil")
    maml, _ = maml_meta_loss(model, CLS, params, batch, 0.4, steps)
    logits = model(per_task(params, batch.num_tasks), batch.x_support).numpy()
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ys = batch.y_support.numpy()
    l = -np.take_along_axis(log_p, ys[..., None], -1)[..., 0].mean(-1)                  # (T,) CE of theta per task
    r = l / l.mean()
    hand_theil = np.mean(r * np.log(r))
    assert math.isclose(loss.item(), maml.item() + lam * hand_theil, rel_tol=1e-13)
    assert math.isclose(metrics["inequality"].item(), hand_theil, rel_tol=1e-12) and hand_theil > 1e-4


@pytest.mark.parametrize("measure", ["entropy", "theil", "atkinson:0.5"])
@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_central_differences_only_when_second_order(measure, first_order):
    model, params, batch = problem(seed=4, hidden=(5,))
    keys = list(params)

    def meta_loss(*ps):  # finite differences run under no_grad, but the inner loop differentiates theta
        with tm.enable_grad():
            ps = [p if p.requires_grad else p.detach().requires_grad_() for p in ps]
            return taml_meta_loss(model, CLS, dict(zip(keys, ps)), batch, 0.5, 2, 0.8, measure, first_order)[0]

    if first_order:  # the Hessian terms through the two inner steps are missing
        with pytest.raises(GradcheckError):
            gradcheck(meta_loss, [params[k] for k in keys])
    else:
        assert gradcheck(meta_loss, [params[k] for k in keys])


def test_the_regularisers_gradient_is_exact_even_first_order():
    """lambda's term is a function of theta alone (the before-terms) or of the recorded theta_i: with
    first_order=True only the inner step's Hessian is dropped, so an inequality over theta's support
    losses keeps its whole gradient: TAML(FO) - MAML(FO) = lambda grad I."""
    model, params, batch = problem(seed=5)
    g = tm.grad(taml_meta_loss(model, CLS, params, batch, 0.5, 1, 1.5, "gini", first_order=True)[0], params)
    h = tm.grad(maml_meta_loss(model, CLS, params, batch, 0.5, 1, first_order=True)[0], params)
    keys = list(params)

    def reg(*ps):
        return gini(CLS.losses(model(per_task(dict(zip(keys, ps)), batch.num_tasks), batch.x_support),
                               batch.y_support))

    r = tm.grad(reg(*[params[k] for k in keys]), params)
    for k in params:
        np.testing.assert_allclose(g[k].numpy() - h[k].numpy(), 1.5 * r[k].numpy(), rtol=1e-10, atol=1e-13)


def conv_problem(seed, T=4, ways=3, shots=1, queries=2):
    rng = np.random.default_rng(seed)
    model = ConvNet(n_way=ways, filters=4, blocks=2, image_size=8)
    params = model.init_params(rng, dtype="float64")
    xs, xq = rng.normal(size=(T, ways * shots, 1, 8, 8)), rng.normal(size=(T, ways * queries, 1, 8, 8))
    ys = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(ways), queries)) for _ in range(T)])
    return model, params, MetaBatch(tm.tensor(xs), tm.tensor(ys), tm.tensor(xq), tm.tensor(yq))


def test_entropy_variant_batched_equals_the_mean_of_a_per_task_loop():
    model, params, batch = conv_problem(6)
    algo = TAML(model, CLS, inner_lr=0.4, inner_steps=2, lam=0.9, measure="entropy")
    grads, metrics = algo.meta_gradient(params, batch)
    loop, losses = {k: 0.0 for k in params}, []
    for t in range(batch.num_tasks):
        g, m = algo.meta_gradient(params, batch.task(t))
        losses.append(algo.meta_loss(params, batch.task(t))[0].item())
        for k in params:
            loop[k] = loop[k] + g[k].numpy() / batch.num_tasks
    assert math.isclose(algo.meta_loss(params, batch)[0].item(), np.mean(losses), rel_tol=1e-12)
    for k in params:
        if k.startswith("conv") and k.endswith("_b"):  # before batch norm: zero up to rounding (test_algorithms)
            continue
        np.testing.assert_allclose(grads[k].numpy(), loop[k], rtol=1e-9, atol=1e-13)


def test_inequality_variant_batched_equals_a_per_task_loop_joined_by_the_measure():
    """The inequality couples the tasks: the loop computes each task's MAML query loss and initial support
    loss on its own (batch norm with that task's statistics only), then joins them by the measure."""
    model, params, batch = conv_problem(7)
    lam, measure = 1.3, "theil"
    loss, _ = taml_meta_loss(model, CLS, params, batch, 0.4, 2, lam, measure)
    grads = tm.grad(loss, params)
    query, support = [], []
    for t in range(batch.num_tasks):
        one = batch.task(t)
        query.append(maml_meta_loss(model, CLS, params, one, 0.4, 2)[0])
        support.append(CLS.losses(model(per_task(params, 1), one.x_support), one.y_support).sum())
    ref = tm.stack(query).mean() + lam * inequality(tm.stack(support), measure)
    assert math.isclose(loss.item(), ref.item(), rel_tol=1e-12)
    ref_grads = tm.grad(ref, params)
    for k in params:
        if k.startswith("conv") and k.endswith("_b"):
            continue
        np.testing.assert_allclose(grads[k].numpy(), ref_grads[k].numpy(), rtol=1e-9, atol=1e-13)


# ---- the class, the config, the presets ---------------------------------------------------------------
def test_built_from_a_config_and_refusing_what_it_cannot_do():
    cfg = SimpleNamespace(algorithm="taml", inner_lr=0.3, inner_steps=2, first_order=True, adapt_norm=False,
                          transductive=False, taml_lambda=0.25, taml_measure="atkinson:0.5")
    algo = ALGORITHMS["taml"].from_config(MLP((1, 4, 1)), REG, cfg)
    assert type(algo) is TAML and (algo.lam, algo.measure, algo.inner_lr, algo.first_order) == (0.25, "atkinson:0.5",
                                                                                               0.3, True)
    assert algo.adapt_norm is False and algo.transductive is False and "atkinson:0.5" in repr(algo)
    with pytest.raises(ValueError, match="classification"):
        TAML(MLP((1, 4, 1)), REG, measure="entropy")
    with pytest.raises(ValueError, match="lambda"):
        TAML(MLP((1, 4, 1)), REG, lam=-1.0)
    with pytest.raises(ValueError, match="one of"):
        TAML(MLP((1, 4, 1)), REG, measure="median")


def test_config_fields_are_validated_and_change_no_other_preset():
    entropy_cell, theil_cell = PRESETS["taml-entropy-omniglot-5w1s"], PRESETS["taml-theil-omniglot-5w1s"]
    maml = PRESETS["maml-omniglot-5w1s"]
    assert (entropy_cell.taml_measure, theil_cell.taml_measure) == ("entropy", "theil")
    for cell in (entropy_cell, theil_cell):       # MAML's protocol, the algorithm and its two settings apart
        assert cell.replace(algorithm="maml", taml_measure=maml.taml_measure, taml_lambda=maml.taml_lambda) == maml
        cell.validate()
    assert PRESETS["taml-sine-10shot"].replace(algorithm="maml") == PRESETS["maml-sine-10shot"].replace(
        taml_measure="theil", taml_lambda=1.0)
    with pytest.raises(ValueError, match=r"taml_lambda \(--taml-lambda\) must be a finite number >= 0"):
        theil_cell.replace(taml_lambda=-0.5).validate()
    with pytest.raises(ValueError, match=r"taml_measure \(--taml-measure\).*one of"):
        theil_cell.replace(taml_measure="median").validate()
    with pytest.raises(ValueError, match="needs a classification dataset"):
        PRESETS["taml-sine-5shot"].replace(taml_measure="entropy").validate()
    protocols = (REPO / "PROTOCOLS.md").read_text()
    assert "`taml-entropy-omniglot-5w1s`" in protocols and "`taml-theil-omniglot-5w1s`" in protocols
    source = preset_source("taml-entropy-omniglot-5w1s")
    assert "1805.07722" in source["paper"] and source["paper_value"] is None   # the paper's table was not read
    assert "Sec. 3.1" in source["settings"]["taml_measure"] and "main.py:249" in source["settings"]["queries"]


def test_a_tiny_sine_run_learns_to_adapt():
    rng = np.random.default_rng(0)
    family = Sinusoid(10, 10, dtype="float64")
    model = MLP((1, 40, 40, 1))
    params = model.init_params(0, dtype="float64")
    algo = TAML(model, REG, inner_lr=0.01, inner_steps=1, lam=1.0, measure="theil")
    fixed = family.sample(50, np.random.default_rng(123))
    start = algo.evaluate(params, fixed, steps=1)["loss"].mean(axis=1)
    opt = Adam(params, lr=1e-2)
    for _ in range(300):
        grads, metrics = algo.meta_gradient(params, family.sample(10, rng))
        opt.step(grads)
    assert "inequality" in metrics
    end = algo.evaluate(params, fixed, steps=1)["loss"].mean(axis=1)
    # seen: 4.10 -> 2.18 after one inner step, and that step takes 3.23 to 2.18
    assert end[1] < 0.6 * start[1] and end[1] < 0.8 * end[0]


# ---- the command line, as a user types it ---------------------------------------------------------------
def tinymeta(*argv):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "tinymeta", *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_presets_lists_the_taml_presets():
    proc = tinymeta("presets")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    for name in ("taml-entropy-omniglot-5w1s", "taml-theil-omniglot-5w1s", "taml-sine-5shot", "taml-sine-10shot",
                 "taml-sine-20shot"):
        assert name in names


def test_train_a_taml_sine_preset_for_three_iterations(tmp_path):
    proc = tinymeta("train", "--preset", "taml-sine-10shot", "--iterations", "3", "--meta-batch", "3",
                    "--log-interval", "1", "--val-interval", "0", "--test-tasks", "4", "--eval-inner-steps", "1",
                    "--logdir", tmp_path / "run", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "checkpoint.npz").is_file()


@pytest.mark.skipif(not (OMNIGLOT_DIR / "images_background.zip").is_file(), reason="real Omniglot not found")
@pytest.mark.parametrize("measure", ["entropy", "theil"])
def test_train_a_taml_omniglot_preset_for_three_iterations(tmp_path, measure):
    proc = tinymeta("train", "--preset", f"taml-{measure}-omniglot-5w1s", "--iterations", "3", "--meta-batch", "2",
                    "--filters", "4", "--log-interval", "1", "--val-interval", "0", "--test-tasks", "2",
                    "--eval-inner-steps", "1", "--data-dir", OMNIGLOT_DIR, "--logdir", tmp_path / "run",
                    "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "checkpoint.npz").is_file()


@pytest.mark.parametrize("argv, fragment", [
    (["--preset", "taml-sine-5shot", "--taml-measure", "median"], "--taml-measure"),
    (["--preset", "taml-sine-5shot", "--taml-measure", "entropy"], "needs a classification dataset"),
    (["--preset", "taml-sine-5shot", "--taml-lambda", "-1"], "--taml-lambda"),
    (["--preset", "maml-sine-5shot", "--taml-lambda", "0.5"], "applies to TAML only"),
])
def test_bad_taml_settings_are_one_error_line(tmp_path, argv, fragment):
    proc = tinymeta("train", *argv, "--logdir", tmp_path / "run", "--no-progress")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("tinymeta train: error:") and fragment in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()
