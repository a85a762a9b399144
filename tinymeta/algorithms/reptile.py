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
from ..tensor import tensor
from .base import MetaLearner
from .common import Objective


def reptile_meta_gradient(theta: dict, phi: dict) -> dict:
    """g = theta - mean_i phi_i (constants): theta - epsilon g = theta + epsilon mean_i (phi_i - theta).

    ``phi`` holds each task's weights after its inner loop, with a leading task axis.
    """
    with no_grad():
        return {k: theta[k] - phi[k].mean(axis=0) for k in theta}


class Reptile(MetaLearner):
    """Reptile with a batched inner loop of SGD or Adam(beta1 = 0) on mini-batches of the support set."""

    name = "reptile"

    def __init__(self, model, objective: Objective, inner_lr=1e-3, inner_steps=5, inner_optimizer="adam",
                 inner_batch=None, betas=(0.0, 0.999)):
        super().__init__(model, objective, inner_lr, inner_steps, first_order=True)
        if inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got {inner_optimizer!r}")
        self.inner_optimizer, self.inner_batch, self.betas = inner_optimizer, inner_batch, tuple(betas)

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Reads ``cfg.inner_lr``, ``cfg.inner_steps``, ``cfg.inner_optimizer``, ``cfg.inner_batch`` (always first order)."""
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   inner_optimizer=cfg.inner_optimizer, inner_batch=cfg.inner_batch)

    def make_inner_optimizer(self, phi: dict):
        """The inner loop's optimizer over every task's weights phi (T, ...): Adam(beta1 = 0) or SGD.

        Its state (Adam's moments, per task) is fresh for every meta-batch.
        """
        if self.inner_optimizer == "adam":
            return Adam(phi, lr=self.inner_lr, betas=self.betas)
        return SGD(phi, lr=self.inner_lr)

    def _minibatches(self, n, steps, rng):
        """Index arrays of the support examples each inner step uses (cycling through a permutation)."""
        b = n if self.inner_batch is None else min(int(self.inner_batch), n)
        order = np.arange(n) if rng is None else rng.permutation(n)
        for s in range(steps):
            yield order[(np.arange(b) + s * b) % n] if b < n else None

    def adapt(self, meta_params, batch, steps, rng=None):
        """Yield phi before and after each inner step; phi are fresh leaves with a task axis, updated in place."""
        T = batch.num_tasks
        with no_grad():  # each task's own copy of theta (tensor() copies), a leaf the optimizer can update
            phi = {k: tensor(v.broadcast_to((T,) + v.shape), device=v.device, requires_grad=True)
                   for k, v in self.model_params(meta_params).items()}
        opt = self.make_inner_optimizer(phi)
        x, y = batch.support
        yield phi
        for idx in self._minibatches(x.shape[1], steps, rng):
            xb, yb = (x, y) if idx is None else (x[:, idx], y[:, idx])
            loss = self.objective.losses(self.model(phi, xb), yb).sum()  # tasks independent: sum
            opt.step(grad(loss, phi))
            yield phi

    def meta_gradient(self, meta_params, batch, rng=None):
        """(theta - mean_i phi_i, metrics): an outer SGD step of size epsilon is Reptile's update."""
        theta = self.model_params(meta_params)
        x, y = batch.support
        with no_grad():
            pre = self.objective.losses(self.model(theta, x), y).mean()
        for phi in self.adapt(meta_params, batch, self.inner_steps, rng):
            pass
        with no_grad():
            post = self.objective.losses(self.model(phi, x), y).mean()
        return reptile_meta_gradient(theta, phi), {"support_loss_pre": pre, "support_loss_post": post}

    def __repr__(self):
        return (f"Reptile(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, "
                f"inner_optimizer={self.inner_optimizer!r}, inner_batch={self.inner_batch})")
