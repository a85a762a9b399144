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

Caching and locations: :mod:`tinymeta.data.cache`; downloading:
:mod:`tinymeta.data.download`.
"""
from __future__ import annotations

import io
import os
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import UnreadableFileError, read_bytes_bounded
from .cache import (DataError, candidate_dirs, file_sha256, folder_fingerprint, layout_problem, load_cache,
                    resolve_cache_dir, save_cache_or_warn, say)

# ---- facts about the official distribution --------------------------------------------
SPLITS = ("images_background", "images_evaluation")
EXPECTED_CHARACTERS = {"images_background": 964, "images_evaluation": 659}
DRAWINGS_PER_CHARACTER = 20
SOURCE_SIZE = 105  # official images are 105x105
IMAGE_SIZE = 28  # the size MAML and most few-shot papers use
HOME_URL = "https://github.com/brendenlake/omniglot"
DEFAULT_DATA_DIR = Path("data") / "omniglot"  # relative to the working directory
CACHE_VERSION = 2  # bump when the cache layout or the preprocessing changes
CACHE_NAME = f"omniglot_{IMAGE_SIZE}x{IMAGE_SIZE}_v{CACHE_VERSION}.npz"
PREPROCESSING = f"1;resize-as-MAML(nearest);{IMAGE_SIZE}x{IMAGE_SIZE};ink=255"
MAX_PNG_BYTES = 1 << 20  # the official PNGs are under 1 KB; a larger member is refused before it is read
# What reading a damaged zip can raise (zlib.error: a damaged compressed stream)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
               NotImplementedError)


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
        except _ZIP_ERRORS as exc:
            raise DataError(f"{split.path} is not a valid zip file ({type(exc).__name__}: {exc}); download "
                            f"it again from {HOME_URL}") from None
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
        if (not base.lower().endswith(".png") or len(parts) != 4 or parts[0] != split.name
                or any(part in ("", ".", "..") or "\\" in part for part in parts)):
            raise DataError(f"unexpected file {name!r} in {split.path}: Omniglot's layout is "
                            f"{split.name}/<Alphabet>/characterNN/<id>_<drawer>.png (no '..' or empty parts)")
        chars.setdefault((parts[1], parts[2]), []).append(name)
    return {key: sorted(v) for key, v in sorted(chars.items())}


def _check_counts(split: _Split, chars: dict, expected_characters: int) -> None:
    for (alphabet, character), files in chars.items():
        if len(files) != DRAWINGS_PER_CHARACTER:
            raise DataError(
                f"{split.path}: character {split.name}/{alphabet}/{character} has {len(files)} "
                f"drawings, expected {DRAWINGS_PER_CHARACTER}. The file is incomplete or "
                f"modified; download it again from {HOME_URL}")
    if len(chars) != expected_characters:
        raise DataError(
            f"{split.path}: found {len(chars)} characters, expected {expected_characters} for "
            f"{split.name}. The file is incomplete or modified; download it again from {HOME_URL}")


def _decode(data: bytes, where: str) -> np.ndarray:
    """One PNG -> 28x28 uint8 with ink = 255 (MAML's ``1 - image/255``, times 255)."""
    from PIL import Image  # noqa: PLC0415  (Pillow is only needed when building)

    try:
        with warnings.catch_warnings():  # Pillow warns of a large size; the size check below refuses it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            if im.size != (SOURCE_SIZE, SOURCE_SIZE):  # read from the header: checked before decoding
                raise ValueError(f"size {im.size}, expected {SOURCE_SIZE}x{SOURCE_SIZE}")
            im.load()
            # as MAML: resize the 1-bit image itself (Pillow uses nearest for mode "1")
            small = im.resize((IMAGE_SIZE, IMAGE_SIZE), resample=Image.LANCZOS).convert("L")
    except Exception as exc:  # noqa: BLE001 (Pillow raises many kinds for a damaged PNG)
        raise DataError(f"cannot decode Omniglot image {where}: {type(exc).__name__}: {exc}. "
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
        try:
            zf = zipfile.ZipFile(split.path) if split.is_zip else None
        except _ZIP_ERRORS as exc:
            raise DataError(f"{split.path} is not a valid zip file ({exc}); download it again from "
                            f"{HOME_URL}") from None
        try:
            for (alphabet, character), files in chars.items():
                for d, name in enumerate(files):
                    if zf is not None:
                        where = f"{name} in {split.path}"
                        data = _read_member(zf, name, where)
                    else:
                        where = str(split.path.parent / name)
                        try:  # a regular file of at most MAX_PNG_BYTES (not a link to a device)
                            data = read_bytes_bounded(where, MAX_PNG_BYTES)
                        except UnreadableFileError as exc:
                            raise DataError(f"{exc}; Omniglot images are small PNG files") from None
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


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> bytes:
    """One zip member's bytes, its declared size checked first and the read bounded by it."""
    try:
        info = zf.getinfo(name)
        if info.file_size > MAX_PNG_BYTES:
            raise DataError(f"cannot read Omniglot image {where}: it declares {info.file_size:,} bytes, more than "
                            f"the {MAX_PNG_BYTES:,} an Omniglot PNG can hold; download the data again from {HOME_URL}")
        with zf.open(info) as member:
            return member.read(MAX_PNG_BYTES + 1)
    except DataError:
        raise
    except _ZIP_ERRORS as exc:  # a CRC mismatch, a damaged deflate stream, a truncated file
        kind = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
        raise DataError(f"cannot read Omniglot image {where}: {kind}: {exc}. The zip is "
                        f"corrupt; download it again from {HOME_URL}") from None


def _cache_layout(n_characters: int) -> dict:
    """The arrays a cache of ``n_characters`` characters holds: {name: (shape, dtype)}."""
    c, d, s = n_characters, DRAWINGS_PER_CHARACTER, IMAGE_SIZE
    return {"images": ((c, d, s, s), "uint8"), "alphabets": ((c,), "U"), "characters": ((c,), "U"),
            "splits": ((c,), "U"), "file_names": ((c, d), "U")}


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

    Raises FileNotFoundError if the data is not found, :class:`~tinymeta.data.cache.DataError`
    (a RuntimeError and a ValueError) naming the file if a zip is incomplete (a character
    without 20 drawings, a wrong character count), damaged, holds a member path with
    ``..`` or a member larger than a PNG can be, or a corrupt or wrongly sized PNG (sizes
    are read from the headers, before anything is inflated or decoded).
    """
    folder = find_omniglot(data_dir)
    splits = _splits_in(folder)
    fingerprint = ";".join(s.fingerprint() for s in splits)
    if expected_characters:  # a non-official layout must not share a cache entry by accident
        fingerprint += f";expected={sorted(expected_characters.items())}"
    path = resolve_cache_dir(cache_dir) / CACHE_NAME
    cached = True
    arrays, reason = (None, "rebuild requested") if rebuild else load_cache(path, fingerprint, PREPROCESSING)
    if arrays is not None:  # a forged cache can carry a matching fingerprint: its arrays must fit too
        expected = dict(EXPECTED_CHARACTERS, **(expected_characters or {}))
        problem = layout_problem(arrays, _cache_layout(sum(expected[s.name] for s in splits)))
        if problem:
            arrays, reason = None, f"cache {path} does not hold Omniglot's layout: {problem}"
    if arrays is None:
        if reason != "no cache yet":
            say(verbose, f"rebuilding the Omniglot cache: {reason}")
        say(verbose, f"building the Omniglot cache from {folder} (once; a few seconds)")
        start = time.perf_counter()
        arrays = _build_arrays(splits, expected_characters)
        arrays.update(source_fingerprint=np.array(fingerprint), preprocessing=np.array(PREPROCESSING),
                      cache_version=np.array(CACHE_VERSION))
        cached = save_cache_or_warn(path, arrays, "Omniglot", start, verbose)
    return OmniglotData(images=arrays["images"], alphabets=arrays["alphabets"],
                        characters=arrays["characters"], splits=arrays["splits"],
                        file_names=arrays["file_names"], source=str(folder),
                        cache_path=str(path) if cached else None)


__all__ = ["OmniglotData", "load_omniglot", "find_omniglot", "SPLITS", "EXPECTED_CHARACTERS",
           "DRAWINGS_PER_CHARACTER", "IMAGE_SIZE", "HOME_URL", "CACHE_NAME"]
