"""The chapters: each notebook runs top to bottom in quick mode, is stored clean, and leaves the source tree alone.

Notebooks are committed without outputs or execution counts, so that diffs stay
readable and nothing on the page is stale: what a reader sees is what their own
run produces. A check below enforces it.

The chapters carry the numbers of the book's chapters (*Hands-On Meta Learning with Python*):
``chapters/06_maml.ipynb`` is the book's chapter 6. tinymeta's own material, which the book does
not have, is in appendices numbered so that they cannot be mistaken for the book's chapters:
``chapters/A1_autodiff_from_scratch.ipynb``. A check below holds both to it.

Chapter N is linked to its checks by its number: ``chapters/NN_<topic>.ipynb``,
``tinymeta/exercises/chNN_<topic>.py``, ``chapters/solutions/chNN_<topic>.py`` and
``tests/test_chNN_<topic>.py`` all carry the pytest marker ``chNN`` (registered in
pytest.ini), so ``pytest -m ch06`` runs chapter 6's checks and its notebook. Appendix AN's
are ``chapters/AN_<topic>.ipynb``, ``aN_<topic>.py``, ``tests/test_aN_<topic>.py`` and the marker
``aN`` (``pytest -m a1``).
"""
import json
import re

import pytest
from conftest import OMNIGLOT_DIR, REPO

from tinymeta.data import find_omniglot
from tinymeta.exercises.folders import chapter_data_dir, chapter_runs_dir, find_checkout

CHAPTERS = sorted((REPO / "chapters").glob("*.ipynb"))

# The book's chapters by number, each with the words one of which a chapter of that number names in its title
# (the book's chapter 5, memory-augmented networks, has no chapter here yet).
BOOK_CHAPTERS = {1: ("meta-learning",), 2: ("siamese",), 3: ("prototypical",), 4: ("relation", "matching"),
                 5: ("memory",), 6: ("maml", "adml", "caml"), 7: ("meta-sgd", "reptile"),
                 8: ("gradient agreement",), 9: ("recent advances",)}
NUMBERED = re.compile(r"(?:test_)?(?:(?:ch)?(\d\d)|[aA](\d))_")    # 06_, ch06_, test_ch06_; A1_, a1_, test_a1_


def chapter_marker(path):
    """'ch06' for chapters/06_maml.ipynb, 'a1' for the appendix chapters/A1_autodiff_from_scratch.ipynb (and
    for any file named chNN_..., test_chNN_..., aN_... or test_aN_...)."""
    match = NUMBERED.match(path.name)
    assert match, f"{path.name} starts with neither a two-digit chapter number (06_) nor an appendix number (A1_)"
    return f"ch{match.group(1)}" if match.group(1) else f"a{match.group(2)}"


def notebook_name(module):
    """The notebook of a checker module: 06_maml.ipynb for ch06_maml.py, A1_autodiff_from_scratch.ipynb for
    a1_autodiff_from_scratch.py."""
    stem = module.stem
    return f"{stem[2:]}.ipynb" if stem.startswith("ch") else f"{stem[0].upper()}{stem[1:]}.ipynb"


def exercise_modules(folder):
    """The chapters' and appendices' modules in ``folder`` (chNN_<topic>.py, aN_<topic>.py)."""
    return sorted(p for p in folder.glob("*.py") if NUMBERED.match(p.name))


def title(path):
    """A notebook's first line: '# Chapter 6: MAML, step by step'."""
    first = json.loads(path.read_text())["cells"][0]
    return "".join(first["source"]).split("\n")[0]


def per_chapter(paths):
    """Parameters for the notebooks, each marked with its chapter's marker."""
    return [pytest.param(p, id=p.stem, marks=getattr(pytest.mark, chapter_marker(p))) for p in paths]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 1


def test_every_chapter_has_a_registered_marker(pytestconfig):
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    missing = [p.name for p in CHAPTERS if chapter_marker(p) not in registered]
    assert not missing, f"register the markers of {missing} in pytest.ini"


@pytest.mark.parametrize("path", per_chapter(CHAPTERS))
def test_chapter_numbers_are_the_books_and_tinymetas_own_chapters_are_appendices(path):
    """06_<topic> is the book's chapter 6 and says so in its title; what the book lacks is an appendix, A1_<topic>."""
    heading = title(path)
    if path.name[0].isdigit():
        number = int(path.name[:2])
        assert number in BOOK_CHAPTERS, (f"{path.name}: the book has no chapter {number}; tinymeta's own material "
                                         f"goes in an appendix (chapters/A<n>_<topic>.ipynb)")
        assert re.match(rf"# Chapter {number}\b", heading), \
            f"{path.name}: its title {heading!r} is not '# Chapter {number}...'"
        assert any(word in heading.lower() for word in BOOK_CHAPTERS[number]), \
            (f"{path.name}: its title {heading!r} names none of {BOOK_CHAPTERS[number]}, the book's chapter {number}; "
             f"tinymeta's own material goes in an appendix (chapters/A<n>_<topic>.ipynb)")
    else:
        letter_number = path.name.split("_")[0]                            # A1
        assert re.match(rf"# Appendix {letter_number}\b", heading), \
            f"{path.name}: its title {heading!r} is not '# Appendix {letter_number}...'"


