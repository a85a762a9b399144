"""N-way K-shot Omniglot tasks, with MAML's protocol (Finn et al. 2017, App. A.1 and code) or Reptile's.

A task picks N classes and draws K support and Q query drawings per class from the
character's 20 drawings, without replacement, so support and query never share a
drawing. The N classes get the labels 0..N-1 in random order, and the examples are
shuffled.

Rotations (``rotations``):

- ``'per-task'`` (MAML's code, data_generator.py:138, 147): a class is a character,
  turned by a random multiple of 90 degrees drawn per class per task, at meta-test too.
- ``'per-task-train'`` (MAML++'s code, data.py:489, 94; experiment_builder.py:60, 316, 269): the same
  while meta-training; validation and test tasks are never rotated.
- ``'train-classes'`` (Reptile's code, omniglot.py:51-63, run_omniglot.py:24-26): each
  training character's four rotations are four classes, sampled like any class (a
  task may hold two rotations of one character); validation and test characters are
  never rotated.
- ``'all-classes'`` (prototypical networks' code, protonets/data/omniglot.py:30-31, 50; the
  split files list ``rot000``..``rot270`` of every character of every split): each
  character's four rotations are four classes in train, validation and test alike.
- ``'whole-task'`` (relation networks' code, LearningToCompare_FSL omniglot_train_one_shot.py:161,
  213): one random multiple of 90 degrees per task, the same for all its classes, at meta-test too.
- ``'none'``: no rotations.

Pixels (``ink``): 1 puts strokes at 1.0 and background at 0.0 (MAML's ``1 - image``,
data_generator.py:118); 0 keeps the PNGs as read, background 1.0 and strokes 0.0
(Reptile's omniglot.py:94). Both read the same 28x28 nearest-neighbour resize.

Character splits (``split_mode``):

- ``'maml'`` (default): the 1623 characters are permuted with ``SPLIT_SEED``,
  irrespective of alphabet: the first 1100 are train, the next 100 validation, the last
  423 test. This is MAML's protocol (its code shuffles with Python's ``random.seed(1)``
  over its own folder order, so the exact characters differ from MAML's; the sizes and
  the rule are the same).
- ``'lake'``: Lake et al.'s alphabet split. Test = the 659 evaluation characters.
  The 964 background characters are permuted with ``SPLIT_SEED``; the last 100 of that
  permutation are validation, the other 864 train.
- ``'reptile'``: exactly Reptile's split (omniglot.py:15-49, run_omniglot.py:22-24): the
  characters in the order its ``read_dataset`` gives (the alphabet folders of both
  zips merged and sorted by name, the characters of each sorted by name), shuffled
  with Python's ``random.seed(0); random.shuffle``; the first 1200 are train, the other
  423 test. The original has no validation split: the 'val' tasks here are other
  fixed tasks of the test characters, for monitoring only (no model is selected on them).
- ``'koch'``: Koch, Zemel & Salakhutdinov's split (2015, Sec. 4.1, 4.3): the 964 characters
  of the 30 background alphabets train; the 20 evaluation alphabets, permuted with
  ``SPLIT_SEED`` by name, give 10 validation and 10 test alphabets. Validation and test
  tasks are **within one alphabet** (Sec. 4.3: "an alphabet is first chosen", then its
  characters): each task draws its alphabet uniformly among those with at least N
  characters, then N of its characters. The paper does not list its 10 and 10 alphabets,
  nor its drawer split (12 training, 4 validation, 4 test drawers): here every drawer of a
  character may appear, and the two drawings of a class in a task are by two drawers.
- ``'vinyals'``: Vinyals et al.'s split as prototypical networks' code ships it
  (data/omniglot/splits/vinyals/*.txt, copied in :mod:`.omniglot_vinyals` with their
  checksums): 1028 train, 172 validation, 423 test characters, by alphabet.
- ``'vinyals-trainval'``: the same, training on train and validation characters together
  (1200), as the original's final model does (scripts/train/few_shot/trainval.py); the
  'val' tasks are then of characters seen in training (monitoring only).
- ``'relationnet'``: relation networks' rule (LearningToCompare_FSL omniglot/task_generator.py:27-41):
  the characters of both zips in one list, ``random.seed(1); random.shuffle``, the first
  1200 train, the other 423 test, no validation split ('val' as in 'reptile'). The original
  lists the characters in ``os.listdir`` order, which the file system decides; here they
  are in Reptile's sorted order, so the rule and the sizes are the original's and the
  characters are reproducible, but not the same ones.

The sampler gathers uint8 images with one fancy index per set, rotates the examples in
groups (one ``np.rot90`` per rotation angle), converts to float32 in [0, 1]
and moves each array to the device in one transfer.
"""
from __future__ import annotations

