"""The LSTM of tinymeta.nn: against a NumPy recurrence written here, to second order by
finite differences, bidirectional and task-axis identities, and torch.nn.LSTM where installed."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta.algorithms import per_task
from tinymeta.nn import LSTM, lstm_cell
from tinymeta.testing import gradcheck, gradgradcheck


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_layer(x, w_ih, w_hh, b_ih, b_hh, h, c):
    """The recurrence in plain NumPy, one time step at a time: x (N, L, D) -> (N, L, H), h, c."""
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)  # PyTorch's gate order
        c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_g)
        h = sigmoid(z_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def reference_lstm(p, x, h0, c0, num_layers, bidirectional):
    """A stacked (bidirectional) LSTM from reference_layer: outputs, h_n, c_n (N, S, H)."""
    h_n, c_n, s = [], [], 0
    for layer in range(num_layers):
        outs = []
        for suffix in ["", "_reverse"] if bidirectional else [""]:
            k = f"_l{layer}{suffix}"
            seq = x[:, ::-1] if suffix else x
            out, h, c = reference_layer(seq, p["weight_ih" + k], p["weight_hh" + k], p["bias_ih" + k],
                                        p["bias_hh" + k], h0[:, s], c0[:, s])
            outs.append(out[:, ::-1] if suffix else out)
            h_n.append(h)
            c_n.append(c)
            s += 1
        x = np.concatenate(outs, axis=-1)
    return x, np.stack(h_n, axis=1), np.stack(c_n, axis=1)


def arrays(params):
    return {k: v.numpy() for k, v in params.items()}


SIZES = pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)],
                                ids=["one-layer", "stacked-bidirectional"])


@SIZES
def test_forward_matches_a_numpy_recurrence(num_layers, bidirectional, device, rng):
    N, L, D, H = 3, 5, 4, 3
    lstm = LSTM(D, H, num_layers=num_layers, bidirectional=bidirectional)
    params = lstm.init_params(0, dtype="float64", device=device)
    S = num_layers * (2 if bidirectional else 1)
    x, h0, c0 = rng.standard_normal((N, L, D)), rng.standard_normal((N, S, H)), rng.standard_normal((N, S, H))
    out, (h, c) = lstm(params, tm.tensor(x, device=device),
                       state=(tm.tensor(h0, device=device), tm.tensor(c0, device=device)))
    want_out, want_h, want_c = reference_lstm(arrays(params), x, h0, c0, num_layers, bidirectional)
    assert out.shape == (N, L, H * S // num_layers) and h.shape == c.shape == (N, S, H)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h.numpy(), want_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.numpy(), want_c, rtol=1e-12, atol=1e-14)


def test_cell_is_one_step_of_the_recurrence(device, rng):
    D, H = 3, 2
    params = LSTM(D, H).init_params(1, dtype="float64", device=device)
    x, h, c = rng.standard_normal((4, 1, D)), rng.standard_normal((4, H)), rng.standard_normal((4, H))
    p = arrays(params)
    _, want_h, want_c = reference_layer(x, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"],
                                        h, c)
    got_h, got_c = lstm_cell(params, tm.tensor(x[:, 0], device=device), tm.tensor(h, device=device),
                             tm.tensor(c, device=device), suffix="_l0")
    np.testing.assert_allclose(got_h.numpy(), want_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got_c.numpy(), want_c, rtol=1e-12, atol=1e-14)


CELL_KEYS = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


@pytest.mark.parametrize("tasks", [None, 2], ids=["shared", "per-task"])
def test_cell_gradients_to_second_order(tasks, device, rng):
    N, D, H = 2, 2, 2
    lead = () if tasks is None else (tasks,)
    x, h, c = (tm.tensor(rng.standard_normal(lead + s), device=device, requires_grad=True)
               for s in [(N, D), (N, H), (N, H)])
    weights = [tm.tensor(0.5 * rng.standard_normal(lead + s), device=device, requires_grad=True)
               for s in [(4 * H, D), (4 * H, H), (4 * H,), (4 * H,)]]

    def cell(x, h, c, *w):
        return list(lstm_cell(dict(zip(CELL_KEYS, w)), x, h, c))
    assert gradcheck(cell, [x, h, c, *weights])
    assert gradgradcheck(cell, [x, h, c, *weights])


def test_bidirectional_lstm_gradients_to_second_order(device, rng):
    """Every weight to first order; to second order the ones the recurrence runs through
    (input, initial state, W_hh both ways: the cell test covers the rest of each step)."""
    lstm = LSTM(2, 2, bidirectional=True)
    params = lstm.init_params(2, dtype="float64", device=device)
    x = tm.tensor(rng.standard_normal((1, 3, 2)), device=device, requires_grad=True)
    h0 = tm.tensor(rng.standard_normal((1, 2, 2)), device=device, requires_grad=True)

    def checked_wrt(keys):
        def run(x, h0, *w):
            out, (h, c) = lstm({**params, **dict(zip(keys, w))}, x, state=(h0, h0 * 0.5))
            return [out, c]
        return run, [x, h0] + [params[k] for k in keys]
    assert gradcheck(*checked_wrt(sorted(params)))
    assert gradgradcheck(*checked_wrt(["weight_hh_l0", "weight_hh_l0_reverse"]))


def test_bidirectional_is_the_forward_pass_and_the_reversed_sequence_joined(device, rng):
    D, H = 3, 4
    bi = LSTM(D, H, bidirectional=True)
    params = bi.init_params(3, dtype="float64", device=device)
    forward = {k: v for k, v in params.items() if not k.endswith("_reverse")}
    backward = {k.removesuffix("_reverse"): v for k, v in params.items() if k.endswith("_reverse")}
    x = rng.standard_normal((2, 6, D))
    out, (h, c) = bi(params, tm.tensor(x, device=device))
    one = LSTM(D, H)
    out_f, (h_f, c_f) = one(forward, tm.tensor(x, device=device))
    out_b, (h_b, c_b) = one(backward, tm.tensor(x[:, ::-1].copy(), device=device))
    np.testing.assert_allclose(out.numpy(), np.concatenate([out_f.numpy(), out_b.numpy()[:, ::-1]], axis=-1),
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h.numpy(), np.concatenate([h_f.numpy(), h_b.numpy()], axis=1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c.numpy(), np.concatenate([c_f.numpy(), c_b.numpy()], axis=1), rtol=1e-13, atol=1e-15)


def test_a_sequence_run_in_two_pieces_equals_one_run(device, rng):
    """The final state starts the next piece (truncated backpropagation through time)."""
    lstm = LSTM(3, 2, num_layers=2)
    params = lstm.init_params(5, dtype="float64", device=device)
    x = rng.standard_normal((2, 7, 3))
    whole, (h, c) = lstm(params, tm.tensor(x, device=device))
    first, state = lstm(params, tm.tensor(x[:, :4], device=device))
    second, (h2, c2) = lstm(params, tm.tensor(x[:, 4:], device=device), state=state)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()], axis=1), whole.numpy(),
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h2.numpy(), h.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c2.numpy(), c.numpy(), rtol=1e-13, atol=1e-15)


def test_task_axis_equals_a_loop_over_tasks(device, rng):
    T, N, L, D, H = 3, 2, 4, 3, 2
    lstm = LSTM(D, H, num_layers=2, bidirectional=True)
    params = lstm.init_params(4, dtype="float64", device=device)
    fast = {k: tm.tensor(np.broadcast_to(v.numpy(), (T,) + v.shape) + 0.1 * rng.standard_normal((T,) + v.shape),
                         device=device) for k, v in params.items()}  # different weights for every task
    x = tm.tensor(rng.standard_normal((T, N, L, D)), device=device)
    out, (h, c) = lstm(fast, x)
    assert out.shape == (T, N, L, 2 * H) and h.shape == (T, N, 4, H)
    for t in range(T):
        out_t, (h_t, c_t) = lstm({k: v[t] for k, v in fast.items()}, x[t])
        np.testing.assert_allclose(out.numpy()[t], out_t.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h.numpy()[t], h_t.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c.numpy()[t], c_t.numpy(), rtol=1e-12, atol=1e-14)
    shared, _ = lstm(per_task(params, T), x)  # broadcast weights: the same as the shared ones
    np.testing.assert_allclose(shared.numpy(), lstm(params, x)[0].numpy(), rtol=1e-12, atol=1e-14)


def test_initialisation_is_pytorchs_and_seeded():
    lstm = LSTM(5, 4, num_layers=2, bidirectional=True)
    a, b = lstm.init_params(0), lstm.init_params(0)
    assert sorted(a) == sorted(f"{w}_l{k}{d}" for w in CELL_KEYS for k in (0, 1) for d in ("", "_reverse"))
    assert a["weight_ih_l0"].shape == (16, 5) and a["weight_ih_l1"].shape == (16, 8)
    assert a["weight_hh_l1_reverse"].shape == (16, 4) and a["bias_hh_l0"].shape == (16,)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert all(np.abs(v.numpy()).max() <= 0.5 and v.requires_grad for v in a.values())  # U(-1/sqrt(H), 1/sqrt(H))


def test_shapes_that_do_not_fit_are_named():
    lstm = LSTM(3, 2)
    params = lstm.init_params(0, dtype="float64")
    with pytest.raises(ValueError, match=r"input must be \(\.\.\., L, 3\)"):
        lstm(params, tm.tensor(np.zeros((2, 4, 5))))
    with pytest.raises(ValueError, match=r"state \(h_0, c_0\) must be \(2, 1, 2\)"):
        lstm(params, tm.tensor(np.zeros((2, 4, 3))), state=(tm.tensor(np.zeros((2, 2))), tm.tensor(np.zeros((2, 2)))))
    with pytest.raises(ValueError, match="lstm_cell: weight_ih_l0"):
        lstm_cell(params, tm.tensor(np.zeros((2, 3))), tm.tensor(np.zeros((2, 3))), tm.tensor(np.zeros((2, 3))),
                  suffix="_l0")
    with pytest.raises(ValueError, match="must be >= 1"):
        LSTM(3, 0)


@SIZES
def test_agrees_with_torch_given_the_same_weights(num_layers, bidirectional, rng):
    torch = pytest.importorskip("torch")
    N, L, D, H = 3, 5, 4, 3
    torch.manual_seed(0)
    reference = torch.nn.LSTM(D, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True).double()
    params = {k: tm.tensor(v.detach().numpy(), requires_grad=True) for k, v in reference.state_dict().items()}
    lstm = LSTM(D, H, num_layers=num_layers, bidirectional=bidirectional)
    assert sorted(params) == sorted(lstm.init_params(0))
    x = rng.standard_normal((N, L, D))
    want, (want_h, want_c) = reference(torch.from_numpy(x))
    out, (h, c) = lstm(params, tm.tensor(x))
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h.numpy(), want_h.detach().numpy().transpose(1, 0, 2), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.numpy(), want_c.detach().numpy().transpose(1, 0, 2), rtol=1e-12, atol=1e-14)
    # and the gradient of a loss on every output, for every weight
    (want.square().sum() + want_c.sum()).backward()
    grads = tm.grad((out * out).sum() + c.sum(), [params[k] for k in sorted(params)])
    for k, g in zip(sorted(params), grads):
        np.testing.assert_allclose(g.numpy(), dict(reference.named_parameters())[k].grad.numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=k)
