"""tinymeta against an established framework on the same numbers, in float64.

PyTorch is not a dependency of tinymeta; this module runs only where it is
installed (`pip install torch`) and is skipped otherwise.

Two parts. First, a property-based differential test of every op and functional
layer: hypothesis draws shapes (broadcasting across ranks, size-1 and empty axes)
and how each input is reached (as it is, through a transpose, a strided slice or a
reversed slice, so ops see non-contiguous arrays); both frameworks compute the
forward value, the first derivative (a vector-Jacobian product), the second (the
derivative of <gradient, u> along a random u, through ``create_graph=True``) and,
for a few ops, the third, all compared to 1e-9. Second, second-order MAML on an MLP
and a conv net, where the PyTorch side is written the usual way: a Python loop over
tasks, torch.autograd.grad with create_graph=True.

Where PyTorch differs from NumPy on purpose (a reduction over ``axis=()`` returns the
input in NumPy, and all of it in PyTorch) the test compares with the NumPy meaning,
which tinymeta follows (see the README's "Conventions"). PyTorch 2.13's
``F.batch_norm`` on the CPU gives wrong input gradients for a strided weight or a
permuted input, and a wrong third derivative, so batch norm is compared with its
textbook formula written in PyTorch ops; the running statistics with ``F.batch_norm``.

``TINYMETA_TORCH_EXAMPLES`` sets the number of hypothesis examples per op (default 150).
"""
import os
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinymeta as tm
from tinymeta import functional as F

from test_meta_gradient import conv_problem, meta_loss, mlp_problem, rel_err
from conftest import t64

torch = pytest.importorskip("torch")
TF = torch.nn.functional

EXAMPLES = int(os.environ.get("TINYMETA_TORCH_EXAMPLES", "150"))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """PyTorch on one thread, as NumPy here: on a shared machine its thread pool only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])
FEW = settings(SETTINGS, max_examples=max(EXAMPLES // 3, 10))  # the slower layers and fused ops
RTOL, ATOL = 1e-9, 1e-9


# ---- inputs: a base array, and the view of it the op sees --------------------------------------
@dataclass(frozen=True)
class Operand:
    """An input of ``shape``, reached from its base array as it is, through a transpose of all
    axes, every second element along ``axis`` or the elements along ``axis`` reversed."""
    shape: tuple
    view: str = "plain"
    axis: int = 0

    @property
    def base_shape(self):
        if self.view == "transposed":
            return self.shape[::-1]
        if self.view == "strided":
            return tuple(2 * s if i == self.axis else s for i, s in enumerate(self.shape))
        return self.shape

    def _index(self, step):
        return (slice(None),) * self.axis + (slice(None, None, step),)

    def tm(self, b):
        if self.view == "transposed":
            return b.transpose()
        if self.view in ("strided", "reversed"):
            return b[self._index(2 if self.view == "strided" else -1)]
        return b

    def torch(self, b):
        if self.view == "transposed":
            return b.permute(*reversed(range(b.ndim)))
        if self.view == "strided":
            return b[self._index(2)]
        if self.view == "reversed":
            return torch.flip(b, [self.axis])
        return b


@st.composite
def operand(draw, shape):
    shape = tuple(shape)
    if not shape:
        return Operand(shape)
    view = draw(st.sampled_from(["plain", "transposed", "strided", "reversed"]))
    return Operand(shape, view, draw(st.integers(0, len(shape) - 1)))


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return np.abs(rng.standard_normal(shape)) + 0.5


def away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + 0.3, x - 0.3)


def distinct(rng, shape):
    """Values at least 0.05 apart (no ties for max, maximum, pooling), mixed in sign."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5 * rng.random(n)) * (0.1 + 2.0 / max(n, 1))).reshape(shape)


def _zeros_if_none(g, like):
    return np.zeros(like.shape) if g is None else g


