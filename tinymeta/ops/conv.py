"""unfold (im2col) and fold (col2im): the two linear maps a convolution is built from.

Each is the other's adjoint, so each one's backward is the other op, and every
order of derivative of a convolution reduces to these two plus a matmul.
Layouts as torch.nn.functional.unfold / fold: (B, C, H, W) <-> (B, C*kh*kw, L),
where L = Ho*Wo positions in row-major order and the column index is
c*kh*kw + i*kw + j for kernel offset (i, j).

A convolution's own product ``w @ unfold(x)`` is one more op here,
:class:`ConvColumns`, for one reason: its gradient with respect to x,
fold(w^T g), is a transposed convolution (:class:`ConvTranspose`), which the
CPU computes by phases of the stride without the (C*kh*kw, L) array w^T g
that fold would sum up. The convolution, its transposed convolution and its
weight gradient (:class:`ConvWeightGrad`) are each other's backward. A GPU,
and small images, take the plain way: a matmul, and fold as unfold's backward.
On the CPU, ``unfold(x, tasks=T)`` stores each task's columns images-innermost, as
one (C*kh*kw, L*N) matrix, so the task's convolution and weight gradient are one
matmul each.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .matmul import MatMulSumTo, matmul_sum_to
from .shape import reshape


def _pair(v):
    return (int(v), int(v)) if not isinstance(v, (tuple, list)) else (int(v[0]), int(v[1]))


def normalize_padding(padding):
    """Padding as ((top, bottom), (left, right)) from an int, a pair, or per-side pairs."""
    if not isinstance(padding, (tuple, list)):
        padding = (padding, padding)
    return tuple((int(p), int(p)) if not isinstance(p, (tuple, list)) else (int(p[0]), int(p[1]))
                 for p in padding)


def out_size(size, k, stride, padding):
    """Output length along one axis; ``padding`` is one int (both sides) or (before, after)."""
    before, after = (padding, padding) if not isinstance(padding, (tuple, list)) else padding
    return (size + before + after - k) // stride + 1


def same_padding(size, k, stride):
    """TensorFlow's 'SAME' padding along one axis: output ceil(size / stride), the odd pixel after.

    pad_total = max((out - 1) * stride + k - size, 0), split as (total // 2, total - total // 2),
    so a stride-2 3x3 conv on an even size pads only after (as tf.nn.conv2d does).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _window(offset, stride, pad, size, out):
    """For one kernel offset: which output positions see real (unpadded) input, and where.

    Output position y reads input index y*stride + offset - pad; only those
    inside [0, size) are copied, so no padded copy of the input is ever made.
    Returns (slice of output positions, slice of input indices), or None.
    """
    lo = max(0, -(-(pad - offset) // stride))             # ceil((pad - offset) / stride)
    hi = min(out - 1, (size - 1 + pad - offset) // stride)
    if hi < lo:
        return None
    first = lo * stride + offset - pad
    return slice(lo, hi + 1), slice(first, first + stride * (hi - lo) + 1, stride)


def _windows(kernel_size, stride, padding, in_hw, out_hw):
    """(i, j, output slices, input slices) for every kernel offset that touches the input."""
    for i in range(kernel_size[0]):
        rows = _window(i, stride[0], padding[0][0], in_hw[0], out_hw[0])
        for j in range(kernel_size[1]):
            cols = _window(j, stride[1], padding[1][0], in_hw[1], out_hw[1])
            if rows is not None and cols is not None:
                yield i, j, (rows[0], cols[0]), (rows[1], cols[1])


_INDEX: dict = {}  # geometry and backend -> index array, built once (a host-to-device copy on a GPU)


def _cached(key, build, xp):
    index = _INDEX.get(key + (xp,))
    if index is None:
        if len(_INDEX) > 256:  # a bound, for code that sweeps many image sizes
            _INDEX.clear()
        index = _INDEX[key + (xp,)] = xp.asarray(build())
    return index


def _column_sources(kernel_size, stride, padding, in_hw):
    """The input pixel each column entry reads, flattened over (i, j, oy, ox).

    Pixel y*W + x, or H*W where the entry lies in the zero padding (the caller
    appends one zero after the H*W pixels, so every entry is a plain read).
    """
    (kh, kw), (H, W) = kernel_size, in_hw
    Ho, Wo = out_size(H, kh, stride[0], padding[0]), out_size(W, kw, stride[1], padding[1])
    source = np.full((kh, kw, Ho, Wo), H * W, dtype=np.intp)
    pixel = np.arange(H * W).reshape(H, W)
    for i, j, out_slices, in_slices in _windows(kernel_size, stride, padding, in_hw, (Ho, Wo)):
        source[i, j][out_slices] = pixel[in_slices]
    return source.reshape(-1)


def _pixel_readers(kernel_size, stride, padding, in_hw):
    """The inverse map: for each input pixel, the column entries that read it, (H*W, m).

    m is the most entries any pixel is read by (9 for a 3x3 kernel at stride 1,
    4 at stride 2); shorter lists are filled with the index one past the last
    entry, where the caller appends a zero.
    """
    source = _column_sources(kernel_size, stride, padding, in_hw)
    n, pixels = source.size, in_hw[0] * in_hw[1]
    order = np.argsort(source, kind="stable")  # entries grouped by the pixel they read
    counts = np.bincount(source, minlength=pixels + 1)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - first[source[order]]  # position within its pixel's group
    readers = np.full((pixels + 1, int(counts.max())), n, dtype=np.intp)
    readers[source[order], rank] = order
    return readers[:pixels, :max(int(counts[:pixels].max()), 1)]  # row H*W: the padding, nobody's pixel


def _with_zero(flat, xp):
    """(R, N) -> (R, N + 1) with a zero last column: where padded reads point."""
    zero = _cached(("zero", flat.dtype.str), lambda: np.zeros((), dtype=flat.dtype), xp)
    zero = xp.broadcast_to(zero, (flat.shape[0], 1))
    return xp.concatenate((flat, zero), axis=1)


class Unfold(Function):
    def __init__(self, kernel_size, stride, padding, tasks=None):
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.tasks = tasks  # None: (B, K, L); T: (T, N, K, L) with B = T*N

    def forward(self, x):
        # One gather with a precomputed index: two kernels on a GPU instead of one per
        # kernel offset, and 2.5-4x faster than strided copies on NumPy too (short rows).
        xp = backend.get_xp(x)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        B, C, H, W = x.shape
        Ho, Wo = out_size(H, kh, self.stride[0], ph), out_size(W, kw, self.stride[1], pw)
        geometry = (self.kernel_size, self.stride, self.padding, (H, W))
        source = _cached(("unfold",) + geometry, lambda: _column_sources(*geometry), xp)
        self.in_hw = (H, W)
        if self.tasks is not None and _images_innermost(xp, C * kh * kw):
            return _unfold_images_innermost(x, self.tasks, source, (C * kh * kw, Ho * Wo))
        flat = x.reshape(B * C, H * W)
        if any(ph + pw):
            flat = _with_zero(flat, xp)
        cols = xp.take(flat, source, axis=1)
        return cols.reshape((B, C * kh * kw, Ho * Wo) if self.tasks is None else
                            (self.tasks, B // self.tasks, C * kh * kw, Ho * Wo))

    def backward(self, g):
        B = g.shape[0] * g.shape[1] if self.tasks is not None else g.shape[0]
        return (fold(reshape(g, (B,) + g.shape[-2:]), self.in_hw, self.kernel_size, self.stride, self.padding),)


# Per-task columns are stored images-innermost on the CPU where they have this many rows
# (C*kh*kw) or more: then a task's columns are one (C*kh*kw, L*N) matrix, so the convolution
# and its weight gradient are one matmul per task instead of one per image plus a sum (which
# einsum does by copying the columns). With fewer rows, as for a first layer on one channel,
# the columns are smaller than the output, and transposing the output costs more than the
# weight gradient saves. Measured on Omniglot's 14x14 layer (64 channels, 32 tasks), forward
# and both gradients, per image against images-innermost: 5 images per task 38.6 against
# 38.7 ms (one thread), 33.7 against 30.9 (two); 75 images 514 against 482, 457 against 385.
IMAGES_INNERMOST_MIN_ROWS = 64


def _images_innermost(xp, rows) -> bool:
    """Whether a per-task convolution's columns are stored images-innermost (see above): on the
    CPU, with columns of enough rows."""
    return xp is np and rows >= IMAGES_INNERMOST_MIN_ROWS


def _unfold_images_innermost(x, tasks, source, shape):
    """unfold of (T*N, C, H, W) as a (T, N, K, L) view of a (T, K, L, N) array.

    The gather runs over an image-innermost copy of x, (T, C, H*W + 1, N) with a zero
    pixel last, so each column entry copies N contiguous values at once.
    """
    B, C, H, W = x.shape
    N = B // tasks
    images = np.empty((tasks, C, H * W + 1, N), dtype=x.dtype)
    images[:, :, :H * W] = x.reshape(tasks, N, C, H * W).transpose(0, 2, 3, 1)
    images[:, :, H * W] = 0
    cols = np.take(images, source, axis=2)                     # (T, C, kh*kw*L, N)
    return cols.reshape((tasks,) + shape + (N,)).transpose(0, 3, 1, 2)


def _task_matrices(cols):
    """A (T, N, K, L) array stored images-innermost as its (T, K, L*N) matrices, else None."""
    if cols.ndim != 4 or backend.get_xp(cols) is not np:
        return None
    stored = cols.transpose(0, 2, 3, 1)
    return stored.reshape(stored.shape[:2] + (-1,)) if stored.flags.c_contiguous else None


def _fold_strided(cols, output_size, kernel_size, stride, padding, xp):
    """col2im as kh*kw strided additions: NumPy's way for large images (a gather-and-sum is 2x slower)."""
    (kh, kw), (H, W) = kernel_size, output_size
    Ho, Wo = out_size(H, kh, stride[0], padding[0]), out_size(W, kw, stride[1], padding[1])
    B, C = cols.shape[0], cols.shape[1] // (kh * kw)
    cols = cols.reshape(B, C, kh, kw, Ho, Wo)
    out = xp.zeros((B, C, H, W), dtype=cols.dtype)
    for i, j, (oy, ox), (iy, ix) in _windows(kernel_size, stride, padding, (H, W), (Ho, Wo)):
        out[:, :, iy, ix] += cols[:, :, i, j, oy, ox]
    return out


def _fold_matrix(kernel_size, stride, padding, in_hw, dtype):
    """The 0/1 matrix S (kh*kw*L, H*W) with cols @ S = col2im(cols): S[e, p] = 1 where entry e reads pixel p."""
    source = _column_sources(kernel_size, stride, padding, in_hw)
    pixels = in_hw[0] * in_hw[1]
    matrix = np.zeros((source.size, pixels + 1), dtype=dtype)
    matrix[np.arange(source.size), source] = 1
    return matrix[:, :pixels]  # the last column collected the padding entries


def _fold_matmul(cols, output_size, kernel_size, stride, padding, xp):
    """col2im as one matmul with a 0/1 matrix: for small images NumPy's strided additions run
    over rows of a few pixels each, and BLAS is 5-10x faster (Omniglot's 7x7 and 4x4 maps)."""
    (kh, kw), (H, W) = kernel_size, output_size
    B, C = cols.shape[0], cols.shape[1] // (kh * kw)
    geometry = (kernel_size, stride, padding, (H, W))
    matrix = _cached(("fold-matrix", cols.dtype.str) + geometry, lambda: _fold_matrix(*geometry, cols.dtype), xp)
    return (cols.reshape(B * C, -1) @ matrix).reshape(B, C, H, W)


FOLD_MATMUL_MAX = 512  # kh*kw*L at most this: a matmul costs at most this many multiply-adds per pixel


def _fold_gathered(cols, output_size, kernel_size, stride, padding, xp):
    """col2im as one gather and one sum: three kernels on a GPU (not 2*kh*kw + 1), no atomics.

    out[b, c, p] = sum_r cols[b, c, readers[p, r]], over the entries that read pixel p.
    """
    (kh, kw), (H, W) = kernel_size, output_size
    B, C = cols.shape[0], cols.shape[1] // (kh * kw)
    geometry = (kernel_size, stride, padding, (H, W))
    readers = _cached(("fold",) + geometry, lambda: _pixel_readers(*geometry), xp)
    flat = _with_zero(cols.reshape(B * C, -1), xp)
    return xp.take(flat, readers, axis=1).sum(axis=-1).reshape(B, C, H, W)


class Fold(Function):
    def __init__(self, output_size, kernel_size, stride, padding):
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

    def forward(self, cols):
        return _fold(cols, self.output_size, self.kernel_size, self.stride, self.padding)

    def backward(self, g):
        return (unfold(g, self.kernel_size, self.stride, self.padding),)


def unfold(x: Tensor, kernel_size, stride=1, padding=0, tasks=None) -> Tensor:
    """Sliding kxk patches of ``x`` (B, C, H, W) as columns: (B, C*kh*kw, Ho*Wo).

    ``padding``: an int, (ph, pw), or ((top, bottom), (left, right)) of zeros around the input.
    ``tasks``: T, when the B images are T tasks of N: the columns come as (T, N, C*kh*kw, Ho*Wo)
    (on the CPU, mostly a view of an images-innermost array: see ``IMAGES_INNERMOST_MIN_ROWS``).
    """
    if x.ndim != 4:
        raise ValueError(f"unfold: expected input of shape (B, C, H, W), got {x.shape}")
    k, s, p = _pair(kernel_size), _pair(stride), normalize_padding(padding)
    H, W = x.shape[2:]
    if min(s) < 1 or min(p[0] + p[1]) < 0 or out_size(H, k[0], s[0], p[0]) < 1 or out_size(W, k[1], s[1], p[1]) < 1:
        raise ValueError(f"unfold: kernel {k} with stride {s} and padding {p} does not fit an "
                         f"input of spatial size {(H, W)}")
    if tasks is not None and (tasks < 1 or x.shape[0] % tasks):
        raise ValueError(f"unfold: {x.shape[0]} images do not split into {tasks} tasks")
    return Unfold.apply(x, kernel_size=k, stride=s, padding=p, tasks=tasks)


def fold(cols: Tensor, output_size, kernel_size, stride=1, padding=0) -> Tensor:
    """Sum columns (B, C*kh*kw, L) back into an image (B, C, H, W): the adjoint of unfold."""
    k, s, p = _pair(kernel_size), _pair(stride), normalize_padding(padding)
    H, W = _pair(output_size)
    L = out_size(H, k[0], s[0], p[0]) * out_size(W, k[1], s[1], p[1])
    if cols.ndim != 3 or cols.shape[1] % (k[0] * k[1]) or cols.shape[2] != L:
        raise ValueError(f"fold: expected columns of shape (B, C*{k[0]}*{k[1]}, {L}), got {cols.shape}")
    return Fold.apply(cols, output_size=(H, W), kernel_size=k, stride=s, padding=p)


def _fold(cols, output_size, kernel_size, stride, padding):
    """col2im of a raw array, by whichever method is fastest on its device and size."""
    xp = backend.get_xp(cols)
    (kh, kw), L = kernel_size, cols.shape[2]
    if xp is not np:
        fold_with = _fold_gathered  # three kernels, whatever the size
    else:
        fold_with = _fold_matmul if kh * kw * L <= FOLD_MATMUL_MAX else _fold_strided
    return fold_with(cols, output_size, kernel_size, stride, padding, xp)


def _axis_phases(size, k, stride, pad, out):
    """One axis of a transposed convolution, split by the stride's phases.

    Input position x is reached by kernel offset i from output o = (x + pad - i) / stride,
    so only offsets i = r, r + stride, ... (r = (x + pad) mod stride) reach it. For each
    r: (those offsets, the positions x of phase r, for each offset the source o of each x,
    or -1 where o falls outside the output).
    """
    phases = []
    for r in range(stride):
        offsets = list(range(r, k, stride))
        xs = [x for x in range(size) if (x + pad) % stride == r]
        sources = [[(x + pad - i) // stride if 0 <= x + pad - i < out * stride else -1 for x in xs]
                   for i in offsets]
        phases.append((offsets, xs, sources))
    return phases


def _subpixel_phases(kernel_size, stride, padding, in_hw):
    """The plan of :func:`_conv_transpose_phases`: for each phase (ry, rx) of the stride grid,
    (its kernel offsets i*kw + j; which upstream pixel each offset reads at each pixel of
    the phase, flattened over (pixel, offset), Ho*Wo where it reads none; the phase's
    pixels as a (row slice, column slice) of the image). None when some pixels are
    reached by no offset (a stride larger than the kernel).
    """
    (kh, kw), (H, W) = kernel_size, in_hw
    Ho, Wo = out_size(H, kh, stride[0], padding[0]), out_size(W, kw, stride[1], padding[1])
    rows = _axis_phases(H, kh, stride[0], padding[0][0], Ho)
    cols = _axis_phases(W, kw, stride[1], padding[1][0], Wo)
    plan = []
    for offsets_y, ys, src_y in rows:
        for offsets_x, xs, src_x in cols:
            if not ys or not xs:
                continue  # a phase with no pixels (an image smaller than the stride)
            if not offsets_y or not offsets_x:
                return None
            oy, ox = np.array(src_y)[:, None, :, None], np.array(src_x)[None, :, None, :]
            index = np.where((oy >= 0) & (ox >= 0), oy * Wo + ox, Ho * Wo)  # (ny, nx, |ys|, |xs|)
            offsets = np.array([i * kw + j for i in offsets_y for j in offsets_x])
            pixels = (slice(ys[0], ys[-1] + 1, stride[0]), slice(xs[0], xs[-1] + 1, stride[1]))
            plan.append((offsets, index.transpose(2, 3, 0, 1).reshape(-1), pixels))  # pixel-major
    return plan


# The phases' shifted copies of g are gathered and multiplied this many bytes at a time (whole
# tasks, or parts of one task), so each block's copy stays in cache instead of one array 9x the
# size of g going through memory. Omniglot's 14x14 layer (64 channels, one thread), all images in
# one block against blocks of 8 MiB: 360 images 78 against 52 ms; 2560 images 2050 against 390
# (32 tasks: 2055 against 389); 4 MiB was as fast, 16 MiB (and 2 MiB on 2560 images) slower.
PHASES_BLOCK_BYTES = 8 << 20


def _conv_transpose_phases(w, g, kernel_size, plan, in_hw):
    """fold(w^T g) on the CPU, one phase of the stride grid at a time (a sub-pixel convolution).

    w (O, C*kh*kw) or (T, 1, O, C*kh*kw), g (..., O, L) -> (B, C, H, W). For a stride-2 3x3 kernel
    ('same' padding) a pixel with even coordinates is reached by 4 kernel offsets, one with odd
    coordinates by 1: phase (ry, rx) is a stride-1 convolution of g with the offsets of that
    phase, one gather of shifted copies of g and one matmul, 9 offsets' multiply-adds in all, as
    many as w^T g. fold(w^T g) would write w^T g, 9x the size of g, only to sum it with a 0/1
    matrix of (9 L x H W). g is gathered channels-last, (pixel, offset) rows of O values, so a
    phase is one large matmul for a block of images (per task with per-task weights), rather
    than one small matmul per image; blocks of ``PHASES_BLOCK_BYTES``.
    """
    H, W = in_hw
    lead, (O, L) = g.shape[:-2], g.shape[-2:]
    kk = kernel_size[0] * kernel_size[1]
    B, C = int(np.prod(lead)), w.shape[-1] // kk
    if w.ndim == 4 and w.strides[0] == 0:  # one weight broadcast to every task: take it once
        w = w[0, 0]
    per_offset = np.ascontiguousarray(np.moveaxis(w.reshape(w.shape[:-1] + (C, kk)), -1, -3))  # (..., kk, O, C)
    image_bytes = max(index.size for _, index, _ in plan) * O * g.itemsize  # one image's largest gather
    g = g.reshape(B, O, L)
    out = np.empty((B, C, H, W), dtype=np.result_type(w, g))
    tasks = w.shape[0] if w.ndim == 4 else 1
    for images, task in _blocks(B, tasks, max(1, PHASES_BLOCK_BYTES // image_bytes)):
        _phases_block(per_offset if w.ndim == 2 else per_offset[task], g[images], plan, out[images])
    return out


def _blocks(B, tasks, size):
    """Blocks of about ``size`` of B images in ``tasks`` equal tasks, none across a task's edge:
    (images, tasks) slices, whole tasks where a task holds at most ``size`` images, else parts
    of one task."""
    N = B // tasks
    if size >= N:
        k = size // N
        for t in range(0, tasks, k):
            yield slice(t * N, min(t + k, tasks) * N), slice(t, t + k)
    else:
        for t in range(tasks):
            for s in range(0, N, size):
                yield slice(t * N + s, t * N + min(s + size, N)), slice(t, t + 1)


def _phases_block(per_offset, g, plan, out):
    """One block of :func:`_conv_transpose_phases`: g (B, O, L) into out (B, C, H, W), with the
    weight per kernel offset (kk, O, C), or (T, 1, kk, O, C) for T tasks of B / T images."""
    B, O, L = g.shape
    C = out.shape[1]
    source = np.empty((B, L + 1, O), dtype=g.dtype)
    source[:, :L] = g.swapaxes(1, 2)
    source[:, L] = 0  # pixel L: the zero that out-of-range reads get
    for offsets, index, (rows, cols) in plan:
        phase = out[:, :, rows, cols]  # a strided view: the pixels this phase reaches
        rows_n = len(offsets) * O
        shifted = np.take(source, index, axis=1)  # (B, pixels * offsets, O)
        wp = np.take(per_offset, offsets, axis=-3).reshape(per_offset.shape[:-3] + (rows_n, C))
        if wp.ndim == 2:
            res = shifted.reshape(-1, rows_n) @ wp
        else:  # per-task weights (T, 1, ...): the task's images share one matmul
            res = shifted.reshape(wp.shape[0], -1, rows_n) @ wp[:, 0]
        phase[...] = res.reshape(B, phase.shape[2], phase.shape[3], C).transpose(0, 3, 1, 2)


class ConvTranspose(Function):
    """fold(w^T @ g): a convolution's gradient with respect to its input (a transposed convolution).

    w (O, C*kh*kw) or (T, 1, O, C*kh*kw), g (..., O, L) -> (B, C, H, W), B = prod(g's
    leading axes). Its adjoint in g is the convolution w @ unfold(u), in w the weight
    gradient g unfold(u)^T, so its backward is :class:`ConvColumns` and a matmul.
    """

    saves_inputs = True

    def __init__(self, geometry):
        self.geometry = geometry  # (kernel_size, stride, padding, in_hw), as normalised by unfold

    def forward(self, w, g):
        kernel_size, stride, padding, in_hw = self.geometry
        if _by_phases(g, self.geometry):
            return _conv_transpose_phases(w, g, kernel_size, _cached_plan(self.geometry), in_hw)
        cols = w.swapaxes(-1, -2) @ g
        return _fold(cols.reshape((-1,) + cols.shape[-2:]), in_hw, kernel_size, stride, padding)

    def backward(self, u):
        w, g = self.inputs
        need_w, need_g = self.needs_input_grad
        kernel_size, stride, padding, _ = self.geometry
        tasks = g.shape[0] if g.ndim == 4 else None  # per-task (T, N, O, L), as conv2d's columns
        cols = reshape(unfold(u, kernel_size, stride, padding, tasks), g.shape[:-2] + (w.shape[-1], g.shape[-1]))
        dw = conv_weight_grad(g, cols, u, w.shape, self.geometry) if need_w else None
        dg = ConvColumns.apply(w, cols, u, geometry=self.geometry) if need_g else None
        return dw, dg


# Phases on the CPU from this many output positions per image (L): with fewer, each phase's
# matmul is small, and one w^T g for all offsets with a matmul fold is as fast or faster.
# Measured for 64 channels and per-task weights (32 tasks), phases against fold: 7x7 images
# (L = 16), 5 images per task 3.1 against 3.9 ms (one thread), 3.4 against 3.5 (two); 75
# images 56 against 70, 43 against 54. 4x4 images (L = 4): 1.6 against 0.8 (5 images), 18
# against 14 (75). 14x14 (L = 49): 13 against 27 (5 images, one thread).
PHASES_MIN_POSITIONS = 16

_PLANS: dict = {}  # geometry -> plan of _subpixel_phases (or None)


def _cached_plan(geometry):
    if geometry not in _PLANS:
        if len(_PLANS) > 256:  # a bound, as for _INDEX
            _PLANS.clear()
        _PLANS[geometry] = _subpixel_phases(*geometry)
    return _PLANS[geometry]


def _by_phases(g, geometry) -> bool:
    """Whether fold(w^T g) is computed by phases: on the CPU, for large enough images."""
    return (backend.get_xp(g) is np and g.shape[-1] >= PHASES_MIN_POSITIONS
            and _cached_plan(geometry) is not None)


class ConvColumns(Function):
    """w @ cols, where cols = unfold(x): a convolution, whose input gradient can skip the columns.

    Through the columns, x gets fold(w^T g). Where the CPU computes that by phases,
    this op hands it to x directly, as one :class:`ConvTranspose` that never builds
    w^T g, and gives ``cols`` none: they are unfold(x), and x receives their share in
    full. Elsewhere (a GPU, small images) the columns get w^T g, as from a matmul, and
    unfold's backward folds it: on a GPU that is fewer kernels, as the columns' other
    gradient (from the weight gradient's own derivative, in second order) joins it
    before the one fold. The weight gets g cols^T. ``x`` is an input only to receive
    its gradient.
    """

    saves_inputs = True

    def __init__(self, geometry):
        self.geometry = geometry  # (kernel_size, stride, padding, in_hw), as normalised by unfold

    def forward(self, w, cols, x):
        matrices = _task_matrices(cols)
        if matrices is None:
            return w @ cols
        T, N, _, L = cols.shape  # images-innermost columns: one matmul per task, then (T, N, O, L)
        out = (w[..., 0, :, :] if w.ndim == 4 else w) @ matrices
        return np.ascontiguousarray(out.reshape(out.shape[:-1] + (L, N)).transpose(0, 3, 1, 2))

    def backward(self, g):
        w, cols, x = self.inputs
        need_w, _, need_x = self.needs_input_grad
        dw = conv_weight_grad(g, cols, x, w.shape, self.geometry) if need_w else None
        dcols = dx = None
        if need_x and _by_phases(g.array, self.geometry):
            dx = ConvTranspose.apply(w, g, geometry=self.geometry)
        elif need_x:
            dcols = matmul_sum_to(w, g, cols.shape, True, False)
        return dw, dcols, dx


class ConvWeightGrad(Function):
    """sum_to(g @ cols^T, shape), cols = unfold(x): a convolution's weight gradient, whose own
    input gradient skips the columns (as :class:`ConvColumns` does).

    For an upstream U (the weight's shape), d<U, g cols^T>/dg = U @ cols, the convolution of x
    with U, and d/dcols = U^T g, which folded into x is :class:`ConvTranspose` (U, g). Used
    where the CPU folds by phases (in second-order MAML x then gets both of its gradients as
    transposed convolutions, and no w^T g is ever folded) or stores the columns images-innermost
    (then it is one matmul per task).
    """

    saves_inputs = True

    def __init__(self, shape, geometry):
        self.shape, self.geometry = shape, geometry

    def forward(self, g, cols, x):
        matrices = _task_matrices(cols)
        T, O, K = cols.shape[0], g.shape[-2], cols.shape[-2]
        if matrices is None or self.shape != (T, 1, O, K):
            return MatMulSumTo(self.shape, tb=True).forward(g, cols)
        # images-innermost columns, a per-task weight: sum_n g_n cols_n^T is one matmul per task
        N, L = g.shape[1], g.shape[-1]
        g = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).reshape(T, O, L * N)
        return (g @ matrices.swapaxes(-1, -2)).reshape(self.shape)

    def backward(self, u):
        g, cols, x = self.inputs
        need_g, _, need_x = self.needs_input_grad
        dg = ConvColumns.apply(u, cols, x, geometry=self.geometry) if need_g else None
        dx = ConvTranspose.apply(u, g, geometry=self.geometry) if need_x else None
        return dg, None, dx


def conv_weight_grad(g: Tensor, cols: Tensor, x: Tensor, shape, geometry) -> Tensor:
    """The weight gradient sum_to(g cols^T, shape) of a convolution ``w @ cols``, cols = unfold(x)."""
    if _by_phases(g.array, geometry) or _task_matrices(cols.array) is not None:
        return ConvWeightGrad.apply(g, cols, x, shape=tuple(shape), geometry=geometry)
    return matmul_sum_to(g, cols, shape, False, True)


def conv_columns(w: Tensor, cols: Tensor, x: Tensor, kernel_size, stride, padding) -> Tensor:
    """``w @ cols`` for ``cols`` = unfold(x) (reshaped per task), differentiated as a convolution.

    w (O, C*kh*kw) with cols (B, C*kh*kw, L), or w (T, 1, O, C*kh*kw) with cols
    (T, N, C*kh*kw, L); x (B, C, H, W) with B = N*T. Used by :func:`tinymeta.functional.conv2d`.
    """
    k, s, p = _pair(kernel_size), _pair(stride), normalize_padding(padding)
    return ConvColumns.apply(w, cols, x, geometry=(k, s, p, tuple(x.shape[2:])))
