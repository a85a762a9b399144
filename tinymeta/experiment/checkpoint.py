"""Save and resume training: parameters, optimizer state, RNG state and config in one ``.npz``.

Layout of a checkpoint file (a plain NumPy ``.npz``, i.e. a zip of ``.npy`` files)::

    format_version   int64 scalar        the layout version (FORMAT_VERSION)
    meta             uint8 array         UTF-8 JSON: parameter names, optimizer scalars,
                                         RNG state, config, extra
    param/<name>     array               each parameter, as a host (NumPy) array
    optim/<key>      array               each array of ``optimizer.state_dict()``
    algo/<key>       array               each array of the algorithm's own state (``algorithm_state``)
    checksum         uint8 array         ASCII hex SHA-256 over all other entries

Safety: files are always read with ``np.load(..., allow_pickle=False)``, so a
checkpoint downloaded from somewhere cannot run code when loaded; everything
that is not an array goes through JSON. Integrity: the SHA-256 covers every
entry (name, dtype, shape and bytes), so truncated or corrupted files give a
:class:`CheckpointError` instead of silently wrong weights (it guards against
accidents, not tampering: anyone can recompute it; no pickle is what makes
untrusted files safe to open). Atomicity: the file
is written under a temporary name in the same folder, flushed to disk and then
renamed over the target, so a crash mid-save leaves the previous checkpoint.

Example::

    save_checkpoint("run/ckpt.npz", params, optimizer=opt, rng=rng, config=cfg,
                    extra={"step": step})
    ck = load_checkpoint("run/ckpt.npz", device="cuda")
    opt = Adam(ck.params, lr=cfg["lr"]); opt.load_state_dict(ck.optimizer_state)
    rng = restore_rng(ck.rng_state)
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import __version__, backend
from ..files import UnreadableFileError, atomic_write, check_regular_file, read_npz
from ..tensor import Tensor, tensor

__all__ = ["FORMAT_VERSION", "Checkpoint", "CheckpointError", "save_checkpoint",
           "load_checkpoint", "restore_rng", "config_diff"]

FORMAT_VERSION = 1
_FORMAT_NAME = "tinymeta-checkpoint"
# Bit generators restore_rng may build; looked up by name in a fixed table, never by getattr.
_BIT_GENERATORS = {name: getattr(np.random, name)
                   for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}


def _tinymeta_version() -> str:
    return __version__


class CheckpointError(ValueError):
    """A file is not a readable, intact tinymeta checkpoint (the message names the file)."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    ``params``: name -> Tensor leaf on the requested device (requires_grad as saved);
    ``optimizer_state``: a dict for ``optimizer.load_state_dict`` (None if none was saved);
    ``rng_state``: a ``bit_generator.state`` dict for :func:`restore_rng` (or None);
    ``algorithm_state``: a dict for the algorithm's ``load_state_dict`` (None if none was saved);
    ``config`` and ``extra``: the dicts given to :func:`save_checkpoint` ({} if none).
    """

    params: dict[str, Tensor]
    optimizer_state: dict | None = None
    rng_state: dict | None = None
    algorithm_state: dict | None = None
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    path: str = ""
    format_version: int = FORMAT_VERSION

    def rng(self) -> np.random.Generator | None:
        """A Generator that continues exactly where the saved one stopped (None if none saved)."""
        return None if self.rng_state is None else restore_rng(self.rng_state)


# ---- JSON for non-array data ------------------------------------------------------------------
# JSON alone would turn tuples into lists and cannot hold arrays; small tagged
# objects keep those exact. Python's json writes floats with repr(), which
# round-trips every float, and integers of any size (PCG64 states are 128-bit).
def _to_json(obj, where: str):
    """A JSON-ready copy of ``obj``; ``where`` names the value in error messages."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else {"__float__": repr(float(obj))}  # no nan/inf in JSON
    if isinstance(obj, np.generic):  # NumPy scalar -> the Python number of the same value
        return _to_json(obj.item(), where)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"{where} is an array of dtype {obj.dtype}; only bool, integer and "
                            "float arrays can be saved")
        return {"__ndarray__": [_to_json(v, where) for v in obj.ravel().tolist()],
                "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, Tensor):
        raise TypeError(f"{where} is a Tensor; save tensor.numpy() or put it in params")
    if isinstance(obj, tuple):
        return {"__tuple__": [_to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}; dict keys must be strings to be saved")
            out[k] = _to_json(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} is a {type(obj).__name__}, which cannot be saved; use numbers, "
                    "strings, bools, None, lists, tuples, dicts and NumPy arrays")


def _from_json(obj):
    """Undo :func:`_to_json`."""
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {"__float__"}:
        return float(obj["__float__"])
    if set(obj) == {"__tuple__"}:
        return tuple(_from_json(v) for v in obj["__tuple__"])
    if set(obj) == {"__ndarray__", "dtype", "shape"}:
        dtype = np.dtype(obj["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"a saved array has dtype {dtype}; only bool/int/float are allowed")
        values = [_from_json(v) for v in obj["__ndarray__"]]
        return np.array(values, dtype=dtype).reshape(obj["shape"])
    return {k: _from_json(v) for k, v in obj.items()}


def _json_bytes(obj) -> np.ndarray:
    text = json.dumps(obj, allow_nan=False, ensure_ascii=True)
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy()


# ---- checksum ---------------------------------------------------------------------------------
def _checksum(entries: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over every entry but ``checksum``, in sorted key order: name, dtype, shape, bytes."""
    h = hashlib.sha256()
    for key in sorted(entries):
        if key == "checksum":
            continue
        a = np.ascontiguousarray(entries[key])
        h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        if a.size and a.dtype.itemsize:  # (a zero-byte dtype cannot be viewed as bytes)
            h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


# ---- saving -----------------------------------------------------------------------------------
def _optimizer_state(optimizer) -> dict | None:
    if optimizer is None:
        return None
    if hasattr(optimizer, "state_dict"):
        return optimizer.state_dict()
    if isinstance(optimizer, Mapping):  # an already taken state dict
        return dict(optimizer)
    raise TypeError(f"optimizer must be an optimizer or its state_dict(), got "
                    f"{type(optimizer).__name__}")


def _state_entries(state: dict | None, prefix: str, what: str, entries: dict) -> dict | None:
    """Put a state dict's arrays into ``entries`` as ``prefix/<key>``; return the metadata for the rest."""
    if state is None:
        return None
    meta = {"keys": [], "scalars": {}}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"{what} key {key!r} is not a string")
        meta["keys"].append(key)
        if isinstance(value, np.ndarray) or backend.device_of(value) == "cuda":
            entries[f"{prefix}/{key}"] = backend.to_numpy(value)
        else:
            meta["scalars"][key] = _to_json(value, f"{what} {key!r}")
    return meta


def _entries(params, optimizer, rng, config, extra, algorithm_state=None) -> dict[str, np.ndarray]:
    """Every array the file will hold, checksum included (raises before any file is touched)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict name -> Tensor, got {type(params).__name__}")
    entries: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64)}
    requires_grad = {}
    for name, p in params.items():
        if not isinstance(name, str) or not isinstance(p, Tensor):
            raise TypeError(f"params must map names (str) to Tensors; got {name!r}: "
                            f"{type(p).__name__}")
        entries[f"param/{name}"] = backend.to_numpy(p.data)
        requires_grad[name] = bool(p.requires_grad)

    optim_meta = _state_entries(_optimizer_state(optimizer), "optim", "optimizer state", entries)
    algo_meta = _state_entries(None if algorithm_state is None else dict(algorithm_state), "algo",
                               "algorithm state", entries)

    rng_state = None
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
        rng_state = _to_json(rng.bit_generator.state, "rng state")

    meta = {"format": _FORMAT_NAME, "tinymeta_version": _tinymeta_version(),
            "params": list(requires_grad), "requires_grad": requires_grad,
            "optimizer": optim_meta, "rng_state": rng_state, "algorithm": algo_meta,
            "config": _to_json(dict(config or {}), "config"),
            "extra": _to_json(dict(extra or {}), "extra")}
    entries["meta"] = _json_bytes(meta)
    entries["checksum"] = np.frombuffer(_checksum(entries).encode("ascii"), dtype=np.uint8).copy()
    return entries


def _write_npz(f, entries) -> None:
    """Write the entries as an uncompressed .npz into the open binary file ``f``."""
    np.savez(f, **entries)


def save_checkpoint(path, params: Mapping[str, Tensor], optimizer=None,
                    rng: np.random.Generator | None = None, config: dict | None = None,
                    extra: dict | None = None, algorithm_state: dict | None = None) -> str:
    """Write everything needed to resume training to one ``.npz`` file, atomically.

    ``params``: the model's parameter dict (saved as host arrays, whatever the device);
    ``optimizer``: an optimizer from :mod:`tinymeta.optim` (or its ``state_dict()``);
    ``rng``: a ``np.random.Generator`` whose exact state is saved;
    ``config``, ``extra``: dicts of JSON-like values (numbers, strings, bools, None,
    lists, tuples, dicts with string keys, small NumPy arrays), restored exactly;
    ``algorithm_state``: the algorithm's ``state_dict()`` (arrays and plain values), when it has one.

    The file is written at ``path`` exactly (no ``.npz`` is appended). Returns the path.
    """
    path = os.fspath(path)
    entries = _entries(params, optimizer, rng, config, extra, algorithm_state)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path!r}: the folder {folder!r} does not exist "
                                "(create it first, e.g. os.makedirs(folder, exist_ok=True))")
    # np.savez on a name would append '.npz'; on an open file it writes exactly there.
    with atomic_write(path, "wb") as f:
        _write_npz(f, entries)
    return path


# ---- loading ----------------------------------------------------------------------------------
def _read_entries(path: str) -> dict[str, np.ndarray]:
    """All arrays of the .npz at ``path``, each entry's declared size checked before it is read
    (:func:`tinymeta.files.read_npz`); never unpickling anything."""
    try:
        check_regular_file(path)  # not a link to a device or a pipe: nothing below may block or run on
    except UnreadableFileError as exc:
        raise CheckpointError(f"{path!r} {exc.problem}") from None
    try:
        return read_npz(path)
    except UnreadableFileError as exc:
        with open(path, "rb") as f:  # a regular file: say what it is when it is a bare .npy
            if f.read(6) == b"\x93NUMPY":
                raise CheckpointError(f"{path!r} is a single-array .npy file, not a tinymeta checkpoint") from None
        raise CheckpointError(f"{path!r} is damaged, or not a tinymeta checkpoint at all: {exc.problem}") from None


def _check_entries(path: str, entries: dict) -> dict:
    """Verify version and checksum; return the decoded meta dict."""
    if "format_version" not in entries or "meta" not in entries:
        raise CheckpointError(f"{path!r} is an .npz file but not a tinymeta checkpoint "
                              "(no 'format_version'/'meta' entries)")
    version = entries["format_version"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise CheckpointError(f"{path!r} has a malformed 'format_version' entry")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path!r} uses checkpoint format {int(version)}; this tinymeta "
                              f"({_tinymeta_version()}) reads up to {FORMAT_VERSION}: upgrade tinymeta")
    if int(version) < 1:
        raise CheckpointError(f"{path!r} has an invalid format version {int(version)}")
    stored = entries.get("checksum")
    if stored is None:
        raise CheckpointError(f"{path!r} has no checksum entry; it was not written by "
                              "save_checkpoint or has been altered")
    if stored.dtype != np.uint8 or stored.tobytes().decode("ascii", "replace") != _checksum(entries):
        raise CheckpointError(f"{path!r} is corrupt: its SHA-256 checksum does not match the "
                              "contents (damaged or modified after saving); use another copy")
    try:
        meta = json.loads(entries["meta"].tobytes().decode("ascii"))
    except RecursionError:
        raise CheckpointError(f"{path!r} has a 'meta' entry nested too deeply to be read") from None
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, or an integer of thousands of digits
        raise CheckpointError(f"{path!r} has an unreadable 'meta' entry ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT_NAME:
        raise CheckpointError(f"{path!r} has a 'meta' entry that is not tinymeta checkpoint metadata")
    return meta


def load_checkpoint(path, device=None) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint`, checking its integrity first.

    Parameters come back as fresh Tensor leaves on ``device`` ('cpu' or 'cuda';
    default: tinymeta's default device). Raises FileNotFoundError for a missing
    file and :class:`CheckpointError` (a ValueError) for anything that is not an
    intact checkpoint. Never unpickles: safe on files from untrusted sources.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r} (absolute: {os.path.abspath(path)!r})")
    device = backend.check_device(device)
    entries = _read_entries(path)
    meta = _check_entries(path, entries)
    try:
        return _decode(path, entries, meta, device)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{path!r} has checkpoint metadata nested too deeply to be read") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # The checksum only proves the file is as written; a hand-made file can still be odd.
        raise CheckpointError(f"{path!r} has malformed checkpoint metadata ({exc!r})") from None


def _decode(path: str, entries: dict, meta: dict, device: str) -> Checkpoint:
    """Turn checked entries and metadata into a Checkpoint, checking the type of every part."""
    names = meta["params"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise CheckpointError(f"{path!r}: the recorded parameter names are not a list of distinct names")
    stored = {k[len("param/"):] for k in entries if k.startswith("param/")}
    if set(names) != stored:
        raise CheckpointError(f"{path!r}: parameter entries {sorted(stored)} do not match the "
                              f"recorded names {sorted(names)}")
    requires_grad = meta["requires_grad"]
    if not isinstance(requires_grad, dict) or set(requires_grad) != set(names) or not all(
            isinstance(v, bool) for v in requires_grad.values()):
        raise CheckpointError(f"{path!r}: 'requires_grad' does not give True or False for each parameter")
    params = {}
    for name in names:
        array = entries[f"param/{name}"]
        if array.dtype.kind != "f":
            raise CheckpointError(f"{path!r}: parameter {name!r} has dtype {array.dtype}; parameters are "
                                  "floating point")
        t = tensor(array, device=device)
        if requires_grad[name]:
            t.requires_grad_(True)
        params[name] = t

    optimizer_state = _decode_state(path, entries, meta["optimizer"], "optim", "optimizer state")
    algorithm_state = _decode_state(path, entries, meta.get("algorithm"), "algo", "algorithm state")

    rng_state = None if meta["rng_state"] is None else _from_json(meta["rng_state"])
    if rng_state is not None:
        try:  # a state the bit generator refuses would otherwise fail only when training resumes
            restore_rng(rng_state)
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise CheckpointError(f"{path!r}: the saved random-generator state is malformed ({exc})") from None
    config, extra = _from_json(meta["config"]), _from_json(meta["extra"])
    for what, value in (("config", config), ("extra", extra)):
        if not isinstance(value, dict):
            raise CheckpointError(f"{path!r}: the saved {what} is a {type(value).__name__}, not a dict")
    return Checkpoint(params=params, optimizer_state=optimizer_state, rng_state=rng_state,
                      algorithm_state=algorithm_state, config=config, extra=extra,
                      path=path, format_version=int(entries["format_version"]))


def _decode_state(path: str, entries: dict, meta: dict | None, prefix: str, what: str) -> dict | None:
    """Undo :func:`_state_entries` (None when no such state was saved; older files have no algorithm state)."""
    if meta is None:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("keys"), list) or not isinstance(
            meta.get("scalars"), dict) or not all(isinstance(k, str) for k in meta["keys"]):
        raise CheckpointError(f"{path!r}: the {what} metadata is malformed")
    state = {}
    for key in meta["keys"]:
        if key in meta["scalars"]:
            state[key] = _from_json(meta["scalars"][key])
        elif f"{prefix}/{key}" in entries:
            state[key] = entries[f"{prefix}/{key}"]
        else:
            raise CheckpointError(f"{path!r}: {what} {key!r} is missing")
    return state


def restore_rng(state: Mapping) -> np.random.Generator:
    """A new ``np.random.Generator`` in exactly the saved ``bit_generator.state``."""
    if not isinstance(state, Mapping) or "bit_generator" not in state:
        raise TypeError("restore_rng takes a bit_generator.state dict (Checkpoint.rng_state)")
    name = state["bit_generator"]
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {name!r}; supported: {sorted(_BIT_GENERATORS)}")
    bit_generator = _BIT_GENERATORS[name]()
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)


# ---- comparing configs ------------------------------------------------------------------------
def _same(x, y) -> bool:
    """Equality for config values: arrays elementwise, nan equal to nan, bool distinct from 1."""
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape
                and x.dtype == y.dtype and bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f")))
    if isinstance(x, bool) != isinstance(y, bool):
        return False
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return (type(x) is type(y) and len(x) == len(y)
                and all(_same(a, b) for a, b in zip(x, y)))
    try:
        return bool(x == y)
    except Exception:  # noqa: BLE001 (an odd __eq__ means "cannot tell": call it different)
        return False


def config_diff(a: Mapping, b: Mapping, *, labels=("a", "b")) -> list[str]:
    """Human-readable differences between two (nested) config dicts; [] when they agree.

    Nested dicts are compared key by key and named with dotted paths, e.g.
    ``["model.hidden: a=64, b=128", "seed: only in b (=3)"]``. ``labels`` names the
    two sides, e.g. ``labels=("checkpoint", "current")``.
    """
    la, lb = labels
    out: list[str] = []

    def walk(x: Mapping, y: Mapping, prefix: str) -> None:
        for key in sorted(set(x) | set(y), key=str):
            where = f"{prefix}{key}"
            if key not in y:
                out.append(f"{where}: only in {la} (={x[key]!r})")
            elif key not in x:
                out.append(f"{where}: only in {lb} (={y[key]!r})")
            elif isinstance(x[key], Mapping) and isinstance(y[key], Mapping):
                walk(x[key], y[key], f"{where}.")
            elif not _same(x[key], y[key]):
                out.append(f"{where}: {la}={x[key]!r}, {lb}={y[key]!r}")

    walk(a, b, "")
    return out
