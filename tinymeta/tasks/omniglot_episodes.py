"""Omniglot episodes with the label shown one step late: the task of one-shot learning with a
memory-augmented network (Santoro et al. 2016, arXiv:1605.06065, Sec. 4 and Fig. 1).

An episode picks N characters (classes), gives them the labels 0..N-1 in random order, and
shows K drawings of each, all N K shuffled into one sequence. At step t the net sees image
x_t together with the one-hot label of the *previous* image, y_{t-1} (zeros at t = 0), and
must output y_t: it can only be right about the first drawing of a class by chance, and
must bind later drawings to the label it saw one step after the first.

A :class:`~tinymeta.tasks.base.MetaBatch` of T episodes holds the net's inputs
``x`` (T, N K, 400 + N) (the 20x20 image flattened, then the shifted one-hot label) and
the labels ``y`` (T, N K) int64. An episode is its own support and query set (every step
is first a query, then, one step later, a labelled example), so ``x_support is x_query``
and ``y_support is y_query``. ``info['instance']`` (T, N K) says which drawing of its class
each step shows (1 = the first), for the paper's accuracy at the 1st, 2nd, ... instance.

Protocol (Sec. 4.1 and tristandeleu/ntm-one-shot), with the deviations named:

- 5 classes, 10 drawings each: 50-step episodes; one-hot labels (the paper's 5-class
  setting; mann/utils/generators.py:11 nb_samples=5, nb_samples_per_class=10).
- Images 20x20 (Sec. 4.1; generators.py:12 img_size=(20, 20)), here by area-averaging
  tinymeta's 28x28 Omniglot cache (nearest-neighbour from the 105x105 PNGs), not resized
  from the PNGs (images.py:36): a deviation in pixel values, not in the task. Strokes 1,
  background 0 (images.py:38 inverts the PNGs).
- Characters: 1200 for training and 423 for testing (Sec. 4.1), with ``split_mode``
  'reptile' (1200/423; validation tasks then come from the test characters, for
  monitoring only).
- Augmentation per episode: each class is turned by a random multiple of 90 degrees
  (``rotations='per-task'``; the paper augments with 90/180/270-degree rotations as
  new classes) and each drawing is translated by up to ``max_shift`` pixels in each
  direction (Config ``episode_shift``, default ``MAX_SHIFT``), zeros shifted in
  (tristandeleu's generator: up to 10 of 105 pixels, generators.py:57; here 2 of 20). The paper's small random rotations
  (generators.py:56, up to 30 degrees) are not applied: a deviation. (tristandeleu's
  own run sets both to 0, examples/omniglot.py:20, and its resize takes the rotated
  image, not the shifted one, images.py:34-36: it trains without augmentation.)
- Drawings of an episode are distinct (generators.py:51 samples without replacement);
  the episode order is a uniform shuffle (images.py:20).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..memory import MANN
from ..tensor import Tensor
from .base import MetaBatch, TaskFamily
from .omniglot import ROTATIONS, SPLIT_MODES, omniglot_splits

SIDE = 20        # image side (Sec. 4.1)
MAX_SHIFT = 2    # pixels of random translation, each direction (the default; Config.episode_shift)
MEMORY_SIZE, MEMORY_WIDTH, GAMMA = 128, 40, 0.95  # tristandeleu mann/model.py:12,36 (the paper's 5-class setting)


def area_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix R with R @ v the area average of v over n_out equal cells (rows sum to 1)."""
    edges = np.linspace(0, n_in, n_out + 1)
    R = np.zeros((n_out, n_in))
    for i in range(n_out):
        for j in range(n_in):
            R[i, j] = max(0.0, min(edges[i + 1], j + 1) - max(edges[i], j))
    return R / R.sum(axis=1, keepdims=True)


