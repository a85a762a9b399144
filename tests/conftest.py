"""Shared fixtures: the device list every device-aware test runs over."""
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
