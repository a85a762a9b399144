"""A stand-in for CuPy that runs on NumPy: tinymeta's CUDA code paths, tested without a GPU.

It cannot tell anything about speed, memory or kernels. What it does check is the
discipline a GPU demands, and it is as strict as CuPy (stricter where unsure):

* device arrays are not NumPy arrays: ``np.asarray(device_array)`` raises, as in
  CuPy, and an operation that mixes a device array with a host NumPy array raises
  ``TypeError`` (moving data is explicit: ``xp.asarray`` to the device, ``.get()``
  back);
* every read of device values on the host (``.get()``, ``float()``, ``int()``,
  ``bool()``, ``.item()``, ``.tolist()``, printing, boolean-mask indexing, a stream
  ``synchronize()``) is a synchronisation. ``SYNCS`` counts them with the line of
  tinymeta that caused each, and inside ``cupyx.allow_synchronize(False)`` they
  raise ``cupyx.DeviceSynchronized``, the check CuPy offers on a real GPU.

It also counts kernel launches (``LAUNCHES``): every operation that would start
a kernel on a GPU (an elementwise ufunc, a reduction, a matmul, a copy or a fill),
by kind. Views (slices, transposes, reshapes of contiguous arrays, broadcasts)
launch nothing. On a real GPU each launch costs ~15-30 us of host time, so this
count, unlike a time, is what a test can hold tinymeta to.

``install(monkeypatch)`` makes ``tinymeta.backend`` use it as CuPy for one test.
"""
from __future__ import annotations

import contextlib
import traceback
import types
import weakref

import numpy as np

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")


class DeviceSynchronized(RuntimeError):
    """A host read of device values where synchronisation was disallowed."""


class _SyncLog:
    def __init__(self):
        self.allowed = True
        self.events: list[str] = []

    def hit(self, what: str):
        where = _caller()
        if not self.allowed:
            raise DeviceSynchronized(f"device synchronisation ({what}) at {where}")
        self.events.append(f"{what} at {where}")

    @property
    def count(self) -> int:
        return len(self.events)


SYNCS = _SyncLog()


class _LaunchLog:
    """Kernel launches by kind: elementwise, reduction, matmul, copy, fill."""

    def __init__(self):
        self.by_kind: dict[str, int] = {}

    def hit(self, kind: str):
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    @property
    def count(self) -> int:
        return sum(self.by_kind.values())

    def clear(self):
        self.by_kind.clear()


LAUNCHES = _LaunchLog()

_REDUCTIONS = {"sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "prod", "any", "all",
               "var", "std", "cumsum", "count_nonzero", "linalg.norm", "norm"}
_MATMULS = {"matmul", "einsum", "dot", "tensordot", "inner", "outer", "vdot"}
_VIEWS = {"reshape", "broadcast_to", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze",
          "ravel", "view", "shape", "ndim", "size", "dtype", "result_type", "broadcast_shapes",
          "isscalar", "may_share_memory", "shares_memory", "iscomplexobj"}
_ALLOCS = {"empty", "empty_like"}  # memory only, no kernel


def _count_call(name: str, result, inputs=()):
    """Record the launch a call named ``name`` would make, judged from its result."""
    if name in _ALLOCS:
        return
    if name in _VIEWS:  # a view unless the array had to be copied (CuPy copies then too)
        if isinstance(result, np.ndarray) and not any(
                isinstance(a, np.ndarray) and np.may_share_memory(result, a) for a in inputs):
            LAUNCHES.hit("copy")
        return
    if name in _REDUCTIONS:
        LAUNCHES.hit("reduction")
    elif name in _MATMULS:
        LAUNCHES.hit("matmul")
    elif name in ("zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "eye"):
        LAUNCHES.hit("fill")
    elif name in ("copy", "ascontiguousarray", "astype", "concatenate", "stack", "pad", "take",
                  "__setitem__", "asarray", "array", "repeat", "tile"):
        LAUNCHES.hit("copy")
    else:
        LAUNCHES.hit("elementwise")


_PLUMBING = ("/numpy/", "tinymeta/backend.py", "tinymeta/tensor.py")  # they read only when asked to


def _caller() -> str:
    """The innermost frame outside the emulator, NumPy and tinymeta's conversions: who asked for the read."""
    frames = traceback.StackSummary.extract(traceback.walk_stack(None), lookup_lines=False)  # innermost first
    for frame in frames:
        if frame.filename != __file__ and not any(p in frame.filename for p in _PLUMBING):
            return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} ({frame.name})"
    return "?"


