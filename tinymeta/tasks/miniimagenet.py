"""N-way K-shot mini-ImageNet tasks: like Omniglot's, without rotations.

x is (T, N*K, 3, 84, 84) float32 in [0, 1]; the class splits are Ravi & Larochelle's
64 train / 16 val / 20 test classes, as listed in the data folder's csv files.
"""
from __future__ import annotations

from .omniglot import FewShotImageTasks


class MiniImageNet(FewShotImageTasks):
    """mini-ImageNet N-way K-shot tasks; x is (T, N*K, 3, 84, 84) in [0, 1].

    ``data``: a :class:`~tinymeta.data.MiniImageNetData` (else loaded with
    :func:`~tinymeta.data.load_miniimagenet` from ``data_dir`` / ``cache_dir``).
    ``k_query`` defaults to 15 as in MAML's code. See
    :meth:`FewShotImageTasks.sample` for the batch layout and ``info``.
    """

    name = "miniimagenet"
    examples_per_class = 600
    input_shape = (3, 84, 84)

    @classmethod
    def from_config(cls, cfg, *, device=None, data_dir=None, verbose=True) -> "MiniImageNet":
        """``cfg.ways``-way ``cfg.shots``-shot tasks with ``cfg.queries`` queries per class."""
        return cls(cfg.ways, cfg.shots, cfg.queries, data_dir=data_dir, dtype=cfg.dtype, device=device,
                   verbose=verbose)

    def __init__(self, n_way: int = 5, k_support: int = 1, k_query: int = 15, *, data=None,
                 data_dir=None, cache_dir=None, dtype="float32", device=None, verbose: bool = True):
        super().__init__(n_way, k_support, k_query, dtype, device)
        if data is None:
            from ..data.miniimagenet import load_miniimagenet  # noqa: PLC0415

            data = load_miniimagenet(data_dir, cache_dir, verbose=verbose)
        self.data = data
        self.images = data.images
        self.class_offsets = data.class_offsets
        self.pools = {split: data.indices(split) for split in ("train", "val", "test")}
        for split, pool in self.pools.items():
            if len(pool) == 0:
                raise ValueError(f"the mini-ImageNet data in {data.source} has no {split!r} classes; "
                                 f"check {split}.csv")

    def __repr__(self):
        return (f"MiniImageNet(n_way={self.n_way}, k_support={self.k_support}, k_query={self.k_query}, "
                f"device={self.device!r})")


__all__ = ["MiniImageNet"]
