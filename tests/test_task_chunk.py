"""A meta-batch taken in chunks of tasks (``--task-chunk``): the same gradient and metrics, in less memory.

Every algorithm that accepts chunking gives, in float64, the unchunked meta-gradient and
metrics to 1e-12 with chunks of 1, 2 and 3 tasks of a meta-batch of 5 (so the last chunk
is partial), on tiny sine tasks and on tiny Omniglot-shaped tasks of random images; the
ones whose meta-loss couples the tasks refuse with one error naming why.
"""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest

import emulated_cupy
import tinymeta as tm
from tinymeta import backend
from tinymeta.algorithms import ALGORITHMS, Objective
from tinymeta.experiment import PRESETS, Config, TaskSource, build_algorithm, build_model, train
from tinymeta.experiment.bench import algorithm_benchmarks
from tinymeta.experiment.evaluation import evaluate_tasks
from tinymeta.experiment.loop import chunked_meta_gradient, oom_message
from tinymeta.memory import MANN
from tinymeta.nn import ConvNet
from tinymeta.tasks import MetaBatch

T = 5
CHUNKS = (1, 2, 3)
QUIET = dict(progress=False, echo=lambda *a: None)


def image_batch(rng, ways=3, shots=2, queries=2, size=8, unlabeled=0, device="cpu", dtype="float64"):
    """T tasks of random images, Omniglot-shaped (T, n, 1, size, size), labels shuffled within each task."""
    xs = rng.normal(size=(T, ways * shots, 1, size, size))
    xq = rng.normal(size=(T, ways * queries, 1, size, size))
    ys = np.stack([rng.permutation(np.repeat(np.arange(ways), shots)) for _ in range(T)])
    yq = np.stack([rng.permutation(np.repeat(np.arange(ways), queries)) for _ in range(T)])
    xu = rng.normal(size=(T, unlabeled, 1, size, size)) if unlabeled else None
    info = {"classes": rng.integers(0, 100, (T, ways))}
    xs, xq = (tm.tensor(a, dtype=dtype, device=device) for a in (xs, xq))
    ys, yq = (tm.tensor(a, device=device) for a in (ys, yq))
    return MetaBatch(xs, ys, xq, yq, info=info,
                     x_unlabeled=None if xu is None else tm.tensor(xu, dtype=dtype, device=device), n_way=ways)


def conv_case(name, **kw):
    """(algorithm, meta-parameters, batch) of ``name`` on a tiny conv net and random 8x8 (28x28) images."""
    rng = np.random.default_rng(3)
    size = 28 if name == "relationnet" else 8
    pool = name == "gaussian-protonet"  # one feature per channel: the confidence is a channel
    model = ConvNet(n_way=3, filters=4, blocks=2, image_size=size, pool=pool, features="mean" if pool else None)
    settings = {"inner_lr": 0.3, "inner_steps": 2, **kw}
    if not ALGORITHMS[name].inner_loop:
        settings = {k: v for k, v in settings.items() if k not in ("inner_lr", "inner_steps")}
    if name == "relationnet":
        settings["filters"] = 4
    if name == "siamese":
        settings["features"] = 6
    algo = ALGORITHMS[name](model, Objective("classification"), **settings)
    meta = algo.init_meta_params(model.init_params(rng, dtype="float64"), rng)
    batch = image_batch(rng, size=size, unlabeled=2 if name == "semi-protonet" else 0)
    return algo, meta, batch


def sine_case(name, **changes):
    """(algorithm, meta-parameters, batch) of ``name``'s sine preset, meta-batch 5, float64, a small MLP."""
    cfg = PRESETS[f"{'mamlpp' if name == 'maml++' else name}-sine-10shot"].replace(
        meta_batch=T, dtype="float64", hidden=(8, 8), **changes)
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    rng = np.random.default_rng(4)
    meta = algo.init_meta_params(model.init_params(rng, dtype="float64"), rng)
    return algo, meta, TaskSource(cfg, "cpu").train(rng)


def mann_case():
    rng = np.random.default_rng(5)
    model = MANN(inputs=6 + 3, classes=3, hidden=4, memory_size=5, memory_width=3, heads=2)
    algo = ALGORITHMS["mann"](model, Objective("classification"), inner_lr=0.0, inner_steps=0)
    x = tm.tensor(rng.normal(size=(T, 6, 9)))
    y = tm.tensor(rng.integers(0, 3, (T, 6)))
    return algo, model.init_params(rng, dtype="float64"), MetaBatch(x, y, x, y)


