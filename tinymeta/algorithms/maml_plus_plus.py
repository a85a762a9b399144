"""MAML++ (Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019, arXiv:1810.09502).

MAML with options that stabilise and speed up its training (Sec. 4 of the paper), each
off by default, so that ``MAMLPlusPlus`` with no option computes exactly MAML:

- **Multi-step loss (MSL).** The meta-loss weighs the query loss after *every* inner step,
      L = mean_i sum_s v_s(t) L_i^query(theta_i^(s+1)),
  with weights v(t) that move from uniform to the last step over the first
  ``multi_step_loss_iterations`` iterations (:func:`multi_step_loss_weights`); after
  that only the last step's loss counts (weight 1), as in MAML.
- **Derivative-order annealing (DA).** First order for the first
  ``first_order_iterations`` iterations, second order after.
- **Per-step batch-norm weights (BNWB).** Each inner step s has its own batch-norm
  scale and shift, meta-learned and not adapted by the inner loop; the support pass of
  step s and the query pass after step s's update both use step s's.
- **Learned per-layer per-step inner rates (LSLR).** theta^(s+1) = theta^(s) - alpha_{l,s}
  grad_l: one learned rate for each parameter tensor l and step s, initialised to
  ``inner_lr`` and meta-learned with theta.
- Cosine annealing of the outer rate (CA) is the training loop's ``lr_schedule = "cosine"``.

The original code (AntreasAntoniou/HowToTrainYourMAMLPytorch) is the spec; PROTOCOLS.md
cites its lines. Its per-step running statistics are collected but never used to
normalise (``F.batch_norm(..., training=True)`` at every call, meta_neural_network_architectures.py:246),
so batch statistics per task, tinymeta's batch norm, compute what it computes.
"""
from __future__ import annotations

from ..autograd import grad
from ..tensor import tensor
from .base import MetaLearner
from .common import inner_sgd, per_task, query_metrics

RATE_PREFIX = "lr/"          # learned per-step inner rates: "lr/<weight>", shape (steps,)
NORM_PREFIX = "step_bn/"     # per-step batch-norm weights: "step_bn/<bn weight>", shape (steps, channels)


def multi_step_loss_weights(steps: int, iteration: int, msl_iterations: int, epoch_iterations: int = 1):
    """The weights v_0..v_{S-1} of the query losses after each inner step at ``iteration`` (0-based), or None.

    The original's ``get_per_step_loss_importance_vector`` (few_shot_learning_system.py:83-103)
    in iterations: with epoch e = iteration // ``epoch_iterations`` and E =
    ``msl_iterations / epoch_iterations`` epochs of multi-step loss,

        v_s     = max(1/S - e / (S E), 0.03 / S)                    for s < S - 1
        v_{S-1} = min(1/S + e (S - 1) / (S E), 1 - (S - 1) 0.03 / S)

    so the weights start uniform and shift towards the last step; they sum to 1.
    None once ``iteration >= msl_iterations`` (the original's ``epoch <
    multi_step_loss_num_epochs``, few_shot_learning_system.py:232): only the last
    step's query loss then counts, with weight 1.

    Example::

        multi_step_loss_weights(5, 0, 5000, 500)      # [0.2, 0.2, 0.2, 0.2, 0.2]
        multi_step_loss_weights(5, 4500, 5000, 500)   # epoch 9: [0.02, 0.02, 0.02, 0.02, 0.92]
    """
    if iteration >= msl_iterations:
        return None
    epoch = iteration // epoch_iterations
    epochs = msl_iterations / epoch_iterations
    decay = 1.0 / steps / epochs
    least = 0.03 / steps
    weights = [max(1.0 / steps - epoch * decay, least) for _ in range(steps - 1)]
    weights.append(min(1.0 / steps + epoch * (steps - 1) * decay, 1.0 - (steps - 1) * least))
    return weights


def rates_at(rates, step: int):
    """The inner rate(s) of inner step ``step``: a number as it is, or ``{name: rates[name][step]}`` (LSLR)."""
    if isinstance(rates, dict):
        return {k: r[step] for k, r in rates.items()}
    return rates


def norm_at(step_norm, step: int) -> dict:
    """The batch-norm weights of inner step ``step``: ``{name: step_norm[name][step]}`` ({} without BNWB)."""
    return {} if step_norm is None else {k: w[step] for k, w in step_norm.items()}


