"""Every op, gradient-checked to first and second order in float64, over shapes
with broadcasting and the leading task axis (property tests via hypothesis)."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinymeta as tm
from tinymeta import functional as F
from tinymeta import ops
from tinymeta.testing import gradcheck, gradgradcheck

from conftest import t64

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
small_shapes = array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
pair_shapes = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


def check_both(f, inputs):
    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def away_from_zero(rng, shape, margin=0.3):
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


# ---- binary elementwise ops over broadcasting shapes ---------------------------------------
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "pow"])
@SETTINGS
@given(shapes=pair_shapes, seed=st.integers(0, 2**16))
def test_binary_ops(op, shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = rng.standard_normal(sa)
    b = away_from_zero(rng, sb)
    if op == "pow":
        a = np.abs(a) + 0.5
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
          "div": lambda x, y: x / y, "maximum": tm.maximum, "pow": lambda x, y: x ** y}[op]
    if op == "maximum":  # a tie is a kink: not differentiable there
        assume(np.min(np.abs(a - b), initial=1.0) > 1e-3)
    check_both(fn, [t64(a), t64(b)])


# ---- unary elementwise ----------------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, lambda r, s: r.standard_normal(s)),
    "exp": (tm.exp, lambda r, s: r.standard_normal(s)),
    "log": (tm.log, lambda r, s: np.abs(r.standard_normal(s)) + 0.5),
    "sqrt": (tm.sqrt, lambda r, s: np.abs(r.standard_normal(s)) + 0.5),
    "tanh": (tm.tanh, lambda r, s: r.standard_normal(s)),
    "sin": (tm.sin, lambda r, s: 3 * r.standard_normal(s)),
    "cos": (tm.cos, lambda r, s: 3 * r.standard_normal(s)),
    "numpy sin": (lambda x: np.sin(x) * x, lambda r, s: 3 * r.standard_normal(s)),  # NumPy's ufunc is tm.sin
    "sigmoid": (tm.sigmoid, lambda r, s: 3 * r.standard_normal(s)),
    "softplus": (tm.softplus, lambda r, s: 5 * r.standard_normal(s)),
    "relu": (tm.relu, away_from_zero),
    "abs": (tm.abs, away_from_zero),
    "pow3": (lambda x: x ** 3, lambda r, s: r.standard_normal(s)),
    "pow-1.5": (lambda x: x ** -1.5, lambda r, s: np.abs(r.standard_normal(s)) + 0.5),
    "rpow": (lambda x: 2.0 ** x, lambda r, s: r.standard_normal(s)),
}


@pytest.mark.parametrize("name", list(UNARY))
@SETTINGS
@given(shape=small_shapes, seed=st.integers(0, 2**16))
def test_unary_ops(name, shape, seed):
    fn, make = UNARY[name]
    check_both(fn, [t64(make(np.random.default_rng(seed), shape))])


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_trigonometric_forward_matches_numpy(name, rng):
    x = rng.standard_normal((3, 4)) * 4
    for dtype in ("float32", "float64"):
        y = getattr(tm, name)(tm.tensor(x, dtype=dtype))
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), getattr(np, name)(x.astype(dtype)),  # a GPU's may differ in the ulp
                                   rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-6 if dtype == "float32" else 1e-14)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_where(shapes, seed):
    rng = np.random.default_rng(seed)
    sc, sa, sb = shapes.input_shapes
    cond = rng.random(sc) < 0.5
    check_both(lambda a, b: tm.where(cond, a * a, b.tanh()), [t64(rng.standard_normal(sa)),
                                                               t64(rng.standard_normal(sb))])


# ---- reductions over random axes -------------------------------------------------------------
@st.composite
def shape_and_axes(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    axes = draw(st.one_of(st.none(), st.sets(st.integers(0, len(shape) - 1), min_size=1).map(tuple)))
    return shape, axes, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "var", "max", "min"])
@SETTINGS
@given(case=shape_and_axes(), seed=st.integers(0, 2**16))
def test_reductions(name, case, seed):
    shape, axes, keepdims = case
    rng = np.random.default_rng(seed)
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.37 + 0.1 * rng.random(shape)  # distinct values
    if name == "var":
        n = np.prod([shape[a] for a in axes]) if axes is not None else np.prod(shape)
        if n < 2:
            return

    def f(x):
        return getattr(x, name)(axis=axes, keepdims=keepdims) * 1.0
    check_both(lambda x: f(x * x), [t64(x)])


def test_max_splits_ties_evenly():
    x = t64([1.0, 3.0, 3.0, 2.0])
    (g,) = tm.grad([x.max()], [x])
    np.testing.assert_allclose(g.numpy(), [0, 0.5, 0.5, 0])


@pytest.mark.parametrize("shape,axes", [((3, 4, 2, 5, 2), (2, 4)),    # pooling windows: view by view
                                        ((3, 2, 3), (1,)), ((4, 5), (0, 1)),  # 2 and 20 entries
                                        ((2, 17), (1,)), ((3, 6, 3), (0, 2))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_max_and_its_tie_sharing_gradient_equal_numpy_bit_for_bit(shape, axes, dtype, rng):
    x = rng.integers(0, 3, shape).astype(dtype)  # many ties, some windows all tied
    g_out = rng.standard_normal(tuple(s for i, s in enumerate(shape) if i not in axes)).astype(dtype)
    t = tm.tensor(x, dtype=dtype, requires_grad=True)
    out = ops.max(t, axes)
    np.testing.assert_array_equal(out.numpy(), x.max(axis=axes))
    (g,) = tm.grad([out], [t], grad_outputs=[tm.tensor(g_out, dtype=dtype)])
    top = x.max(axis=axes, keepdims=True)
    hits = (x == top).astype(dtype)
    expected = np.expand_dims(g_out, axes) * (hits / hits.sum(axis=axes, keepdims=True))
    assert g.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(g.numpy(), expected)


@pytest.mark.parametrize("shape,axes", [((2, 3, 2, 3, 2), (2, 4)), ((2, 3, 7), (0, 2))])  # by views; at once
def test_the_gradient_of_max_is_differentiable_twice_more(shape, axes, rng):
    """Third and fourth derivatives: max's gradient, gradchecked to second order in the input and upstream."""
    x = t64(rng.permutation(np.prod(shape)).reshape(shape) * 0.1)  # distinct: no tie within eps
    g = t64(rng.standard_normal(tuple(s for i, s in enumerate(shape) if i not in axes)))

    def gradient(x, g):
        with tm.enable_grad():  # the numerical side calls this with constants, under no_grad
            x = x if x.requires_grad else tm.tensor(x.numpy(), requires_grad=True)
            return tm.grad([ops.max(x * x, axes)], [x], grad_outputs=[g], create_graph=True)[0]

    check_both(gradient, [x, g])


