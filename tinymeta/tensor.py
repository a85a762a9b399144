"""The Tensor: a backend array plus what autodiff needs to know about it."""
from __future__ import annotations

import inspect
import numbers

import numpy as np

from . import backend


class Tensor:
    """An n-dimensional array on a device, recorded for differentiation.

    Make one with :func:`tinymeta.tensor`. ``array`` is the backend array (NumPy
    or CuPy) that ops read; ``grad`` is filled by :meth:`backward`; ``_ctx`` is
    the :class:`~tinymeta.autograd.Function` that produced it (None for a leaf).

    Tensors are values: ops never change them. The one way to change a tensor
    in place is through ``.data``, which hands out the backend array itself
    (an optimizer step does this, under ``no_grad``). Because the engine cannot
    see what is done with that array, taking or assigning ``.data`` counts as
    a change and raises ``version`` by one. An op whose backward needs its
    inputs' values remembers their versions; if one has changed by the time
    the gradient is computed, :func:`~tinymeta.grad` raises
    :class:`~tinymeta.autograd.ModifiedAfterUseError` instead of returning a
    gradient computed from the new values. So: do not write through ``.data``
    into a tensor that a graph still needs; change parameters after the
    gradient, or make a new tensor (``x = x - lr * g``). To read values use
    :meth:`numpy`, :meth:`item` or :meth:`detach`, which count as no change.

    What is caught, on NumPy and CuPy alike: every change made through
    ``.data`` (``x.data[...] = v``, ``x.data -= v``, ``x.data = new``) after an
    op that needs ``x``'s values recorded it. Not caught: writes into an array
    obtained from ``.data`` *before* the op recorded ``x`` (keep no such
    references), through another tensor sharing the array (``x.detach().data``),
    and into ``x.array`` (the engine's own read access; never write into it).
    Too much is caught in one case: merely reading ``.data`` after use is
    reported as a change as well; read with ``.numpy()`` instead.
    """

    __slots__ = ("array", "requires_grad", "grad", "_ctx", "version", "__weakref__")
    # cupy_array (op) tensor defers to Tensor's reflected op by this priority (NumPy arrays
    # go through __array_ufunc__ below)
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False):
        self.array = data
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = None
        self.version = 0

    @property
    def data(self):
        """The backend array itself, for in-place changes; taking it counts as a change (see the class)."""
        self.version += 1
        return self.array

    @data.setter
    def data(self, array):
        self.array = array
        self.version += 1

    # ---- facts -----------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def size(self):
        return int(self.array.size)

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self):
        return backend.device_of(self.array)

    @property
    def xp(self):
        """The array module holding this tensor (numpy or cupy)."""
        return backend.get_xp(self.array)

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
        """The values as a host NumPy array of your own: always a copy.

        A copy, not a view, on every device (from a GPU it has to be one anyway): writing
        into it cannot change this tensor or a graph that uses it, and it keeps the values
        it had when read, also after an optimizer step changes the tensor in place. (A
        read-only view would cost nothing but change under your feet after such a step.)
        """
        array = self.array
        if type(array) is np.ndarray or backend.device_of(array) == "cpu":
            return np.array(array, copy=True)
        return backend.to_numpy(array)

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
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous: say which "
                             "you mean with .any() or .all() (e.g. `if (x > 0).all():`)")
        return bool(self.item())

    def any(self, axis=None, keepdims=False):
        """Whether any element is nonzero (over ``axis``), as a constant boolean tensor."""
        return ops.any(self, axis, keepdims)

    def all(self, axis=None, keepdims=False):
        """Whether every element is nonzero (over ``axis``), as a constant boolean tensor."""
        return ops.all(self, axis, keepdims)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(tensor)``: a copy of the values, as :meth:`numpy` gives."""
        if copy is False:
            raise ValueError("a tensor hands its values to NumPy only as a copy (copy=False is impossible); "
                             "use tensor.numpy()")
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    # ---- NumPy's protocols ---------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on tensors: ``np.sin(x)`` is ``tinymeta.sin(x)``.

        Why dispatch rather than refuse: NumPy would compute on plain arrays and return
        one, so ``np.sin(x) * x`` would silently lose the cos term of its gradient. Where
        tinymeta has the op (arithmetic, exp, log, sqrt, tanh, sin, cos, abs, maximum,
        minimum, matmul, comparisons), the ufunc *is* that op and the result is a Tensor
        in the graph, as natural NumPy-style code expects. Any other ufunc (or method,
        such as ``np.add.reduce``, or an ``out=``) runs on the values only where that
        loses nothing: its result is not floating point (``np.isfinite(x)``) or no
        operand requires grad; then NumPy's own result comes back. Otherwise it raises
        a TypeError that names the tinymeta function to use. This hook also makes
        ``ndarray + tensor`` (and every other operator with an array on the left) a Tensor.
        """
        name = _UFUNC_OPS.get(ufunc.__name__)
        if method == "__call__" and name is not None and not kwargs:
            return getattr(ops, name)(*inputs)
        what = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        if "out" in kwargs and _has_tensor(kwargs["out"]):
            raise TypeError(f"{what}(..., out=tensor): tensors are immutable; use the returned value")
        hint = _REDUCE_HINTS.get(ufunc.__name__) if method == "reduce" else (
            f"tinymeta.{name}" if name is not None else None)
        return _on_values(what, hint, getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        """NumPy functions on tensors: ``np.sum``, ``np.mean``, ``np.concatenate``, ``np.where``
        and the other functions tinymeta has dispatch to its ops (the result is a Tensor in
        the graph); any other runs on the values as :meth:`__array_ufunc__` says."""
        name = func.__name__
        adapter = _FUNCTIONS.get(name) if getattr(np, name, None) is func else None
        if adapter is not None:
            try:
                inspect.signature(adapter).bind(*args, **kwargs)
            except TypeError:
                pass  # an argument tinymeta does not take: NumPy's way, if it loses nothing
            else:
                return adapter(*args, **kwargs)
        return _on_values(f"numpy.{name}", f"tinymeta.{name}" if adapter is not None else None,
                          func, args, kwargs)

    def detach(self):
        """The same values, cut from the graph (a constant)."""
        return Tensor(self.array)

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
        autograd.backward(self, grad, create_graph)

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

    # Comparisons are elementwise, as in NumPy and PyTorch: constant boolean tensors
    # (not differentiable). Tensors still hash by identity, so they can be dict keys;
    # the engine itself keys its dicts by id().
    def __eq__(self, o): return ops.equal(self, o) if _comparable(o) else NotImplemented
    def __ne__(self, o): return ops.not_equal(self, o) if _comparable(o) else NotImplemented
    def __lt__(self, o): return ops.less(self, o)
    def __le__(self, o): return ops.less_equal(self, o)
    def __gt__(self, o): return ops.greater(self, o)
    def __ge__(self, o): return ops.greater_equal(self, o)
    __hash__ = object.__hash__

    def eq(self, o):
        """Elementwise ``self == o`` (the same as the ``==`` operator)."""
        return ops.equal(self, o)

    # ---- methods mirroring the functional ops --------------------------------------
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def sqrt(self): return ops.sqrt(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def abs(self): return ops.abs(self)
    # dtype and out are there because np.sum(t) and np.mean(t) call t.sum(axis=, dtype=, out=)
    def sum(self, axis=None, keepdims=False, dtype=None, out=None):
        return _numpy_style(ops.sum, self, axis, keepdims, dtype, out)

    def mean(self, axis=None, keepdims=False, dtype=None, out=None):
        return _numpy_style(ops.mean, self, axis, keepdims, dtype, out)

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
        """``broadcast_to`` under PyTorch's name: ``t.expand(T, 3)`` or ``t.expand((T, 3))``."""
        return ops.broadcast_to(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    def flatten(self, start_axis=0): return ops.flatten(self, start_axis)
    def squeeze(self, axis): return ops.squeeze(self, axis)
    def unsqueeze(self, axis): return ops.unsqueeze(self, axis)


# NumPy ufuncs that are tinymeta ops (by the ufunc's name; np.abs is np.absolute)
_UFUNC_OPS = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "true_divide": "div",
              "negative": "neg", "power": "pow", "exp": "exp",
              "log": "log", "sqrt": "sqrt", "tanh": "tanh", "sin": "sin", "cos": "cos", "absolute": "abs",
              "maximum": "maximum", "minimum": "minimum", "matmul": "matmul", "equal": "equal",
              "not_equal": "not_equal", "less": "less", "less_equal": "less_equal", "greater": "greater",
              "greater_equal": "greater_equal"}
_REDUCE_HINTS = {"add": "tinymeta.sum", "maximum": "tinymeta.max", "minimum": "tinymeta.min"}


# NumPy functions that are tinymeta ops, with NumPy's own argument order
def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False): return a.sum(axis, keepdims, dtype, out)
def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False): return a.mean(axis, keepdims, dtype, out)
def _np_max(a, axis=None, out=None, keepdims=False): return ops.max(_no_out(a, out), axis, keepdims)
def _np_min(a, axis=None, out=None, keepdims=False): return ops.min(_no_out(a, out), axis, keepdims)
def _np_any(a, axis=None, out=None, keepdims=False): return ops.any(_no_out(a, out), axis, keepdims)
def _np_all(a, axis=None, out=None, keepdims=False): return ops.all(_no_out(a, out), axis, keepdims)
def _np_var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    return _numpy_style(lambda t, ax, kd: ops.var(t, ax, kd, ddof), a, axis, keepdims, dtype, out)
def _np_concatenate(arrays, axis=0): return ops.concatenate(_all_tensors(arrays), axis)
def _np_stack(arrays, axis=0): return ops.stack(_all_tensors(arrays), axis)
def _np_where(condition, x, y):
    if not (isinstance(x, Tensor) or isinstance(y, Tensor)):  # only the condition is a tensor: a constant
        return np.where(_values(condition), x, y)
    return ops.where(condition, x, y)
