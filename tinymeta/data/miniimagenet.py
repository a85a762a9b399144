"""mini-ImageNet (Vinyals et al. 2016, with Ravi & Larochelle's 64/16/20 class split).

Expected layout (the one MAML and most few-shot code use)::

    <folder>/images/<filename>.jpg      84x84 RGB JPEGs (other sizes are resized to 84x84)
    <folder>/train.csv, val.csv, test.csv   header ``filename,label``; one row per image

There is no official download: the images come from ImageNet (its terms apply) and the
split files from Ravi & Larochelle (https://github.com/twitter/meta-learning-lstm,
``data/miniImagenet/*.csv``); MAML's README points to the same files.

:func:`load_miniimagenet` decodes every image once into a uint8 cache (channels first,
images grouped by class) under ``$TINYMETA_CACHE`` (default ``~/.cache/tinymeta``), with
the same fingerprint and checksum checks as the Omniglot cache. The full dataset is
60,000 images, about 1.3 GB as uint8.
"""
from __future__ import annotations

import csv
import hashlib
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import UnreadableFileError, check_regular_file, read_text_bounded
from .cache import DataError, candidate_dirs, layout_problem, load_cache, resolve_cache_dir, save_cache_or_warn, say

SPLITS = ("train", "val", "test")
IMAGE_SIZE = 84
DEFAULT_DATA_DIR = Path("data") / "miniimagenet"
SPLIT_FILES_URL = "https://github.com/twitter/meta-learning-lstm/tree/master/data/miniImagenet"
CACHE_VERSION = 1
CACHE_NAME = f"miniimagenet_{IMAGE_SIZE}x{IMAGE_SIZE}_v{CACHE_VERSION}.npz"
PREPROCESSING = f"RGB;LANCZOS-if-needed;{IMAGE_SIZE}x{IMAGE_SIZE};CHW"
MAX_CSV_BYTES = 64 << 20      # the official csv files are about 2 MB
MAX_IMAGE_BYTES = 64 << 20    # one JPEG file
MAX_IMAGE_PIXELS = 1 << 26    # 8192 x 8192: read from the image header, checked before decoding


def _missing_parts(folder: Path) -> list[str]:
    need = ["images/"] + [f"{s}.csv" for s in SPLITS]
    return [n for n in need if not (folder / n.rstrip("/")).exists()]


def find_miniimagenet(data_dir=None) -> Path:
    """The folder holding ``images/`` and the three csv files.

    Looks in ``data_dir``, else ``$TINYMETA_DATA`` (or its ``miniimagenet/`` subfolder),
    else ``./data/miniimagenet``. Raises FileNotFoundError naming every path tried.
    """
    candidates, origin = candidate_dirs(data_dir, DEFAULT_DATA_DIR, "miniimagenet")
    for folder in candidates:
        if folder.is_dir() and not _missing_parts(folder):
            return folder
    lines = []
    for p in candidates:
        status = "does not exist" if not p.is_dir() else "missing " + ", ".join(_missing_parts(p))
        lines.append(f"  {p.resolve()}  ({status})")
    raise FileNotFoundError(
        f"mini-ImageNet data not found. Looked in (location from {origin}):\n" + "\n".join(lines) +
        "\nExpected in that folder: images/ (84x84 JPEGs) and train.csv, val.csv, test.csv "
        "(header 'filename,label').\nThe split files are Ravi & Larochelle's "
        f"({SPLIT_FILES_URL}); the images come from ImageNet. Then pass --data-dir DIR or set "
        "$TINYMETA_DATA=DIR.")


