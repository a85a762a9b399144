"""Reptile (Nichol, Achiam & Schulman 2018, arXiv:1803.02999), Algorithm 2 (batched).

For each task, k steps of SGD or Adam (beta1 = 0) from theta give phi_i; then
    theta <- theta + epsilon * mean_i (phi_i - theta)
with epsilon annealed linearly to 0. There is no outer backward pass. Written
as a meta-gradient, g = theta - mean_i phi_i, so an outer SGD step of size
epsilon is exactly Reptile's update (and the training loop anneals its rate).

The inner optimizer's state (``inner_state``):

- ``"fresh"``: a new optimizer for every meta-batch, and all its tasks take their
  inner steps together on the task axis, each with its own fast weights and its
  own optimizer state.
- ``"persistent"``: what the authors' code does (openai/supervised-reptile,
  reptile.py:62-72): only the weights are saved and restored around a task, so
  Adam's second moment and step count carry on from task to task and from one
  meta-iteration to the next. The tasks of a meta-batch then depend on each other
  through that state and run one after another: a Python loop over the meta-batch
  is the protocol here, not a shortcut. The state lives on the Reptile object
  (:meth:`Reptile.state_dict`), so checkpoints keep it. Evaluation starts every
  task from the training state and drops its changes (reptile.py:114, 122), which
  is one batched pass of all tasks from one shared start state.

Carrying Adam's second moment with beta1 = 0 is deliberate (the authors,
supervised-reptile issue #28); carrying beta1 = 0.9 momentum from task to task, as
the book's notebook does, would push each task along the previous tasks' steps.
"""
from __future__ import annotations

import numpy as np

from ..autograd import enable_grad, grad, no_grad
from ..ops import stack
from ..optim import SGD, Adam
from ..tensor import tensor
from .base import MetaLearner
from .common import Objective

# Evaluation draws its mini-batch order from this seed, so a set of fixed tasks always gives the same numbers.
EVAL_MINIBATCH_SEED = 0


def reptile_meta_gradient(theta: dict, phi: dict) -> dict:
    """g = theta - mean_i phi_i (constants): theta - epsilon g = theta + epsilon mean_i (phi_i - theta).

    ``phi`` holds each task's weights after its inner loop, with a leading task axis.
    """
    with no_grad():
        return {k: theta[k] - phi[k].mean(axis=0) for k in theta}


def minibatches(n: int, batch_size, steps: int, rng):
    """Index arrays of the examples each of ``steps`` inner steps uses, as supervised-reptile draws them.

    Without replacement: the n examples are shuffled, cut into batches of
    ``batch_size``, reshuffled at the end of each pass, and a partial batch left at
    the end of a pass is completed from the next one (reptile.py:223-248), so it may
    hold an example twice. A batch is at most the whole set (the original would
    repeat examples inside a larger one; no preset asks for that); a whole-set batch
    is None, since the loss sums over it and batch norm pools it in any order.
    ``rng`` (a NumPy Generator) shuffles; None keeps the given order.
    """
    b = n if batch_size is None else min(int(batch_size), n)
    order = np.arange(n) if rng is None else rng.permutation(n)  # drawn even for whole-set batches (same stream)
    if b == n:
        for _ in range(steps):
            yield None
        return
    pending, made = [], 0
    while made < steps:
        for i in order:
            pending.append(i)
            if len(pending) == b:
                yield np.asarray(pending)
                pending, made = [], made + 1
                if made == steps:
                    return
        order = np.arange(n) if rng is None else rng.permutation(n)


def _state_for_tasks(state: dict, num_tasks: int) -> dict:
    """One task's optimizer state dict (arrays (1, ...)) repeated for ``num_tasks`` tasks: the same start for each."""
    return {k: (np.asarray(v).repeat(num_tasks, axis=0) if "/" in k else v) for k, v in state.items()}


