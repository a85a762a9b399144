"""Omniglot loader: the real data (counts, pixels, cache) and broken synthetic zips."""
from __future__ import annotations

import http.server
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymeta.data import omniglot as og
from tinymeta.data import download_omniglot, load_omniglot

from conftest import OMNIGLOT_DIR as REAL_DIR
SMALL = {"images_background": 3, "images_evaluation": 2}  # character counts of the synthetic set


# ---- fixtures ---------------------------------------------------------------------------


def _png(rng, ink_fraction=0.1) -> bytes:
    """A random 105x105 1-bit PNG like Omniglot's (white background = 1)."""
    pixels = rng.random((105, 105)) > ink_fraction
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def make_fake_omniglot(root: Path, seed=0, counts=SMALL, drawings=20, as_zip=True, drop=None,
                       corrupt=None) -> Path:
    """A small Omniglot-shaped dataset in ``root``.

    ``drop``: a member name to leave out; ``corrupt``: a member name whose bytes are
    replaced by garbage. Member names are ``<split>/Alpha<a>/characterNN/<id>_<dd>.png``.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    first_id = 1
    for split, n_chars in counts.items():
        members = {}
        for c in range(n_chars):
            alphabet = f"Alpha{c % 2}"
            for d in range(drawings):
                name = f"{split}/{alphabet}/character{c + 1:02d}/{first_id + c:04d}_{d + 1:02d}.png"
                members[name] = b"not a png at all" if name == corrupt else _png(rng)
        members.pop(drop, None)
        first_id += n_chars
        if as_zip:
            with zipfile.ZipFile(root / f"{split}.zip", "w") as zf:
                for name, data in members.items():
                    zf.writestr(name, data)
        else:
            for name, data in members.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
    return root


def load_small(root, cache, **kw):
    return load_omniglot(root, cache, expected_characters=SMALL, verbose=kw.pop("verbose", False), **kw)


# ---- the real data ------------------------------------------------------------------------
def test_real_counts(omniglot_real):
    d = omniglot_real
    assert d.images.shape == (1623, 20, 28, 28) and d.images.dtype == np.uint8
    assert d.num_characters == 1623
    assert len(d.indices("background")) == 964 and len(d.indices("evaluation")) == 659
    assert np.array_equal(d.indices("background"), np.arange(964))  # background comes first
    assert len(set(d.alphabets[:964])) == 30 and len(set(d.alphabets[964:])) == 20
    ids = np.array([[int(f.split("_")[0]) for f in row] for row in d.file_names])
    assert (ids == ids[:, :1]).all()  # one character id per character
    assert sorted(ids[:, 0]) == list(range(1, 1624))  # every id once
    drawers = np.array([[int(f.split("_")[1]) for f in row] for row in d.file_names])
    assert (drawers == np.arange(1, 21)).all()
    assert d.name(int(np.flatnonzero(ids[:, 0] == 965)[0])) == "Angelic/character01"
    # ink = 255 on a 0 background: corners are empty, a few % of pixels are ink
    assert (d.images[:, :, 0, 0] == 0).mean() > 0.99 and 0.02 < (d.images > 127).mean() < 0.3
    assert d.cache_path is not None and Path(d.cache_path).is_file()
    assert not Path(d.cache_path).is_relative_to(REAL_DIR)


@pytest.mark.parametrize("split, npz_index, drawing", [
    ("images_background", 0, 0), ("images_background", 682, 4), ("images_background", 963, 19),
    ("images_evaluation", 0, 0), ("images_evaluation", 311, 11), ("images_evaluation", 658, 19)])
def test_real_pixels_match_npz_originals(omniglot_real, split, npz_index, drawing):
    """Cached pixels = the upstream array, resized the MAML way and inverted."""
    with np.load(REAL_DIR / "npz" / f"{split}.npz", allow_pickle=False) as z:
        original = z["images"][npz_index, drawing]  # bool, True = white background
    first = 1 if split == "images_background" else 965
    stem = f"{npz_index + first:04d}_{drawing + 1:02d}"
    c, d = (int(v[0]) for v in np.nonzero(omniglot_real.file_names == stem))
    # MAML's proc_images.py: resize the 1-bit image as it is (Pillow: nearest neighbour)
    resized = np.asarray(Image.fromarray(original).resize((28, 28), Image.LANCZOS).convert("L"))
    expected = 255 - resized
    assert np.array_equal(omniglot_real.images[c, d], expected)
    assert set(np.unique(expected)) <= {0, 255}  # binary, as MAML trained on
    floats = omniglot_real.float_images()[c, d]
    assert np.allclose(floats, 1 - resized / 255, atol=1e-6)


def test_real_cache_reload_is_identical(omniglot_real):
    """The second load reads the cache (its speed is measured by `bench --only tasks`, not here)."""
    again = load_omniglot(REAL_DIR, Path(omniglot_real.cache_path).parent, verbose=False)
    assert np.array_equal(again.images, omniglot_real.images)
    assert np.array_equal(again.file_names, omniglot_real.file_names)


# ---- cache behaviour (synthetic data: fast) ------------------------------------------------
def test_folder_layout_equals_zip_layout(tmp_path):
    a = load_small(make_fake_omniglot(tmp_path / "zips"), tmp_path / "c1")
    b = load_small(make_fake_omniglot(tmp_path / "dirs", as_zip=False), tmp_path / "c2")
    assert a.images.shape == (5, 20, 28, 28)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.file_names, b.file_names)
    assert list(a.splits) == ["images_background"] * 3 + ["images_evaluation"] * 2


def test_cache_is_reused_and_written_atomically(tmp_path, capsys):
    root = make_fake_omniglot(tmp_path / "data")
    load_small(root, tmp_path / "cache", verbose=True)
    assert "building" in capsys.readouterr().err
    files = list((tmp_path / "cache").iterdir())
    assert [f.name for f in files] == [og.CACHE_NAME]  # no temp file left behind
    mtime = files[0].stat().st_mtime_ns
    load_small(root, tmp_path / "cache", verbose=True)
    assert "building" not in capsys.readouterr().err
    assert files[0].stat().st_mtime_ns == mtime


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(tmp_path / "envcache"))
    d = load_small(make_fake_omniglot(tmp_path / "data"), None)
    assert Path(d.cache_path) == tmp_path / "envcache" / og.CACHE_NAME and Path(d.cache_path).is_file()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "edit_pixels", "pickled"])
def test_corrupt_cache_is_rebuilt(tmp_path, capsys, damage):
    root = make_fake_omniglot(tmp_path / "data")
    good = load_small(root, tmp_path / "cache")
    path = Path(good.cache_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 1000)
    else:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "edit_pixels":  # the stored checksum no longer matches
            arrays["images"] = arrays["images"].copy()
            arrays["images"][0, 0, 14, 14] ^= 255
        else:  # an object array needs pickle: must be refused, never unpickled
            arrays["alphabets"] = np.array(list(arrays["alphabets"]), dtype=object)
        np.savez(path, **arrays)
    again = load_small(root, tmp_path / "cache", verbose=True)
    assert "rebuilding the Omniglot cache" in capsys.readouterr().err
    assert np.array_equal(again.images, good.images)
    assert np.array_equal(again.alphabets, good.alphabets)
    with np.load(path, allow_pickle=False) as z:  # and the rebuilt cache is good again
        assert np.array_equal(z["images"], good.images)


def test_cache_from_other_source_is_rebuilt(tmp_path, capsys):
    cache = tmp_path / "cache"
    a = load_small(make_fake_omniglot(tmp_path / "a", seed=1), cache)
    b = load_small(make_fake_omniglot(tmp_path / "b", seed=2), cache, verbose=True)
    assert "different source" in capsys.readouterr().err
    assert not np.array_equal(a.images, b.images)
    # the source changing in place is noticed too
    make_fake_omniglot(tmp_path / "b", seed=3)
    c = load_small(tmp_path / "b", cache, verbose=True)
    assert "different source" in capsys.readouterr().err
    assert not np.array_equal(b.images, c.images)
    fresh = og._build_arrays(og._splits_in(tmp_path / "b"), SMALL)
    assert np.array_equal(c.images, fresh["images"])


def test_unwritable_cache_still_returns_data(tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    d = load_small(make_fake_omniglot(tmp_path / "data"), blocker, verbose=True)
    assert d.cache_path is None and d.images.shape == (5, 20, 28, 28)
    assert "could not write the Omniglot cache" in capsys.readouterr().err


def test_data_dir_from_environment_with_subfolder(tmp_path, monkeypatch):
    make_fake_omniglot(tmp_path / "root" / "omniglot")
    monkeypatch.setenv("TINYMETA_DATA", str(tmp_path / "root"))
    d = load_small(None, tmp_path / "cache")
    assert d.source == str(tmp_path / "root" / "omniglot")


# ---- errors ----------------------------------------------------------------------------------
def test_missing_data_lists_every_path(tmp_path, monkeypatch):
    where = tmp_path / "nothing_here"
    with pytest.raises(FileNotFoundError) as err:
        load_omniglot(where, tmp_path / "cache")
    msg = str(err.value)
    for expected in (str(where), str(where / "omniglot"), "images_background.zip",
                     "images_evaluation.zip", "https://github.com/brendenlake/omniglot",
                     "python/images_background.zip", "--data-dir", "TINYMETA_DATA"):
        assert expected in msg
    monkeypatch.delenv("TINYMETA_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="data/omniglot"):
        load_omniglot(None, tmp_path / "cache")
    monkeypatch.setenv("TINYMETA_DATA", str(tmp_path / "env_dir"))
    with pytest.raises(FileNotFoundError) as err:
        load_omniglot(None, tmp_path / "cache")
    assert str(tmp_path / "env_dir") in str(err.value) and "$TINYMETA_DATA" in str(err.value)


def test_only_one_split_present_is_reported(tmp_path):
    root = make_fake_omniglot(tmp_path / "data")
    (root / "images_evaluation.zip").unlink()
    with pytest.raises(FileNotFoundError, match="has only images_background"):
        load_small(root, tmp_path / "cache")


def test_missing_drawing_names_the_character(tmp_path):
    root = make_fake_omniglot(tmp_path / "data", drop="images_background/Alpha1/character02/0002_07.png")
    with pytest.raises(RuntimeError) as err:
        load_small(root, tmp_path / "cache")
    msg = str(err.value)
    assert "images_background.zip" in msg and "Alpha1/character02" in msg and "19 drawings" in msg
    assert not (tmp_path / "cache" / og.CACHE_NAME).exists()


def test_wrong_character_count_is_an_error(tmp_path):
    root = make_fake_omniglot(tmp_path / "data")
    with pytest.raises(RuntimeError, match=r"images_background.zip: found 3 characters, expected 964"):
        load_omniglot(root, tmp_path / "cache", verbose=False)  # the official counts


def test_corrupt_png_names_the_file(tmp_path):
    bad = "images_evaluation/Alpha0/character01/0004_05.png"
    root = make_fake_omniglot(tmp_path / "data", corrupt=bad)
    with pytest.raises(RuntimeError) as err:
        load_small(root, tmp_path / "cache")
    assert bad in str(err.value) and "images_evaluation.zip" in str(err.value)
    root2 = make_fake_omniglot(tmp_path / "data2", corrupt=bad, as_zip=False)
    with pytest.raises(RuntimeError, match="0004_05.png"):
        load_small(root2, tmp_path / "cache2")


def test_corrupt_zip_is_an_error(tmp_path):
    root = make_fake_omniglot(tmp_path / "data")
    (root / "images_background.zip").write_bytes(b"PK garbage")
    with pytest.raises(RuntimeError, match="images_background.zip is not a valid zip"):
        load_small(root, tmp_path / "cache")


# ---- download ----------------------------------------------------------------------------------
def test_download_unreachable_gives_clear_error(tmp_path):
    dest = tmp_path / "dl"
    with pytest.raises(RuntimeError) as err:
        download_omniglot(dest, base_url="http://127.0.0.1:9/", timeout=5, verbose=False)
    msg = str(err.value)
    assert "http://127.0.0.1:9/images_background.zip" in msg and "offline" in msg
    assert "https://github.com/brendenlake/omniglot" in msg
    assert list(dest.iterdir()) == []  # no partial file


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a synthetic data folder."""
    root = make_fake_omniglot(tmp_path / "served")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_from_local_server(tmp_path, local_server):
    root, url = local_server
    dest = tmp_path / "dl"
    with pytest.raises(RuntimeError, match="md5"):  # not the official files: refused
        download_omniglot(dest, base_url=url, verbose=False)
    assert list(dest.iterdir()) == []
    paths = download_omniglot(dest, base_url=url, verify=False, verbose=False)
    assert [p.name for p in paths] == ["images_background.zip", "images_evaluation.zip"]
    for p in paths:
        assert p.read_bytes() == (root / p.name).read_bytes()
    assert sorted(x.name for x in dest.iterdir()) == ["images_background.zip", "images_evaluation.zip"]
    # present files are kept without touching the network
    assert download_omniglot(dest, base_url="http://127.0.0.1:9/", verbose=False) == paths
