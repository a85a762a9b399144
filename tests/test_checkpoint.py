"""tinymeta.experiment.checkpoint: exact round trips, resuming, integrity checks, safety, atomic writes."""
import os

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.experiment import checkpoint as ckpt
from tinymeta.experiment.checkpoint import (Checkpoint, CheckpointError, config_diff, load_checkpoint,
                                 restore_rng, save_checkpoint)
from tinymeta.optim import SGD, Adam


def make_params(device="cpu", seed=0):
    rng = np.random.default_rng(seed)
    return {"layer1.w": tm.tensor(rng.standard_normal((5, 3)).astype(np.float32), device=device,
                                  requires_grad=True),
            "layer1.b": tm.tensor(np.zeros(3, dtype=np.float32), device=device, requires_grad=True),
            "head/scale": tm.tensor(np.float64(1.5), device=device, requires_grad=True)}


def saved_file(tmp_path, **kwargs):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, make_params(), **kwargs)
    return path


def raw_entries(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def rewrite(path, entries, fix_checksum=True):
    """Write entries back as an .npz (valid zip CRCs), optionally with a matching checksum."""
    if fix_checksum:
        entries = dict(entries)
        entries["checksum"] = np.frombuffer(ckpt._checksum(entries).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **entries)


# ---- round trips ------------------------------------------------------------------------------
def test_params_round_trip_on_device(tmp_path, device):
    params = make_params()
    path = save_checkpoint(tmp_path / "p.npz", params)
    ck = load_checkpoint(path, device=device)
    assert isinstance(ck, Checkpoint) and ck.path == str(tmp_path / "p.npz")
    assert list(ck.params) == list(params)  # order kept, odd names ('.', '/') fine
    for name, p in params.items():
        q = ck.params[name]
        assert q.device == device and q.dtype == p.dtype and q.shape == p.shape
        assert q.requires_grad and q.is_leaf
        np.testing.assert_array_equal(q.numpy(), p.numpy())
    assert ck.optimizer_state is None and ck.rng_state is None and ck.rng() is None
    assert ck.config == {} and ck.extra == {} and ck.format_version == ckpt.FORMAT_VERSION


def test_requires_grad_flag_is_kept(tmp_path):
    params = {"w": tm.tensor(np.ones(2), requires_grad=True), "frozen": tm.tensor(np.ones(2))}
    ck = load_checkpoint(save_checkpoint(tmp_path / "p.npz", params))
    assert ck.params["w"].requires_grad and not ck.params["frozen"].requires_grad


def test_saved_exactly_at_path_without_npz_suffix(tmp_path):
    path = tmp_path / "model.ckpt"
    assert save_checkpoint(path, make_params()) == str(path)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt"]
    np.testing.assert_array_equal(load_checkpoint(path).params["layer1.w"].numpy(),
                                  make_params()["layer1.w"].numpy())


CONFIG = {"algo": "maml", "inner_lr": 0.4, "betas": (0.0, 0.999), "hidden": [64, 64],
          "first_order": False, "seed": 2 ** 70 + 1, "note": None, "name": "réseau ω",
          "model": {"depth": 4, "act": "relu", "sizes": (1, (2, 3))},
          "weird": [float("inf"), -float("inf")], "scale": np.float32(0.1),
          "mask": np.array([[1, 0], [0, 1]], dtype=np.uint8)}


def test_config_and_extra_round_trip_exactly(tmp_path):
    extra = {"epoch": 7, "history": [0.5, 0.25, 1 / 3], "best": float("nan"),
             "big": np.arange(3, dtype=np.int64)}
    ck = load_checkpoint(saved_file(tmp_path, config=CONFIG, extra=extra))
    assert config_diff(ck.config, CONFIG) == [] and config_diff(ck.extra, extra) == []
    assert ck.config["betas"] == (0.0, 0.999) and type(ck.config["model"]["sizes"][1]) is tuple
    assert ck.config["seed"] == 2 ** 70 + 1 and ck.config["name"] == "réseau ω"
    assert ck.config["scale"] == float(np.float32(0.1))  # a NumPy scalar comes back as a Python float
    assert ck.config["mask"].dtype == np.uint8 and ck.config["mask"].shape == (2, 2)
    assert ck.extra["history"][2] == 1 / 3 and np.isnan(ck.extra["best"])


def test_unsaveable_config_fails_before_writing(tmp_path):
    with pytest.raises(TypeError, match=r"config\['model'\]\['act'\] is a function"):
        save_checkpoint(tmp_path / "c.npz", make_params(), config={"model": {"act": lambda x: x}})
    with pytest.raises(TypeError, match="key 3"):
        save_checkpoint(tmp_path / "c.npz", make_params(), extra={3: "x"})
    with pytest.raises(TypeError, match="Generator"):
        save_checkpoint(tmp_path / "c.npz", make_params(), rng=np.random.RandomState(0))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_rng_state_round_trip(tmp_path, bit_generator):
    rng = np.random.Generator(getattr(np.random, bit_generator)(12345))
    rng.standard_normal(17)  # move away from the seed state
    rng.integers(0, 10, size=3, dtype=np.uint32)  # leaves a buffered 32-bit half on some
    path = saved_file(tmp_path, rng=rng)
    ck = load_checkpoint(path)
    for again in (restore_rng(ck.rng_state), ck.rng()):
        assert type(again.bit_generator).__name__ == bit_generator
    a, b = restore_rng(ck.rng_state), ck.rng()
    want = (rng.standard_normal(5), rng.integers(0, 1000, size=5, dtype=np.uint32), rng.random())
    for other in (a, b):
        got = (other.standard_normal(5), other.integers(0, 1000, size=5, dtype=np.uint32),
               other.random())
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2] == want[2]


