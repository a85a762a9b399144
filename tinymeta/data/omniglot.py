"""Omniglot (Lake, Salakhutdinov & Tenenbaum 2015): read the official zips, cache 28x28 arrays.

The official distribution is two zips from https://github.com/brendenlake/omniglot
(``python/images_background.zip`` and ``python/images_evaluation.zip``), laid out as
``<split>/<Alphabet>/characterNN/<id>_<drawer>.png``: 1623 characters (964 background,
659 evaluation), 20 drawings each, 105x105 1-bit images.

:func:`load_omniglot` decodes them once (a few seconds), resizes each image to 28x28
and saves a compact cache (uint8, ~25 MB); later calls load the cache in a fraction of
a second. The cache lives under ``$TINYMETA_CACHE`` (default ``~/.cache/tinymeta``),
never in the data folder, which may be read-only. It records a fingerprint of its
source and a checksum of its own arrays; a cache that fails either check is rebuilt.

Resizing exactly as MAML's reference code (``proc_images.py``): the 1-bit image is
resized with ``Image.resize((28, 28), resample=Image.LANCZOS)`` *without* converting it
first. Pillow resamples 1-bit images by nearest neighbour whatever filter is asked for,
so the images MAML trained on, and ours, are binary 28x28 pictures. They are then
inverted so that ink = 1 and background = 0 (MAML's data generator computes
``1 - image / 255``). Anti-aliased grayscale images would be a different protocol.

The helpers in the "cache and location helpers" section are shared with
:mod:`tinymeta.data.miniimagenet`.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write

# ---- facts about the official distribution --------------------------------------------
SPLITS = ("images_background", "images_evaluation")
EXPECTED_CHARACTERS = {"images_background": 964, "images_evaluation": 659}
DRAWINGS_PER_CHARACTER = 20
SOURCE_SIZE = 105  # official images are 105x105
IMAGE_SIZE = 28  # the size MAML and most few-shot papers use
HOME_URL = "https://github.com/brendenlake/omniglot"
DOWNLOAD_BASE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
# md5 of the official zips (the same ones torchvision checks); a download must match.
OFFICIAL_MD5 = {"images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
                "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811"}
DEFAULT_DATA_DIR = Path("data") / "omniglot"  # relative to the working directory
CACHE_VERSION = 2  # bump when the cache layout or the preprocessing changes
CACHE_NAME = f"omniglot_{IMAGE_SIZE}x{IMAGE_SIZE}_v{CACHE_VERSION}.npz"
PREPROCESSING = f"1;resize-as-MAML(nearest);{IMAGE_SIZE}x{IMAGE_SIZE};ink=255"


# =======================================================================================
# Cache and location helpers (shared with miniimagenet.py)
# =======================================================================================
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
        _say(verbose, f"could not write the {name} cache to {path} ({exc}); continuing without it "
                      "(set $TINYMETA_CACHE to a writable folder)")
        return False
    _say(verbose, f"{name} cache written to {path} in {time.perf_counter() - start:.1f} s")
    return True


def load_cache(path: Path, fingerprint: str, preprocessing: str) -> tuple[dict | None, str]:
    """Load a cache written by :func:`save_cache` if it is intact and matches its source.

    Returns ``(arrays, "")`` on success, or ``(None, reason)`` when the cache is absent,
    unreadable, truncated, fails its checksum, or was built from other data or with
    other preprocessing (the caller then rebuilds it).
    """
    if not path.exists():
        return None, "no cache yet"
    try:
        with np.load(path, allow_pickle=False) as z:  # never unpickle: a cache is just arrays
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # BadZipFile, EOFError, ValueError, OSError, ...
        return None, f"cache {path} is unreadable ({type(exc).__name__}: {exc})"
    stored = arrays.pop("checksum", None)
    if stored is None or str(stored) != array_checksum(arrays):
        return None, f"cache {path} fails its checksum (corrupt or edited)"
    if str(arrays.get("source_fingerprint")) != fingerprint:
        return None, f"cache {path} was built from different source files"
    if str(arrays.get("preprocessing")) != preprocessing:
        return None, f"cache {path} was built with different preprocessing"
    return arrays, ""


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"tinymeta: {msg}", file=sys.stderr, flush=True)


# =======================================================================================
# Finding the data
# =======================================================================================
@dataclass(frozen=True)
class _Split:
    """Where one split's PNGs are: a zip file or an unpacked folder."""

    name: str
    path: Path
    is_zip: bool

    def fingerprint(self) -> str:
        kind, digest = ("zip", file_sha256(self.path)) if self.is_zip else ("dir", folder_fingerprint(self.path))
        return f"{self.name}:{kind}:{digest}"


