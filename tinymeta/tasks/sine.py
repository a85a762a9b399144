"""MAML's sine-wave regression tasks (Finn et al. 2017, Sec. 5.1).

Each task is a function y = A sin(x - phi) with amplitude A ~ U[0.1, 5.0] and phase
phi ~ U[0, pi]; its support and query points have x ~ U[-5, 5]. A learner sees K
support points of a new task and must predict the whole curve.
"""
from __future__ import annotations

import numpy as np

from ..nn import MLP
from ..tensor import tensor
from .base import TEST_SEED, VAL_SEED, MetaBatch, TaskFamily

# The held-out evaluation set is drawn from this seed, so every run, on every machine,
# evaluates on the same 600 tasks (20170309: MAML's arXiv submission date).
EVAL_SEED = TEST_SEED  # 20170309
EVAL_TASKS = 600  # as in the MAML code


class Sinusoid(TaskFamily):
    """The distribution of sine tasks; :meth:`sample` draws a :class:`MetaBatch`.

    ``k_support`` / ``k_query`` points per task; ``x`` and ``y`` are (T, K, 1) arrays
    of ``dtype`` on ``device`` (default :func:`tinymeta.default_device`).
    ``info = {'amplitude': (T,), 'phase': (T,)}`` (float64 NumPy).

    Example::

        >>> sine = Sinusoid(k_support=10, k_query=10)
        >>> batch = sine.sample(25, np.random.default_rng(0))
        >>> batch.x_support.shape, batch.y_query.shape
        ((25, 10, 1), (25, 10, 1))
    """

    name, aliases, kind = "sine", ("sinusoid",), "regression"
    input_shape = (1,)
    unused_fields = ("ways", "pool", "filters", "activation")
    eval_chunk = 100  # small tasks: evaluate many at once

    def __init__(self, k_support: int = 10, k_query: int = 10, amp_range=(0.1, 5.0),
                 phase_range=(0.0, np.pi), x_range=(-5.0, 5.0), dtype="float32", device=None):
        if k_support < 1 or k_query < 1:
            raise ValueError(f"k_support and k_query must be >= 1, got {k_support} and {k_query}")
        for name, (lo, hi) in (("amp_range", amp_range), ("phase_range", phase_range),
                               ("x_range", x_range)):
            if not lo <= hi:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(lo, hi)}")
        self.k_support, self.k_query = int(k_support), int(k_query)
        self.amp_range = (float(amp_range[0]), float(amp_range[1]))
        self.phase_range = (float(phase_range[0]), float(phase_range[1]))
        self.x_range = (float(x_range[0]), float(x_range[1]))
        self.dtype = np.dtype(dtype)
        self.device = device

    @classmethod
    def from_config(cls, cfg, *, device=None, data_dir=None, verbose=True) -> "Sinusoid":
        """``cfg.shots`` support and ``cfg.queries`` query points per task (no data folder)."""
        return cls(cfg.shots, cfg.queries, dtype=cfg.dtype, device=device)

    @classmethod
    def build_model(cls, cfg) -> MLP:
        """MAML's regressor: an MLP 1 -> ``cfg.hidden`` -> 1 with ReLUs."""
        return MLP((1, *cfg.hidden, 1))

    def __repr__(self):
        return (f"Sinusoid(k_support={self.k_support}, k_query={self.k_query}, "
                f"amp_range={self.amp_range}, phase_range={self.phase_range}, x_range={self.x_range})")

    @staticmethod
    def function(x, amplitude, phase) -> np.ndarray:
        """The true curves: ``amplitude[t] * sin(x[t, ...] - phase[t])`` for each task ``t``.

        ``amplitude`` and ``phase`` are (T,); ``x`` is (T, ...) or a shared (n,) grid,
        giving (T, n).
        """
        amplitude, phase = np.asarray(amplitude, np.float64), np.asarray(phase, np.float64)
        x = np.asarray(x, np.float64)
        if x.ndim == 1:  # one grid shared by every task
            x = np.broadcast_to(x, (amplitude.shape[0], x.shape[0]))
        extra = (1,) * (x.ndim - 1)
        return amplitude.reshape(-1, *extra) * np.sin(x - phase.reshape(-1, *extra))

    def grid(self, amplitude, phase, num: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``: an evenly spaced grid over ``x_range`` (num,) and each task's curve (T, num)."""
        x = np.linspace(*self.x_range, num)
        return x, self.function(x, amplitude, phase)

    def sample(self, num_tasks: int, rng: np.random.Generator, split: str = "train", *,
               k_support: int | None = None, k_query: int | None = None) -> MetaBatch:
        """Draw ``num_tasks`` tasks from ``rng`` (a :class:`numpy.random.Generator`).

        Draws in this order: amplitudes (T,), phases (T,), then the x of every task's
        support and query points (T, K + Q), so the same generator state always gives
        the same batch. Sine tasks have no class split: every ``split`` ('train',
        'val', 'test') is the same distribution (held-out sets differ by their seeds:
        :meth:`fixed_tasks`). ``k_support`` / ``k_query`` override the constructor's.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}: use 'train', 'val' or 'test'")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        k = self.k_support if k_support is None else int(k_support)
        q = self.k_query if k_query is None else int(k_query)
        amplitude = rng.uniform(*self.amp_range, size=num_tasks)
        phase = rng.uniform(*self.phase_range, size=num_tasks)
        x = rng.uniform(*self.x_range, size=(num_tasks, k + q))
        return self._batch(amplitude, phase, x[:, :k], x[:, k:])

    def eval_set(self, num_tasks: int = EVAL_TASKS, seed: int = EVAL_SEED, k_support: int | None = None,
                 k_query: int | None = None) -> MetaBatch:
        """A fixed held-out set of tasks: the same numbers on every run and machine.

        The task parameters, the support x and the query x come from three separate
        streams of ``seed``, so changing ``k_support`` (e.g. evaluating with K = 5, 10
        and 20) keeps the same tasks and the same query points, and the MSEs stay
        comparable. The first ``n`` tasks of a larger set equal an ``n``-task set.
        """
        k = self.k_support if k_support is None else int(k_support)
        q = self.k_query if k_query is None else int(k_query)
        task_rng, support_rng, query_rng = (np.random.default_rng([seed, i]) for i in range(3))
        # draw per task, so the first n tasks do not depend on num_tasks
        params = task_rng.uniform(size=(num_tasks, 2))
        amplitude = self.amp_range[0] + params[:, 0] * (self.amp_range[1] - self.amp_range[0])
        phase = self.phase_range[0] + params[:, 1] * (self.phase_range[1] - self.phase_range[0])
        lo, hi = self.x_range
        x_s = lo + support_rng.uniform(size=(num_tasks, k)) * (hi - lo)
        x_q = lo + query_rng.uniform(size=(num_tasks, q)) * (hi - lo)
        return self._batch(amplitude, phase, x_s, x_q)

    def fixed_tasks(self, split: str, num_tasks: int, chunk: int):
        """The fixed ``split`` set (:meth:`eval_set` from ``VAL_SEED`` / ``TEST_SEED``) in batches of ``chunk``."""
        tasks = self.eval_set(num_tasks, seed=TEST_SEED if split == "test" else VAL_SEED)
        for start in range(0, num_tasks, chunk):
            yield tasks.tasks(slice(start, min(start + chunk, num_tasks)))

    def _batch(self, amplitude, phase, x_s, x_q) -> MetaBatch:
        y_s, y_q = self.function(x_s, amplitude, phase), self.function(x_q, amplitude, phase)

        def t(a):  # (T, K) float64 -> (T, K, 1) Tensor of the requested dtype and device
            return tensor(a[..., None].astype(self.dtype), device=self.device)

        return MetaBatch(t(x_s), t(y_s), t(x_q), t(y_q),
                         info={"amplitude": amplitude, "phase": phase})


__all__ = ["Sinusoid", "EVAL_SEED", "EVAL_TASKS"]
