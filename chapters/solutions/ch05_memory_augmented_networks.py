"""Reference solutions for chapter 5's exercises (the NTM's circular shift, MANN's LRU write weights)."""
import numpy as np


def circular_convolution(w, s):
    """w~(i) = sum_j w(j) s(i - j mod N) for w (B, N) and s (B, 3), the weights of the shifts -1, 0, +1."""
    return sum(s[:, [k + 1]] * np.roll(w, k, axis=1) for k in (-1, 0, 1))   # roll by k: location i -> i + k


def lru_write_weights(alpha, w_read_prev, usage_prev, heads):
    """sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) w^lu_{t-1}; head h writes to the h-th least-used location."""
    gate = 1 / (1 + np.exp(-alpha))[..., None]                               # (B, heads, 1)
    least = np.argsort(usage_prev, axis=-1, kind="stable")[:, :heads]        # (B, heads), least used first
    w_lu = np.zeros_like(w_read_prev)
    for b in range(usage_prev.shape[0]):
        w_lu[b, np.arange(heads), least[b]] = 1.0
    return gate * w_read_prev + (1 - gate) * w_lu
