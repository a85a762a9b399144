"""Models as a plain dict of parameters plus a pure forward function.

``params = model.init_params(seed)`` gives {name: Tensor}; ``model(params, x)``
computes the output. Fast weights in MAML are just another dict with the same
keys, and a per-task dict (every tensor with a leading task axis T) runs every
task at once. :class:`LSTM` (with :func:`lstm_cell`, one step) is the recurrent
piece later models build on: matching networks' full context embeddings, learned
optimisers, memory-augmented nets.
"""
from __future__ import annotations

import math

import numpy as np

from . import functional as F
from . import ops
from .ops.conv import same_padding
from .tensor import Tensor, tensor


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
    - ``activation``: ``"relu"`` (both codes above) or ``"leaky_relu"`` (slope 0.01,
      MAML++'s meta_neural_network_architectures.py:426).

    Batch norm always uses the statistics of the current batch, per task.
    Conv weights are Glorot-uniform and biases zero, as in both reference codes.
    """

    def __init__(self, n_way=5, in_channels=1, filters=64, blocks=4, pool=False, image_size=28, padding=1,
                 bn_scale=True, bn_eps=1e-5, features=None, head_init=None, activation="relu"):
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
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"ConvNet: activation must be 'relu' or 'leaky_relu', got {activation!r}")
        self.activation = activation
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
            x = F.batch_norm(x, weight=params[f"bn{i}_w"] if self.bn_scale else None, bias=params[f"bn{i}_b"],
                             eps=self.bn_eps)
            x = F.relu(x) if self.activation == "relu" else F.leaky_relu(x)
            if self.pool:
                x = F.max_pool2d(x, 2)
        if self.feature_mode == "flatten":
            return x.reshape(x.shape[:-3] + (-1,))
        return x.mean(axis=(-2, -1))

    def __repr__(self):
        return (f"ConvNet(n_way={self.n_way}, in_channels={self.in_channels}, filters={self.filters}, "
                f"blocks={self.blocks}, pool={self.pool}, image_size={self.image_size}, padding={self.padding!r}, "
                f"bn_scale={self.bn_scale}, bn_eps={self.bn_eps}, features={self.feature_mode!r}, "
                f"head_init={self.head_init!r}" + ("" if self.activation == "relu" else
                                                   f", activation={self.activation!r}") + ")")


# ---- recurrent ------------------------------------------------------------------------------
def _input_gates(params, suffix, x):
    """The input's share of the gates, W_ih x + (b_ih + b_hh): (..., 4H), for every step at once."""
    return F.linear(x, params["weight_ih" + suffix], params["bias_ih" + suffix] + params["bias_hh" + suffix])


def _lstm_step(gates_x, h, c, weight_hh):
    """One LSTM step given the input's share of the gates (see :func:`_input_gates`).

    Split out of :func:`lstm_cell` so that :class:`LSTM` computes every step's input
    share in one matmul before the recurrence; only ``W_hh h`` must wait for ``h``.
    """
    H = h.shape[-1]
    gates = gates_x + F.linear(h, weight_hh)                      # (..., 4H): i, f, g, o
    i = ops.sigmoid(gates[..., 0 * H:1 * H])
    f = ops.sigmoid(gates[..., 1 * H:2 * H])
    g = ops.tanh(gates[..., 2 * H:3 * H])
    o = ops.sigmoid(gates[..., 3 * H:4 * H])
    c = f * c + i * g
    return o * ops.tanh(c), c


def lstm_cell(params, x, h, c, suffix=""):
    """One step of a long short-term memory cell: ``(h', c') = lstm_cell(params, x, h, c)``.

    With the gates in PyTorch's order (``torch.nn.LSTMCell``, ``torch.nn.LSTM``)::

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     input gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)     forget gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)        candidate cell
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)     output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    ``params`` holds PyTorch's layouts: ``weight_ih`` (4H, D) = [W_ii; W_if; W_ig; W_io],
    ``weight_hh`` (4H, H), ``bias_ih`` (4H,) and ``bias_hh`` (4H,), each name followed
    by ``suffix`` (``LSTM`` passes ``"_l0"``, ``"_l0_reverse"``, ...). With per-task
    weights, (T, 4H, D) and so on, ``x`` is (T, ..., D) and ``h``, ``c`` are (T, ..., H),
    as in :func:`tinymeta.functional.linear`. Built from linear, slicing, sigmoid and
    tanh only, so it differentiates to any order.

    The cell is Hochreiter & Schmidhuber (1997), "Long short-term memory", with the
    forget gate of Gers, Schmidhuber & Cummins (2000), "Learning to forget: continual
    prediction with LSTM" (without peepholes).

    Example::

        H, D = 3, 2
        params = LSTM(D, H).init_params(0, dtype="float64")
        x, h = tinymeta.tensor(np.ones((5, D))), tinymeta.tensor(np.zeros((5, H)))
        h, c = lstm_cell(params, x, h, h, suffix="_l0")   # (5, 3) each
    """
    w_ih, w_hh = params["weight_ih" + suffix], params["weight_hh" + suffix]
    if x.shape[-1] != w_ih.shape[-1] or h.shape[-1] * 4 != w_ih.shape[-2] or h.shape != c.shape:
        raise ValueError(f"lstm_cell: weight_ih{suffix} {w_ih.shape} needs x (..., {w_ih.shape[-1]}) and "
                         f"h, c (..., {w_ih.shape[-2] // 4}) of one shape; got x {x.shape}, h {h.shape}, "
                         f"c {c.shape}")
    return _lstm_step(_input_gates(params, suffix, x), h, c, w_hh)


class LSTM(Model):
    """A (stacked, optionally bidirectional) LSTM over a sequence, as ``torch.nn.LSTM(batch_first=True)``.

    ``outputs, (h_n, c_n) = lstm(params, x)`` with ``x`` (..., L, D), for instance
    (N, L, D), or (T, N, L, D) with a leading task axis; per-task parameters (a
    leading T on every tensor, as from :func:`tinymeta.algorithms.per_task`) need the
    task axis on ``x``. Each step is :func:`lstm_cell` (the equations are there).

    - ``outputs`` (..., L, num_directions * H): the last layer's hidden state at every
      step; bidirectionally, [forward h_t, backward h_t] joined on the last axis, the
      backward direction having read the sequence from its end back to step t.
    - ``h_n``, ``c_n`` (..., num_layers * num_directions, H): the final states, ordered as
      PyTorch's (layer by layer, forward before backward; the backward direction's
      final state is the one at step 0). PyTorch puts that axis first, (S, N, H);
      here it sits before H, so the task axis stays first.
    - ``state=(h_0, c_0)``, of the shape of ``(h_n, c_n)``, starts from given states
      (zeros otherwise), so a long sequence can run in pieces.

    Parameters use PyTorch's names and layouts: ``weight_ih_l{k}`` (4H, D for layer 0,
    else num_directions * H), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (4H,), and the same with ``_reverse`` for the backward direction,
    so ``{k: tinymeta.tensor(v.numpy()) for k, v in torch_lstm.state_dict().items()}``
    runs a PyTorch LSTM's weights here. Initialisation is PyTorch's too: every entry
    U(-1/sqrt(H), 1/sqrt(H)). There is no dropout between layers.

    Hochreiter & Schmidhuber (1997), with the forget gate of Gers et al. (2000);
    bidirectional as Schuster & Paliwal (1997), "Bidirectional recurrent neural
    networks", the form matching networks' full context embeddings use
    (Vinyals et al. 2016, appendix A.2).

    Example::

        lstm = LSTM(input_size=2, hidden_size=3, bidirectional=True)
        params = lstm.init_params(0)
        out, (h, c) = lstm(params, tinymeta.tensor(np.ones((4, 5, 2))))   # (4, 5, 6); (4, 2, 3)
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False):
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bidirectional = int(num_layers), bool(bidirectional)
        if self.input_size < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(f"LSTM: input_size, hidden_size and num_layers must be >= 1, got "
                             f"{input_size}, {hidden_size}, {num_layers}")

    @property
    def directions(self):
        """The name suffixes of one layer's directions: ``[""]`` or ``["", "_reverse"]``."""
        return ["", "_reverse"] if self.bidirectional else [""]

    def _init(self, rng):
        H, k = self.hidden_size, 1.0 / math.sqrt(self.hidden_size)
        p = {}
        for layer in range(self.num_layers):
            d_in = self.input_size if layer == 0 else H * len(self.directions)
            for direction in self.directions:
                s = f"_l{layer}{direction}"
                p["weight_ih" + s] = rng.uniform(-k, k, (4 * H, d_in))
                p["weight_hh" + s] = rng.uniform(-k, k, (4 * H, H))
                p["bias_ih" + s] = rng.uniform(-k, k, 4 * H)
                p["bias_hh" + s] = rng.uniform(-k, k, 4 * H)
        return p

    def __call__(self, params, x, state=None):
        if x.ndim < 2 or x.shape[-1] != self.input_size or x.shape[-2] < 1:
            raise ValueError(f"LSTM: input must be (..., L, {self.input_size}) with L >= 1, got {x.shape}")
        H, S = self.hidden_size, self.num_layers * len(self.directions)
        batch = x.shape[:-2]
        if state is None:
            zeros = Tensor(x.xp.zeros(batch + (S, H), dtype=x.dtype))
            state = (zeros, zeros)
        h0, c0 = state
        if h0.shape != batch + (S, H) or c0.shape != h0.shape:
            raise ValueError(f"LSTM: state (h_0, c_0) must be {batch + (S, H)} each, got {h0.shape} and "
                             f"{c0.shape}")
        h_n, c_n, s = [], [], 0
        for layer in range(self.num_layers):
            outputs = []
            for direction in self.directions:
                hs, h, c = self._run(params, f"_l{layer}{direction}", x, h0[..., s, :], c0[..., s, :],
                                     reverse=direction == "_reverse")
                outputs.append(hs)
                h_n.append(h)
                c_n.append(c)
                s += 1
            x = outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)
        return x, (ops.stack(h_n, axis=-2), ops.stack(c_n, axis=-2))

    @staticmethod
    def _run(params, suffix, x, h, c, reverse):
        """One layer in one direction: every step's h (..., L, H), and the last (h, c)."""
        gates_x = _input_gates(params, suffix, x)  # (..., L, 4H)
        steps = range(x.shape[-2] - 1, -1, -1) if reverse else range(x.shape[-2])
        hs = []
        for t in steps:
            h, c = _lstm_step(gates_x[..., t, :], h, c, params["weight_hh" + suffix])
            hs.append(h)
        if reverse:
            hs.reverse()  # outputs[t] is the state after reading steps L-1 .. t
        return ops.stack(hs, axis=-2), h, c

    def __repr__(self):
        return (f"LSTM(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_layers={self.num_layers}, bidirectional={self.bidirectional})")


