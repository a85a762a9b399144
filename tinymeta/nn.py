"""Models as a plain dict of parameters plus a pure forward function.

``params = model.init_params(seed)`` gives {name: Tensor}; ``model(params, x)``
computes the output. Fast weights in MAML are just another dict with the same
keys, and a per-task dict (every tensor with a leading task axis T) runs every
task at once.
"""
from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .ops.conv import same_padding
from .tensor import tensor


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def glorot_uniform(rng, shape, fan_in, fan_out):
    """U[-a, a] with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape)


def truncated_normal(rng, shape, std):
    """N(0, std^2) redrawn outside two standard deviations, as tf.truncated_normal."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std


class Model:
    """Base class: subclasses define ``shapes`` via ``_init`` and ``__call__``."""

    def init_params(self, seed=0, dtype="float32", device=None) -> dict:
        """Freshly initialised parameters (leaves that require grad), seeded."""
        arrays = self._init(_rng(seed))
        return {k: tensor(v, dtype=dtype, device=device, requires_grad=True) for k, v in arrays.items()}

    def head_keys(self) -> list[str]:
        """The parameters of the final linear layer (what ANIL adapts)."""
        raise NotImplementedError

    def body(self, params, x):
        """Features before the final linear layer, (..., features)."""
        raise NotImplementedError

    def norm_keys(self) -> list[str]:
        """The normalisation layers' parameters (none here; MAML's code does not adapt them)."""
        return []

    def head(self, params, features):
        """The final linear layer on features from :meth:`body`."""
        w, b = self.head_keys()
        return F.linear(features, params[w], params[b])

    def __call__(self, params, x):
        return self.head(params, self.body(params, x))

    def _init(self, rng) -> dict:
        raise NotImplementedError


class MLP(Model):
    """Fully connected net with ReLU between layers; default 1-40-40-1, MAML's sine net.

    Initialisation as MAML's reference code (``construct_fc_weights``): weights
    from a normal truncated at 2 std with std 0.01, biases zero. Weights are
    stored (out, in) as in torch.nn.Linear.
    """

    def __init__(self, sizes=(1, 40, 40, 1), init_std=0.01):
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least input and output sizes, got {sizes}")
        self.sizes = tuple(int(s) for s in sizes)
        self.init_std = init_std

    def _init(self, rng):
        p = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            p[f"w{i}"] = self._weight(rng, fan_in, fan_out)
            p[f"b{i}"] = np.zeros(fan_out)
        return p

    def _weight(self, rng, fan_in, fan_out):
        """One layer's (fan_out, fan_in) weight at initialisation."""
        return truncated_normal(rng, (fan_out, fan_in), self.init_std)

    def head_keys(self):
        n = len(self.sizes) - 1
        return [f"w{n}", f"b{n}"]

    def body(self, params, x):
        for i in range(1, len(self.sizes) - 1):
            x = F.relu(F.linear(x, params[f"w{i}"], params[f"b{i}"]))
        return x

    def __repr__(self):
        return f"MLP(sizes={self.sizes})"