# ---- shape ops ---------------------------------------------------------------------------------
def test_shape_ops(rng):
    x = t64(rng.standard_normal((2, 3, 4)))
    check_both(lambda x: (x * x).reshape(4, 6), [x])
    check_both(lambda x: (x * x).transpose(2, 0, 1), [x])
    check_both(lambda x: tm.broadcast_to(x * x, (5, 2, 3, 4)), [x])
    check_both(lambda x: tm.broadcast_to((x * x)[:, :1], (2, 3, 4)), [x])
    check_both(lambda x: ops.sum_to(x * x, (3, 1)), [x])
    check_both(lambda x: ops.squeeze(ops.unsqueeze(x * x, 1), 1), [x])


INDEXES = [np.s_[0], np.s_[:, 1:3], np.s_[..., ::-2], np.s_[1, None, :, -1], np.s_[[0, 1, 1]],
           np.s_[:, [2, 0, 2, 2]], np.s_[[1, 0], [2, 2]], np.s_[np.array([[0, 1], [1, 1]])]]


@pytest.mark.parametrize("index", INDEXES, ids=[str(i) for i in range(len(INDEXES))])
def test_getitem(index, rng):
    check_both(lambda x: (x * x)[index], [t64(rng.standard_normal((2, 3, 4)))])


