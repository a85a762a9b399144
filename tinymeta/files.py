"""Atomic file writes: a reader (or a crash) never sees a half-written file (used by data/ and experiment/)."""
from __future__ import annotations

import contextlib
import os
import re
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


class WriteError(OSError):
    """A file or folder could not be written; the message names the path and the cause."""


def _cause(exc: OSError) -> str:
    """'permission denied' for an OSError: its strerror, lower-cased, without the path."""
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def check_writable(path, what: str = "file") -> None:
    """Raise WriteError (naming ``path`` and why) unless a file can be written at ``path``.

    Checked before slow work starts, so that an evaluation or a figure is not computed for
    nothing: the folder must exist and take a new file (one is made and removed at once), and
    ``path`` must not be a folder.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise WriteError(f"cannot write the {what} {path}: it is a folder; give a file name")
    if not os.path.isdir(folder):
        why = "is not a folder" if os.path.exists(folder) else "does not exist (create it first)"
        raise WriteError(f"cannot write the {what} {path}: the folder {folder} {why}")
    # A file made and removed at once: permissions alone do not tell (root, read-only or special file systems)
    probe = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise WriteError(f"cannot write the {what} {path}: {_cause(exc)}") from None
    with contextlib.suppress(OSError):
        os.remove(probe)


def make_folder(folder, what: str = "folder") -> None:
    """``mkdir -p folder``; WriteError naming the folder and the cause when it cannot be made or written."""
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise WriteError(f"cannot use {folder} as the {what}: a file of that name exists") from None
    except OSError as exc:
        raise WriteError(f"cannot create the {what} {folder}: {_cause(exc)}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteError(f"cannot write in the {what} {folder}: permission denied")


# A temporary file's name carries the writer's process id, so that a later writer can tell the
# leftovers of a killed save (its process is gone) from a save in progress (never touched).
_TEMPORARY = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{12}\.tmp$")


def process_alive(pid: int) -> bool:
    """Whether a process of this id exists (on this machine); our own id counts as alive."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:  # someone else's process
        return True
    except (ProcessLookupError, OverflowError, ValueError):  # gone, or an impossible id
        return False
    return True


def remove_stale_temporaries(folder, names, older_than: float) -> list[str]:
    """Remove the temporary files that killed saves of ``names`` left in ``folder``; return their names.

    A temporary file is removed only if the process that wrote it is gone (or, for names
    without a process id, written by older versions, nothing says) and it was last changed
    before ``older_than`` (a ``time.time()``): a save in progress is never touched.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMPORARY.match(entry.name)
        if not m or m["name"] not in names or not entry.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            if m["pid"] is not None and process_alive(int(m["pid"])):
                continue
            if entry.stat(follow_symlinks=False).st_mtime >= older_than:
                continue
            os.remove(entry.path)
            removed.append(entry.name)
    return removed


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step.

    On any error (Ctrl-C included) the temporary file is removed and an existing
    ``path`` is left untouched. ``mode`` is "wb" or "w". A ``path`` that is a symbolic
    link is replaced by the file (the link's target is never written). A file that
    cannot be written raises WriteError naming ``path`` and the cause.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {folder!r} does not exist")
    # the same folder: os.replace is atomic only within one file system
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        f = open(tmp, mode.replace("w", "x"))  # noqa: SIM115 (closed below, before the rename)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {_cause(exc)}") from None
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the first error is the one to report
            os.remove(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"cannot write {path}: {_cause(exc)}") from exc
        raise
    _fsync_dir(folder)


def write_text(path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