def test_exercises_solutions_and_tests_share_the_chapter_number():
    """Every checker module chNN_<topic> (aN_<topic>) has its notebook NN_<topic> (AN_<topic>), its solutions and
    its marked tests."""
    modules = exercise_modules(REPO / "tinymeta" / "exercises")
    assert modules
    for module in modules:
        notebook = notebook_name(module)
        assert (REPO / "chapters" / notebook).is_file(), f"{module.name}: no notebook {notebook}"
        assert (REPO / "chapters" / "solutions" / module.name).is_file(), f"{module.name}: no solutions module"
        test_file = REPO / "tests" / f"test_{module.name}"
        assert test_file.is_file(), f"{module.name}: no tests/test_{module.name}"
        assert f"pytestmark = pytest.mark.{chapter_marker(module)}\n" in test_file.read_text(), \
            f"{test_file.name} is not marked {chapter_marker(module)}"
    solutions = {p.name for p in exercise_modules(REPO / "chapters" / "solutions")}
    assert solutions == {m.name for m in modules}


@pytest.mark.parametrize("path", per_chapter(CHAPTERS))
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs (clear them before committing)"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"


def files_under(folder):
    """Every file below ``folder`` (Python's own __pycache__ aside) -> (size, modification time)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("path", per_chapter(CHAPTERS))
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch, omniglot_cache):
    """Run as Jupyter would (in chapters/); what it writes goes to $TINYMETA_RUNS, nothing into chapters/."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    runs = tmp_path / "runs"
    monkeypatch.setenv("TINYMETA_QUICK", "1")
    monkeypatch.setenv("TINYMETA_DATA", str(OMNIGLOT_DIR))
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    monkeypatch.setenv("TINYMETA_RUNS", str(runs))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    before = files_under(REPO / "chapters")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "chapters")}})
    client.execute()  # raises CellExecutionError on the first failing cell
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    echoed = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and "check_" in cell.source
              and any(out.output_type == "execute_result" for out in cell.outputs)]
    assert not echoed, f"{path.name}: checker cells {echoed} echo the checker's True/False (end the call with ';')"
    assert "not found" not in printed, f"{path.name} did not find Omniglot in {OMNIGLOT_DIR}"
    after = files_under(REPO / "chapters")
    changed = sorted(name for name in after if before.get(name) != after[name])
    assert not changed, f"{path.name} wrote into chapters/: {changed[:5]} (write under chapter_runs_dir())"
    if "chapter_runs_dir()" in path.read_text():
        assert any(runs.iterdir()), f"{path.name} asks for a runs folder but wrote nothing there"


# ---- where the chapters find their data and put their runs ----------------------------------------------
def fake_checkout(root):
    """A tinymeta checkout's skeleton with Omniglot (as unpacked folders) where the README says to put it."""
    (root / "tinymeta").mkdir(parents=True)
    (root / "tinymeta" / "__init__.py").write_text("")
    (root / "setup.py").write_text("")
    (root / "chapters").mkdir()
    for split in ("images_background", "images_evaluation"):
        (root / "data" / "omniglot" / split).mkdir(parents=True)
    return root


def test_data_is_found_in_the_checkout_when_jupyter_starts_in_chapters(tmp_path, monkeypatch):
    root = fake_checkout(tmp_path / "repo")
    monkeypatch.delenv("TINYMETA_DATA", raising=False)
    monkeypatch.chdir(root / "chapters")
    assert find_checkout() == root.resolve()
    assert chapter_data_dir("omniglot") == root.resolve() / "data" / "omniglot"
    assert find_omniglot(chapter_data_dir("omniglot")) == root.resolve() / "data" / "omniglot"


def test_data_from_this_repository_chapters_folder(monkeypatch):
    monkeypatch.delenv("TINYMETA_DATA", raising=False)
    monkeypatch.chdir(REPO / "chapters")
    assert chapter_data_dir("omniglot") == REPO / "data" / "omniglot"


def test_data_outside_any_checkout_falls_back_to_the_one_tinymeta_is_imported_from(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYMETA_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert chapter_data_dir("omniglot") == REPO / "data" / "omniglot"


def test_tinymeta_data_wins(tmp_path, monkeypatch):
    root = fake_checkout(tmp_path / "repo")
    monkeypatch.setenv("TINYMETA_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.chdir(root / "chapters")
    assert chapter_data_dir("omniglot") == tmp_path / "elsewhere"


def test_runs_go_to_tinymeta_runs_else_the_cache_never_the_source_tree(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO / "chapters")
    monkeypatch.setenv("TINYMETA_RUNS", str(tmp_path / "runs"))
    assert chapter_runs_dir() == tmp_path / "runs" and (tmp_path / "runs").is_dir()
    monkeypatch.delenv("TINYMETA_RUNS")
    monkeypatch.setenv("TINYMETA_CACHE", str(tmp_path / "cache"))
    assert chapter_runs_dir() == tmp_path / "cache" / "chapter-runs"
    assert (tmp_path / "cache" / "chapter-runs").is_dir()
    monkeypatch.delenv("TINYMETA_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert chapter_runs_dir() == tmp_path / "home" / ".cache" / "tinymeta" / "chapter-runs"