def test_getitem_with_boolean_mask(rng):
    x = rng.standard_normal((3, 4))
    mask = x > 0
    check_both(lambda x: (x * x)[mask], [t64(x)])


def test_concatenate_stack_pad(rng):
    a, b = t64(rng.standard_normal((2, 3))), t64(rng.standard_normal((2, 5)))
    check_both(lambda a, b: tm.concatenate([a * a, b.tanh(), a], axis=1), [a, b])
    c = t64(rng.standard_normal((2, 3)))
    check_both(lambda a, c: tm.stack([a * c, c, a], axis=1), [a, c])
    check_both(lambda a: tm.pad(a * a, ((1, 0), (2, 3)), value=0.5), [a])


# ---- matmul with batch broadcasting --------------------------------------------------------------
@SETTINGS
@given(batch=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_matmul(batch, n, k, m, seed):
    rng = np.random.default_rng(seed)
    ba, bb = batch.input_shapes
    a, b = t64(rng.standard_normal(ba + (n, k))), t64(rng.standard_normal(bb + (k, m)))
    check_both(lambda a, b: (a @ b).tanh(), [a, b])


@pytest.mark.parametrize("ta,tb", [(False, True), (True, False), (True, True)])
@SETTINGS
@given(batch=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_matmul_transpose_flags(ta, tb, batch, n, k, m, seed):
    """op(a) @ op(b) without a transpose op: the values of NumPy's a.swapaxes @ b.swapaxes, bit for bit,
    and its backward (every combination of flags, by the second order) gradient-checked."""
    rng = np.random.default_rng(seed)
    ba, bb = batch.input_shapes
    a = t64(rng.standard_normal(ba + ((k, n) if ta else (n, k))))
    b = t64(rng.standard_normal(bb + ((m, k) if tb else (k, m))))
    out = tm.matmul(a, b, transpose_a=ta, transpose_b=tb)
    sw = lambda x, t: x.swapaxes(-1, -2) if t else x  # noqa: E731
    np.testing.assert_array_equal(out.numpy(), sw(a.numpy(), ta) @ sw(b.numpy(), tb))
    assert type(out._ctx).__name__ == "MatMul" and out._ctx.inputs == (a, b)  # one op, on the untransposed inputs
    check_both(lambda a, b: tm.matmul(a, b, transpose_a=ta, transpose_b=tb).tanh(), [a, b])


def test_matmul_transpose_flags_errors():
    a, b = t64(np.ones((2, 3))), t64(np.ones((2, 3)))
    assert tm.matmul(a, b, transpose_b=True).shape == (2, 2)
    assert tm.matmul(a, b, transpose_a=True).shape == (3, 3)
    with pytest.raises(ValueError, match="transpose_b=True do not multiply"):
        tm.matmul(a, t64(np.ones((3, 2))), transpose_b=True)
    with pytest.raises(ValueError, match="at least two axes"):
        tm.matmul(t64(np.ones(3)), a, transpose_a=True)


def test_matmul_vectors(rng):
    a, b, v = t64(rng.standard_normal((3, 4))), t64(rng.standard_normal((4,))), t64(rng.standard_normal((3,)))
    check_both(lambda a, b: (a @ b).tanh(), [a, b])
    check_both(lambda v, a: (v @ a).tanh(), [v, a])
    check_both(lambda b: b @ b, [b])


# ---- unfold / fold, the convolution primitives ------------------------------------------------------
@pytest.mark.parametrize("k,s,p", [(3, 1, 0), (3, 2, 1), (2, 2, 0), ((2, 3), (1, 2), (1, 0)),
                                   (3, 2, ((0, 1), (1, 0)))])
def test_unfold_fold(k, s, p, rng):
    x = t64(rng.standard_normal((2, 2, 5, 6)))
    check_both(lambda x: tm.unfold(x * x, k, s, p), [x])
    cols = tm.unfold(x, k, s, p)
    c = t64(rng.standard_normal(cols.shape))
    check_both(lambda c: tm.fold(c * c, (5, 6), k, s, p), [c])
    # adjointness: <unfold(x), c> == <x, fold(c)>
    lhs = (tm.unfold(x, k, s, p) * c).sum().item()
    rhs = (x * tm.fold(c, (5, 6), k, s, p)).sum().item()
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


@pytest.mark.parametrize("k,s,p,hw", [(3, 1, 0, (5, 6)), (3, 2, ((0, 1), (0, 1)), (14, 14)),
                                       (3, 2, ((0, 1), (0, 1)), (28, 28)), ((2, 3), (1, 2), (1, 0), (7, 9))])
def test_the_three_ways_to_fold_agree(k, s, p, hw, rng):
    """col2im is strided additions (NumPy, large images), one matmul with a 0/1 matrix (NumPy, small
    images) or a gather-and-sum (GPU): the same sums in other orders."""
    from tinymeta.ops import conv
    k2, s2, p2 = conv._pair(k), conv._pair(s), conv.normalize_padding(p)
    cols = tm.unfold(t64(rng.standard_normal((3, 2) + hw)), k2, s2, p2).numpy()
    cols = rng.standard_normal(cols.shape)
    ways = [f(cols, hw, k2, s2, p2, np) for f in (conv._fold_strided, conv._fold_matmul, conv._fold_gathered)]
    for other in ways[1:]:
        np.testing.assert_allclose(other, ways[0], rtol=1e-13, atol=1e-13)


def assert_equal_to_composition(fused, composed, x, w):
    """A fused op against the primitives it replaces: the value and the first two derivatives."""
    def derivatives(f):
        y = f(x)
        g, = tm.grad((y * w).tanh().sum(), [x], create_graph=True)
        gg, = tm.grad((g * g).sum(), [x])
        return y.numpy(), g.numpy(), gg.numpy()

    for ours, theirs, tol in zip(derivatives(fused), derivatives(composed), (1e-12, 1e-10, 1e-9)):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol / 10)


# ---- standardize, batch norm's core: one op, and one op for its gradient ------------------------
@pytest.mark.parametrize("shape,axes", [((4, 3), 0), ((2, 3, 2, 2), (0, 2, 3)), ((2, 3, 2, 2, 2), (1, 3, 4)),
                                        ((5,), None)])
def test_standardize(shape, axes, rng):
    x = t64(rng.standard_normal(shape) * 2 + 1)
    w = t64(rng.standard_normal(shape))
    check_both(lambda x: ops.standardize(x, axes, eps=1e-3) * w, [x])
    assert_equal_to_composition(lambda x: ops.standardize(x, axes, eps=1e-3),
                                lambda x: (x - ops.mean(x, axes, keepdims=True))
                                * (ops.var(x, axes, keepdims=True) + 1e-3) ** -0.5, x, w)


def test_the_gradient_of_standardize_is_differentiable_twice_more(rng):
    """Third and fourth derivatives of standardize: its gradient op, gradchecked to second order."""
    x = t64(rng.standard_normal((3, 4)) + 0.5)
    g = t64(rng.standard_normal((3, 4)))

    def gradient(x, g):
        with tm.enable_grad():  # the numerical side calls this with constants, under no_grad
            x = x if x.requires_grad else tm.tensor(x.numpy(), requires_grad=True)
            y = ops.standardize(x, 1, eps=1e-2)
            return tm.grad(y, [x], grad_outputs=[g], create_graph=True)[0]

    check_both(gradient, [x, g])


def test_standardize_rejects_what_it_cannot_normalise():
    with pytest.raises(ValueError, match="eps must be positive"):
        ops.standardize(tm.tensor(np.ones(3)), eps=0.0)
    with pytest.raises(TypeError, match="float tensor"):
        ops.standardize(tm.tensor(np.arange(3)))


# ---- softmax cross-entropy: one op, and one op for its gradient -----------------------------------
def _one_hot64(labels, C):
    return tm.tensor(np.eye(C)[labels], dtype="float64")


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 4)])
def test_softmax_cross_entropy(shape, rng):
    z = t64(rng.standard_normal(shape) * 3)
    y = _one_hot64(rng.integers(0, shape[-1], shape[:-1]), shape[-1])
    w = t64(rng.standard_normal(shape[:-1]))
    check_both(lambda z: ops.softmax_cross_entropy(z, y) * w, [z])
    assert_equal_to_composition(lambda z: ops.softmax_cross_entropy(z, y),
                                lambda z: -ops.sum(F.log_softmax(z, -1) * y, -1), z, w)


