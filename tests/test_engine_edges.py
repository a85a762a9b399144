"""Edge inputs of the engine, each once wrong or unclear (issues 25 and 31), pinned without PyTorch:
numbers from PyTorch 2.13 in float64 where it has the op."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F

from conftest import t64


# ---- wrong results ------------------------------------------------------------------------------------
def test_cosine_similarity_broadcasts_an_operand_along_dim_before_its_norm():
    # PyTorch: 0.9258 ([1, 2, 3] against [1, 1, 1]); the norm of [1] alone gave 1.6036, a cosine above 1
    got = F.cosine_similarity(tm.tensor([[1.0, 2.0, 3.0]]), tm.tensor([1.0]))
    np.testing.assert_allclose(got.numpy(), [6 / np.sqrt(14 * 3)], rtol=1e-6)
    a, b = t64(np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]])), t64(np.array([[3.0], [-2.0]]))
    full = F.cosine_similarity(a, tm.broadcast_to(b, (2, 3)), dim=1)
    np.testing.assert_allclose(F.cosine_similarity(a, b, dim=1).numpy(), full.numpy(), rtol=1e-14)
    np.testing.assert_allclose(F.cosine_similarity(b, a, dim=-1).numpy(), full.numpy(), rtol=1e-14)



def test_pairwise_cosine_similarity_is_the_broadcast_cosine_of_every_pair_of_rows():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    b[1, 2] = 0.0                                     # a row of zeros: cosine 0, as the broadcast form gives
    got = F.pairwise_cosine_similarity(t64(a), t64(b)).numpy()
    by_hand = np.einsum("tpd,trd->tpr", a, b) / np.maximum(
        np.linalg.norm(a, axis=-1)[:, :, None] * np.linalg.norm(b, axis=-1)[:, None, :], 1e-8)
    np.testing.assert_allclose(got, by_hand, rtol=1e-13, atol=1e-15)
    broadcast = F.cosine_similarity(t64(a[:, :, None, :]), t64(b[:, None, :, :]), dim=-1).numpy()
    np.testing.assert_allclose(got, broadcast, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"rows \(\.\.\., P, D\) and \(\.\.\., R, D\) of one length D"):
        F.pairwise_cosine_similarity(t64(a), t64(b[..., :3]))


def test_batch_norm_running_variance_uses_each_tasks_count():
    """The unbiased variance divides by one task's count minus 1 (n = N*H*W per task), not by
    the count over all tasks; the stored statistic is the tasks' mean."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2, 2, 2))  # (T, N, C, H, W)
    mean, var = np.zeros(2), np.ones(2)
    F.batch_norm(tm.tensor(x), mean, var, training=True, momentum=1.0)
    per_task = x.transpose(0, 2, 1, 3, 4).reshape(3, 2, -1)
    np.testing.assert_allclose(mean, per_task.mean(axis=2).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, per_task.var(axis=2, ddof=1).mean(axis=0), rtol=1e-12)
    # (T, N, C) with per-task weights: the case
    x = rng.standard_normal((1, 4, 2))
    mean, var = np.zeros(2), np.ones(2)
    F.batch_norm(tm.tensor(x), mean, var, tm.tensor(np.ones((1, 2))), training=True, momentum=1.0)
    np.testing.assert_allclose(var, x[0].var(axis=0, ddof=1), rtol=1e-12)


# ---- precision --------------------------------------------------------------------------------------------
def test_cross_entropy_of_a_confident_prediction_keeps_its_relative_precision():
    z = tm.tensor(np.array([[1e4, 1e4 - 20.0]]))
    loss = F.cross_entropy(z, tm.tensor(np.array([0]))).item()
    exact = np.log1p(np.exp(-20.0))  # 2.06e-9
    assert abs(loss - exact) <= 1e-7 * exact  # was 1.2e-4: the spacing of floats at 1e4
    np.testing.assert_allclose(loss, -F.log_softmax(z).numpy()[0, 0], rtol=1e-12)


