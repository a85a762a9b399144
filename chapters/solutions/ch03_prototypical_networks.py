"""Reference solution for chapter 3's exercise (prototypical networks, Snell et al. 2017, Eq. 1-2)."""
import numpy as np


def proto_scores(zs, ys, zq, n_way):
    """Scores (T, Q, n_way): minus the squared Euclidean distance of each query to each class mean (prototype)."""
    onehot = np.eye(n_way)[ys]                                            # (T, S, N)
    prototypes = np.swapaxes(onehot, 1, 2) @ zs / onehot.sum(axis=1)[..., None]   # (T, N, D), Eq. 1
    diff = zq[:, :, None, :] - prototypes[:, None, :, :]                  # (T, Q, N, D)
    return -(diff ** 2).sum(axis=-1)                                      # Eq. 2's logits
