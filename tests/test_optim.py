"""tinymeta.optim: updates against a hand-written NumPy reference, state dicts, errors, devices."""
import io

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.optim import SGD, Adam

SHAPES = {"w": (3, 4), "b": (4,), "s": ()}


def make_params(device, rng, dtype=np.float64):
    return {k: tm.tensor(rng.standard_normal(s).astype(dtype), device=device, requires_grad=True)
            for k, s in SHAPES.items()}


def host(params):
    return {k: p.numpy().copy() for k, p in params.items()}


def grad_sequence(rng, steps, dtype=np.float64):
    return [{k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()} for _ in range(steps)]


def on_device(grads, device):
    return {k: tm.tensor(g, device=device) for k, g in grads.items()}


# ---- hand-written references (the formulas of the PyTorch docs) --------------------------------
def adam_reference(theta, grads, lr, b1, b2, eps, wd):
    theta = {k: v.copy() for k, v in theta.items()}
    m = {k: np.zeros_like(v) for k, v in theta.items()}
    v = {k: np.zeros_like(x) for k, x in theta.items()}
    for t, g_t in enumerate(grads, start=1):
        for k in theta:
            g = g_t[k] + wd * theta[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g ** 2
            m_hat = m[k] / (1 - b1 ** t)
            v_hat = v[k] / (1 - b2 ** t)
            theta[k] = theta[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def sgd_reference(theta, grads, lr, mu, nesterov, wd):
    theta = {k: v.copy() for k, v in theta.items()}
    buf = {k: None for k in theta}
    for g_t in grads:
        for k in theta:
            g = g_t[k] + wd * theta[k]
            if mu != 0:
                buf[k] = g.copy() if buf[k] is None else mu * buf[k] + g
                g = g + mu * buf[k] if nesterov else buf[k]
            theta[k] = theta[k] - lr * g
    return theta


@pytest.mark.parametrize("b1,wd", [(0.9, 0.0), (0.0, 0.0), (0.5, 0.1)])
def test_adam_matches_reference(device, rng, b1, wd):
    params = make_params(device, rng)
    start = host(params)
    grads = grad_sequence(rng, 6)
    opt = Adam(params, lr=0.01, betas=(b1, 0.99), eps=1e-6, weight_decay=wd)
    for g in grads:
        opt.step(on_device(g, device))
    want = adam_reference(start, grads, 0.01, b1, 0.99, 1e-6, wd)
    for k in params:
        np.testing.assert_allclose(params[k].numpy(), want[k], rtol=1e-12, atol=1e-15)
    assert opt.step_count == 6


def test_adam_beta1_zero_is_rmsprop_with_bias_correction(rng):
    """beta1 = 0 (Reptile's setting): the first moment is just the latest gradient."""
    params = make_params("cpu", rng)
    opt = Adam(params, lr=0.1, betas=(0.0, 0.999))
    grads = grad_sequence(rng, 3)
    for g in grads:
        opt.step(g)
    np.testing.assert_array_equal(opt.state["exp_avg"]["w"], grads[-1]["w"])
    # First step of Adam with any betas: lr * g / (|g| + eps), i.e. about lr * sign(g).
    fresh = make_params("cpu", np.random.default_rng(0))
    w0 = fresh["w"].numpy().copy()
    Adam(fresh, lr=0.1, betas=(0.0, 0.999)).step(grads[0])
    np.testing.assert_allclose(w0 - fresh["w"].numpy(), 0.1 * np.sign(grads[0]["w"]), rtol=1e-6)


@pytest.mark.parametrize("mu,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 0.0),
                                            (0.9, True, 0.01), (0.5, False, 0.1)])
def test_sgd_matches_reference(device, rng, mu, nesterov, wd):
    params = make_params(device, rng)
    start = host(params)
    grads = grad_sequence(rng, 5)
    opt = SGD(params, lr=0.05, momentum=mu, nesterov=nesterov, weight_decay=wd)
    for g in grads:
        opt.step(on_device(g, device))
    want = sgd_reference(start, grads, 0.05, mu, nesterov, wd)
    for k in params:
        np.testing.assert_allclose(params[k].numpy(), want[k], rtol=1e-12, atol=1e-15)


def test_caller_gradients_are_not_modified(rng):
    params = make_params("cpu", rng)
    grads = grad_sequence(rng, 2)
    kept = {k: g.copy() for k, g in grads[0].items()}
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1)
    opt.step(grads[0])
    opt.step(grads[0])
    for k in kept:
        np.testing.assert_array_equal(grads[0][k], kept[k])


# ---- in place, identity, dtype -----------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [lambda p: SGD(p, lr=0.1, momentum=0.9),
                                      lambda p: Adam(p, lr=0.1)], ids=["sgd", "adam"])
