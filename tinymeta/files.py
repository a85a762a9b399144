"""Atomic file writes: a reader (or a crash) never sees a half-written file (used by data/ and experiment/)."""
from __future__ import annotations

import contextlib
import os
import secrets


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step.

    On any error (Ctrl-C included) the temporary file is removed and an existing
    ``path`` is left untouched. ``mode`` is "wb" or "w".
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    # the same folder: os.replace is atomic only within one file system
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, mode.replace("w", "x")) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def write_text(path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