def _check_filename(path: Path, line: int, name: str) -> str:
    """An image's file name as the csv gives it: a plain name inside images/, nothing that leads out."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
        raise ValueError(f"{path}, line {line}: {name!r} is not a plain file name in images/ (paths with "
                         "'/', '..' or a drive are refused: the csv may only name images of the dataset)")
    return name


def _read_csv(path: Path) -> list[tuple[str, str]]:
    try:
        text = read_text_bounded(path, MAX_CSV_BYTES)
    except UnreadableFileError as exc:
        raise ValueError(str(exc)) from None
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise ValueError(f"{path}: not a csv file ({exc})") from None
    if not rows or [c.strip() for c in rows[0]] != ["filename", "label"]:
        raise ValueError(f"{path}: the first line must be the header 'filename,label', "
                         f"got {rows[0] if rows else 'an empty file'}")
    out = []
    for i, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a trailing blank line
        if len(row) != 2 or not row[0] or not row[1]:
            raise ValueError(f"{path}, line {i}: expected 'filename,label', got {row}")
        out.append((_check_filename(path, i, row[0].strip()), row[1].strip()))
    if not out:
        raise ValueError(f"{path} lists no images")
    return out


def _read_splits(folder: Path) -> list[tuple[str, str, list[str]]]:
    """[(split, label, [filenames])] with classes sorted by label within each split."""
    classes, seen = [], {}
    for split in SPLITS:
        by_label: dict[str, list[str]] = {}
        for filename, label in _read_csv(folder / f"{split}.csv"):
            by_label.setdefault(label, []).append(filename)
        for label in sorted(by_label):
            if label in seen:
                raise ValueError(f"class {label!r} is listed in both {seen[label]}.csv and "
                                 f"{split}.csv; the splits must be disjoint")
            seen[label] = split
            classes.append((split, label, by_label[label]))
    return classes


def _fingerprint(folder: Path, classes) -> str:
    """sha256 of the csv bytes plus the name and size of every listed image."""
    h = hashlib.sha256()
    for split in SPLITS:
        h.update(read_text_bounded(folder / f"{split}.csv", MAX_CSV_BYTES).encode("utf-8"))
    for _, _, files in classes:
        for name in files:
            path = folder / "images" / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise FileNotFoundError(f"{path} is listed in the csv files but does not exist") from None
            h.update(f"{name}\t{size}\n".encode())
    return h.hexdigest()


def _decode(path: Path) -> np.ndarray:
    """One image -> (3, 84, 84) uint8, resized with LANCZOS only if it is not 84x84.

    The file must be a regular file of at most MAX_IMAGE_BYTES, and the size its header
    declares at most MAX_IMAGE_PIXELS (Pillow reads the size without decoding).
    """
    from PIL import Image  # noqa: PLC0415

    try:
        size = check_regular_file(path)
        if size > MAX_IMAGE_BYTES:
            raise ValueError(f"it is {size:,} bytes, more than the {MAX_IMAGE_BYTES:,} an image may be")
        with warnings.catch_warnings():  # Pillow warns of a large size; the size check below refuses it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"it declares {im.width}x{im.height} pixels, more than {MAX_IMAGE_PIXELS:,}")
            im = im.convert("RGB")
            if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                im = im.resize((IMAGE_SIZE, IMAGE_SIZE), resample=Image.LANCZOS)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 (Pillow's many kinds, its decompression-bomb limit included)
        raise DataError(f"cannot decode mini-ImageNet image {path}: {type(exc).__name__}: {exc}. "
                        "The file is corrupt or not an image; replace it") from None


def _build_arrays(folder: Path, classes, verbose: bool) -> dict:
    from tqdm import tqdm  # noqa: PLC0415

    total = sum(len(f) for _, _, f in classes)
    images = np.empty((total, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    filenames, offsets, i = [], [0], 0
    with tqdm(total=total, desc="mini-ImageNet cache", unit="img", disable=not verbose) as bar:
        for _, _, files in classes:
            for name in files:
                images[i] = _decode(folder / "images" / name)
                filenames.append(name)
                i += 1
                bar.update()
            offsets.append(i)
    return {"images": images, "filenames": np.array(filenames),
            "class_offsets": np.array(offsets, dtype=np.int64),
            "labels": np.array([label for _, label, _ in classes]),
            "class_splits": np.array([split for split, _, _ in classes])}


def _layout_problem(arrays: dict, classes) -> str:
    """What is wrong with a cache's arrays against the classes the csv files list ("" if nothing)."""
    n, c = sum(len(files) for _, _, files in classes), len(classes)
    problem = layout_problem(arrays, {"images": ((n, 3, IMAGE_SIZE, IMAGE_SIZE), "uint8"), "filenames": ((n,), "U"),
                                      "class_offsets": ((c + 1,), "int64"), "labels": ((c,), "U"),
                                      "class_splits": ((c,), "U")})
    if problem:
        return problem
    offsets = np.concatenate([[0], np.cumsum([len(files) for _, _, files in classes])])
    if not np.array_equal(arrays["class_offsets"], offsets):
        return "its class offsets do not match the csv files"
    if list(arrays["class_splits"]) != [split for split, _, _ in classes]:
        return "its class splits do not match the csv files"
    return ""


