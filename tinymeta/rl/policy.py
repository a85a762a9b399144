"""A Gaussian MLP policy over a parameter dict, with a learned state-independent log-std.

As MAML's point-robot policy (cbfinn/maml_rl, sandbox/rocky/tf/policies/
maml_minimal_gauss_mlp_policy.py, built by maml_examples/maml_trpo_point.py:33-39):

- mean = MLP(obs): hidden sizes (100, 100) with ReLU (maml_trpo_point.py:37-38),
  linear output; weights Glorot-uniform ("xavier"), biases zero (policy file:350-351);
- log-std: one learned parameter per action dimension, initialised to log(1.0) = 0
  (policy file:33-34, 104-115), floored at log(1e-6) (min_std, policy file:38, 265-266);
- the inner step adapts every parameter, the log-std included (policy file:168-170, 288-297).

Parameters are ``w1, b1, w2, b2, w3, b3, log_std`` (weights stored (out, in) as in
torch.nn.Linear). A per-task dict (each tensor with a leading task axis T) and
observations (T, ...) evaluate every task's own policy in one pass.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..nn import MLP, glorot_uniform

MIN_LOG_STD = math.log(1e-6)  # maml_minimal_gauss_mlp_policy.py:38


class GaussianMLPPolicy(MLP):
    """pi(a | s) = N(mean(s), diag(exp(log_std))^2), mean an MLP of ``sizes``.

    ``init_std`` is the action's standard deviation at initialisation (not a
    weight scale: the weights are Glorot-uniform).
    """

    def __init__(self, sizes=(2, 100, 100, 2), init_std=1.0):
        super().__init__(sizes)
        self.init_std = float(init_std)
        if self.init_std <= 0:
            raise ValueError(f"init_std must be positive, got {init_std}")

    @property
    def action_dim(self) -> int:
        return self.sizes[-1]

    def _init(self, rng):
        p = super()._init(rng)
        p["log_std"] = np.full(self.action_dim, math.log(self.init_std))
        return p

    def _weight(self, rng, fan_in, fan_out):
        return glorot_uniform(rng, (fan_out, fan_in), fan_in, fan_out)

    def distribution(self, params, obs):
        """(mean, log_std) of the action at ``obs``; log_std broadcasts against mean.

        With per-task params, obs is (T, ..., obs_dim) and log_std (T, 1.., act_dim).
        """
        mean = self(params, obs)
        log_std = ops.maximum(params["log_std"], MIN_LOG_STD)
        if log_std.ndim == 2:  # per task: (T, A) -> (T, 1, ..., 1, A)
            log_std = ops.reshape(log_std, (log_std.shape[0],) + (1,) * (mean.ndim - 2) + (log_std.shape[1],))
        return mean, log_std

    def __repr__(self):
        return f"GaussianMLPPolicy(sizes={self.sizes}, init_std={self.init_std})"


def log_likelihood(actions, mean, log_std):
    """log N(a; mean, diag(exp(2 log_std))), summed over the last (action) axis.

    = -sum_j [ (a_j - mu_j)^2 / (2 sigma_j^2) + log sigma_j ] - (d/2) log(2 pi)
    (rllab's DiagonalGaussian.log_likelihood_sym).
    """
    z = (actions - mean) * ops.exp(-log_std)
    d = mean.shape[-1]
    return (-0.5 * ops.sum(z * z, -1) - ops.sum(ops.broadcast_to(log_std, mean.shape), -1)
            - 0.5 * d * math.log(2 * math.pi))


def kl_divergence(old_mean, old_log_std, mean, log_std):
    """KL(old || new) of diagonal Gaussians, summed over the action axis (rllab's kl_sym):

    sum_j [ log(sigma_j / sigma0_j) + (sigma0_j^2 + (mu0_j - mu_j)^2) / (2 sigma_j^2) - 1/2 ].
    """
    var = ops.exp(2.0 * log_std)
    num = ops.exp(2.0 * old_log_std) + (old_mean - mean) * (old_mean - mean)
    return ops.sum(log_std - old_log_std + num / (2.0 * var) - 0.5, -1)
