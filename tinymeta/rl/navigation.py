"""2D navigation, the point-robot task of MAML's RL experiments (Finn et al. 2017, Sec. 5.3).

A point starts at the origin and moves by its (clipped) action each step; the
reward is minus its distance to a goal drawn uniformly in [-0.5, 0.5]^2; an
episode lasts ``horizon`` = 100 steps or ends once the point is within 0.01 of
the goal in both coordinates. Settings from the original code, cbfinn/maml_rl:

- goals ``U[-0.5, 0.5]^2``: maml_examples/point_env_randgoal.py:20;
- start at (0, 0), observation = position: point_env_randgoal.py:33-34;
- step: ``pos += action``, ``reward = -|pos - goal|``, done when ``|dx| < 0.01 and |dy| < 0.01``:
  point_env_randgoal.py:37-45;
- actions: the policy acts in [-1, 1]^2 and rllab's ``normalize`` maps that to the
  env's box [-0.1, 0.1]^2 as ``lb + (a + 1) (ub - lb) / 2 = 0.1 a``, then clips
  (rllab/envs/normalized_env.py:80-83, action box at point_env_randgoal.py:17);
  the unclipped action is what the policy's likelihood is evaluated at;
- horizon 100: maml_examples/maml_trpo_point.py:21.

Everything runs on the host in NumPy over a task axis: T tasks x N trajectories
advance together, one vectorised step at a time. A finished trajectory stays
put and its later steps are marked invalid (``valid = 0``); the original ends
the path there and samples more paths to fill its quota of transitions, which
is the one difference (see :func:`rollout`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GOAL_LOW, GOAL_HIGH = -0.5, 0.5     # point_env_randgoal.py:20
ACTION_BOUND = 0.1                  # point_env_randgoal.py:17
DONE_RADIUS = 0.01                  # point_env_randgoal.py:43
HORIZON = 100                       # maml_trpo_point.py:21


def sample_goals(rng: np.random.Generator, num_tasks: int) -> np.ndarray:
    """(T, 2) goals drawn uniformly in [-0.5, 0.5]^2 (one task each)."""
    return rng.uniform(GOAL_LOW, GOAL_HIGH, size=(num_tasks, 2))


def step(position: np.ndarray, action: np.ndarray, goal: np.ndarray):
    """One move of the point: (new position, reward, done).

    ``action`` is the policy's raw action in normalised units; the move is
    ``clip(0.1 * action, -0.1, 0.1)``. ``goal`` broadcasts against ``position``.
    reward = -||new position - goal||; done when both coordinates are within 0.01.
    """
    move = np.clip(ACTION_BOUND * action, -ACTION_BOUND, ACTION_BOUND)
    new = position + move
    d = new - goal
    reward = -np.sqrt((d * d).sum(axis=-1))
    done = (np.abs(d) < DONE_RADIUS).all(axis=-1)
    return new, reward, done


@dataclass
class Paths:
    """Trajectories of T tasks x N trajectories x H steps, as host arrays.

    observations (T, N, H, 2): position before each action; actions (T, N, H, 2):
    the raw sampled actions; rewards (T, N, H); valid (T, N, H): 1 up to and
    including the step that reached the goal, 0 after; means, log_stds (T, N, H, 2):
    the sampling policy's Gaussian (the "old" distribution of TRPO's ratio and KL);
    goals (T, 2). ``advantages`` (T, N, H) is filled in by :func:`process`.
    """

    goals: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    valid: np.ndarray
    means: np.ndarray
    log_stds: np.ndarray
    returns: np.ndarray | None = None
    advantages: np.ndarray | None = None

    @property
    def num_tasks(self) -> int:
        return self.goals.shape[0]

    def average_return(self) -> float:
        """Mean undiscounted return per trajectory (rllab's AverageReturn)."""
        return float((self.rewards * self.valid).sum(axis=-1).mean())

    def task_returns(self) -> np.ndarray:
        """(T,) mean undiscounted return of each task's trajectories."""
        return (self.rewards * self.valid).sum(axis=-1).mean(axis=-1)


def rollout(act, goals: np.ndarray, num_trajectories: int, rng: np.random.Generator,
            horizon: int = HORIZON) -> Paths:
    """Run ``num_trajectories`` episodes per goal, all tasks and trajectories at once.

    ``act(obs)`` takes observations (T, N, 2) and returns the policy's Gaussian
    ``(mean, log_std)``, each broadcastable to (T, N, 2); actions are drawn as
    ``mean + exp(log_std) * eps``, eps ~ N(0, I) (the original's ``get_actions``).
    Trajectories that reach the goal stop moving and their later steps get
    ``valid = 0``. (The original then starts a new path to fill a quota of
    N x H transitions per task; here each task has exactly N trajectories.)
    """
    goals = np.asarray(goals, dtype=np.float64)
    if goals.ndim != 2 or goals.shape[1] != 2:
        raise ValueError(f"goals must be (T, 2), got shape {goals.shape}")
    if num_trajectories < 1 or horizon < 1:
        raise ValueError(f"need at least one trajectory and one step, got {num_trajectories} and {horizon}")
    T, N, H = goals.shape[0], num_trajectories, horizon
    pos = np.zeros((T, N, 2))
    alive = np.ones((T, N), dtype=bool)
    out = {k: np.zeros((T, N, H, 2)) for k in ("observations", "actions", "means", "log_stds")}
    rewards, valid = np.zeros((T, N, H)), np.zeros((T, N, H))
    for t in range(H):
        mean, log_std = act(pos)
        mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), (T, N, 2))
        log_std = np.broadcast_to(np.asarray(log_std, dtype=np.float64), (T, N, 2))
        action = mean + np.exp(log_std) * rng.standard_normal((T, N, 2))
        new, reward, done = step(pos, action, goals[:, None, :])
        out["observations"][:, :, t] = pos
        out["actions"][:, :, t] = action
        out["means"][:, :, t] = mean
        out["log_stds"][:, :, t] = log_std
        rewards[:, :, t] = np.where(alive, reward, 0.0)
        valid[:, :, t] = alive
        pos = np.where(alive[..., None], new, pos)
        alive = alive & ~done
    return Paths(goals=goals, rewards=rewards, valid=valid, **out)