import random

import numpy as np

from .. import backend
from ..nn import ConvNet
from ..tensor import Tensor
from .base import MetaBatch, TaskFamily
from .omniglot_vinyals import vinyals_split

SPLIT_SEED = 1  # seeds the character split (MAML's code uses random.seed(1))
MAML_SPLIT_SIZES = {"train": 1100, "val": 100, "test": 423}
LAKE_VAL_SIZE = 100
REPTILE_SPLIT_SEED, REPTILE_TRAIN_SIZE = 0, 1200  # run_omniglot.py:22 random.seed(args.seed = 0); omniglot.py:37
RELATIONNET_SPLIT_SEED, RELATIONNET_TRAIN_SIZE = 1, 1200  # LearningToCompare_FSL task_generator.py:34, 37
TASK_SPLITS = ("train", "val", "test")
SPLIT_MODES = ("maml", "lake", "reptile", "koch", "vinyals", "vinyals-trainval", "relationnet")
KOCH_VAL_ALPHABETS = 10  # of the 20 evaluation alphabets; the other 10 are the test alphabets (Sec. 4.1)
ROTATIONS = ("per-task", "per-task-train", "train-classes", "all-classes", "whole-task", "none")


def _to_device_tensor(array: np.ndarray, device: str) -> Tensor:
    """Wrap a freshly built host array as a Tensor on ``device``: one transfer, no extra copy.

    (``tinymeta.tensor`` always copies, which costs a millisecond per batch on the CPU
    for arrays we just made and nobody else holds.)
    """
    return Tensor(backend.to_device(array, device))


