"""Layers and losses composed from tinymeta's primitive ops.

Names, argument order and weight layouts follow torch.nn.functional wherever it
has the op, so code can be compared line by line.

The task axis. Inputs may carry a leading task axis: (T, N, ...) instead of
(N, ...). Weights may be shared (their usual shape) or per task (a leading T
axis: linear W (T, out, in), conv2d W (T, out, in, kh, kw), bias (T, out),
batch-norm scale/shift (T, C)). Shared weights broadcast over the tasks, so
their gradient is the sum of the tasks' gradients; per-task weights ("fast
weights") get each task's own gradient. One call thus runs a whole meta-batch.
"""
from __future__ import annotations

from . import ops
from .ops.common import blend_into, broadcast_shapes, const, operands
from .ops.conv import conv_columns, normalize_padding, out_size, same_padding
from .tensor import Tensor

one_hot = ops.one_hot  # torch.nn.functional's name for it


def _per_task(param: Tensor | None, shared_ndim: int) -> bool:
    return param is not None and param.ndim == shared_ndim + 1


def _bias_shape(bias: Tensor, nlead: int, trailing: int):
    """Shape that broadcasts a bias (C,) or per-task bias (T, C) against an output.

    ``nlead`` is the number of sample axes between the task axis and the channel
    axis; ``trailing`` the number of axes after the channel axis.
    """
    if bias.ndim == 2:
        return (bias.shape[0],) + (1,) * nlead + (bias.shape[1],) + (1,) * trailing
    return (bias.shape[0],) + (1,) * trailing


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, with W of shape (out, in), or (T, out, in) per task.

    ``input`` is (..., in); with per-task weights it is (T, ..., in).
    """
    if weight.ndim not in (2, 3):
        raise ValueError(f"linear: weight must be (out, in) or (T, out, in), got {weight.shape}")
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features but weight {weight.shape} "
                         f"expects {weight.shape[-1]}")
    if weight.ndim == 3:
        T = weight.shape[0]
        if input.ndim < 2 or input.shape[0] != T:
            raise ValueError(f"linear: per-task weight {weight.shape} needs input (T={T}, ..., in), "
                             f"got {input.shape}")
        x = ops.reshape(input, (T, -1, input.shape[-1])) if input.ndim != 3 else input
        y = ops.matmul(x, weight, transpose_b=True)
        y = ops.reshape(y, input.shape[:-1] + (weight.shape[1],))
    else:
        y = ops.matmul(input, weight, transpose_b=True)
    if bias is not None:
        if bias.ndim == 2:
            bias = ops.reshape(bias, (bias.shape[0],) + (1,) * (y.ndim - 2) + (bias.shape[1],))
        y = y + bias
    return y


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    input (N, C, H, W) or (T, N, C, H, W); weight (O, C, kh, kw) or (T, O, C, kh, kw).
    Computed as im2col (:func:`tinymeta.unfold`) followed by one batched matmul:
    out[n, o, p] = sum_k W[o, k] cols[n, k, p]. The gradient with respect to the input,
    fold(W^T g), is one transposed-convolution op (``ops.conv.ConvTranspose``).
    ``padding``: an int, (ph, pw), ((top, bottom), (left, right)), or ``"same"``:
    TensorFlow's rule (output ceil(size / stride), an odd padding pixel goes after),
    which is what MAML's and Reptile's reference code use.
    """
    if input.ndim not in (4, 5):
        raise ValueError(f"conv2d: input must be (N, C, H, W) or (T, N, C, H, W), got {input.shape}")
    if weight.ndim not in (4, 5):
        raise ValueError(f"conv2d: weight must be (O, C, kh, kw) or (T, O, C, kh, kw), got {weight.shape}")
    C, H, W = input.shape[-3:]
    O, Cw, kh, kw = weight.shape[-4:]
    if C != Cw:
        raise ValueError(f"conv2d: input has {C} channels but weight {weight.shape} expects {Cw}")
    per_task = weight.ndim == 5
    if per_task and (input.ndim != 5 or input.shape[0] != weight.shape[0]):
        raise ValueError(f"conv2d: per-task weight {weight.shape} needs input (T={weight.shape[0]}, N, C, H, W), "
                         f"got {input.shape}")
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    if isinstance(padding, str):
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair or 'same', got {padding!r}")
        padding = (same_padding(H, kh, sh), same_padding(W, kw, sw))
    ph, pw = normalize_padding(padding)
    Ho, Wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    lead = input.shape[:-3]
    images = ops.reshape(input, (-1, C, H, W))
    # A shared weight is one task's: its images share the task's columns, so on the CPU the
    # convolution and its weight gradient are one matmul for all images (see ops.conv).
    tasks = weight.shape[0] if per_task else 1
    cols = ops.unfold(images, (kh, kw), (sh, sw), (ph, pw), tasks=tasks)
    w = ops.reshape(weight, (tasks, 1, O, C * kh * kw))
    out = ops.reshape(conv_columns(w, cols, images, (kh, kw), (sh, sw), (ph, pw)), lead + (O, Ho, Wo))
    if bias is not None:
        out = out + ops.reshape(bias, _bias_shape(bias, len(lead) - 1, 2))
    return out


