"""Benchmarks (not tests): where the time of a meta-gradient goes.

``python -m tinymeta bench`` times second-order MAML's meta-gradient in four
phases: the support forward pass, the inner gradient with ``create_graph=True``
(the backward pass, recorded), the query forward pass through the fast
weights, and the outer gradient (which differentiates the recorded backward
pass: the double backward). It also counts graph nodes, so the engine's
overhead per op can be read off.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
import timeit
from pathlib import Path

import numpy as np

from .. import backend
from .. import functional as F
from ..algorithms.common import per_task
from ..autograd import grad, toposort
from ..nn import MLP, ConvNet
from ..tasks import MetaBatch
from ..tensor import tensor
from ..files import write_text
from . import bench_torch
from .bench_tasks import task_benchmarks
from .factories import build_algorithm, build_model, make_optimizer, task_family
from .loop import chunked_meta_gradient
from .presets import PRESETS


def _sync(device):
    backend.synchronize(device)


def _mse_per_task(pred, y):
    d = pred - y
    return (d * d).mean(axis=(-2, -1))


def _ce_per_task(logits, y):
    return F.cross_entropy(logits, y, reduction="none").mean(axis=-1)


def sine_problem(device="cpu", dtype="float32", tasks=25, k=10, seed=0):
    """MAML's sine setting: 1-40-40-1 MLP, meta-batch 25, K = 10, alpha = 0.01."""
    rng = np.random.default_rng(seed)
    amp, phase = rng.uniform(0.1, 5, (tasks, 1, 1)), rng.uniform(0, np.pi, (tasks, 1, 1))
    xs, xq = rng.uniform(-5, 5, (tasks, k, 1)), rng.uniform(-5, 5, (tasks, k, 1))
    batch = [tensor(a, dtype=dtype, device=device) for a in
             (xs, amp * np.sin(xs - phase), xq, amp * np.sin(xq - phase))]
    model = MLP()
    return model, model.init_params(seed, dtype, device), batch, _mse_per_task, 0.01


def omniglot_problem(device="cpu", dtype="float32", tasks=32, ways=5, shots=1, queries=15, seed=0):
    """MAML's Omniglot setting: strided 4-block conv net, 28x28 inputs, alpha = 0.4.

    Random images: timing does not depend on the pixels.
    """
    rng = np.random.default_rng(seed)
    xs = rng.random((tasks, ways * shots, 1, 28, 28))
    xq = rng.random((tasks, ways * queries, 1, 28, 28))
    ys = np.tile(np.repeat(np.arange(ways), shots), (tasks, 1))
    yq = np.tile(np.repeat(np.arange(ways), queries), (tasks, 1))
    batch = [tensor(xs, dtype=dtype, device=device), tensor(ys, device=device),
             tensor(xq, dtype=dtype, device=device), tensor(yq, device=device)]
    model = ConvNet(n_way=ways)
    return model, model.init_params(seed, dtype, device), batch, _ce_per_task, 0.4


def time_meta_gradient(model, params, batch, task_loss, lr, steps=1, first_order=False, device="cpu"):
    """One meta-gradient, phase by phase: {phase: seconds} plus graph sizes."""
    xs, ys, xq, yq = batch
    T = xs.shape[0]
    times = {}

    def mark(name, t0):
        _sync(device)
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0

    _sync(device)
    fast = {k: v.broadcast_to((T,) + v.shape) for k, v in params.items()}
    for _ in range(steps):
        t0 = time.perf_counter()
        inner = task_loss(model(fast, xs), ys).sum()
        mark("support forward", t0)
        t0 = time.perf_counter()
        g = grad(inner, fast, create_graph=not first_order)
        fast = {k: fast[k] - lr * g[k] for k in fast}
        mark("inner backward", t0)
    t0 = time.perf_counter()
    loss = task_loss(model(fast, xq), yq).mean()
    mark("query forward", t0)
    nodes = len(toposort([loss]))
    t0 = time.perf_counter()
    grad(loss, params)
    mark("outer backward", t0)
    times["total"] = sum(times.values())
    return times, nodes


