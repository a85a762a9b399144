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


# ---- reading files nobody should trust ---------------------------------------------------------
# Every file a user, a download or a shared run folder gives us is read through these helpers:
# only regular files (a link to /dev/zero would never end), never more bytes than a file of its
# kind can hold, and every problem as one ValueError that starts with the file's name.
MAX_JSON_BYTES = 64 << 20   # config.json, status.json, test.json, log.jsonl: a few MB at most in practice


class UnreadableFileError(ValueError):
    """A file that cannot be what it claims to be; the message starts with its path."""

    def __init__(self, path, problem: str):
        self.path, self.problem = os.fspath(path), problem
        super().__init__(f"{self.path}: {problem}")


def check_regular_file(path) -> int:
    """The size of ``path`` if it is a regular file (links followed); else UnreadableFileError.

    FileNotFoundError for a missing file, as ``open`` would raise.
    """
    import stat  # noqa: PLC0415

    info = os.stat(path)  # FileNotFoundError propagates
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, pipe or socket)"
        raise UnreadableFileError(path, f"is {kind}; refusing to read it")
    return info.st_size


def open_regular_file(path):
    """``path`` opened for reading in binary, if it is a regular file (links followed); else UnreadableFileError.

    The check is made on the opened file itself, so the file cannot be swapped for a device in
    between; opening does not wait on a pipe (O_NONBLOCK, which a regular file ignores).
    """
    import stat  # noqa: PLC0415

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # FileNotFoundError propagates
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
            raise UnreadableFileError(path, f"is {kind}; refusing to read it")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes_bounded(path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing one larger than ``limit`` bytes (read at most limit + 1)."""
    chunks, total = [], 0
    with open_regular_file(path) as f:  # in chunks: read(limit) would set aside `limit` bytes at once
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise UnreadableFileError(path, f"is {size:,} bytes, more than the {limit:,} a file of its kind can hold")
        while chunk := f.read(min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew after the stat
                raise UnreadableFileError(path, f"holds more than the {limit:,} bytes a file of its kind can hold")
    return b"".join(chunks)


def read_text_bounded(path, limit: int = MAX_JSON_BYTES) -> str:
    """A UTF-8 text file, bounded as :func:`read_bytes_bounded`."""
    try:
        return read_bytes_bounded(path, limit).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(path, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_json(text: str, where) -> object:
    """``json.loads`` whose every failure (bad syntax, a huge integer, deep nesting) names ``where``."""
    import json  # noqa: PLC0415

    try:
        return json.loads(text)
    except RecursionError:
        raise UnreadableFileError(where, "is nested too deeply to be read") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a number of thousands of digits
        raise UnreadableFileError(where, f"is not valid JSON ({str(exc).splitlines()[0]})") from None


def read_json(path, limit: int = MAX_JSON_BYTES) -> object:
    """A JSON file read with :func:`read_text_bounded` and :func:`parse_json`."""
    return parse_json(read_text_bounded(path, limit), path)


def read_npz(path) -> dict:
    """Every array of the ``.npz`` at ``path``, each checked before memory is set aside for it.

    tinymeta writes its ``.npz`` files uncompressed (``np.savez``), so every entry is refused
    unless it is stored uncompressed and lies inside the file: its size is then bounded by
    the file's own. Each entry's ``.npy`` header is read first, and the shape and dtype it
    declares must need exactly the bytes the entry holds. No pickled object is ever loaded.
    Raises FileNotFoundError, or UnreadableFileError naming the file and the entry.
    """
    import zipfile  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415  (only the readers of arrays need NumPy)

    try:
        with open_regular_file(path) as f, zipfile.ZipFile(f) as zf:
            size = os.fstat(f.fileno()).st_size
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise UnreadableFileError(path, "holds two entries of the same name")
            arrays = {}
            for info in infos:
                arrays[_npz_key(path, info.filename)] = _read_npy_member(path, zf, info, size, np)
            return arrays
    except UnreadableFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError,
            OverflowError, RecursionError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            raise
        raise UnreadableFileError(path, f"is truncated, corrupt or not an .npz file ({type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None


def _npz_key(path, name: str) -> str:
    if not name.endswith(".npy"):
        raise UnreadableFileError(path, f"holds the entry {name!r}, which is not an .npy array")
    return name[:-len(".npy")]


def _read_npy_member(path, zf, info, file_size: int, np):
    """One ``.npy`` entry of an open zip, its declared size checked before reading."""
    import zipfile  # noqa: PLC0415

    where = f"entry {info.filename!r}"
    if info.compress_type != zipfile.ZIP_STORED:
        raise UnreadableFileError(path, f"{where} is compressed; tinymeta writes .npz files uncompressed, and "
                                        "a compressed entry could inflate to any size, so it is refused")
    if info.file_size != info.compress_size or info.header_offset + info.compress_size > file_size:
        raise UnreadableFileError(path, f"{where} declares {info.file_size:,} bytes, more than the file holds "
                                        "(truncated or forged)")
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise UnreadableFileError(path, f"{where} uses .npy format {version}, which tinymeta does not write")
        header = member.tell()
    if dtype.hasobject:
        raise UnreadableFileError(path, f"{where} holds pickled Python objects; refusing to load it, since "
                                        "unpickling untrusted data can run arbitrary code")
    count = 1
    for n in shape:
        count *= int(n)
    need = count * dtype.itemsize
    if header + need != info.file_size:
        raise UnreadableFileError(path, f"{where} declares a {'x'.join(map(str, shape)) or 'scalar'} array of "
                                        f"{dtype} ({need:,} bytes) but holds {info.file_size - header:,} bytes")
    with zf.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)
