"""The API reference: HTML pages generated from the docstrings by pdoc (``tinymeta docs``).

pdoc is in the ``dev`` extra (``pip install -e ".[dev]"``). The pages are built, not stored:
``tinymeta docs --out docs/api`` and open ``docs/api/index.html``.
"""
from __future__ import annotations

import pkgutil
from pathlib import Path


def api_modules() -> list[str]:
    """Every public module of tinymeta, packages before their modules."""
    import tinymeta  # noqa: PLC0415

    names = [m.name for m in pkgutil.walk_packages(tinymeta.__path__, "tinymeta.")]
    return ["tinymeta"] + [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def build_docs(out) -> Path:
    """Write the API reference to ``out`` (one page per module); returns ``out/index.html``.

    pdoc follows each package's ``__all__``, which leaves some modules out; those are
    named to it as well, each once (a module named twice gives pdoc a warning).
    """
    import pdoc  # noqa: PLC0415
    import pdoc.extract  # noqa: PLC0415
    import pdoc.render  # noqa: PLC0415

    specs, covered = [], set()
    for name in api_modules():
        if name not in covered:
            specs.append(name)
            covered.update(pdoc.extract.walk_specs([name]))
    pdoc.render.configure(docformat="restructuredtext")
    pdoc.pdoc(*specs, output_directory=Path(out))
    return Path(out) / "index.html"
