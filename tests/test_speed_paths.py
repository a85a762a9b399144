"""Shortcuts taken for speed (issue 14) give the same values and gradients as the long way."""
import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F
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


@pytest.mark.parametrize("k,s,p,hw", [(3, 2, ((0, 1), (0, 1)), (14, 14)), (3, 2, 1, (7, 7)), (3, 1, 1, (5, 6)),
                                       ((2, 3), (3, 2), ((2, 0), (1, 1)), (10, 9)), (5, 3, ((2, 1), (0, 2)), (10, 10)),
                                       (3, 2, 0, (11, 12)), (3, 2, 1, (2, 3)), (1, 2, 0, (6, 6))])
def test_conv_transpose_by_phases_equals_fold_of_the_column_gradient(k, s, p, hw, monkeypatch):
    """The CPU's transposed convolution, one stride phase at a time, gives fold(w^T g): odd sizes,
    pixels no window reaches (trailing rows), an image of one output position, per-task weights and one weight
    broadcast to every task, all images in one block and one image (one task) per block; a stride larger than
    the kernel (some pixels reached by no offset) has no plan and keeps fold."""
    from tinymeta.ops import conv
    rng = np.random.default_rng(0)
    k2, s2, p2 = conv._pair(k), conv._pair(s), conv.normalize_padding(p)
    plan = conv._subpixel_phases(k2, s2, p2, hw)
    if k2[0] < s2[0]:
        assert plan is None
        return
    L = conv.out_size(hw[0], k2[0], s2[0], p2[0]) * conv.out_size(hw[1], k2[1], s2[1], p2[1])
    K = 3 * k2[0] * k2[1]
    for w_shape, g_shape, shared in [((4, K), (5, 4, L), False), ((2, 1, 4, K), (2, 3, 4, L), False),
                                     ((2, 1, 4, K), (2, 3, 4, L), True)]:
        w, g = rng.standard_normal(w_shape), rng.standard_normal(g_shape)
        if shared:  # one weight broadcast to every task, as the inner loop's first step has it
            w = np.broadcast_to(w[:1], w_shape)
        cols = (np.swapaxes(w, -1, -2) @ g).reshape((-1,) + (w_shape[-1], L))
        expected = conv._fold(cols, hw, k2, s2, p2)
        for block_bytes in (10 ** 9, 1):
            monkeypatch.setattr(conv, "PHASES_BLOCK_BYTES", block_bytes)
            np.testing.assert_allclose(conv._conv_transpose_phases(w, g, k2, plan, hw), expected,
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("B, tasks, size", [(5, 1, 2), (5, 1, 5), (5, 1, 100), (12, 4, 1), (12, 4, 2),
                                             (12, 4, 3), (12, 4, 7), (12, 4, 12), (12, 3, 5)])
def test_phase_blocks_cover_every_image_once_within_its_task(B, tasks, size):
    """The transposed convolution's blocks: every image once, in order, none larger than the size
    asked for (unless one task's image must go alone), none across a task's edge, each with the
    tasks its images belong to."""
    from tinymeta.ops import conv
    N = B // tasks
    blocks = list(conv._blocks(B, tasks, size))
    assert [i for images, _ in blocks for i in range(B)[images]] == list(range(B))
    for images, task in blocks:
        members = range(B)[images]
        assert len(members) <= max(size, 1)
        assert list(range(tasks)[task]) == sorted({i // N for i in members})
        if size >= N:  # whole tasks
            assert len(members) % N == 0


def test_conv2d_input_gradient_takes_the_phases_on_the_cpu(monkeypatch):
    """Omniglot's 14x14 layer: the input gradient goes by phases, and never builds w^T g for fold."""
    from tinymeta.ops import conv
    rng = np.random.default_rng(0)
    calls, by_phases = [], conv._conv_transpose_phases
    monkeypatch.setattr(conv, "_conv_transpose_phases", lambda *a: calls.append(a) or by_phases(*a))
    monkeypatch.setattr(conv, "_fold", lambda *a: pytest.fail("fold(w^T g) built"))
    x = tm.tensor(rng.standard_normal((2, 3, 14, 14)), requires_grad=True)
    w = tm.tensor(rng.standard_normal((4, 3, 3, 3)))
    tm.grad(F.conv2d(x, w, stride=2, padding="same").sum(), [x])
    assert len(calls) == 1


@pytest.mark.parametrize("route", ["phases", "fold"])
def test_conv_transpose_op_gradients_to_second_order(route, monkeypatch):
    """ConvTranspose on its own, by phases and by fold(w^T g): gradients to second order, and the
    adjoint identity <u, fold(w^T g)> = <w unfold(u), g> that its backward rests on."""
    from tinymeta.ops import conv
    from tinymeta.testing import gradcheck
    monkeypatch.setattr(conv, "PHASES_MIN_POSITIONS", 0 if route == "phases" else 10 ** 9)
    rng = np.random.default_rng(0)
    geometry = ((3, 3), (2, 2), ((1, 1), (1, 1)), (6, 5))
    L = conv.out_size(6, 3, 2, (1, 1)) * conv.out_size(5, 3, 2, (1, 1))
    for w_shape, g_shape in [((3, 2 * 9), (4, 3, L)), ((2, 1, 3, 2 * 9), (2, 2, 3, L))]:
        w = tm.tensor(rng.standard_normal(w_shape), requires_grad=True)
        g = tm.tensor(rng.standard_normal(g_shape), requires_grad=True)
        def f(w, g):
            return (conv.ConvTranspose.apply(w, g, geometry=geometry) ** 2).tanh()
        assert gradcheck(f, [w, g]) and gradgradcheck(f, [w, g])
        u = rng.standard_normal((4, 2, 6, 5))
        lhs = (u * conv.ConvTranspose.apply(w, g, geometry=geometry).numpy()).sum()
        cols = tm.unfold(tm.tensor(u), 3, 2, 1).numpy().reshape(g_shape[:-2] + (18, L))
        assert np.isclose(lhs, ((w.numpy() @ cols) * g.numpy()).sum(), rtol=1e-12)


@pytest.mark.parametrize("preset", ["maml-omniglot-5w1s", "meta-sgd-omniglot-5w1s", "anil-omniglot-20w1s"])
def test_omniglot_meta_gradients_are_the_same_by_phases_and_by_fold(preset, monkeypatch):
    """A whole second-order meta-gradient of the Omniglot conv net (float64): the CPU's phases
    (ConvColumns, ConvTranspose, ConvWeightGrad), with columns stored per image or images-innermost,
    give what the plain matmul-and-fold graph gives; with per-task weights (MAML, Meta-SGD) and with
    ANIL's shared body."""
    from tinymeta.experiment.bench import random_batch
    from tinymeta.experiment.factories import build_algorithm, build_model
    from tinymeta.experiment.presets import PRESETS
    from tinymeta.ops import conv
    cfg = PRESETS[preset].replace(meta_batch=2, dtype="float64")
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    grads = {}
    for route, threshold, rows in (("phases", 0, 10 ** 9), ("images innermost", 0, 0),
                                   ("images innermost, folded", 10 ** 9, 0), ("fold", 10 ** 9, 10 ** 9)):
        monkeypatch.setattr(conv, "PHASES_MIN_POSITIONS", threshold)
        monkeypatch.setattr(conv, "IMAGES_INNERMOST_MIN_ROWS", rows)
        rng = np.random.default_rng(0)
        meta = algo.init_meta_params(model.init_params(0, "float64", "cpu"), rng)
        g, _ = algo.meta_gradient(meta, random_batch(cfg, "cpu", rng), rng=rng)
        grads[route] = {k: v.numpy() for k, v in g.items()}
    for route in ("phases", "images innermost", "images innermost, folded"):
        for k in grads["fold"]:
            np.testing.assert_allclose(grads[route][k], grads["fold"][k], rtol=1e-9, atol=1e-12, err_msg=f"{route}: {k}")


def _store_columns(monkeypatch, images_innermost, phases=True):
    """Per-task columns stored images-innermost or per image, whatever their size; the input
    gradient by phases or by fold."""
    from tinymeta.ops import conv
    monkeypatch.setattr(conv, "PHASES_MIN_POSITIONS", 0 if phases else 10 ** 9)
    monkeypatch.setattr(conv, "IMAGES_INNERMOST_MIN_ROWS", 0 if images_innermost else 10 ** 9)


@pytest.mark.parametrize("images_innermost", [True, False])
def test_unfold_split_into_tasks_gives_the_same_columns_and_gradients(images_innermost, monkeypatch):
    """unfold(x, tasks=T) is unfold(x) reshaped to (T, N, K, L), whichever way it is stored;
    images-innermost storage makes each task's columns one (K, L*N) matrix without a copy."""
    from tinymeta.ops import conv
    from tinymeta.testing import gradcheck
    _store_columns(monkeypatch, images_innermost)
    rng = np.random.default_rng(0)
    x = tm.tensor(rng.standard_normal((6, 2, 7, 6)), requires_grad=True)
    split = tm.unfold(x, 3, 2, ((0, 1), (1, 1)), tasks=3)
    plain = tm.unfold(x, 3, 2, ((0, 1), (1, 1)))
    assert split.shape == (3, 2) + plain.shape[1:]
    np.testing.assert_array_equal(split.numpy(), plain.numpy().reshape(split.shape))
    assert (conv._task_matrices(split.numpy()) is not None) == images_innermost
    assert split.numpy().flags.c_contiguous != images_innermost
    assert gradcheck(lambda a: tm.unfold(a, 3, 2, 1, tasks=2) ** 2, [x])
    assert gradgradcheck(lambda a: tm.unfold(a, 3, 2, 1, tasks=2) ** 2, [x])
    with pytest.raises(ValueError, match="6 images do not split into 4 tasks"):
        tm.unfold(x, 3, 2, 1, tasks=4)


@pytest.mark.parametrize("phases", [True, False])
@pytest.mark.parametrize("images_innermost", [True, False])
@pytest.mark.parametrize("per_task", [True, False])
def test_conv2d_gradients_to_second_order_with_images_innermost_columns(per_task, images_innermost, phases,
                                                                         monkeypatch):
    """conv2d with per-task weights, or one shared weight (whose images are one task's), its columns
    stored either way and its input gradient by phases or by fold: values equal, gradients in x, the
    weights and the bias checked to second order (the weight gradient's one-matmul-per-task path and
    its backward)."""
    from tinymeta.ops import conv
    from tinymeta.testing import gradcheck
    rng = np.random.default_rng(1)
    if per_task:
        x = tm.tensor(rng.standard_normal((2, 3, 2, 6, 5)), requires_grad=True)
        w = tm.tensor(rng.standard_normal((2, 4, 2, 3, 3)) * 0.5, requires_grad=True)
        b = tm.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    else:
        x = tm.tensor(rng.standard_normal((6, 2, 6, 5)), requires_grad=True)
        w = tm.tensor(rng.standard_normal((4, 2, 3, 3)) * 0.5, requires_grad=True)
        b = tm.tensor(rng.standard_normal(4), requires_grad=True)
    _store_columns(monkeypatch, False, phases=False)
    reference = F.conv2d(x, w, b, stride=2, padding="same").numpy()
    _store_columns(monkeypatch, images_innermost, phases)
    tasks = 2 if per_task else 1
    assert (conv._task_matrices(tm.unfold(x.reshape((6, 2, 6, 5)), 3, 2, 1, tasks=tasks).numpy()) is not None) \
        == images_innermost
    np.testing.assert_allclose(F.conv2d(x, w, b, stride=2, padding="same").numpy(), reference, rtol=1e-12)

    def f(x, w, b):
        return F.conv2d(x, w, b, stride=2, padding="same").tanh()
    assert gradcheck(f, [x, w, b]) and gradgradcheck(f, [x, w, b])


@pytest.mark.parametrize("x_shape,y_shape,shape", [
    ((3, 4, 5, 2), (3, 4, 2, 6), (3, 1, 5, 6)),   # products larger than the operands: one einsum
    ((3, 4, 5, 20), (3, 4, 20, 2), (3, 1, 5, 2)),  # smaller (a first layer's weight gradient): matmul, then sum
    ((4, 5, 2), (4, 2, 6), (5, 6)),
    ((4, 5, 20), (4, 20, 2), (5, 2)),
    ((3, 4, 5, 20), (3, 4, 20, 2), (1, 4, 5, 2)),  # the outer axis summed, the inner kept
])
def test_matmul_sum_to_by_einsum_and_by_matmul_then_sum(x_shape, y_shape, shape):
    """sum_to(x @ y, shape) as one op, whichever way NumPy computes it: the values of the explicit
    product summed, and gradients to second order."""
    from tinymeta.ops.matmul import matmul_sum_to
    from tinymeta.testing import gradcheck
    rng = np.random.default_rng(0)
    x = tm.tensor(rng.standard_normal(x_shape), requires_grad=True)
    y = tm.tensor(rng.standard_normal(y_shape), requires_grad=True)
    full = x.numpy() @ y.numpy()
    summed = tuple(d for d in range(full.ndim - len(shape))) + tuple(
        full.ndim - len(shape) + d for d, n in enumerate(shape) if n == 1 and full.shape[full.ndim - len(shape) + d] != 1)
    expected = full.sum(axis=summed).reshape(shape)
    np.testing.assert_allclose(matmul_sum_to(x, y, shape).numpy(), expected, rtol=1e-12, atol=1e-12)

    def f(x, y):
        return matmul_sum_to(x, y, shape).tanh()
    assert gradcheck(f, [x, y]) and gradgradcheck(f, [x, y])


@pytest.mark.parametrize("axes", [(0,), (1, 3), (0, 2, 3), (0, 1, 2, 3)])
def test_sum_kept_by_einsum_equals_ndarray_sum(axes):
    """NumPy's one-pass sum over non-adjacent axes (sum_to, batch norm's means) gives ndarray.sum's
    values with the axes kept, of the array or of a product; integers keep ndarray.sum."""
    from tinymeta.ops.common import sum_kept
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4, 5, 6)), rng.standard_normal((3, 4, 5, 6))
    np.testing.assert_allclose(sum_kept(a, axes), a.sum(axis=axes, keepdims=True), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_kept(a, axes, b), (a * b).sum(axis=axes, keepdims=True), rtol=1e-12, atol=1e-12)
    assert sum_kept(a.astype(np.float32), axes).dtype == np.float32
    ints = np.arange(360).reshape(3, 4, 5, 6)
    np.testing.assert_array_equal(sum_kept(ints, axes), ints.sum(axis=axes, keepdims=True))
