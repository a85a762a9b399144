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
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        what = func.__name__
        return _wrap(func(*_unwrap(list(args), what), **_unwrap(kwargs, what)))

    # attributes and methods of the buffer, through the same checks
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr) if isinstance(attr, np.ndarray) else attr

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(list(args), name), **_unwrap(kwargs, name)))
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
        return _wrap(self._a[index])

    def __setitem__(self, index, value):
        self._a[self._index(index)] = _unwrap(value, "__setitem__")

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
        return ndarray(a.copy() if copy and a is x._a else a)
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
        if out is not None:
            return out
        return _wrap(result)

    def __getattr__(self, name):
        if name == "at":
            raise AttributeError("emulated CuPy: use cupyx.scatter_add, not ufunc.at")
        attr = getattr(self._uf, name)
        if not callable(attr):
            return attr
        return lambda *a, **k: _wrap(attr(*_unwrap(list(a), name), **_unwrap(k, name)))


def _function(fn, name):
    def f(*args, **kwargs):
        return _wrap(fn(*_unwrap(list(args), name), **_unwrap(kwargs, name)))
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
cupy.ascontiguousarray = lambda a, dtype=None: _to_device(a, dtype, copy=False)
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
