"""Bad and hostile files given to the commands a user types (issue 30, items 3-6, 9 and 10; issue 25, item 5).

Each test builds the damaged, forged or hostile file in tmp_path, runs ``python -m tinymeta ...`` in a
subprocess, and checks the exit status, the one ``error:`` line naming the file, and that no file was
changed. Memory bombs run under ``resource.setrlimit(RLIMIT_AS)``: reading the bomb whole would fail
there, so passing shows the size was checked before reading, without timing anything.
"""
from __future__ import annotations

import io
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from tinymeta.data import load_omniglot
from tinymeta.data.cache import array_checksum
from tinymeta.experiment import checkpoint as ckpt_mod

MEMORY_LIMIT = 768 << 20   # address space for a command reading a bomb that inflates or declares more
TINY = ["--preset", "maml-sine-5shot", "--iterations", "20", "--log-interval", "10", "--val-interval", "10",
        "--val-tasks", "5", "--test-tasks", "10", "--eval-inner-steps", "2", "--no-progress"]


# ---- running the command line ------------------------------------------------------------------
def tinymeta_process(*argv, cwd: Path, memory: int | None = None, timeout: float = 300):
    """(exit status, stdout, stderr) of ``python -m tinymeta ARGV`` in a process of its own, run in ``cwd``
    with its own cache folder; ``memory``: its address space in bytes (``RLIMIT_AS``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TINYMETA_DATA", "TINYMETA_DEBUG")}
    env.update(OPENBLAS_NUM_THREADS="1", TINYMETA_CACHE=str(cwd / "cache"))

    def bound_memory():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    r = subprocess.run([sys.executable, "-m", "tinymeta", *map(str, argv)], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout, preexec_fn=bound_memory if memory else None)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def tinymeta(tmp_path, monkeypatch, capsys):
    """Run the command line as a user types it: ``tinymeta(*argv, memory=..., process=...)``.

    In a process of its own when ``process`` or ``memory`` is given (one test per kind of bad file
    does so, and every memory bomb); else ``tinymeta.experiment.cli.main`` in this process, with the
    same environment, which is the same code without the interpreter's start-up.
    """
    def run(*argv, cwd=tmp_path, memory=None, process=False):
        if process or memory:
            return tinymeta_process(*argv, cwd=cwd, memory=memory)
        monkeypatch.chdir(cwd)
        monkeypatch.delenv("TINYMETA_DATA", raising=False)
        monkeypatch.delenv("TINYMETA_DEBUG", raising=False)
        monkeypatch.setenv("TINYMETA_CACHE", str(cwd / "cache"))
        capsys.readouterr()
        return run_cli(argv, capsys)
    return run


def error_line(err: str, command: str) -> str:
    """The one error line of ``err`` (no traceback, nothing else on stderr)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"tinymeta {command}: error: "), err
    return lines[0]