# ---- a learned optimiser --------------------------------------------------------------------
def log_and_sign(g, p=10.0):
    r"""The gradient preprocessing of Andrychowicz et al. 2016 (App. A): (..., ) -> (..., 2).

    Gradients span many orders of magnitude, which a network's input weights cannot serve
    at once; each coordinate becomes two numbers of order one::

        (log|g| / p, sign g)     if |g| >= e^-p
        (-1,         e^p g)      otherwise

    written, as the original code writes it (deepmind/learning-to-learn preprocess.py:63-70),
    as ``(max(log(|g| + eps) / p, -1), clip(e^p g, -1, 1))`` with ``eps`` the dtype's machine
    epsilon (so that g = 0 gives (-1, 0) and not log 0). The paper uses p = 10; the code's
    MNIST and CIFAR configurations use k = 5 (util.py:56).

    Example::

        log_and_sign(tinymeta.tensor([1.0, -1e-3, 1e-6]))
        # [[0, 1], [-0.6908, -1], [-1, 0.0220]]
    """
    eps = float(np.finfo(g.dtype).eps)
    log_part = ops.maximum(ops.log(ops.abs(g) + eps) / p, -1.0)
    sign_part = ops.minimum(ops.maximum(g * math.exp(p), -1.0), 1.0)
    return ops.stack([log_part, sign_part], axis=-1)