def maml_plus_plus_meta_loss(model, objective, params, batch, rates, steps, step_weights=None, first_order=False,
                             keys=None, step_norm=None):
    """(mean_i sum_s v_s L_i^query(theta_i^(s+1)), metrics): MAML++'s meta-objective on a meta-batch.

    ``params`` is theta; ``rates`` alpha: a number (MAML's) or a dict of (steps,) tensors,
    one rate per weight and step (LSLR); ``step_weights`` the multi-step loss weights v
    (:func:`multi_step_loss_weights`), or None for the last step's query loss alone
    (MAML's objective); ``step_norm`` None, or a dict of (steps, C) batch-norm weights
    whose row s replaces the model's during step s (BNWB); ``keys`` the weights the inner
    loop adapts (None: all). Each step is MAML's Eq. 1 (:func:`tinymeta.algorithms.inner_sgd`),
    recorded unless ``first_order``. With every option off it computes exactly
    :func:`tinymeta.algorithms.maml_meta_loss`. ``metrics`` are those of the last step's query set.

    Example::

        loss, metrics = maml_plus_plus_meta_loss(model, Objective("regression"), params, batch, 0.01, steps=5,
                                                 step_weights=multi_step_loss_weights(5, 0, 5000, 500))
    """
    if steps < 1:
        raise ValueError(f"MAML++ needs at least one inner step, got {steps}")
    x, y = batch.support
    fast = per_task(params, batch.num_tasks)
    total, support_losses = None, []
    for s in range(steps):
        norm = norm_at(step_norm, s)
        fast = inner_sgd(lambda f: objective.losses(model({**f, **norm}, x), y), fast, rates_at(rates, s), 1,
                         create_graph=not first_order, keys=keys, trace=support_losses)
        if step_weights is not None or s == steps - 1:  # the query set after step s, with step s's batch norm
            losses, metrics = query_metrics(objective, model({**fast, **norm}, batch.x_query), batch.y_query,
                                            support_losses)
            weighted = losses if step_weights is None else step_weights[s] * losses
            total = weighted if total is None else total + weighted
    return total.mean(), metrics