def snapshot(folder: Path) -> dict:
    """Every file below ``folder``: its bytes (a link: where it points)."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(folder))] = ("link", os.readlink(p)) if p.is_symlink() else p.read_bytes()
    return out


# ---- a real run to damage ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """A finished tiny sine run (20 iterations), made once by the command line."""
    where = tmp_path_factory.mktemp("made")
    code, _, err = tinymeta_process("train", *TINY, "--logdir", where / "run", cwd=where)
    assert code == 0, err
    return where / "run"


@pytest.fixture
def run(made_run, tmp_path):
    """A copy of the finished run, to damage: tmp_path/runs/bad (beside an intact tmp_path/runs/good)."""
    shutil.copytree(made_run, tmp_path / "runs" / "good")
    shutil.copytree(made_run, tmp_path / "runs" / "bad")
    return tmp_path / "runs" / "bad"


# ---- forging checkpoints -----------------------------------------------------------------------
def entries_of(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_checkpoint(path: Path, entries: dict, meta: dict, replace: dict | None = None) -> None:
    """Write a checkpoint with a matching checksum: the file is as a forger would make it.

    ``replace``: placeholder strings in the meta JSON replaced by raw text (what json.dumps cannot write).
    """
    text = json.dumps(meta)
    for old, new in (replace or {}).items():
        text = text.replace(json.dumps(old), new)
    entries = dict(entries, meta=np.frombuffer(text.encode(), dtype=np.uint8))
    entries["checksum"] = np.frombuffer(ckpt_mod._checksum(entries).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def _set_extra(key, value):
    def forge(entries, meta):
        meta["extra"][key] = value
    return forge


def _drop_extra(key):
    def forge(entries, meta):
        del meta["extra"][key]
    return forge


def _param_shape(entries, meta):
    entries["param/b1"] = entries["param/b1"][:1]  # (1,) where the model has (40,): it would broadcast


def _missing_param(entries, meta):
    del entries["param/b3"]
    meta["params"].remove("b3")
    del meta["requires_grad"]["b3"]


def _extra_param(entries, meta):
    entries["param/w4"] = np.ones((1, 1), np.float32)
    meta["params"].append("w4")
    meta["requires_grad"]["w4"] = True


def _renamed_param(entries, meta):
    entries["param/bias1"] = entries.pop("param/b1")
    meta["params"][meta["params"].index("b1")] = "bias1"
    meta["requires_grad"]["bias1"] = meta["requires_grad"].pop("b1")


def _rng_state(entries, meta):
    meta["rng_state"]["state"] = "not a state"


def _optimizer_state(entries, meta):
    key = next(k for k in entries if k.startswith("optim/") and k.endswith("/b1"))
    entries[key] = entries[key][:3]


def _nested(entries, meta):
    meta["extra"]["notes"] = "DEEP"


def _shots(entries, meta):
    meta["config"]["shots"] = 10 ** 8


FORGERIES = {  # name: (forge, raw replacements in the meta text, what the error line names)
    "parameter-shape": (_param_shape, None, "'b1'"),
    "missing-parameter": (_missing_param, None, "b3"),
    "extra-parameter": (_extra_param, None, "w4"),
    "renamed-parameter": (_renamed_param, None, "bias1"),
    "iteration-negative": (_set_extra("iteration", -7), None, "iteration"),
    "iteration-not-integer": (_set_extra("iteration", 3.7), None, "iteration"),
    "iteration-beyond-config": (_set_extra("iteration", 10 ** 9), None, "iteration"),
    "iteration-string": (_set_extra("iteration", "5"), None, "iteration"),
    "iteration-missing": (_drop_extra("iteration"), None, "iteration"),
    "elapsed-missing": (_drop_extra("elapsed"), None, "training time"),
    "rng-state": (_rng_state, None, "random-generator state"),
    "optimizer-state": (_optimizer_state, None, "optimizer state"),
    "nested-metadata": (_nested, {"DEEP": "[" * 100_000 + "]" * 100_000}, "nested too deeply"),
    "10000-digit-integer": (_set_extra("iteration", "BIG"), {"BIG": "9" * 10_000}, "meta"),
    "shots-1e8": (_shots, None, "shots"),   # issue 30, item 5: config numbers have upper bounds
}


def forge(run: Path, name: str) -> str:
    """Forge ``run``'s checkpoint as FORGERIES[name] says; return what its error must name."""
    fn, replace, names = FORGERIES[name]
    path = run / "checkpoint.npz"
    entries = entries_of(path)
    meta = json.loads(entries["meta"].tobytes())
    fn(entries, meta)
    write_checkpoint(path, entries, meta, replace)
    return names


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_forged_checkpoint_is_refused_by_evaluate_before_evaluating(run, tmp_path, name, tinymeta):
    names = forge(run, name)
    before = snapshot(tmp_path / "runs")
    code, out, err = tinymeta("evaluate", "--logdir", run, "--out", tmp_path / "ev.json",
                              process=name == "parameter-shape", memory=MEMORY_LIMIT if name == "shots-1e8" else None)
    line = error_line(err, "evaluate")
    assert code == 2 and "checkpoint.npz" in line and names in line, line
    assert "test tasks" not in out and not (tmp_path / "ev.json").exists()  # refused before evaluating
    assert snapshot(tmp_path / "runs") == before


