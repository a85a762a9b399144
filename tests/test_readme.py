"""The README's Python examples run as written, and print what their ``# prints`` comments say."""
import contextlib
import io
import re

import pytest

from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def _first_line(block):
    return next(line for line in block.splitlines() if line.strip())[:60]


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[_first_line(b) for b in BLOCKS])
def test_readme_example_runs_as_written(block, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    expected = re.findall(r"#\s*prints (.*)$", block, flags=re.M)
    printed = out.getvalue().splitlines()
    assert len(printed) == len(expected), f"printed {printed}, the README's '# prints' say {expected}"
    for want, got in zip(expected, printed):
        assert got.strip() == want.strip(), f"printed {got!r}, the README says {want!r}"
