"""Chapter 9 (recent advances): section 9.1's exercise, NIL, classification without a head
(Raghu et al. 2020, arXiv:1909.09157, Sec. 5.1), and section 9.2's, TAML's two regularisers
(Jamal & Qi 2019, arXiv:1805.07722; :func:`check_taml_regularisers`), and section 9.4's, MAML++'s multi-step
loss weights (Antoniou et al. 2019, arXiv:1810.09502; :func:`check_msl_weights`).

The student writes ``nil_classify(fs, ys, fq, n_way) -> (scores, predictions)``:
for each task, the score of query q for class c is the mean cosine similarity
of q's features to the support features of class c, and the prediction is the
class with the highest score. The checker compares with
:func:`tinymeta.algorithms.nil_predict` and recognises dot products in place of
cosine similarities, sums in place of means (the paper's own form: same predictions
in balanced tasks, and the hint says so), and an argmax over the wrong axis.
"""
from __future__ import annotations

import numpy as np

from ..algorithms import nil_predict
from ..algorithms.maml_plus_plus import multi_step_loss_weights
from ..tensor import tensor
from ._check import Mismatch, as_array, compare, run_checker


def _case(seed, T, n_way, shots, Q, D):
    """Features whose norms vary a lot, so that dot products and cosines rank classes differently."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(T, n_way, D))
    ys = np.stack([rng.permutation(np.repeat(np.arange(n_way), shots)) for _ in range(T)])
    scale = rng.uniform(0.2, 5.0, size=(T, n_way * shots, 1))
    fs = (np.take_along_axis(protos, ys[..., None], axis=1) + 0.7 * rng.normal(size=(T, n_way * shots, D))) * scale
    yq = rng.integers(0, n_way, size=(T, Q))
    fq = (np.take_along_axis(protos, yq[..., None], axis=1) + 0.7 * rng.normal(size=(T, Q, D))) \
        * rng.uniform(0.2, 5.0, size=(T, Q, 1))
    return fs, ys.astype(np.int64), fq


def _reference(fs, ys, fq, n_way):
    scores = nil_predict(tensor(fs), tensor(ys), tensor(fq), n_way).numpy()
    return scores, scores.argmax(axis=-1)


def _dot_scores(fs, ys, fq, n_way):
    onehot = np.eye(n_way)[ys]                                   # (T, S, C)
    return (fq @ np.swapaxes(fs, 1, 2)) @ onehot / onehot.sum(axis=1, keepdims=True)


def check_nil_predict(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(fs, ys, fq, n_way) -> (scores (T, Q, n_way), predictions (T, Q))``.

    fs (T, S, D) float64 support features, ys (T, S) int64 labels in [0, n_way),
    fq (T, Q, D) float64 query features (NumPy arrays).
    """

    def body():
        cases = [("a 5-way 1-shot case", _case(0, 3, 5, 1, 7, 6)),
                 ("a 3-way 4-shot case", _case(1, 2, 3, 4, 10, 8))]
        for what, (fs, ys, fq) in cases:
            n_way = int(ys.max()) + 1
            out = student_fn(fs.copy(), ys.copy(), fq.copy(), n_way)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise Mismatch("the function should return two things: (scores, predictions)")
            got_scores, got_pred = as_array(out[0], "scores"), as_array(out[1], "predictions")
            scores, pred = _reference(fs, ys, fq, n_way)
            if got_scores.shape != scores.shape:
                raise Mismatch(f"on {what}: scores have shape {got_scores.shape}, expected {scores.shape} "
                               "(tasks, queries, classes)")
            if np.all(np.isfinite(got_scores)) and not np.allclose(got_scores, scores, rtol=1e-6, atol=1e-9):
                if np.allclose(got_scores, _dot_scores(fs, ys, fq, n_way), rtol=1e-6, atol=1e-9):
                    raise Mismatch(f"on {what}: the scores are dot products of the features; NIL uses the cosine "
                                   "similarity (divide by both features' norms), so a feature's length does not "
                                   "decide the class")
                shots = np.eye(n_way)[ys].sum(axis=1)[:, None, :]          # (T, 1, C)
                if np.allclose(got_scores, scores * shots, rtol=1e-6, atol=1e-9):
                    raise Mismatch(f"on {what}: the scores sum the similarities over a class's support examples. "
                                   "That is the paper's own form (support labels weighted by the similarities, as "
                                   "in matching networks), and in a balanced task, where every class has the same "
                                   "number of shots, it predicts the same classes as the mean; this exercise asks "
                                   "for the mean (divide by each class's number of support examples) so that scores "
                                   "compare across shots")
            compare(got_scores, scores, f"scores on {what}")
            if got_pred.shape != pred.shape:
                hint = ""
                if got_pred.shape == scores.shape[:1] + scores.shape[2:] or got_pred.shape == scores.shape[1:]:
                    hint = ": the argmax ran over the wrong axis; take it over the classes (the last axis)"
                raise Mismatch(f"on {what}: predictions have shape {got_pred.shape}, expected {pred.shape} "
                               f"(tasks, queries){hint}")
            if not np.array_equal(got_pred, pred):
                t, q = (int(i) for i in np.argwhere(got_pred != pred)[0])
                raise Mismatch(f"on {what}: task {t}, query {q} is predicted {got_pred[t, q]:g}, expected class "
                               f"{pred[t, q]} (the class with the highest score)")

    return run_checker("check_nil_predict", body, raise_on_failure)


