"""The chapters: each notebook runs top to bottom in quick mode, and is stored clean.

Notebooks are committed without outputs or execution counts, so that diffs stay
readable and nothing on the page is stale: what a reader sees is what their own
run produces. A check below enforces it.
"""
import json

import pytest

from conftest import OMNIGLOT_DIR, REPO

CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))


def test_there_are_chapters():
    assert len(CHAPTERS) >= 1


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs (clear them before committing)"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch, omniglot_cache):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TINYMETA_QUICK", "1")
    monkeypatch.setenv("TINYMETA_DATA", str(OMNIGLOT_DIR))
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