@pytest.mark.parametrize("name", ["parameter-shape", "iteration-negative", "iteration-not-integer",
                                  "iteration-beyond-config", "rng-state", "optimizer-state", "shots-1e8"])
def test_a_forged_checkpoint_is_refused_by_resume_and_the_log_is_kept(run, tmp_path, name, tinymeta):
    names = forge(run, name)
    before = snapshot(tmp_path / "runs")
    code, _, err = tinymeta("train", "--resume", "--logdir", run, "--no-progress", process=name == "iteration-negative",
                            memory=MEMORY_LIMIT if name == "shots-1e8" else None)
    line = error_line(err, "train")
    assert code == 2 and "checkpoint.npz" in line and names in line, line
    assert snapshot(tmp_path / "runs") == before  # the log is not truncated, nothing else written


@pytest.mark.parametrize("kind", ["link-to-dev-zero", "named-pipe"])
def test_a_checkpoint_that_is_a_device_or_a_pipe_is_refused_at_once(run, tmp_path, kind):
    """Neither read without end nor waited on (a pipe with no writer would block its reader for ever)."""
    if not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"):
        pytest.skip("no named pipes or /dev/zero here")
    (run / "checkpoint.npz").unlink()
    if kind == "named-pipe":
        os.mkfifo(run / "checkpoint.npz")
    else:
        os.symlink("/dev/zero", run / "checkpoint.npz")
    code, out, err = tinymeta_process("evaluate", "--logdir", run, cwd=tmp_path, memory=MEMORY_LIMIT, timeout=60)
    line = error_line(err, "evaluate")
    assert code == 2 and "checkpoint.npz" in line and "not a regular file" in line, line


# ---- zip files written by hand: bombs and damaged streams --------------------------------------
def write_zip(path: Path, members) -> None:
    """A zip of (name, method, data, crc, declared size) members, exactly as given (0 stored, 8 deflated)."""
    out, central = bytearray(), bytearray()
    for name, method, data, crc, size in members:
        n = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0)
        out += n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(n), 0, 0, 0, 0, 0, offset) + n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out) + bytes(central) + end)


def stored(name: str, data: bytes):
    return name, 0, data, zlib.crc32(data), len(data)


def zeros_bomb(name: str, prefix: bytes, total: int):
    """A deflated member: ``prefix`` then zeros up to ``total`` bytes, a few MB compressed (made in
    milliseconds: the same full-flushed block of a MiB of zeros repeated)."""
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    n = (total - len(prefix)) >> 20
    return name, 8, head + block * n + c.flush(), 0, len(prefix) + (n << 20)  # CRC never reached unless inflated


def npy_header(shape, dtype) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("bomb", ["compressed-3GiB-entry", "declared-3.6TiB-entry"])
def test_a_checkpoint_bomb_is_refused_within_bounded_memory(run, tmp_path, bomb, tinymeta):
    entries = entries_of(run / "checkpoint.npz")
    if bomb == "compressed-3GiB-entry":  # 3 MB on disk, 3 GiB inflated
        first = zeros_bomb("param/w1.npy", npy_header((3 << 30,), np.uint8), 3 << 30)
    else:  # stored, but its header declares 2**39 float64 (4 TiB) for 8 bytes of data
        first = stored("param/w1.npy", npy_header((1 << 39,), np.float64) + bytes(8))
    write_zip(run / "checkpoint.npz", [first] + [stored(f"{k}.npy", npy(v)) for k, v in entries.items()
                                                 if k != "param/w1"])
    before = snapshot(tmp_path / "runs")
    code, _, err = tinymeta("evaluate", "--logdir", run, memory=MEMORY_LIMIT)
    line = error_line(err, "evaluate")
    assert code == 2 and "checkpoint.npz" in line and "param/w1.npy" in line, line
    assert snapshot(tmp_path / "runs") == before


