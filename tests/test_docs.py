"""The API reference builds from the docstrings without a warning (pdoc is in the dev extra), also
where PyTorch is not installed: pdoc imports every module, and PyTorch is never a dependency."""
import os
import subprocess
import sys

import pytest

from conftest import REPO

NO_TORCH = "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"


def test_the_api_reference_builds_without_warnings_and_without_pytorch(tmp_path):
    pytest.importorskip("pdoc")
    hide = tmp_path / "no-torch"  # first on the path: `import torch` fails as where it is not installed
    hide.mkdir()
    (hide / "torch.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out = tmp_path / "api"
    proc = subprocess.run([sys.executable, "-W", "always", "-m", "tinymeta", "docs", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    pages = {p.relative_to(out).as_posix() for p in out.rglob("*.html")}
    for page in ("index.html", "tinymeta.html", "tinymeta/experiment/loop.html", "tinymeta/tasks/base.html",
                 "tinymeta/algorithms/maml.html", "tinymeta/ops/conv.html", "tinymeta/experiment/bench_torch.html"):
        assert page in pages
    assert "Meta-train" in (out / "tinymeta/experiment/loop.html").read_text()  # train()'s docstring
