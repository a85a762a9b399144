"""Reference solutions for chapter 3's exercises (prototypical networks, Snell et al. 2017; Gaussian prototypical
networks, Fort 2017; semi-supervised prototypical networks, Ren et al. 2018)."""

import tinymeta as tm
from tinymeta import functional as F


def _onehot(labels, n_way, like):
    """(T, S, N) one-hot rows of the integer label Tensor (T, S), in ``like``'s dtype."""
    return F.one_hot(labels, n_way, dtype=like.dtype)


def prototypes(z_support, y_support, n_way):
    """Eq. 1: c_k = mean of the support embeddings of class k, for every task: onehot^T z / counts."""
    onehot = _onehot(y_support, n_way, z_support)                        # (T, S, N)
    return (onehot.swapaxes(-1, -2) @ z_support) / onehot.sum(axis=1).unsqueeze(-1)


def log_probabilities(z_query, protos):
    """Eq. 2: log p(y = k | x) = log_softmax_k(-||z - c_k||^2), (T, Q, N)."""
    d = z_query.unsqueeze(-2) - protos.unsqueeze(-3)                    # (T, Q, N, D)
    return F.log_softmax(-(d * d).sum(axis=-1), dim=-1)


def gaussian_prototypes(z_support, precision, y_support, n_way):
    """Fort 2017, Sec. 3.3: p_c = sum_i s_i z_i / sum_i s_i and S_c = sum_i s_i over the class's examples."""
    onehot = _onehot(y_support, n_way, z_support).swapaxes(-1, -2)      # (T, N, S)
    total = onehot @ precision                                          # (T, N, 1 or D)
    return (onehot @ (precision * z_support)) / total, total


def soft_kmeans_step(protos, z_support, y_support, z_unlabeled):
    """Ren et al. 2018, Eq. 4: soft assignments of the unlabeled examples, then the new centres."""
    n_way = protos.shape[1]
    d = z_unlabeled.unsqueeze(-2) - protos.unsqueeze(-3)                # (T, U, N, D)
    r = tm.exp(F.log_softmax(-(d * d).sum(axis=-1), dim=-1))            # (T, U, N): each row sums to 1
    onehot = _onehot(y_support, n_way, z_support)                       # (T, S, N): the labeled examples' z_i,c
    total = onehot.swapaxes(-1, -2) @ z_support + r.swapaxes(-1, -2) @ z_unlabeled
    mass = onehot.sum(axis=1) + r.sum(axis=1)                            # (T, N)
    return total / mass.unsqueeze(-1)
