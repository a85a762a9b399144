"""The engine's behaviour: grad's contract, recording rules, errors, dtypes, devices."""
import sys

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import backend
from tinymeta import functional as F
from tinymeta.autograd import Function
from tinymeta.testing import GradcheckError, gradcheck, gradgradcheck

from conftest import t64


# ---- tensor creation ------------------------------------------------------------------------
def test_tensor_dtypes():
    assert tm.tensor(1.5).dtype == np.float32
    assert tm.tensor([1, 2, 3]).dtype == np.float32
    assert tm.tensor(np.ones(2)).dtype == np.float64
    assert tm.tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert tm.tensor(np.arange(3)).dtype == np.int64
    assert tm.tensor([1, 2], dtype="float64").dtype == np.float64
    assert tm.tensor([1, 2], dtype=np.int32).dtype == np.int32


def test_tensor_copies_its_data():
    a = np.zeros(3)
    t = tm.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 0


def test_python_scalars_keep_the_tensor_dtype():
    x = tm.tensor(np.ones(2))
    assert (x * 2).dtype == np.float64 and (2.5 - x).dtype == np.float64
    assert (tm.tensor([1.0]) * 2.5).dtype == np.float32


def test_mixed_float_dtypes_promote_and_gradients_keep_each_dtype():
    a = tm.tensor([1.0, 2.0], requires_grad=True)              # float32
    b = tm.tensor(np.array([3.0, 4.0]), requires_grad=True)    # float64
    y = (a * b).sum()
    assert y.dtype == np.float64
    ga, gb = tm.grad(y, [a, b])
    assert ga.dtype == np.float32 and gb.dtype == np.float64
    np.testing.assert_allclose(ga.numpy(), [3, 4])


def test_repr_and_conversions(default_device):
    x = tm.tensor([[1.0, 2.0]], requires_grad=True)
    assert repr(x) == f"tensor([[1., 2.]], dtype=float32, device={default_device}, requires_grad=True)"
    assert "grad_fn=Mul" in repr(x * 2)
    assert isinstance(x.numpy(), np.ndarray) and x.shape == (1, 2) and x.device == default_device
    assert (x.sum()).item() == 3.0
    with pytest.raises(ValueError, match="one element"):
        x.item()
    assert x.mean(axis=1, keepdims=True).shape == (1, 1)


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        tm.tensor([1, 2], dtype="int64", requires_grad=True)


def test_setitem_is_refused():
    with pytest.raises(TypeError, match="immutable"):
        tm.tensor([1.0])[0] = 2.0


# ---- grad's contract ---------------------------------------------------------------------------
def test_grad_list_tuple_dict_single():
    a, b = t64([1.0, 2.0]), t64([3.0])
    y = (a * a).sum() * b.sum()
    ga, gb = tm.grad(y, [a, b])
    np.testing.assert_allclose(ga.numpy(), [6, 12])
    np.testing.assert_allclose(gb.numpy(), [5])
    d = tm.grad(y, {"a": a, "b": b})
    assert set(d) == {"a", "b"} and np.allclose(d["a"].numpy(), [6, 12])
    assert isinstance(tm.grad(y, (a, b)), tuple)
    assert tm.grad(y, a).shape == (2,)


def test_grad_of_nonscalar_needs_grad_outputs():
    x = t64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad_outputs"):
        tm.grad(x * x, x)
    g = tm.grad(x * x, x, grad_outputs=t64([1.0, 10.0], requires_grad=False))
    np.testing.assert_allclose(g.numpy(), [2, 40])


def test_unused_input():
    x, z = t64([1.0]), t64([2.0])
    with pytest.raises(RuntimeError, match="not part of the graph"):
        tm.grad((x * x).sum(), [x, z])
    gx, gz = tm.grad((x * x).sum(), [x, z], allow_unused=True)
    assert gz is None and gx.item() == 2.0


def test_input_without_requires_grad():
    x = tm.tensor([1.0])
    with pytest.raises(ValueError, match="does not require grad"):
        tm.grad((x * x).sum(), x)