def test_the_gradient_of_softmax_cross_entropy_is_differentiable_twice_more(rng):
    """Third and fourth derivatives: the gradient op, gradchecked to second order in logits and upstream."""
    z = t64(rng.standard_normal((3, 4)))
    g = t64(rng.standard_normal(3))
    y = _one_hot64(np.array([0, 3, 1]), 4)

    def gradient(z, g):
        with tm.enable_grad():  # the numerical side calls this with constants, under no_grad
            z = z if z.requires_grad else tm.tensor(z.numpy(), requires_grad=True)
            return tm.grad(ops.softmax_cross_entropy(z, y), [z], grad_outputs=[g], create_graph=True)[0]

    check_both(gradient, [z, g])


def test_softmax_cross_entropy_is_nan_for_a_zero_target_row_and_stable_for_huge_logits():
    z = tm.tensor(np.array([[1e4, 0.0, -1e4], [0.0, 1.0, 2.0]]), dtype="float64")
    y = tm.tensor(np.array([[1.0, 0, 0], [0, 0, 0]]), dtype="float64")
    loss = ops.softmax_cross_entropy(z, y).numpy()
    assert loss[0] == 0.0 and np.isnan(loss[1])
    with pytest.raises(ValueError, match="target shape"):
        ops.softmax_cross_entropy(z, y[0])
    with pytest.raises(TypeError, match="share a float dtype"):
        ops.softmax_cross_entropy(z, tm.tensor(np.zeros((2, 3)), dtype="float32"))