def _np_reshape(a, shape): return ops.reshape(_as_tensor(a), shape)
def _np_transpose(a, axes=None): return ops.transpose(_as_tensor(a), axes)
def _np_swapaxes(a, axis1, axis2): return ops.swapaxes(_as_tensor(a), axis1, axis2)
def _np_broadcast_to(array, shape): return ops.broadcast_to(_as_tensor(array), shape)
def _np_expand_dims(a, axis): return ops.unsqueeze(_as_tensor(a), axis)
def _np_argmax(a, axis=None): return ops.argmax(_as_tensor(a), axis)


_FUNCTIONS = {"sum": _np_sum, "mean": _np_mean, "max": _np_max, "amax": _np_max, "min": _np_min,
              "amin": _np_min, "any": _np_any, "all": _np_all, "var": _np_var, "concatenate": _np_concatenate,
              "stack": _np_stack, "where": _np_where, "reshape": _np_reshape, "transpose": _np_transpose,
              "swapaxes": _np_swapaxes, "broadcast_to": _np_broadcast_to, "expand_dims": _np_expand_dims,
              "argmax": _np_argmax}


def _no_out(a, out):
    if out is not None:
        raise TypeError("tensors are immutable: out= is not supported, use the returned tensor")
    return a


def _as_tensor(a):
    if not isinstance(a, Tensor):
        raise TypeError(f"expected a Tensor, got {type(a).__name__}")
    return a