def _close(ours, theirs, what):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape}, PyTorch {theirs.shape}"
    scale = max(1.0, float(np.max(np.abs(theirs[np.isfinite(theirs)]), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _tm_grad(s, xs, create_graph):
    if not s.requires_grad:
        return [None] * len(xs)
    return tm.grad(s, xs, create_graph=create_graph, allow_unused=True)


def _torch_grad(s, xs, create_graph):
    if not s.requires_grad:
        return [None] * len(xs)
    return torch.autograd.grad(s, xs, create_graph=create_graph, allow_unused=True)


def _inner(gs, us, zero):
    total = zero
    for g, u in zip(gs, us):
        if g is not None:
            total = total + (g * u).sum()
    return total


def agree(ours, theirs, operands, arrays, seed, order=2, differentiable=True):
    """Run ``ours`` (tinymeta) and ``theirs`` (PyTorch) on the same inputs, each reached through
    its operand's view of a float64 base array, and compare the forward value and the
    derivatives up to ``order`` with respect to the base arrays."""
    rng = np.random.default_rng(seed)
    tb = [tm.tensor(a, dtype="float64", requires_grad=differentiable) for a in arrays]
    pb = [torch.tensor(a, dtype=torch.float64, requires_grad=differentiable) for a in arrays]
    out_t = ours(*[op.tm(b) for op, b in zip(operands, tb)])
    out_p = theirs(*[op.torch(b) for op, b in zip(operands, pb)])
    _close(out_t.numpy(), out_p.detach().numpy(), "forward")
    if not differentiable:
        return
    v = rng.standard_normal(out_t.shape)
    s_t = (out_t * tm.tensor(v, dtype="float64")).sum()
    s_p = (out_p * torch.tensor(v)).sum()
    for k in range(1, order + 1):
        g_t = _tm_grad(s_t, tb, create_graph=k < order)
        g_p = _torch_grad(s_p, pb, create_graph=k < order)
        for i, (a, b) in enumerate(zip(g_t, g_p)):
            _close(_zeros_if_none(None if a is None else a.numpy(), arrays[i]),
                   _zeros_if_none(None if b is None else b.detach().numpy(force=True), arrays[i]),
                   f"derivative of order {k}, input {i}")
        if k < order:
            us = [rng.standard_normal(a.shape) for a in arrays]
            s_t = _inner(g_t, [tm.tensor(u, dtype="float64") for u in us], tm.tensor(0.0, dtype="float64"))
            s_p = _inner(g_p, [torch.tensor(u) for u in us], torch.tensor(0.0, dtype=torch.float64))


def inputs(draw, shapes, make=normal):
    """Operands for ``shapes`` and their base arrays (made by ``make``), and a seed."""
    ops_ = [draw(operand(s)) for s in shapes]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    makes = make if isinstance(make, (list, tuple)) else [make] * len(shapes)
    return ops_, [m(rng, op.base_shape) for m, op in zip(makes, ops_)], seed


shapes_any = array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
shapes_nonempty = array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)


# ---- elementwise ------------------------------------------------------------------------------------
UNARY = {  # name: (tinymeta, PyTorch, values, third order)
    "neg": (lambda x: -x, lambda x: -x, normal, False),
    "exp": (tm.exp, torch.exp, normal, True),
    "log": (tm.log, torch.log, positive, True),
    "sqrt": (tm.sqrt, torch.sqrt, positive, True),
    "tanh": (tm.tanh, torch.tanh, normal, True),
    "sigmoid": (tm.sigmoid, torch.sigmoid, lambda r, s: 3 * normal(r, s), True),
    "relu": (F.relu, TF.relu, away_from_zero, False),
    "abs": (tm.abs, torch.abs, away_from_zero, False),
    "sin": (tm.sin, torch.sin, lambda r, s: 3 * normal(r, s), True),
    "cos": (tm.cos, torch.cos, lambda r, s: 3 * normal(r, s), True),
    "square": (lambda x: x * x, lambda x: x * x, normal, True),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, normal, True),
    "pow0": (lambda x: x ** 0, lambda x: x ** 0, normal, False),
    "pow-1.5": (lambda x: x ** -1.5, lambda x: x ** -1.5, positive, True),
    "pow0.5": (lambda x: x ** 0.5, lambda x: x ** 0.5, positive, False),
    "rpow": (lambda x: 1.7 ** x, lambda x: 1.7 ** x, normal, True),
    "rsub": (lambda x: 2.5 - x, lambda x: 2.5 - x, normal, False),
    "rdiv": (lambda x: 2.5 / x, lambda x: 2.5 / x, away_from_zero, True),
    "numpy sin": (lambda x: np.sin(x) * x, lambda x: torch.sin(x) * x, normal, False),  # NumPy's protocol
}


@pytest.mark.parametrize("name", list(UNARY))
@SETTINGS
@given(data=st.data(), shape=shapes_any)
def test_unary(name, data, shape):
    ours, theirs, make, third = UNARY[name]
    ops_, arrays, seed = inputs(data.draw, [shape], make)
    agree(ours, theirs, ops_, arrays, seed, order=3 if third else 2)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [normal, normal], False),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [normal, normal], False),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [normal, normal], True),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [normal, away_from_zero], True),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, [positive, normal], True),
    "maximum": (tm.maximum, torch.maximum, [normal, normal], False),
    "minimum": (tm.minimum, torch.minimum, [normal, normal], False),
    "where": (lambda a, b: tm.where(a > b, a * b, b), lambda a, b: torch.where(a > b, a * b, b),
              [normal, normal], False),
    "ndarray left": (lambda a, b: a.numpy() * b + a, lambda a, b: a.detach() * b + a, [normal, normal], False),
}


@pytest.mark.parametrize("name", list(BINARY))
@SETTINGS
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0,
                                                            max_side=4))
