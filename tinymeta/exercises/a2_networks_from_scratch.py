"""Appendix A2 exercises: a convolution from unfold + matmul, and batch norm with per-task statistics.

``conv2d_unfold(x, weight, bias, stride, padding)``: x (N, C, H, W), weight
(O, C, kh, kw), bias (O,), Tensors; the result (N, O, Ho, Wo) must equal
:func:`tinymeta.functional.conv2d`, with the same gradients for x, weight and bias.

``batch_norm_per_task(x, weight, bias, eps)``: x (T, N, C, H, W), weight and
bias (C,); each task is normalised with its own per-channel mean and (biased)
variance over its N examples and H x W positions, then scaled and shifted.
The result and its gradients must equal :func:`tinymeta.functional.batch_norm`.

Both checkers compare values first, then gradients of sum(v * output) for a
random v, and recognise the usual mistakes (a flipped kernel, a forgotten
bias, scrambled output axes, NumPy answers without gradients; statistics
shared across tasks or per example, the unbiased variance, no eps).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import grad
from ..tensor import Tensor, tensor
from ._check import Mismatch, as_array, compare, run_checker


def _kind(obj) -> str:
    return "NumPy array" if isinstance(obj, np.ndarray) else type(obj).__name__


def _grads(out, inputs, v):
    """d sum(v * out) / d inputs, or a Mismatch saying why there are none."""
    if not isinstance(out, Tensor):
        raise Mismatch(f"the values are right, but the function returns a {_kind(out)}: build the "
                       "result from tinymeta ops on the input Tensors (tm.unfold, @ or tm.matmul, .reshape, "
                       "...) so that gradients flow back to x, weight and bias")
    if not out.requires_grad:
        raise Mismatch("the values are right, but the result is not connected to the inputs' graph (it was "
                       "computed on .data or .numpy() arrays): use tinymeta ops on the Tensors themselves")
    try:
        return grad(out, inputs, grad_outputs=tensor(v), allow_unused=True)
    except Exception as exc:  # noqa: BLE001 (a bug in the student's code: report it)
        raise Mismatch(f"tm.grad through your function raised {type(exc).__name__}: {exc}") from None


def _compare_grads(got, expected, names, what):
    for g, e, name in zip(got, expected, names):
        if g is None:
            raise Mismatch(f"on {what}: the result does not depend on {name} (its gradient is None)")
        compare(g, e, f"the gradient with respect to {name} on {what}", rtol=1e-7, atol=1e-9)


def _call(student_fn, args, what):
    try:
        return student_fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 (a bug in the student's code: report it)
        raise Mismatch(f"on {what} the function raised {type(exc).__name__}: {exc}") from None


# ---- conv2d from unfold + matmul ----------------------------------------------------------------------
_CONV_CASES = [  # (what, N, C, H, W, O, kh, kw, stride, padding)
    ("a 3x3 kernel, stride 1, no padding", 2, 3, 7, 6, 4, 3, 3, 1, 0),
    ("a 3x3 kernel, stride 2, padding 1 (MAML's Omniglot conv)", 2, 2, 8, 7, 3, 3, 3, 2, 1),
    ("a 2x3 kernel, stride 1, padding 1", 3, 2, 5, 6, 2, 2, 3, 1, 1),
]


def _conv_mistakes(x, w, b, stride, padding):
    ref_np = F.conv2d(x, w, b, stride, padding).numpy()
    N, O, Ho, Wo = ref_np.shape
    flipped = F.conv2d(x, tensor(w.numpy()[..., ::-1, ::-1].copy()), b, stride, padding).numpy()
    no_bias = F.conv2d(x, w, None, stride, padding).numpy()
    scrambled = no_bias.transpose(0, 2, 3, 1).reshape(N, O, Ho, Wo) + b.numpy().reshape(1, O, 1, 1)
    return [(flipped, ("the kernel is flipped (a true convolution): deep-learning 'convolutions' are "
                       "cross-correlations, out[o, y, x] = sum W[o, c, i, j] in[c, y*s + i - p, x*s + j - p]; "
                       "reshape W to (O, C*kh*kw) without reversing it")),
            (no_bias, "the bias is missing: add bias[o] to every position of output channel o"),
            (scrambled, ("the output's axes are scrambled: a (N, Ho*Wo, O) result was reshaped to (N, O, Ho, Wo) "
                         "without moving the channel axis first; compute W @ cols, which is (N, O, Ho*Wo) already"))]


def check_conv2d(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(x, weight, bias, stride, padding) -> (N, O, Ho, Wo)`` against F.conv2d."""

    def body():
        rng = np.random.default_rng(3)
        for what, N, C, H, W, O, kh, kw, s, p in _CONV_CASES:
            x_np, w_np, b_np = rng.normal(size=(N, C, H, W)), rng.normal(size=(O, C, kh, kw)), rng.normal(size=O)
            x, w, b = (tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
            ref = F.conv2d(x, w, b, stride=s, padding=p)
            out = _call(student_fn, (x, w, b, s, p), what)
            got = as_array(out, f"the output on {what}")
            if got.shape != ref.shape:
                Ho, Wo = ref.shape[2:]
                raise Mismatch(f"on {what}: the output has shape {got.shape}, expected {ref.shape}. With padding "
                               f"p and stride s, Ho = (H + 2p - kh) // s + 1 = {Ho} and Wo = (W + 2p - kw) // s + 1 "
                               f"= {Wo}; pass stride and padding to tm.unfold")
            if np.all(np.isfinite(got)) and not np.allclose(got, ref.numpy(), rtol=1e-7, atol=1e-9):
                for wrong, hint in _conv_mistakes(x, w, b, s, p):
                    if np.allclose(got, wrong, rtol=1e-7, atol=1e-9):
                        raise Mismatch(f"on {what}: {hint}")
            compare(got, ref, f"the output on {what}", rtol=1e-7, atol=1e-9)
            v = rng.normal(size=ref.shape)
            got_g = _grads(out, [x, w, b], v)
            ref_g = grad(ref, [x, w, b], grad_outputs=tensor(v))
            _compare_grads(got_g, ref_g, ("x", "weight", "bias"), what)

    return run_checker("check_conv2d", body, raise_on_failure)


# ---- batch norm with per-task statistics --------------------------------------------------------------
def _bn_by_axes(x, w, b, axes, eps, ddof=0):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=ddof)
    return (x - mean) / np.sqrt(var + eps) * w.reshape(1, 1, -1, 1, 1) + b.reshape(1, 1, -1, 1, 1)