class LSTMOptimizer(Model):
    r"""The coordinatewise LSTM optimiser of Andrychowicz et al. 2016, "Learning to learn by
    gradient descent by gradient descent" (arXiv:1606.04474), Sec. 2.1 and Fig. 3.

    One small recurrent net m with parameters phi proposes every coordinate's step from that
    coordinate's gradient alone (paper eq. 1)::

        [g_t, h_{t+1}] = m(grad_t, h_t; phi)          theta_{t+1} = theta_t + g_t

    The weights are shared by all coordinates and each coordinate keeps its own hidden state,
    so the coordinates are simply the batch axis of an LSTM: ``update, state = opt(params,
    grad, state)`` takes a gradient of any shape, runs its n entries as n rows through
    ``num_layers`` stacked :func:`lstm_cell` steps and a linear output, and returns an
    update of the gradient's shape. As in the original code (networks.py:198-252,
    ``CoordinateWiseDeepLSTM``): two layers of 20 units (util.py:91), then
    ``linear(h) * output_scale`` (networks.py:213).

    - ``preprocess=True`` feeds :func:`log_and_sign` (two inputs per coordinate), else the
      raw gradient (one input: the original code's quadratic configuration, util.py:89-92).
    - ``output_scale``: 0.1 by default; the original code multiplies by ``scale``, 1.0 for
      the quadratic configuration (networks.py:158) and 0.01 for MNIST/CIFAR (util.py:57).

    Initialisation follows Sonnet's LSTM, which the original code uses (``snt.LSTM``,
    networks.py:191): weights and biases from a normal truncated at two standard deviations
    with std 1/sqrt(fan_in) (fan_in = inputs + hidden for the gates, hidden for the output
    layer), and 1 added to the forget gate's bias (Sonnet's ``forget_bias=1.0``, here folded
    into the initial bias). Parameter names and layouts are :class:`LSTM`'s
    (``weight_ih_l0``, ...), plus ``weight_out`` (1, H) and ``bias_out`` (1,).

    Example::

        opt = LSTMOptimizer()
        phi = opt.init_params(0, dtype="float64")
        grad = tinymeta.tensor(np.ones((3, 10)))          # e.g. 3 functions, 10 coordinates
        update, state = opt(phi, grad, opt.initial_state(grad))   # update: (3, 10)
    """

    def __init__(self, hidden_size=20, num_layers=2, preprocess=True, p=10.0, output_scale=0.1):
        self.hidden_size, self.num_layers = int(hidden_size), int(num_layers)
        self.preprocess, self.p, self.output_scale = bool(preprocess), float(p), float(output_scale)
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError(f"LSTMOptimizer: hidden_size and num_layers must be >= 1, got {hidden_size}, "
                             f"{num_layers}")
        if not (math.isfinite(self.p) and self.p > 0) or not math.isfinite(self.output_scale):
            raise ValueError(f"LSTMOptimizer: p must be a finite number > 0 and output_scale finite, got p={p}, "
                             f"output_scale={output_scale}")
        self.input_size = 2 if self.preprocess else 1

    def _init(self, rng):
        H, p = self.hidden_size, {}
        for layer in range(self.num_layers):
            d_in = self.input_size if layer == 0 else H
            std = 1.0 / math.sqrt(d_in + H)
            p[f"weight_ih_l{layer}"] = truncated_normal(rng, (4 * H, d_in), std)
            p[f"weight_hh_l{layer}"] = truncated_normal(rng, (4 * H, H), std)
            bias = truncated_normal(rng, (4 * H,), std)
            bias[H:2 * H] += 1.0  # the forget gate (PyTorch's order i, f, g, o)
            p[f"bias_ih_l{layer}"] = bias
            p[f"bias_hh_l{layer}"] = np.zeros(4 * H)
        p["weight_out"] = truncated_normal(rng, (1, H), 1.0 / math.sqrt(H))
        p["bias_out"] = truncated_normal(rng, (1,), 1.0 / math.sqrt(H))
        return p

    def initial_state(self, grad):
        """Zero hidden and cell states for every coordinate of ``grad``: [(h, c)] per layer, each (n, H)."""
        zeros = Tensor(grad.xp.zeros((grad.size, self.hidden_size), dtype=grad.dtype))
        return [(zeros, zeros) for _ in range(self.num_layers)]

    def __call__(self, params, grad, state):
        """One step: ``(update, new_state)``; ``update`` has the shape of ``grad``."""
        if len(state) != self.num_layers or any(h.shape != (grad.size, self.hidden_size) for h, _ in state):
            raise ValueError(f"LSTMOptimizer: the state must hold {self.num_layers} (h, c) pairs of shape "
                             f"({grad.size}, {self.hidden_size}) for a gradient of {grad.size} entries; start "
                             "from initial_state(grad)")
        x = ops.reshape(grad, (grad.size, 1))                      # coordinates on the batch axis
        if self.preprocess:
            x = ops.reshape(log_and_sign(x, self.p), (grad.size, 2))
        new_state = []
        for layer, (h, c) in enumerate(state):
            h, c = lstm_cell(params, x, h, c, suffix=f"_l{layer}")
            new_state.append((h, c))
            x = h
        update = F.linear(x, params["weight_out"], params["bias_out"]) * self.output_scale
        return ops.reshape(update, grad.shape), new_state

    def __repr__(self):
        return (f"LSTMOptimizer(hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"preprocess={self.preprocess}, p={self.p}, output_scale={self.output_scale})")