@pytest.mark.parametrize("op", ["standardize", "softmax_cross_entropy"])
def test_fused_ops_give_one_second_derivative_whether_or_not_a_graph_is_recorded(op, rng):
    """Their gradient ops' backward is one pass on arrays, or differentiable ops under create_graph:
    the same values either way."""
    z = tm.tensor(rng.standard_normal((3, 4)), dtype="float64", requires_grad=True)
    g = tm.tensor(rng.standard_normal((3, 4) if op == "standardize" else 3), dtype="float64",
                  requires_grad=True)
    h = t64(rng.standard_normal((3, 4)))
    y = _one_hot64(np.array([0, 3, 1]), 4)
    f = (lambda z: ops.standardize(z, 1, eps=1e-2)) if op == "standardize" else \
        (lambda z: ops.softmax_cross_entropy(z, y))
    first = tm.grad(f(z), [z], grad_outputs=[g], create_graph=True)[0]
    recorded = tm.grad(first, [z, g], grad_outputs=[h], create_graph=True)
    fused = tm.grad(first, [z, g], grad_outputs=[h])
    for a, b in zip(recorded, fused):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-13)


# ---- functional layers, with and without the task axis ----------------------------------------------
@pytest.mark.parametrize("tasks,per_task", [(False, False), (True, False), (True, True)])
def test_linear(tasks, per_task, rng):
    T = 3
    x = rng.standard_normal((T, 4, 5) if tasks else (4, 5))
    w = rng.standard_normal((T, 2, 5) if per_task else (2, 5))
    b = rng.standard_normal((T, 2) if per_task else (2,))
    check_both(lambda x, w, b: F.linear(x, w, b).tanh(), [t64(x), t64(w), t64(b)])


