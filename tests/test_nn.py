"""The models: seeded initialisation, shapes, and the task axis equal to a loop over tasks."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import per_task
from tinymeta.nn import MLP, ConvNet


def noisy_per_task(params, T, rng):
    """Different weights for every task: theta + small noise, with a task axis."""
    return {k: tm.tensor(np.broadcast_to(v.numpy(), (T,) + v.shape) + 0.05 * rng.standard_normal((T,) + v.shape))
            for k, v in params.items()}


@pytest.mark.parametrize("model,x_shape", [(MLP(), (6, 1)), (ConvNet(n_way=3, filters=8), (4, 1, 28, 28)),
                                           (ConvNet(n_way=5, in_channels=3, filters=4, pool=True, image_size=84),
                                            (2, 3, 84, 84))],
                         ids=["mlp", "omniglot-conv", "miniimagenet-conv"])
def test_task_axis_equals_a_loop_over_tasks(model, x_shape, device, rng):
    T = 3
    params = model.init_params(0, dtype="float64", device=device)
    fast = noisy_per_task(params, T, rng)
    fast = {k: v.to(device) for k, v in fast.items()}
    x = tm.tensor(rng.standard_normal((T,) + x_shape), device=device)
    batched = model(fast, x)
    for t in range(T):
        one = model({k: v[t] for k, v in fast.items()}, x[t])
        np.testing.assert_allclose(batched.numpy()[t], one.numpy(), rtol=1e-10, atol=1e-12)
    shared = model(per_task(params, T), x).numpy()
    np.testing.assert_allclose(shared, model(params, x).numpy(), rtol=1e-10, atol=1e-12)


def test_initialisation_is_seeded_and_follows_the_reference_code():
    a, b, c = MLP().init_params(1), MLP().init_params(1), MLP().init_params(2)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert not np.array_equal(a["w1"].numpy(), c["w1"].numpy())
    assert a["w2"].shape == (40, 40) and np.abs(a["w2"].numpy()).max() <= 0.02 + 1e-7  # truncated at 2 std
    assert np.all(a["b1"].numpy() == 0)
    conv = ConvNet().init_params(0)
    assert conv["conv1"].shape == (64, 1, 3, 3) and conv["head"].shape == (5, 64)
    assert np.all(conv["bn2_w"].numpy() == 1) and np.all(conv["bn2_b"].numpy() == 0)
    limit = np.sqrt(6 / (64 * 9 + 64 * 9))
    assert np.abs(conv["conv2"].numpy()).max() <= limit
    assert ConvNet().head_keys() == ["head", "head_b"] and MLP().head_keys() == ["w3", "b3"]
    assert all(v.requires_grad and v.dtype == np.float32 for v in conv.values())


def test_mini_imagenet_variant_flattens_the_last_feature_map():
    net = ConvNet(n_way=5, in_channels=3, filters=32, pool=True, image_size=84)
    assert net.features == 32 * 5 * 5


def test_too_many_blocks_for_the_image_is_an_error():
    with pytest.raises(ValueError, match="shrink"):
        ConvNet(blocks=8, pool=True, image_size=28)
