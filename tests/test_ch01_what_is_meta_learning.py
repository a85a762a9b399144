"""Chapter 1's checker (sampling an N-way K-shot task): the reference solution passes, typical mistakes
fail with a message that names them."""
import numpy as np
import pytest
from exercise_helpers import assert_fails

from chapters.solutions import ch01_what_is_meta_learning as solution
from tinymeta.exercises.ch01_what_is_meta_learning import check_sample_task

pytestmark = pytest.mark.ch01


# ---- chapter 1: an N-way K-shot task ---------------------------------------------------------------
def test_sample_task_reference_passes():
    assert check_sample_task(solution.sample_task) is True
    check_sample_task(solution.sample_task, raise_on_failure=True)


def test_sample_task_not_attempted(capsys):
    def stub(labels, n_way, k_shot, n_query, rng):
        raise NotImplementedError("Exercise 1")
    assert check_sample_task(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def overlapping(labels, n_way, k_shot, n_query, rng):
    """Support and query drawn independently: they can share examples."""
    classes = rng.choice(np.unique(labels), n_way, replace=False)
    s, q = [], []
    for c in classes:
        pool = np.flatnonzero(labels == c)
        s.append(rng.choice(pool, k_shot, replace=False))
        q.append(pool[:n_query])
    ys, yq = np.repeat(np.arange(n_way), k_shot), np.repeat(np.arange(n_way), n_query)
    return np.concatenate(s), ys, np.concatenate(q), yq


def class_ids_as_labels(labels, n_way, k_shot, n_query, rng):
    s_idx, _, q_idx, _ = solution.sample_task(labels, n_way, k_shot, n_query, rng)
    return s_idx, labels[s_idx], q_idx, labels[q_idx]


def unbalanced(labels, n_way, k_shot, n_query, rng):
    """Examples drawn from the union of the chosen classes: some classes get more than K."""
    classes = rng.choice(np.unique(labels), n_way, replace=False)
    pool = rng.permutation(np.flatnonzero(np.isin(labels, classes)))
    s_idx, q_idx = pool[:n_way * k_shot], pool[n_way * k_shot:n_way * (k_shot + n_query)]
    relabel = {c: i for i, c in enumerate(classes)}
    return s_idx, np.array([relabel[c] for c in labels[s_idx]]), q_idx, np.array([relabel[c] for c in labels[q_idx]])


def grid_shape(labels, n_way, k_shot, n_query, rng):
    s_idx, s_y, q_idx, q_y = solution.sample_task(labels, n_way, k_shot, n_query, rng)
    return s_idx.reshape(n_way, k_shot), s_y.reshape(n_way, k_shot), q_idx, q_y


def sorted_labels(labels, n_way, k_shot, n_query, rng):
    """Random classes, but labelled in the order of their ids."""
    classes = np.sort(rng.choice(np.unique(labels), n_way, replace=False))
    return _label_in_order(labels, classes, k_shot, n_query, rng)


def _label_in_order(labels, classes, k, q, rng):
    s, q_, ys, yq = [], [], [], []
    for i, c in enumerate(classes):
        ex = rng.choice(np.flatnonzero(labels == c), k + q, replace=False)
        s.append(ex[:k])
        q_.append(ex[k:])
        ys.append(np.full(k, i))
        yq.append(np.full(q, i))
    return np.concatenate(s), np.concatenate(ys), np.concatenate(q_), np.concatenate(yq)


def same_classes(labels, n_way, k_shot, n_query, rng):
    """Always the first n_way classes."""
    classes = np.unique(labels)[:n_way]
    return _label_in_order(labels, classes[rng.permutation(n_way)], k_shot, n_query, rng)


def ignores_its_rng(labels, n_way, k_shot, n_query, rng):
    """An unseeded generator of its own: right-looking tasks that no seed reproduces."""
    return solution.sample_task(labels, n_way, k_shot, n_query, np.random.default_rng())


def global_numpy_random(labels, n_way, k_shot, n_query, rng):
    """np.random's global state instead of the rng it was given."""
    return solution.sample_task(labels, n_way, k_shot, n_query, np.random.default_rng(np.random.randint(2 ** 31)))


@pytest.mark.parametrize("fn, message", [
    (ignores_its_rng, "two generators made with the same seed gave different tasks"),
    (global_numpy_random, "not from np.random or a generator of your own"),
    (overlapping, "the support and query sets share examples"),
    (class_ids_as_labels, "look like the data set's class ids"),
    (unbalanced, "a balanced task"),
    (grid_shape, "support_idx has shape (5, 1), expected (5,)"),
    (sorted_labels, "in random order"),
    (same_classes, "choose the classes at random"),
])
def test_sample_task_mistakes_are_named(fn, message, capsys):
    assert_fails(check_sample_task, fn, message, capsys)