def _splits_in(folder: Path) -> list[_Split] | None:
    """Both splits in ``folder`` (the zip preferred over the unpacked folder), or None."""
    found = []
    for split in SPLITS:
        if (folder / f"{split}.zip").is_file():
            found.append(_Split(split, folder / f"{split}.zip", True))
        elif (folder / split).is_dir():
            found.append(_Split(split, folder / split, False))
        else:
            return None
    return found


def find_omniglot(data_dir=None) -> Path:
    """The folder holding Omniglot's two zips (or their unpacked folders).

    Looks in ``data_dir``, else ``$TINYMETA_DATA``, else ``./data/omniglot`` (see
    :func:`candidate_dirs`). Raises FileNotFoundError naming every path tried, what was
    expected there and where to get the data.
    """
    candidates, origin = candidate_dirs(data_dir, DEFAULT_DATA_DIR, "omniglot")
    for folder in candidates:
        if _splits_in(folder) is not None:
            return folder
    tried = "\n".join(f"  {p.resolve()}  ({_what_is_there(p)})" for p in candidates)
    raise FileNotFoundError(
        f"Omniglot data not found. Looked in (location from {origin}):\n{tried}\n"
        "Expected in that folder: images_background.zip and images_evaluation.zip "
        "(or the unpacked folders images_background/ and images_evaluation/).\n"
        f"Get the official zips from {HOME_URL} (files python/images_background.zip and "
        "python/images_evaluation.zip), or run `tinymeta download omniglot --dest DIR`; "
        "then pass --data-dir DIR or set $TINYMETA_DATA=DIR.")


def _what_is_there(folder: Path) -> str:
    if not folder.exists():
        return "does not exist"
    if not folder.is_dir():
        return "not a folder"
    have = [s for s in SPLITS if (folder / f"{s}.zip").is_file() or (folder / s).is_dir()]
    return f"has only {have[0]}" if have else "neither zip nor folder there"


