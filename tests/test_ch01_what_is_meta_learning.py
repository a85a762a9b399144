"""Chapter 1's checkers (sampling an N-way K-shot task; unrolling a learned optimiser): the reference
solutions pass, typical mistakes fail with a message that names them."""
import numpy as np
import pytest
from exercise_helpers import assert_fails, assert_not_attempted, assert_passes

import tinymeta as tm
from chapters.solutions import ch01_what_is_meta_learning as solution
from tinymeta.algorithms import learned_optimizer
from tinymeta.exercises.ch01_what_is_meta_learning import _unroll_variant, check_sample_task, check_unroll

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


# ---- chapter 1, Exercise 5: a learned optimiser's unroll ---------------------------------------------
def test_unroll_reference_passes(capsys):
    assert_passes(check_unroll, solution.unroll, capsys)


def test_unroll_library_function_passes(capsys):
    assert_passes(check_unroll, lambda *args: learned_optimizer.unroll(*args), capsys)


def test_unroll_not_attempted(capsys):
    assert_not_attempted(check_unroll, 6, capsys)


def variant(**flags):
    """The reference unroll with one known mistake."""
    return lambda *args: _unroll_variant(*args, **flags)


def not_detached(optimizer, params, problem, theta, state, steps):
    """What a student writes who differentiates f at theta itself, keeping the graph."""
    theta = theta.detach().requires_grad_()
    meta_loss = 0.0
    for _ in range(steps):
        gradient = tm.grad(problem.losses(theta).sum(), theta, create_graph=True)
        update, state = optimizer(params, gradient, state)
        theta = theta + update
        meta_loss = meta_loss + problem.losses(theta).mean()
    return meta_loss, theta, state


def detached_meta_loss(optimizer, params, problem, theta, state, steps):
    meta_loss, theta, state = learned_optimizer.unroll(optimizer, params, problem, theta, state, steps)
    return meta_loss.detach(), theta, state


@pytest.mark.parametrize("fn, message", [
    (not_detached, "the meta-gradient runs through the optimisee's gradient"),
    (variant(second_order=True), "treats that gradient as a constant"),
    (variant(detach_theta=True), "detach the optimisee's gradient, not theta"),
    (variant(final_only=True), "eq. 3 sums f(theta_t) over every step"),
    (variant(include_first=True), "also counts f(theta_0)"),
    (variant(before_update=True), "each loss is taken before the step"),
    (variant(sum_functions=True), "summed over the functions"),
    (variant(carry_state=False), "carry the LSTM state"),
    (variant(sign=-1.0), "theta moved by -g_t"),
    (detached_meta_loss, "meta_loss does not depend on params"),
    (lambda *a: learned_optimizer.unroll(*a)[:2], "should return three things"),
    (lambda *a: (learned_optimizer.unroll(*a)[1],) * 3, "meta_loss should be a scalar Tensor"),
])
def test_unroll_mistakes_are_named(fn, message, capsys):
    assert_fails(check_unroll, fn, message, capsys)


def test_an_unknown_mistake_is_reported_by_the_quantity_that_differs(capsys):
    def scaled(*args):
        meta_loss, theta, state = learned_optimizer.unroll(*args)
        return meta_loss * 1.5, theta, state
    assert_fails(check_unroll, scaled, "the unroll's answer['meta_loss'] is wrong", capsys)