def max_pool2d(input: Tensor, kernel_size, stride=None, padding: int = 0) -> Tensor:
    """Max over kxk windows of (..., C, H, W); stride defaults to the kernel size.

    The common case (stride == kernel, no padding) is a reshape and a max, as
    in tinygrad; other strides go through unfold, with -inf padding.
    """
    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]
    s = k if stride is None else (stride if isinstance(stride, int) else stride[0])
    if not 0 <= padding <= k // 2:
        # wider padding would make windows of padding alone, whose maximum is -inf (PyTorch refuses too)
        raise ValueError(f"max_pool2d: padding must lie between 0 and half the kernel size ({k // 2} for "
                         f"kernel {k}), got {padding}")
    H, W = input.shape[-2:]
    if s == k and padding == 0:
        Ho, Wo = H // k, W // k
        if Ho < 1 or Wo < 1:
            raise ValueError(f"max_pool2d: kernel {k} is larger than the input's spatial size {(H, W)}")
        x = input[..., :Ho * k, :Wo * k]
        x = ops.reshape(x, input.shape[:-2] + (Ho, k, Wo, k))
        return ops.max(x, axis=(-3, -1))
    lead = input.shape[:-2]
    x = ops.reshape(input, (-1, 1, H, W))
    if padding:
        x = ops.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), value=-float("inf"))
    cols = ops.unfold(x, k, s, 0)
    Ho, Wo = out_size(H, k, s, padding), out_size(W, k, s, padding)
    return ops.reshape(ops.max(cols, axis=1), lead + (Ho, Wo))


