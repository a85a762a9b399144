"""Reference solutions for chapter 2's exercises: the two heads of a Siamese network."""
import numpy as np


def weighted_l1_logits(zq, zs, alpha, bias):
    """Koch et al. 2015, Sec. 3.1: sum_j alpha_j |zq_j - zs_j| + bias for every (query, support) pair, (Q, S)."""
    return (alpha * np.abs(zq[:, None, :] - zs[None, :, :])).sum(axis=-1) + bias


def contrastive_losses(d, same, margin):
    """Hadsell et al. 2006, Eq. 4 per pair, with same = 1 - Y: same d^2/2 + (1 - same) max(0, m - d)^2/2."""
    return 0.5 * same * d ** 2 + 0.5 * (1 - same) * np.maximum(0.0, margin - d) ** 2
