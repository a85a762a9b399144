"""`tinymeta bench` as a user runs it: its headings speak to users, and `--compare torch` without
PyTorch is one error line before any timing (PyTorch is never a dependency)."""
import functools
import json
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


def test_each_preset_row_is_printed_and_saved_as_it_is_measured(capsys, monkeypatch, tmp_path):
    """A long `--presets` list that dies part-way (here: interrupted at the third preset, as the kernel's
    out-of-memory killer would end it) leaves the rows already measured in --out, marked partial; a preset
    that raises MemoryError gets a row saying so and the list goes on; the report's plan skips that row."""
    real = bench._time_preset

    def time_preset(name, cfg, device, repeat):
        if name == "fomaml-sine-10shot":
            raise MemoryError
        if name == "reptile-sine-10shot":
            raise KeyboardInterrupt
        return real(name, cfg, device, repeat)

    monkeypatch.setattr(bench, "_time_preset", time_preset)
    out = tmp_path / "bench.json"
    argv = ["bench", "--only", "algorithms", "--repeat", "1", "--out", str(out),
            "--presets", "maml-sine-10shot", "fomaml-sine-10shot", "reptile-sine-10shot", "anil-sine-10shot"]
    try:
        code, printed, _ = run_cli(argv, capsys)
        assert code != 0
    except KeyboardInterrupt:
        printed = capsys.readouterr().out
    assert "maml-sine-10shot (T=25, 1 inner step, K=10)" in printed
    assert "fomaml-sine-10shot  out of memory" in printed and "--task-chunk" in printed
    saved = json.loads(out.read_text())
    assert saved["partial"] is True
    (rows,) = saved["groups"].values()
    assert [r["preset"] for r in rows] == ["maml-sine-10shot", "fomaml-sine-10shot"]
    assert rows[0]["value"] > 0 and "value" not in rows[1]

    from tinymeta.experiment.report import omniglot_plan
    omniglot_plan(tmp_path / "no-runs", out)  # a row without a value is not a cost

    monkeypatch.setattr(bench, "_time_preset", real)
    code, _, err = run_cli(argv[:-3], capsys)  # the whole (shorter) list: no partial mark
    assert code == 0, err
    assert "partial" not in json.loads(out.read_text())


def test_the_mann_presets_are_timed_on_episodes_with_each_label_shown_one_step_late():
    import numpy as np

    from tinymeta.experiment.presets import PRESETS
    cfg = PRESETS["mann-omniglot-5way"].replace(meta_batch=3)
    batch = bench.random_batch(cfg, "cpu", np.random.default_rng(0))
    x, y = batch.x_query.numpy(), batch.y_query.numpy()
    assert x.shape == (3, 50, 405) and batch.x_support is batch.x_query and batch.y_support is batch.y_query
    assert all(sorted(row) == sorted(np.repeat(np.arange(5), 10)) for row in y)   # 10 drawings of each class
    assert not x[:, 0, 400:].any()                                                 # no label before the first step
    np.testing.assert_array_equal(x[:, 1:, 400:], np.eye(5)[y[:, :-1]])            # y_{t-1} with x_t
    for name in ("mann-omniglot-5way", "lstm-omniglot-5way"):
        row = bench._time_preset(name, PRESETS[name].replace(meta_batch=2, hidden=(8,)), "cpu", 1)
        assert row["value"] > 0 and f"{name} (T=2, no inner loop, 5-way 10-shot, Q=10)" == row["name"]
