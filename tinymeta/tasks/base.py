"""The meta-batch: every task's support and query sets stacked on a leading task axis."""
from __future__ import annotations

from dataclasses import dataclass

from ..tensor import Tensor


@dataclass(frozen=True)
class MetaBatch:
    """T tasks at once.

    ``x_support`` is (T, n_support, ...features), ``y_support`` (T, n_support[, 1]);
    likewise the query set. Classification labels are int64 in [0, n_way);
    regression targets are floats. All four live on one device. ``info`` holds
    NumPy arrays with a leading task axis (e.g. sine amplitudes and phases).
    """

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    info: dict | None = None  # per-task facts for plots (amplitudes, class ids); not used in training

    @property
    def num_tasks(self) -> int:
        return self.x_support.shape[0]

    @property
    def support(self):
        return self.x_support, self.y_support

    @property
    def query(self):
        return self.x_query, self.y_query

    @property
    def device(self) -> str:
        return self.x_support.device

    def task(self, t: int) -> "MetaBatch":
        """Task ``t`` alone, keeping a task axis of length 1 (for per-task reference loops)."""
        return self.tasks(slice(t, t + 1))

    def tasks(self, index: slice) -> "MetaBatch":
        """The tasks selected by a slice of the task axis (e.g. evaluation in chunks)."""
        info = None if self.info is None else {k: v[index] for k, v in self.info.items()}
        return MetaBatch(self.x_support[index], self.y_support[index], self.x_query[index],
                         self.y_query[index], info)
