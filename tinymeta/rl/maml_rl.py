"""MAML and Meta-SGD for reinforcement learning (Finn et al. 2017, Sec. 3.2 and 5.3, Alg. 3).

For each task T_i of a meta-batch (all at once, on the task axis):
  1. sample N trajectories with f_theta; the inner loss is the vanilla
     policy-gradient surrogate (REINFORCE with a linear baseline), Eq. 4:
        L_i(theta) = - mean_{t} log pi_theta(a_t | s_t) A_t,
  2. adapt: theta_i' = theta - alpha grad L_i(theta)   (Meta-SGD: alpha o grad, alpha learned),
  3. sample N fresh trajectories with f_theta_i'.
The meta-objective is TRPO's surrogate of the adapted policies on the fresh
trajectories, with the sampling (adapted) policy as the old policy:
        min_theta  mean_i [ - mean_t  pi_theta_i'(a_t|s_t) / pi_old(a_t|s_t) A_t ]
        s.t.       mean_{i,t} KL(pi_old || pi_theta_i') <= delta,
both differentiated through step 2 (exact second order; the KL's Hessian-vector
products are third order). With no inner step this is plain TRPO on all tasks
jointly: the "pretrained" baseline of the MAML paper's Fig. 4.

Reference code (cbfinn/maml_rl): the meta-objective and KL, sandbox/rocky/tf/algos/
maml_npo.py:80-140 (inner surrogate line 102, ratio surrogate 120-124, mean KL 131,
old distribution = the post-update sampling policy, ``kl_constrain_step = -1`` line 40);
the iteration, sandbox/rocky/tf/algos/batch_maml_polopt.py:152-189; the inner step
on every parameter, sandbox/rocky/tf/policies/maml_minimal_gauss_mlp_policy.py:163-206, 278-301.

Deliberate differences from that code:
- "pretrained" is this same TRPO with no inner step; the original's pretrained
  policy (``use_maml=False``) swapped TRPO for a first-order optimizer (maml_npo.py:31-36);
- Meta-SGD's rates start at MAML's fast rate (0.5 everywhere), so iteration 0 is
  MAML's; the Meta-SGD paper's U[0.005, 0.1] is its supervised setting (``lr_init``);
- sampling, the baseline and TRPO differ as their modules say (fixed trajectory
  count per task; exact Hessian-vector products).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..algorithms.common import per_task
from ..autograd import enable_grad, grad, is_grad_enabled, no_grad
from ..tensor import Tensor, tensor
from . import navigation
from .baseline import linear_feature_baseline
from .policy import kl_divergence, log_likelihood
from .trpo import trpo_step

RATE_PREFIX = "lr/"
ALGORITHMS = ("maml", "meta-sgd", "pretrained")


def _const(array, like: Tensor) -> Tensor:
    return Tensor(like.xp.asarray(array, dtype=like.dtype))


def _valid_mean(x: Tensor, valid: Tensor) -> Tensor:
    """(T,) mean of x (T, N, H) over each task's valid steps."""
    return ops.sum(x * valid, (1, 2)) / ops.sum(valid, (1, 2))


def surrogate_losses(policy, params: dict, paths) -> Tensor:
    """(T,) vanilla policy-gradient surrogates -mean_t log pi(a_t|s_t) A_t (maml_npo.py:98-102).

    Its gradient is the REINFORCE estimate with baseline (the advantages are constants).
    ``params`` may be shared or per task (leading T axis); ``paths`` must be processed.
    """
    like = params["w1"]
    mean, log_std = policy.distribution(params, _const(paths.observations, like))
    logp = log_likelihood(_const(paths.actions, like), mean, log_std)
    return -_valid_mean(logp * _const(paths.advantages, like), _const(paths.valid, like))


def adapt(policy, fast: dict, paths, rates, create_graph: bool) -> dict:
    """One inner policy-gradient step of every task: theta_i' = theta_i - alpha grad L_i (MAML Eq. 1).

    ``fast`` has a leading task axis; ``rates`` is a number or a dict of per-parameter
    rates (Meta-SGD). The task losses are summed, so each task gets its own gradient.
    With ``create_graph`` the step is recorded (the meta-gradient flows through it),
    unless recording is off (``no_grad``: a line search); otherwise it returns
    constants (to sample with).
    """
    create_graph = create_graph and is_grad_enabled()
    with enable_grad():
        if not create_graph:
            fast = {k: Tensor(v.data, requires_grad=True) for k, v in fast.items()}
        grads = grad(surrogate_losses(policy, fast, paths).sum(), fast, create_graph=create_graph)
        new = {k: fast[k] - (rates[k] if isinstance(rates, dict) else rates) * grads[k] for k in fast}
    return new if create_graph else {k: v.detach() for k, v in new.items()}


def meta_objective(policy, meta_params: dict, inner_paths: list, outer_paths, rates):
    """(loss, mean KL) of the post-update policies on the outer trajectories (maml_npo.py:112-131).

    ``inner_paths``: one processed :class:`~tinymeta.rl.navigation.Paths` per inner step
    (empty: plain TRPO). Under ``no_grad`` (the line search) nothing is recorded.
    """
    model = {k: v for k, v in meta_params.items() if not k.startswith(RATE_PREFIX)}
    fast = per_task(model, outer_paths.num_tasks)
    for paths in inner_paths:
        fast = adapt(policy, fast, paths, rates, create_graph=True)
    like = meta_params["w1"]
    mean, log_std = policy.distribution(fast, _const(outer_paths.observations, like))
    actions = _const(outer_paths.actions, like)
    old_mean, old_log_std = _const(outer_paths.means, like), _const(outer_paths.log_stds, like)
    logp = log_likelihood(actions, mean, log_std)
    logp_old = log_likelihood(actions, old_mean, old_log_std)
    valid = _const(outer_paths.valid, like)
    ratio = ops.exp(logp - logp_old)
    loss = -_valid_mean(ratio * _const(outer_paths.advantages, like), valid).mean()
    kl = ops.sum(kl_divergence(old_mean, old_log_std, mean, log_std) * valid) / ops.sum(valid)
    return loss, kl