class FewShotImageTasks(TaskFamily):
    """N-way K-shot classification tasks over classes of uint8 images (shared sampler).

    Subclasses provide ``images`` (n_images, channels, H, W) uint8, ``class_offsets``
    (C + 1,) so that class ``c`` owns ``images[class_offsets[c]:class_offsets[c+1]]``,
    and ``pools``: {split: class indices}. Images are uint8 with ink 255: ``ink`` 1 maps
    them to [0, 1] as they are, ``ink`` 0 inverts them. ``rotations``: 'per-task',
    'per-task-train', 'train-classes', 'all-classes' or 'none' (see the Omniglot module docstring; mini-ImageNet: none).
    """

    images: np.ndarray
    class_offsets: np.ndarray
    pools: dict
    class_groups: dict = {}  # {split: [class indices of each group]}: tasks of that split within one group
    rotations: str = "none"
    ink: int = 1
    kind = "classification"
    input_shape: tuple = ()  # (channels, side, side)

    @classmethod
    def build_model(cls, cfg) -> ConvNet:
        """The few-shot conv net for ``cfg.ways`` classes of ``input_shape`` images, as ``cfg`` describes it."""
        channels, side, _ = cls.input_shape
        return ConvNet(n_way=cfg.ways, in_channels=channels, filters=cfg.filters, pool=cfg.pool, image_size=side,
                       padding="same" if cfg.conv_padding == "same" else 1, bn_scale=cfg.bn_scale,
                       bn_eps=cfg.bn_eps, features=cfg.features, head_init=cfg.head_init, activation=cfg.activation)

    def __init__(self, n_way: int, k_support: int, k_query: int, dtype, device):
        if n_way < 1 or k_support < 1 or k_query < 1:
            raise ValueError(f"n_way, k_support and k_query must be >= 1, got {n_way}, {k_support}, "
                             f"{k_query}")
        self.n_way, self.k_support, self.k_query = int(n_way), int(k_support), int(k_query)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"dtype must be a float type, got {self.dtype}")
        # None follows tinymeta's default device at sampling time; a named device is checked now
        self.device = None if device is None else backend.check_device(device)

    def rotations_are_classes(self, split: str) -> bool:
        """Whether ``split`` takes each rotation of a character as a class of its own."""
        return self.rotations == "all-classes" or (self.rotations == "train-classes" and split == "train")

    @property
    def class_sizes(self) -> np.ndarray:
        return np.diff(self.class_offsets)

    def _check(self, split, n_way, k, q):
        if split not in self.pools:
            raise ValueError(f"unknown split {split!r}: use one of {tuple(self.pools)}")
        n_classes = len(self.pools[split]) * (4 if self.rotations_are_classes(split) else 1)
        if n_way > n_classes:
            raise ValueError(f"n_way={n_way} but the {split!r} split has only {n_classes} classes; "
                             f"use n_way <= {n_classes}")
        groups = self.class_groups.get(split)
        if groups is not None and n_way > max(len(g) for g in groups):
            raise ValueError(f"n_way={n_way} but the {split!r} split's tasks are drawn within one group "
                             f"(alphabet) and the largest has {max(len(g) for g in groups)} classes; "
                             f"use n_way <= {max(len(g) for g in groups)}")
        smallest = int(self.class_sizes[self.pools[split]].min())
        if k + q > smallest:
            raise ValueError(f"k_support + k_query = {k} + {q} = {k + q}, but a class in the {split!r} "
                             f"split has only {smallest} images; use k_support + k_query <= {smallest}")

    def sample(self, num_tasks: int, rng: np.random.Generator, split: str = "train", *,
               n_way: int | None = None, k_support: int | None = None,
               k_query: int | None = None) -> MetaBatch:
        """Draw ``num_tasks`` tasks of the ``split`` ('train', 'val' or 'test') from ``rng``.

        Returns a MetaBatch: x_support (T, N*K, channels, H, W) ``dtype`` in [0, 1],
        y_support (T, N*K) int64 in [0, N), each label K times; the query likewise with
        Q per class. ``info['classes'][t, n]`` is the class index (into the data) with
        label n, ``info['rotations'][t, n]`` its rotation in quarter turns
        (counter-clockwise), and ``info['support_images']`` / ``info['query_images']``
        (T, N*K) / (T, N*Q) each example's index into ``self.images``. The same
        generator state always gives the same batch.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                            f"got {type(rng).__name__}")
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        n = self.n_way if n_way is None else int(n_way)
        k = self.k_support if k_support is None else int(k_support)
        q = self.k_query if k_query is None else int(k_query)
        if min(n, k, q) < 1:
            raise ValueError(f"n_way, k_support and k_query must be >= 1, got {n}, {k}, {q}")
        self._check(split, n, k, q)
        pool = self.pools[split]
        T = num_tasks
        # Rotations as classes (Reptile's training split; every split of prototypical networks'):
        # every character of the pool four times, once per rotation
        as_classes = self.rotations_are_classes(split)
        groups = self.class_groups.get(split)
        if groups is not None:  # within-group tasks (Koch's within-alphabet one-shot): a group per task
            if as_classes:
                raise ValueError("within-group tasks and rotations as classes do not combine")
            sizes = np.array([len(g) for g in groups])
            group = rng.choice(np.flatnonzero(sizes >= n), size=T)            # (T,) among groups of N or more
            table = np.full((len(groups), int(sizes.max())), -1, dtype=np.int64)
            for i, g in enumerate(groups):
                table[i, :len(g)] = g
            pool, size = table[group], int(sizes.max())                     # (T, largest group)
        else:
            size = 4 * len(pool) if as_classes else len(pool)

        # N distinct classes per task, in random order: the N smallest of iid random keys,
        # sorted, are a uniform random ordered sample; position n gets label n.
        keys = rng.random((T, size))
        if groups is not None:
            keys[pool < 0] = np.inf  # past the end of a task's group: never drawn
        pick = np.argpartition(keys, n - 1, axis=1)[:, :n]
        pick = np.take_along_axis(pick, np.argsort(np.take_along_axis(keys, pick, 1), axis=1), 1)
        classes = np.take_along_axis(pool, pick, 1) if groups is not None else pool[pick % len(pool)]  # (T, N)

        # K + Q distinct images per class, the same trick along each class's images;
        # positions past a (smaller) class's size get an infinite key so they are never drawn.
        sizes = self.class_sizes[classes]
        keys = rng.random((T, n, int(sizes.max())))
        keys[np.arange(keys.shape[2]) >= sizes[..., None]] = np.inf
        draws = np.argsort(keys, axis=2, kind="stable")[..., :k + q]  # (T, N, K+Q)
        index = self.class_offsets[classes][..., None] + draws  # into self.images

        if as_classes:
            rotations = pick // len(pool)
        elif self.rotations == "per-task" or (self.rotations == "per-task-train" and split == "train"):
            rotations = rng.integers(0, 4, size=(T, n))
        elif self.rotations == "whole-task":
            rotations = rng.integers(0, 4, size=(T, 1)).repeat(n, axis=1)
        else:
            rotations = np.zeros((T, n), dtype=np.int64)

        parts, info = [], {"classes": classes, "rotations": rotations}
        for name, sl, per in (("support", slice(0, k), k), ("query", slice(k, k + q), q)):
            idx = index[:, :, sl].reshape(T, n * per)
            labels = np.repeat(np.arange(n), per)[None].repeat(T, 0)  # (T, N*per): 0..0 1..1 ...
            order = np.argsort(rng.random((T, n * per)), axis=1)  # shuffle the examples per task
            idx = np.take_along_axis(idx, order, 1)
            labels = np.take_along_axis(labels, order, 1)
            rot = np.take_along_axis(rotations, labels, 1)
            parts.append((self._images(idx, rot), labels.astype(np.int64)))
            info[f"{name}_images"] = idx
        (xs, ys), (xq, yq) = parts
        device = backend.check_device(self.device)
        return MetaBatch(*(_to_device_tensor(a, device) for a in (xs, ys, xq, yq)), info=info, n_way=n)

    def _images(self, idx: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Gather (T, S) images, rotate each by ``rot`` quarter turns, scale to float [0, 1] (``ink``)."""
        imgs = self.images[idx]  # (T, S, channels, H, W) uint8: one gather of whole images
        for r in (1, 2, 3):  # one vectorised rotation per angle, not one per image
            sel = rot == r
            if sel.any():
                imgs[sel] = np.rot90(imgs[sel], r, axes=(-2, -1))
        if self.ink == 0:  # strokes 0, background 1: the PNGs as read (images are binary: exact)
            imgs = np.subtract(np.uint8(255), imgs, dtype=np.uint8)
        return np.divide(imgs, self.dtype.type(255), dtype=self.dtype)

    def _semi_supervised(self, batch: MetaBatch, n: int, q: int, m: int) -> MetaBatch:
        """Split a batch drawn with N + H classes and Q + M queries into an N-way task and unlabeled examples.

        Labels 0..N-1 are the task's classes: their first Q query examples (in the shuffled
        order) stay queries, the next M become unlabeled. Labels N.. are distractor classes
        (Ren et al. 2018, Sec. 4.1): their support examples are dropped and M of their query
        examples become unlabeled. The unlabeled examples keep the shuffled order; their
        labels, -1 for a distractor, go to ``info['unlabeled_labels']``.
        """
        info = dict(batch.info)
        ys, yq = batch.y_support.numpy(), batch.y_query.numpy()
        T, classes = ys.shape[0], info["classes"].shape[1]
        onehot = yq[..., None] == np.arange(classes)
        rank = np.take_along_axis(np.cumsum(onehot, axis=1), yq[..., None], 2)[..., 0] - 1  # within its class
        task = yq < n
        keep_s = ys < n
        keep_q = task & (rank < q)
        keep_u = (task & (rank >= q)) | (~task & (rank < m))

        def gather(mask, idx, labels):
            size = int(mask[0].sum())
            idx, labels = idx[mask].reshape(T, size), labels[mask].reshape(T, size)
            rot = np.take_along_axis(info["rotations"], labels, 1)
            return self._images(idx, rot), idx, labels

        xs, info["support_images"], ys = gather(keep_s, info["support_images"], ys)
        xq, info["query_images"], yq = gather(keep_q, info["query_images"], yq)
        xu, info["unlabeled_images"], yu = gather(keep_u, batch.info["query_images"], batch.y_query.numpy())
        info["unlabeled_labels"] = np.where(yu < n, yu, -1)
        device = backend.check_device(self.device)
        return MetaBatch(*(_to_device_tensor(a, device) for a in (xs, ys, xq, yq)), info=info,
                         x_unlabeled=_to_device_tensor(xu, device), n_way=n)