def test_no_grad_records_nothing_and_first_order_grads_are_constants():
    x = t64([1.0, 2.0])
    with tm.no_grad():
        y = x * x
    assert not y.requires_grad and y.is_leaf
    g = tm.grad((x ** 3).sum(), x)
    assert not g.requires_grad and g.is_leaf
    g2 = tm.grad((x ** 3).sum(), x, create_graph=True)
    assert g2.requires_grad
    np.testing.assert_allclose(tm.grad(g2.sum(), x).numpy(), [6, 12])


def test_gradients_with_respect_to_intermediate_nodes():
    theta = t64([0.5, -1.0])
    fast = tm.broadcast_to(theta, (3, 2))       # per-task copies, as MAML's fast weights
    loss = ((fast * fast).sum(axis=1) * t64([1.0, 2.0, 3.0], requires_grad=False)).sum()
    g_fast, g_theta = tm.grad(loss, [fast, theta])
    np.testing.assert_allclose(g_fast.numpy(), [[1, -2], [2, -4], [3, -6]])
    np.testing.assert_allclose(g_theta.numpy(), [6, -12])  # the sum over tasks


def test_backward_accumulates_into_leaves():
    x = t64([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5, 7])


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = t64([0.1])
    y = x
    for _ in range(3 * sys.getrecursionlimit()):
        y = y * 1.0001 + 0.0
    (g,) = tm.grad(y.sum(), [x], create_graph=True)
    assert np.isclose(g.item(), 1.0001 ** (3 * sys.getrecursionlimit()))
    (h,) = tm.grad(g.sum(), [x], allow_unused=True)  # second order through the whole chain
    assert h is None or h.item() == 0.0


def test_graph_is_freed_when_unreferenced():
    import gc
    import weakref
    x = t64(np.ones(4))
    y = (x * 2).exp()
    ref = weakref.ref(y._ctx)
    del y
    gc.collect()
    assert ref() is None


# ---- errors that name the problem -------------------------------------------------------------------
def test_shape_errors_name_op_and_shapes():
    a, b = tm.tensor(np.ones((2, 3))), tm.tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        a + b
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4,\)"):
        a @ b
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels"):
        F.conv2d(tm.tensor(np.ones((1, 3, 5, 5))), tm.tensor(np.ones((2, 4, 3, 3))))
    with pytest.raises(ValueError, match="reshape"):
        a.reshape(5)


def test_cross_entropy_label_errors():
    z = tm.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):  # on a GPU: NaN (test_cuda_path)
        F.cross_entropy(z.to("cpu"), tm.tensor(np.array([0, 3]), device="cpu"))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(z, tm.tensor([0.0, 1.0]))


def test_cuda_request_without_a_gpu_explains_how_to_fix():
    if backend.cuda_available():
        pytest.skip("CUDA is usable here (a GPU, or the CuPy emulator)")
    with pytest.raises(RuntimeError, match=r"cuda12|no CUDA GPU"):
        tm.tensor([1.0], device="cuda")
    with pytest.raises(ValueError, match="unknown device"):
        tm.tensor([1.0], device="tpu")