def engine_benchmarks(device="cpu", repeat=5, which=("sine", "omniglot")):
    """Median phase times of the MAML meta-gradient; a list of result rows."""
    rows = []
    problems = {"sine": (sine_problem, "MLP sine, T=25, K=10"),
                "omniglot": (omniglot_problem, "conv Omniglot 5w1s, T=32, Q=15")}
    for key in which:
        make, label = problems[key]
        model, params, batch, loss, lr = make(device)
        for first_order in (False, True):
            time_meta_gradient(model, params, batch, loss, lr, 1, first_order, device)  # warm-up
            runs = [time_meta_gradient(model, params, batch, loss, lr, 1, first_order, device)
                    for _ in range(repeat)]
            nodes = runs[0][1]
            for phase in runs[0][0]:
                med = statistics.median(r[0][phase] for r in runs)
                rows.append({"name": f"{label}, {'first' if first_order else 'second'} order: {phase}",
                             "value": med * 1e3, "unit": "ms"})
            total = statistics.median(r[0]["total"] for r in runs)
            rows.append({"name": f"{label}, {'first' if first_order else 'second'} order: per graph node",
                         "value": total / nodes * 1e6, "unit": f"us ({nodes} nodes)"})
    return rows


def random_batch(cfg, device, rng):
    """A meta-batch of the training shapes of ``cfg``'s task family, with random inputs
    (timing does not depend on pixels): regression targets sin(x), class labels in order."""
    family = task_family(cfg)
    T = cfg.meta_batch
    shots, queries = family.sizes(cfg, training=True)
    if family.kind == "regression":
        xs = rng.uniform(-5, 5, (T, shots, *family.input_shape))
        xq = rng.uniform(-5, 5, (T, queries, *family.input_shape))
        arrays = (xs, np.sin(xs), xq, np.sin(xq))
        return MetaBatch(*(tensor(a, dtype=cfg.dtype, device=device) for a in arrays))
    if getattr(family, "online", False):  # MANN's episodes: their own query sets, each label one step late
        labels = np.stack([rng.permutation(np.repeat(np.arange(cfg.ways), shots)) for _ in range(T)])
        x = family.episode_inputs(rng.random((T, labels.shape[1], *family.input_shape)), labels, cfg.ways, cfg.dtype)
        xt, yt = tensor(x, device=device), tensor(labels, device=device)
        return MetaBatch(xt, yt, xt, yt)
    ways = family.ways_of(cfg, training=True)  # prototypical networks train on 60 classes
    ys = np.tile(np.repeat(np.arange(ways), shots), (T, 1))
    yq = np.tile(np.repeat(np.arange(ways), queries), (T, 1))
    return MetaBatch(tensor(rng.random((T, ys.shape[1], *family.input_shape)), dtype=cfg.dtype, device=device),
                     tensor(ys, device=device),
                     tensor(rng.random((T, yq.shape[1], *family.input_shape)), dtype=cfg.dtype, device=device),
                     tensor(yq, device=device), n_way=ways)


BENCH_ALGORITHMS = ("maml", "fomaml", "meta-sgd", "anil", "reptile", "protonet")


def default_presets(device: str) -> list[str]:
    """Sine and Omniglot 5-way 1-shot for every algorithm that has the cell; on a GPU also 20-way 1-shot."""
    names = [f"{a}-sine-10shot" for a in BENCH_ALGORITHMS] + [f"{a}-omniglot-5w1s" for a in BENCH_ALGORITHMS]
    if device == "cuda":
        names += [f"{a}-omniglot-20w1s" for a in BENCH_ALGORITHMS]
    return [n for n in names if n in PRESETS]