class MAMLPlusPlus(MetaLearner):
    """MAML with MAML++'s options (each off by default: then it is MAML).

    ``multi_step_loss_iterations`` (MSL, 0: off), ``first_order_iterations`` (DA, 0: off),
    ``per_step_bn`` (BNWB), ``learned_step_rates`` (LSLR) and ``epoch_iterations`` (the
    original's epoch, the unit its schedules step in) are the run config's fields of the
    same names. The training loop passes the iteration it is at to :meth:`meta_gradient`;
    the schedules read it.
    Meta-parameters: the model's weights, plus ``lr/<weight>`` (steps,) with LSLR and,
    with BNWB, ``step_bn/<bn weight>`` (steps, C) in place of each batch-norm weight.
    """

    name = "maml++"

    def __init__(self, model, objective, inner_lr=0.01, inner_steps=1, first_order=False, adapt_norm=True,
                 transductive=True, *, multi_step_loss_iterations=0, first_order_iterations=0,
                 learned_step_rates=False, per_step_bn=False, epoch_iterations=1):
        super().__init__(model, objective, inner_lr, inner_steps, first_order, adapt_norm, transductive)
        if self.inner_steps < 1:
            raise ValueError(f"MAML++ needs at least one inner step, got inner_steps={inner_steps}")
        if per_step_bn and adapt_norm:
            raise ValueError("per-step batch-norm weights are not adapted by the inner loop (each step replaces "
                             "them): per_step_bn needs adapt_norm False")
        if per_step_bn and not model.norm_keys():
            raise ValueError(f"per_step_bn: {model!r} has no batch norm")
        self.multi_step_loss_iterations, self.first_order_iterations = int(multi_step_loss_iterations), int(
            first_order_iterations)
        self.learned_step_rates, self.per_step_bn = bool(learned_step_rates), bool(per_step_bn)
        self.epoch_iterations = int(epoch_iterations)

    @classmethod
    def from_config(cls, model, objective, cfg):
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps, first_order=cfg.first_order,
                   adapt_norm=cfg.adapt_norm, transductive=cfg.transductive,
                   multi_step_loss_iterations=cfg.multi_step_loss_iterations,
                   first_order_iterations=cfg.first_order_iterations, learned_step_rates=cfg.learned_step_rates,
                   per_step_bn=cfg.per_step_bn, epoch_iterations=cfg.epoch_iterations)

    # ---- the schedules ---------------------------------------------------------------------
    def step_weights(self, iteration: int):
        """The multi-step loss weights at ``iteration`` (None: the last step's loss alone)."""
        return multi_step_loss_weights(self.inner_steps, iteration, self.multi_step_loss_iterations,
                                       self.epoch_iterations)

    def second_order_at(self, iteration: int) -> bool:
        """Second order unless ``first_order``, or while ``iteration < first_order_iterations`` (DA).

        The original: ``second_order and epoch > first_order_to_second_order_epoch``
        (few_shot_learning_system.py:304-305), i.e. first order for (that epoch + 1) epochs.
        """
        return not self.first_order and iteration >= self.first_order_iterations

    # ---- meta-parameters ----------------------------------------------------------------------
    def init_meta_params(self, params, rng=None):
        meta = dict(params)
        S = self.inner_steps
        if self.per_step_bn:  # every step starts from the model's initial batch-norm weights
            for k in self.model.norm_keys():
                w = meta.pop(k)
                meta[NORM_PREFIX + k] = tensor(w.detach().broadcast_to((S,) + w.shape).numpy(), dtype=w.dtype,
                                               device=w.device, requires_grad=True)
        if self.learned_step_rates:  # a rate per adapted weight and step, all alpha at first
            for k in self.inner_keys(params) or list(params):
                meta[RATE_PREFIX + k] = tensor([self.inner_lr] * S, dtype=params[k].dtype,
                                               device=params[k].device, requires_grad=True)
        return meta

    def step_norm(self, meta_params):
        """The per-step batch-norm weights {bn weight: (steps, C)}, or None without BNWB."""
        if not self.per_step_bn:
            return None
        return {k[len(NORM_PREFIX):]: v for k, v in meta_params.items() if k.startswith(NORM_PREFIX)}

    def inner_rates(self, meta_params):
        """alpha (a number), or {weight: (steps,) rates} with LSLR."""
        if not self.learned_step_rates:
            return self.inner_lr
        return {k[len(RATE_PREFIX):]: v for k, v in meta_params.items() if k.startswith(RATE_PREFIX)}

    def model_params(self, meta_params):
        """The model's weights; with BNWB, batch norm's are step 0's (what the net is before adaptation)."""
        params = {k: v for k, v in meta_params.items() if not k.startswith((RATE_PREFIX, NORM_PREFIX))}
        params.update(norm_at(self.step_norm(meta_params), 0))
        return params

    # ---- meta-training and evaluation -------------------------------------------------------------
    def meta_loss(self, meta_params, batch, iteration: int = 0):
        """(meta-loss, metrics) at training ``iteration`` (0-based), which sets the MSL weights and the order."""
        params = self.model_params(meta_params)
        return maml_plus_plus_meta_loss(self.model, self.objective, params, batch, self.inner_rates(meta_params),
                                        self.inner_steps, self.step_weights(iteration),
                                        not self.second_order_at(iteration), self.inner_keys(params),
                                        self.step_norm(meta_params))

    def meta_gradient(self, meta_params, batch, rng=None, iteration: int = 0):
        loss, metrics = self.meta_loss(meta_params, batch, iteration)
        return grad(loss, meta_params), metrics

    def adapt(self, meta_params, batch, steps):
        """The fast weights before adaptation and after each step, each step with its own rates and batch norm."""
        if steps > self.inner_steps and (self.per_step_bn or self.learned_step_rates):
            raise ValueError(f"MAML++ learned its per-step {'batch norm' if self.per_step_bn else 'rates'} for "
                             f"{self.inner_steps} inner steps; evaluate with at most {self.inner_steps}, got {steps}")
        params = self.model_params(meta_params)
        rates, step_norm, keys = self.inner_rates(meta_params), self.step_norm(meta_params), self.inner_keys(params)
        x, y = batch.support
        fast = per_task(params, batch.num_tasks)
        yield fast
        for s in range(steps):
            norm = norm_at(step_norm, s)
            fast = inner_sgd(lambda f: self.objective.losses(self.model({**f, **norm}, x), y), fast,
                             rates_at(rates, s), 1, create_graph=False, keys=keys)
            fast = {**fast, **norm}  # the query after step s goes through step s's batch norm
            yield fast

    def __repr__(self):
        options = [f"{k}={getattr(self, k)}" for k in ("multi_step_loss_iterations", "first_order_iterations",
                                                       "learned_step_rates", "per_step_bn", "epoch_iterations")]
        return super().__repr__()[:-1] + ", " + ", ".join(options) + ")"
