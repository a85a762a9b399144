"""Shared fixtures: the devices every device-aware test runs over, and the real Omniglot.

Devices: ``cpu`` (NumPy); ``cuda-emu``, tinymeta's CUDA code paths on the CuPy
emulator of ``emulated_cupy.py`` (strict about host/device mixing, counts
synchronisations; runs everywhere); ``cuda``, real CuPy on a GPU (skipped
without one). Tests that take the ``device`` fixture run on each. Every test in
the engine, model, algorithm and training modules (``DEVICE_MODULES``) also
runs once per device with that device as tinymeta's default, so tensors made
without a ``device=`` land there.
"""
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import emulated_cupy
import tinymeta as tm

NEEDS_GPU = "needs CuPy and a CUDA GPU"
DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("cuda-emu", id="cuda-emu"),
           pytest.param("cuda", id="cuda", marks=[
               pytest.mark.gpu,
               pytest.mark.skipif(not tm.cuda_available(), reason=NEEDS_GPU)])]
DEVICE_MODULES = {"test_op_gradients", "test_autograd", "test_meta_gradient", "test_algorithms", "test_nn",
                  "test_gradient_agreement"}


def _use(name, monkeypatch):
    """Set up device ``name`` for one test; returns tinymeta's name for it."""
    if name == "cuda-emu":
        emulated_cupy.install(monkeypatch)
        return "cuda"
    return name


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    """Each device test runs on NumPy, on the CuPy emulator, and on CuPy where a GPU is present."""
    return _use(request.param, monkeypatch)


@pytest.fixture(params=DEVICES[1:])
def gpu_device(request, monkeypatch):
    """The CUDA code paths only: on the emulator, and on CuPy where a GPU is present."""
    return _use(request.param, monkeypatch)


@pytest.fixture(autouse=True)
def default_device(request, monkeypatch):
    """The device new tensors go to by default (parametrized in DEVICE_MODULES, else 'cpu')."""
    name = _use(getattr(request, "param", "cpu"), monkeypatch)
    tm.set_default_device(name)
    yield name
    tm.set_default_device(None)


def pytest_generate_tests(metafunc):
    if metafunc.module.__name__.rsplit(".", 1)[-1] in DEVICE_MODULES and "device" not in metafunc.fixturenames:
        metafunc.parametrize("default_device", DEVICES, indirect=True)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def t64(array, device=None, requires_grad=True):
    """A float64 tensor for gradient checks (on the test's default device unless told)."""
    return tm.tensor(np.asarray(array, dtype=np.float64), device=device, requires_grad=requires_grad)


# ---- the real Omniglot, from the team's shared folder beside the repository ---------------------
REPO = Path(__file__).resolve().parents[1]
OMNIGLOT_DIR = Path(os.environ.get("TINYMETA_TEST_OMNIGLOT", REPO.parent / "shared" / "data" / "omniglot"))


@pytest.fixture(scope="session")
def omniglot_cache(tmp_path_factory):
    """A cache folder holding the real Omniglot, built once per session (a few seconds)."""
    if not (OMNIGLOT_DIR / "images_background.zip").is_file():
        pytest.skip(f"real Omniglot zips not found in {OMNIGLOT_DIR} (set $TINYMETA_TEST_OMNIGLOT)")
    from tinymeta.data import load_omniglot
    cache = tmp_path_factory.getbasetemp() / "omniglot-cache"
    load_omniglot(OMNIGLOT_DIR, cache, verbose=False)
    return cache


@pytest.fixture(scope="session")
def omniglot_real(omniglot_cache):
    """The real Omniglot as an OmniglotData (from the session's cache)."""
    from tinymeta.data import load_omniglot
    return load_omniglot(OMNIGLOT_DIR, omniglot_cache, verbose=False)


# ---- the skip summary: per-device skips collapse to one line per device family and reason ----------
# Without a GPU every [cuda] test skips for the same reason; listed one by one (pytest -ra) they
# would bury the skips that say something. Unexpected skips are still listed as usual.
DEVICE_SKIP_REASONS = (NEEDS_GPU, "CUDA is usable here (a GPU, or the CuPy emulator)")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _device_family(report) -> str:
    """The device a skipped test was for: cuda when it needs a GPU, else the last device among its parameters."""
    if _skip_reason(report) == NEEDS_GPU:  # a GPU-only test may run under another default device
        return "cuda"
    params = report.nodeid.rpartition("[")[2] if report.nodeid.endswith("]") else ""
    names = re.findall(r"cuda-emu|cuda|cpu", params)
    return names[-1] if names else "cuda"


def pytest_terminal_summary(terminalreporter):
    """Move the per-device skips out of the skip list and say once which device families were skipped and why."""
    skipped = terminalreporter.stats.get("skipped", [])
    per_device = [r for r in skipped if _skip_reason(r) in DEVICE_SKIP_REASONS]
    if not per_device:
        return
    terminalreporter.stats["skipped"] = [r for r in skipped if r not in per_device]
    terminalreporter.stats["skipped per device"] = per_device  # still counted on the final line
    terminalreporter.write_sep("=", "skipped per device")
    for (family, reason), n in sorted(Counter((_device_family(r), _skip_reason(r)) for r in per_device).items()):
        terminalreporter.write_line(f"{n} test{'s' * (n != 1)} on device {family}: {reason}")


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of ``tinymeta ARGV`` run in this process, whether it returns or exits."""
    from tinymeta.experiment import cli  # noqa: PLC0415 (only the CLI tests need it)
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err