def algorithm_benchmarks(device="cpu", repeat=5, presets=None, task_chunk=None, on_row=None):
    """Median time of one meta-iteration (meta-gradient + outer step) per algorithm and preset.

    ``task_chunk``: the meta-batch's tasks are taken this many at a time, as the training loop
    does (default: the preset's ``task_chunk``, None in most: all at once).
    On a GPU each row also gives the peak memory CuPy's pool held during the timed iterations.
    ``on_row(row)`` is called as each preset's row is measured, so a long list that is killed
    part-way (a later preset out of memory) keeps what it measured. A preset whose meta-batch
    raises MemoryError gets a row with a ``note`` saying so, and the list goes on.
    """
    rows = []
    names = presets or default_presets(device)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:  # before hours of timing, not after
        raise ValueError(f"unknown preset {unknown[0]!r}; `python -m tinymeta presets` lists them")
    for name in names:
        cfg = PRESETS[name] if task_chunk is None else PRESETS[name].replace(task_chunk=task_chunk).validate()
        try:
            row = _time_preset(name, cfg, device, repeat)
        except MemoryError:
            row = {"name": name, "preset": name, "note": "out of memory: one meta-batch did not fit (try "
                                                         "--task-chunk N to take its tasks N at a time)"}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def _time_preset(name, cfg, device, repeat) -> dict:
    """One row of :func:`algorithm_benchmarks`: the median of ``repeat`` meta-iterations after a warm-up."""
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    rng = np.random.default_rng(0)
    meta = algo.init_meta_params(model.init_params(0, cfg.dtype, device), rng)
    opt = make_optimizer(cfg, meta)
    batch = random_batch(cfg, device, rng)
    times = []
    with backend.track_peak_memory(device) as peak:
        for i in range(repeat + 1):  # the first is a warm-up
            _sync(device)
            t0 = time.perf_counter()
            grads, _ = chunked_meta_gradient(algo, meta, batch, cfg.task_chunk, rng=rng)
            opt.step(grads)
            _sync(device)
            if i:
                times.append(time.perf_counter() - t0)
        del grads
    family = task_family(cfg)
    shots, queries = family.sizes(cfg, training=True)  # the training iteration's shapes, as timed
    inner = (f"{cfg.inner_steps} inner step{'s' * (cfg.inner_steps > 1)}" if algo.inner_loop and cfg.inner_steps
             else "no inner loop")  # MANN: it learns within the episode, its inner steps set to 0
    chunks = (f" in chunks of {cfg.task_chunk}" if cfg.task_chunk is not None and cfg.task_chunk < cfg.meta_batch
              else "")
    detail = (f"T={cfg.meta_batch}{chunks}, {inner}"
              + (f", {family.ways_of(cfg, training=True)}-way {shots}-shot, Q={queries}"
                 if family.kind == "classification" else f", K={shots}"))
    row = {"name": f"{name} ({detail})", "preset": name, "value": statistics.median(times) * 1e3, "unit": "ms"}
    if device == "cuda":
        row["peak_memory_mib"] = peak.bytes / 2**20
    return row


