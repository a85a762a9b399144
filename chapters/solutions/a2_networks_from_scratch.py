"""Reference solutions for appendix A2's exercises: conv2d from unfold + matmul, batch norm per task."""
import tinymeta as tm


def conv2d_unfold(x, weight, bias, stride, padding):
    """x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, Ho, Wo), as tinymeta.functional.conv2d."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    Ho, Wo = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    cols = tm.unfold(x, (kh, kw), stride, padding)          # (N, C*kh*kw, Ho*Wo)
    out = weight.reshape(O, C * kh * kw) @ cols             # (N, O, Ho*Wo): one matmul for every position
    return out.reshape(N, O, Ho, Wo) + bias.reshape(1, O, 1, 1)


def batch_norm_per_task(x, weight, bias, eps):
    """x (T, N, C, H, W), weight and bias (C,): each task normalised with its own per-channel statistics."""
    axes = (1, 3, 4)                                        # a task's examples and positions, per channel
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) * (x - mean)).mean(axis=axes, keepdims=True)   # biased variance
    x_hat = (x - mean) / tm.sqrt(var + eps)
    C = x.shape[2]
    return x_hat * weight.reshape(1, 1, C, 1, 1) + bias.reshape(1, 1, C, 1, 1)
