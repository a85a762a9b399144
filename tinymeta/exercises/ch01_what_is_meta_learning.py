"""Chapter 1 exercises: sample an N-way K-shot task from a labelled data set (Exercise 1), and
unroll a learned optimiser for truncated backpropagation through time (Exercise 5).

The student writes ``sample_task(labels, n_way, k_shot, n_query, rng)``:
``labels`` (M,) holds the class id of each of the data set's M examples. Pick
``n_way`` distinct classes at random, give them the task labels 0..n_way-1 in
random order, and draw ``k_shot + n_query`` distinct examples of each class;
return ``(support_idx, support_y, query_idx, query_y)``, flat int arrays of
n_way*k_shot and n_way*n_query entries.

Sampling is random, so the checker tests properties rather than values:
shapes, indices in range, no example twice, support and query disjoint, every
label exactly K (Q) times, one class per label and one label per class, that
different generators give different classes, and that generators with the same
seed give the same task (the sampler draws from the rng it is given).

Exercise 5: the student writes ``unroll(optimizer, params, problem, theta, state, steps)``,
``steps`` steps of a learned optimiser theta_{t+1} = theta_t + g_t with the optimisee's gradient
as a constant, returning ``(meta_loss, theta, state)`` with meta_loss = sum_{t=1}^T mean_i
f_i(theta_t) (Andrychowicz et al. 2016, eq. 3). The checker compares the meta-loss, the final
theta and state, and the meta-gradient d meta_loss / d params with
:func:`tinymeta.algorithms.learned_optimizer.unroll`, and names the usual mistakes.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import learned_optimizer as l2l
from ..autograd import grad
from ..nn import LSTMOptimizer
from ..tensor import Tensor
from ._check import Mismatch, as_array, diagnose, run_checker


def _dataset(seed: int, n_classes: int, per_class: tuple[int, int]):
    """Example labels with scattered class ids, uneven class sizes and shuffled order."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(100, 1000), size=n_classes, replace=False)
    sizes = rng.integers(per_class[0], per_class[1] + 1, size=n_classes)
    labels = np.repeat(ids, sizes)
    return labels[rng.permutation(labels.size)].astype(np.int64)


