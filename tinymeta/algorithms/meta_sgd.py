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
from .base import MetaLearner
from .maml import maml_meta_loss

RATE_PREFIX = "lr/"


def meta_sgd_meta_loss(model, objective, params, rates, batch, steps=1, first_order=False, keys=None):
    """(mean_i L_i^query(theta_i'), metrics) with theta_i' = theta - alpha o grad L_i^support(theta) (Eq. 1-3).

    MAML's meta-loss with the scalar inner rate replaced by ``rates``, a dict
    of per-parameter tensors alpha (same keys and shapes as ``params``); the
    meta-gradient ``grad(loss, {**params, **rates})`` trains both.
    """
    return maml_meta_loss(model, objective, params, batch, rates, steps, first_order, keys)


class MetaSGD(MetaLearner):
    """MAML whose inner learning rate is a meta-learned tensor per parameter (stored as ``lr/<name>``)."""

    name = "meta-sgd"

    def __init__(self, model, objective, inner_lr=0.01, inner_steps=1, first_order=False, adapt_norm=True,
                 transductive=True, *, lr_init=(0.005, 0.1)):
        super().__init__(model, objective, inner_lr, inner_steps, first_order, adapt_norm, transductive)
        self.lr_init = lr_init

    def init_meta_params(self, params, rng=None):
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        lo, hi = (self.lr_init, self.lr_init) if np.isscalar(self.lr_init) else self.lr_init
        adapted = self.inner_keys(params) or list(params)  # a rate for each weight the inner loop adapts
        rates = {RATE_PREFIX + k: tensor(rng.uniform(lo, hi, params[k].shape), dtype=params[k].dtype,
                                         device=params[k].device, requires_grad=True) for k in adapted}
        return {**params, **rates}

    def model_params(self, meta_params):
        return {k: v for k, v in meta_params.items() if not k.startswith(RATE_PREFIX)}

    def inner_rates(self, meta_params):
        return {k[len(RATE_PREFIX):]: v for k, v in meta_params.items() if k.startswith(RATE_PREFIX)}

    def meta_loss(self, meta_params, batch):
        return meta_sgd_meta_loss(self.model, self.objective, self.model_params(meta_params),
                                  self.inner_rates(meta_params), batch, self.inner_steps, self.first_order,
                                  self.inner_keys(self.model_params(meta_params)))
