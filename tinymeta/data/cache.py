"""Where datasets and caches live, and the cache files themselves (shared by every loader).

Data folders: an explicit argument, else ``$TINYMETA_DATA``, else ``./data/<dataset>``
(:func:`candidate_dirs`). Caches: ``$TINYMETA_CACHE``, else ``~/.cache/tinymeta``
(:func:`resolve_cache_dir`), never the data folder, which may be read-only. A cache
records a fingerprint of its source, its preprocessing and a checksum of its own arrays;
:func:`load_cache` refuses a stale or corrupt one, and the caller rebuilds it.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..files import atomic_write, read_npz


class DataError(RuntimeError, ValueError):
    """A dataset file that is damaged, forged or not laid out as expected; the message names the file.

    A RuntimeError as the loaders always raised, and a ValueError so that the command line
    reports it as a file to fix (one ``error:`` line, exit status 2) rather than a crash.
    """


def resolve_cache_dir(path=None) -> Path:
    """Where caches go: ``path`` if given, else ``$TINYMETA_CACHE``, else ``~/.cache/tinymeta``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("TINYMETA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinymeta"


def candidate_dirs(data_dir, default: Path, subfolder: str) -> tuple[list[Path], str]:
    """The folders to look in for a dataset, and where that choice came from.

    The first that is set wins: the explicit ``data_dir`` (the CLI's ``--data-dir``),
    then ``$TINYMETA_DATA``, then ``default``. An explicit or environment folder may
    hold the dataset itself or a ``subfolder`` of that name (so ``$TINYMETA_DATA`` can
    point at a root holding several datasets). A wrong explicit folder is an error, not
    a silent fall back to another one.
    """
    if data_dir is not None:
        base, origin = Path(data_dir).expanduser(), "the data_dir argument / --data-dir"
    elif os.environ.get("TINYMETA_DATA"):
        base, origin = Path(os.environ["TINYMETA_DATA"]).expanduser(), "$TINYMETA_DATA"
    else:
        return [default], f"the default {default} (relative to the working directory)"
    return [base, base / subfolder], origin


def array_checksum(arrays: dict) -> str:
    """sha256 over every array's name, dtype, shape and bytes (in name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.data if a.size else b"")
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """sha256 over the relative names and sizes of every file below ``folder``.

    Cheaper than hashing the bytes of tens of thousands of images, and enough to
    notice added, removed, renamed or resized files.
    """
    h = hashlib.sha256()
    entries = []
    for dirpath, _, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            entries.append((p.relative_to(folder).as_posix(), p.stat().st_size))
    for rel, size in sorted(entries):
        h.update(f"{rel}\t{size}\n".encode())
    return h.hexdigest()


def save_cache(path: Path, arrays: dict) -> None:
    """Write ``arrays`` (plus their checksum) to ``path`` atomically.

    The file is written under a temporary name in the same folder and renamed into
    place, so a crash or a full disk never leaves a half-written cache behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays, checksum=np.array(array_checksum(arrays)))
    with atomic_write(path, "wb") as f:
        np.savez(f, **payload)  # uncompressed: loads fastest


def save_cache_or_warn(path: Path, arrays: dict, name: str, start: float, verbose: bool) -> bool:
    """Write the cache; if the folder is not writable, say so and go on without one (False)."""
    try:
        save_cache(path, arrays)
    except OSError as exc:
        say(verbose, f"could not write the {name} cache to {path} ({exc}); continuing without it "
                      "(set $TINYMETA_CACHE to a writable folder)")
        return False
    say(verbose, f"{name} cache written to {path} in {time.perf_counter() - start:.1f} s")
    return True


def load_cache(path: Path, fingerprint: str, preprocessing: str) -> tuple[dict | None, str]:
    """Load a cache written by :func:`save_cache` if it is intact and matches its source.

    Returns ``(arrays, "")`` on success, or ``(None, reason)`` when the cache is absent,
    unreadable, truncated, fails its checksum, or was built from other data or with
    other preprocessing (the caller then rebuilds it).
    """
    if not os.path.lexists(path):
        return None, "no cache yet"
    try:  # never unpickles; each entry's size is checked before it is read
        arrays = read_npz(path)
    except (ValueError, OSError) as exc:  # damaged, forged, a link to a device, unreadable
        return None, f"cache {path} is unreadable ({exc})"
    stored = arrays.pop("checksum", None)
    if stored is None or str(stored) != array_checksum(arrays):
        return None, f"cache {path} fails its checksum (corrupt or edited)"
    if str(arrays.get("source_fingerprint")) != fingerprint:
        return None, f"cache {path} was built from different source files"
    if str(arrays.get("preprocessing")) != preprocessing:
        return None, f"cache {path} was built with different preprocessing"
    return arrays, ""


def layout_problem(arrays: dict, expected: dict) -> str:
    """What is wrong with a cache's arrays against the ``expected`` {name: (shape, dtype kind or dtype)}.

    A shape entry of None matches any length on that axis. Returns "" when every array fits: a
    cache whose checksum and fingerprint agree can still be hand-made, and its arrays feed the
    samplers directly, so their layout is checked too.
    """
    for name, (shape, dtype) in expected.items():
        a = arrays.get(name)
        if a is None:
            return f"it has no {name!r} array"
        fits_dtype = a.dtype.kind == dtype if len(dtype) == 1 else a.dtype == np.dtype(dtype)
        fits_shape = a.ndim == len(shape) and all(n is None or n == m for n, m in zip(shape, a.shape))
        if not (fits_dtype and fits_shape):
            want = "x".join("N" if n is None else str(n) for n in shape)
            return f"its {name!r} array is {a.dtype} of shape {a.shape}, expected {dtype} of shape {want}"
    return ""


def say(verbose: bool, msg: str) -> None:
    """Print a progress or warning line to stderr when ``verbose`` (the data loaders' one voice)."""
    if verbose:
        print(f"tinymeta: {msg}", file=sys.stderr, flush=True)


__all__ = ["DataError", "layout_problem", "resolve_cache_dir", "candidate_dirs", "array_checksum", "file_sha256",
           "folder_fingerprint", "save_cache", "save_cache_or_warn", "load_cache", "say"]
