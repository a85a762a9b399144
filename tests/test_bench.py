"""`tinymeta bench` as a user runs it: its headings speak to users, and `--compare torch` without
PyTorch is one error line before any timing (PyTorch is never a dependency)."""
import functools
import re
import sys

from conftest import run_cli

from tinymeta.experiment import bench


def test_the_goal_figures_are_headed_for_users_not_by_an_internal_label(capsys, monkeypatch):
    # the real measurements, made short: 10 calls per op instead of 20,000
    monkeypatch.setattr(bench, "op_overhead", functools.partial(bench.op_overhead, repeat=1, number=10))
    code, out, err = run_cli(["bench", "--only", "goals", "--quick", "--repeat", "1"], capsys)
    assert code == 0, err
    assert "Speed goals: one meta-iteration (meta-gradient + Adam step), median" in out
    assert "sine, second order (T=25)" in out
    assert not re.search(r"\bissue\b", out, re.IGNORECASE), out


def test_compare_torch_without_pytorch_is_one_error_line_before_any_timing(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails, as where it is not installed
    code, out, err = run_cli(["bench", "--only", "goals", "--quick", "--compare", "torch"], capsys)
    assert code == 2 and out == "", out
    assert err.startswith("tinymeta bench: error: --compare torch needs PyTorch") and "pip install torch" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