def test_binary(name, data, shapes):
    ours, theirs, makes, third = BINARY[name]
    ops_, arrays, seed = inputs(data.draw, shapes.input_shapes, makes)
    agree(ours, theirs, ops_, arrays, seed, order=3 if third else 2)


@SETTINGS
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1,
                                                            max_side=3))
def test_pow_of_negative_bases_and_zero(data, shapes):
    """A tensor exponent with a negative or zero base, as PyTorch: (-1.5) ** 2 = 2.25, NaN for a
    non-integer exponent; d(0 ** y)/dy = 0 for y >= 0; d/dx where y == 0 is 0. First order (at a
    zero base PyTorch's second derivative is NaN where the true one, tinymeta's, is finite)."""
    def bases(rng, shape):
        return rng.choice([-2.0, -1.5, -1.0, 0.0, 0.5, 1.5, 2.0], size=shape)

    def exponents(rng, shape):
        return rng.choice([-1.0, 0.0, 1.0, 2.0, 3.0, 0.5], size=shape)
    ops_, arrays, seed = inputs(data.draw, shapes.input_shapes, [bases, exponents])
    with np.errstate(all="ignore"):
        agree(lambda a, b: a ** b, lambda a, b: a ** b, ops_, arrays, seed, order=1)


# ---- reductions -------------------------------------------------------------------------------------
@st.composite
def reduction_case(draw):
    shape = draw(shapes_nonempty)
    nd = len(shape)
    axis = draw(st.one_of(st.none(), st.just(()),
                          st.integers(-max(nd, 1), max(nd, 1) - 1),
                          st.sets(st.integers(0, max(nd - 1, 0)), min_size=1).map(tuple) if nd else st.none()))
    return shape, axis, draw(st.booleans())


def _torch_dims(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else axis
    return tuple(a % ndim for a in axes) if ndim else ()


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "var1"])
@SETTINGS
@given(data=st.data(), case=reduction_case())
def test_reductions(name, data, case):
    shape, axis, keepdims = case
    dims = _torch_dims(axis, len(shape))
    n = int(np.prod([shape[d] for d in dims]))
    ddof = 1 if name == "var1" else 0
    if name.startswith("var"):
        assume(n > ddof)
    ops_, arrays, seed = inputs(data.draw, [shape], distinct)

    def ours(x):
        if name.startswith("var"):
            return tm.var(x * x, axis, keepdims, ddof=ddof)
        return getattr(x * x, name)(axis=axis, keepdims=keepdims)

    def theirs(x):
        x = x * x
        if not dims:  # NumPy's axis=() (or a 0-d tensor): nothing is reduced
            return x - x if name.startswith("var") else x
        if name.startswith("var"):
            return torch.var(x, dim=dims, correction=ddof, keepdim=keepdims)
        fn = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin}[name]
        return fn(x, dim=dims, keepdim=keepdims)
    agree(ours, theirs, ops_, arrays, seed, order=3 if name in ("var", "mean") else 2)


# ---- shape ops --------------------------------------------------------------------------------------
@st.composite
def reshape_case(draw):
    shape = draw(array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    n = int(np.prod(shape))
    target, rest = [], n
    for _ in range(draw(st.integers(0, 3))):
        d = draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        target.append(d)
        rest //= d
    target.append(rest)
    target = draw(st.permutations(target))
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@SETTINGS
@given(data=st.data(), case=reshape_case())
def test_reshape(data, case):
    shape, target = case
    ops_, arrays, seed = inputs(data.draw, [shape])
    agree(lambda x: (x * x).reshape(target), lambda x: (x * x).reshape(target), ops_, arrays, seed)


@SETTINGS
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
def test_transpose_and_swapaxes(data, shape):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    a, b = data.draw(st.integers(0, len(shape) - 1)), data.draw(st.integers(-len(shape), len(shape) - 1))
    ops_, arrays, seed = inputs(data.draw, [shape])
    agree(lambda x: (x * x).transpose(perm).swapaxes(a, b),
          lambda x: (x * x).permute(*perm).transpose(a, b), ops_, arrays, seed)


@SETTINGS
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0,
                                                            max_side=4))
def test_broadcast_to_and_sum_to(data, shapes):
    shape, full = shapes.input_shapes[0], shapes.result_shape
    ops_, arrays, seed = inputs(data.draw, [shape])
    agree(lambda x: tm.broadcast_to(x * x, full), lambda x: torch.broadcast_to(x * x, full), ops_, arrays, seed)
    ops_, arrays, seed = inputs(data.draw, [full])
    agree(lambda x: tm.sum_to(x * x, shape), lambda x: (x * x).sum_to_size(shape) if shape else (x * x).sum(),
          ops_, arrays, seed)