# ---- Omniglot zips -----------------------------------------------------------------------------
def png_bytes(width=105, height=105) -> bytes:
    """A 1-bit PNG written by hand (any size without holding its pixels: rows of zeros, compressed)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = bytes(1 + (width + 7) // 8)  # filter byte, then the packed bits
    c = zlib.compressobj(9)
    idat = b"".join(c.compress(row) for _ in range(height)) + c.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def omniglot_zips(root: Path, first=None, counts=(964, 659)) -> Path:
    """Omniglot's two zips with the official layout (964 and 659 characters x 20 drawings), one tiny PNG
    for every drawing; ``first(name)`` makes the first member read (else a good PNG)."""
    root.mkdir(parents=True, exist_ok=True)
    png = png_bytes()
    for split, n in zip(("images_background", "images_evaluation"), counts):
        names = [f"{split}/Alpha/character{c:04d}/{c:04d}_{d:02d}.png" for c in range(n) for d in range(20)]
        members = [stored(name, png) for name in names]
        if first is not None and split == "images_background":
            members[0] = first(names[0])
        write_zip(root / f"{split}.zip", members)
    return root


OMNIGLOT_TRAIN = ["train", "--preset", "maml-omniglot-5w1s", "--iterations", "1", "--no-progress"]


def omniglot_fails(tinymeta, tmp_path, data, *, memory=None, process=False, command=OMNIGLOT_TRAIN):
    """Run an Omniglot command on ``data``; its error line (the data folder must be unchanged)."""
    before = snapshot(data)
    code, _, err = tinymeta(*command, "--data-dir", data, *(["--logdir", tmp_path / "run"] if command[0] == "train"
                                                            else ["--out", tmp_path / "task.png"]),
                            memory=memory, process=process)
    assert snapshot(data) == before
    assert not (tmp_path / "task.png").exists()
    if command[0] == "train":
        line = error_line(err, "train")
        assert code == 2, err
        return line
    assert code != 0 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"tinymeta {command[0]}: error: "), err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("bomb", ["member-inflating-to-1GiB", "13000x13000-png"])
def test_an_omniglot_bomb_is_refused_within_bounded_memory(tmp_path, bomb, tinymeta):
    if bomb == "member-inflating-to-1GiB":
        data = omniglot_zips(tmp_path / "data", first=lambda name: zeros_bomb(name, b"", 1 << 30))
        expected = "declares"
    else:  # 169 million pixels: 161 MiB once decoded, 20 KB as a file
        data = omniglot_zips(tmp_path / "data", first=lambda name: stored(name, png_bytes(13000, 13000)))
        expected = "13000"
    line = omniglot_fails(tinymeta, tmp_path, data, memory=MEMORY_LIMIT)
    assert "images_background.zip" in line and "character0000/0000_00.png" in line and expected in line, line


def test_a_link_to_dev_zero_as_an_omniglot_image_is_refused(tmp_path, tinymeta):
    """The unpacked folders, every drawing a link to one PNG, and the first a link to /dev/zero."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    data = tmp_path / "data"
    png = tmp_path / "one.png"
    png.write_bytes(png_bytes())
    for split, n in (("images_background", 964), ("images_evaluation", 659)):
        for c in range(n):
            folder = data / split / "Alpha" / f"character{c:04d}"
            folder.mkdir(parents=True)
            for d in range(20):
                os.symlink("/dev/zero" if (split, c, d) == ("images_background", 0, 0) else png,
                           folder / f"{c:04d}_{d:02d}.png")
    line = omniglot_fails(tinymeta, tmp_path, data, memory=MEMORY_LIMIT)
    assert "0000_00.png" in line and "not a regular file" in line, line


def damaged_stream(name):
    return name, 8, b"\xff" * 64, 0, 400  # deflate block type 3 does not exist: zlib.error