class MetaRL:
    """MAML-TRPO, Meta-SGD-TRPO or plain TRPO ("pretrained") on a batch of navigation tasks.

    Defaults are the original's point-robot settings (maml_examples/maml_trpo_point.py):
    fast learning rate 0.5 (line 17), 20 trajectories per task (line 19), 40 tasks
    per meta-batch (line 20), horizon 100 (line 21), 1 inner step (line 22),
    TRPO step size (KL bound) 0.01 (line 23); discount 0.99 (batch_maml_polopt.py:39).
    """

    def __init__(self, policy, algorithm="maml", fast_lr=0.5, inner_steps=1, meta_batch=40, fast_batch=20,
                 horizon=navigation.HORIZON, max_kl=0.01, discount=0.99, lr_init=None):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        self.policy, self.algorithm = policy, algorithm
        self.fast_lr, self.meta_batch, self.fast_batch, self.horizon = fast_lr, meta_batch, fast_batch, horizon
        self.inner_steps = 0 if algorithm == "pretrained" else int(inner_steps)
        self.max_kl, self.discount = max_kl, discount
        self.lr_init = fast_lr if lr_init is None else lr_init

    # ---- parameters ------------------------------------------------------------------------
    def init_params(self, seed, dtype="float32") -> dict:
        """Policy parameters, plus Meta-SGD's per-parameter rates ``lr/<name>`` (all = ``lr_init``)."""
        params = self.policy.init_params(seed, dtype=dtype)
        if self.algorithm == "meta-sgd":
            for k, v in list(params.items()):
                params[RATE_PREFIX + k] = tensor(np.full(v.shape, self.lr_init), dtype=v.dtype, requires_grad=True)
        return params

    def rates(self, meta_params):
        """The inner learning rate(s): a number, or Meta-SGD's dict of tensors."""
        if self.algorithm == "meta-sgd":
            return {k[len(RATE_PREFIX):]: v for k, v in meta_params.items() if k.startswith(RATE_PREFIX)}
        return self.fast_lr

    def policy_params(self, meta_params) -> dict:
        return {k: v for k, v in meta_params.items() if not k.startswith(RATE_PREFIX)}

    # ---- sampling ----------------------------------------------------------------------------
    def sample(self, params: dict, goals, rng, num_trajectories) -> navigation.Paths:
        """Processed trajectories of the (shared or per-task) policy ``params`` on ``goals``."""
        like = params["w1"]

        def act(obs):
            with no_grad():
                mean, log_std = self.policy.distribution(params, _const(obs, like))
            return mean.numpy(), log_std.numpy()  # log_std broadcasts: (A,) shared, (T, 1, A) per task

        paths = navigation.rollout(act, goals, num_trajectories, rng, self.horizon)
        return navigation.process(paths, linear_feature_baseline, self.discount)

    def sample_adaptation(self, meta_params, goals, rng, num_trajectories, steps, rates=None):
        """Paths before and after each of ``steps`` inner steps: [paths_0, ..., paths_steps].

        Step k > 1 uses half the rate, as the original's test script (maml_examples/
        test_maml_point.py:75: first step ``init_learning_rate``, then half of it).
        """
        rates = self.rates(meta_params) if rates is None else rates
        fast = {k: v.detach() for k, v in per_task(self.policy_params(meta_params), len(goals)).items()}
        all_paths = [self.sample(fast, goals, rng, num_trajectories)]
        for k in range(steps):
            scale = 1.0 if k == 0 else 0.5
            r = {n: scale * v.detach() for n, v in rates.items()} if isinstance(rates, dict) else scale * rates
            fast = adapt(self.policy, fast, all_paths[-1], r, create_graph=False)
            all_paths.append(self.sample(fast, goals, rng, num_trajectories))
        return all_paths

    # ---- one meta-iteration --------------------------------------------------------------------
    def iteration(self, meta_params: dict, rng: np.random.Generator) -> dict:
        """Sample a meta-batch, adapt, and take one TRPO step on the meta-objective (in place)."""
        goals = navigation.sample_goals(rng, self.meta_batch)
        rates = self.rates(meta_params)
        fast = {k: v.detach() for k, v in per_task(self.policy_params(meta_params), self.meta_batch).items()}
        paths = [self.sample(fast, goals, rng, self.fast_batch)]
        for _ in range(self.inner_steps):  # fast weights as numbers, only to sample with
            fast = adapt(self.policy, fast, paths[-1], rates, create_graph=False)
            paths.append(self.sample(fast, goals, rng, self.fast_batch))

        def objective(p):  # recorded for the gradients; trpo_step runs its line search under no_grad
            return meta_objective(self.policy, p, paths[:-1], paths[-1], self.rates(p))

        info = trpo_step(meta_params, objective, max_kl=self.max_kl)
        info["return_pre"] = paths[0].average_return()
        info["return_post"] = paths[-1].average_return()
        return info