class Omniglot(FewShotImageTasks):
    """Omniglot N-way K-shot tasks (MAML's protocol by default); x is (T, N*K, 1, 28, 28).

    ``data``: an :class:`~tinymeta.data.OmniglotData` (else loaded with
    :func:`~tinymeta.data.load_omniglot` from ``data_dir`` / ``cache_dir``).
    ``split_mode``: 'maml' (1100/100/423 characters drawn irrespective of alphabet),
    'lake' (background 864 train + 100 val, evaluation 659 test), 'reptile' (Reptile's
    exact 1200/423 split), 'koch' (30 background alphabets train, 10 + 10 evaluation
    alphabets validate and test, those tasks within one alphabet), 'vinyals' (1028/172/423 by
    alphabet) or 'vinyals-trainval'; ``rotations``: 'per-task', 'per-task-train', 'train-classes',
    'all-classes' or 'none';
    ``ink``: 1 (strokes 1.0) or 0 (strokes 0.0); see the module docstring.
    ``k_query`` defaults to 15; K + Q <= 20. ``unlabeled`` M > 0 adds M unlabeled drawings
    of each class and of ``distractors`` H more classes (``MetaBatch.x_unlabeled``); K + Q + M <= 20.

    Example::

        >>> tasks = Omniglot(n_way=5, k_support=1)
        >>> batch = tasks.sample(32, np.random.default_rng(0))
        >>> batch.x_support.shape, batch.x_query.shape
        ((32, 5, 1, 28, 28), (32, 75, 1, 28, 28))
    """

    name = "omniglot"
    examples_per_class = 20
    unlabeled_examples = True  # draws --unlabeled examples and --distractors classes (MetaBatch.x_unlabeled)
    input_shape = (1, 28, 28)

    @classmethod
    def from_config(cls, cfg, *, device=None, data_dir=None, verbose=True) -> "Omniglot":
        """``cfg.ways``-way ``cfg.shots``-shot tasks with ``cfg.queries`` queries, split by ``cfg.split_mode``."""
        return cls(cfg.ways, cfg.shots, cfg.queries, data_dir=data_dir, split_mode=cfg.split_mode,
                   rotations=cfg.rotations, ink=cfg.ink, dtype=cfg.dtype, device=device, verbose=verbose,
                   unlabeled=cfg.unlabeled, distractors=cfg.distractors)

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.split_mode not in SPLIT_MODES:
            raise ValueError(f"unknown split_mode {cfg.split_mode!r}: use one of {SPLIT_MODES}")
        if cfg.rotations not in ROTATIONS:
            raise ValueError(f"unknown rotations {cfg.rotations!r}: use one of {ROTATIONS}")
        if cfg.ink not in (0, 1) or isinstance(cfg.ink, bool):
            raise ValueError(f"ink must be 1 (strokes 1.0, MAML) or 0 (strokes 0.0, Reptile), got {cfg.ink!r}")
        smallest = min(MAML_SPLIT_SIZES["val"], LAKE_VAL_SIZE)  # the validation split, in any mode
        shots = max(cfg.shots, cfg.train_shots or 0)
        if cfg.unlabeled and shots + cfg.queries + cfg.unlabeled > cls.examples_per_class:
            raise ValueError(f"{shots} shots + {cfg.queries} queries + {cfg.unlabeled} unlabeled examples per class "
                             f"need {shots + cfg.queries + cfg.unlabeled} drawings, but a character has "
                             f"{cls.examples_per_class}; use fewer --unlabeled or --queries")
        if cfg.ways + cfg.distractors > smallest:
            what, limit = ((f"{cfg.ways} ways + {cfg.distractors} distractor classes", "ways + distractors")
                           if cfg.distractors else (f"{cfg.ways} ways", "ways"))
            raise ValueError(f"{what}, but the Omniglot validation split has {smallest} characters; "
                             f"use {limit} <= {smallest}")

    def __init__(self, n_way: int = 5, k_support: int = 1, k_query: int = 15, *, data=None,
                 data_dir=None, cache_dir=None, split_mode: str = "maml", rotations: str = "per-task",
                 ink: int = 1, dtype="float32", device=None, verbose: bool = True, unlabeled: int = 0,
                 distractors: int = 0):
        super().__init__(n_way, k_support, k_query, dtype, device)
        if unlabeled < 0 or distractors < 0 or (distractors and not unlabeled):
            raise ValueError(f"unlabeled and distractors must be >= 0, and distractor classes need unlabeled "
                             f"examples; got unlabeled={unlabeled}, distractors={distractors}")
        self.unlabeled, self.distractors = int(unlabeled), int(distractors)
        if rotations not in ROTATIONS:
            raise ValueError(f"unknown rotations {rotations!r}: use one of {ROTATIONS}")
        if ink not in (0, 1) or isinstance(ink, bool):
            raise ValueError(f"ink must be 1 (strokes 1.0) or 0 (strokes 0.0), got {ink!r}")
        if data is None:
            from ..data.omniglot import load_omniglot  # noqa: PLC0415

            data = load_omniglot(data_dir, cache_dir, verbose=verbose)
        self.data = data
        self.rotations, self.ink = rotations, int(ink)
        self.split_mode = split_mode
        c, d, h, w = data.images.shape
        self.images = data.images.reshape(c * d, 1, h, w)  # a view: drawing d of c is row c*d + d
        self.class_offsets = np.arange(c + 1, dtype=np.int64) * d
        self.pools = omniglot_splits(data, split_mode)
        self.class_groups = {}
        if split_mode == "koch":  # validation and test tasks within one alphabet (Koch et al. 2015, Sec. 4.3)
            for split in ("val", "test"):
                self.within_alphabet(split)
        if self.k_support + self.k_query > d:
            raise ValueError(f"k_support + k_query = {self.k_support + self.k_query}, but each character "
                             f"has only {d} drawings; use k_support + k_query <= {d}")
        classes = {s: len(p) * (4 if rotations == "all-classes" else 1) for s, p in self.pools.items()}
        small = min(classes, key=classes.get)
        if self.n_way > classes[small]:
            what = "classes (characters x 4 rotations)" if rotations == "all-classes" else "characters"
            raise ValueError(f"n_way={self.n_way} but the {small!r} split has only "
                             f"{classes[small]} {what}; use n_way <= {classes[small]}")

    def within_alphabet(self, split: str, within: bool = True) -> None:
        """Draw the tasks of ``split`` within one alphabet (``within``) or across the split's alphabets.

        Within one alphabet, a task's N characters all come from one alphabet, drawn with
        probability equal among the alphabets of N characters or more: Lake et al.'s and Koch
        et al.'s one-shot test (Koch 2015, Sec. 4.3), harder than N characters drawn
        irrespective of alphabet, since characters of one alphabet look alike. ``split_mode =
        'koch'`` draws its validation and test tasks so; ``tinymeta evaluate --within-alphabet``
        changes it for one evaluation (for instance to measure what the restriction costs, or
        what a model does on its training characters under the test's rule).
        """
        if split not in self.pools:
            raise ValueError(f"unknown split {split!r}: use one of {tuple(self.pools)}")
        if not within:
            self.class_groups = {s: g for s, g in self.class_groups.items() if s != split}
            return
        if self.rotations_are_classes(split):
            raise ValueError(f"the {split!r} split takes every rotation of a character as its own class "
                             f"(rotations={self.rotations!r}): tasks within one alphabet are not defined there")
        pool, alphabets = self.pools[split], self.data.alphabets
        groups = [pool[alphabets[pool] == a] for a in np.unique(alphabets[pool])]
        largest = max(len(g) for g in groups)
        if self.n_way > largest:
            raise ValueError(f"n_way={self.n_way}, but {split} tasks are drawn within one alphabet and its largest "
                             f"{split} alphabet has {largest} characters; use n_way <= {largest}")
        self.class_groups = {**self.class_groups, split: groups}

    def __repr__(self):
        return (f"Omniglot(n_way={self.n_way}, k_support={self.k_support}, k_query={self.k_query}, "
                f"split_mode={self.split_mode!r}, rotations={self.rotations!r}, ink={self.ink}, device={self.device!r})")

    def sample(self, num_tasks, rng, split="train", **kw) -> MetaBatch:
        if self.unlabeled:  # N + H classes, Q + M "queries", split into queries and unlabeled examples
            n, q = kw.pop("n_way", None) or self.n_way, kw.pop("k_query", None) or self.k_query
            batch = super().sample(num_tasks, rng, split, n_way=n + self.distractors, k_query=q + self.unlabeled,
                                   **kw)
            batch = self._semi_supervised(batch, n, q, self.unlabeled)
        else:
            batch = super().sample(num_tasks, rng, split, **kw)
        # Omniglot's images are (character, drawing); report the drawing (0..19) too.
        d = self.data.images.shape[1]
        batch.info["support_drawings"] = batch.info["support_images"] % d
        batch.info["query_drawings"] = batch.info["query_images"] % d
        if "unlabeled_images" in batch.info:
            batch.info["unlabeled_drawings"] = batch.info["unlabeled_images"] % d
        return batch

    sample.__doc__ = FewShotImageTasks.sample.__doc__ + (
        "\n        Omniglot adds ``info['support_drawings']`` / ``info['query_drawings']``: each "
        "example's drawing (0..19) of its character ``images_index // 20``.\n")