def op_overhead(repeat=5, number=20000):
    """tinymeta's own host cost per op: a recorded add / mul / relu of 4x4 float64 arrays
    minus NumPy's time for the same operation (median of ``repeat`` timings, in us)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 4)), rng.random((4, 4))
    ta, tb = tensor(a, requires_grad=True), tensor(b, requires_grad=True)
    pairs = {"add": (lambda: a + b, lambda: ta + tb), "mul": (lambda: a * b, lambda: ta * tb),
             "relu": (lambda: np.maximum(a, 0), lambda: F.relu(ta))}
    rows = []
    for name, (raw, ours) in pairs.items():
        t_raw, t_ours = [], []
        for _ in range(repeat):  # interleaved, so a change in load hits both alike
            t_raw.append(timeit.timeit(raw, number=number) / number)
            t_ours.append(timeit.timeit(ours, number=number) / number)
        extra = statistics.median(t_ours) - statistics.median(t_raw)
        rows.append({"name": f"host cost per op above NumPy's: {name} (4x4, recorded)", "value": extra * 1e6,
                     "unit": f"us (NumPy {statistics.median(t_raw) * 1e6:.2f} us)"})
    return rows


GOAL_PROBLEMS = (  # (label, preset, changes): the problems of the speed goals
    ("sine, second order", "maml-sine-10shot", {}),
    ("Omniglot 5w1s, 1 query/class, second order", "maml-omniglot-5w1s", {"queries": 1}),
    ("Omniglot 5w1s, 1 query/class, first order", "fomaml-omniglot-5w1s", {"queries": 1}),
    ("Omniglot 5w1s, 15 queries/class, second order", "maml-omniglot-5w1s", {"queries": 15}),
    # no goal of its own: a learner without an inner loop, whose cost is its pooling conv net's, beside PyTorch's
    ("Omniglot prototypical episode, 60-way 1-shot, 5 queries/class", "protonet-omniglot-5w1s", {}),
)


GPU_GOAL_PROBLEMS = (  # the GPU goal's other cell: 20-way 1-shot with its 5 inner steps (goal <= 100 ms)
    ("Omniglot 20w1s, 5 steps, second order", "maml-omniglot-20w1s", {}),
)


def goal_benchmarks(device="cpu", repeat=5, compare_torch=False, quick=False, task_chunk=None):
    """Median ms per meta-iteration (meta-gradient + Adam step) of the goal problems; with
    ``compare_torch`` the same iteration in PyTorch (a task loop, and torch.func.vmap), timed
    interleaved with tinymeta's in one process, and the ratios. ``task_chunk``: tinymeta takes
    the meta-batch's tasks this many at a time (the training loop's ``--task-chunk``)."""
    if compare_torch:
        print(f"  comparing with {bench_torch.torch_version(device)}")
    rows, medians = [], {}
    problems = GOAL_PROBLEMS[:1] if quick else GOAL_PROBLEMS + (GPU_GOAL_PROBLEMS if device == "cuda" else ())
    for label, preset, changes in problems:
        cfg = PRESETS[preset].replace(**changes)
        if task_chunk is not None:
            cfg = cfg.replace(task_chunk=task_chunk).validate()
        model = build_model(cfg)
        algo = build_algorithm(cfg, model)
        rng = np.random.default_rng(0)
        init = model.init_params(0, cfg.dtype, device)
        meta = algo.init_meta_params(dict(init), rng)
        opt = make_optimizer(cfg, meta)
        batch = random_batch(cfg, device, rng)

        def ours():
            grads, _ = chunked_meta_gradient(algo, meta, batch, cfg.task_chunk, rng=rng)
            opt.step(grads)

        runners = {"tinymeta": ours}
        if label == FIRST_ORDER_GOAL:  # the part of an iteration both orders share (see below)
            runners[FORWARD_PASSES] = lambda: _forward_passes(algo, meta, batch)
        if compare_torch and cfg.algorithm == "protonet":  # one pass over the episode, no inner step
            ref = bench_torch.TorchProtoNet(model, meta, batch, batch.n_way, cfg.meta_lr, device)
            runners["torch"] = ref.step
        elif compare_torch and cfg.inner_steps == 1:  # the PyTorch reference takes one inner step
            kind = "mlp" if task_family(cfg).kind == "regression" else "conv"
            ref = bench_torch.TorchMAML(kind, model, init, batch, cfg.inner_lr, cfg.meta_lr, cfg.first_order,
                                        device)
            runners["torch loop"] = ref.loop
            runners["torch vmap"] = ref.vmapped
        times = {k: [] for k in runners}
        for i in range(repeat + 1):  # the first round warms up
            for name, run in runners.items():  # interleaved: load changes hit every runner alike
                _sync(device)
                t0 = time.perf_counter()
                run()
                _sync(device)
                if i:
                    times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        medians[label] = med
        chunks = f" in chunks of {cfg.task_chunk}" if cfg.task_chunk is not None else ""
        rows.append({"name": f"{label} (T={cfg.meta_batch}{chunks})", "value": med["tinymeta"] * 1e3, "unit": "ms"})
        for name in runners:
            if name == FORWARD_PASSES:
                rows.append({"name": f"  {name}", "value": med[name] * 1e3, "unit": "ms"})
            elif name != "tinymeta":
                rows.append({"name": f"  {name}", "value": med[name] * 1e3,
                             "unit": f"ms   tinymeta / {name} = {med['tinymeta'] / med[name]:.2f}"})
    first, second = medians.get(FIRST_ORDER_GOAL), medians.get(FIRST_ORDER_GOAL.replace("first", "second"))
    if first and second:
        rows.append({"name": "Omniglot 5w1s first / second order", "value": first["tinymeta"] / second["tinymeta"],
                     "unit": f"(goal <= {0.6 if device == 'cuda' else 0.5})"})
        # Both orders make the same two forward passes; the rest, the backward work, is what second
        # order doubles (every convolution op of the backward appears twice as often), so the
        # ratio can reach 1/2 only as far as those passes cost nothing.
        f = first[FORWARD_PASSES]
        rows.append({"name": "  the same without the forward passes", "value":
                     (first["tinymeta"] - f) / (second["tinymeta"] - f), "unit": ""})
    return rows


FIRST_ORDER_GOAL = "Omniglot 5w1s, 1 query/class, first order"
FORWARD_PASSES = "its support and query forward passes"


def _forward_passes(algo, meta, batch):
    """The support and query forward passes of a MAML meta-iteration, recorded as in training
    (the part first- and second-order MAML share)."""
    fast = per_task(algo.model_params(meta), batch.num_tasks)
    algo.model(fast, batch.support[0])
    algo.model(fast, batch.x_query)


def print_rows(rows, title):
    print(f"\n{title}")
    width = max(len(r["name"]) for r in rows) if rows else 0
    for r in rows:
        print_row(r, width)


def print_row(r, width=0):
    if "note" in r:  # not measured (no data, no memory): say why instead of printing nan
        print(f"  {r['name']:<{width}}  {r['note']}", flush=True)
        return
    memory = f"   peak GPU memory {r['peak_memory_mib']:9.1f} MiB" if "peak_memory_mib" in r else ""
    print(f"  {r['name']:<{width}}  {r['value']:10.3f} {r['unit']}{memory}", flush=True)


def main(args, device: str) -> int:
    """``tinymeta bench``: the groups ``args`` asks for, on ``device`` (the command line has checked
    it and the presets named)."""
    compare = getattr(args, "compare", None) == "torch"
    if compare:
        bench_torch.torch_version(device)  # before any timing: PyTorch is not a dependency, it may be missing
    print(f"tinymeta bench on {device}: numpy {np.__version__}"
          + (f", cupy {backend.xp_for('cuda').__version__}" if device == "cuda" else ""))
    groups = {}

    def keep(rows, title):  # printed, and kept for --out
        groups[title] = rows
        print_rows(rows, title)

    if args.only in (None, "goals"):
        keep(op_overhead(), "Host cost per op (goal: <= 5 us above the array library's)")
        keep(goal_benchmarks(device, repeat=args.repeat, compare_torch=compare, quick=args.quick,
                             task_chunk=getattr(args, "task_chunk", None)),
             "Speed goals: one meta-iteration (meta-gradient + Adam step), median"
             + (", interleaved with PyTorch" if compare else ""))
        if args.only == "goals":
            return _save(args, device, groups)
    if args.only in (None, "engine"):
        which = ("sine",) if args.quick else ("sine", "omniglot")
        keep(engine_benchmarks(device, repeat=args.repeat, which=which),
             "MAML meta-gradient, 1 inner step (median over repeats)")
    if args.only in (None, "algorithms"):
        presets = args.presets or ([f"{a}-sine-10shot" for a in BENCH_ALGORITHMS] if args.quick else None)
        title = "One meta-iteration (meta-gradient + outer step), each algorithm's preset, median"
        print(f"\n{title}", flush=True)
        groups[title] = []

        def measured(row):  # each row printed and saved as it comes: a list killed part-way keeps its rows
            groups[title].append(row)
            print_row(row)
            _save(args, device, groups, partial=True)

        algorithm_benchmarks(device, repeat=args.repeat, presets=presets,
                             task_chunk=getattr(args, "task_chunk", None), on_row=measured)
    if args.only in (None, "tasks"):
        keep(task_benchmarks(data_dir=args.data_dir, device=device), "Task sampling")
    return _save(args, device, groups)


def threads_in_use() -> str:
    """The BLAS thread setting this process runs under, as the environment states it."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return os.environ[var]
    return f"default ({os.cpu_count()} cores)"


def _save(args, device, groups, partial=False) -> int:
    """``--out``: the measured rows as JSON, with what they were measured on (the report's cost plan reads it).

    ``partial``: written while the benchmark still runs (``"partial": true`` in the file), silently."""
    out = getattr(args, "out", None)
    if out:
        record = {"device": device, "threads": threads_in_use(), "numpy": np.__version__,
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores", "repeat": args.repeat,
                  "date": datetime.date.today().isoformat(), **({"partial": True} if partial else {}),
                  "groups": groups}
        write_text(Path(out), json.dumps(record, indent=2) + "\n")
        if not partial:
            print(f"wrote {out}")
    return 0
