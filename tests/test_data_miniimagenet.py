"""mini-ImageNet loader and tasks, on a tiny dataset generated in tmp_path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymeta.data import load_miniimagenet
from tinymeta.data import miniimagenet as mi
from tinymeta.tasks import MiniImageNet

CLASSES = {"train": ["n002", "n001", "n003", "n004"], "val": ["n101", "n102"], "test": ["n201", "n202", "n203"]}
PER_CLASS = 6


def make_fake_miniimagenet(root: Path, seed=0, odd_size="n001_0002.jpg") -> Path:
    """A few classes of random 84x84 JPEGs (one of another size) and the three csv files."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    for split, labels in CLASSES.items():
        rows = ["filename,label"]
        for label in labels:
            for i in range(PER_CLASS):
                name = f"{label}_{i:04d}.jpg"
                size = (100, 90) if name == odd_size else (84, 84)
                pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / "images" / name, quality=90)
                rows.append(f"{name},{label}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def fake(tmp_path):
    return make_fake_miniimagenet(tmp_path / "mini")


def test_load_counts_order_and_pixels(fake, tmp_path):
    d = load_miniimagenet(fake, tmp_path / "cache", verbose=False)
    assert d.images.shape == (9 * PER_CLASS, 3, 84, 84) and d.images.dtype == np.uint8
    assert list(d.labels) == ["n001", "n002", "n003", "n004", "n101", "n102", "n201", "n202", "n203"]
    assert list(d.class_splits) == ["train"] * 4 + ["val"] * 2 + ["test"] * 3
    assert (d.class_sizes == PER_CLASS).all() and d.class_offsets[-1] == len(d.images)
    assert np.array_equal(d.indices("val"), [4, 5])
    for i in (0, 1, 13, 53):  # index 1 is the 100x90 image, resized
        name = d.filenames[i]
        assert name.startswith(d.labels[np.searchsorted(d.class_offsets, i, side="right") - 1])
        with Image.open(fake / "images" / name) as im:
            im = im.convert("RGB")
            if im.size != (84, 84):
                im = im.resize((84, 84), resample=Image.LANCZOS)
            assert np.array_equal(d.images[i], np.asarray(im).transpose(2, 0, 1))
    assert Path(d.cache_path).is_file() and not Path(d.cache_path).is_relative_to(fake)


def test_cache_reused_corrupt_and_mismatched_rebuilt(fake, tmp_path, capsys):
    cache = tmp_path / "cache"
    first = load_miniimagenet(fake, cache, verbose=False)
    path = Path(first.cache_path)
    mtime = path.stat().st_mtime_ns
    load_miniimagenet(fake, cache, verbose=False)
    assert path.stat().st_mtime_ns == mtime
    path.write_bytes(path.read_bytes()[:5000])  # truncated
    again = load_miniimagenet(fake, cache, verbose=True)
    assert "rebuilding" in capsys.readouterr().err and np.array_equal(again.images, first.images)
    # a changed source: a listed image replaced by another of a different size
    Image.fromarray(np.zeros((84, 84, 3), np.uint8)).save(fake / "images" / "n203_0005.jpg")
    changed = load_miniimagenet(fake, cache, verbose=True)
    assert "different source" in capsys.readouterr().err
    assert changed.images[-1].max() <= 8 and first.images[-1].max() > 200  # (JPEG noise aside)


def test_missing_folder_lists_paths(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        load_miniimagenet(tmp_path / "nope", tmp_path / "cache")
    msg = str(err.value)
    for s in (str(tmp_path / "nope"), str(tmp_path / "nope" / "miniimagenet"), "images/", "train.csv",
              "test.csv", "filename,label", "meta-learning-lstm"):
        assert s in msg
    monkeypatch.delenv("TINYMETA_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="data/miniimagenet"):
        load_miniimagenet(None, tmp_path / "cache")


def test_missing_csv_and_missing_image(fake, tmp_path):
    (fake / "val.csv").rename(fake / "val.csv.bak")
    with pytest.raises(FileNotFoundError, match="missing val.csv"):
        load_miniimagenet(fake, tmp_path / "cache")
    (fake / "val.csv.bak").rename(fake / "val.csv")
    (fake / "images" / "n102_0003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="n102_0003.jpg"):
        load_miniimagenet(fake, tmp_path / "cache")


def test_corrupt_image_and_bad_csv(fake, tmp_path):
    (fake / "images" / "n003_0001.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(RuntimeError, match="n003_0001.jpg"):
        load_miniimagenet(fake, tmp_path / "cache", verbose=False)
    assert not (tmp_path / "cache" / mi.CACHE_NAME).exists()
    (fake / "test.csv").write_text("file,class\nn201_0000.jpg,n201\n")
    with pytest.raises(ValueError, match="test.csv.*filename,label"):
        load_miniimagenet(fake, tmp_path / "cache", verbose=False)
    (fake / "test.csv").write_text("filename,label\nn201_0000.jpg,n001\n")
    with pytest.raises(ValueError, match="'n001' is listed in both train.csv and test.csv"):
        load_miniimagenet(fake, tmp_path / "cache", verbose=False)


def test_tasks(fake, tmp_path):
    d = load_miniimagenet(fake, tmp_path / "cache", verbose=False)
    tasks = MiniImageNet(3, 2, 3, data=d)
    b = tasks.sample(4, np.random.default_rng(0))
    assert b.x_support.shape == (4, 6, 3, 84, 84) and b.x_query.shape == (4, 9, 3, 84, 84)
    assert b.x_support.dtype == np.float32 and b.y_query.dtype == np.int64
    assert 0.0 <= b.x_query.numpy().min() and b.x_query.numpy().max() <= 1.0
    assert (b.info["rotations"] == 0).all()
    xs, ys = b.x_support.numpy(), b.y_support.numpy()
    for t in range(4):
        assert np.array_equal(np.bincount(ys[t]), [2, 2, 2])
        assert np.array_equal(np.bincount(b.y_query.numpy()[t]), [3, 3, 3])
        assert set(b.info["classes"][t]) <= {0, 1, 2, 3}  # train classes only
        for j, img_idx in enumerate(b.info["support_images"][t]):
            c = b.info["classes"][t, ys[t, j]]
            assert d.class_offsets[c] <= img_idx < d.class_offsets[c + 1]
            assert np.array_equal(xs[t, j], d.images[img_idx] / np.float32(255))
        for label in range(3):
            s = set(b.info["support_images"][t][ys[t] == label])
            q = set(b.info["query_images"][t][b.y_query.numpy()[t] == label])
            assert not s & q
    again = tasks.sample(4, np.random.default_rng(0))
    assert np.array_equal(again.x_query.numpy(), b.x_query.numpy())
    assert set(np.unique(tasks.sample(10, np.random.default_rng(1), split="test").info["classes"])) <= {6, 7, 8}
    with pytest.raises(ValueError, match="'val' split has only 2 classes"):
        tasks.sample(1, np.random.default_rng(0), split="val")
    with pytest.raises(ValueError, match="only 6 images"):
        tasks.sample(1, np.random.default_rng(0), k_support=4, k_query=3)


def test_unequal_class_sizes(fake, tmp_path):
    """A class with fewer images: draws stay inside it, and the limit follows the smallest class."""
    lines = (fake / "train.csv").read_text().splitlines()
    (fake / "train.csv").write_text("\n".join(l for l in lines if not l.startswith("n001_000")
                                              or l.startswith("n001_0000") or l.startswith("n001_0001")) + "\n")
    d = load_miniimagenet(fake, tmp_path / "cache", verbose=False)
    assert list(d.class_sizes[:4]) == [2, 6, 6, 6]
    tasks = MiniImageNet(4, 1, 1, data=d)
    b = tasks.sample(50, np.random.default_rng(0))
    for name, y in (("support_images", b.y_support.numpy()), ("query_images", b.y_query.numpy())):
        c = np.take_along_axis(b.info["classes"], y, 1)
        idx = b.info[name]
        assert ((d.class_offsets[c] <= idx) & (idx < d.class_offsets[c + 1])).all()
    with pytest.raises(ValueError, match="only 2 images"):
        tasks.sample(1, np.random.default_rng(0), k_support=2, k_query=1)