@pytest.mark.parametrize("tasks,per_task,stride,padding", [(False, False, 1, 0), (False, False, 2, 1),
                                                           (True, False, 2, 1), (True, True, 2, 1),
                                                           (True, True, 1, 1), (True, True, 2, "same"),
                                                           (False, False, 2, ((0, 1), (1, 1)))])
@pytest.mark.parametrize("input_grad", ["phases", "fold"])
def test_conv2d(tasks, per_task, stride, padding, input_grad, rng, monkeypatch, default_device):
    """Both ways to the input gradient (ConvTranspose): by phases of the stride (the CPU's), or fold(w^T g)."""
    from tinymeta.ops import conv
    if input_grad == "phases" and default_device != "cpu":
        pytest.skip("the phases are the CPU's way; a GPU always folds")
    monkeypatch.setattr(conv, "PHASES_MIN_POSITIONS", 0 if input_grad == "phases" else 10 ** 9)
    T = 2
    x = rng.standard_normal((T, 2, 2, 5, 5) if tasks else (2, 2, 5, 5))
    w = rng.standard_normal((T, 3, 2, 3, 3) if per_task else (3, 2, 3, 3))
    b = rng.standard_normal((T, 3) if per_task else (3,))
    check_both(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding).tanh(),
               [t64(x), t64(w), t64(b)])


