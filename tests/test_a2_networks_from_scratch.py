"""Appendix A2's checkers (conv2d from unfold + matmul, batch norm with per-task statistics): the reference
solutions pass, typical mistakes fail with a message that names them."""
import pytest
from exercise_helpers import assert_fails

import tinymeta as tm
from chapters.solutions import a2_networks_from_scratch as solution
from tinymeta import functional as F
from tinymeta.exercises.a2_networks_from_scratch import check_batch_norm, check_conv2d

pytestmark = pytest.mark.a2


# ---- appendix A2: conv2d from unfold + matmul -------------------------------------------------------
def test_conv2d_reference_passes():
    assert check_conv2d(solution.conv2d_unfold) is True
    check_conv2d(solution.conv2d_unfold, raise_on_failure=True)


def test_conv2d_functional_passes():
    assert check_conv2d(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p)) is True


def test_conv2d_not_attempted(capsys):
    def stub(x, weight, bias, stride, padding):
        raise NotImplementedError("Exercise 1")
    assert check_conv2d(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def flipped_kernel(x, w, b, s, p):
    return solution.conv2d_unfold(x, tm.tensor(w.numpy()[..., ::-1, ::-1].copy(), requires_grad=True), b, s, p)


def no_bias(x, w, b, s, p):
    return solution.conv2d_unfold(x, w, b * 0.0, s, p)


def ignores_stride(x, w, b, s, p):
    return solution.conv2d_unfold(x, w, b, 1, p)


def in_numpy(x, w, b, s, p):
    return solution.conv2d_unfold(x, w, b, s, p).numpy()


def scrambled(x, w, b, s, p):
    N, _, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1
    cols = tm.unfold(x, (kh, kw), s, p)
    out = cols.swapaxes(1, 2) @ w.reshape(O, -1).T            # (N, L, O)
    return out.reshape(N, O, Ho, Wo) + b.reshape(1, O, 1, 1)


def detached(x, w, b, s, p):
    return tm.tensor(solution.conv2d_unfold(x, w, b, s, p).numpy())


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


# ---- appendix A2: batch norm with per-task statistics --------------------------------------------------
def test_batch_norm_reference_passes():
    assert check_batch_norm(solution.batch_norm_per_task) is True
    check_batch_norm(solution.batch_norm_per_task, raise_on_failure=True)


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
    assert check_conv2d(lambda x, w, b, s, p: solution.conv2d_unfold(x, w, b, s, p) * 1.001) is False
    out = capsys.readouterr().out
    assert "is wrong at index" in out and "expected" in out and "got" in out