# ---- edge inputs -------------------------------------------------------------------------------------------
def test_batch_norm_refuses_statistics_of_one_value_per_channel():
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(tm.tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match="more than one value per channel and task"):
        F.batch_norm(tm.tensor(np.ones((2, 1, 3, 1, 1))))
    rm, rv = np.zeros(3), np.ones(3)  # with running statistics, one example is fine
    np.testing.assert_allclose(F.batch_norm(tm.tensor(np.ones((1, 3))), rm, rv, training=False).numpy(),
                               np.ones((1, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_max_pool2d_refuses_padding_wider_than_half_the_kernel():
    x = tm.tensor(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="padding must lie between 0 and half the kernel size"):
        F.max_pool2d(x, 2, 1, padding=2)
    assert F.max_pool2d(x, 3, 1, padding=1).shape == (1, 1, 4, 4)


def test_pow_with_a_tensor_exponent_follows_pytorch_at_negative_and_zero_bases():
    base = t64([-1.5, -1.5, 0.0, 0.0, 2.0])
    exponent = t64([2.0, 3.0, 2.0, 0.0, 0.5])
    out = base ** exponent
    np.testing.assert_allclose(out.numpy(), [2.25, -3.375, 0.0, 1.0, np.sqrt(2.0)])
    d_base, d_exponent = tm.grad(out.sum(), [base, exponent])
    np.testing.assert_allclose(d_base.numpy(), [-3.0, 6.75, 0.0, 0.0, 0.5 / np.sqrt(2.0)])
    # d/dy 0 ** y is 0 for y >= 0; for a negative base log(x) is not real: NaN, as PyTorch
    np.testing.assert_allclose(d_exponent.numpy(), [np.nan, np.nan, 0.0, 0.0, np.sqrt(2.0) * np.log(2.0)])
    with np.errstate(invalid="ignore"):
        assert np.isnan((t64([-1.5]) ** t64([0.5])).item())  # not a real number
    assert (tm.tensor(-1.5, dtype="float64") ** tm.tensor(2.0, dtype="float64")).item() == 2.25


def test_second_derivative_of_a_power_at_a_zero_base_is_finite():
    y = t64([0.0, 2.0])
    x = t64([0.0, 0.0])
    (dy,) = tm.grad((x ** y).sum(), [y], create_graph=True)
    (ddy,) = tm.grad(dy.sum(), [y])
    assert np.isfinite(ddy.numpy()).all()


def test_reductions_of_a_0d_tensor_over_axis_0_are_the_tensor_as_in_pytorch():
    x = t64(3.0)
    for reduce in ("sum", "mean", "max", "min"):
        for axis in (0, -1, ()):
            y = getattr(x, reduce)(axis=axis, keepdims=True)
            assert y.shape == () and y.item() == 3.0
    assert tm.grad(x.mean(axis=0, keepdims=True), x).item() == 1.0
    with pytest.raises(ValueError, match=r"axis 1 is out of range for a tensor with 0 dimensions"):
        x.sum(axis=1)


def test_concatenate_of_0d_tensors_says_to_stack():
    with pytest.raises(ValueError, match="0-d tensors have no axis to join along; use stack"):
        tm.concatenate([t64(1.0), t64(2.0)])
    assert tm.stack([t64(1.0), t64(2.0)]).shape == (2,)


def test_max_over_a_non_empty_axis_of_an_empty_tensor_is_empty():
    x = t64(np.zeros((0, 3)))
    assert x.max(axis=1).shape == (0,) and x.min(axis=1).shape == (0,)
    assert tm.grad(x.max(axis=1).sum(), x).shape == (0, 3)
    with pytest.raises(ValueError, match="cannot reduce over axis 0 of shape \\(0, 3\\), which has no elements"):
        x.max(axis=0)


# ---- NumPy's protocols, .numpy(), truth values (issue 25) ----------------------------------------------------
def test_numpy_ufuncs_on_a_tensor_are_tinymeta_ops():
    x = t64([0.5, 1.0, 2.0])
    y = np.sin(x) * x  # was a plain array without the cos term
    assert isinstance(y, tm.Tensor)
    np.testing.assert_allclose(tm.grad(y.sum(), x).numpy(), np.cos(x.numpy()) * x.numpy() + np.sin(x.numpy()))
    for fn in (np.exp, np.log, np.sqrt, np.tanh, np.cos, np.abs, np.negative):
        assert isinstance(fn(x), tm.Tensor) and fn(x).requires_grad
    assert isinstance(np.ones(3) + x, tm.Tensor) and isinstance(np.ones(3) @ x, tm.Tensor)
    assert isinstance(np.maximum(x, 1.0), tm.Tensor) and isinstance(np.power(x, x), tm.Tensor)


def test_numpy_functions_on_a_tensor_are_tinymeta_ops():
    x = t64([[0.5, 1.0], [2.0, 3.0]])
    for y in (np.sum(x), np.mean(x, axis=0), np.max(x, 1), np.concatenate([x, x]), np.stack([x, x]),
              np.where(x.numpy() > 1, x, 0.0), np.reshape(x, (4,)), np.transpose(x), np.var(x)):
        assert isinstance(y, tm.Tensor) and y.requires_grad
    assert np.sum(x).item() == 6.5 and np.mean(x > 1).item() == 0.5


def test_numpy_functions_tinymeta_lacks_refuse_a_tensor_that_requires_grad():
    x = t64([0.5, 1.0])
    with pytest.raises(TypeError, match=r"numpy.arcsinh is not a tinymeta op.*gradient through it would be lost"):
        np.arcsinh(x)
    with pytest.raises(TypeError, match=r"numpy.add.reduce .*use tinymeta.sum"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match=r"numpy.sum with these arguments is not a tinymeta op.*use tinymeta.sum"):
        np.sum(x, where=np.array([True, False]))
    with pytest.raises(TypeError, match="numpy.round"):
        np.round(x, 1)
    with pytest.raises(TypeError, match="tensors are immutable"):
        np.exp(x, out=x)
    # nothing to lose: a constant, or a result that is not a number a gradient could flow through
    np.testing.assert_allclose(np.arcsinh(x.detach()), np.arcsinh([0.5, 1.0]))
    assert np.isfinite(x).all() and np.shape(x) == (2,) and np.allclose(x, [0.5, 1.0])


def test_numpy_returns_a_copy_that_cannot_change_the_graph():
    w = t64([1.0, 2.0])
    values = w.numpy()
    values[0] = 100.0  # was a writable view: the gradient below became 200
    assert tm.grad((w ** 2).sum(), w).numpy().tolist() == [2.0, 4.0]
    np.asarray(w)[1] = 50.0
    assert w.numpy().tolist() == [1.0, 2.0]
    snapshot = w.numpy()
    with tm.no_grad():
        w.data -= 1.0  # an optimizer step: the values read before keep theirs
    assert snapshot.tolist() == [1.0, 2.0]


def test_truth_value_of_a_tensor_says_any_or_all():
    x = tm.tensor([1.0, -1.0])
    with pytest.raises(ValueError, match=r"ambiguous: say which you mean with .any\(\) or .all\(\)"):
        bool(x > 0)
    assert (x > 0).any() and not (x > 0).all()
    assert (x > 0).any(axis=0).shape == () and tm.tensor(np.ones((2, 3))).all(axis=1, keepdims=True).shape == (2, 1)
    assert bool(tm.tensor([2.0]))