class Reptile(MetaLearner):
    """Reptile with an inner loop of SGD or Adam(beta1 = 0) on mini-batches of the support set.

    ``inner_state``: ``"fresh"`` or ``"persistent"`` (see the module docstring);
    ``inner_batch`` / ``eval_inner_batch``: the inner mini-batch while meta-training /
    at evaluation (None: the whole support set; ``eval_inner_batch`` None: ``inner_batch``).
    """

    name = "reptile"

    def __init__(self, model, objective: Objective, inner_lr=1e-3, inner_steps=5, inner_optimizer="adam",
                 inner_batch=None, betas=(0.0, 0.999), inner_state="fresh", eval_inner_batch=None,
                 transductive=True):
        super().__init__(model, objective, inner_lr, inner_steps, first_order=True, transductive=transductive)
        if inner_optimizer not in ("adam", "sgd"):
            raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got {inner_optimizer!r}")
        if inner_state not in ("fresh", "persistent"):
            raise ValueError(f"inner_state must be 'fresh' or 'persistent', got {inner_state!r}")
        self.inner_optimizer, self.inner_batch, self.betas = inner_optimizer, inner_batch, tuple(betas)
        self.inner_state, self.eval_inner_batch = inner_state, eval_inner_batch
        # inner_state='persistent': the inner optimizer's state_dict after the last task (one task's
        # shapes, (1, ...)); empty until the first task. Updated in place, task after task.
        self.carried = {}

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Reads ``cfg.inner_lr``, ``inner_steps``, ``inner_optimizer``, ``inner_batch``, ``inner_state``,
        ``eval_inner_batch``, ``transductive`` (always first order)."""
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   inner_optimizer=cfg.inner_optimizer, inner_batch=cfg.inner_batch, inner_state=cfg.inner_state,
                   eval_inner_batch=cfg.eval_inner_batch, transductive=cfg.transductive)

    @property
    def shared_task_draws(self) -> bool:
        """Chunks of tasks (Config.task_chunk): with a fresh inner optimizer every task of the meta-batch takes
        the same mini-batches, drawn once from ``rng`` (:func:`minibatches`), so each chunk replays them; the
        persistent state draws task after task, so chunks in order continue the stream."""
        return self.inner_state == "fresh"

    # ---- the inner loop ----------------------------------------------------------------------
    def make_inner_optimizer(self, phi: dict, state: dict | None = None):
        """The inner loop's optimizer over every task's weights phi (T, ...): Adam(beta1 = 0) or SGD.

        ``state``: a state_dict to start from (persistent state); else a fresh optimizer.
        tinymeta's Adam adds eps after the bias correction (PyTorch's form); TensorFlow's,
        which the original uses, adds it before (PROTOCOLS.md, "Adam's epsilon").
        """
        opt = Adam(phi, lr=self.inner_lr, betas=self.betas) if self.inner_optimizer == "adam" else \
            SGD(phi, lr=self.inner_lr)
        if state:
            opt.load_state_dict(state)
        return opt

    def task_weights(self, meta_params: dict, num_tasks: int) -> dict:
        """Each task's own copy of theta, (T, ...) leaves the inner optimizer updates in place."""
        with no_grad():  # tensor() copies
            return {k: tensor(v.broadcast_to((num_tasks,) + v.shape), device=v.device, requires_grad=True)
                    for k, v in self.model_params(meta_params).items()}

    def inner_updates(self, phi: dict, opt, support, steps: int, batch_size, rng):
        """Take ``steps`` optimizer steps on mini-batches of the support set; yield phi after each.

        The loss of a task is the objective's (Reptile's code: summed over the mini-batch);
        tasks are independent, so their losses are summed for one ``grad`` call.
        """
        x, y = support
        with enable_grad():
            for idx in minibatches(x.shape[1], batch_size, steps, rng):
                xb, yb = (x, y) if idx is None else (x[:, idx], y[:, idx])
                loss = self.objective.losses(self.model(phi, xb), yb).sum()
                opt.step(grad(loss, phi))
                yield phi

    def adapt(self, meta_params, batch, steps):
        """Evaluation: yield phi before and after each inner step, all tasks at once.

        Mini-batches of ``eval_inner_batch``; with the persistent state every task starts
        from the optimizer state training has reached, and its changes are dropped.
        """
        T = batch.num_tasks
        phi = self.task_weights(meta_params, T)
        start = _state_for_tasks(self.carried, T) if self.inner_state == "persistent" and self.carried else None
        opt = self.make_inner_optimizer(phi, start)
        size = self.inner_batch if self.eval_inner_batch is None else self.eval_inner_batch
        yield phi
        yield from self.inner_updates(phi, opt, batch.support, steps, size, np.random.default_rng(EVAL_MINIBATCH_SEED))

    def adapted_for_training(self, meta_params, batch, rng) -> dict:
        """phi (T, ...) after the meta-training inner loop of every task of the meta-batch."""
        T = batch.num_tasks
        if self.inner_state == "fresh":
            phi = self.task_weights(meta_params, T)
            for _ in self.inner_updates(phi, self.make_inner_optimizer(phi), batch.support, self.inner_steps,
                                     self.inner_batch, rng):
                pass
            return phi
        per_task = []
        for t in range(T):  # persistent: task t starts from the optimizer state task t - 1 left
            task = batch.task(t)
            phi = self.task_weights(meta_params, 1)
            opt = self.make_inner_optimizer(phi, self.carried)
            for _ in self.inner_updates(phi, opt, task.support, self.inner_steps, self.inner_batch, rng):
                pass
            self.carried.clear()
            self.carried.update(opt.state_dict())
            per_task.append(phi)
        with no_grad():
            return {k: stack([p[k][0] for p in per_task]) for k in per_task[0]}

    def meta_gradient(self, meta_params, batch, rng=None, iteration=0):
        """(theta - mean_i phi_i, metrics): an outer SGD step of size epsilon is Reptile's update."""
        theta = self.model_params(meta_params)
        x, y = batch.support
        with no_grad():
            pre = self.objective.losses(self.model(theta, x), y).mean()
        phi = self.adapted_for_training(meta_params, batch, rng)
        with no_grad():
            post = self.objective.losses(self.model(phi, x), y).mean()
        return reptile_meta_gradient(theta, phi), {"support_loss_pre": pre, "support_loss_post": post}

    # ---- the carried state (checkpoints) -------------------------------------------------------
    def state_dict(self) -> dict:
        """The persistent inner optimizer state (keys prefixed ``inner/``); {} when fresh or before any task."""
        return {f"inner/{k}": v for k, v in self.carried.items()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (a resumed run then computes what an uninterrupted one does)."""
        state = dict(state or {})
        if state and self.inner_state != "persistent":
            raise ValueError(f"the checkpoint holds a persistent inner optimizer state, but this Reptile has "
                             f"inner_state={self.inner_state!r}")
        bad = [k for k in state if not k.startswith("inner/")]
        if bad:
            raise ValueError(f"unknown Reptile state {bad}: expected keys 'inner/<optimizer state key>'")
        self.carried.clear()
        self.carried.update({k[len("inner/"):]: v for k, v in state.items()})

    def __repr__(self):
        return (f"Reptile(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, "
                f"inner_optimizer={self.inner_optimizer!r}, inner_batch={self.inner_batch}, "
                f"inner_state={self.inner_state!r}, eval_inner_batch={self.eval_inner_batch}"
                + ("" if self.transductive else ", transductive=False") + ")")
