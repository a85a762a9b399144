"""Where the chapters read their data and write their runs, wherever Jupyter was started.

Jupyter runs a notebook with the notebook's own folder (``chapters/``) as the
working directory, so a path relative to it would look for data in
``chapters/data/`` (not in ``data/`` at the repository's root, where the README
puts it) and would write training runs into the source tree. The chapters ask
these two functions instead.

- Data: ``$TINYMETA_DATA`` if set; else ``data/<dataset>`` in the tinymeta
  checkout, found by walking up from the working directory to the folder that
  holds ``setup.py`` and ``tinymeta/`` (or, failing that, the checkout tinymeta
  itself was imported from, as with ``pip install -e``); else ``./data/<dataset>``.
- Runs: ``$TINYMETA_RUNS`` if set; else ``chapter-runs/`` in tinymeta's cache
  folder (``$TINYMETA_CACHE``, default ``~/.cache/tinymeta``). Never the source tree.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..data import resolve_cache_dir


def _is_checkout(folder: Path) -> bool:
    return (folder / "setup.py").is_file() and (folder / "tinymeta" / "__init__.py").is_file()


def find_checkout(start=None) -> Path | None:
    """The tinymeta checkout that holds ``start`` (default: the working directory), or None.

    Walks up from ``start`` to the first folder holding ``setup.py`` and ``tinymeta/``;
    if there is none, tries the checkout the imported ``tinymeta`` package lives in
    (an editable install); None for a plain installed package run outside a checkout.
    """
    here = Path.cwd() if start is None else Path(start)
    for folder in (here.resolve(), *here.resolve().parents):
        if _is_checkout(folder):
            return folder
    package_parent = Path(__file__).resolve().parents[2]   # <checkout>/tinymeta/exercises/folders.py
    return package_parent if _is_checkout(package_parent) else None


def chapter_data_dir(dataset: str = "omniglot") -> Path:
    """The folder a chapter reads ``dataset`` from (see the module docstring for the order).

    The folder need not exist: the loader then says what it expected there and how
    to get the data.
    """
    env = os.environ.get("TINYMETA_DATA")
    if env:
        return Path(env).expanduser()
    checkout = find_checkout()
    return (checkout if checkout is not None else Path.cwd()) / "data" / dataset


def chapter_runs_dir() -> Path:
    """The folder the chapters write training runs and figures to (created): ``$TINYMETA_RUNS``,
    else ``<tinymeta cache>/chapter-runs``, outside the source tree."""
    env = os.environ.get("TINYMETA_RUNS")
    folder = Path(env).expanduser() if env else resolve_cache_dir() / "chapter-runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
