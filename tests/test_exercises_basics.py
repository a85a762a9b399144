"""The checkers of chapters 1-3 (task sampling, a Function to second order, conv2d and batch norm):
the reference solutions pass, typical mistakes fail with a message that names them."""
import re
import sys

import numpy as np
import pytest
from conftest import REPO

import tinymeta as tm
from tinymeta import functional as F
from tinymeta.autograd import Function
from tinymeta.exercises._check import ExerciseError
from tinymeta.exercises.autodiff import check_softplus
from tinymeta.exercises.basics import check_sample_task
from tinymeta.exercises.networks import check_batch_norm, check_conv2d

sys.path.insert(0, str(REPO / "chapters" / "solutions"))
ch1 = __import__("01_what_is_meta_learning")
ch2 = __import__("02_autodiff_from_scratch")
ch3 = __import__("03_networks_from_scratch")


def assert_fails(checker, fn, message, capsys):
    """The checker returns False, prints ``message``, and raises ExerciseError with it when asked."""
    assert checker(fn) is False
    assert message in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=re.escape(message)):
        checker(fn, raise_on_failure=True)


# ---- chapter 1: an N-way K-shot task ---------------------------------------------------------------
def test_sample_task_reference_passes():
    assert check_sample_task(ch1.sample_task) is True
    check_sample_task(ch1.sample_task, raise_on_failure=True)


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
    s_idx, _, q_idx, _ = ch1.sample_task(labels, n_way, k_shot, n_query, rng)
    return s_idx, labels[s_idx], q_idx, labels[q_idx]


def unbalanced(labels, n_way, k_shot, n_query, rng):
    """Examples drawn from the union of the chosen classes: some classes get more than K."""
    classes = rng.choice(np.unique(labels), n_way, replace=False)
    pool = rng.permutation(np.flatnonzero(np.isin(labels, classes)))
    s_idx, q_idx = pool[:n_way * k_shot], pool[n_way * k_shot:n_way * (k_shot + n_query)]
    relabel = {c: i for i, c in enumerate(classes)}
    return s_idx, np.array([relabel[c] for c in labels[s_idx]]), q_idx, np.array([relabel[c] for c in labels[q_idx]])


def grid_shape(labels, n_way, k_shot, n_query, rng):
    s_idx, s_y, q_idx, q_y = ch1.sample_task(labels, n_way, k_shot, n_query, rng)
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


@pytest.mark.parametrize("fn, message", [
    (overlapping, "the support and query sets share examples"),
    (class_ids_as_labels, "look like the data set's class ids"),
    (unbalanced, "a balanced task"),
    (grid_shape, "support_idx has shape (5, 1), expected (5,)"),
    (sorted_labels, "in random order"),
    (same_classes, "choose the classes at random"),
])
def test_sample_task_mistakes_are_named(fn, message, capsys):
    assert_fails(check_sample_task, fn, message, capsys)


# ---- chapter 2: softplus as a Function, to second order --------------------------------------------
def test_softplus_reference_passes():
    assert check_softplus(ch2.Softplus) is True
    check_softplus(ch2.Softplus, raise_on_failure=True)


def test_softplus_composed_of_ops_passes():
    """A function composed from tinymeta ops (no Function subclass) is accepted too."""
    def softplus(x):
        return tm.maximum(x, 0.0) + tm.log(1.0 + tm.exp(-abs(x)))
    assert check_softplus(softplus) is True


def test_softplus_not_attempted(capsys):
    class Stub(Function):
        def forward(self, a):
            raise NotImplementedError("Exercise 1")

        def backward(self, g):
            raise NotImplementedError("Exercise 1")
    assert check_softplus(Stub) is False
    assert "not attempted yet" in capsys.readouterr().out


class FirstOrderOnly(Function):
    """Right values and first derivatives, but the backward runs on raw arrays."""

    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        s = 1.0 / (1.0 + np.exp(-self.inputs[0].data))
        return (tm.tensor(g.data * s),)


class ReturnsArrays(Function):
    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        return (g.data / (1.0 + np.exp(-self.inputs[0].data)),)


class Overflows(Function):
    def forward(self, a):
        with np.errstate(over="ignore"):
            return np.log(1.0 + np.exp(a))

    def backward(self, g):
        return (g * tm.sigmoid(self.inputs[0]),)


class ForgetsG(Function):
    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        return (tm.sigmoid(self.inputs[0]),)


class NotATuple(Function):
    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        return g * tm.sigmoid(self.inputs[0])


class WrongSecondDerivative(Function):
    """exp(a) / (1 + exp(a)) with a denominator made from the raw array: right first derivative,
    but the denominator's dependence on a is lost, so the second derivative is wrong."""

    def forward(self, a):
        return np.logaddexp(0.0, a)

    def backward(self, g):
        (a,) = self.inputs
        return (g * tm.exp(a) / tm.tensor(1.0 + np.exp(a.data)),)