# ---- conversion between the emulated device and NumPy ------------------------------------------
def _is_host(x) -> bool:
    return isinstance(x, np.ndarray)


def _unwrap(x, what):
    """Device arrays -> their NumPy buffer; host NumPy arrays -> TypeError (CuPy does not mix)."""
    if isinstance(x, ndarray):
        return x._a
    if _is_host(x):
        raise TypeError(f"emulated CuPy: {what} got a host NumPy array {x.shape} {x.dtype} mixed with "
                        "device arrays; move it with xp.asarray first (CuPy raises here too)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, what) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, what) for k, v in x.items()}
    return x


def _wrap(x):
    """NumPy results -> device arrays (scalars become 0-d arrays, as CuPy's reductions give)."""
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic):
        return ndarray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


# ---- the device array ------------------------------------------------------------------------------
class ndarray:  # noqa: N801  (CuPy's name)
    """A device array: a NumPy buffer that only device code may touch."""

    __array_priority__ = 100

    def __init__(self, array: np.ndarray):
        self._a = array
        weakref.finalize(self, _POOL.free, _ALLOCATOR[0](array.nbytes))

    # host reads: each one is a synchronisation
    def get(self, stream=None, out=None):
        SYNCS.hit(".get()")
        return self._a.copy()

    def item(self, *args):
        SYNCS.hit(".item()")
        return self._a.item(*args)

    def tolist(self):
        SYNCS.hit(".tolist()")
        return self._a.tolist()

    def __float__(self):
        SYNCS.hit("float()")
        return float(self._a)

    def __int__(self):
        SYNCS.hit("int()")
        return int(self._a)

    def __index__(self):
        SYNCS.hit("index")
        return self._a.__index__()

    def __bool__(self):
        SYNCS.hit("bool()")
        return bool(self._a)

    def __repr__(self):
        SYNCS.hit("repr()")
        return f"emulated-cupy {self._a!r}"

    __str__ = __repr__

    def __format__(self, spec):
        SYNCS.hit("format()")
        return format(self._a, spec)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    # the NumPy protocols: run NumPy on the buffers, refuse host operands
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        what = f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__
        out = kwargs.pop("out", None)
        args = _unwrap(list(inputs), what)
        kwargs = _unwrap(kwargs, what)
        if out is not None:
            kwargs["out"] = tuple(_unwrap(list(out), what))
        result = getattr(ufunc, method)(*args, **kwargs)
        LAUNCHES.hit("matmul" if ufunc is np.matmul else "elementwise" if method == "__call__" else "reduction")
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        what = func.__name__
        args = _unwrap(list(args), what)
        result = func(*args, **_unwrap(kwargs, what))
        _count_call(what, result, args)
        return _wrap(result)

    # attributes and methods of the buffer, through the same checks
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr) if isinstance(attr, np.ndarray) else attr

        def method(*args, **kwargs):
            result = attr(*_unwrap(list(args), name), **_unwrap(kwargs, name))
            if name == "astype" and result is self._a:
                return self  # astype to its own dtype without a copy
            _count_call(name, result, (self._a,))
            return _wrap(result)
        return method

    @property
    def T(self):  # noqa: N802
        return ndarray(self._a.T)

    @property
    def data(self):  # CuPy's is a device pointer; nothing in tinymeta should need it
        raise AttributeError("emulated CuPy: ndarray.data is a device pointer")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (ndarray(np.asarray(v)) for v in self._a)

    def __getitem__(self, index):
        index = self._index(index)
        result = self._a[index]
        if isinstance(result, np.ndarray) and not np.may_share_memory(result, self._a):
            LAUNCHES.hit("copy")  # advanced indexing gathers
        return _wrap(result)

    def __setitem__(self, index, value):
        self._a[self._index(index)] = _unwrap(value, "__setitem__")
        LAUNCHES.hit("copy")

    def _index(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        for p in parts:
            if isinstance(p, ndarray) and p._a.dtype == bool:
                SYNCS.hit("boolean-mask index")  # the result's size lives on the device
        return _unwrap(index, "indexing")

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __reduce__(self):  # pickling reads the values back
        SYNCS.hit("pickle")
        return (ndarray, (self._a.copy(),))


def _binary(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace(ufunc):
    def op(self, other):
        ufunc(self, other, out=(self,))
        return self
    return op


for _name, _uf in {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
                   "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "matmul": np.matmul,
                   "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
                   "lshift": np.left_shift, "rshift": np.right_shift}.items():
    setattr(ndarray, f"__{_name}__", _binary(_uf))
    setattr(ndarray, f"__r{_name}__", _binary(_uf, reflected=True))
    if _name != "matmul":
        setattr(ndarray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
                   "gt": np.greater, "ge": np.greater_equal}.items():
    setattr(ndarray, f"__{_name}__", _binary(_uf))
for _name, _uf in {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}.items():
    setattr(ndarray, f"__{_name}__", lambda self, _uf=_uf: _uf(self))
ndarray.__hash__ = None
ndarray.__module__ = "cupy"  # backend.device_of tells devices apart by the array's module


# ---- the module -------------------------------------------------------------------------------------
def _to_device(x, dtype=None, copy=True):
    """What xp.asarray / xp.array do: a host->device copy (no synchronisation), or a device cast."""
    if isinstance(x, ndarray):
        a = x._a if dtype is None else x._a.astype(dtype, copy=False)
        if a is not x._a or copy:
            LAUNCHES.hit("copy")
        return ndarray(a.copy() if copy and a is x._a else a)
    LAUNCHES.hit("transfer")  # host -> device
    return ndarray(np.array(x, dtype=dtype, copy=True))


class _UFunc:
    """A CuPy ufunc: NumPy's, refusing host arrays, returning device arrays."""

    def __init__(self, uf):
        self._uf = uf
        self.__name__ = uf.__name__

    def __call__(self, *args, **kwargs):
        out = kwargs.pop("out", None)
        result = self._uf(*_unwrap(list(args), self.__name__), **_unwrap(kwargs, self.__name__),
                          **({} if out is None else {"out": tuple(_unwrap(list(
                              out if isinstance(out, tuple) else (out,)), self.__name__))}))
        LAUNCHES.hit("elementwise")
        if out is not None:
            return out
        return _wrap(result)

    def __getattr__(self, name):
        if name == "at":
            raise AttributeError("emulated CuPy: use cupyx.scatter_add, not ufunc.at")
        attr = getattr(self._uf, name)
        if not callable(attr):
            return attr
        def method(*a, **k):
            LAUNCHES.hit("reduction" if name in ("reduce", "accumulate", "reduceat") else "elementwise")
            return _wrap(attr(*_unwrap(list(a), name), **_unwrap(k, name)))
        return method


def _function(fn, name):
    def f(*args, **kwargs):
        args = _unwrap(list(args), name)
        result = fn(*args, **_unwrap(kwargs, name))
        _count_call(name, result, args)
        return _wrap(result)
    f.__name__ = name
    return f


class _Stream:
    def synchronize(self):
        SYNCS.hit("stream.synchronize()")


class _MemoryPool:
    """Counts the bytes of live device arrays (views counted as copies: an upper bound)."""

    def __init__(self):
        self.used = 0

    def malloc(self, size):
        self.used += size
        return size

    def free(self, size):
        self.used -= size

    def used_bytes(self):
        return self.used

    def total_bytes(self):
        return self.used

    def free_all_blocks(self):
        pass


_POOL = _MemoryPool()
_ALLOCATOR = [_POOL.malloc]


def _set_allocator(malloc=None):
    _ALLOCATOR[0] = malloc or _POOL.malloc


class OutOfMemoryError(MemoryError):
    """CuPy's out-of-memory error (same name, so tinymeta's handler recognises it)."""


class _Module(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            return _UFunc(attr)
        if isinstance(attr, type) or not callable(attr):
            return attr
        return _function(attr, name)


cupy = _Module("cupy", "Emulated CuPy (tests only).")
cupy.__version__ = f"emulated (numpy {np.__version__})"
cupy.ndarray = ndarray
cupy.asarray = lambda a, dtype=None: _to_device(a, dtype, copy=False)
cupy.array = lambda a, dtype=None, copy=True: _to_device(a, dtype, copy=copy)


def _ascontiguousarray(a, dtype=None):
    if isinstance(a, ndarray) and dtype is None and not a._a.flags.c_contiguous:
        LAUNCHES.hit("copy")
        return ndarray(np.ascontiguousarray(a._a))
    return _to_device(a, dtype, copy=False)


cupy.ascontiguousarray = _ascontiguousarray
cupy.asnumpy = lambda a: a.get() if isinstance(a, ndarray) else np.asarray(a)
cupy.get_default_memory_pool = lambda: _POOL
cupy.cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    get_current_stream=lambda: _Stream(),
    set_allocator=_set_allocator,
    Device=lambda i=0: types.SimpleNamespace(synchronize=_Stream().synchronize, id=i),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    OutOfMemoryError=OutOfMemoryError,
)


class ElementwiseKernel:
    """CuPy's ElementwiseKernel, emulated: the CUDA body is run as Python over NumPy arrays.

    Only plain statements are understood (``x = expr;``, ``x op= expr;``, ``T x = expr;``
    with arithmetic and ``sqrt``/``exp``/``log``): enough for tinymeta's kernels, and it
    means the tests run the kernel's own text, not only its NumPy twin. One call, one launch.
    """

    def __init__(self, in_params, out_params, operation, name="kernel"):
        self.inputs = [p.split()[-1] for p in in_params.split(",")]
        self.outputs = [p.split()[-1] for p in out_params.split(",")]
        self.statements = [s.strip() for s in operation.split(";") if s.strip()]
        self.name = name

    def __call__(self, *args):
        names = self.inputs + self.outputs
        if len(args) != len(names):
            raise TypeError(f"{self.name}: expected {len(names)} arguments ({', '.join(names)}), got {len(args)}")
        scope = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log}
        for n, a in zip(names, args):
            scope[n] = _unwrap(a, self.name) if isinstance(a, ndarray) else a
        outs = {n: scope[n] for n in self.outputs}
        with np.errstate(all="ignore"):  # a CUDA kernel never warns: 0/0 is NaN, silently
            for statement in self.statements:
                if statement.startswith("T "):  # a local of the kernel's type
                    statement = statement[2:]
                exec(statement, {}, scope)  # noqa: S102 (the kernel text is tinymeta's own)
        for n, array in outs.items():
            array[...] = scope[n]
        LAUNCHES.hit("elementwise")
        return None


cupy.ElementwiseKernel = ElementwiseKernel


def _scatter_add(target, index, values):
    np.add.at(_unwrap(target, "scatter_add"), _unwrap(index, "scatter_add"), _unwrap(values, "scatter_add"))


@contextlib.contextmanager
def _allow_synchronize(allow: bool):
    before, SYNCS.allowed = SYNCS.allowed, bool(allow)
    try:
        yield
    finally:
        SYNCS.allowed = before


cupyx = types.ModuleType("cupyx", "Emulated cupyx (tests only).")
cupyx.scatter_add = _scatter_add
cupyx.allow_synchronize = _allow_synchronize
cupyx.DeviceSynchronized = DeviceSynchronized


def install(monkeypatch):
    """Make tinymeta's backend use the emulator as CuPy until the test ends."""
    from tinymeta import backend

    monkeypatch.setattr(backend, "_cupy", cupy)
    monkeypatch.setattr(backend, "_cupyx", cupyx)
    monkeypatch.setattr(backend, "_cupy_error", None)
    SYNCS.events.clear()
    SYNCS.allowed = True
    LAUNCHES.clear()