def test_default_device_from_environment(monkeypatch):
    tm.set_default_device(None)  # the environment counts only when no default was set in code
    monkeypatch.setenv("TINYMETA_DEVICE", "cpu")
    assert tm.default_device() == "cpu"
    monkeypatch.setenv("TINYMETA_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="unknown device"):
        tm.default_device()


@pytest.mark.gpu
def test_mixing_devices_names_both():
    if not backend.cuda_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    with pytest.raises(RuntimeError, match="different devices.*cpu.*cuda"):
        tm.tensor([1.0], device="cpu") + tm.tensor([1.0], device="cuda")


# ---- numerical exactness -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_softmax_and_cross_entropy_exact_for_huge_logits(dtype):
    z = tm.tensor([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], dtype=dtype, requires_grad=True)
    y = tm.tensor(np.array([2, 0]))
    logp = F.log_softmax(z).numpy()
    np.testing.assert_allclose(logp, [[0, -1e4, -2e4], [-np.log(2), -np.log(2), -1e4 - np.log(2)]], rtol=1e-6)
    loss = F.cross_entropy(z, y)
    assert np.isclose(loss.item(), (2e4 + np.log(2)) / 2, rtol=1e-6)
    (g,) = tm.grad(loss, [z], create_graph=True)
    (h,) = tm.grad((g * g).sum(), [z])
    assert np.all(np.isfinite(g.numpy())) and np.all(np.isfinite(h.numpy()))
    np.testing.assert_allclose(g.numpy(), [[0.5, 0, -0.5], [0.25 - 0.5, 0.25, 0]], atol=1e-6)


def test_sigmoid_is_finite_for_large_inputs():
    x = tm.tensor(np.array([-800.0, 0.0, 800.0]), requires_grad=True)
    np.testing.assert_allclose(tm.sigmoid(x).numpy(), [0, 0.5, 1])
    assert np.all(np.isfinite(tm.grad(tm.sigmoid(x).sum(), x).numpy()))


# ---- gradcheck itself can fail ---------------------------------------------------------------------------
class WrongSquare(Function):
    def forward(self, a):
        return a * a

    def backward(self, g):
        return (g * self.inputs[0] * 3.0,)  # should be 2x


class FirstOrderOnlySquare(Function):
    """Right first derivative, computed on raw arrays: the graph breaks there."""

    def forward(self, a):
        return a * a

    def backward(self, g):
        return (tm.Tensor(g.data * 2 * self.inputs[0].data),)


def test_gradcheck_catches_a_wrong_backward():
    x = t64([0.5, 1.5])
    with pytest.raises(GradcheckError, match=r"analytic .* numerical"):
        gradcheck(lambda x: WrongSquare.apply(x), [x])


def test_gradgradcheck_catches_a_backward_on_raw_arrays():
    x = t64([0.5, 1.5])
    assert gradcheck(lambda x: FirstOrderOnlySquare.apply(x), [x])
    with pytest.raises(GradcheckError, match="second derivative"):
        gradgradcheck(lambda x: FirstOrderOnlySquare.apply(x), [x])


def test_gradcheck_wants_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * x, [tm.tensor([1.0], requires_grad=True)])


class ReturnsArray(Function):
    def forward(self, a):
        return a * 2

    def backward(self, g):
        return (g.data * 2,)


class ReturnsBareTensor(Function):
    def forward(self, a):
        return a * 2

    def backward(self, g):
        return g * 2


def test_backward_rules_must_return_a_tuple_of_tensors():
    x = t64([1.0])
    with pytest.raises(TypeError, match="must return Tensors built with tinymeta ops"):
        tm.grad(ReturnsArray.apply(x).sum(), x)
    with pytest.raises(TypeError, match="must return a tuple"):
        tm.grad(ReturnsBareTensor.apply(x).sum(), x)


# ---- comparisons: elementwise, constant, boolean (issue 13) ---------------------------------------
def test_comparisons_are_elementwise_boolean_constants():
    x = t64([-1.0, 0.0, 2.0])
    y = t64([-1.0, 1.0, 1.0], requires_grad=False)
    for got, want in [(x == y, [True, False, False]), (x != y, [False, True, True]), (x < y, [False, True, False]),
                      (x <= y, [True, True, False]), (x > y, [False, False, True]), (x >= y, [True, False, True]),
                      (x > 0, [False, False, True]), (0 < x, [False, False, True]), (x == 0.0, [False, True, False]),
                      (x == np.array([-1.0, 0.0, 0.0]), [True, True, False])]:
        assert got.dtype == np.bool_ and not got.requires_grad and got.is_leaf
        assert got.tolist() == want
    # the comparisons are constants: a mask made from x does not carry x's gradient
    g = tm.grad(tm.where(x > 0, x * x, x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0, 4.0])
    assert gradcheck(lambda x: tm.where(x > 0, x * x, -x), [t64([-0.5, 0.3, 2.0])])
    assert gradgradcheck(lambda x: tm.where(x > 0, x * x * x, -x), [t64([-0.5, 0.3, 2.0])])