@pytest.mark.parametrize("damage", ["truncated-zip", "not-a-zip", "corrupt-png", "damaged-deflate-stream",
                                    "dot-dot-member"])
def test_a_damaged_omniglot_zip_is_one_error_line(tmp_path, damage, tinymeta):
    data = tmp_path / "data"
    if damage in ("truncated-zip", "not-a-zip", "dot-dot-member"):  # found while listing: a small layout will do
        omniglot_zips(data, counts=(2, 2))
        zip_path = data / "images_background.zip"
        if damage == "truncated-zip":
            zip_path.write_bytes(zip_path.read_bytes()[:1000])
        elif damage == "not-a-zip":
            zip_path.write_bytes(b"<html>404 not found</html>")
        else:
            write_zip(zip_path, [stored("images_background/../character01/0001_01.png", png_bytes())])
    elif damage == "corrupt-png":
        omniglot_zips(data, first=lambda name: stored(name, b"\x89PNG\r\n\x1a\nnot really a png"))
    else:
        omniglot_zips(data, first=damaged_stream)
    line = omniglot_fails(tinymeta, tmp_path, data, process=damage == "truncated-zip")
    assert "images_background.zip" in line, line
    if damage == "dot-dot-member":
        assert "../character01" in line
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())  # nothing cached


def test_show_task_reports_a_damaged_deflate_stream(tmp_path, tinymeta):
    data = omniglot_zips(tmp_path / "data", first=damaged_stream)
    line = omniglot_fails(tinymeta, tmp_path, data, process=True, command=["show-task", "--dataset", "omniglot"])
    assert "images_background.zip" in line and "character0000/0000_00.png" in line, line


def test_an_omniglot_cache_of_another_layout_is_rebuilt(tmp_path, capsys):
    """A cache with a matching checksum and fingerprint but other arrays is not trained on (issue 30, item 3)."""
    counts = {"images_background": 2, "images_evaluation": 2}
    data = omniglot_zips(tmp_path / "data", counts=(2, 2))
    good = load_omniglot(data, tmp_path / "cache", expected_characters=counts, verbose=False)
    path = Path(good.cache_path)
    for forged in ("drawings", "size", "dtype"):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "checksum"}
        arrays["images"] = {"drawings": arrays["images"][:, :19], "size": arrays["images"][:, :, :14, :14],
                            "dtype": arrays["images"].astype(np.float32)}[forged]
        with open(path, "wb") as f:
            np.savez(f, **arrays, checksum=np.array(array_checksum(arrays)))
        again = load_omniglot(data, tmp_path / "cache", expected_characters=counts, verbose=True)
        err = capsys.readouterr().err
        assert f"cache {path} does not hold Omniglot's layout" in err and "'images'" in err, err
        assert again.images.shape == (4, 20, 28, 28) and again.images.dtype == np.uint8
        assert np.array_equal(again.images, good.images)