# ---- section 9.2: TAML's two regularisers (Jamal & Qi 2019, arXiv:1805.07722) ------------------------
def _taml_case(seed, T, N, C):
    """Logits of the initial and the adapted model (T tasks, N examples, C classes) and T unequal task losses."""
    rng = np.random.default_rng(seed)
    before = rng.normal(scale=0.5, size=(T, N, C))
    after = rng.normal(scale=3.0, size=(T, N, C))                  # sharper: the adapted model is more confident
    losses = rng.uniform(0.2, 3.0, size=T)
    return before, after, losses


def _np_entropy(logits, axis=-1):
    z = logits - logits.max(axis=axis, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(axis=axis)


def _taml_reference(before, after, losses):
    from ..algorithms.taml import entropy, theil
    h_before, h_after = entropy(tensor(before)).numpy(), entropy(tensor(after)).numpy()
    return float((h_after - h_before).mean()), float(theil(tensor(losses)).item())


def _close(a, b):
    return bool(np.isfinite(a)) and abs(a - b) <= 1e-6 * max(1.0, abs(b))


def check_taml_regularisers(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(logits_before, logits_after, losses_before) -> (entropy_term, theil_index)``.

    logits_before (T, N, C): the initial model f_theta's logits on each task's examples; logits_after (T, N, C):
    the adapted model f_theta_i's; losses_before (T,): each task's loss under the initial model (NumPy float64).
    entropy_term = mean_i [H_i(f_theta_i) - H_i(f_theta)] (the term lambda multiplies, to be minimised: the initial
    model's entropy maximised, the adapted model's reduced), H_i the mean over task i's examples of
    -sum_c p_c ln p_c; theil_index = (1/M) sum_i (l_i / mean(l)) ln(l_i / mean(l)).
    """

    def scalar(value, what):
        a = as_array(value, what)
        if a.size != 1:
            raise Mismatch(f"{what} should be one number (a mean over the tasks), got shape {a.shape}")
        return float(a.reshape(()))

    def body():
        for what, (before, after, losses) in [("a case of 4 tasks, 6 examples, 5 classes", _taml_case(0, 4, 6, 5)),
                                              ("a case of 3 tasks, 2 examples, 3 classes", _taml_case(1, 3, 2, 3))]:
            out = student_fn(before.copy(), after.copy(), losses.copy())
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise Mismatch("the function should return two numbers: (entropy_term, theil_index)")
            got_h, got_t = scalar(out[0], "entropy_term"), scalar(out[1], "theil_index")
            ref_h, ref_t = _taml_reference(before, after, losses)
            h_b, h_a = _np_entropy(before), _np_entropy(after)
            if not _close(got_h, ref_h):
                if _close(got_h, -ref_h):
                    raise Mismatch(f"on {what}: entropy_term has the wrong sign. TAML *maximises* the initial "
                                   "model's entropy (no class favoured before adaptation) and *reduces* the adapted "
                                   "model's, so the term to minimise is H(adapted) - H(initial)")
                if abs(got_h) < 1e-9:
                    raise Mismatch(f"on {what}: entropy_term is 0: both entropies were computed on the same "
                                   "predictions. The maximised one is the initial model's (theta, logits_before), "
                                   "the reduced one the adapted model's (theta_i, logits_after)")
                if _close(got_h, float(-h_b.mean())):
                    raise Mismatch(f"on {what}: entropy_term is -H(initial) alone: the entropy-reduction part, "
                                   "+H of the adapted model's predictions, is missing")
                if _close(got_h, float(-h_a.mean())):
                    raise Mismatch(f"on {what}: entropy_term is -H(adapted): the entropy to maximise is the "
                                   "initial model's (logits_before), not the adapted one's")
                if _close(got_h, ref_h / np.log(2.0)):
                    raise Mismatch(f"on {what}: entropy_term is in bits; use the natural log, as the cross-entropy "
                                   "loss it is added to does")
                if _close(got_h, float((_np_entropy(after, 1) - _np_entropy(before, 1)).mean())):
                    raise Mismatch(f"on {what}: the softmax ran over the examples axis; the probabilities are over "
                                   "the classes (the last axis)")
                if _close(got_h, ref_h * before.shape[1]) or _close(got_h, ref_h * before.shape[0]):
                    raise Mismatch(f"on {what}: entropy_term is a sum where a mean is meant (H_i is the mean over "
                                   "a task's examples, and the term the mean over tasks)")
                compare(got_h, ref_h, f"entropy_term on {what}")
            if not _close(got_t, ref_t):
                mean, m = losses.mean(), losses.shape[0]
                if _close(got_t, float(np.log(mean))) or _close(got_t, float((losses / mean * np.log(mean)).mean())):
                    raise Mismatch(f"on {what}: theil_index took the log of the mean loss; the log is of each "
                                   "task's ratio l_i / mean(l), so that equal losses give 0")
                if _close(got_t, ref_t * mean):
                    raise Mismatch(f"on {what}: theil_index weighs ln(l_i / mean) by l_i; the weight is the ratio "
                                   "l_i / mean(l) too (otherwise the index changes when every loss is scaled)")
                if _close(got_t, ref_t * m):
                    raise Mismatch(f"on {what}: theil_index sums over the tasks; it is the mean (1/M) sum_i")
                if _close(got_t, float((losses / mean * np.log(losses)).mean())):
                    raise Mismatch(f"on {what}: theil_index takes ln l_i; it is ln(l_i / mean(l))")
                compare(got_t, ref_t, f"theil_index on {what}")
        # equal losses: no inequality
        _, t = student_fn(*(_taml_case(2, 3, 2, 3)[:2]), np.full(3, 0.8))
        if abs(scalar(t, "theil_index")) > 1e-9:
            raise Mismatch("theil_index of equal losses [0.8, 0.8, 0.8] should be 0, got "
                           f"{scalar(t, 'theil_index'):.6g}")

    return run_checker("check_taml_regularisers", body, raise_on_failure)


# ---- section 9.4: MAML++'s multi-step loss weights (Antoniou, Edwards & Storkey 2019, arXiv:1810.09502) -----
def _msl_reference(steps, epoch, msl_epochs):
    """The weights of the query losses after steps 0..S-1 at ``epoch``: the original's schedule, then the last alone."""
    weights = multi_step_loss_weights(steps, epoch, msl_epochs, 1)
    return np.eye(steps)[-1] if weights is None else np.asarray(weights)


# (steps, msl_epochs, epochs checked): MAML++'s Omniglot setting (5 steps over 10 epochs), and a long horizon
# where the non-final weights reach their floor 0.03/S and the last its ceiling
_MSL_CASES = [(5, 10, list(range(13))), (3, 50, [0, 1, 25, 48, 49, 50, 60]), (1, 10, [0, 4, 10])]


def check_msl_weights(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(steps, epoch, msl_epochs) -> weights`` (S numbers, step 0 first).

    The multi-step loss of MAML++ (Sec. 4 of the paper; the original's
    ``get_per_step_loss_importance_vector``, few_shot_learning_system.py:83-103): while
    ``epoch < msl_epochs`` (E), the weights of steps s < S-1 are ``max(1/S - e/(S E), 0.03/S)``
    and the last ``min(1/S + e (S-1)/(S E), 1 - (S-1) 0.03/S)``; from epoch E on the last
    step's loss alone counts: ``[0, ..., 0, 1]`` (few_shot_learning_system.py:232-244).
    """

    def run(steps, epoch, msl_epochs):
        out = student_fn(steps, epoch, msl_epochs)
        if out is None:
            raise Mismatch(f"msl_weights({steps}, {epoch}, {msl_epochs}) returned None: return the {steps} weights "
                           "(from epoch msl_epochs on, [0, ..., 0, 1]: the last step's loss alone)")
        got = as_array(out, f"msl_weights({steps}, {epoch}, {msl_epochs})")
        if got.shape != (steps,):
            raise Mismatch(f"msl_weights({steps}, {epoch}, {msl_epochs}) has shape {got.shape}: one weight per inner "
                           f"step, ({steps},), step 0 first")
        if not np.all(np.isfinite(got)):
            raise Mismatch(f"msl_weights({steps}, {epoch}, {msl_epochs}) contains NaN or Inf")
        return got

    def diagnose(steps, msl_epochs, epochs):
        got = {e: run(steps, e, msl_epochs) for e in epochs}
        ref = {e: _msl_reference(steps, e, msl_epochs) for e in epochs}
        during = [e for e in epochs if e < msl_epochs]
        call = f"msl_weights({steps}, e, {msl_epochs})"
        if steps > 1 and all(np.allclose(got[e], 1.0 / steps) for e in during):
            raise Mismatch(f"{call} is uniform, 1/{steps}, at every epoch: the last step's weight does not grow. "
                           "The weights start uniform and move towards the last step, by (S-1)/(S E) per epoch for "
                           "the last and -1/(S E) for each other step")
        if steps > 1 and len(during) > 1 and got[during[-1]][-1] < got[during[0]][-1] - 1e-12:
            raise Mismatch(f"{call}: the last step's weight falls from {got[during[0]][-1]:.4g} (epoch {during[0]}) "
                           f"to {got[during[-1]][-1]:.4g} (epoch {during[-1]}); it is the one that grows, the "
                           "other steps' weights shrink")
        for e in during:
            floor = 0.03 / steps
            if steps > 1 and got[e][:-1].min() < floor - 1e-12:
                raise Mismatch(f"msl_weights({steps}, {e}, {msl_epochs}): a weight before the last "
                               f"is {got[e][:-1].min():.4g}, below "
                               f"the floor 0.03/S = {floor:.4g}; every earlier step keeps at least 0.03/S, so that "
                               "its query loss still trains the early steps")
            if abs(got[e].sum() - 1.0) > 1e-9:
                hint = ""
                capless = ref[e].copy()
                capless[-1] = 1.0 / steps + e * (steps - 1) / (steps * msl_epochs)
                if np.allclose(got[e], capless, rtol=1e-9, atol=1e-12):
                    hint = (": the last weight needs its ceiling, min(..., 1 - (S-1) 0.03/S), once the other "
                            "steps sit at their floor 0.03/S")
                raise Mismatch(f"msl_weights({steps}, {e}, {msl_epochs}) sums to {got[e].sum():.6g}, not 1{hint}. "
                               "The weights share the loss between the steps: they always sum to 1")
        for e in during:
            if not np.allclose(got[e], ref[e], rtol=1e-9, atol=1e-12):
                shifted = _msl_reference(steps, e + 1, msl_epochs) if e + 1 < msl_epochs else None
                if shifted is not None and np.allclose(got[e], shifted, rtol=1e-9, atol=1e-12):
                    raise Mismatch(f"msl_weights({steps}, {e}, {msl_epochs}) is the reference's epoch {e + 1}: "
                                   "epochs count from 0, and epoch 0's weights are uniform")
                # the horizon the student annealed over, read off the last weight's growth per epoch
                later = [d for d in during if d > 0]
                if steps > 1 and later:
                    d = later[0]
                    growth = (got[d][-1] - 1.0 / steps) / d
                    horizon = (steps - 1) / (steps * growth) if growth > 0 else float("inf")
                    if np.isfinite(horizon) and not np.isclose(horizon, msl_epochs):
                        raise Mismatch(f"{call} anneals as if over {horizon:.4g} epochs: the last weight grows "
                                       f"{growth:.4g} per epoch, (S-1)/(S E) with E = msl_epochs = {msl_epochs} "
                                       f"is {(steps - 1) / (steps * msl_epochs):.4g}. The horizon is the multi-step "
                                       "loss's epochs (the original's multi_step_loss_num_epochs), not the whole "
                                       "training's, nor iterations")
                compare(got[e], ref[e], f"msl_weights({steps}, {e}, {msl_epochs})", rtol=1e-9, atol=1e-12)
        for e in epochs:
            if e >= msl_epochs and not np.allclose(got[e], ref[e], rtol=1e-9, atol=1e-12):
                raise Mismatch(f"msl_weights({steps}, {e}, {msl_epochs}) is {np.round(got[e], 4).tolist()}: from epoch "
                               f"msl_epochs = {msl_epochs} on, the multi-step loss is over and only the last step's "
                               f"loss counts, {ref[e].tolist()} (few_shot_learning_system.py:232-244)")

    def body():
        for steps, msl_epochs, epochs in _MSL_CASES:
            diagnose(steps, msl_epochs, epochs)

    return run_checker("check_msl_weights", body, raise_on_failure)