def test_accuracy_written_with_double_equals_counts_hits():
    logits = tm.tensor(np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]]))
    labels = tm.tensor(np.array([0, 1, 1, 1]))
    pred = logits.argmax(-1)
    assert np.mean(pred == labels) == 0.75            # was 0.0: == compared identity
    assert (pred == labels).mean().item() == 0.75
    assert float(F.accuracy(logits, labels)) == 0.75
    np.testing.assert_array_equal(tm.one_hot(labels, 2).numpy(), [[1, 0], [0, 1], [0, 1], [0, 1]])


def test_tensors_still_hash_by_identity():
    a, b = tm.tensor([1.0]), tm.tensor([1.0])
    seen = {a: "a", b: "b"}
    assert seen[a] == "a" and seen[b] == "b" and len({a, b, a}) == 2
    assert (a == None) is False and (a != None) is True  # noqa: E711  (no elementwise meaning: identity)


def test_ragged_lists_get_tinymetas_own_message():
    with pytest.raises(ValueError, match=r"tensor\(\) needs nested lists of one shape"):
        tm.tensor([[1, 2], [3]])


# ---- writing through .data after use: the version counter (issue 13) -------------------------------
def test_writing_through_data_after_an_op_recorded_the_tensor_raises_at_grad():
    x = t64([1.0])
    y = x * x
    x.data[...] = 10.0                                 # y was computed from x = 1
    with pytest.raises(tm.ModifiedAfterUseError, match=r"grad\(\)'s input 0 .*Mul.*changed through \.data"):
        tm.grad(y, x)                                  # was silently 20 instead of 2
    params = {"w": t64([1.0, 2.0])}
    loss = (params["w"] * params["w"]).sum()
    params["w"].data = params["w"].xp.asarray([3.0, 4.0])  # assigning a new array is a change too
    with pytest.raises(tm.ModifiedAfterUseError, match=r"grad\(\)'s input 'w'"):
        tm.grad(loss, params)


def test_an_op_that_saves_its_output_checks_it_too():
    x = t64([0.5])
    y = x.exp()
    z = (y * 3.0).sum()
    y.data[...] = 0.0
    with pytest.raises(tm.ModifiedAfterUseError, match="Exp recorded as its output"):
        tm.grad(z, x)


def test_changes_that_cannot_corrupt_a_gradient_pass():
    x = t64([1.0, 2.0])
    x.data[...] = 3.0                                  # before any op used x
    y = (x + 1.0).sum()                                # add never reads x's values in backward
    x.data[...] = 5.0
    assert tm.grad(y, x).tolist() == [1.0, 1.0]
    params = {"w": t64([1.0, 2.0])}                    # the usual loop: gradient first, then the change
    opt = tm.optim.SGD(params, lr=0.5)
    for _ in range(2):
        loss = (params["w"] * params["w"]).sum()
        opt.step(tm.grad(loss, params))
    np.testing.assert_allclose(params["w"].numpy(), [0.0, 0.0])


def test_an_optimizer_step_between_forward_and_grad_raises():
    params = {"w": t64([1.0, 2.0])}
    loss = (params["w"] * params["w"]).sum()
    tm.optim.SGD(params, lr=0.1).step({"w": np.ones(2)})
    with pytest.raises(tm.ModifiedAfterUseError):
        tm.grad(loss, params)


def test_ops_declare_their_parameters():
    from tinymeta.ops.reduce import Sum
    from tinymeta.ops.shape import Reshape
    assert Sum(axes=(0,), keepdims=False).axes == (0,)
    with pytest.raises(TypeError):
        Reshape(shap=(2,))                             # a misspelt parameter is refused, not stored