def test_restore_rng_refuses_unknown_generators():
    with pytest.raises(ValueError, match="unknown bit generator"):
        restore_rng({"bit_generator": "os.system", "state": {}})
    with pytest.raises(TypeError):
        restore_rng("PCG64")


# ---- resuming training ------------------------------------------------------------------------
def _train(params, opt, rng, steps, X, Y):
    for _ in range(steps):
        idx = rng.choice(len(X), size=8, replace=False)
        dev = params["w"].device
        x, y = tm.tensor(X[idx], device=dev), tm.tensor(Y[idx], device=dev)
        loss = ((x @ params["w"] + params["b"] - y) ** 2).mean()
        opt.step(tm.grad(loss, params))


@pytest.mark.parametrize("make_opt", [lambda p: Adam(p, lr=0.05, betas=(0.0, 0.99)),
                                      lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True)],
                         ids=["adam", "sgd"])
def test_resume_is_bit_identical_to_uninterrupted_training(tmp_path, device, make_opt):
    data = np.random.default_rng(0)
    X = data.standard_normal((64, 4)).astype(np.float32)
    Y = (X @ data.standard_normal((4, 2)) + 0.1).astype(np.float32)

    def fresh():
        return {"w": tm.tensor(np.zeros((4, 2), np.float32), device=device, requires_grad=True),
                "b": tm.tensor(np.zeros(2, np.float32), device=device, requires_grad=True)}

    params, rng = fresh(), np.random.default_rng(7)
    opt = make_opt(params)
    _train(params, opt, rng, 5, X, Y)
    path = save_checkpoint(tmp_path / "run.npz", params, optimizer=opt, rng=rng,
                           config={"lr": 0.05}, extra={"step": 5})
    _train(params, opt, rng, 5, X, Y)  # the uninterrupted run

    ck = load_checkpoint(path, device=device)
    assert ck.extra == {"step": 5} and ck.config == {"lr": 0.05}
    opt2 = make_opt(ck.params)
    opt2.load_state_dict(ck.optimizer_state)
    _train(ck.params, opt2, ck.rng(), 5, X, Y)
    for k in params:
        assert ck.params[k].dtype == np.float32
        np.testing.assert_array_equal(ck.params[k].numpy(), params[k].numpy())


def test_optimizer_state_dict_can_be_passed_directly(tmp_path):
    params = make_params()
    sd = SGD(params, lr=0.1, momentum=0.5).state_dict()
    ck = load_checkpoint(saved_file(tmp_path, optimizer=sd))
    assert list(ck.optimizer_state) == list(sd)
    for k, v in sd.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(ck.optimizer_state[k], v)
        else:
            assert ck.optimizer_state[k] == v and type(ck.optimizer_state[k]) is type(v)


# ---- atomic writes ----------------------------------------------------------------------------
@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_save_leaves_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch, error):
    path = saved_file(tmp_path, config={"version": "old"})
    before = path.read_bytes()

    def broken_write(f, entries):
        f.write(b"PK\x03\x04 half a zip")
        raise error

    monkeypatch.setattr(ckpt, "_write_npz", broken_write)
    with pytest.raises(type(error)):
        save_checkpoint(path, make_params(seed=1), config={"version": "new"})
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == before
    assert load_checkpoint(path).config == {"version": "old"}


