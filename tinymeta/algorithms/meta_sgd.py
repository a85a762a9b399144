"""Meta-SGD (Li, Zhou, Chen & Li 2017, arXiv:1707.09835).

The inner step learns its own per-parameter learning rates (Eq. 1 there):
    theta_i' = theta - alpha o grad_theta L_i^support(theta)
with alpha of theta's shape (o: elementwise), and both theta and alpha are
meta-learned on the query loss (Eq. 2-3): min_{theta, alpha} mean_i L_i^query(theta_i').
alpha is initialised positive, uniformly in [0.005, 0.1] as in the paper (Sec. 4.1),
and receives its own gradient (not theta's).
"""
from __future__ import annotations

import numpy as np

from ..tensor import tensor
from .maml import MAML

RATE_PREFIX = "lr/"


class MetaSGD(MAML):
    """MAML whose inner learning rate is a meta-learned tensor per parameter."""

    name = "meta-sgd"

    def __init__(self, *args, lr_init=(0.005, 0.1), **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_init = lr_init

    def init_meta_params(self, params, rng=None):
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        lo, hi = (self.lr_init, self.lr_init) if np.isscalar(self.lr_init) else self.lr_init
        rates = {RATE_PREFIX + k: tensor(rng.uniform(lo, hi, v.shape), dtype=v.dtype, device=v.device,
                                         requires_grad=True) for k, v in params.items()}
        return {**params, **rates}

    def model_params(self, meta_params):
        return {k: v for k, v in meta_params.items() if not k.startswith(RATE_PREFIX)}

    def inner_rates(self, meta_params):
        return {k[len(RATE_PREFIX):]: v for k, v in meta_params.items() if k.startswith(RATE_PREFIX)}