class OmniglotEpisodes(TaskFamily):
    """Episodes of N classes x K drawings with the label shown one step late (see the module docstring).

    ``n_way`` classes, ``k_support`` drawings per class (K; ``k_query`` must equal it: an
    episode is its own query set). ``data``: an :class:`~tinymeta.data.OmniglotData`
    (else loaded from ``data_dir``); ``split_mode`` and ``rotations`` as for
    :class:`~tinymeta.tasks.Omniglot` (``rotations``: 'per-task' or 'none'); ``max_shift``:
    each drawing moves by a random whole number of pixels in [-max_shift, max_shift] along
    each axis (0: drawings as they are).

    Example::

        >>> episodes = OmniglotEpisodes(n_way=5, k_support=10, k_query=10)
        >>> batch = episodes.sample(16, np.random.default_rng(0))
        >>> batch.x_query.shape, batch.y_query.shape
        ((16, 50, 405), (16, 50))
    """

    name = "omniglot-episodes"
    kind = "classification"
    online = True  # every step is predicted, then labelled one step later: only an online learner fits
    examples_per_class = 20
    input_shape = (SIDE * SIDE,)

    def __init__(self, n_way: int = 5, k_support: int = 10, k_query: int | None = None, *, data=None,
                 data_dir=None, cache_dir=None, split_mode: str = "reptile", rotations: str = "per-task",
                 max_shift: int = MAX_SHIFT, dtype="float32", device=None, verbose: bool = True):
        k_query = k_support if k_query is None else k_query
        if n_way < 1 or k_support < 1:
            raise ValueError(f"n_way and k_support must be >= 1, got {n_way}, {k_support}")
        if k_query != k_support:
            raise ValueError(f"an episode is its own query set: k_query must equal k_support, got {k_query} "
                             f"and {k_support}")
        if rotations not in ("per-task", "none"):
            raise ValueError(f"rotations must be 'per-task' or 'none' for episodes, got {rotations!r}")
        if not 0 <= max_shift < SIDE // 2:
            raise ValueError(f"max_shift must be a whole number of pixels from 0 to {SIDE // 2 - 1} (the images are "
                             f"{SIDE}x{SIDE}), got {max_shift}")
        self.max_shift = int(max_shift)
        self.n_way, self.k_support, self.k_query = int(n_way), int(k_support), int(k_query)
        self.dtype = np.dtype(dtype)
        self.device = None if device is None else backend.check_device(device)
        self.rotations, self.split_mode = rotations, split_mode
        if data is None:
            from ..data.omniglot import load_omniglot  # noqa: PLC0415

            data = load_omniglot(data_dir, cache_dir, verbose=verbose)
        self.data = data
        c, d, h, w = data.images.shape
        if self.k_support > d:
            raise ValueError(f"{self.k_support} drawings per class, but each character has only {d}")
        R, C = area_resize_matrix(h, SIDE), area_resize_matrix(w, SIDE)
        # strokes 1, background 0, 20x20: computed once for every drawing (float32: 52 MB)
        self.images = np.einsum("ih,cdhw,jw->cdij", R, data.images.astype(np.float32) / 255, C,
                                optimize=True).astype(np.float32)
        self.pools = omniglot_splits(data, split_mode)
        small = min(len(p) for p in self.pools.values())
        if self.n_way > small:
            raise ValueError(f"n_way={self.n_way} but a split has only {small} characters; use n_way <= {small}")

    @classmethod
    def from_config(cls, cfg, *, device=None, data_dir=None, verbose=True) -> "OmniglotEpisodes":
        """``cfg.ways`` classes x ``cfg.shots`` drawings per episode, characters split by ``cfg.split_mode``."""
        return cls(cfg.ways, cfg.shots, cfg.queries, data_dir=data_dir, split_mode=cfg.split_mode,
                   rotations=cfg.rotations, max_shift=cfg.episode_shift, dtype=cfg.dtype, device=device,
                   verbose=verbose)

    @classmethod
    def build_model(cls, cfg):
        """The MANN of the paper's 5-class setting (``cfg.memory_heads`` read heads; 0: the LSTM baseline)."""
        return MANN(inputs=SIDE * SIDE + cfg.ways, classes=cfg.ways, hidden=cfg.hidden[0], memory_size=MEMORY_SIZE,
                    memory_width=MEMORY_WIDTH, heads=cfg.memory_heads, gamma=GAMMA, write=cfg.mann_write,
                    least_used_to=cfg.mann_least_used)

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.shots > cls.examples_per_class:
            raise ValueError(f"{cfg.shots} drawings per class (--shots), but Omniglot has {cls.examples_per_class}")
        if cfg.queries != cfg.shots:
            raise ValueError(f"an episode is its own query set: queries (--queries) must equal shots (--shots, the "
                             f"drawings per class), got {cfg.queries} and {cfg.shots}")
        if cfg.train_shots is not None:
            raise ValueError("train_shots (--train-shots) does not apply to episodes: give --shots")
        if cfg.split_mode not in SPLIT_MODES or cfg.rotations not in ROTATIONS or cfg.rotations == "train-classes":
            raise ValueError(f"episodes take split_mode in {SPLIT_MODES} and rotations 'per-task' or 'none', got "
                             f"{cfg.split_mode!r} and {cfg.rotations!r}")
        if not 0 <= cfg.episode_shift < SIDE // 2:
            raise ValueError(f"episode_shift (--episode-shift) must be from 0 to {SIDE // 2 - 1} pixels (the images are "
                             f"{SIDE}x{SIDE}), got {cfg.episode_shift}")
        if len(cfg.hidden) != 1:
            raise ValueError(f"hidden is the controller's size, one number (200 in the paper), got {cfg.hidden!r}")

    @staticmethod
    def episode_inputs(images, labels, n_way: int, dtype) -> np.ndarray:
        """The net's inputs (T, L, D + n_way): each flattened image (T, L, D) joined with the one-hot
        label of the step before, y_{t-1} (zeros at t = 0); ``labels`` (T, L) in 0..n_way-1."""
        T, L = labels.shape
        previous = np.zeros((T, L, n_way), dtype=dtype)
        previous[:, 1:] = np.eye(n_way, dtype=dtype)[labels[:, :-1]]
        return np.concatenate([images.astype(dtype), previous], axis=2)

    def sample(self, num_tasks: int, rng: np.random.Generator, split: str = "train") -> MetaBatch:
        """Draw ``num_tasks`` episodes of ``split`` from ``rng`` (the same generator state, the same episodes)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if split not in self.pools:
            raise ValueError(f"unknown split {split!r}: use one of {tuple(self.pools)}")
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        T, n, k = num_tasks, self.n_way, self.k_support
        L = n * k
        pool = self.pools[split]
        keys = rng.random((T, len(pool)))
        classes = pool[np.argsort(keys, axis=1)[:, :n]]                               # (T, N), label = position
        drawings = np.argsort(rng.random((T, n, self.images.shape[1])), axis=2)[..., :k]  # distinct per class
        labels = np.repeat(np.arange(n), k)[None].repeat(T, 0)                         # (T, L)
        drawn = drawings.reshape(T, L)
        order = np.argsort(rng.random((T, L)), axis=1)                                 # the episode's order
        labels = np.take_along_axis(labels, order, 1)
        drawn = np.take_along_axis(drawn, order, 1)
        chars = np.take_along_axis(classes, labels, 1)
        imgs = self.images[chars, drawn].copy()                                         # (T, L, 20, 20)
        rotations = rng.integers(0, 4, (T, n)) if self.rotations == "per-task" else np.zeros((T, n), np.int64)
        rot = np.take_along_axis(rotations, labels, 1)
        for r in (1, 2, 3):
            sel = rot == r
            if sel.any():
                imgs[sel] = np.rot90(imgs[sel], r, axes=(-2, -1))
        m = self.max_shift
        shifts = rng.integers(-m, m + 1, (T, L, 2))
        padded = np.pad(imgs, ((0, 0), (0, 0), (m, m), (m, m)))
        rows = m - shifts[..., 0, None] + np.arange(SIDE)                                 # (T, L, 20)
        cols = m - shifts[..., 1, None] + np.arange(SIDE)
        t_idx, l_idx = np.arange(T)[:, None, None, None], np.arange(L)[None, :, None, None]
        imgs = padded[t_idx, l_idx, rows[..., :, None], cols[..., None, :]]               # out[i, j] = in[i - dy, j - dx]
        x = self.episode_inputs(imgs.reshape(T, L, SIDE * SIDE), labels, n, self.dtype)
        instance = np.zeros((T, L), dtype=np.int64)
        for c in range(n):  # which drawing of its class each step shows: 1, 2, ...
            mine = labels == c
            instance[mine] = (np.cumsum(mine, axis=1))[mine]
        device = backend.check_device(self.device)
        xt, yt = (Tensor(backend.to_device(a, device)) for a in (x, labels.astype(np.int64)))  # one transfer each
        info = {"classes": classes, "rotations": rotations, "instance": instance, "drawings": drawn,
                "shifts": shifts}
        return MetaBatch(xt, yt, xt, yt, info=info)

    def __repr__(self):
        return (f"OmniglotEpisodes(n_way={self.n_way}, k_support={self.k_support}, split_mode={self.split_mode!r}, "
                f"rotations={self.rotations!r}, max_shift={self.max_shift}, device={self.device!r})")

