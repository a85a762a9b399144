"""ADML: FGSM by hand, the meta-loss as MAML's two cross terms, the meta-gradient by finite differences,
and the evaluation under attack."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import (ADML, MAML, Objective, adml_meta_loss, evaluate_under_attack, fgsm, maml_meta_loss,
                                 per_task)
from tinymeta.experiment import PRESETS
from tinymeta.nn import MLP
from tinymeta.tasks import MetaBatch
from tinymeta.testing import gradcheck

CLS = Objective("classification")
D, WAYS = 4, 3


def problem(seed=0, T=2, shots=2, queries=2, hidden=()):
    """A tiny float64 classifier D -> [hidden] -> WAYS and T tasks of images-like inputs in [0, 1]."""
    rng = np.random.default_rng(seed)
    model = MLP((D, *hidden, WAYS))
    params = {k: tm.tensor(rng.normal(size=v.shape), requires_grad=True)
              for k, v in model.init_params(0, dtype="float64").items()}
    xs, xq = rng.uniform(0, 1, (T, WAYS * shots, D)), rng.uniform(0, 1, (T, WAYS * queries, D))
    ys = np.stack([rng.permutation(np.repeat(np.arange(WAYS), shots)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(WAYS), queries)) for _ in range(T)])
    return model, params, MetaBatch(tm.tensor(xs), tm.tensor(ys), tm.tensor(xq), tm.tensor(yq))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_fgsm_is_epsilon_times_the_sign_of_the_input_gradient_clipped_to_the_image_range():
    model, params, batch = problem(seed=1)
    x, y = batch.x_support.numpy(), batch.y_support.numpy()
    x[0, 0, 0], x[1, 1, 2] = 0.99, 0.01                          # near the edges: the clip must act
    W, b = params["w1"].numpy(), params["b1"].numpy()
    # d/dx_n mean_n CE(W x_n + b, y_n) = (softmax(z_n) - onehot(y_n)) W / N  (linear logits z = W x + b)
    g = (softmax(x @ W.T + b) - np.eye(WAYS)[y]) @ W / x.shape[1]
    eps = 0.05
    expected = np.clip(x + eps * np.sign(g), 0, 1)
    got = fgsm(model, CLS, per_task(params, 2), tm.tensor(x), batch.y_support, eps)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-15)
    assert not got.requires_grad                                  # a constant input
    assert got.numpy()[0, 0, 0] in (1.0, 0.94) and got.numpy()[1, 1, 2] in (0.0, 0.06)
    np.testing.assert_array_equal(fgsm(model, CLS, params, tm.tensor(x), batch.y_support, 0.0).numpy(), x)


@pytest.mark.parametrize("steps", [1, 2])
def test_meta_loss_is_the_sum_of_the_two_cross_terms_made_with_mamls_function(steps):
    model, params, batch = problem(seed=2, hidden=(6,))
    eps, alpha = 0.1, 0.3
    loss, metrics = adml_meta_loss(model, CLS, params, batch, alpha, steps, eps)
    theta = per_task(params, batch.num_tasks)
    xs_adv = fgsm(model, CLS, theta, batch.x_support, batch.y_support, eps)
    xq_adv = fgsm(model, CLS, theta, batch.x_query, batch.y_query, eps)
    clean_on_adv, _ = maml_meta_loss(model, CLS, params, MetaBatch(batch.x_support, batch.y_support, xq_adv,
                                                                   batch.y_query), alpha, steps)
    adv_on_clean, _ = maml_meta_loss(model, CLS, params, MetaBatch(xs_adv, batch.y_support, batch.x_query,
                                                                   batch.y_query), alpha, steps)
    hand = clean_on_adv + adv_on_clean
    assert np.isclose(loss.item(), hand.item(), rtol=1e-13)
    assert np.isclose(metrics["loss_clean_adapted_adv_query"].item(), clean_on_adv.item(), rtol=1e-13)
    assert list(metrics)[0] == "query_loss"
    g, h = tm.grad(loss, params), tm.grad(hand, params)
    for k in params:
        np.testing.assert_allclose(g[k].numpy(), h[k].numpy(), rtol=1e-12, atol=1e-14)
    # not the uncrossed pairing (clean-adapted on clean queries, adversarial-adapted on adversarial ones)
    same, _ = maml_meta_loss(model, CLS, params, batch, alpha, steps)
    same_adv, _ = maml_meta_loss(model, CLS, params, MetaBatch(xs_adv, batch.y_support, xq_adv, batch.y_query),
                                 alpha, steps)
    assert not np.isclose(loss.item(), (same + same_adv).item(), rtol=1e-6)


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_finite_differences_when_second_order(first_order):
    model, params, batch = problem(seed=3, hidden=(5,))
    keys = list(params)

    def meta_loss(*ps):  # finite differences run under no_grad, but the inner loop differentiates theta
        with tm.enable_grad():
            ps = [p if p.requires_grad else p.detach().requires_grad_() for p in ps]
            return adml_meta_loss(model, CLS, dict(zip(keys, ps)), batch, 0.4, 1, 0.05, first_order)[0]

    if first_order:
        with pytest.raises(tm.testing.GradcheckError):
            gradcheck(meta_loss, [params[k] for k in keys])
    else:
        assert gradcheck(meta_loss, [params[k] for k in keys])


def test_evaluation_attacks_the_adapted_model():
    model, params, batch = problem(seed=4, T=3, queries=3)
    algo = MAML(model, CLS, inner_lr=0.5)
    ev = evaluate_under_attack(algo, params, batch, steps=2, epsilon=0.1)
    assert set(ev) == {"loss", "accuracy", "attacked_loss", "attacked_accuracy"}
    assert all(v.shape == (3, 3) for v in ev.values())
    np.testing.assert_allclose(ev["loss"], algo.evaluate(params, batch, steps=2)["loss"], rtol=1e-12)
    # logits linear in x: CE is convex in x, so an FGSM step raises every task's loss (away from the clip)
    assert (ev["attacked_loss"] > ev["loss"]).all()
    fast = list(algo.adapt(params, batch, 1))[1]
    x_adv = fgsm(model, CLS, fast, batch.x_query, batch.y_query, 0.1)           # against the adapted weights
    np.testing.assert_allclose(ev["attacked_loss"][1], CLS.losses(model(fast, x_adv), batch.y_query).numpy(),
                               rtol=1e-12)
    zero = evaluate_under_attack(algo, params, batch, steps=1, epsilon=0.0)
    np.testing.assert_array_equal(zero["attacked_loss"], zero["loss"])
    adml = ADML(model, CLS, inner_lr=0.5, epsilon=0.1).evaluate(params, batch, steps=2)
    np.testing.assert_allclose(adml["attacked_loss"], ev["attacked_loss"], rtol=1e-12)


def test_preset_is_mamls_omniglot_protocol_plus_the_epsilon():
    adml, maml = PRESETS["adml-omniglot-5w1s"], PRESETS["maml-omniglot-5w1s"]
    assert adml.algorithm == "adml" and adml.adv_epsilon == 0.2
    assert adml.replace(algorithm="maml", adv_epsilon=maml.adv_epsilon) == maml
    with pytest.raises(ValueError, match="adv_epsilon"):
        adml.replace(adv_epsilon=-0.1).validate()
    with pytest.raises(ValueError, match="classification"):
        PRESETS["maml-sine-10shot"].replace(algorithm="adml").validate()
    with pytest.raises(ValueError, match="epsilon"):
        ADML(MLP((2, 2)), CLS, epsilon=-1.0)