def reptile_character_order(data) -> list:
    """Character indices in the order Reptile's ``read_dataset`` yields them (omniglot.py:28-35).

    Its data folder holds the alphabet folders of both zips side by side; it sorts
    them by name, then each alphabet's character folders by name.
    """
    return sorted(range(data.num_characters), key=lambda c: (str(data.alphabets[c]), str(data.characters[c])))


def reptile_split(data) -> tuple[list, list]:
    """(train, test) character indices of Reptile's split, in its order (run_omniglot.py:22-24).

    ``random.seed(0)`` then ``random.shuffle`` of the characters (omniglot.py:47-48):
    the first 1200 train, the rest test. Python's own generator, so the same characters.
    """
    order = reptile_character_order(data)
    random.Random(REPTILE_SPLIT_SEED).shuffle(order)
    return order[:REPTILE_TRAIN_SIZE], order[REPTILE_TRAIN_SIZE:]


def relationnet_split(data) -> tuple[list, list]:
    """(train, test) character indices by relation networks' rule (task_generator.py:27-41).

    ``random.seed(1)`` then ``random.shuffle`` of every character, the first 1200 train,
    the other 423 test; shuffled from Reptile's sorted order, as the original's
    ``os.listdir`` order is the file system's (see the module docstring).
    """
    order = reptile_character_order(data)
    random.Random(RELATIONNET_SPLIT_SEED).shuffle(order)
    return order[:RELATIONNET_TRAIN_SIZE], order[RELATIONNET_TRAIN_SIZE:]