@SETTINGS
@given(data=st.data(), shape=array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
def test_squeeze_unsqueeze_flatten(data, shape):
    nd = len(shape)
    new = data.draw(st.integers(-(nd + 1), nd))
    start = data.draw(st.integers(0, max(nd - 1, 0)))
    ops_, arrays, seed = inputs(data.draw, [shape])

    def ours(x):
        y = tm.unsqueeze(x * x, new)
        return tm.squeeze(y, new).flatten(start) * 1.0

    def theirs(x):
        y = torch.unsqueeze(x * x, new)
        return torch.flatten(torch.squeeze(y, new), start) * 1.0
    agree(ours, theirs, ops_, arrays, seed)


@st.composite
def index_case(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    kind = draw(st.sampled_from(["basic", "basic", "ints", "mask"]))
    if kind == "mask":
        return shape, ("mask", draw(st.integers(0, 2**32 - 1)))
    index, used_array = [], False
    for size in shape:
        # with an integer array, no ints or None: where NumPy then puts the array's axes, PyTorch differs
        choice = draw(st.sampled_from(["slice", "reversed", "all", "array"] if kind == "ints" else
                                      ["int", "slice", "reversed", "all", "none"]))
        if choice == "int":
            index.append(draw(st.integers(-size, size - 1)))
        elif choice == "slice":
            index.append(slice(draw(st.integers(-size, size)), draw(st.integers(-size, size)),
                               draw(st.integers(1, 3))))
        elif choice == "reversed":
            index.append(("reversed",))
        elif choice == "array" and kind == "ints" and not used_array:
            used_array = True
            index.append(np.array(draw(st.lists(st.integers(-size, size - 1), min_size=0, max_size=5)),
                                  dtype=np.int64))
        elif choice == "none":
            index.append(None)
            index.append(slice(None))
        else:
            index.append(slice(None))
    return shape, tuple(index)


def _torch_index(x, index):
    """``index`` for PyTorch: a reversed slice is a flip first (PyTorch has no negative steps)."""
    axis, out = 0, []
    for ix in index:
        if isinstance(ix, tuple):
            x = torch.flip(x, [axis])
            ix = slice(None)
        out.append(torch.from_numpy(ix) if isinstance(ix, np.ndarray) else ix)
        axis += ix is not None
    return x[tuple(out)]


@SETTINGS
@given(data=st.data(), case=index_case())
def test_getitem(data, case):
    """Ints, slices (reversed ones too), None, an integer array (indices repeating: the gradient adds up)
    or a boolean mask."""
    shape, index = case
    ops_, arrays, seed = inputs(data.draw, [shape])
    if isinstance(index[0], str):  # a boolean mask
        mask = np.random.default_rng(index[1]).random(shape) < 0.5
        agree(lambda x: (x * x)[mask], lambda x: (x * x)[torch.from_numpy(mask)], ops_, arrays, seed)
        return
    ours_index = tuple(slice(None, None, -1) if isinstance(ix, tuple) else ix for ix in index)
    agree(lambda x: (x * x)[ours_index], lambda x: _torch_index(x * x, index), ops_, arrays, seed)


@SETTINGS
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
       count=st.integers(1, 3))
def test_concatenate_and_stack(data, shape, count):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    shapes = [tuple(data.draw(st.integers(0, 3)) if i == axis % len(shape) else s for i, s in enumerate(shape))
              for _ in range(count)]
    ops_, arrays, seed = inputs(data.draw, shapes)
    agree(lambda *xs: tm.concatenate([x * x for x in xs], axis), lambda *xs: torch.cat([x * x for x in xs], axis),
          ops_, arrays, seed)
    new = data.draw(st.integers(-len(shape) - 1, len(shape)))
    ops_, arrays, seed = inputs(data.draw, [shape] * count)
    agree(lambda *xs: tm.stack([x * x for x in xs], new), lambda *xs: torch.stack([x * x for x in xs], new),
          ops_, arrays, seed)


@SETTINGS
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=3),
       value=st.sampled_from([0.0, 0.5, -2.0]))
def test_pad(data, shape, value):
    widths = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    ops_, arrays, seed = inputs(data.draw, [shape])
    flat = [w for pair in reversed(widths) for w in pair]
    agree(lambda x: tm.pad(x * x, widths, value=value), lambda x: TF.pad(x * x, flat, value=value),
          ops_, arrays, seed)


# ---- matmul and the convolution primitives ----------------------------------------------------------
@SETTINGS
@given(data=st.data(), batch=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       n=st.integers(0, 3), k=st.integers(1, 3), m=st.integers(1, 3), flags=st.sampled_from(
           [(False, False), (False, True), (True, False), (True, True), "vector a", "vector b", "vectors"]))