CONV_CASES = {  # every algorithm that accepts chunking, and the variants that change its meta-loss
    "maml": {}, "maml first order": {"first_order": True}, "fomaml": {}, "meta-sgd": {}, "anil": {}, "nil": {},
    "adml": {}, "taml entropy": {"measure": "entropy"}, "protonet": {}, "gaussian-protonet": {},
    "semi-protonet": {}, "semi-protonet distractor-cluster": {"refinement": "distractor-cluster"},
    "semi-protonet masked": {"refinement": "masked", "cluster_steps": 2}, "siamese": {},
    "siamese contrastive": {"loss": "contrastive"}, "matching": {}, "matching fce": {"fce": True, "fce_steps": 2},
    "relationnet": {},
    "maml++ every option": {"multi_step_loss_iterations": 4, "learned_step_rates": True, "per_step_bn": True,
                            "adapt_norm": False},
    "reptile fresh, mini-batches": {"inner_batch": 2, "inner_steps": 3, "inner_optimizer": "adam"},
    "reptile persistent": {"inner_state": "persistent", "inner_batch": 4, "inner_optimizer": "adam"},
}
SINE_CASES = {"maml": {}, "fomaml": {}, "meta-sgd": {}, "anil": {}, "caml": {}, "maml++": {},
              "reptile": {"inner_batch": 4}, "reptile persistent": {"inner_state": "persistent", "inner_batch": 4}}


def assert_same(a: dict, b: dict):
    assert list(a) == list(b)
    for k in a:
        # a conv bias before batch norm has a true gradient of 0: what is left is rounding noise, which
        # Reptile's inner Adam divides by its eps (1e-8), so the order of summation shows at about 1e-9
        atol = 1e-8 if k.startswith("conv") and k.endswith("_b") else 1e-12
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-12, atol=atol, err_msg=k)


def check_chunks(make):
    """Unchunked against chunks of 1, 2 and 3 tasks: gradients, metrics, the rng after, the algorithm's state."""
    algo, meta, batch = make()
    rng = np.random.default_rng(7)
    want_state, want_rng = copy.deepcopy(algo), copy.deepcopy(rng)
    want = want_state.meta_gradient(meta, batch, rng=want_rng, iteration=1)
    for chunk in CHUNKS:
        fresh, r = copy.deepcopy(algo), copy.deepcopy(rng)
        grads, metrics = chunked_meta_gradient(fresh, meta, batch, chunk, rng=r, iteration=1)
        assert_same(grads, want[0])
        assert_same(metrics, want[1])
        assert r.random() == copy.deepcopy(want_rng).random(), f"chunks of {chunk} left the rng elsewhere"
        assert fresh.state_dict().keys() == want_state.state_dict().keys()
        for k, v in want_state.state_dict().items():  # Reptile's persistent inner state, carried task to task
            v, got = np.asarray(v), np.asarray(fresh.state_dict()[k])
            if v.dtype.kind == "f":
                np.testing.assert_allclose(got, v, rtol=1e-12, atol=1e-12, err_msg=k)
            else:
                assert np.array_equal(got, v), k


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_chunks_of_image_tasks_give_the_unchunked_gradient_and_metrics(case):
    name = case.split()[0]
    check_chunks(lambda: conv_case(name, **CONV_CASES[case]))


@pytest.mark.parametrize("case", sorted(SINE_CASES))
def test_chunks_of_sine_tasks_give_the_unchunked_gradient_and_metrics(case):
    name = case.split()[0]
    check_chunks(lambda: sine_case(name, **SINE_CASES[case]))


def test_chunks_of_mann_episodes_give_the_unchunked_gradient_and_metrics():
    check_chunks(mann_case)


def test_every_algorithm_is_tested_or_refuses():
    tested = {c.split()[0] for c in CONV_CASES} | {c.split()[0] for c in SINE_CASES} | {"mann"}
    refused = {n for n in ALGORITHMS if ALGORITHMS[n].chunk_refusal(Config(algorithm=n)) is not None}
    assert refused == {"gradient-agreement", "taml"}  # TAML's default measure is theil; entropy is tested
    assert tested | refused == set(ALGORITHMS)


def test_clipping_comes_after_the_chunks_are_combined():
    """Relation networks clip the whole meta-batch's gradient: clipping each chunk's would give another one."""
    algo, meta, batch = conv_case("relationnet")
    algo.clip_norm = 1e-3  # every gradient is clipped
    whole, _ = algo.meta_gradient(meta, batch)
    chunked, _ = chunked_meta_gradient(algo, meta, batch, 2)
    assert_same(chunked, whole)