def _all_tensors(arrays):
    """Tensors for NumPy's list arguments; arrays and numbers become constants beside them."""
    arrays = list(arrays)
    like = next(a for a in arrays if isinstance(a, Tensor))
    return [a if isinstance(a, Tensor) else ops.common.const(np.asarray(a, dtype=like.dtype), like)
            for a in arrays]


def _has_tensor(x) -> bool:
    if isinstance(x, Tensor):
        return True
    return isinstance(x, (list, tuple)) and any(_has_tensor(v) for v in x)


def _values(x):
    """``x`` with every Tensor in it (also in lists, tuples and dicts) replaced by its values."""
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(_values(v) for v in x)
    if isinstance(x, dict):
        return {k: _values(v) for k, v in x.items()}
    return x


def _requires_grad(x) -> bool:
    if isinstance(x, Tensor):
        return x.requires_grad
    if isinstance(x, (list, tuple)):
        return any(_requires_grad(v) for v in x)
    if isinstance(x, dict):
        return any(_requires_grad(v) for v in x.values())
    return False


def _is_float(r) -> bool:
    """Whether ``r`` (a result of NumPy's) holds floating-point values, which a gradient could flow through."""
    if isinstance(r, (tuple, list)):
        return any(_is_float(v) for v in r)
    dtype = getattr(r, "dtype", None)
    return isinstance(r, (float, complex)) if dtype is None else np.dtype(dtype).kind in "fc"


def _on_values(what, hint, call, args, kwargs):
    """NumPy's own ``call`` on the values, where no gradient is lost (see Tensor.__array_ufunc__)."""
    result = call(*_values(args), **_values(kwargs))
    if _is_float(result) and (_requires_grad(args) or _requires_grad(kwargs)):
        raise TypeError(f"{what} {'with these arguments ' if hint and 'reduce' not in what else ''}is not a "
                        f"tinymeta op: on a tensor that requires grad it would return a plain array cut from the "
                        f"graph, and the gradient through it would be lost; use "
                        f"{hint or 'tinymeta ops (tinymeta.exp, tinymeta.sin, ...)'} instead, or "
                        f"{what}(x.numpy()) for the values alone")
    return result


def _comparable(o) -> bool:
    """Whether ``t == o`` is elementwise; for anything else (None, strings) Python falls back to identity."""
    return (isinstance(o, (Tensor, numbers.Number, list, tuple)) or hasattr(o, "__array__")
            or hasattr(o, "__cuda_array_interface__"))


def _numpy_style(reduce, t, axis, keepdims, dtype, out):
    if out is not None:
        raise TypeError("tensors are immutable: out= is not supported, use the returned tensor")
    if reduce is ops.mean and t.dtype.kind == "b":  # np.mean(pred == y): a fraction, in float64 as NumPy
        t = ops.astype(t, "float64")
    result = reduce(t, axis, keepdims)
    return result if dtype is None else ops.astype(result, dtype)


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
    dtype = backend.resolve_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.array
    if hasattr(data, "__array__") or hasattr(data, "__cuda_array_interface__"):
        src_device = backend.device_of(data)
    else:  # Python numbers, lists, tuples
        src_device = "cpu"
        try:
            data = np.asarray(data)
        except ValueError:  # NumPy refuses ragged nested lists
            raise ValueError("tensor() needs nested lists of one shape (every row the same length), "
                             "got ragged data") from None
        if data.dtype == object:
            raise TypeError("tensor() needs numbers or arrays of one shape, got ragged or non-numeric data")
        if dtype is None:
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


# The one late import of the engine: Tensor's operator methods (+, @, ==, .sum())
# call the ops, and backward() calls autograd, but ops and autograd are built on
# Tensor, so they can only be imported once Tensor exists.
from . import autograd, ops  # noqa: E402
