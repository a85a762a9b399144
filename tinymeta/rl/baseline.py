"""rllab's linear feature baseline, fitted per task (rllab/baselines/linear_feature_baseline.py).

Features of step t of a path with observation o (linear_feature_baseline.py:19-23):
    phi = [o, o^2, t/100, (t/100)^2, (t/100)^3, 1],   o clipped to [-10, 10],
and the coefficients solve the ridge-regularised normal equations
(linear_feature_baseline.py:26-37)
    (Phi^T Phi + c I) w = Phi^T R,   c = 1e-5 (multiplied by 10 while the solution is NaN),
over the task's valid steps, R being the discounted returns. This is a fit to
data on the host, not part of any differentiated graph, so it is plain NumPy,
batched over the task axis.
"""
from __future__ import annotations

import numpy as np

REG_COEFF = 1e-5  # linear_feature_baseline.py:7


def features(observations: np.ndarray) -> np.ndarray:
    """(..., H, 2) observations -> (..., H, 8) features [o, o^2, t, t^2, t^3, 1], t = step / 100."""
    o = np.clip(observations, -10.0, 10.0)
    H = observations.shape[-2]
    t = np.broadcast_to((np.arange(H) / 100.0)[:, None], o.shape[:-1] + (1,))
    return np.concatenate([o, o * o, t, t ** 2, t ** 3, np.ones_like(t)], axis=-1)


def fit(phi: np.ndarray, returns: np.ndarray, valid: np.ndarray, reg_coeff: float = REG_COEFF) -> np.ndarray:
    """Per-task coefficients (T, F) from features (T, M, F), targets (T, M), weights valid (T, M)."""
    w = valid[..., None]
    A = np.einsum("tmf,tmg->tfg", phi * w, phi)
    b = np.einsum("tmf,tm->tf", phi * w, returns)
    eye = np.eye(phi.shape[-1])
    for _ in range(5):  # as the original: raise the ridge while the solve gives NaN
        coeffs = np.linalg.solve(A + reg_coeff * eye, b[..., None])[..., 0]
        if not np.isnan(coeffs).any():
            break
        reg_coeff *= 10
    return coeffs


def linear_feature_baseline(paths, returns: np.ndarray) -> np.ndarray:
    """Fit each task's baseline to its own paths and predict them: (T, N, H) values."""
    T, N, H = returns.shape
    phi = features(paths.observations).reshape(T, N * H, -1)
    coeffs = fit(phi, returns.reshape(T, N * H), paths.valid.reshape(T, N * H))
    return np.einsum("tmf,tf->tm", phi, coeffs).reshape(T, N, H)