class ConvNet(Model):
    """MAML's few-shot conv net: ``blocks`` x [3x3 conv, batch norm, ReLU], then a linear head.

    Omniglot (default): 64 filters, stride-2 convolutions, then the mean over the
    spatial axes gives 64 features. With ``pool=True`` (the mini-ImageNet variant:
    ``filters=32, pool=True, in_channels=3, image_size=84``) each conv has stride 1
    and is followed by a 2x2 max-pool, and the remaining feature map is flattened,
    as in MAML's reference code.

    The reference codes' choices, each one argument away:

    - ``padding``: ``1`` on every side (default), or ``"same"``: TensorFlow's rule,
      which for a stride-2 conv on an even size pads one pixel after only
      (cbfinn/maml utils.py:33, supervised-reptile models.py:21).
    - ``bn_scale``: batch norm with a learnable scale (init 1) and shift (init 0),
      or, with False, the shift only (tf.contrib batch_norm's default, MAML's
      utils.py:41); ``bn_eps``: 1e-5 (PyTorch's default) or 1e-3 (TensorFlow's).
    - ``features``: ``"mean"`` over the spatial axes (MAML's maml.py:223) or
      ``"flatten"`` (Reptile's models.py:24: 2x2x64 = 256 features on Omniglot).
    - ``head_init``: ``"normal"``, N(0, 1) (MAML's maml.py:206), or ``"glorot"``
      uniform (tf.layers.dense's default, Reptile's models.py:25).

    Batch norm always uses the statistics of the current batch, per task.
    Conv weights are Glorot-uniform and biases zero, as in both reference codes.
    """

    def __init__(self, n_way=5, in_channels=1, filters=64, blocks=4, pool=False, image_size=28, padding=1,
                 bn_scale=True, bn_eps=1e-5, features=None, head_init=None):
        self.n_way, self.in_channels, self.filters = int(n_way), int(in_channels), int(filters)
        self.blocks, self.pool, self.image_size = int(blocks), bool(pool), int(image_size)
        if padding != "same" and not (isinstance(padding, int) and padding >= 0):
            raise ValueError(f"ConvNet: padding must be an int >= 0 or 'same', got {padding!r}")
        self.padding, self.bn_scale, self.bn_eps = padding, bool(bn_scale), float(bn_eps)
        self.feature_mode = features or ("flatten" if pool else "mean")
        self.head_init = head_init or ("glorot" if pool else "normal")
        if self.feature_mode not in ("mean", "flatten"):
            raise ValueError(f"ConvNet: features must be 'mean' or 'flatten', got {features!r}")
        if self.head_init not in ("normal", "glorot"):
            raise ValueError(f"ConvNet: head_init must be 'normal' or 'glorot', got {head_init!r}")
        size, stride = self.image_size, 1 if pool else 2
        for _ in range(self.blocks):
            pad = sum(same_padding(size, 3, stride)) if padding == "same" else 2 * padding
            size = (size + pad - 3) // stride + 1
            if pool:
                size //= 2
        if size < 1:
            raise ValueError(f"ConvNet: {blocks} blocks shrink a {image_size}x{image_size} image to nothing")
        self.features = self.filters * (size * size if self.feature_mode == "flatten" else 1)

    def _init(self, rng):
        p, c_in = {}, self.in_channels
        for i in range(1, self.blocks + 1):
            p[f"conv{i}"] = glorot_uniform(rng, (self.filters, c_in, 3, 3), c_in * 9, self.filters * 9)
            p[f"conv{i}_b"] = np.zeros(self.filters)
            if self.bn_scale:
                p[f"bn{i}_w"] = np.ones(self.filters)
            p[f"bn{i}_b"] = np.zeros(self.filters)
            c_in = self.filters
        if self.head_init == "glorot":
            p["head"] = glorot_uniform(rng, (self.n_way, self.features), self.features, self.n_way)
        else:
            p["head"] = rng.standard_normal((self.n_way, self.features))
        p["head_b"] = np.zeros(self.n_way)
        return p

    def head_keys(self):
        return ["head", "head_b"]

    def norm_keys(self):
        """The batch-norm parameters (MAML's code meta-learns them but does not adapt them)."""
        return [k for i in range(1, self.blocks + 1) for k in (f"bn{i}_w", f"bn{i}_b")
                if k != f"bn{i}_w" or self.bn_scale]

    def body(self, params, x):
        """Features before the head: (..., features)."""
        for i in range(1, self.blocks + 1):
            x = F.conv2d(x, params[f"conv{i}"], params[f"conv{i}_b"], stride=1 if self.pool else 2,
                         padding=self.padding)
            x = F.relu(F.batch_norm(x, weight=params[f"bn{i}_w"] if self.bn_scale else None,
                                    bias=params[f"bn{i}_b"], eps=self.bn_eps))
            if self.pool:
                x = F.max_pool2d(x, 2)
        if self.feature_mode == "flatten":
            return x.reshape(x.shape[:-3] + (-1,))
        return x.mean(axis=(-2, -1))

    def __repr__(self):
        return (f"ConvNet(n_way={self.n_way}, in_channels={self.in_channels}, filters={self.filters}, "
                f"blocks={self.blocks}, pool={self.pool}, image_size={self.image_size}, padding={self.padding!r}, "
                f"bn_scale={self.bn_scale}, bn_eps={self.bn_eps}, features={self.feature_mode!r}, "
                f"head_init={self.head_init!r})")