def test_updates_in_place_keep_identity_and_float32(device, rng, make_opt):
    params = make_params(device, rng, dtype=np.float32)
    ids = {k: id(p) for k, p in params.items()}
    data_ids = {k: id(p.data) for k, p in params.items()}
    before = host(params)
    opt = make_opt(params)
    for g in grad_sequence(rng, 3, dtype=np.float64):  # float64 grads must not upcast the params
        opt.step(g)
    for k, p in params.items():
        assert id(p) == ids[k] and id(p.data) == data_ids[k]
        assert opt.params[k] is p
        assert p.dtype == np.float32 and p.device == device
        assert p.requires_grad and p.is_leaf
        assert not np.array_equal(p.numpy(), before[k])
    for bufs in opt.state.values():
        assert all(b.dtype == np.float32 for b in bufs.values())


def test_step_from_dot_grad_and_zero_grad(device):
    w = tm.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    opt = SGD({"w": w}, lr=0.1)
    opt.zero_grad()
    (w * w).sum().backward()
    opt.step()  # reads w.grad = 2 w
    np.testing.assert_allclose(w.numpy(), [0.8, -1.6, 2.4], rtol=1e-6)
    opt.zero_grad()
    assert w.grad is None
    with pytest.raises(ValueError, match="'w' has no gradient.*backward"):
        opt.step()


def test_grad_tensors_from_tm_grad_and_create_graph(rng):
    params = make_params("cpu", rng)
    loss = sum((p * p).sum() for p in params.values())
    grads = tm.grad(loss, params, create_graph=True)  # Tensors that are part of a graph
    before = host(params)
    SGD(params, lr=0.25).step(grads)
    for k in params:
        np.testing.assert_allclose(params[k].numpy(), 0.5 * before[k], rtol=1e-12)
        assert params[k].is_leaf


def test_lr_is_settable_for_schedules(rng):
    params = make_params("cpu", rng)
    opt = Adam(params, lr=0.1, betas=(0.0, 0.999))
    before = host(params)
    opt.lr = 0.0
    opt.step(grad_sequence(rng, 1)[0])
    for k in params:
        np.testing.assert_array_equal(params[k].numpy(), before[k])
    opt.lr = 0.05
    assert opt.lr == 0.05
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0


# ---- convergence --------------------------------------------------------------------------------
@pytest.mark.parametrize("make_opt,steps", [(lambda p: Adam(p, lr=0.05), 600),
                                            (lambda p: SGD(p, lr=0.05, momentum=0.9), 300),
                                            (lambda p: SGD(p, lr=0.02, momentum=0.9, nesterov=True), 400),
                                            (lambda p: SGD(p, lr=0.1), 600)],
                         ids=["adam", "momentum", "nesterov", "plain"])
def test_converges_on_a_quadratic(make_opt, steps):
    """min_w 1/2 sum a_i (w_i - c_i)^2 with curvatures 0.5..4: the minimum is w = c."""
    a = tm.tensor(np.array([0.5, 1.0, 2.0, 4.0]))
    c = np.array([1.0, -2.0, 0.5, 3.0])
    params = {"w": tm.tensor(np.zeros(4), requires_grad=True)}
    opt = make_opt(params)
    for _ in range(steps):
        loss = 0.5 * (a * (params["w"] - tm.tensor(c)) ** 2).sum()
        opt.step(tm.grad(loss, params))
    np.testing.assert_allclose(params["w"].numpy(), c, atol=1e-3)


# ---- state dicts ----------------------------------------------------------------------------
OPTIMIZERS = [pytest.param(lambda p: Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01), id="adam"),
              pytest.param(lambda p: Adam(p, lr=0.01, betas=(0.0, 0.99)), id="adam-beta1-0"),
              pytest.param(lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True), id="sgd-nesterov"),
              pytest.param(lambda p: SGD(p, lr=0.05), id="sgd-plain")]


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_state_dict_round_trip_gives_identical_steps(device, rng, make_opt):
    params = make_params(device, rng)
    grads = grad_sequence(rng, 6)
    opt = make_opt(params)
    for g in grads[:3]:
        opt.step(g)
    sd = opt.state_dict()
    snapshot = host(params)
    saved = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in sd.items()}
    for g in grads[3:]:
        opt.step(g)

    # The state dict is plain data: it survives an .npz without pickle.
    buf = io.BytesIO()
    np.savez(buf, **sd)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        from_file = {k: npz[k] for k in npz.files}
    for k, v in sd.items():  # and later steps did not change it
        assert isinstance(v, (np.ndarray, int, float, bool, str))
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, saved[k])

    for state in (sd, from_file):
        resumed = {k: tm.tensor(v, device=device, requires_grad=True) for k, v in snapshot.items()}
        opt2 = make_opt(resumed)
        opt2.lr = 123.0  # overwritten by load_state_dict
        opt2.load_state_dict(state)
        assert opt2.lr == opt.lr and opt2.step_count == 3
        for g in grads[3:]:
            opt2.step(g)
        for k in params:
            np.testing.assert_array_equal(resumed[k].numpy(), params[k].numpy())
            assert resumed[k].device == device


