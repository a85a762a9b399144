"""The dtype and device moves: astype and to_device, each the other way round in backward."""
from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, a):
        self.in_dtype = a.dtype
        return a.astype(self.dtype)

    def backward(self, g):
        return (astype(g, self.in_dtype),)


def astype(a: Tensor, dtype) -> Tensor:
    """Cast to another dtype; differentiable between float dtypes."""
    dtype = backend.resolve_dtype(dtype)
    if dtype == a.dtype:
        return a
    if a.requires_grad and dtype.kind != "f":
        return Tensor(a.array.astype(dtype))  # integer results are constants
    return AsType.apply(a, dtype=dtype)


class ToDevice(Function):
    def __init__(self, device):
        self.device = device

    def forward(self, a):
        self.in_device = backend.device_of(a)
        return backend.to_device(a, self.device)

    def backward(self, g):
        return (to_device(g, self.in_device),)


def to_device(a: Tensor, device: str) -> Tensor:
    """Copy to another device ('cpu' or 'cuda'); the gradient is copied back."""
    if a.device == device:
        return a
    return ToDevice.apply(a, device=device)