@dataclass(frozen=True, eq=False)
class MiniImageNetData:
    """mini-ImageNet as uint8 arrays, images grouped by class.

    ``images[class_offsets[c]:class_offsets[c + 1]]`` are the images of class ``c``,
    each (3, 84, 84) uint8. Classes run train, then val, then test, each sorted by label
    (the WordNet id, e.g. ``n01532829``).
    """

    images: np.ndarray  # (n_images, 3, 84, 84) uint8
    filenames: np.ndarray  # (n_images,) str
    class_offsets: np.ndarray  # (C + 1,) int64
    labels: np.ndarray  # (C,) str
    class_splits: np.ndarray  # (C,) str: 'train', 'val' or 'test'
    source: str
    cache_path: str | None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def class_sizes(self) -> np.ndarray:
        """Images per class, (C,) int64."""
        return np.diff(self.class_offsets)

    def indices(self, split: str) -> np.ndarray:
        """Class indices of 'train', 'val' or 'test'."""
        if split not in SPLITS:
            raise ValueError(f"unknown mini-ImageNet split {split!r}: use one of {SPLITS}")
        return np.flatnonzero(self.class_splits == split)


def load_miniimagenet(data_dir=None, cache_dir=None, *, rebuild: bool = False,
                      verbose: bool = True) -> MiniImageNetData:
    """Load mini-ImageNet, building the uint8 cache on first use.

    ``data_dir``: default ``$TINYMETA_DATA`` (or its ``miniimagenet/``), then
    ``./data/miniimagenet``. ``cache_dir``: default ``$TINYMETA_CACHE``, then
    ``~/.cache/tinymeta``. A corrupt cache or one built from other files is rebuilt.
    Raises FileNotFoundError for a missing folder, csv file or listed image, ValueError
    for a malformed csv (or one naming a path outside ``images/``),
    :class:`~tinymeta.data.cache.DataError` (a RuntimeError and a ValueError) naming a
    corrupt, oversized or special (device, pipe) image file.
    """
    folder = find_miniimagenet(data_dir)
    classes = _read_splits(folder)
    fingerprint = _fingerprint(folder, classes)
    path = resolve_cache_dir(cache_dir) / CACHE_NAME
    arrays, reason = (None, "rebuild requested") if rebuild else load_cache(path, fingerprint, PREPROCESSING)
    if arrays is not None:  # a forged cache can carry a matching fingerprint: its arrays must fit too
        problem = _layout_problem(arrays, classes)
        if problem:
            arrays, reason = None, f"cache {path} does not hold the layout of {folder}: {problem}"
    cached = True
    if arrays is None:
        if reason != "no cache yet":
            say(verbose, f"rebuilding the mini-ImageNet cache: {reason}")
        start = time.perf_counter()
        arrays = _build_arrays(folder, classes, verbose)
        arrays.update(source_fingerprint=np.array(fingerprint), preprocessing=np.array(PREPROCESSING),
                      cache_version=np.array(CACHE_VERSION))
        cached = save_cache_or_warn(path, arrays, "mini-ImageNet", start, verbose)
    return MiniImageNetData(images=arrays["images"], filenames=arrays["filenames"],
                            class_offsets=arrays["class_offsets"], labels=arrays["labels"],
                            class_splits=arrays["class_splits"], source=str(folder),
                            cache_path=str(path) if cached else None)


__all__ = ["MiniImageNetData", "load_miniimagenet", "find_miniimagenet", "SPLITS", "IMAGE_SIZE"]