def test_state_dict_contents():
    w = tm.tensor(np.ones(2), requires_grad=True)
    sd = Adam({"w": w}, lr=0.1, betas=(0.0, 0.9)).state_dict()
    assert set(sd) == {"type", "step", "lr", "beta1", "beta2", "eps", "weight_decay",
                       "exp_avg/w", "exp_avg_sq/w"}
    assert sd["type"] == "Adam" and sd["step"] == 0 and sd["beta1"] == 0.0
    sd = SGD({"w": w}, lr=0.1, momentum=0.5).state_dict()
    assert set(sd) == {"type", "step", "lr", "momentum", "nesterov", "weight_decay",
                       "momentum_buffer/w"}
    assert set(SGD({"w": w}, lr=0.1).state_dict()) == {"type", "step", "lr", "momentum",
                                                        "nesterov", "weight_decay"}


def test_load_state_dict_errors_leave_optimizer_unchanged(rng):
    params = make_params("cpu", rng)
    opt = Adam(params, lr=0.01)
    opt.step(grad_sequence(rng, 1)[0])
    good = opt.state_dict()
    m_before = opt.state["exp_avg"]["w"].copy()

    with pytest.raises(ValueError, match="'SGD' optimizer, not 'Adam'"):
        opt.load_state_dict(SGD(params, lr=0.1, momentum=0.9).state_dict())
    with pytest.raises(ValueError, match="missing keys: \\['exp_avg_sq/w'\\]"):
        opt.load_state_dict({k: v for k, v in good.items() if k != "exp_avg_sq/w"})
    with pytest.raises(ValueError, match="unexpected keys: \\['exp_avg/extra'"):
        opt.load_state_dict({**good, "exp_avg/extra": np.zeros(1), "exp_avg_sq/extra": np.zeros(1)})
    with pytest.raises(ValueError, match="'exp_avg/w' has shape \\(4, 3\\)"):
        opt.load_state_dict({**good, "exp_avg/w": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="betas\\[1\\]"):
        opt.load_state_dict({**good, "beta2": 1.5, "exp_avg/w": np.ones((3, 4))})
    with pytest.raises(ValueError, match="step"):
        opt.load_state_dict({**good, "step": -1})
    with pytest.raises(TypeError):
        opt.load_state_dict([("type", "Adam")])
    assert opt.step_count == 1 and opt.betas == (0.9, 0.999)
    np.testing.assert_array_equal(opt.state["exp_avg"]["w"], m_before)
    # SGD: a state saved with momentum has buffers that an SGD without momentum takes on.
    sgd = SGD(params, lr=0.1)
    sgd.load_state_dict(SGD(params, lr=0.1, momentum=0.9).state_dict())
    assert sgd.momentum == 0.9 and "momentum_buffer" in sgd.state


# ---- errors ---------------------------------------------------------------------------------
def test_step_errors_name_the_key(rng):
    params = make_params("cpu", rng)
    g = grad_sequence(rng, 1)[0]
    opt = SGD(params, lr=0.1)
    before = host(params)
    with pytest.raises(KeyError, match="'b'"):
        opt.step({k: v for k, v in g.items() if k != "b"})
    with pytest.raises(KeyError, match="'bias'"):
        opt.step({**g, "bias": np.zeros(4)})
    with pytest.raises(ValueError, match="'b' has shape \\(5,\\)"):
        opt.step({**g, "b": np.zeros(5)})
    with pytest.raises(ValueError, match="'w' has no gradient"):
        opt.step({**g, "w": None})
    with pytest.raises(TypeError, match="dict"):
        opt.step([g["w"], g["b"], g["s"]])
    for k in params:  # a failed step changes nothing
        np.testing.assert_array_equal(params[k].numpy(), before[k])
    assert opt.step_count == 0


def test_constructor_errors():
    w = tm.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="dict name -> Tensor"):
        SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        Adam({})
    with pytest.raises(TypeError, match="'x' is a ndarray"):
        SGD({"x": np.ones(3)}, lr=0.1)
    with pytest.raises(TypeError, match="'i' has dtype int64"):
        SGD({"i": tm.tensor(np.arange(3))}, lr=0.1)
    with pytest.raises(ValueError, match="'y' is the result of an operation"):
        SGD({"y": w * 2}, lr=0.1)
    with pytest.raises(ValueError, match="'a' and 'b' are the same Tensor"):
        SGD({"a": w, "b": w}, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD({"w": w}, lr=-0.1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD({"w": w}, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas\\[0\\]"):
        Adam({"w": w}, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="betas\\[1\\]"):
        Adam({"w": w}, betas=(0.9, -0.1))
    with pytest.raises(TypeError, match="pair"):
        Adam({"w": w}, betas=0.9)
    with pytest.raises(ValueError, match="eps"):
        Adam({"w": w}, eps=float("nan"))
    assert "Adam(1 params" in repr(Adam({"w": w}))
