"""Benchmarks of the data side: Omniglot cache build and load, meta-batch sampling.

:func:`task_benchmarks` returns rows ``{'name', 'value', 'unit'}``; a row that could
not be measured (no Omniglot data) has ``value`` NaN and a ``note`` saying why.
"""
from __future__ import annotations

import math
import statistics
import tempfile
import time

import numpy as np

from .. import backend
from ..data.omniglot import find_omniglot, load_omniglot
from ..tasks import Omniglot, Sinusoid


def _median_ms(fn, repeats: int, device: str, warmup: int = 3) -> float:
    """Median wall time of ``fn()`` in milliseconds (device work included)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        backend.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def task_benchmarks(data_dir=None, device: str = "cpu", repeats: int = 50) -> list[dict]:
    """Time the data pipeline; return ``[{'name', 'value', 'unit'}, ...]``.

    - Omniglot cache build (s), into a temporary cache folder so the real one is untouched;
    - Omniglot cache load (ms, median of 5);
    - sampling a 32-task 5-way 1-shot Omniglot meta-batch with 15 queries per class (ms, median);
    - sampling a 25-task sine meta-batch with K = 10 (ms, median).

    The Omniglot rows are NaN with a ``note`` when the data is not found
    (``data_dir``, else ``$TINYMETA_DATA``, else ``./data/omniglot``).
    """
    device = backend.check_device(device)
    rows = []
    omniglot_rows = (("omniglot cache build", "s"), ("omniglot cache load", "ms"),
                     ("omniglot sample 32 tasks 5-way 1-shot 15 queries", "ms"))
    try:
        find_omniglot(data_dir)
    except FileNotFoundError as exc:
        where = str(exc).splitlines()[1].split("  (")[0].strip()
        note = (f"not measured: Omniglot data not found in {where} "
                "(tinymeta download omniglot --dest DIR, then --data-dir DIR)")
        rows += [{"name": n, "value": math.nan, "unit": u, "note": note} for n, u in omniglot_rows]
    else:
        with tempfile.TemporaryDirectory(prefix="tinymeta-bench-cache-") as tmp:
            start = time.perf_counter()
            load_omniglot(data_dir, tmp, verbose=False)
            build_s = time.perf_counter() - start
            loads = []
            for _ in range(5):
                start = time.perf_counter()
                data = load_omniglot(data_dir, tmp, verbose=False)
                loads.append(time.perf_counter() - start)
        tasks = Omniglot(5, 1, 15, data=data, device=device)
        rng = np.random.default_rng(0)
        rows += [{"name": omniglot_rows[0][0], "value": build_s, "unit": "s"},
                 {"name": omniglot_rows[1][0], "value": 1e3 * statistics.median(loads), "unit": "ms"},
                 {"name": omniglot_rows[2][0], "value": _median_ms(lambda: tasks.sample(32, rng), repeats,
                                                                  device), "unit": "ms"}]
    sine = Sinusoid(k_support=10, k_query=10, device=device)
    rng = np.random.default_rng(0)
    rows.append({"name": "sine sample 25 tasks K=10", "value": _median_ms(lambda: sine.sample(25, rng),
                                                                       repeats, device), "unit": "ms"})
    return rows


if __name__ == "__main__":  # python -m tinymeta.experiment.bench_tasks [DATA_DIR] [DEVICE]
    import sys

    for row in task_benchmarks(*(sys.argv[1:3])):
        print(f"{row['name']:55s} {row['value']:10.3f} {row['unit']}  {row.get('note', '')}")
