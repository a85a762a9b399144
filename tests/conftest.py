"""Shared fixtures: the devices every device-aware test runs over, and the real Omniglot."""
import os
from pathlib import Path

import numpy as np
import pytest

import tinymeta as tm

DEVICES = [pytest.param("cpu", id="cpu"),
           pytest.param("cuda", id="cuda", marks=[
               pytest.mark.gpu,
               pytest.mark.skipif(not tm.cuda_available(), reason="needs CuPy and a CUDA GPU")])]


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device test runs on NumPy, and on CuPy where a GPU is present."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def t64(array, device="cpu", requires_grad=True):
    """A float64 tensor for gradient checks."""
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