def _int_array(value, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.numpy()
    if value is None:
        raise Mismatch(f"{what} is None: did the function forget to return it?")
    a = np.asarray(value)
    if a.dtype.kind == "f" and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise Mismatch(f"{what} should hold integers (indices or labels), got dtype {a.dtype}")
    return a


def _check_one(out, labels, n_way, k, q, what):
    if not isinstance(out, (tuple, list)) or len(out) != 4:
        raise Mismatch("the function should return four arrays: (support_idx, support_y, query_idx, query_y)")
    names = ("support_idx", "support_y", "query_idx", "query_y")
    s_idx, s_y, q_idx, q_y = (_int_array(v, n) for v, n in zip(out, names))
    for arr, name, n in ((s_idx, "support_idx", n_way * k), (s_y, "support_y", n_way * k),
                         (q_idx, "query_idx", n_way * q), (q_y, "query_y", n_way * q)):
        if arr.shape != (n,):
            raise Mismatch(f"on {what}: {name} has shape {arr.shape}, expected ({n},) "
                           f"(n_way * {'k_shot' if name.startswith('support') else 'n_query'}, one flat array)")
    M = labels.size
    for arr, name in ((s_idx, "support_idx"), (q_idx, "query_idx")):
        if arr.min() < 0 or arr.max() >= M:
            raise Mismatch(f"on {what}: {name} holds {arr.min() if arr.min() < 0 else arr.max()}, not an index "
                           f"into the data set's {M} examples")
        if np.unique(arr).size != arr.size:
            dup = int(next(i for i in arr if (arr == i).sum() > 1))
            raise Mismatch(f"on {what}: example {dup} appears twice in {name}: draw the examples of a class "
                           "without replacement")
    shared = np.intersect1d(s_idx, q_idx)
    if shared.size:
        raise Mismatch(f"on {what}: the support and query sets share examples {shared[:5].tolist()}: the query "
                       "set must be new examples of the same classes (draw k_shot + n_query examples of each class "
                       "at once, without replacement, and split them)")
    for arr, name in ((s_y, "support_y"), (q_y, "query_y")):
        if arr.min() < 0 or arr.max() >= n_way:
            hint = ""
            if np.isin(arr, labels).all():
                hint = ("; these look like the data set's class ids: relabel each task's classes "
                        f"0..{n_way - 1}, a task's own labels")
            raise Mismatch(f"on {what}: {name} holds labels outside 0..{n_way - 1} "
                           f"(got values from {arr.min()} to {arr.max()}){hint}")
    for arr, name, n in ((s_y, "support_y", k), (q_y, "query_y", q)):
        counts = np.bincount(arr, minlength=n_way)
        bad = int(np.argmax(counts != n))
        if counts[bad] != n:
            raise Mismatch(f"on {what}: label {bad} appears {counts[bad]} times in {name}, expected {n}: "
                           f"every class gets exactly {'k_shot' if name == 'support_y' else 'n_query'} examples "
                           "(a balanced task)")
    classes = {}
    for idx, y, name in ((s_idx, s_y, "support"), (q_idx, q_y, "query")):
        for c in range(n_way):
            found = np.unique(labels[idx[y == c]])
            if found.size != 1:
                raise Mismatch(f"on {what}: the {name} examples with label {c} come from {found.size} different "
                               f"classes {found[:5].tolist()}: all examples of one task label must be one class")
            if c in classes and classes[c] != found[0]:
                raise Mismatch(f"on {what}: label {c} is class {classes[c]} in the support set but class "
                               f"{found[0]} in the query set: a class keeps its label across support and query")
            classes[c] = int(found[0])
    if len(set(classes.values())) != n_way:
        raise Mismatch(f"on {what}: two labels name the same class ({sorted(classes.values())}): pick n_way "
                       "distinct classes")
    return [classes[c] for c in range(n_way)], s_idx


def check_sample_task(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(labels, n_way, k_shot, n_query, rng) -> (support_idx, support_y, query_idx, query_y)``.

    labels is a NumPy int64 array (M,) of class ids; rng a numpy.random.Generator.
    """

    def body():
        cases = [("a 5-way 1-shot task with 3 queries per class", _dataset(0, 12, (6, 9)), 5, 1, 3),
                 ("a 3-way 4-shot task with 2 queries per class", _dataset(1, 7, (6, 8)), 3, 4, 2),
                 ("a 4-way 2-shot task with 5 queries per class", _dataset(2, 9, (7, 12)), 4, 2, 5)]
        for what, labels, n_way, k, q in cases:
            chosen, first_support = [], []
            for seed in range(12):
                out = student_fn(labels.copy(), n_way, k, q, np.random.default_rng(seed))
                cls, s_idx = _check_one(out, labels, n_way, k, q, what)
                chosen.append(cls)
                first_support.append(s_idx)
            again = student_fn(labels.copy(), n_way, k, q, np.random.default_rng(0))
            _check_one(again, labels, n_way, k, q, what)
            if not _same_task(again, student_fn(labels.copy(), n_way, k, q, np.random.default_rng(0))):
                raise Mismatch(f"on {what}: two generators made with the same seed gave different tasks: draw every "
                               "random choice from the rng the function is given (rng.choice, rng.permutation), not "
                               "from np.random or a generator of your own, so that a seed reproduces a task")
            if len({tuple(sorted(c)) for c in chosen}) == 1:
                raise Mismatch(f"on {what}: 12 different generators all picked the classes {sorted(chosen[0])}: "
                               "choose the classes at random with rng (e.g. rng.choice(classes, n_way, "
                               "replace=False))")
            if all(c == sorted(c) for c in chosen):
                raise Mismatch(f"on {what}: label 0 is always the smallest class id, label 1 the next, ...: give "
                               "the chosen classes the labels 0..n_way-1 in random order, so that a label says "
                               "nothing about which class it is")
            if _same_examples_per_class(labels, first_support):
                raise Mismatch(f"on {what}: every time a class is chosen, its support set is the same examples: "
                               "draw the examples of each class at random too")

    return run_checker("check_sample_task", body, raise_on_failure)


def _same_task(a, b) -> bool:
    """True when two answers hold the same four arrays."""
    return all(np.array_equal(_int_array(x, "an array"), _int_array(y, "an array")) for x, y in zip(a, b))


def _same_examples_per_class(labels, supports) -> bool:
    """True when each class always contributes the same support examples across the draws."""
    seen = {}
    for s_idx in supports:
        for c in np.unique(labels[s_idx]):
            ex = tuple(sorted(s_idx[labels[s_idx] == c].tolist()))
            seen.setdefault(int(c), set()).add(ex)
    repeated = [c for c, v in seen.items() if sum(1 for s in supports if c in labels[s]) > 1]
    return bool(repeated) and all(len(seen[c]) == 1 for c in repeated)


# ---- Exercise 5: the unrolled optimisation of a learned optimiser ---------------------------------------
def _unroll_variant(optimizer, params, problem, theta, state, steps, *, second_order=False, final_only=False,
                    include_first=False, before_update=False, sum_functions=False, carry_state=True, sign=1.0,
                    detach_theta=False):
    """The reference unroll, or one of the known mistakes (each flag one of them)."""
    if second_order:
        theta = theta.detach().requires_grad_()
    start_state = state
    losses = []
    reduce = (lambda v: v.sum()) if sum_functions else (lambda v: v.mean())
    if include_first:
        losses.append(reduce(problem.losses(theta)))
    for _ in range(steps):
        gradient = l2l.optimisee_gradient(problem, theta, second_order)
        if before_update:
            losses.append(reduce(problem.losses(theta)))
        update, new_state = optimizer(params, gradient, state if carry_state else start_state)
        state = new_state
        theta = (theta.detach() if detach_theta else theta) + update * sign
        if not before_update:
            losses.append(reduce(problem.losses(theta)))
    if final_only:
        losses = losses[-1:]
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total, theta, state


_UNROLL_MISTAKES = [
    ({"second_order": True},
     "the meta-gradient runs through the optimisee's gradient grad f(theta_t) (second derivatives). The paper "
     "treats that gradient as a constant (Sec. 2.1, the dashed edges of Fig. 2): compute it at a detached copy, "
     "point = theta.detach().requires_grad_(); g = tm.grad(problem.losses(point).sum(), point), or call "
     "optimisee_gradient(problem, theta)"),
    ({"detach_theta": True},
     "theta itself was detached at every step, so the meta-loss sees only the last update: detach the "
     "optimisee's gradient, not theta (theta_{t+1} = theta_t + g_t must stay a function of params through every "
     "earlier step)"),
    ({"final_only": True},
     "the meta-loss is only f(theta_T): eq. 3 sums f(theta_t) over every step t = 1..T (w_t = 1), which gives the "
     "optimiser a signal at every step, not just the last"),
    ({"include_first": True},
     "the meta-loss also counts f(theta_0), which no step of this piece changed: sum f(theta_1) .. f(theta_T)"),
    ({"before_update": True},
     "each loss is taken before the step (f(theta_0) .. f(theta_{T-1})): take it after theta_{t+1} = theta_t + "
     "g_t, so that the last step is scored too"),
    ({"sum_functions": True},
     "each step's loss is summed over the functions: take the mean over them, problem.losses(theta).mean()"),
    ({"carry_state": False},
     "every step starts from the state passed in: carry the LSTM state from step to step "
     "(update, state = optimizer(params, g, state)), it is the optimiser's memory"),
    ({"sign": -1.0},
     "theta moved by -g_t: the network outputs the step itself, sign included, so theta_{t+1} = theta_t + g_t "
     "(paper eq. 1)"),
]


def _unroll_setup():
    optimizer = LSTMOptimizer(hidden_size=3, output_scale=0.5)
    params = optimizer.init_params(0, dtype="float64")
    rng = np.random.default_rng(5)
    problem = l2l.Quadratics.sample(3, rng, dims=4)
    theta = problem.initial_theta(rng, std=0.5)
    return optimizer, params, problem, theta


def _unroll_answer(fn, optimizer, params, problem, theta, steps, who):
    """{meta_loss, theta, h, c, d/<param>} of one unroll, or a Mismatch saying what is off."""
    out = fn(optimizer, params, problem, theta, optimizer.initial_state(theta), steps)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise Mismatch("unroll should return three things: (meta_loss, theta, state)")
    meta_loss, theta_T, state = out
    if not isinstance(meta_loss, Tensor) or meta_loss.size != 1:
        raise Mismatch(f"meta_loss should be a scalar Tensor (one number), got {type(meta_loss).__name__}"
                       + (f" of shape {meta_loss.shape}" if isinstance(meta_loss, Tensor) else ""))
    if not meta_loss.requires_grad:
        raise Mismatch("meta_loss does not depend on params (was it computed under no_grad, or from detached "
                       "values?): only the optimisee's gradient is a constant, theta_t stays in the graph")
    grads = grad(meta_loss, params, allow_unused=True)
    if all(g is None for g in grads.values()):
        raise Mismatch("meta_loss does not depend on params: theta_{t+1} = theta_t + g_t with g_t from "
                       "optimizer(params, gradient, state), so params reach every later f(theta_t)")
    try:
        (h, c) = state[-1]
    except (TypeError, ValueError, IndexError):
        raise Mismatch("the returned state should be the optimiser's state, a list of (h, c) pairs, as "
                       "optimizer(params, g, state) returns it") from None
    answer = {"meta_loss": as_array(meta_loss, f"{who} meta_loss").reshape(()),
              "theta": as_array(theta_T, f"{who} theta"), "h": as_array(h, f"{who} h"), "c": as_array(c, f"{who} c")}
    for k, g in grads.items():
        answer[f"d meta_loss / d {k}"] = np.zeros(params[k].shape) if g is None else g.numpy()
    return answer


def check_unroll(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(optimizer, params, problem, theta, state, steps) -> (meta_loss, theta, state)``.

    ``optimizer`` is a :class:`tinymeta.nn.LSTMOptimizer` with weights ``params``, ``problem`` a
    batch of :class:`tinymeta.algorithms.learned_optimizer.Quadratics`, ``theta`` (N, d), ``state``
    from ``optimizer.initial_state(theta)``. Run in float64 for 3 steps and for 1.
    """

    def body():
        for steps in (3, 1):
            optimizer, params, problem, theta = _unroll_setup()
            ref = _unroll_answer(_unroll_variant, optimizer, params, problem, theta, steps, "reference")
            got = _unroll_answer(student_fn, optimizer, params, problem, theta, steps, "your")
            if got["theta"].shape != ref["theta"].shape:
                raise Mismatch(f"the returned theta has shape {got['theta'].shape}, expected {ref['theta'].shape} "
                               "(one row per function)")
            mistakes = []
            for flags, hint in _UNROLL_MISTAKES:
                try:
                    wrong = _unroll_answer(lambda *a, flags=flags: _unroll_variant(*a, **flags), optimizer, params,
                                           problem, theta, steps, "variant")
                except Mismatch:    # e.g. scoring f(theta_0) alone: nothing to differentiate after one step
                    continue
                mistakes.append((wrong, hint))
            diagnose(got, ref, mistakes, f"after {steps} step{'s' if steps > 1 else ''}: the unroll's answer",
                     rtol=1e-8, atol=1e-12)

    return run_checker("check_unroll", body, raise_on_failure)


__all__ = ["check_sample_task", "check_unroll"]
