"""MANN on Omniglot episodes (Santoro et al. 2016): the episode sampler (labels one step late,
instances, translations), the learner's loss and per-instance accuracy by hand, the config's
pairing of online episodes with the mann learner, and the preset through `tinymeta train`,
resumed and evaluated like every run."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import functional as F
from tinymeta.algorithms import ALGORITHMS, MANNLearner, Objective, accuracy_by_instance
from tinymeta.data.omniglot import OmniglotData
from tinymeta.experiment import PRESETS, Config
from tinymeta.memory import MANN
from tinymeta.tasks import TASK_FAMILIES
from tinymeta.tasks.omniglot_episodes import MAX_SHIFT, SIDE, OmniglotEpisodes, area_resize_matrix

from conftest import OMNIGLOT_DIR


@pytest.fixture(scope="module")
def fake_data():
    """1623 characters x 20 drawings of random 6x6 'images' (the real counts, tiny pictures)."""
    rng = np.random.default_rng(0)
    C = 1623
    images = (rng.random((C, 20, 6, 6)) > 0.6).astype(np.uint8) * 255
    splits = np.array(["images_background"] * 964 + ["images_evaluation"] * 659)
    return OmniglotData(images=images, alphabets=np.array([f"a{c // 20}" for c in range(C)]),
                        characters=np.array([f"character{c % 20:02d}" for c in range(C)]), splits=splits,
                        file_names=np.array([[f"{c:04d}_{d:02d}" for d in range(20)] for c in range(C)]),
                        source="fake", cache_path=None)


@pytest.fixture(scope="module")
def episodes(fake_data):
    return OmniglotEpisodes(5, 10, 10, data=fake_data, dtype="float64")


def test_the_label_at_step_t_is_the_label_of_the_image_before(episodes):
    batch = episodes.sample(4, np.random.default_rng(1))
    x, y = batch.x_query.numpy(), batch.y_query.numpy()
    assert x.shape == (4, 50, SIDE * SIDE + 5) and y.shape == (4, 50) and y.dtype == np.int64
    shown = x[..., SIDE * SIDE:]
    assert np.all(shown[:, 0] == 0)                              # nothing before the first image
    np.testing.assert_array_equal(shown[:, 1:], np.eye(5)[y[:, :-1]])   # y_{t-1} at step t
    assert batch.x_support is batch.x_query and batch.y_support is batch.y_query


def test_an_episode_shows_each_class_k_times_with_distinct_drawings_and_counts_instances(episodes):
    batch = episodes.sample(3, np.random.default_rng(2))
    y, info = batch.y_query.numpy(), batch.info
    for t in range(3):
        assert np.bincount(y[t], minlength=5).tolist() == [10] * 5
        for c in range(5):
            steps = np.flatnonzero(y[t] == c)
            assert info["instance"][t, steps].tolist() == list(range(1, 11))     # 1st, 2nd, ... in order
            assert len(set(info["drawings"][t, steps])) == 10                     # no drawing twice
        assert len(set(info["classes"][t])) == 5
    same = episodes.sample(3, np.random.default_rng(2))
    np.testing.assert_array_equal(same.x_query.numpy(), batch.x_query.numpy())


def test_episodes_draw_their_classes_from_their_split(episodes):
    train = episodes.sample(20, np.random.default_rng(3), "train").info["classes"]
    test = episodes.sample(20, np.random.default_rng(3), "test").info["classes"]
    assert set(train.ravel()) <= set(episodes.pools["train"]) and set(test.ravel()) <= set(episodes.pools["test"])
    assert not set(episodes.pools["train"]) & set(episodes.pools["test"])
    assert len(episodes.pools["train"]) == 1200 and len(episodes.pools["test"]) == 423   # Sec. 4.1


def test_images_are_the_drawings_resized_turned_and_translated(fake_data, episodes):
    batch = episodes.sample(2, np.random.default_rng(4))
    info, y = batch.info, batch.y_query.numpy()
    R = area_resize_matrix(6, SIDE)
    for t in range(2):
        for step in (0, 17, 49):
            c = info["classes"][t, y[t, step]]
            img = R @ (fake_data.images[c, info["drawings"][t, step]] / 255) @ R.T
            img = np.rot90(img, info["rotations"][t, y[t, step]])
            dy, dx = info["shifts"][t, step]
            want = np.zeros((SIDE, SIDE))
            src = img[max(0, -dy):SIDE - max(0, dy), max(0, -dx):SIDE - max(0, dx)]
            want[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src  # zeros shifted in
            np.testing.assert_allclose(batch.x_query.numpy()[t, step, :SIDE * SIDE].reshape(SIDE, SIDE), want,
                                       atol=1e-6)
    assert np.abs(info["shifts"]).max() <= MAX_SHIFT


def test_max_shift_bounds_the_translation_and_zero_leaves_the_drawings_in_place(fake_data):
    """``max_shift`` (Config ``episode_shift``): every shift drawn within it, and with 0 the image is the
    drawing resized and turned, nothing moved; a shift that would move a drawing half out is refused."""
    R = area_resize_matrix(6, SIDE)
    wide = OmniglotEpisodes(5, 10, 10, data=fake_data, dtype="float64", max_shift=4).sample(8, np.random.default_rng(1))
    assert np.abs(wide.info["shifts"]).max() == 4  # 800 draws of 9 values each way: every bound is reached
    still = OmniglotEpisodes(5, 10, 10, data=fake_data, dtype="float64", max_shift=0)
    batch = still.sample(2, np.random.default_rng(4))
    info, y = batch.info, batch.y_query.numpy()
    assert not info["shifts"].any()
    for t, step in ((0, 0), (1, 31)):
        c = info["classes"][t, y[t, step]]
        want = np.rot90(R @ (fake_data.images[c, info["drawings"][t, step]] / 255) @ R.T, info["rotations"][t, y[t, step]])
        np.testing.assert_allclose(batch.x_query.numpy()[t, step, :SIDE * SIDE].reshape(SIDE, SIDE), want, atol=1e-12)
    with pytest.raises(ValueError, match="max_shift must be a whole number of pixels from 0 to 9"):
        OmniglotEpisodes(5, 10, 10, data=fake_data, max_shift=10)


def test_the_config_sets_the_shift_and_refuses_it_where_there_are_no_episodes(fake_data, monkeypatch):
    import tinymeta.data.omniglot
    monkeypatch.setattr(tinymeta.data.omniglot, "load_omniglot", lambda *a, **k: fake_data)
    for shift in (0, 3):
        cfg = PRESETS["lstm-omniglot-5way"].replace(episode_shift=shift).validate()
        assert TASK_FAMILIES[cfg.dataset].from_config(cfg, verbose=False).max_shift == shift
    assert OmniglotEpisodes(5, 10, data=fake_data).max_shift == MAX_SHIFT == Config().episode_shift == 2
    with pytest.raises(ValueError, match="moves the drawings of online episodes; omniglot has none"):
        PRESETS["maml-omniglot-5w1s"].replace(episode_shift=0).validate()


def test_area_resize_averages_equal_cells():
    R = area_resize_matrix(4, 2)
    np.testing.assert_allclose(R, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(area_resize_matrix(28, 20).sum(axis=1), 1.0)


def test_accuracy_by_instance_by_hand():
    # one episode: labels 0 1 0 1, predictions right at steps 0, 2, 3 (argmax of the logits)
    logits = tm.tensor(np.array([[[2.0, 0.0], [3.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]))
    labels = tm.tensor(np.array([[0, 1, 0, 1]]))
    instance = np.array([[1, 1, 2, 2]])
    got = accuracy_by_instance(logits, labels, instance, 2).numpy()
    np.testing.assert_allclose(got, [[0.5], [1.0]])   # 1st drawings: one of two right; 2nd: both


def test_ordinals_and_the_validation_line_name_the_instances_of_table_1():
    from tinymeta.algorithms.mann import ordinal
    from tinymeta.experiment.loop import validation_line
    assert [ordinal(k) for k in (1, 2, 3, 4, 10, 11, 12, 13, 21, 22, 23, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "10th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th"]
    val = {"tasks": 96, "loss": [{"mean": 0.7}], "accuracy": [{"mean": 0.7}],
           "instance_accuracy": [{"mean": m} for m in (0.2, 0.6, 0.7, 0.75, 0.8, 0.8, 0.8, 0.8, 0.8, 0.85)]}
    line = validation_line(val, 500, PRESETS["mann-omniglot-5way"])
    assert line == ("validation at iteration 500/100000 (96 tasks): loss 0.7, accuracy 70.00% "
                    "(1st 20.0%, 2nd 60.0%, 3rd 70.0%, 5th 80.0%, 10th 85.0%)")
    short = dict(val, instance_accuracy=val["instance_accuracy"][:3])  # 3 drawings a class: no 5th, no 10th
    assert validation_line(short, 500, PRESETS["mann-omniglot-5way"]).endswith("(1st 20.0%, 2nd 60.0%, 3rd 70.0%)")


def test_the_learner_loss_is_the_mean_cross_entropy_over_every_step(episodes):
    batch = episodes.sample(2, np.random.default_rng(5))
    model = MANN(inputs=SIDE * SIDE + 5, classes=5, hidden=4, memory_size=8, memory_width=3, heads=2)
    params = model.init_params(0, dtype="float64")
    learner = MANNLearner.from_config(model, Objective("classification"), PRESETS["mann-omniglot-5way"])
    loss, metrics = learner.meta_loss(params, batch)
    logits = model(params, batch.x_query).numpy()
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -np.take_along_axis(logp, batch.y_query.numpy()[..., None], -1).mean()
    assert abs(loss.item() - want) < 1e-12 and list(metrics) == ["query_loss", "query_accuracy"]
    ev = learner.evaluate(params, batch)
    assert ev["loss"].shape == (1, 2) and ev["instance_accuracy"].shape == (10, 2)
    np.testing.assert_allclose(ev["accuracy"][0], ev["instance_accuracy"].mean(axis=0), rtol=1e-12)  # 5 per row
    with pytest.raises(ValueError, match="no inner steps"):
        learner.evaluate(params, batch, steps=3)


def test_a_few_steps_on_one_batch_lower_the_loss(episodes):
    """The learner's gradient is a descent direction for the whole episode's loss (a tiny MANN, float64)."""
    batch = episodes.sample(2, np.random.default_rng(6))
    model = MANN(inputs=SIDE * SIDE + 5, classes=5, hidden=6, memory_size=8, memory_width=4, heads=1)
    params = model.init_params(1, dtype="float64")
    learner = MANNLearner(model, Objective("classification"), inner_lr=0.0, inner_steps=0)
    opt = tm.optim.Adam(params, lr=0.01)
    first = None
    for _ in range(5):
        grads, metrics = learner.meta_gradient(params, batch)
        first = metrics["query_loss"].item() if first is None else first
        opt.step(grads)
    assert learner.meta_loss(params, batch)[0].item() < first - 0.05


@pytest.mark.parametrize("change, message", [
    (dict(dataset="omniglot"), "mann learns online episodes"),
    (dict(algorithm="maml", inner_steps=1), "use --algorithm mann"),
    (dict(eval_inner_steps=5), "must be 0"),
    (dict(queries=5), "queries .* must equal shots"),
    (dict(shots=21, queries=21), "Omniglot has 20"),
    (dict(memory_heads=-1), "memory_heads"),
    (dict(hidden=(200, 200)), "one number"),
    (dict(mann_write="erase"), "mann_write .* must be one of key, add"),
    (dict(mann_write="add", memory_heads=0), "needs --algorithm mann with --memory-heads 1 or more"),
    (dict(mann_least_used="most"), "mann_least_used .* must be one of each, all"),
    (dict(mann_least_used="all", memory_heads=0), "mann_least_used .* needs --algorithm mann with --memory-heads"),
    (dict(episode_shift=-1), "episode_shift"),
    (dict(episode_shift=10), "episode_shift .* must be from 0 to 9 pixels"),
])
def test_the_config_refuses_what_episodes_cannot_serve(change, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["mann-omniglot-5way"].replace(**change).validate()


def test_presets_are_the_papers_setting_and_cite_their_sources():
    from tinymeta.experiment.presets import preset_source
    mann, lstm = PRESETS["mann-omniglot-5way"], PRESETS["lstm-omniglot-5way"]
    assert (mann.ways, mann.shots, mann.meta_batch, mann.meta_lr, mann.hidden, mann.memory_heads) == \
        (5, 10, 16, 1e-3, (200,), 4)
    assert lstm == mann.replace(memory_heads=0)
    # Fig. 2's 100,000 episodes, counted as both reimplementations count them: updates of 16 episodes
    assert mann.iterations == PRESETS["mann-add-omniglot-5way"].iterations == 100000
    assert "'Episode'" in preset_source("mann-omniglot-5way")["settings"]["iterations"]
    assert Config().memory_heads == 4 and all(p.memory_heads == 4 for n, p in PRESETS.items() if n != "lstm-omniglot-5way")
    src = preset_source("lstm-omniglot-5way")
    assert "Table 1" in src["paper"] and src["paper_value"].startswith("LSTM") and "ntm-one-shot" in src["code"]
    model = TASK_FAMILIES[mann.dataset].build_model(mann)
    assert (model.hidden, model.memory_size, model.memory_width, model.heads, model.inputs) == (200, 128, 40, 4, 405)
    assert model.write == "key" and TASK_FAMILIES[mann.dataset].build_model(mann.replace(mann_write="add")).write == "add"
    assert model.least_used_to == "each" and TASK_FAMILIES[mann.dataset].build_model(
        mann.replace(mann_least_used="all")).least_used_to == "all"


@pytest.mark.slow
def test_the_preset_trains_resumes_and_evaluates_through_the_cli(tmp_path, omniglot_cache):
    """`tinymeta train --preset mann-omniglot-5way` as a user types it (tiny: 2 episodes a batch, 2 + 1
    iterations), then --resume, then `tinymeta evaluate`: the per-instance table is printed and saved."""
    env = {**os.environ, "TINYMETA_CACHE": str(omniglot_cache), "OPENBLAS_NUM_THREADS": "1"}
    logdir = tmp_path / "mann"
    common = ["--logdir", str(logdir), "--data-dir", str(OMNIGLOT_DIR), "--no-progress"]

    def tinymeta(*argv):
        return subprocess.run([sys.executable, "-m", "tinymeta", *argv], capture_output=True, text=True, env=env,
                              timeout=300)
    first = tinymeta("train", "--preset", "lstm-omniglot-5way", "--iterations", "3", "--stop-at", "2",
                     "--meta-batch", "2", "--log-interval", "1", "--val-interval", "1", "--val-tasks", "4",
                     "--test-tasks", "4", "--episode-shift", "0", *common)
    assert first.returncode == 0, first.stderr
    assert json.loads((logdir / "config.json").read_text())["episode_shift"] == 0
    # validation logs the accuracy at each instance too; every class shows 10 times, so their mean is the accuracy
    val = [json.loads(line) for line in (logdir / "log.jsonl").read_text().splitlines()]
    val = [r for r in val if r["split"] == "val"]
    assert [r["iteration"] for r in val] == [1, 2]
    for r in val:
        assert len(r["instance_accuracy"]) == 10 and all(0 <= a <= 1 for a in r["instance_accuracy"])
        assert np.mean(r["instance_accuracy"]) == pytest.approx(r["accuracy"][0], abs=1e-6)
    plot = tinymeta("plot", str(logdir), "--out", str(tmp_path / "curves.png"))
    assert plot.returncode == 0, plot.stderr
    from PIL import Image
    with Image.open(tmp_path / "curves.png") as im:  # three rows of panels: loss, accuracy, by instance
        assert im.size[1] == pytest.approx(3 * 3.6 * 110, abs=2)
    assert "continue with" in first.stdout
    second = tinymeta("train", "--resume", "--logdir", str(logdir), "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "accuracy at the k-th drawing of a class" in second.stdout
    test = json.loads((logdir / "test.json").read_text())
    assert len(test["instance_accuracy"]) == 10 and test["tasks"] == 4 and test["iteration"] == 3
    ev = tinymeta("evaluate", "--logdir", str(logdir))
    assert ev.returncode == 0 and "accuracy at the k-th drawing" in ev.stdout, ev.stderr
    wrong = tinymeta("train", "--preset", "mann-omniglot-5way", "--eval-inner-steps", "3", "--logdir",
                     str(tmp_path / "x"), "--no-progress")
    assert wrong.returncode == 2 and "must be 0" in wrong.stderr and "Traceback" not in wrong.stderr
    no_memory = tinymeta("train", "--preset", "lstm-omniglot-5way", "--mann-least-used", "all", "--logdir",
                         str(tmp_path / "y"), "--no-progress")
    assert no_memory.returncode == 2 and "--mann-least-used" in no_memory.stderr, no_memory.stderr


def test_a_mann_meta_iteration_never_synchronises(gpu_device, episodes):
    """On a GPU (or the CuPy emulator), an update of the MANN on episodes reads nothing back from the device."""
    from test_cuda_path import no_sync
    batch = episodes.sample(2, np.random.default_rng(7))
    batch = type(batch)(*(tm.tensor(a.numpy(), device=gpu_device) for a in (batch.x_support, batch.y_support,
                                                                           batch.x_query, batch.y_query)), batch.info)
    model = MANN(inputs=SIDE * SIDE + 5, classes=5, hidden=4, memory_size=8, memory_width=3, heads=2)
    params = model.init_params(0, device=gpu_device)
    learner = MANNLearner(model, Objective("classification"), inner_lr=0.0, inner_steps=0)
    opt = tm.optim.Adam(params, lr=1e-3)
    with no_sync():
        for _ in range(2):
            grads, metrics = learner.meta_gradient(params, batch)
            opt.step(grads)
    assert all(v.device == "cuda" for v in metrics.values()) and all(p.device == "cuda" for p in params.values())