def test_matmul(data, batch, n, k, m, flags):
    ba, bb = batch.input_shapes
    if isinstance(flags, str):  # 1-d operands: NumPy's vector rules
        sa = (k,) if flags in ("vector a", "vectors") else ba + (max(n, 1), k)
        sb = (k,) if flags in ("vector b", "vectors") else bb + (k, m)
        ops_, arrays, seed = inputs(data.draw, [sa, sb])
        agree(lambda a, b: a @ b, torch.matmul, ops_, arrays, seed, order=3)
        return
    ta, tb = flags
    sa, sb = ba + ((k, n) if ta else (n, k)), bb + ((m, k) if tb else (k, m))
    ops_, arrays, seed = inputs(data.draw, [sa, sb])
    sw = lambda x, t: x.transpose(-1, -2) if t else x  # noqa: E731
    agree(lambda a, b: tm.matmul(a, b, transpose_a=ta, transpose_b=tb),
          lambda a, b: torch.matmul(sw(a, ta), sw(b, tb)), ops_, arrays, seed, order=3)


@st.composite
def window_case(draw, max_padding=2):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding)))
    H = draw(st.integers(max(k[0] - 2 * p[0], 1), 6))
    W = draw(st.integers(max(k[1] - 2 * p[1], 1), 6))
    return k, s, p, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)


@FEW
@given(data=st.data(), case=window_case())
def test_unfold_and_fold(data, case):
    k, s, p, shape = case
    ops_, arrays, seed = inputs(data.draw, [shape])
    agree(lambda x: tm.unfold(x * x, k, s, p), lambda x: TF.unfold(x * x, k, stride=s, padding=p), ops_, arrays,
          seed)
    L = ((shape[2] + 2 * p[0] - k[0]) // s[0] + 1) * ((shape[3] + 2 * p[1] - k[1]) // s[1] + 1)
    ops_, arrays, seed = inputs(data.draw, [(shape[0], shape[1] * k[0] * k[1], L)])
    agree(lambda c: tm.fold(c * c, shape[2:], k, s, p), lambda c: TF.fold(c * c, shape[2:], k, stride=s, padding=p),
          ops_, arrays, seed)


# ---- fused ops: standardisation (batch norm's core) and softmax cross-entropy ------------------------
@SETTINGS
@given(data=st.data(), case=reduction_case())
def test_standardize(data, case):
    shape, axis, _ = case
    dims = _torch_dims(axis, len(shape))
    assume(int(np.prod([shape[d] for d in dims])) > 1)
    ops_, arrays, seed = inputs(data.draw, [shape])

    def theirs(x):
        centered = x - x.mean(dims, keepdim=True)
        return centered / torch.sqrt((centered * centered).mean(dims, keepdim=True) + 1e-3)
    agree(lambda x: tm.standardize(x, axis, eps=1e-3), theirs, ops_, arrays, seed, order=3)


@FEW
@given(data=st.data(), shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
       scale=st.sampled_from([1.0, 10.0, 1000.0]))
def test_softmax_cross_entropy_and_log_softmax(data, shape, scale):
    C = shape[-1]
    labels = np.random.default_rng(data.draw(st.integers(0, 2**16))).integers(0, C, shape[:-1])
    onehot = np.eye(C)[labels]
    ops_, arrays, seed = inputs(data.draw, [shape], lambda r, s: scale * normal(r, s))
    agree(lambda z: tm.softmax_cross_entropy(z, tm.tensor(onehot)),
          lambda z: -(torch.tensor(onehot) * TF.log_softmax(z, -1)).sum(-1), ops_, arrays, seed, order=3)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    agree(lambda z: F.log_softmax(z, dim), lambda z: TF.log_softmax(z, dim), ops_, arrays, seed, order=3)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))

    def theirs(z):
        nll = TF.cross_entropy(z.reshape(-1, C), torch.from_numpy(labels.reshape(-1)), reduction="none")
        nll = nll.reshape(shape[:-1])
        return {"mean": nll.mean(), "sum": nll.sum(), "none": nll}[reduction]
    agree(lambda z: F.cross_entropy(z, tm.tensor(labels), reduction), theirs, ops_, arrays, seed)