def test_save_overwrites_and_needs_an_existing_folder(tmp_path):
    path = saved_file(tmp_path, config={"v": 1})
    save_checkpoint(path, make_params(), config={"v": 2})
    assert load_checkpoint(path).config == {"v": 2} and os.listdir(tmp_path) == ["ckpt.npz"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "nope" / "c.npz", make_params())


# ---- damaged, foreign and hostile files --------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_checkpoint(tmp_path / "missing.npz")


@pytest.mark.parametrize("cut", [lambda n: 30, lambda n: n // 2, lambda n: n * 9 // 10,
                                 lambda n: n - 1, lambda n: 0],
                         ids=["30-bytes", "half", "90%", "last-byte-lost", "empty"])
def test_truncated_file(tmp_path, cut):
    path = saved_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:cut(len(data))])
    with pytest.raises(CheckpointError, match="ckpt.npz"):
        load_checkpoint(path)


@pytest.mark.parametrize("where", ["param", "meta"])
def test_bit_flip_in_payload(tmp_path, where):
    path = saved_file(tmp_path, config={"lr": 0.001})
    data = bytearray(path.read_bytes())
    needle = make_params()["layer1.w"].numpy().tobytes() if where == "param" else b'"lr": 0.001'
    at = data.find(needle)
    assert at > 0, "payload not found in the file"
    data[at + len(needle) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="ckpt.npz.*corrupt"):
        load_checkpoint(path)


def test_checksum_catches_changes_that_keep_the_zip_valid(tmp_path):
    path = saved_file(tmp_path)
    entries = raw_entries(path)
    entries["param/layer1.b"] = entries["param/layer1.b"] + np.float32(1e-3)
    rewrite(path, entries, fix_checksum=False)  # fresh zip CRCs, stale SHA-256
    with pytest.raises(CheckpointError, match="ckpt.npz.*checksum"):
        load_checkpoint(path)
    del entries["checksum"]
    rewrite(path, entries, fix_checksum=False)
    with pytest.raises(CheckpointError, match="no checksum"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("just some text\n")
    with pytest.raises(CheckpointError, match="notes.npz.*not a tinymeta checkpoint"):
        load_checkpoint(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match="single-array"):
        load_checkpoint(npy)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(CheckpointError, match="other.npz.*not a tinymeta checkpoint"):
        load_checkpoint(other)


def test_newer_format_version_is_refused(tmp_path):
    path = saved_file(tmp_path)
    entries = raw_entries(path)
    entries["format_version"] = np.array(ckpt.FORMAT_VERSION + 1, dtype=np.int64)
    rewrite(path, entries)
    with pytest.raises(CheckpointError, match="upgrade tinymeta"):
        load_checkpoint(path)


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_are_refused_and_never_run(tmp_path):
    marker = str(tmp_path / "pwned")
    path = saved_file(tmp_path)
    entries = raw_entries(path)
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    entries["param/layer1.w"] = evil
    rewrite(path, entries, fix_checksum=False)  # refused while reading, before any check
    with pytest.raises(CheckpointError, match="ckpt.npz.*pickled"):
        load_checkpoint(path)
    assert not os.path.exists(marker)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


# ---- config_diff ------------------------------------------------------------------------------
def test_config_diff():
    a = {"lr": 0.001, "model": {"hidden": 64, "act": "relu"}, "seed": 1, "betas": (0.9, 0.999),
         "flag": True, "x": float("nan")}
    b = {"lr": 0.01, "model": {"hidden": 64, "act": "tanh", "depth": 4}, "betas": (0.9, 0.99),
         "flag": 1, "x": float("nan"), "tasks": 5}
    assert config_diff(a, a) == []
    assert config_diff(a, b) == [
        "betas: a=(0.9, 0.999), b=(0.9, 0.99)",
        "flag: a=True, b=1",
        "lr: a=0.001, b=0.01",
        "model.act: a='relu', b='tanh'",
        "model.depth: only in b (=4)",
        "seed: only in a (=1)",
        "tasks: only in b (=5)",
    ]
    assert config_diff({"n": 1}, {"n": 2}, labels=("checkpoint", "current")) == \
        ["n: checkpoint=1, current=2"]
    assert config_diff({"m": np.ones(2)}, {"m": np.ones(2)}) == []
    assert config_diff({"m": np.ones(2)}, {"m": np.zeros(2)}) != []
    assert config_diff({"h": [1, 2]}, {"h": (1, 2)}) != []