def discounted_cumsum(x: np.ndarray, discount: float) -> np.ndarray:
    """y[..., t] = sum_{k >= t} discount^(k - t) x[..., k] along the last axis."""
    y = np.zeros_like(x, dtype=np.float64)
    acc = np.zeros(x.shape[:-1])
    for t in range(x.shape[-1] - 1, -1, -1):
        acc = x[..., t] + discount * acc
        y[..., t] = acc
    return y


def process(paths: Paths, baseline, discount: float = 0.99, center: bool = True) -> Paths:
    """Returns, baseline and advantages of every task, as rllab's ``process_samples``.

    returns: discounted reward-to-go (discount 0.99: sandbox/rocky/tf/algos/batch_maml_polopt.py:39);
    the baseline is fitted to each task's own paths and then evaluated on them
    (rllab/sampler/base.py:53-67); with GAE lambda = 1 (batch_maml_polopt.py:40)
    the advantage telescopes to ``return - baseline``; ``center`` standardises the
    advantages of each task over its valid steps (rllab/algos/util.py:7-8,
    sampler/base.py:93-94, center_adv=True at batch_maml_polopt.py:43).
    ``baseline(paths, returns)`` returns (T, N, H) predictions.
    """
    returns = discounted_cumsum(paths.rewards * paths.valid, discount)
    adv = (returns - baseline(paths, returns)) * paths.valid
    if center:
        n = paths.valid.sum(axis=(1, 2), keepdims=True)
        mean = adv.sum(axis=(1, 2), keepdims=True) / n
        var = (((adv - mean) * paths.valid) ** 2).sum(axis=(1, 2), keepdims=True) / n
        adv = (adv - mean) / (np.sqrt(var) + 1e-8) * paths.valid
    paths.returns, paths.advantages = returns, adv
    return paths