def test_cross_entropy_keeps_a_small_loss_exact():
    """log sum exp(z) - z_y with the label's logit shifted first: for logits (1e4, 1e4 - 20) the loss
    2.06e-9 keeps its relative precision (computed as (log(total) + top) - z_y it had 1.2e-4)."""
    z = np.array([[1e4, 1e4 - 20.0], [3.0, 3.0 - 40.0]])
    y = np.array([0, 0])
    ours = F.cross_entropy(tm.tensor(z), tm.tensor(y), reduction="none").numpy()
    theirs = TF.cross_entropy(torch.tensor(z), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(ours[0], np.log1p(np.exp(-20.0)), rtol=1e-6)


# ---- functional layers ------------------------------------------------------------------------------
@FEW
@given(data=st.data(), lead=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       fin=st.integers(1, 4), fout=st.integers(1, 4), per_task=st.booleans(), bias=st.booleans())
def test_linear(data, lead, fin, fout, per_task, bias):
    T = lead[0]
    shapes = [lead + (fin,), ((T,) if per_task else ()) + (fout, fin)] + (
        [((T,) if per_task else ()) + (fout,)] if bias else [])
    ops_, arrays, seed = inputs(data.draw, shapes)

    def theirs(x, w, b=None):
        if not per_task:
            return TF.linear(x, w, b)
        y = (x.reshape(T, -1, fin) @ w.transpose(1, 2)).reshape(lead + (fout,))
        return y if b is None else y + b.reshape((T,) + (1,) * (len(lead) - 1) + (fout,))
    agree(lambda x, w, b=None: F.linear(x, w, b), theirs, ops_, arrays, seed, order=3)


def _torch_conv(x, w, b, stride, padding):
    """PyTorch's conv2d on (N, C, H, W) or, task by task, (T, N, C, H, W) with shared or per-task weights;
    padding ((top, bottom), (left, right)) applied first."""
    (top, bottom), (left, right) = padding
    if x.ndim == 4:
        return TF.conv2d(TF.pad(x, (left, right, top, bottom)), w, b, stride)
    return torch.stack([_torch_conv(x[t], w[t] if w.ndim == 5 else w,
                                    None if b is None else (b[t] if b.ndim == 2 else b), stride, padding)
                        for t in range(x.shape[0])])


@FEW
@given(data=st.data(), case=window_case(), tasks=st.sampled_from([None, "shared", "per task"]),
       out_channels=st.integers(1, 3), bias=st.booleans(), asymmetric=st.booleans())
def test_conv2d(data, case, tasks, out_channels, bias, asymmetric):
    k, s, p, (N, C, H, W) = case
    padding = ((p[0], max(p[0] - 1, 0)), (p[1], p[1])) if asymmetric else p
    pairs = padding if asymmetric else ((p[0], p[0]), (p[1], p[1]))
    assume(H + sum(pairs[0]) >= k[0] and W + sum(pairs[1]) >= k[1])
    T = 2
    x_shape = (T, N, C, H, W) if tasks else (N, C, H, W)
    w_shape = ((T,) if tasks == "per task" else ()) + (out_channels, C) + k
    shapes = [x_shape, w_shape] + ([w_shape[:-3]] if bias else [])
    ops_, arrays, seed = inputs(data.draw, shapes)
    agree(lambda x, w, b=None: F.conv2d(x, w, b, s, padding),
          lambda x, w, b=None: _torch_conv(x, w, b, s, pairs), ops_, arrays, seed)


@FEW
@given(data=st.data(), case=window_case(max_padding=1), lead=st.sampled_from([(), (2,), (2, 1)]))
def test_max_pool2d(data, case, lead):
    k, s, p, (N, C, H, W) = case
    k, s, p = k[0], s[0], min(p[0], k[0] // 2)
    assume(H + 2 * p >= k and W + 2 * p >= k)
    stride = data.draw(st.sampled_from([None, s]))
    ops_, arrays, seed = inputs(data.draw, [lead + (N, C, H, W)], distinct)

    def theirs(x):
        y = TF.max_pool2d(x.reshape((-1, C, H, W)), k, stride, p)
        return y.reshape(lead + (N, C) + y.shape[-2:])
    agree(lambda x: F.max_pool2d(x, k, stride, p), theirs, ops_, arrays, seed)


def _textbook_batch_norm(x, w, b, c_axis, tasks, eps, mean=None, var=None):
    """Batch norm written out in PyTorch ops (not its kernel: see the module docstring)."""
    dims = tuple(i for i in range(x.ndim) if i != c_axis and not (tasks and i == 0))
    if mean is None:
        mean = x.mean(dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    shape = lambda p: (p.shape[0],) + (1,) * (c_axis - 1) + (p.shape[1],) + (1,) * (x.ndim - c_axis - 1) \
        if p.ndim == 2 else (p.shape[0],) + (1,) * (x.ndim - c_axis - 1)  # noqa: E731
    if w is not None:
        y = y * w.reshape(shape(w))
    return y if b is None else y + b.reshape(shape(b))


@st.composite
def batch_norm_case(draw):
    layout = draw(st.sampled_from(["plain", "task axis", "per-task weights"]))
    C, N = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    trailing = tuple(draw(st.lists(st.integers(1, 3), min_size=0 if layout != "task axis" else 2, max_size=2)))
    if layout == "plain":
        shape, pshape = (N, C) + trailing, (C,)
    else:
        T = draw(st.integers(1, 3))
        shape = (T, N, C) + trailing
        pshape = (T, C) if layout == "per-task weights" else (C,)
    assume(N * int(np.prod(trailing)) > 1)
    weight, bias = draw(st.booleans()), draw(st.booleans())
    if layout == "per-task weights" and not bias:
        weight = True  # per-task parameters are what says that (T, N, C) has a task axis
    return layout, shape, pshape, weight, bias


@FEW
@given(data=st.data(), case=batch_norm_case())
def test_batch_norm(data, case):
    layout, shape, pshape, weight, bias = case
    tasks = layout != "plain"
    c_axis = 2 if tasks else 1
    shapes = [shape] + [pshape] * (weight + bias)
    ops_, arrays, seed = inputs(data.draw, shapes)

    def split(ps):
        ps = list(ps)
        return (ps.pop(0) if weight else None), (ps.pop(0) if bias else None)

    def ours(x, *ps):
        w, b = split(ps)
        return F.batch_norm(x, None, None, w, b, training=True, eps=1e-3)

    def theirs(x, *ps):
        w, b = split(ps)
        return _textbook_batch_norm(x, w, b, c_axis, tasks, 1e-3)
    agree(ours, theirs, ops_, arrays, seed, order=3)

    # with running statistics: the eval-mode formula, and the update made in training
    C = shape[c_axis]
    rng = np.random.default_rng(seed)
    rm, rv = rng.standard_normal(C), positive(rng, C)
    trail = (1,) * (len(shape) - c_axis - 1)

    def ours_eval(x, *ps):
        w, b = split(ps)
        return F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-3)

    def theirs_eval(x, *ps):
        w, b = split(ps)
        return _textbook_batch_norm(x, w, b, c_axis, tasks, 1e-3, torch.tensor(rm).reshape((C,) + trail),
                                    torch.tensor(rv).reshape((C,) + trail))
    agree(ours_eval, theirs_eval, ops_, arrays, seed)

    x = ops_[0].tm(tm.tensor(arrays[0]))
    mean, var = rm.copy(), rv.copy()
    w = tm.tensor(np.ones(pshape)) if layout == "per-task weights" else None
    F.batch_norm(x, mean, var, w, training=True, momentum=0.3)
    xt = ops_[0].torch(torch.tensor(arrays[0]))
    per_task = [xt[t] for t in range(shape[0])] if tasks else [xt]
    stats = []
    for xi in per_task:  # each task's statistics as PyTorch stores them (unbiased variance)
        m, v = torch.zeros(C, dtype=torch.float64), torch.zeros(C, dtype=torch.float64)
        TF.batch_norm(xi, m, v, training=True, momentum=1.0)
        stats.append((m.numpy(), v.numpy()))
    np.testing.assert_allclose(mean, 0.7 * rm + 0.3 * np.mean([m for m, _ in stats], axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, 0.7 * rv + 0.3 * np.mean([v for _, v in stats], axis=0), rtol=1e-12)


@SETTINGS
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4, min_side=1,
                                                            max_side=4))
def test_cosine_similarity(data, shapes):
    """Broadcasting in every way, also along ``dim`` itself (an operand of size 1 there)."""
    nd = len(shapes.result_shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    # away from zero: the derivatives scale with 1/|x|^k, so near zero their rounding would swamp 1e-9
    ops_, arrays, seed = inputs(data.draw, shapes.input_shapes, away_from_zero)
    agree(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(a, b, dim),
          ops_, arrays, seed, order=3)


@SETTINGS
@given(data=st.data(), shape=shapes_any, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_mse_loss(data, shape, reduction):
    assume(reduction != "mean" or int(np.prod(shape)) > 0)  # the mean of nothing: 0 here, NaN there
    ops_, arrays, seed = inputs(data.draw, [shape, shape])
    agree(lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction),
          ops_, arrays, seed, order=3)


# ---- constant ops: comparisons, any/all, argmax, one_hot, accuracy -----------------------------------
@SETTINGS
@given(data=st.data(), shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0,
                                                            max_side=3))
def test_constant_ops(data, shapes):
    ops_, arrays, seed = inputs(data.draw, shapes.input_shapes, lambda r, s: r.integers(-2, 3, s).astype(float))
    for ours, theirs in [(lambda a, b: a == b, lambda a, b: a == b), (lambda a, b: a != b, lambda a, b: a != b),
                         (lambda a, b: a < b, lambda a, b: a < b), (lambda a, b: a >= b, lambda a, b: a >= b),
                         (lambda a, b: a <= b, lambda a, b: a <= b), (lambda a, b: a > b, lambda a, b: a > b),
                         (lambda a, b: (a > b).any(), lambda a, b: (a > b).any()),
                         (lambda a, b: (a > b).all(), lambda a, b: (a > b).all())]:
        agree(ours, theirs, ops_, arrays, seed, differentiable=False)
    if shapes.input_shapes[0] and min(shapes.input_shapes[0]) > 0:
        C = shapes.input_shapes[0][-1]
        agree(lambda a: tm.one_hot(tm.argmax(a, -1), C), lambda a: TF.one_hot(torch.argmax(a, -1), C),
              ops_[:1], arrays[:1], seed, differentiable=False)
        labels = np.random.default_rng(seed).integers(0, C, shapes.input_shapes[0][:-1])
        agree(lambda a: F.accuracy(a, tm.tensor(labels), "none"),
              lambda a: (torch.argmax(a, -1) == torch.from_numpy(labels)).double(), ops_[:1], arrays[:1], seed,
              differentiable=False)


# ---- second-order MAML, written the usual way in PyTorch -----------------------------------------------
def torch_mlp(p, x):
    h = TF.relu(TF.linear(x, p["w1"], p["b1"]))
    h = TF.relu(TF.linear(h, p["w2"], p["b2"]))
    return TF.linear(h, p["w3"], p["b3"])


def torch_convnet(p, x):
    h = TF.conv2d(x, p["conv"], p["conv_b"], stride=2, padding=1)
    h = TF.relu(TF.batch_norm(h, None, None, p["bn_w"], p["bn_b"], training=True))
    return TF.linear(h.mean(dim=(-2, -1)), p["head"], p["head_b"])


def torch_meta_loss(model, kind, params, batch, lr, steps):
    losses = []
    for t in range(batch[0].shape[0]):
        xs, ys, xq, yq = (torch.from_numpy(b.numpy()[t]) for b in batch)
        loss_fn = TF.mse_loss if kind == "mse" else TF.cross_entropy
        fast = dict(params)
        for _ in range(steps):
            grads = torch.autograd.grad(loss_fn(model(fast, xs), ys), list(fast.values()), create_graph=True)
            fast = {k: v - lr * g for (k, v), g in zip(fast.items(), grads)}
        losses.append(loss_fn(model(fast, xq), yq))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("name", ["mlp", "conv"])
@pytest.mark.parametrize("steps", [1, 3])
def test_second_order_maml_matches_pytorch(name, steps):
    problem, tmodel, kind = {"mlp": (mlp_problem, torch_mlp, "mse"),
                             "conv": (conv_problem, torch_convnet, "ce")}[name]
    params, batch, model, task_loss, lr = problem(np.random.default_rng(11))
    ours = {k: t64(v) for k, v in params.items()}
    loss = meta_loss(model, task_loss, ours, batch, lr, steps)
    grads = {k: g.numpy() for k, g in tm.grad(loss, ours).items()}

    theirs = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    tloss = torch_meta_loss(tmodel, kind, theirs, batch, lr, steps)
    tgrads = dict(zip(theirs, (g.numpy() for g in torch.autograd.grad(tloss, list(theirs.values())))))

    assert abs(loss.item() - tloss.item()) <= 1e-12 * abs(tloss.item())
    assert rel_err(grads, tgrads) < 1e-9
    scale = max(np.abs(g).max() for g in tgrads.values())
    for k in params:  # (a conv bias before batch norm has a gradient of exactly 0 up to rounding)
        np.testing.assert_allclose(grads[k], tgrads[k], rtol=1e-9, atol=1e-13 * scale)


def test_prototypical_episode_matches_the_pytorch_reference_that_bench_times():
    """`bench --compare torch` times tinymeta's prototypical-network step beside bench_torch.TorchProtoNet:
    both must compute the same loss and gradient, or the ratio compares different work."""
    from tinymeta.experiment.bench import random_batch
    from tinymeta.experiment.bench_torch import TorchProtoNet
    from tinymeta.experiment.factories import build_algorithm, build_model
    from tinymeta.experiment.presets import PRESETS
    cfg = PRESETS["protonet-omniglot-5w1s"].replace(train_ways=6, train_queries=2, meta_batch=2,
                                                    dtype="float64").validate()
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    rng = np.random.default_rng(3)
    meta = algo.init_meta_params(model.init_params(0, cfg.dtype, "cpu"), rng)
    batch = random_batch(cfg, "cpu", rng)
    loss, _ = algo.meta_loss(meta, batch)
    grads = {k: g.numpy() for k, g in tm.grad(loss, meta).items()}

    ref = TorchProtoNet(model, meta, batch, batch.n_way, cfg.meta_lr)
    tloss = ref.loss()
    tgrads = dict(zip(ref.params, (g.numpy() for g in torch.autograd.grad(tloss, list(ref.params.values())))))
    assert abs(loss.item() - tloss.item()) <= 1e-12 * abs(tloss.item())
    scale = max(np.abs(g).max() for g in tgrads.values())
    for k in meta:  # (a conv bias before batch norm has a gradient of exactly 0 up to rounding)
        np.testing.assert_allclose(grads[k], tgrads[k], rtol=1e-9, atol=1e-13 * scale)
