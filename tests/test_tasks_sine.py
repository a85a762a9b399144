"""Sine-wave tasks (MAML Sec. 5.1)."""
from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.tasks import MetaBatch, Sinusoid
from tinymeta.tasks.sine import EVAL_SEED


def test_shapes_dtypes_and_info():
    b = Sinusoid(k_support=10, k_query=7).sample(25, np.random.default_rng(0))
    assert isinstance(b, MetaBatch) and b.num_tasks == 25
    assert b.x_support.shape == (25, 10, 1) and b.y_support.shape == (25, 10, 1)
    assert b.x_query.shape == (25, 7, 1) and b.y_query.shape == (25, 7, 1)
    assert all(t.dtype == np.float32 for t in (b.x_support, b.y_support, b.x_query, b.y_query))
    assert b.device == "cpu"
    assert b.info["amplitude"].shape == (25,) and b.info["phase"].shape == (25,)
    one = b.task(3)
    assert one.x_support.shape == (1, 10, 1) and one.info["amplitude"][0] == b.info["amplitude"][3]


def test_targets_follow_the_task_function_and_ranges():
    b = Sinusoid().sample(2000, np.random.default_rng(1))
    a, p = b.info["amplitude"], b.info["phase"]
    assert 0.1 <= a.min() and a.max() <= 5.0 and 0 <= p.min() and p.max() <= np.pi
    assert a.min() < 0.2 and a.max() > 4.9 and p.max() > 3.0  # the whole range is used
    for x, y in (b.support, b.query):
        x, y = x.numpy()[..., 0].astype(np.float64), y.numpy()[..., 0]
        assert -5 <= x.min() and x.max() <= 5
        assert np.allclose(y, a[:, None] * np.sin(x - p[:, None]), atol=1e-5)


def test_seeded_and_seeds_differ():
    s = Sinusoid()
    b1, b2 = s.sample(5, np.random.default_rng(7)), s.sample(5, np.random.default_rng(7))
    b3 = s.sample(5, np.random.default_rng(8))
    assert np.array_equal(b1.x_support.numpy(), b2.x_support.numpy())
    assert np.array_equal(b1.y_query.numpy(), b2.y_query.numpy())
    assert not np.array_equal(b1.x_support.numpy(), b3.x_support.numpy())
    # pinned: the draw order (amplitude, phase, x) is part of the contract
    assert b1.info["amplitude"].shape == (5,)
    ref = s.sample(2, np.random.default_rng(0))
    assert np.allclose(ref.info["amplitude"], [3.2211122678751263, 1.4219548974429648], rtol=0, atol=1e-12)


def test_eval_set_is_fixed():
    s = Sinusoid()
    e = s.eval_set()
    assert e.num_tasks == 600
    # the same numbers on every run and machine: pinned values from EVAL_SEED
    assert EVAL_SEED == 20170309
    assert np.allclose(e.info["amplitude"][:3], [4.44554538037242, 0.7835751928416165, 2.890604340838328],
                       rtol=0, atol=1e-12)
    assert np.allclose(e.info["phase"][:3], [2.4392123335763904, 2.033549324901438, 2.5202714849961803],
                       rtol=0, atol=1e-12)
    assert np.allclose(e.x_support.numpy()[0, :3, 0], [-4.1151595, 0.24765699, -4.3612785], atol=1e-6)
    again = Sinusoid().eval_set()
    assert np.array_equal(e.y_query.numpy(), again.y_query.numpy())
    # a different K keeps the tasks and the query points, so MSEs stay comparable
    e5 = s.eval_set(k_support=5)
    assert e5.x_support.shape == (600, 5, 1)
    assert np.array_equal(e5.info["amplitude"], e.info["amplitude"])
    assert np.array_equal(e5.x_query.numpy(), e.x_query.numpy())
    # the first n tasks do not depend on how many are asked for
    small = s.eval_set(num_tasks=10)
    assert np.array_equal(small.x_support.numpy(), e.x_support.numpy()[:10])
    assert np.array_equal(small.info["phase"], e.info["phase"][:10])
    # and it is not what the training sampler gives for a small seed
    assert not np.array_equal(s.sample(600, np.random.default_rng(0)).info["amplitude"], e.info["amplitude"])


def test_function_and_grid():
    s = Sinusoid()
    x, y = s.grid(np.array([2.0, 1.0]), np.array([0.0, np.pi / 2]), num=50)
    assert x.shape == (50,) and y.shape == (2, 50) and x[0] == -5 and x[-1] == 5
    assert np.allclose(y[0], 2 * np.sin(x)) and np.allclose(y[1], -np.cos(x))
    assert np.allclose(Sinusoid.function(np.zeros((2, 3, 1)), [1.0, 2.0], [np.pi / 2, 0.0])[:, :, 0],
                       [[-1, -1, -1], [0, 0, 0]])


def test_options_and_errors():
    b = Sinusoid(k_support=5, amp_range=(1.0, 1.0), phase_range=(0, 0), x_range=(0, 1),
                 dtype="float64").sample(3, np.random.default_rng(0))
    assert b.x_support.dtype == np.float64 and np.all(b.info["amplitude"] == 1.0)
    assert 0 <= b.x_support.numpy().min() and b.x_support.numpy().max() <= 1
    assert Sinusoid().sample(2, np.random.default_rng(0), k_support=20).x_support.shape == (2, 20, 1)
    with pytest.raises(ValueError, match="k_support"):
        Sinusoid(k_support=0)
    with pytest.raises(ValueError, match="amp_range"):
        Sinusoid(amp_range=(5, 1))
    with pytest.raises(TypeError, match="default_rng"):
        Sinusoid().sample(2, 0)
    with pytest.raises(ValueError, match="num_tasks"):
        Sinusoid().sample(0, np.random.default_rng(0))


@pytest.mark.gpu
@pytest.mark.skipif(not tm.cuda_available(), reason="needs CuPy and a CUDA GPU")
def test_cuda_device():
    b = Sinusoid(device="cuda").sample(4, np.random.default_rng(0))
    assert b.device == "cuda" and b.x_support.device == "cuda"
    ref = Sinusoid(device="cpu").sample(4, np.random.default_rng(0))
    assert np.array_equal(b.y_query.numpy(), ref.y_query.numpy())