# =======================================================================================
# Decoding
# =======================================================================================
def _list_pngs(split: _Split) -> dict[tuple[str, str], list[str]]:
    """Map (alphabet, character) -> sorted drawing names, checking the layout.

    Names are zip member names or paths relative to the split's parent folder, always
    ``<split>/<Alphabet>/<character>/<file>.png``.
    """
    if split.is_zip:
        try:
            with zipfile.ZipFile(split.path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile as exc:
            raise RuntimeError(f"{split.path} is not a valid zip file ({exc}); download it again "
                               f"from {HOME_URL}") from None
    else:
        root = split.path.parent
        names = [(Path(d) / f).relative_to(root).as_posix()
                 for d, _, files in os.walk(split.path) for f in files]
    chars: dict[tuple[str, str], list[str]] = {}
    for name in names:
        parts = name.split("/")
        base = parts[-1]
        if base.startswith(".") or "__MACOSX" in parts or base == "Thumbs.db":
            continue  # operating-system litter, not data
        if not base.lower().endswith(".png") or len(parts) != 4 or parts[0] != split.name:
            raise RuntimeError(f"unexpected file {name!r} in {split.path}: Omniglot's layout is "
                               f"{split.name}/<Alphabet>/characterNN/<id>_<drawer>.png")
        chars.setdefault((parts[1], parts[2]), []).append(name)
    return {key: sorted(v) for key, v in sorted(chars.items())}


def _check_counts(split: _Split, chars: dict, expected_characters: int) -> None:
    for (alphabet, character), files in chars.items():
        if len(files) != DRAWINGS_PER_CHARACTER:
            raise RuntimeError(
                f"{split.path}: character {split.name}/{alphabet}/{character} has {len(files)} "
                f"drawings, expected {DRAWINGS_PER_CHARACTER}. The file is incomplete or "
                f"modified; download it again from {HOME_URL}")
    if len(chars) != expected_characters:
        raise RuntimeError(
            f"{split.path}: found {len(chars)} characters, expected {expected_characters} for "
            f"{split.name}. The file is incomplete or modified; download it again from {HOME_URL}")


def _decode(data: bytes, where: str) -> np.ndarray:
    """One PNG -> 28x28 uint8 with ink = 255 (MAML's ``1 - image/255``, times 255)."""
    from PIL import Image  # noqa: PLC0415  (Pillow is only needed when building)

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.size != (SOURCE_SIZE, SOURCE_SIZE):
                raise ValueError(f"size {im.size}, expected {SOURCE_SIZE}x{SOURCE_SIZE}")
            # as MAML: resize the 1-bit image itself (Pillow uses nearest for mode "1")
            small = im.resize((IMAGE_SIZE, IMAGE_SIZE), resample=Image.LANCZOS).convert("L")
    except Exception as exc:
        raise RuntimeError(f"cannot decode Omniglot image {where}: {type(exc).__name__}: {exc}. "
                           f"The file is corrupt; download the data again from {HOME_URL}") from None
    return 255 - np.asarray(small, dtype=np.uint8)


def _build_arrays(splits: list[_Split], expected_characters: dict | None = None) -> dict:
    """Decode every PNG of both splits into the cache's arrays (no caching here).

    Characters are ordered background first, then evaluation, each sorted by alphabet
    then character folder; drawings by file name. ``expected_characters`` overrides the
    official per-split counts (only tests with small synthetic zips need that).
    """
    expected = dict(EXPECTED_CHARACTERS, **(expected_characters or {}))
    listing = []
    for split in splits:  # check the whole layout before the slow decoding
        chars = _list_pngs(split)
        _check_counts(split, chars, expected[split.name])
        listing.append((split, chars))
    n_chars = sum(len(c) for _, c in listing)
    images = np.empty((n_chars, DRAWINGS_PER_CHARACTER, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    alphabets, characters, split_names, file_names = [], [], [], []
    c = 0
    for split, chars in listing:
        zf = zipfile.ZipFile(split.path) if split.is_zip else None
        try:
            for (alphabet, character), files in chars.items():
                for d, name in enumerate(files):
                    if zf is not None:
                        where = f"{name} in {split.path}"
                        try:
                            data = zf.read(name)
                        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # e.g. CRC mismatch
                            raise RuntimeError(f"cannot read Omniglot image {where}: {exc}. The zip "
                                               f"is corrupt; download it again from {HOME_URL}") from None
                    else:
                        where = str(split.path.parent / name)
                        data = Path(where).read_bytes()
                    images[c, d] = _decode(data, where)
                alphabets.append(alphabet)
                characters.append(character)
                split_names.append(split.name)
                file_names.append([Path(f).stem for f in files])
                c += 1
        finally:
            if zf is not None:
                zf.close()
    return {"images": images, "alphabets": np.array(alphabets), "characters": np.array(characters),
            "splits": np.array(split_names), "file_names": np.array(file_names)}


# =======================================================================================
# The public loader
# =======================================================================================
@dataclass(frozen=True, eq=False)
class OmniglotData:
    """All of Omniglot, resized: ``images[c, d]`` is drawing ``d`` of character ``c``.

    ``images`` is (1623, 20, 28, 28) uint8 with ink = 255 and background = 0
    (:meth:`float_images` gives MAML's float version, ink = 1.0). Characters run
    background split first (indices 0..963), then evaluation (964..1622), each sorted by
    alphabet and character folder. ``file_names[c, d]`` is the PNG's stem, e.g.
    ``"0709_01"`` (character id 709, drawer 1).
    """

    images: np.ndarray  # (C, 20, 28, 28) uint8
    alphabets: np.ndarray  # (C,) str, e.g. "Latin"
    characters: np.ndarray  # (C,) str, e.g. "character01"
    splits: np.ndarray  # (C,) str, "images_background" or "images_evaluation"
    file_names: np.ndarray  # (C, 20) str
    source: str  # the folder the data came from
    cache_path: str | None  # the cache file (None if it could not be written)

    @property
    def num_characters(self) -> int:
        return self.images.shape[0]

    def name(self, c: int) -> str:
        """A character's readable name, e.g. ``'Latin/character01'``."""
        return f"{self.alphabets[c]}/{self.characters[c]}"

    def indices(self, split: str) -> np.ndarray:
        """Character indices of one of Lake's splits: 'background' or 'evaluation'."""
        full = split if split.startswith("images_") else f"images_{split}"
        if full not in SPLITS:
            raise ValueError(f"unknown Omniglot split {split!r}: use 'background' or 'evaluation'")
        return np.flatnonzero(self.splits == full)

    def float_images(self) -> np.ndarray:
        """All images as float32 in [0, 1], ink = 1.0 (100 MB; samplers gather uint8 instead)."""
        return self.images.astype(np.float32) / np.float32(255)


def load_omniglot(data_dir=None, cache_dir=None, *, rebuild: bool = False, verbose: bool = True,
                  expected_characters: dict | None = None) -> OmniglotData:
    """Load Omniglot at 28x28, building the cache on first use.

    ``data_dir``: the folder with the two zips (or unpacked folders); default
    ``$TINYMETA_DATA``, then ``./data/omniglot``. ``cache_dir``: default
    ``$TINYMETA_CACHE``, then ``~/.cache/tinymeta``. ``rebuild=True`` ignores an
    existing cache. A cache that is corrupt, truncated, or built from other files is
    rebuilt (and the reason printed when ``verbose``). If the cache folder is not
    writable the data is still returned, just not cached.

    Raises FileNotFoundError if the data is not found, RuntimeError naming the file if
    a zip is incomplete (a character without 20 drawings, a wrong character count) or
    holds a corrupt PNG.
    """
    folder = find_omniglot(data_dir)
    splits = _splits_in(folder)
    fingerprint = ";".join(s.fingerprint() for s in splits)
    if expected_characters:  # a non-official layout must not share a cache entry by accident
        fingerprint += f";expected={sorted(expected_characters.items())}"
    path = resolve_cache_dir(cache_dir) / CACHE_NAME
    cached = True
    arrays, reason = (None, "rebuild requested") if rebuild else load_cache(path, fingerprint, PREPROCESSING)
    if arrays is None:
        if reason != "no cache yet":
            _say(verbose, f"rebuilding the Omniglot cache: {reason}")
        _say(verbose, f"building the Omniglot cache from {folder} (once; a few seconds)")
        start = time.perf_counter()
        arrays = _build_arrays(splits, expected_characters)
        arrays.update(source_fingerprint=np.array(fingerprint), preprocessing=np.array(PREPROCESSING),
                      cache_version=np.array(CACHE_VERSION))
        cached = save_cache_or_warn(path, arrays, "Omniglot", start, verbose)
    return OmniglotData(images=arrays["images"], alphabets=arrays["alphabets"],
                        characters=arrays["characters"], splits=arrays["splits"],
                        file_names=arrays["file_names"], source=str(folder),
                        cache_path=str(path) if cached else None)


# =======================================================================================
# Download (only when asked)
# =======================================================================================
def download(dest, *, base_url: str = DOWNLOAD_BASE_URL, timeout: float = 60.0,
             verify: bool = True, overwrite: bool = False, verbose: bool = True) -> list[Path]:
    """Fetch the two official zips into ``dest`` (created if needed); return their paths.

    Each file is streamed to a temporary name in ``dest`` and renamed only when
    complete (and, with ``verify``, only if its md5 matches the official file). Files
    already present are kept unless ``overwrite``. Raises RuntimeError with manual
    instructions when the server cannot be reached (e.g. offline).
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SPLITS:
        fname = f"{name}.zip"
        target = dest / fname
        paths.append(target)
        if target.exists() and not overwrite:
            _say(verbose, f"{target} already exists; keeping it")
            continue
        url = base_url.rstrip("/") + "/" + fname
        _say(verbose, f"downloading {url}")
        fd, tmp = tempfile.mkstemp(prefix=fname + ".", suffix=".part", dir=dest)
        try:
            md5 = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    md5.update(chunk)
            if verify and md5.hexdigest() != OFFICIAL_MD5[fname]:
                raise RuntimeError(f"{url} gave a file with md5 {md5.hexdigest()}, but the official "
                                   f"{fname} has md5 {OFFICIAL_MD5[fname]}; not saved")
            os.replace(tmp, target)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            _unlink(tmp)
            raise RuntimeError(
                f"could not download {url} ({exc}). Check the connection (are you offline?) and the "
                f"URL, or download python/{fname} by hand from {HOME_URL} and put it in {dest}") from None
        except BaseException:
            _unlink(tmp)
            raise
    return paths


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["OmniglotData", "load_omniglot", "find_omniglot", "download", "resolve_cache_dir",
           "SPLITS", "EXPECTED_CHARACTERS", "DRAWINGS_PER_CHARACTER", "IMAGE_SIZE", "HOME_URL",
           "CACHE_NAME"]
