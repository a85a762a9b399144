"""Reptile (Nichol, Achiam & Schulman 2018, arXiv:1803.02999), Algorithm 2 (batched).

For each task, k steps of SGD or Adam (beta1 = 0) from theta give phi_i; then
    theta <- theta + epsilon * mean_i (phi_i - theta)
with epsilon annealed linearly to 0. There is no outer backward pass. Written
as a meta-gradient, g = theta - mean_i phi_i, so an outer SGD step of size
epsilon is exactly Reptile's update (and the training loop anneals its rate).
All tasks take their inner steps together on the task axis, each with its own
fast weights and its own optimizer state (fresh for every meta-batch: carrying
Adam's moments from task to task, as the book's notebook does, mixes tasks).
"""
from __future__ import annotations

import numpy as np

from ..autograd import grad, no_grad
from ..optim import SGD, Adam
from ..tensor import Tensor
from .base import MetaLearner
from .common import Objective


class Reptile(MetaLearner):
    """Reptile with a batched inner loop of SGD or Adam(beta1 = 0) on mini-batches of the support set."""

    name = "reptile"

    def __init__(self, model, objective: Objective, inner_lr=1e-3, inner_steps=5, inner_optimizer="adam",
                 inner_batch=None, betas=(0.0, 0.999)):
        super().__init__(model, objective, inner_lr, inner_steps, first_order=True)
        if inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got {inner_optimizer!r}")
        self.inner_optimizer, self.inner_batch, self.betas = inner_optimizer, inner_batch, tuple(betas)

    def _minibatches(self, n, steps, rng):
        """Index arrays of the support examples each inner step uses (cycling through a permutation)."""
        b = n if self.inner_batch is None else min(int(self.inner_batch), n)
        order = np.arange(n) if rng is None else rng.permutation(n)
        for s in range(steps):
            yield order[(np.arange(b) + s * b) % n] if b < n else None

    def adapt(self, meta_params, batch, steps, rng=None):
        """Yield phi before and after each inner step; phi are fresh leaves with a task axis."""
        T = batch.num_tasks
        fast = {k: Tensor(v.data.copy()[None].repeat(T, axis=0), requires_grad=True)
                for k, v in self.model_params(meta_params).items()}
        opt = Adam(fast, lr=self.inner_lr, betas=self.betas) if self.inner_optimizer == "adam" \
            else SGD(fast, lr=self.inner_lr)
        x, y = batch.support
        yield fast
        for idx in self._minibatches(x.shape[1], steps, rng):
            xb, yb = (x, y) if idx is None else (x[:, idx], y[:, idx])
            loss = self.objective.losses(self.model(fast, xb), yb).sum()  # tasks independent: sum
            opt.step(grad(loss, fast))
            yield fast

    def meta_gradient(self, meta_params, batch, rng=None):
        """(theta - mean_i phi_i, metrics): an outer SGD step of size epsilon is Reptile's update."""
        theta = self.model_params(meta_params)
        x, y = batch.support
        with no_grad():
            pre = self.objective.losses(self.model({k: v.detach() for k, v in theta.items()}, x), y).mean()
        for phi in self.adapt(meta_params, batch, self.inner_steps, rng):
            pass
        with no_grad():
            g = {k: Tensor(theta[k].data - phi[k].data.mean(axis=0)) for k in theta}
            post = self.objective.losses(self.model(phi, x), y).mean()
        return g, {"support_loss_pre": pre, "support_loss_post": post}

    def __repr__(self):
        return (f"Reptile(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, "
                f"inner_optimizer={self.inner_optimizer!r}, inner_batch={self.inner_batch})")