@pytest.mark.parametrize("cls, message", [
    (FirstOrderOnly, "the gradient is a constant"),
    (ReturnsArrays, "backward returned a NumPy array: it must return Tensors"),
    (Overflows, "exp overflows for large x"),
    (ForgetsG, "whatever the incoming gradient g is"),
    (NotATuple, "backward should return a tuple"),
    (WrongSecondDerivative, "the second derivative"),
])
def test_softplus_mistakes_are_named(cls, message, capsys):
    assert_fails(check_softplus, cls, message, capsys)


# ---- chapter 3: conv2d from unfold + matmul ---------------------------------------------------------
def test_conv2d_reference_passes():
    assert check_conv2d(ch3.conv2d_unfold) is True
    check_conv2d(ch3.conv2d_unfold, raise_on_failure=True)


def test_conv2d_functional_passes():
    assert check_conv2d(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p)) is True


def test_conv2d_not_attempted(capsys):
    def stub(x, weight, bias, stride, padding):
        raise NotImplementedError("Exercise 1")
    assert check_conv2d(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def flipped_kernel(x, w, b, s, p):
    return ch3.conv2d_unfold(x, tm.tensor(w.numpy()[..., ::-1, ::-1].copy(), requires_grad=True), b, s, p)


def no_bias(x, w, b, s, p):
    return ch3.conv2d_unfold(x, w, b * 0.0, s, p)


def ignores_stride(x, w, b, s, p):
    return ch3.conv2d_unfold(x, w, b, 1, p)


def in_numpy(x, w, b, s, p):
    return ch3.conv2d_unfold(x, w, b, s, p).numpy()


def scrambled(x, w, b, s, p):
    N, _, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    cols = tm.unfold(x, (kh, kw), s, p)
    out = cols.swapaxes(1, 2) @ w.reshape(O, -1).T            # (N, L, O)
    return out.reshape(N, O, Ho, Wo) + b.reshape(1, O, 1, 1)


def detached(x, w, b, s, p):
    return tm.tensor(ch3.conv2d_unfold(x, w, b, s, p).numpy())


@pytest.mark.parametrize("fn, message", [
    (flipped_kernel, "the kernel is flipped"),
    (no_bias, "the bias is missing"),
    (ignores_stride, "the output has shape"),
    (in_numpy, "the function returns a NumPy array"),
    (scrambled, "the output's axes are scrambled"),
    (detached, "not connected to the inputs' graph"),
])
def test_conv2d_mistakes_are_named(fn, message, capsys):
    assert_fails(check_conv2d, fn, message, capsys)


# ---- chapter 3: batch norm with per-task statistics ----------------------------------------------------
def test_batch_norm_reference_passes():
    assert check_batch_norm(ch3.batch_norm_per_task) is True
    check_batch_norm(ch3.batch_norm_per_task, raise_on_failure=True)


def test_batch_norm_not_attempted(capsys):
    def stub(x, weight, bias, eps):
        raise NotImplementedError("Exercise 2")
    assert check_batch_norm(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def _bn(x, weight, bias, eps, axes, ddof=0):
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    n = 1
    for a in axes:
        n *= x.shape[a]
    var = (d * d).sum(axis=axes, keepdims=True) / (n - ddof)
    C = x.shape[2]
    return d / tm.sqrt(var + eps) * weight.reshape(1, 1, C, 1, 1) + bias.reshape(1, 1, C, 1, 1)


@pytest.mark.parametrize("fn, message", [
    (lambda x, w, b, eps: _bn(x, w, b, eps, (0, 1, 3, 4)), "shared by all tasks"),
    (lambda x, w, b, eps: _bn(x, w, b, eps, (3, 4)), "per example"),
    (lambda x, w, b, eps: _bn(x, w, b, eps, (1, 3, 4), ddof=1), "unbiased"),
    (lambda x, w, b, eps: _bn(x, w, b, 0.0, (1, 3, 4)), "eps is missing"),
    (lambda x, w, b, eps: _bn(x, w * 0 + 1, b * 0, eps, (1, 3, 4)), "weight and bias were not applied"),
], ids=["shared-statistics", "per-example", "unbiased", "no-eps", "no-affine"])
def test_batch_norm_mistakes_are_named(fn, message, capsys):
    assert_fails(check_batch_norm, fn, message, capsys)


def test_an_unknown_mistake_gets_the_worst_element(capsys):
    assert check_conv2d(lambda x, w, b, s, p: ch3.conv2d_unfold(x, w, b, s, p) * 1.001) is False
    out = capsys.readouterr().out
    assert "is wrong at index" in out and "expected" in out and "got" in out