def batch_norm(input: Tensor, running_mean=None, running_var=None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = True, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every axis but the channel (and task) axis.

    Channels are on axis 1 for (N, C), (N, C, L), (N, C, H, W); a 5-d input
    (T, N, C, H, W), or per-task ``weight`` (T, C), has a task axis and
    channels on axis 2, and each task is normalised with its own statistics:
    y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance.

    Batch statistics are used when ``training`` is True or no running
    statistics are given (MAML's setting, at meta-test too). When training with
    running statistics, they are updated in place (their values, not a graph).
    """
    tasks = input.ndim == 5 or _per_task(weight, 1) or _per_task(bias, 1)
    c_axis = 2 if tasks else 1
    if input.ndim < c_axis + 1:
        raise ValueError(f"batch_norm: input of shape {input.shape} has no channel axis")
    C = input.shape[c_axis]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape[-1] != C:
            raise ValueError(f"batch_norm: {name} {p.shape} does not match {C} channels of input {input.shape}")
    stat_axes = tuple(i for i in range(input.ndim) if i not in (0, c_axis)) if tasks else \
        tuple(i for i in range(input.ndim) if i != c_axis)
    trailing = input.ndim - c_axis - 1
    use_batch = training or running_mean is None
    count = 1  # values per channel (per task, with a task axis) that one statistic is taken over
    for axis in stat_axes:
        count *= input.shape[axis]
    if use_batch and count < 2:
        # one value per channel: its variance is 0 and every output would be 0 (the bias), silently
        raise ValueError(f"batch_norm: batch statistics need more than one value per channel"
                         f"{' and task' if tasks else ''}, input {input.shape} has {count}; use a larger "
                         "batch, or training=False with running statistics")
    if use_batch:
        y = ops.standardize(input, stat_axes, eps)  # one op, with one op for its gradient
        if training and running_mean is not None:
            x = input.detach()
            mean = ops.mean(x, stat_axes, keepdims=True)
            var = ops.mean((x - mean) * (x - mean), stat_axes, keepdims=True)
            _update_running(running_mean, running_var, mean, var, count, momentum)
        if weight is not None:
            y = y * ops.reshape(weight, _bias_shape(weight, c_axis - 1, trailing))
    else:
        shape = (C,) + (1,) * trailing
        rm = ops.astype(const(running_mean, input), input.dtype)  # constants: arrays or Tensors
        rv = ops.astype(const(running_var, input), input.dtype)
        scale = (ops.reshape(rv.detach(), shape) + eps) ** -0.5
        if weight is not None:  # fold the scale into the small per-channel factor: one full-size multiply
            scale = scale * ops.reshape(weight, _bias_shape(weight, c_axis - 1, trailing))
        y = (input - ops.reshape(rm.detach(), shape)) * scale
    if bias is not None:
        y = y + ops.reshape(bias, _bias_shape(bias, c_axis - 1, trailing))
    return y


def _update_running(running_mean, running_var, mean, var, n, momentum):
    """running <- (1 - momentum) running + momentum * batch statistic, in place (values, not a graph).

    ``n`` is the number of values each statistic was taken over (one task's, with a task
    axis), so the stored variance is each task's unbiased one, averaged over the tasks.
    """
    C = running_mean.size
    m = ops.mean(ops.reshape(mean.detach(), (-1, C)), 0)  # a task axis: the mean over tasks
    v = ops.mean(ops.reshape(var.detach(), (-1, C)), 0) * (n / (n - 1))  # unbiased, as torch stores it
    blend_into(running_mean, m, momentum)
    blend_into(running_var, v, momentum)


def relu(input: Tensor) -> Tensor:
    return ops.relu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope`` * x, as ``torch.nn.functional.leaky_relu`` (the slope at 0 too).

    Composed of ``where`` and a product, so every order of derivative follows (MAML++'s
    conv net uses it, meta_neural_network_architectures.py:426).
    """
    return ops.where(input > 0, input, input * negative_slope)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    """log softmax(x) = x - logsumexp(x), stable for any finite logits.

    The max is subtracted as a constant: x - m - log(sum(exp(x - m))) equals
    x - logsumexp(x) for every m, so all derivatives are unchanged and exp never
    overflows (logits of 1e4 stay exact).
    """
    m = ops.max(input.detach(), dim, keepdims=True)
    z = input - m
    return z - ops.log(ops.sum(ops.exp(z), dim, keepdims=True))


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_labels(input: Tensor, target: Tensor, name: str):
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must be an integer Tensor of class indices, got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    if target.shape != input.shape[:-1]:
        raise ValueError(f"{name}: target shape {target.shape} must equal input shape without its "
                         f"class axis {input.shape[:-1]}")
    if target.device != input.device:
        raise RuntimeError(f"{name}: input is on {input.device} but target on {target.device}")
    if target.device == "cpu":  # on a GPU, reading labels back would stall it on every call
        C = input.shape[-1]
        lo, hi = int(ops.min(target)), int(ops.max(target))
        if lo < 0 or hi >= C:
            raise ValueError(f"{name}: labels must lie in [0, {C}), got values in [{lo}, {hi}]")


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of integer labels under softmax(input).

    Classes are on the last axis: input (..., C), target (...) of ints. (For
    2-d input this is torch's layout; with a task axis, (T, N, C) and (T, N).)
    Labels outside [0, C) raise on the CPU; on a GPU, where checking would mean
    a host read every call, they make that example's loss NaN instead.
    """
    _check_labels(input, target, "cross_entropy")
    # one op, -sum(log_softmax(input) * one_hot(target)) in value and in every derivative;
    # an unchecked label out of range has a zero one-hot row, hence a NaN loss
    nll = ops.softmax_cross_entropy(input, ops.one_hot(target, input.shape[-1], input.dtype))
    return _reduce(nll, reduction)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error, (input - target)^2 averaged (or summed) over all elements.

    With a task axis, ``reduction="mean"`` averages over the tasks too: the loss of a
    meta-batch (T, N, 1) is the mean of the tasks' losses, so the gradient each task's
    fast weights get from it is its own loss's gradient divided by T. For MAML's inner
    loss (a mean within each task, summed over tasks, so that one ``grad`` call gives
    every task its own gradient) reduce per task::

        task_losses = mse_loss(pred, y, reduction="none").mean(axis=(1, 2))   # (T,)
        inner = task_losses.sum()

    (``tinymeta.algorithms.Objective("regression").losses`` does this for the algorithms.)
    """
    input, target = operands(input, target, "mse_loss")
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ")
    d = input - target
    return _reduce(d * d, reduction)


def accuracy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Fraction of argmax predictions equal to the labels (a constant tensor)."""
    _check_labels(input, target, "accuracy")
    hits = ops.astype(ops.argmax(input, -1) == target, input.dtype)
    return _reduce(hits, reduction)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / max(|x1| |x2|, eps) along ``dim`` (broadcasting).

    ``dim`` counts in the broadcast shape. An operand of size 1 along ``dim`` (or
    without that axis) is broadcast along it before its norm is taken, as in PyTorch:
    the cosine of [1, 2, 3] and [1] is that of [1, 2, 3] and [1, 1, 1]. Other axes
    broadcast only in the product, so prototypes (T, 1, N, D) against queries
    (T, Q, 1, D) take their norms at their own size.
    """
    x1, x2 = operands(x1, x2, "cosine_similarity")
    shape = broadcast_shapes(x1.shape, x2.shape)
    if not -len(shape) <= dim < len(shape):
        raise ValueError(f"cosine_similarity: dim {dim} is out of range for the broadcast shape {shape}")
    x1, x2 = _full_along(x1, shape, dim), _full_along(x2, shape, dim)
    num = ops.sum(x1 * x2, dim)
    den = ops.sqrt(ops.sum(x1 * x1, dim) * ops.sum(x2 * x2, dim))
    return num / ops.maximum(den, eps)


def pairwise_cosine_similarity(x1: Tensor, x2: Tensor, eps: float = 1e-8) -> Tensor:
    """The cosine of every row of ``x1`` (..., P, D) with every row of ``x2`` (..., R, D): (..., P, R).

    The numbers of ``cosine_similarity(x1[..., :, None, :], x2[..., None, :, :])``,
    x1_p . x2_r / max(|x1_p| |x2_r|, eps), as one matmul over D: the broadcast form writes
    (and differentiates) a (..., P, R, D) product first, here never made.
    """
    x1, x2 = operands(x1, x2, "pairwise_cosine_similarity", broadcast=False)
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"pairwise_cosine_similarity: needs rows (..., P, D) and (..., R, D) of one length D, "
                         f"got {x1.shape} and {x2.shape}")
    num = ops.matmul(x1, x2, transpose_b=True)                                  # (..., P, R)
    sq1 = (x1 * x1).sum(axis=-1, keepdims=True)                                # (..., P, 1)
    sq2 = ops.swapaxes((x2 * x2).sum(axis=-1, keepdims=True), -1, -2)          # (..., 1, R)
    return num / ops.maximum(ops.sqrt(sq1 * sq2), eps)


def _full_along(x: Tensor, shape, dim: int) -> Tensor:
    """``x`` with ``shape``'s number of axes, broadcast to its size along axis ``dim`` (other axes
    left as they are)."""
    d = dim % len(shape)
    x = ops.reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
    if x.shape[d] == shape[d]:
        return x
    return ops.broadcast_to(x, x.shape[:d] + (shape[d],) + x.shape[d + 1:])
