"""Shortcuts taken for speed (issue 14) give the same values and gradients as the long way."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta import ops
from tinymeta.testing import gradgradcheck


def test_undoing_a_recorded_transpose_returns_the_original_tensor_and_gradients_stay_exact():
    rng = np.random.default_rng(0)
    x = tm.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    y = ops.swapaxes(x, -1, -2)
    assert ops.swapaxes(y, -1, -2) is x  # the op that undoes it is skipped
    assert ops.transpose(y, (1, 0, 2)) is not x  # a different permutation is not
    np.testing.assert_array_equal(ops.transpose(y, (1, 0, 2)).numpy(), x.numpy().transpose(2, 0, 1))

    def f(a):
        return ops.swapaxes(ops.swapaxes(a * a, -1, -2) * 2.0, -1, -2)
    assert gradgradcheck(f, [x])


def test_shared_scalar_constants_keep_their_sign_and_dtype():
    x = tm.tensor(np.array([1.0, 2.0]), dtype="float32")
    assert (x * 0.0).dtype == np.float32 and (x * 0.0).numpy().tolist() == [0.0, 0.0]
    assert np.signbit((x * -0.0).numpy()).all() and not np.signbit((x * 0.0).numpy()).any()  # -0.0 is not 0.0
    y = tm.tensor(np.array([1.0, 2.0]), dtype="float64")
    assert (y * 0.5).dtype == np.float64 and (x * 0.5).dtype == np.float32


def test_retain_freed_memory_does_not_change_results():
    from tinymeta import backend
    a = tm.tensor(np.arange(6.0))
    before = (a * a).numpy()
    assert backend.retain_freed_memory() in (True, False)
    np.testing.assert_array_equal((a * a).numpy(), before)


def test_linear_layers_and_matmul_gradients_record_no_transpose_op():
    """MatMul's transpose flags: the graph of a second-order meta-gradient through an MLP holds no
    Transpose node and can itself be differentiated (third order), and the gradients are those of
    the explicit transposes."""
    from tinymeta.autograd import toposort
    from tinymeta.nn import MLP
    rng = np.random.default_rng(0)
    model = MLP()
    params = model.init_params(0, "float64")  # leaves that require grad
    x, y = tm.tensor(rng.standard_normal((3, 5, 1))), tm.tensor(rng.standard_normal((3, 5, 1)))
    fast = {k: ops.broadcast_to(v, (3,) + v.shape) for k, v in params.items()}
    inner = ((model(fast, x) - y) ** 2).mean()
    g = tm.grad(inner, fast, create_graph=True)
    loss = ((model({k: fast[k] - 0.01 * g[k] for k in fast}, x) - y) ** 2).mean()
    meta = tm.grad(loss, params, create_graph=True)
    third = tm.grad(sum((m * m).sum() for m in meta.values()), params)
    kinds = {type(n._ctx).__name__ for n in toposort(list(meta.values())) if n._ctx is not None}
    assert "MatMul" in kinds and "Transpose" not in kinds
    assert all(np.isfinite(t.numpy()).all() for t in third.values())

    a, b = tm.tensor(rng.standard_normal((2, 4, 3)), requires_grad=True), tm.tensor(rng.standard_normal((5, 3)),
                                                                                      requires_grad=True)
    flagged = tm.grad((tm.matmul(a, b, transpose_b=True) ** 2).sum(), [a, b])
    explicit = tm.grad((tm.matmul(a, ops.swapaxes(b, 0, 1)) ** 2).sum(), [a, b])
    for f, e in zip(flagged, explicit):
        np.testing.assert_array_equal(f.numpy(), e.numpy())


def test_remembered_broadcast_shapes_answer_and_refuse_as_numpy_does():
    from tinymeta.ops.common import broadcast_shapes
    assert broadcast_shapes((25, 10, 40), (25, 1, 40)) == np.broadcast_shapes((25, 10, 40), (25, 1, 40))
    assert broadcast_shapes((3, 1), (4,)) == (3, 4)
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(ValueError):
            broadcast_shapes((3,), (4,))
    with pytest.raises(ValueError, match="do not broadcast"):
        tm.tensor(np.ones(3)) + tm.tensor(np.ones(4))
