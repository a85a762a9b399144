"""Shortcuts taken for speed (issue 14) give the same values and gradients as the long way."""
import numpy as np

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
