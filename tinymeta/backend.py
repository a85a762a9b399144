"""The one seam between tinymeta and the array libraries.

Every other module asks this one for its array module (``xp``): NumPy for
``device="cpu"``, CuPy for ``device="cuda"``. Nothing else imports numpy or
cupy for array math, so swapping backends never touches the engine.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import types

import numpy as np

DEVICES = ("cpu", "cuda")
_CUDA_HELP = ("install CuPy for your CUDA version, e.g. `pip install -e .[cuda12]` "
              "(cupy-cuda12x) or `pip install -e .[cuda13]` (cupy-cuda13x)")

_cupy = None
_cupyx = None
_cupy_error: str | None = None
_default_device: str | None = None


def _load_cupy():
    """Import CuPy lazily and remember why it failed, so the error can say."""
    global _cupy, _cupyx, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy  # noqa: PLC0415
        import cupyx  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a broken CUDA install
        _cupy_error = f"CuPy is not installed or failed to import ({exc}); {_CUDA_HELP}"
        return None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        count, detail = 0, f" ({exc})"
    else:
        detail = ""
    if count < 1:
        _cupy_error = (f"CuPy is installed but no CUDA GPU is visible{detail}; "
                       "check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or use device='cpu'")
        return None
    _cupy, _cupyx = cupy, cupyx
    return cupy


_FLOAT_NAMES = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype):
    """A NumPy dtype from 'float32', 'float64', a NumPy dtype or None (None stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in _FLOAT_NAMES:
        return np.dtype(_FLOAT_NAMES[dtype])
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: use 'float32', 'float64' or a NumPy dtype") from None


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return _load_cupy() is not None


def check_device(device) -> str:
    """Normalise a device name ('cpu', 'cuda', 'cuda:0' -> 'cuda') and make sure it can be used."""
    if device is None:
        return default_device()
    name = str(device).lower()
    if name.startswith("cuda"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'")
    if name == "cuda" and _load_cupy() is None:
        raise RuntimeError(f"device 'cuda' was asked for, but {_cupy_error}")
    return name


def default_device() -> str:
    """The process default: set_default_device(), else $TINYMETA_DEVICE, else 'cpu'."""
    if _default_device is not None:
        return _default_device
    env = os.environ.get("TINYMETA_DEVICE")
    return check_device(env) if env else "cpu"


def set_default_device(device) -> None:
    """Make ``device`` the default for new tensors (None restores $TINYMETA_DEVICE / 'cpu')."""
    global _default_device
    _default_device = None if device is None else check_device(device)


def xp_for(device: str):
    """The array module of a device: numpy or cupy."""
    return _load_cupy() if device == "cuda" else np


def device_of(array) -> str:
    """'cuda' for a CuPy array, 'cpu' for anything NumPy understands."""
    if type(array) is np.ndarray:  # the common case, without a string test (ops ask on every call)
        return "cpu"
    return "cuda" if type(array).__module__.startswith("cupy") else "cpu"


def get_xp(*arrays):
    """The array module that holds ``arrays`` (NumPy unless one of them is a CuPy array)."""
    for a in arrays:
        if type(a) is not np.ndarray and device_of(a) == "cuda":
            return _load_cupy()
    return np


def to_device(array, device: str):
    """Move or copy an array to ``device`` (no copy when it is already there)."""
    if device == "cuda":
        return xp_for("cuda").asarray(array)
    return to_numpy(array)


def to_numpy(array) -> np.ndarray:
    """A host NumPy array, whatever the backend."""
    if device_of(array) == "cuda":
        return array.get()
    return np.asarray(array)


def index_add(target, index, values) -> None:
    """``target[index] += values`` with repeated indices accumulated (a scatter-add)."""
    if device_of(target) == "cuda":
        _cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def synchronize(device: str) -> None:
    """Wait for the device's queued work (no-op on the CPU); for timing only."""
    if device == "cuda":
        xp_for("cuda").cuda.get_current_stream().synchronize()


@contextlib.contextmanager
def track_peak_memory(device: str):
    """Record the most device memory CuPy's pool held inside the block (``.bytes``; 0 on the CPU).

    Every allocation goes through the pool, so its high-water mark is read at
    each one. It counts arrays only, not the CUDA context or cuBLAS workspaces.
    """
    peak = types.SimpleNamespace(bytes=0)
    if device != "cuda":
        yield peak
        return
    cuda = _cupy.cuda
    pool = _cupy.get_default_memory_pool()
    peak.bytes = pool.used_bytes()

    def malloc(size):
        mem = pool.malloc(size)
        peak.bytes = max(peak.bytes, pool.used_bytes())
        return mem

    cuda.set_allocator(malloc)
    try:
        yield peak
    finally:
        cuda.set_allocator(pool.malloc)


class ElementwiseKernel:
    """One elementwise pass over arrays, written twice: a NumPy reference and a CUDA body.

    On the CPU, ``reference(*arrays_and_scalars)`` runs as it is (it is the
    specification, and it updates its output arrays in place). On a GPU, the
    same arguments go to one ``cupy.ElementwiseKernel(in_params, out_params,
    operation, name)``, compiled on first use: one launch instead of one per
    arithmetic operation. Output parameters are passed in and updated in place,
    so they may be read in ``operation`` (an in-out buffer). Keep ``operation``
    to plain assignments (``x = ...;``, ``x += ...;``, ``T t = ...;``) of
    arithmetic and ``sqrt``, so that the tests' CuPy emulator can run it too.
    """

    def __init__(self, reference, in_params: str, out_params: str, operation: str, name: str):
        self.reference = reference
        self.in_params, self.out_params, self.operation, self.name = in_params, out_params, operation, name
        self._compiled = None

    def __call__(self, *args):
        if get_xp(*args) is np:
            return self.reference(*args)
        if self._compiled is None:
            self._compiled = _load_cupy().ElementwiseKernel(self.in_params, self.out_params,
                                                            self.operation, self.name)
        return self._compiled(*args)


def retain_freed_memory() -> bool:
    """Ask the C allocator to keep freed memory for reuse instead of returning it to the OS.

    A CPU meta-iteration allocates and frees the same large activations every time
    (120 MB with 15 queries per class). By default glibc hands each block over a few
    MB straight back to the kernel, so the next iteration page-faults and zeroes it
    all again: about as much system time as arithmetic. Raising glibc's mmap and trim
    thresholds keeps those pages in the process (measured: 19% less CPU time per
    Omniglot iteration); the price is that the process keeps its peak memory.
    Process-wide, so only tinymeta's own commands (train, bench) call it. Returns
    whether it took effect (glibc on Linux only; elsewhere it does nothing).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameters, from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(libc.mallopt(m_trim_threshold, (1 << 31) - 1))