@pytest.mark.parametrize("changes, why", [
    ({"algorithm": "gradient-agreement"}, "agreement of its update with those of all the meta-batch's tasks"),
    ({"algorithm": "taml", "taml_measure": "theil"}, "inequality measure 'theil'"),
    ({"algorithm": "taml", "taml_measure": "gini"}, "inequality measure 'gini'"),
])
def test_algorithms_whose_meta_loss_couples_the_tasks_refuse_chunks(changes, why):
    cfg = PRESETS["maml-sine-10shot"].replace(task_chunk=2, **changes)
    with pytest.raises(ValueError, match=rf"task_chunk \(--task-chunk\) 2: {changes['algorithm']} ") as info:
        cfg.validate()
    assert why in str(info.value) and "leave it out" in str(info.value)
    cfg.replace(task_chunk=None).validate()  # without chunks they run


def test_entropy_taml_accepts_chunks():
    PRESETS["taml-entropy-omniglot-5w1s"].replace(task_chunk=4).validate()


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_a_bad_chunk_size_is_refused(value):
    with pytest.raises(ValueError, match=r"task_chunk \(--task-chunk\) must be None or an integer >= 1"):
        PRESETS["maml-sine-10shot"].replace(task_chunk=value).validate()


def test_a_chunk_larger_than_the_meta_batch_is_one_chunk():
    algo, meta, batch = sine_case("maml")
    cfg = PRESETS["maml-sine-10shot"].replace(meta_batch=T, task_chunk=T + 3).validate()
    got, _ = chunked_meta_gradient(algo, meta, batch, cfg.task_chunk)
    want, _ = algo.meta_gradient(meta, batch)
    assert all(np.array_equal(got[k].numpy(), want[k].numpy()) for k in want)


def test_a_subset_of_tasks_keeps_every_array_and_the_ways(gpu_device):
    """MetaBatch.tasks on either device: the support, query and unlabeled sets, info and n_way, and no sync."""
    batch = image_batch(np.random.default_rng(0), unlabeled=2, device=gpu_device)
    with backend._cupyx.allow_synchronize(False):
        part = batch.tasks(slice(1, 3))
    assert part.num_tasks == 2 and part.n_way == 3 and part.device == "cuda"
    for name in ("x_support", "y_support", "x_query", "y_query", "x_unlabeled"):
        np.testing.assert_array_equal(getattr(part, name).numpy(), getattr(batch, name).numpy()[1:3])
    np.testing.assert_array_equal(part.info["classes"], batch.info["classes"][1:3])


def test_a_chunked_meta_iteration_never_synchronises(gpu_device):
    rng = np.random.default_rng(1)
    model = ConvNet(n_way=3, filters=4, blocks=2, image_size=8)
    algo = ALGORITHMS["maml"](model, Objective("classification"), inner_lr=0.3, inner_steps=1)
    meta = algo.init_meta_params(model.init_params(rng, dtype="float32", device=gpu_device), rng)
    batch = image_batch(rng, device=gpu_device, dtype="float32")
    with backend._cupyx.allow_synchronize(False):
        grads, metrics = chunked_meta_gradient(algo, meta, batch, 2, rng=rng)
    assert all(v.device == "cuda" for v in [*grads.values(), *metrics.values()])
    assert all(g.dtype == meta[k].dtype for k, g in grads.items())  # float32 stays float32


def test_evaluation_in_chunks_gives_the_same_numbers_on_the_same_tasks():
    cfg = PRESETS["maml-sine-10shot"].replace(meta_batch=T, dtype="float64", hidden=(8, 8))
    model = build_model(cfg)
    algo = build_algorithm(cfg, model)
    meta = algo.init_meta_params(model.init_params(0, dtype="float64"), None)
    whole = evaluate_tasks(algo, meta, TaskSource(cfg, "cpu"), "test", 7, 2, chunk=4)
    seen = []
    evaluate = algo.evaluate
    algo.evaluate = lambda m, b, s: seen.append(b.num_tasks) or evaluate(m, b, s)
    chunked = evaluate_tasks(algo, meta, TaskSource(cfg.replace(task_chunk=3), "cpu"), "test", 7, 2, chunk=4)
    assert seen == [3, 1, 3]  # batches of 4 and 3 tasks drawn as before, each evaluated 3 tasks at a time
    for key in ("loss",):
        for a, b in zip(whole[key], chunked[key]):
            assert a["mean"] == pytest.approx(b["mean"], rel=1e-12) and a["ci95"] == pytest.approx(b["ci95"], rel=1e-9)


def test_a_chunked_run_trains_as_the_unchunked_one(tmp_path):
    cfg = PRESETS["reptile-sine-10shot"].replace(meta_batch=T, dtype="float64", hidden=(8, 8), inner_batch=4,
                                                  iterations=3, log_interval=1, val_interval=2, val_tasks=4,
                                                  test_tasks=4, checkpoint_interval=0)
    a = train(cfg, tmp_path / "whole", **QUIET)
    b = train(cfg.replace(task_chunk=2), tmp_path / "chunks", **QUIET)
    rows = [[json.loads(line) for line in (tmp_path / d / "log.jsonl").read_text().splitlines()]
            for d in ("whole", "chunks")]
    for x, y in zip(*rows):
        for k in x:
            if k not in ("time", "split"):
                np.testing.assert_allclose(x[k], y[k], rtol=1e-12)
    assert a["test"]["loss"][-1]["mean"] == pytest.approx(b["test"]["loss"][-1]["mean"], rel=1e-12)