def omniglot_splits(data, split_mode: str = "maml") -> dict:
    """{'train', 'val', 'test'} -> sorted character indices of ``data``.

    Disjoint and covering, except in 'reptile' and 'relationnet' modes, which have no validation split:
    'val' is the test characters there (monitoring on other fixed tasks), and in
    'vinyals-trainval' mode, whose training pool holds the validation characters too.
    """
    n = data.num_characters
    rng = np.random.default_rng(SPLIT_SEED)
    if split_mode == "maml":
        if n != sum(MAML_SPLIT_SIZES.values()):
            raise ValueError(f"split_mode='maml' needs all 1623 Omniglot characters, the data has {n}")
        perm = rng.permutation(n)
        a, b = MAML_SPLIT_SIZES["train"], MAML_SPLIT_SIZES["train"] + MAML_SPLIT_SIZES["val"]
        parts = perm[:a], perm[a:b], perm[b:]
    elif split_mode == "lake":
        background = data.indices("background")[rng.permutation(len(data.indices("background")))]
        parts = background[:-LAKE_VAL_SIZE], background[-LAKE_VAL_SIZE:], data.indices("evaluation")
    elif split_mode in ("vinyals", "vinyals-trainval"):
        pools = vinyals_split(data, trainval=split_mode == "vinyals-trainval")
        parts = pools["train"], pools["val"], pools["test"]
    elif split_mode in ("reptile", "relationnet"):
        if n != sum(MAML_SPLIT_SIZES.values()):
            raise ValueError(f"split_mode={split_mode!r} needs all 1623 Omniglot characters, the data has {n}")
        train, test = reptile_split(data) if split_mode == "reptile" else relationnet_split(data)
        parts = np.array(train), np.array(test), np.array(test)
    elif split_mode == "koch":
        evaluation = data.indices("evaluation")
        alphabets = np.unique(data.alphabets[evaluation])  # sorted by name
        if len(alphabets) < 2 * KOCH_VAL_ALPHABETS:
            raise ValueError(f"split_mode='koch' needs the 20 evaluation alphabets, the data has {len(alphabets)}")
        val_alphabets = alphabets[rng.permutation(len(alphabets))[:KOCH_VAL_ALPHABETS]]
        is_val = np.isin(data.alphabets[evaluation], val_alphabets)
        parts = data.indices("background"), evaluation[is_val], evaluation[~is_val]
    else:
        raise ValueError(f"unknown split_mode {split_mode!r}: use one of {SPLIT_MODES}")
    return {name: np.sort(p).astype(np.int64) for name, p in zip(TASK_SPLITS, parts)}


__all__ = ["Omniglot", "FewShotImageTasks", "omniglot_splits", "relationnet_split", "reptile_split",
           "reptile_character_order", "SPLIT_SEED", "MAML_SPLIT_SIZES", "KOCH_VAL_ALPHABETS"]
