"""The API reference builds from the docstrings without a warning (pdoc is in the dev extra)."""
import subprocess
import sys

import pytest

from conftest import REPO


def test_the_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("pdoc")
    out = tmp_path / "api"
    proc = subprocess.run([sys.executable, "-W", "always", "-m", "tinymeta", "docs", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    for page in ("index.html", "tinymeta.html", "tinymeta/experiment/loop.html", "tinymeta/tasks/base.html",
                 "tinymeta/algorithms/maml.html", "tinymeta/ops/conv.html"):
        assert page in pages
    assert "Meta-train" in (out / "tinymeta/experiment/loop.html").read_text()  # train()'s docstring
