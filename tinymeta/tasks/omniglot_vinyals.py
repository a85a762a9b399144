"""Vinyals et al.'s Omniglot split (matching networks, 2016), as prototypical networks use it.

The split is data, not a rule: whole alphabets in a fixed order, except Gurmukhi, whose
characters 1-41 are training and 42-45 test. It is copied here from the split files of
jakesnell/prototypical-networks at commit c9bb4d2 (``data/omniglot/splits/vinyals/
{train,val,test,trainval}.txt``), compactly: each file lists, alphabet by alphabet in the
order below, ``<alphabet>/character<NN>/rot<000|090|180|270>`` for every character of a
run, the four rotations of a character one after another. :func:`vinyals_lines`
rebuilds each file's text from the runs, and ``VINYALS_SHA256`` holds the SHA-256 of
each original file, so a test can tell that nothing was lost in the copy.

Counts (Snell et al. 2017, Sec. 3.1; Vinyals et al. 2016, Sec. 4.1.1): 1200 training
characters (1028 train + 172 validation in the original code's files; ``trainval`` is
both), 423 test characters; with the four rotations as classes, 4800 and 1692 classes.
"""
from __future__ import annotations

import hashlib

import numpy as np

# (alphabet, first character, last character), in the order of the original files
VINYALS_SPLIT = {
    "train": (
        ("Angelic", 1, 20), ("Grantha", 1, 43), ("N_Ko", 1, 33), ("Aurek-Besh", 1, 26),
        ("Japanese_(hiragana)", 1, 52), ("Malay_(Jawi_-_Arabic)", 1, 40), ("Asomtavruli_(Georgian)", 1, 40),
        ("Sanskrit", 1, 42), ("Ojibwe_(Canadian_Aboriginal_Syllabics)", 1, 14), ("Korean", 1, 40),
        ("Arcadian", 1, 26), ("Greek", 1, 24), ("Alphabet_of_the_Magi", 1, 20),
        ("Blackfoot_(Canadian_Aboriginal_Syllabics)", 1, 14), ("Futurama", 1, 26), ("Gurmukhi", 1, 41),
        ("Tagalog", 1, 17), ("Anglo-Saxon_Futhorc", 1, 29), ("Braille", 1, 26), ("Cyrillic", 1, 33),
        ("Burmese_(Myanmar)", 1, 34), ("Avesta", 1, 26), ("Gujarati", 1, 48), ("Ge_ez", 1, 26),
        ("Syriac_(Estrangelo)", 1, 23), ("Atlantean", 1, 26), ("Japanese_(katakana)", 1, 47),
        ("Balinese", 1, 24), ("Atemayar_Qelisayer", 1, 26), ("Glagolitic", 1, 45), ("Tifinagh", 1, 55),
        ("Latin", 1, 26), ("Inuktitut_(Canadian_Aboriginal_Syllabics)", 1, 16),
    ),
    "val": (
        ("Hebrew", 1, 22), ("Mkhedruli_(Georgian)", 1, 41), ("Armenian", 1, 41), ("Early_Aramaic", 1, 22),
        ("Bengali", 1, 46),
    ),
    "test": (
        ("Gurmukhi", 42, 45), ("Kannada", 1, 41), ("Keble", 1, 26), ("Malayalam", 1, 47), ("Manipuri", 1, 40),
        ("Mongolian", 1, 30), ("Old_Church_Slavonic_(Cyrillic)", 1, 45), ("Oriya", 1, 46),
        ("Syriac_(Serto)", 1, 23), ("Sylheti", 1, 28), ("Tengwar", 1, 25), ("Tibetan", 1, 42), ("ULOG", 1, 26),
    ),
}
VINYALS_CODE = "jakesnell/prototypical-networks@c9bb4d2"
# sha256 of data/omniglot/splits/vinyals/<split>.txt at VINYALS_CODE
VINYALS_SHA256 = {
    "train": "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
    "val": "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
    "test": "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
    "trainval": "5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a",
}
VINYALS_SIZES = {"train": 1028, "val": 172, "test": 423}  # characters; x4 rotations = classes
ROTATION_NAMES = ("rot000", "rot090", "rot180", "rot270")


def vinyals_characters(split: str) -> list[tuple[str, str]]:
    """(alphabet, character folder) of every character of ``split`` ('train', 'val', 'test' or
    'trainval' = train then val), in the original file's order."""
    if split == "trainval":
        return vinyals_characters("train") + vinyals_characters("val")
    if split not in VINYALS_SPLIT:
        raise ValueError(f"unknown Vinyals split {split!r}: use train, val, test or trainval")
    return [(a, f"character{n:02d}") for a, lo, hi in VINYALS_SPLIT[split] for n in range(lo, hi + 1)]


def vinyals_lines(split: str) -> str:
    """The text of the original ``<split>.txt``: one class per line, ``alphabet/characterNN/rotDDD``."""
    return "".join(f"{a}/{c}/{r}\n" for a, c in vinyals_characters(split) for r in ROTATION_NAMES)


def vinyals_sha256(split: str) -> str:
    """SHA-256 of :func:`vinyals_lines` (equal to ``VINYALS_SHA256[split]`` when the copy is faithful)."""
    return hashlib.sha256(vinyals_lines(split).encode()).hexdigest()


def vinyals_split(data, trainval: bool = False) -> dict:
    """{'train', 'val', 'test'} -> character indices of ``data`` (an OmniglotData), in the files' order.

    ``trainval``: the training pool is train and validation characters together (the
    original's final model, scripts/train/few_shot/trainval.py); 'val' stays the 172
    validation characters, then seen in training (monitoring only, selecting nothing).
    Raises ValueError naming a character the data lacks.
    """
    where = {(str(a), str(c)): i for i, (a, c) in enumerate(zip(data.alphabets, data.characters))}
    out = {}
    for split in ("train", "val", "test"):
        names = vinyals_characters("trainval" if (trainval and split == "train") else split)
        missing = [f"{a}/{c}" for a, c in names if (a, c) not in where]
        if missing:
            raise ValueError(f"split_mode='vinyals' needs all 1623 Omniglot characters; the data lacks "
                             f"{len(missing)} of the {split} split's, e.g. {missing[0]}")
        out[split] = np.array([where[n] for n in names], dtype=np.int64)
    return out


__all__ = ["VINYALS_SPLIT", "VINYALS_SHA256", "VINYALS_SIZES", "VINYALS_CODE", "vinyals_characters",
           "vinyals_lines", "vinyals_sha256", "vinyals_split"]