def _bn_mistakes(x, w, b, eps):
    return [(_bn_by_axes(x, w, b, (0, 1, 3, 4), eps),
             ("the statistics are shared by all tasks (a mean over the task axis too): each task must be "
              "normalised with its own mean and variance, over axes (1, 3, 4) of (T, N, C, H, W)")),
            (_bn_by_axes(x, w, b, (3, 4), eps),
             ("the statistics are per example (over H and W only): batch norm averages over the task's N "
              "examples too, axes (1, 3, 4)")),
            (_bn_by_axes(x, w, b, (1, 3, 4), eps, ddof=1),
             "the variance is the unbiased one (divided by n - 1): batch norm divides by n"),
            (_bn_by_axes(x, w, b, (1, 3, 4), 0.0),
             "eps is missing: divide by sqrt(var + eps)"),
            (_bn_by_axes(x, np.ones_like(w), np.zeros_like(b), (1, 3, 4), eps),
             ("the normalised values are right but weight and bias were not applied: y = x_hat * weight + bias "
              "(per channel)"))]


_BN_CASES = [("3 tasks of 4 examples, 2 channels, 5x5", (3, 4, 2, 5, 5), 1e-5),
             ("2 tasks of 1 example, 3 channels, 4x3 (a 1-shot support set)", (2, 1, 3, 4, 3), 1e-3)]


def check_batch_norm(student_fn, raise_on_failure: bool = False) -> bool:
    """Check ``student_fn(x, weight, bias, eps) -> (T, N, C, H, W)`` against F.batch_norm (per-task statistics)."""

    def body():
        rng = np.random.default_rng(4)
        for what, shape, eps in _BN_CASES:
            T, C = shape[0], shape[2]
            # every task and channel its own offset and scale, so statistics shared across tasks are visibly wrong
            x_np = rng.normal(size=shape) * rng.uniform(0.5, 3.0, size=(T, 1, C, 1, 1)) \
                + rng.normal(scale=2.0, size=(T, 1, C, 1, 1))
            w_np, b_np = rng.uniform(0.5, 2.0, size=C), rng.normal(size=C)
            x, w, b = (tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
            ref = F.batch_norm(x, weight=w, bias=b, eps=eps)
            out = _call(student_fn, (x, w, b, eps), what)
            got = as_array(out, f"the output on {what}")
            if got.shape != ref.shape:
                raise Mismatch(f"on {what}: the output has shape {got.shape}, expected {ref.shape} (the input's)")
            if np.all(np.isfinite(got)) and not np.allclose(got, ref.numpy(), rtol=1e-7, atol=1e-9):
                for wrong, hint in _bn_mistakes(x_np, w_np, b_np, eps):
                    if np.allclose(got, wrong, rtol=1e-7, atol=1e-9):
                        raise Mismatch(f"on {what}: {hint}")
            compare(got, ref, f"the output on {what}", rtol=1e-7, atol=1e-9)
            v = rng.normal(size=shape)
            got_g = _grads(out, [x, w, b], v)
            ref_g = grad(ref, [x, w, b], grad_outputs=tensor(v))
            _compare_grads(got_g, ref_g, ("x", "weight", "bias"), what)

    return run_checker("check_batch_norm", body, raise_on_failure)


__all__ = ["check_batch_norm", "check_conv2d"]