def _conv_reference(x, w, b, stride, padding):
    """Direct 6-loop convolution in NumPy, for the forward values."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((N, O, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + b[None, :, None, None]


def test_conv2d_forward_matches_direct_loops(rng):
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    for stride, padding in [(1, 0), (2, 1), (3, 2)]:
        got = F.conv2d(t64(x), t64(w), t64(b), stride=stride, padding=padding).numpy()
        np.testing.assert_allclose(got, _conv_reference(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [28, 14, 7, 4, 5])
def test_conv2d_same_padding_is_tensorflows(size, rng):
    """'same' pads as tf.nn.conv2d: ceil(size / 2) outputs; an odd padding pixel goes after (bottom/right)."""
    x, w, b = rng.standard_normal((2, 3, size, size)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
    before, after = total // 2, total - total // 2
    padded = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)))
    got = F.conv2d(t64(x), t64(w), t64(b), stride=2, padding="same").numpy()
    assert got.shape[-1] == -(-size // 2)
    np.testing.assert_allclose(got, _conv_reference(padded, w, b, 2, 0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), (2, 1, 0)])
def test_max_pool2d(kernel, stride, padding, rng):
    x = rng.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) * 0.1
    check_both(lambda x: F.max_pool2d(x * 1.5, kernel, stride, padding), [t64(x)])


@pytest.mark.parametrize("shape,wshape", [((6, 3), (3,)), ((4, 3, 2, 2), (3,)), ((2, 4, 3, 2, 2), (3,)),
                                          ((2, 4, 3, 2, 2), (2, 3))])
def test_batch_norm(shape, wshape, rng):
    x, w, b = rng.standard_normal(shape), rng.standard_normal(wshape), rng.standard_normal(wshape)
    check_both(lambda x, w, b: F.batch_norm(x, weight=w, bias=b), [t64(x), t64(w), t64(b)])


def test_batch_norm_statistics_are_per_task(rng):
    x = rng.standard_normal((3, 4, 2, 3, 3)) * np.array([1, 5, 10])[:, None, None, None, None]
    y = F.batch_norm(t64(x, requires_grad=False)).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 3, 4)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 3, 4)), 1, atol=1e-4)
    for t in range(3):  # each task alone gives the same numbers
        np.testing.assert_allclose(F.batch_norm(t64(x[t], requires_grad=False)).numpy(), y[t], atol=1e-12)


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_losses(shape, rng):
    logits = rng.standard_normal(shape)
    labels = tm.tensor(rng.integers(0, shape[-1], shape[:-1]))
    check_both(lambda z: F.log_softmax(z), [t64(logits)])
    check_both(lambda z: F.cross_entropy(z, labels), [t64(logits)])
    check_both(lambda z: F.cross_entropy(z, labels, reduction="none"), [t64(logits)])
    target = rng.standard_normal(shape)
    check_both(lambda z: F.mse_loss(z, t64(target, requires_grad=False)), [t64(logits)])
    check_both(lambda a, b: F.cosine_similarity(a, b), [t64(logits), t64(target)])


@pytest.mark.parametrize("shapes", [((3, 4), (5, 4)), ((2, 3, 4), (2, 5, 4)), ((2, 1, 3, 4), (4, 2, 4))])
def test_pairwise_cosine_similarity(shapes, rng):
    a, b = (rng.standard_normal(s) for s in shapes)
    check_both(F.pairwise_cosine_similarity, [t64(a), t64(b)])


# ---- third derivatives of scalar functions against their closed forms ---------------------------------
THIRD = {
    "tanh": (tm.tanh, lambda x: (1 - np.tanh(x) ** 2) * (6 * np.tanh(x) ** 2 - 2)),
    "sigmoid": (tm.sigmoid, lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 6 * s + 6 * s * s)),
    "exp": (tm.exp, np.exp),
    "log": (tm.log, lambda x: 2 / x ** 3),
    "sqrt": (tm.sqrt, lambda x: 3 / 8 * x ** -2.5),
    "pow": (lambda x: x ** 4.5, lambda x: 4.5 * 3.5 * 2.5 * x ** 1.5),
    "pow by a tensor": (lambda x: x ** tm.tensor(np.full(4, 2.5), device=x.device),
                        lambda x: 2.5 * 1.5 * 0.5 * x ** -0.5),
    "tensor exponent": (lambda x: 1.7 ** x, lambda x: np.log(1.7) ** 3 * 1.7 ** x),
    "sin": (tm.sin, lambda x: -np.cos(x)),
    "cos": (tm.cos, np.sin),
    "softplus-ish": (lambda x: tm.log(1.0 + tm.exp(x)), lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    "softplus": (tm.softplus, lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
}


def test_softplus_is_stable_and_exact_at_the_kink_of_relu():
    """log(1 + e^x) without overflow for large x, its slope 1/2 at 0 (where a ReLU feeds it zeros)."""
    x = t64(np.array([-800.0, -30.0, 0.0, 30.0, 800.0]))
    y = tm.softplus(x)
    np.testing.assert_allclose(y.numpy(), [0.0, np.log1p(np.exp(-30.0)), np.log(2.0), 30.0 + np.log1p(np.exp(-30.0)),
                                           800.0], rtol=1e-15, atol=1e-300)
    (d,) = tm.grad([y.sum()], [x])
    np.testing.assert_allclose(d.numpy(), [0.0, 1 / (1 + np.exp(30.0)), 0.5, 1 / (1 + np.exp(-30.0)), 1.0],
                               rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("name", list(THIRD))
def test_third_derivative(name):
    fn, third = THIRD[name]
    xs = np.array([0.3, 0.9, 1.7, 2.5])
    x = t64(xs)
    (d1,) = tm.grad([fn(x).sum()], [x], create_graph=True)
    (d2,) = tm.grad([d1.sum()], [x], create_graph=True)
    (d3,) = tm.grad([d2.sum()], [x])
    np.testing.assert_allclose(d3.numpy(), third(xs), rtol=1e-12, atol=1e-12)
