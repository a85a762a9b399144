"""The Tensor: a backend array plus what autodiff needs to know about it."""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import backward as _backward

_FLOAT_NAMES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}


def _resolve_dtype(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in _FLOAT_NAMES:
        return np.dtype(_FLOAT_NAMES[dtype])
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: use 'float32', 'float64' or a NumPy dtype") from None


class Tensor:
    """An n-dimensional array on a device, recorded for differentiation.

    Make one with :func:`tinymeta.tensor`. ``data`` is the backend array
    (NumPy or CuPy); ``grad`` is filled by :meth:`backward`; ``_ctx`` is the
    :class:`~tinymeta.autograd.Function` that produced it (None for a leaf).
    """

    __slots__ = ("data", "requires_grad", "grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected op

    def __init__(self, data, requires_grad=False):
        self.data = data
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = None

    # ---- facts -----------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(self.data.size)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def xp(self):
        """The array module holding this tensor (numpy or cupy)."""
        return backend.get_xp(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=50,
                               prefix="tensor(")
        extra = f", dtype={self.dtype}, device={self.device}"
        if self._ctx is not None:
            extra += f", grad_fn={type(self._ctx).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- conversion --------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a host NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def detach(self):
        """The same values, cut from the graph (a constant)."""
        return Tensor(self.data)

    def to(self, device=None, dtype=None):
        """A copy on another device and/or with another float dtype (differentiable)."""
        out = self
        if dtype is not None:
            out = ops.astype(out, dtype)
        if device is not None and backend.check_device(device) != out.device:
            out = ops.to_device(out, backend.check_device(device))
        return out

    def astype(self, dtype):
        return ops.astype(self, dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def requires_grad_(self, flag=True):
        """Mark a leaf as a parameter to differentiate with respect to (in place)."""
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, this one is {self.dtype}; "
                            "pass dtype='float32' or 'float64' when creating it")
        if self._ctx is not None:
            raise RuntimeError("requires_grad_ is for leaves; use .detach() first")
        self.requires_grad = bool(flag)
        return self

    # ---- autodiff ----------------------------------------------------------------
    def backward(self, grad=None, create_graph=False):
        """Accumulate d self / d leaf into ``leaf.grad`` for every leaf that requires grad."""
        _backward(self, grad, create_graph)

    # ---- arithmetic (each dunder calls an op) -------------------------------------
    def __add__(self, o): return ops.add(self, o)
    def __radd__(self, o): return ops.add(o, self)
    def __sub__(self, o): return ops.sub(self, o)
    def __rsub__(self, o): return ops.sub(o, self)
    def __mul__(self, o): return ops.mul(self, o)
    def __rmul__(self, o): return ops.mul(o, self)
    def __truediv__(self, o): return ops.div(self, o)
    def __rtruediv__(self, o): return ops.div(o, self)
    def __pow__(self, o): return ops.pow(self, o)
    def __rpow__(self, o): return ops.pow(o, self)
    def __matmul__(self, o): return ops.matmul(self, o)
    def __rmatmul__(self, o): return ops.matmul(o, self)
    def __neg__(self): return ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return ops.abs(self)
    def __getitem__(self, index): return ops.getitem(self, index)

    def __setitem__(self, index, value):
        raise TypeError("tinymeta tensors are immutable (in-place writes would corrupt recorded "
                        "graphs); build a new tensor, e.g. with tinymeta.where or concatenate")

    # Comparisons give constant boolean tensors; == and != stay identity so that
    # tensors can live in sets and dicts (use .eq() for elementwise equality).
    def __lt__(self, o): return ops.compare(self, o, "lt")
    def __le__(self, o): return ops.compare(self, o, "le")
    def __gt__(self, o): return ops.compare(self, o, "gt")
    def __ge__(self, o): return ops.compare(self, o, "ge")
    def eq(self, o): return ops.compare(self, o, "eq")
    __hash__ = object.__hash__

    # ---- methods mirroring the functional ops --------------------------------------
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def sqrt(self): return ops.sqrt(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def abs(self): return ops.abs(self)
    def sum(self, axis=None, keepdims=False): return ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return ops.mean(self, axis, keepdims)
    def var(self, axis=None, keepdims=False, ddof=0): return ops.var(self, axis, keepdims, ddof)
    def max(self, axis=None, keepdims=False): return ops.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return ops.min(self, axis, keepdims)
    def argmax(self, axis=None): return ops.argmax(self, axis)

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.transpose(self, axes or None)

    def permute(self, *axes):
        return self.transpose(*axes)

    @property
    def T(self):
        return ops.transpose(self, None)

    def swapaxes(self, a, b): return ops.swapaxes(self, a, b)
    def broadcast_to(self, shape): return ops.broadcast_to(self, shape)
    def expand(self, *shape):
        return ops.broadcast_to(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    def flatten(self, start_axis=0): return ops.flatten(self, start_axis)
    def squeeze(self, axis): return ops.squeeze(self, axis)
    def unsqueeze(self, axis): return ops.unsqueeze(self, axis)


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Make a Tensor (always a copy of ``data``).

    Python numbers and lists become float32 unless ``dtype`` says otherwise; a
    NumPy or CuPy array keeps its dtype (float64 stays float64, integer labels
    stay integers). ``dtype`` accepts 'float32', 'float64' or a NumPy dtype;
    ``device`` is 'cpu' or 'cuda' (default: :func:`tinymeta.set_default_device`,
    then ``$TINYMETA_DEVICE``, then 'cpu').

    Example::

        >>> tinymeta.tensor([[1, 2], [3, 4]], requires_grad=True)
        tensor([[1., 2.],
                [3., 4.]], dtype=float32, device=cpu, requires_grad=True)
    """
    dtype = _resolve_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "__array__") or hasattr(data, "__cuda_array_interface__"):
        src_device = backend.device_of(data)
    else:  # Python numbers, lists, tuples
        src_device = "cpu"
        data = np.asarray(data)
        if dtype is None:
            if data.dtype == object:
                raise TypeError("tensor() needs numbers or arrays of one shape, got ragged or "
                                "non-numeric data")
            dtype = np.dtype(np.float32)
    device = backend.check_device(device) if device is not None else (
        backend.default_device() if src_device == "cpu" else src_device)
    xp = backend.xp_for(device)
    if device == "cpu":
        array = np.array(backend.to_numpy(data), dtype=dtype, copy=True)
    else:
        array = xp.array(data, dtype=dtype, copy=True)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"tensor() supports float, integer and bool data, got {array.dtype}")
    t = Tensor(array)
    if requires_grad:
        t.requires_grad_(True)
    return t


from . import ops  # noqa: E402  (ops needs Tensor defined first)
