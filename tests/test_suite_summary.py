"""The test suite's own report: per-device skips collapse to one line each, other skips stay listed."""
import os
import shutil
import subprocess
import sys
import textwrap

from conftest import NEEDS_GPU, REPO


def test_per_device_skips_collapse_and_other_skips_stay_listed(tmp_path):
    for name in ("conftest.py", "emulated_cupy.py"):
        shutil.copy(REPO / "tests" / name, tmp_path / name)
    (tmp_path / "test_example.py").write_text(textwrap.dedent('''
        import pytest
        from conftest import NEEDS_GPU

        @pytest.mark.parametrize("n", range(5))
        @pytest.mark.parametrize("dev", ["cpu", "cuda"])
        def test_per_device(dev, n):
            if dev == "cuda":
                pytest.skip(NEEDS_GPU)

        def test_unexpected():
            pytest.skip("the fixture file is missing")
    '''))
    out = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert "5 tests on device cuda: needs CuPy and a CUDA GPU" in out, out
    assert out.count(NEEDS_GPU) == 1, out          # said once, not once per test
    assert "SKIPPED [1]" in out and "the fixture file is missing" in out, out
    assert "5 passed, 1 skipped, 5 skipped per device" in out, out

