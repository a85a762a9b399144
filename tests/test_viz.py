"""Pictures (viz) and the data CLI subcommands (cli_data)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymeta.experiment import cli_data, viz
from tinymeta.data import load_omniglot
from tinymeta.tasks import MiniImageNet, Omniglot, Sinusoid

from conftest import OMNIGLOT_DIR as REAL_DIR




def check_png(path, min_w=200, min_h=100):
    path = Path(path)
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        assert im.width >= min_w and im.height >= min_h
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 10  # not a blank picture
    assert [p.name for p in path.parent.iterdir() if ".tmp" in p.name] == []  # no temp file left
    return pixels


def test_task_grid_omniglot(omniglot_cache, tmp_path):
    tasks = Omniglot(5, 1, 15, data=load_omniglot(REAL_DIR, omniglot_cache, verbose=False))
    batch = tasks.sample(3, np.random.default_rng(0))
    out = viz.save_task_grid(batch, tmp_path / "sub" / "grid.png", task=2)
    assert out == tmp_path / "sub" / "grid.png"
    check_png(out, min_w=600, min_h=250)
    small = viz.save_task_grid(batch, tmp_path / "small.png", max_query=3)
    with Image.open(small) as a, Image.open(out) as b:
        assert a.width < b.width  # fewer query columns
    with pytest.raises(ValueError, match="batch has 3 tasks"):
        viz.save_task_grid(batch, tmp_path / "x.png", task=3)


def test_task_grid_rgb(tmp_path):
    from tinymeta.data import load_miniimagenet

    root, rng = tmp_path / "mini", np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    for split, labels in (("train", "abc"), ("val", "d"), ("test", "e")):
        rows = ["filename,label"]
        for label in labels:
            for i in range(4):  # smooth colour ramps, so the picture is easy to check by eye
                ramp = np.linspace(0, 255, 84)[None, :, None] * rng.random(3)
                Image.fromarray(np.broadcast_to(ramp, (84, 84, 3)).astype(np.uint8)).save(
                    root / "images" / f"{label}{i}.jpg")
                rows.append(f"{label}{i}.jpg,{label}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    data = load_miniimagenet(root, tmp_path / "cache", verbose=False)
    batch = MiniImageNet(3, 2, 2, data=data).sample(1, np.random.default_rng(0))
    check_png(viz.save_task_grid(batch, tmp_path / "rgb.png"), min_w=400, min_h=200)


def test_sine_plots(tmp_path):
    sine = Sinusoid()
    check_png(viz.plot_sine_tasks(sine, tmp_path / "a.png", num_tasks=3), min_w=600, min_h=200)
    batch = sine.eval_set(num_tasks=8)
    check_png(viz.plot_sine_tasks(batch, tmp_path / "b.png", num_tasks=6), min_w=600, min_h=400)
    with pytest.raises(ValueError, match="plot_sine_tasks"):
        viz.save_task_grid(batch, tmp_path / "c.png")


def test_plot_sine_rejects_images(tmp_path):
    from tinymeta.tasks.base import MetaBatch
    import tinymeta as tm

    x = tm.tensor(np.zeros((1, 2, 1, 4, 4), np.float32))
    y = tm.tensor(np.zeros((1, 2), np.int64))
    with pytest.raises(ValueError, match="save_task_grid"):
        viz.plot_sine_tasks(MetaBatch(x, y, x, y), tmp_path / "d.png")


# ---- CLI ---------------------------------------------------------------------------------------
def parse(argv):
    parser = argparse.ArgumentParser(prog="tinymeta")
    cli_data.add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_show_task_sine(tmp_path, capsys):
    out = tmp_path / "sine.png"
    args = parse(["show-task", "--dataset", "sine", "--shots", "5", "--out", str(out)])
    assert args.func(args) == 0
    assert str(out) in capsys.readouterr().out
    check_png(out)


def test_cli_show_task_omniglot(omniglot_cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYMETA_CACHE", str(omniglot_cache))
    out = tmp_path / "task.png"
    args = parse(["show-task", "--dataset", "omniglot", "--ways", "4", "--shots", "2", "--queries", "3",
                  "--split", "test", "--seed", "3", "--data-dir", str(REAL_DIR), "--out", str(out)])
    assert args.func(args) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    check_png(out)


def test_cli_errors_are_exit_codes(tmp_path, capsys):
    args = parse(["show-task", "--dataset", "omniglot", "--data-dir", str(tmp_path / "none"),
                  "--out", str(tmp_path / "t.png")])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinymeta show-task: error: Omniglot data not found") and str(tmp_path / "none") in err
    assert not (tmp_path / "t.png").exists()
    args = parse(["download", "omniglot", "--dest", str(tmp_path / "dl"), "--base-url", "http://127.0.0.1:9/"])
    assert args.func(args) == 2
    assert "tinymeta download: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(["download", "miniimagenet"])


@pytest.mark.parametrize("ways,shots,queries", [(5, 1, 1), (20, 5, 15)])
def test_task_grid_title_and_column_headers_fit_and_do_not_overlap(ways, shots, queries, tmp_path, monkeypatch):
    """show-task's Omniglot picture: the title inside the figure, "support" and "query" headers apart."""
    import tinymeta as tm
    from tinymeta.tasks import MetaBatch

    figures = []
    monkeypatch.setattr(viz, "save_png", lambda fig, path: figures.append(fig) or Path(path))
    rng = np.random.default_rng(0)
    y_s, y_q = np.repeat(np.arange(ways), shots)[None], np.repeat(np.arange(ways), queries)[None]
    info = {"classes": rng.integers(0, 1600, (1, ways)), "rotations": rng.integers(0, 4, (1, ways))}
    batch = MetaBatch(tm.tensor(rng.random((1, ways * shots, 1, 28, 28))), tm.tensor(y_s),
                      tm.tensor(rng.random((1, ways * queries, 1, 28, 28))), tm.tensor(y_q), info)
    title = f"omniglot train, seed 0: {ways}-way {shots}-shot, {queries} queries per class"
    viz.save_task_grid(batch, tmp_path / "t.png", title=title)
    fig = figures[0]
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    title_box = fig._suptitle.get_window_extent(renderer)
    assert box.x0 <= title_box.x0 and title_box.x1 <= box.x1 and title_box.y1 <= box.y1  # not clipped
    support, query = [t.get_window_extent(renderer) for t in fig.axes[0].get_xticklabels()]
    assert not support.overlaps(query)
    assert support.y1 <= title_box.y0 and query.y1 <= title_box.y0
    assert box.x0 <= support.x0 and query.x1 <= box.x1