def test_the_out_of_memory_message_suggests_chunks():
    cfg = PRESETS["matching-omniglot-20w1s"].replace(meta_batch=32, task_chunk=None)
    assert "--task-chunk 16" in oom_message(cfg, "cpu", 1)
    assert "in chunks of 4 tasks" in oom_message(cfg.replace(task_chunk=4), "cpu", 1)
    assert "--task-chunk" not in oom_message(cfg.replace(task_chunk=1), "cpu", 1)  # nothing smaller to offer
    coupled = PRESETS["maml-omniglot-5w1s"].replace(algorithm="gradient-agreement")
    assert "--task-chunk" not in oom_message(coupled, "cpu", 1)  # it would refuse it
    assert "inner step" not in oom_message(cfg, "cpu", 1)  # matching networks have no inner loop to shorten
    assert "20-way episodes" in oom_message(cfg, "cpu", 1)
    assert "--first-order" in oom_message(coupled, "cpu", 1)


def test_bench_times_the_iteration_in_chunks(monkeypatch):
    rows = algorithm_benchmarks("cpu", repeat=1, presets=["maml-sine-10shot"], task_chunk=10)
    assert "T=25 in chunks of 10" in rows[0]["name"]
    # a preset that sets it is timed in its chunks without the flag
    monkeypatch.setitem(PRESETS, "maml-sine-10shot", PRESETS["maml-sine-10shot"].replace(task_chunk=7))
    calls = []
    monkeypatch.setattr(ALGORITHMS["maml"], "chunk_gradient",
                        lambda self, *a, **k: calls.append(a[1].num_tasks) or self.meta_gradient(*a, **k))
    rows = algorithm_benchmarks("cpu", repeat=1, presets=["maml-sine-10shot"])
    assert "T=25 in chunks of 7" in rows[0]["name"] and calls[:4] == [7, 7, 7, 4]


def test_no_preset_takes_its_tasks_in_chunks():
    """Chunks are the user's choice for a meta-batch too big for the machine: every preset fits 24 GiB
    whole (matching networks take one episode per step since they follow one reimplementation)."""
    assert {n for n, cfg in PRESETS.items() if cfg.task_chunk is not None} == set()


# ---- as a user types it ------------------------------------------------------------------------------
def tinymeta(*argv):
    return subprocess.run([sys.executable, "-m", "tinymeta", *map(str, argv)], capture_output=True, text=True)


TINY = ["--preset", "maml-sine-10shot", "--meta-batch", "4", "--iterations", "4", "--val-interval", "0",
        "--test-tasks", "4", "--log-interval", "1", "--checkpoint-interval", "2", "--no-progress"]


def test_a_chunked_run_through_the_cli_resumes(tmp_path):
    logdir = tmp_path / "run"
    first = tinymeta("train", *TINY, "--task-chunk", "2", "--stop-at", "2", "--logdir", logdir)
    assert first.returncode == 0, first.stderr
    assert json.loads((logdir / "config.json").read_text())["task_chunk"] == 2
    # resumed with other chunks: the same numbers, so the checkpoint takes it
    second = tinymeta("train", "--resume", "--logdir", logdir, "--task-chunk", "3", "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stdout and (logdir / "test.json").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_bad_chunk_size_on_the_command_line_is_one_error_line(tmp_path, value):
    out = tinymeta("train", *TINY, "--task-chunk", value, "--logdir", tmp_path / "run")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [f"tinymeta train: error: task_chunk (--task-chunk) must be None or an "
                                       f"integer >= 1, got {value}"]


def test_a_refusing_algorithm_on_the_command_line_is_one_error_line(tmp_path):
    out = tinymeta("train", "--preset", "maml-sine-10shot", "--algorithm", "gradient-agreement", "--task-chunk", "2",
                   "--logdir", tmp_path / "run")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith("tinymeta train: error: task_chunk (--task-chunk) 2: gradient-agreement weighs")


def test_bench_refuses_a_bad_chunk_size_in_one_line():
    out = tinymeta("bench", "--only", "algorithms", "--presets", "maml-sine-10shot", "--task-chunk", "0")
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1, out.stderr
    assert "task_chunk (--task-chunk) must be None or an integer >= 1, got 0" in out.stderr