# ---- mini-ImageNet -----------------------------------------------------------------------------
def miniimagenet(root: Path, rows=None, image=None) -> Path:
    """Three splits of two classes of two 84x84 images; ``rows`` replaces train.csv's first image row,
    ``image`` the bytes of the first image."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for s, split in enumerate(("train", "val", "test")):
        lines = ["filename,label"]
        for c in range(2):
            for i in range(2):
                name = f"n{s}{c}_{i}.png"
                Image.fromarray(rng.integers(0, 256, (84, 84, 3), dtype=np.uint8)).save(root / "images" / name)
                lines.append(f"{name},n{s}{c}")
        if split == "train" and rows is not None:
            lines[1] = rows
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    if image is not None:
        (root / "images" / "n00_0.png").write_bytes(image)
    return root


SHOW_MINI = ["show-task", "--dataset", "miniimagenet", "--ways", "2", "--shots", "1", "--queries", "1"]


@pytest.mark.parametrize("row", ["../outside.png,n00", "/etc/hostname,n00", "images/../../outside.png,n00"])
def test_a_miniimagenet_csv_path_out_of_the_dataset_is_refused(tmp_path, row, tinymeta):
    (tmp_path / "outside.png").write_bytes(png_bytes(84, 84))
    data = miniimagenet(tmp_path / "data", rows=row)
    code, _, err = tinymeta("train", "--preset", "maml-miniimagenet-5w1s", "--data-dir", data, "--logdir",
                            tmp_path / "run", "--no-progress", process=row.startswith("../"))
    line = error_line(err, "train")
    assert code == 2 and "train.csv, line 2" in line and row.split(",")[0] in line, line
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())  # nothing read or cached


def test_a_miniimagenet_image_over_pillows_limit_is_one_error_line(tmp_path, tinymeta):
    data = miniimagenet(tmp_path / "data", image=png_bytes(20000, 20000))  # 400 Mpx: Pillow's bomb error
    code, _, err = tinymeta("train", "--preset", "maml-miniimagenet-5w1s", "--data-dir", data, "--logdir",
                            tmp_path / "run", "--no-progress", memory=MEMORY_LIMIT)
    line = error_line(err, "train")
    assert code == 2 and "n00_0.png" in line, line


def test_a_miniimagenet_cache_of_another_layout_is_rebuilt(tmp_path, tinymeta):
    data = miniimagenet(tmp_path / "data")
    code, _, err = tinymeta(*SHOW_MINI, "--data-dir", data, "--out", tmp_path / "a.png")
    assert code == 0, err
    (path,) = (tmp_path / "cache").iterdir()
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "checksum"}
    arrays["images"] = arrays["images"][:, :, :42, :42]  # another image size, checksum made to match
    with open(path, "wb") as f:
        np.savez(f, **arrays, checksum=np.array(array_checksum(arrays)))
    code, _, err = tinymeta(*SHOW_MINI, "--data-dir", data, "--out", tmp_path / "b.png", process=True)
    assert code == 0 and f"cache {path} does not hold the layout" in err, err
    with np.load(path, allow_pickle=False) as z:
        assert z["images"].shape == (12, 3, 84, 84)


# ---- run folders: runs, plot, report -----------------------------------------------------------
def _edit_json(name, edit):
    def damage(run):
        obj = json.loads((run / name).read_text()) if (run / name).exists() else {}
        (run / name).write_text(json.dumps(edit(obj)))
    return damage


def _write(name, text):
    def damage(run):
        (run / name).write_text(text)
    return damage


def _edit_log(edit):
    def damage(run):
        rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in edit(rows)))
    return damage


def _val_row(key, value):
    def edit(rows):
        next(r for r in rows if r["split"] == "val")[key] = value
        return rows
    return edit


def _drop_time(rows):
    del rows[0]["time"]
    return rows


def _string_iteration(rows):
    rows[0]["iteration"] = "10"
    return rows


RUN_DAMAGE = {  # name: (damage, the file the error names, what else it says)
    "unknown-dataset": (_edit_json("config.json", lambda c: {**c, "dataset": "mnist"}), "config.json", "mnist"),
    "ways-as-text": (_edit_json("config.json", lambda c: {**c, "ways": "5"}), "config.json", "ways"),
    "config-not-json": (_write("config.json", "{\"algorithm\": "), "config.json", "not valid JSON"),
    "config-a-list": (_write("config.json", "[]"), "config.json", "list"),
    "status-empty-object": (_write("status.json", "{}"), "status.json", "status"),
    "status-a-list": (_write("status.json", "[1, 2]"), "status.json", "list"),
    "status-not-json": (_write("status.json", "{\"status\": fin"), "status.json", "not valid JSON"),
    "status-10000-digits": (_write("status.json", '{"status": "stopped", "iteration": ' + "9" * 10_000 + "}"),
                            "status.json", "not valid JSON"),
    "log-row-without-time": (_edit_log(_drop_time), "log.jsonl", "line 1"),
    "log-string-iteration": (_edit_log(_string_iteration), "log.jsonl", "line 1"),
    "log-accuracy-not-a-list": (_edit_log(_val_row("loss", 0.5)), "log.jsonl", "loss"),
    "log-empty-loss": (_edit_log(_val_row("loss", [])), "log.jsonl", "loss"),
    "test-json-a-list": (_write("test.json", "[]"), "test.json", "list"),
    "test-json-empty-loss": (_edit_json("test.json", lambda t: {**t, "loss": []}), "test.json", "loss"),
}


@pytest.mark.parametrize("name", list(RUN_DAMAGE))
def test_runs_lists_the_other_runs_and_marks_the_damaged_one(run, tmp_path, name, tinymeta):
    """Issue 25, item 5, and issue 30, items 6 and 10: as ``ls`` does, exit 1 with the damage named."""
    damage, file, says = RUN_DAMAGE[name]
    damage(run)
    before = snapshot(tmp_path / "runs")
    code, out, err = tinymeta("runs", tmp_path / "runs", process=name == "unknown-dataset")
    assert code == 1 and "Traceback" not in err, err
    good = next(line for line in out.splitlines() if line.startswith("good "))
    bad = next(line for line in out.splitlines() if line.startswith("bad "))
    assert "finished" in good and "20/20" in good, out
    assert f"unreadable ({file})" in bad, out
    line = error_line(err, "runs")
    assert str(run / file) in line and says in line, line
    assert snapshot(tmp_path / "runs") == before


@pytest.mark.parametrize("name", [n for n in RUN_DAMAGE if RUN_DAMAGE[n][1] == "log.jsonl"])
def test_plot_names_the_damaged_log_line(run, tmp_path, name, tinymeta):
    damage, file, says = RUN_DAMAGE[name]
    damage(run)
    code, _, err = tinymeta("plot", run, "--out", tmp_path / "curves.png", process=name == "log-row-without-time")
    line = error_line(err, "plot")
    assert code == 2 and str(run / file) in line and says in line, line
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize("name", [n for n in RUN_DAMAGE if RUN_DAMAGE[n][1] != "status.json"])
def test_report_names_the_damaged_file_and_writes_nothing(run, tmp_path, name, tinymeta):
    damage, file, says = RUN_DAMAGE[name]
    root = tmp_path / "root"
    target = root / "results" / "runs" / "maml-sine-5shot"
    shutil.copytree(run, target)
    damage(target)
    before = snapshot(root)
    code, _, err = tinymeta("report", "--root", root, process=name == "unknown-dataset")
    line = error_line(err, "report")
    assert code == 2 and str(target / file) in line and says in line, line
    assert snapshot(root) == before  # no RESULTS.md, no figure


def test_runs_escapes_terminal_codes_from_the_files(run, tmp_path, tinymeta):
    """Issue 30, item 10: an escape sequence in config.json (or a folder name) reaches no terminal."""
    _edit_json("config.json", lambda c: {**c, "algorithm": "\x1b]0;owned\x07\x1b[2J"})(run)
    odd = tmp_path / "runs" / "name\x1b[31mred"
    shutil.copytree(tmp_path / "runs" / "good", odd)
    code, out, err = tinymeta("runs", tmp_path / "runs", process=True)
    assert code == 1 and "\x1b" not in out + err and "\x07" not in out + err, (out, err)
    assert "name\\x1b[31mred" in out and "\\x1b]0;owned" in err, (out, err)


def test_a_link_to_dev_zero_as_test_json_is_refused_within_bounded_memory(run, tmp_path, tinymeta):
    """Issue 30, item 4: not read without end, and the error says which file and why (not an empty MemoryError)."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    (run / "test.json").unlink()
    os.symlink("/dev/zero", run / "test.json")
    code, out, err = tinymeta("runs", tmp_path / "runs", memory=MEMORY_LIMIT)
    line = error_line(err, "runs")
    assert code == 1 and str(run / "test.json") in line and "not a regular file" in line, line
    assert any(r.startswith("good ") and "finished" in r for r in out.splitlines()), out
