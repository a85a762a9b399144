"""unfold (im2col) and fold (col2im): the two linear maps a convolution is built from.

Each is the other's adjoint, so each one's backward is the other op, and every
order of derivative of a convolution reduces to these two plus a matmul.
Layouts as torch.nn.functional.unfold / fold: (B, C, H, W) <-> (B, C*kh*kw, L),
where L = Ho*Wo positions in row-major order and the column index is
c*kh*kw + i*kw + j for kernel offset (i, j).
"""
from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


def _pair(v):
    return (int(v), int(v)) if not isinstance(v, (tuple, list)) else (int(v[0]), int(v[1]))


def out_size(size, k, stride, padding):
    return (size + 2 * padding - k) // stride + 1


class Unfold(Function):
    def forward(self, x):
        xp = backend.get_xp(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        B, C, H, W = x.shape
        Ho, Wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        cols = xp.empty((B, C, kh, kw, Ho, Wo), dtype=x.dtype)
        for i in range(kh):  # kh*kw strided copies: no scatter, same code on NumPy and CuPy
            for j in range(kw):
                cols[:, :, i, j] = x[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
        self.in_hw = (H, W)
        return cols.reshape(B, C * kh * kw, Ho * Wo)

    def backward(self, g):
        return (fold(g, self.in_hw, self.kernel_size, self.stride, self.padding),)


class Fold(Function):
    def forward(self, cols):
        xp = backend.get_xp(cols)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        H, W = self.output_size
        Ho, Wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
        B = cols.shape[0]
        C = cols.shape[1] // (kh * kw)
        cols = cols.reshape(B, C, kh, kw, Ho, Wo)
        out = xp.zeros((B, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                out[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += cols[:, :, i, j]
        return xp.ascontiguousarray(out[:, :, ph:ph + H, pw:pw + W])

    def backward(self, g):
        return (unfold(g, self.kernel_size, self.stride, self.padding),)


def unfold(x: Tensor, kernel_size, stride=1, padding=0) -> Tensor:
    """Sliding kxk patches of ``x`` (B, C, H, W) as columns: (B, C*kh*kw, Ho*Wo)."""
    if x.ndim != 4:
        raise ValueError(f"unfold: expected input of shape (B, C, H, W), got {x.shape}")
    k, s, p = _pair(kernel_size), _pair(stride), _pair(padding)
    H, W = x.shape[2:]
    if min(s) < 1 or min(p) < 0 or out_size(H, k[0], s[0], p[0]) < 1 or out_size(W, k[1], s[1], p[1]) < 1:
        raise ValueError(f"unfold: kernel {k} with stride {s} and padding {p} does not fit an "
                         f"input of spatial size {(H, W)}")
    return Unfold.apply(x, kernel_size=k, stride=s, padding=p)


def fold(cols: Tensor, output_size, kernel_size, stride=1, padding=0) -> Tensor:
    """Sum columns (B, C*kh*kw, L) back into an image (B, C, H, W): the adjoint of unfold."""
    k, s, p = _pair(kernel_size), _pair(stride), _pair(padding)
    H, W = _pair(output_size)
    L = out_size(H, k[0], s[0], p[0]) * out_size(W, k[1], s[1], p[1])
    if cols.ndim != 3 or cols.shape[1] % (k[0] * k[1]) or cols.shape[2] != L:
        raise ValueError(f"fold: expected columns of shape (B, C*{k[0]}*{k[1]}, {L}), got {cols.shape}")
    return Fold.apply(cols, output_size=(H, W), kernel_size=k, stride=s, padding=p)
