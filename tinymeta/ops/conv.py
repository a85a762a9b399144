"""unfold (im2col) and fold (col2im): the two linear maps a convolution is built from.

Each is the other's adjoint, so each one's backward is the other op, and every
order of derivative of a convolution reduces to these two plus a matmul.
Layouts as torch.nn.functional.unfold / fold: (B, C, H, W) <-> (B, C*kh*kw, L),
where L = Ho*Wo positions in row-major order and the column index is
c*kh*kw + i*kw + j for kernel offset (i, j).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


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
    def __init__(self, kernel_size, stride, padding):
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

    def forward(self, x):
        # One gather with a precomputed index: two kernels on a GPU instead of one per
        # kernel offset, and 2.5-4x faster than strided copies on NumPy too (short rows).
        xp = backend.get_xp(x)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        B, C, H, W = x.shape
        Ho, Wo = out_size(H, kh, self.stride[0], ph), out_size(W, kw, self.stride[1], pw)
        geometry = (self.kernel_size, self.stride, self.padding, (H, W))
        source = _cached(("unfold",) + geometry, lambda: _column_sources(*geometry), xp)
        flat = x.reshape(B * C, H * W)
        if any(ph + pw):
            flat = _with_zero(flat, xp)
        self.in_hw = (H, W)
        return xp.take(flat, source, axis=1).reshape(B, C * kh * kw, Ho * Wo)

    def backward(self, g):
        return (fold(g, self.in_hw, self.kernel_size, self.stride, self.padding),)


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
        xp = backend.get_xp(cols)
        (kh, kw), L = self.kernel_size, cols.shape[2]
        if xp is not np:
            fold_with = _fold_gathered  # three kernels, whatever the size
        else:
            fold_with = _fold_matmul if kh * kw * L <= FOLD_MATMUL_MAX else _fold_strided
        return fold_with(cols, self.output_size, self.kernel_size, self.stride, self.padding, xp)

    def backward(self, g):
        return (unfold(g, self.kernel_size, self.stride, self.padding),)


def unfold(x: Tensor, kernel_size, stride=1, padding=0) -> Tensor:
    """Sliding kxk patches of ``x`` (B, C, H, W) as columns: (B, C*kh*kw, Ho*Wo).

    ``padding``: an int, (ph, pw), or ((top, bottom), (left, right)) of zeros around the input.
    """
    if x.ndim != 4:
        raise ValueError(f"unfold: expected input of shape (B, C, H, W), got {x.shape}")
    k, s, p = _pair(kernel_size), _pair(stride), normalize_padding(padding)
    H, W = x.shape[2:]
    if min(s) < 1 or min(p[0] + p[1]) < 0 or out_size(H, k[0], s[0], p[0]) < 1 or out_size(W, k[1], s[1], p[1]) < 1:
        raise ValueError(f"unfold: kernel {k} with stride {s} and padding {p} does not fit an "
                         f"input of spatial size {(H, W)}")
    return Unfold.apply(x, kernel_size=k, stride=s, padding=p)


def fold(cols: Tensor, output_size, kernel_size, stride=1, padding=0) -> Tensor:
    """Sum columns (B, C*kh*kw, L) back into an image (B, C, H, W): the adjoint of unfold."""
    k, s, p = _pair(kernel_size), _pair(stride), normalize_padding(padding)
    H, W = _pair(output_size)
    L = out_size(H, k[0], s[0], p[0]) * out_size(W, k[1], s[1], p[1])
    if cols.ndim != 3 or cols.shape[1] % (k[0] * k[1]) or cols.shape[2] != L:
        raise ValueError(f"fold: expected columns of shape (B, C*{k[0]}*{k[1]}, {L}), got {cols.shape}")
    return Fold.apply(cols, output_size=(H, W), kernel_size=k, stride=s, padding=p)
