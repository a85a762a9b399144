"""Memory-augmented networks: the neural Turing machine and the MANN of one-shot learning.

Both are a controller (an LSTM, :func:`tinymeta.nn.lstm_cell`) that reads from and
writes to an external memory ``M`` of N rows (locations) by M columns, through
soft attention weights over the rows. Every piece is composed from tinymeta's
ops (softmax from ``log_softmax``, a circular shift from slices and
``concatenate``, cosine similarity from ``functional``), so it differentiates to
any order with no op of its own. Shapes carry any leading axes (``...``): a batch
of sequences, or a task axis and a batch.

- Neural Turing machine (Graves, Wayne & Danihelka 2014, arXiv:1410.5401):
  :func:`content_weights` (Sec. 3.3.1, eqs. 5-6), :func:`interpolate` (eq. 7),
  :func:`circular_convolution` (eq. 8), :func:`sharpen` (eq. 9), :func:`read`
  (Sec. 3.1, eq. 2), :func:`erase_and_add` (Sec. 3.2, eqs. 3-4), the whole step
  :func:`ntm_step` and the model :class:`NTM`.
- MANN with least-recently-used access (Santoro et al. 2016, arXiv:1605.06065,
  Sec. 3.1-3.2): :func:`least_used`, :func:`lru_write_weights`, :func:`mann_step`
  and :class:`MANN`.

Losses for these models: :func:`binary_cross_entropy_with_logits` (the copy task).
"""
from __future__ import annotations

import math

import numpy as np

from . import functional as F
from . import ops
from .nn import LSTM, Model, lstm_cell
from .tensor import Tensor, tensor


# ---- small compositions --------------------------------------------------------------------
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x_i) / sum_j exp(x_j) along ``axis``, as exp(log_softmax(x)) (stable for any finite x)."""
    return ops.exp(F.log_softmax(x, dim=axis))


def softplus(x: Tensor) -> Tensor:
    """log(1 + exp(x)); smooth to every order. Used on inputs clipped to [-20, 20] (:data:`CLIP`),
    where exp(x) cannot overflow even in float32."""
    return ops.log(1.0 + ops.exp(x))


def clip(x: Tensor, low: float, high: float) -> Tensor:
    """x limited to [low, high] (gradient 1 inside, 0 outside)."""
    return ops.minimum(ops.maximum(x, low), high)


def binary_cross_entropy_with_logits(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))] = max(z, 0) - y z + log(1 + exp(-|z|)).

    The right-hand form never takes the log of a rounded-to-zero probability.
    ``reduction``: ``"mean"`` over every element, ``"sum"``, or ``"none"``.
    """
    target = target if isinstance(target, Tensor) else tensor(np.asarray(target), dtype=logits.dtype,
                                                               device=logits.device)
    loss = ops.relu(logits) - target * logits + ops.log(1.0 + ops.exp(-ops.abs(logits)))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---- NTM addressing (Graves et al. 2014, Sec. 3) -------------------------------------------
def content_weights(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    """Content addressing, eqs. (5)-(6): w_c(i) = softmax_i(beta K(k, M(i))), K the cosine similarity.

    ``memory`` (..., N, M), ``key`` (..., M), ``beta`` (..., 1) >= 0; returns (..., N).
    The cosine's denominator is max(|k| |M(i)|, 1e-8) (:func:`tinymeta.functional.cosine_similarity`),
    so an all-zero row scores 0 instead of NaN.
    """
    similarity = F.cosine_similarity(memory, ops.unsqueeze(key, -2), dim=-1)      # (..., N)
    return softmax(beta * similarity, axis=-1)


def interpolate(w_content: Tensor, w_prev: Tensor, g: Tensor) -> Tensor:
    """Interpolation gate, eq. (7): w_g = g w_c + (1 - g) w_{t-1}, with g (..., 1) in [0, 1]."""
    return g * w_content + (1.0 - g) * w_prev


def circular_shift(w: Tensor, k: int) -> Tensor:
    """``w`` rolled by ``k`` places along its last axis, as ``np.roll(w, k, axis=-1)``: out[i] = w[(i - k) mod N]."""
    n = w.shape[-1]
    k %= n
    if k == 0:
        return w
    return ops.concatenate([w[..., n - k:], w[..., :n - k]], axis=-1)


def circular_convolution(w: Tensor, s: Tensor) -> Tensor:
    """Rotation by the shift weighting, eq. (8): w~(i) = sum_j w(j) s(i - j), indices modulo N.

    ``w`` (..., N); ``s`` (..., 2R + 1), its entries the weights of the shifts -R, ..., R
    (the paper's s over {-1, 0, 1} is R = 1). So w~ = sum_k s_k roll(w, k): mass at
    location i moves to i + k with weight s_k.
    """
    width = s.shape[-1]
    if width % 2 != 1 or width > w.shape[-1]:
        raise ValueError(f"circular_convolution: the shift weighting must have an odd length 2R + 1 <= N = "
                         f"{w.shape[-1]}, got {width}")
    R = width // 2
    out = None
    for j, k in enumerate(range(-R, R + 1)):
        term = s[..., j:j + 1] * circular_shift(w, k)
        out = term if out is None else out + term
    return out


def sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening, eq. (9): w(i) = w~(i)^gamma / sum_j w~(j)^gamma, with gamma (..., 1) >= 1.

    Computed as softmax(gamma log w~), the same number without forming w~^gamma, which
    underflows in float32 for gamma near 20 (every entry 0, then 0 / 0). Needs w~ > 0,
    which holds here: w~ mixes a softmax (all entries > 0) with shift weights > 0.
    """
    return softmax(gamma * ops.log(w), axis=-1)


def address(memory, key, beta, g, s, gamma, w_prev) -> Tensor:
    """The whole addressing mechanism of Fig. 2: content, interpolation, shift, sharpening."""
    return sharpen(circular_convolution(interpolate(content_weights(memory, key, beta), w_prev, g), s), gamma)


def read(memory: Tensor, w: Tensor) -> Tensor:
    """Reading, eq. (2): r = sum_i w(i) M(i); ``memory`` (..., N, M), ``w`` (..., N) -> (..., M)."""
    return ops.squeeze(ops.matmul(ops.unsqueeze(w, -2), memory), -2)


def erase_and_add(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Writing, eqs. (3)-(4): M(i) <- M(i) [1 - w(i) e] + w(i) a, with e in [0, 1]^M, a in R^M."""
    w = ops.unsqueeze(w, -1)                                          # (..., N, 1)
    return memory * (1.0 - w * ops.unsqueeze(erase, -2)) + w * ops.unsqueeze(add, -2)


# ---- the neural Turing machine ---------------------------------------------------------------
CLIP = 20.0  # head parameters and outputs clipped to [-20, 20] (Collier & Beel 2018; their ntm.py:58, 103)
SHIFTS = 3   # shift weighting over {-1, 0, 1} (Sec. 3.3.2; copy-task setting, Table 2 and Sec. 4)


def split_head_parameters(p: Tensor, memory_width: int, write: bool):
    """The read head's (k, beta, g, s, gamma) or the write head's (..., e, a) from raw controller outputs.

    Activations as Collier & Beel's MarkPKCollier/NeuralTuringMachine@5644e3b ntm.py:66-72, 91-92:
    k = tanh, beta = softplus (>= 0), g = sigmoid, s = softmax over the 3 shifts, gamma = 1 + softplus
    (>= 1); erase e = sigmoid, add a = tanh. (The paper does not fix them.)
    """
    M = memory_width
    k = ops.tanh(p[..., :M])
    beta = softplus(p[..., M:M + 1])
    g = ops.sigmoid(p[..., M + 1:M + 2])
    s = softmax(p[..., M + 2:M + 2 + SHIFTS], axis=-1)
    gamma = 1.0 + softplus(p[..., M + 2 + SHIFTS:M + 3 + SHIFTS])
    if not write:
        return k, beta, g, s, gamma
    base = M + 3 + SHIFTS
    return k, beta, g, s, gamma, ops.sigmoid(p[..., base:base + M]), ops.tanh(p[..., base + M:base + 2 * M])


def ntm_step(params, x, state, memory_width: int):
    """One step of an NTM with one read and one write head: (output logits, new state).

    ``state`` = (h, c, r, w_read, w_write, memory): the controller's hidden and cell
    states (..., H), the last read vector (..., M), both heads' last weightings (..., N)
    and the memory (..., N, M). The controller sees [x, r_{t-1}]; both heads address the
    memory M_{t-1} (the read head reads it, then the write head erases and adds); the
    output is linear in [h_t, r_t] (logits: apply a sigmoid for bits). Head parameters
    and output logits are clipped to [-20, 20] as in Collier & Beel's ntm.py:58, 103.
    """
    h, c, r, w_read, w_write, memory = state
    h, c = lstm_cell(params, ops.concatenate([x, r], axis=-1), h, c, suffix="_l0")
    heads = clip(F.linear(h, params["heads_w"], params["heads_b"]), -CLIP, CLIP)
    per_read = memory_width + 3 + SHIFTS
    k, beta, g, s, gamma = split_head_parameters(heads[..., :per_read], memory_width, write=False)
    w_read = address(memory, k, beta, g, s, gamma, w_read)
    r = read(memory, w_read)
    k, beta, g, s, gamma, e, a = split_head_parameters(heads[..., per_read:], memory_width, write=True)
    w_write = address(memory, k, beta, g, s, gamma, w_write)
    memory = erase_and_add(memory, w_write, e, a)
    out = clip(F.linear(ops.concatenate([h, r], axis=-1), params["out_w"], params["out_b"]), -CLIP, CLIP)
    return out, (h, c, r, w_read, w_write, memory)


class NTM(Model):
    """A neural Turing machine: LSTM controller, an N x M memory, one read head and one write head.

    ``logits, trace = ntm(params, x)`` runs a batch of sequences ``x`` (..., L, inputs)
    from the initial state and returns the output logits (..., L, outputs) and, in
    ``trace``, every step's read and write weightings (..., L, N) for plots.
    ``ntm.initial_state(params, batch_shape)`` and ``ntm.step(params, x, state)``
    run it one step at a time.

    Initial state, as Collier & Beel (arXiv:1807.08518; ntm.py:149-173 ``zero_state``) found
    trains most reliably: memory constant 1e-6 (not learned, ntm.py:173), controller state
    zero (:157), read vector tanh(learned bias) (:151), head weightings softmax(learned bias) (:154).
    Parameters: the controller ``weight_ih_l0`` ... (PyTorch's LSTM layout and init),
    ``heads_w`` (P, H) / ``heads_b`` producing both heads' parameters, ``out_w`` /
    ``out_b`` (outputs, H + M), ``r0`` (M,), ``w0_read`` and ``w0_write`` (N,).
    Linear layers start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (torch.nn.Linear's default).
    """

    def __init__(self, inputs=9, outputs=8, hidden=100, memory_size=128, memory_width=20):
        self.inputs, self.outputs, self.hidden = int(inputs), int(outputs), int(hidden)
        self.memory_size, self.memory_width = int(memory_size), int(memory_width)
        if min(self.inputs, self.outputs, self.hidden, self.memory_width) < 1 or self.memory_size < SHIFTS:
            raise ValueError(f"NTM: sizes must be >= 1 and memory_size >= {SHIFTS}, got inputs {inputs}, "
                             f"outputs {outputs}, hidden {hidden}, memory {memory_size} x {memory_width}")
        self.controller = LSTM(self.inputs + self.memory_width, self.hidden)
        self.head_parameters = (self.memory_width + 3 + SHIFTS) * 2 + 2 * self.memory_width

    def _init(self, rng):
        p = self.controller._init(rng)
        H, M = self.hidden, self.memory_width
        a = 1.0 / math.sqrt(H)
        p["heads_w"] = rng.uniform(-a, a, (self.head_parameters, H))
        p["heads_b"] = rng.uniform(-a, a, self.head_parameters)
        a = 1.0 / math.sqrt(H + M)
        p["out_w"] = rng.uniform(-a, a, (self.outputs, H + M))
        p["out_b"] = rng.uniform(-a, a, self.outputs)
        p["r0"] = rng.standard_normal(M) * 0.01
        p["w0_read"] = rng.standard_normal(self.memory_size) * 0.01
        p["w0_write"] = rng.standard_normal(self.memory_size) * 0.01
        return p

    def initial_state(self, params, batch_shape):
        """(h, c, r, w_read, w_write, memory) at the start of every sequence, for a batch of ``batch_shape``."""
        ref = params["r0"]
        zeros = tensor(np.zeros(tuple(batch_shape) + (self.hidden,)), dtype=ref.dtype, device=ref.device)

        def spread(v):
            return ops.broadcast_to(v, tuple(batch_shape) + v.shape)
        memory = tensor(np.full(tuple(batch_shape) + (self.memory_size, self.memory_width), 1e-6), dtype=ref.dtype,
                        device=ref.device)
        return (zeros, zeros, spread(ops.tanh(params["r0"])), spread(softmax(params["w0_read"])),
                spread(softmax(params["w0_write"])), memory)

    def step(self, params, x, state):
        """One step: (logits (..., outputs), new state)."""
        return ntm_step(params, x, state, self.memory_width)

    def __call__(self, params, x):
        if x.ndim < 2 or x.shape[-1] != self.inputs:
            raise ValueError(f"NTM: input must be (..., L, {self.inputs}), got {x.shape}")
        state = self.initial_state(params, x.shape[:-2])
        outs, reads, writes = [], [], []
        for t in range(x.shape[-2]):
            out, state = self.step(params, x[..., t, :], state)
            outs.append(out)
            reads.append(state[3])
            writes.append(state[4])
        axis = x.ndim - 2
        return ops.stack(outs, axis=axis), {"read": ops.stack(reads, axis=axis), "write": ops.stack(writes, axis=axis)}

    def __repr__(self):
        return (f"NTM(inputs={self.inputs}, outputs={self.outputs}, hidden={self.hidden}, "
                f"memory_size={self.memory_size}, memory_width={self.memory_width})")


# ---- MANN: least-recently-used access (Santoro et al. 2016, Sec. 3.2) -------------------------
def least_used(usage: Tensor, n: int) -> Tensor:
    """One-hot rows of the ``n`` least-used locations: (..., n, N), row j the (j+1)-th smallest usage.

    A constant (the choice is piecewise constant in the usage, so its derivative is 0
    wherever it exists). Ties go to the lower index, as ``argmin``.
    """
    N = usage.shape[-1]
    u, rows = usage.detach(), []
    for _ in range(n):
        row = ops.one_hot(ops.argmax(-u, axis=-1), N, dtype=usage.dtype)
        rows.append(row)
        u = ops.where(row > 0, 1e30, u)  # taken: never the least used again
    return ops.stack(rows, axis=-2)


def lru_write_weights(alpha: Tensor, w_read_prev: Tensor, w_least_used: Tensor) -> Tensor:
    """Santoro et al. Sec. 3.2: w^w_t = sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) w^lu_{t-1}.

    ``alpha`` (..., heads, 1), the weightings (..., heads, N): each head writes either where it
    last read (to update a memory) or to a least-used location (to store a new one).
    """
    sigma = ops.sigmoid(alpha)
    return sigma * w_read_prev + (1.0 - sigma) * w_least_used


def mann_step(params, x, state, heads: int, gamma: float, write: str = "key", least_used_to: str = "each"):
    """One step of the MANN: (class logits, new state).

    ``state`` = (h, c, r, w_read, usage, memory): controller states (..., H), the last reads
    joined (..., heads * M), the last read weightings (..., heads, N), usage (..., N), memory
    (..., N, M). Following Sec. 3.2 and tristandeleu/ntm-one-shot mann/model.py:48-81:
    the controller sees [x_t, r_{t-1}]; each head h emits a key k (tanh) and a gate alpha;
    the write weights mix the head's last read weights with the h-th least-used location
    of the last usage (``least_used_to = "all"``: with all ``heads`` least-used locations at
    once, Sec. 3.2's w^lu, as snowkylin/ntm mann_cell.py:140-141); the least-used location
    is zeroed, then each head adds w^w(i) k to M(i) (Sec. 3.2: the key is what is written; ``write = "add"``: a separate
    add vector a = tanh(W_a h + b_a) instead, as tristandeleu's model.py:59, 72 and the NTM
    write); reads use the new memory with cosine content weights, no key strength; usage
    decays, u_t = gamma u_{t-1} + sum_heads (w^r_t + w^w_t). The output is linear in [h_t, r_t].
    """
    h, c, r, w_read, usage, memory = state
    N, M = memory.shape[-2], memory.shape[-1]
    h, c = lstm_cell(params, ops.concatenate([x, r], axis=-1), h, c, suffix="_l0")
    keys = ops.tanh(F.linear(h, params["key_w"], params["key_b"]))                   # (..., heads * M)
    keys = keys.reshape(keys.shape[:-1] + (heads, M))
    alpha = F.linear(h, params["alpha_w"], params["alpha_b"]).reshape(h.shape[:-1] + (heads, 1))
    lu = least_used(usage, heads)                                                    # (..., heads, N)
    # "each": head h the h-th least-used location; "all": every head all n of them (w^lu marks n)
    w_write = lru_write_weights(alpha, w_read, lu if least_used_to == "each" else lu.sum(axis=-2, keepdims=True))
    memory = memory * (1.0 - ops.unsqueeze(lu[..., 0, :], -1))     # the least-used location cleared
    written = keys
    if write == "add":                                                               # an add vector per head
        written = ops.tanh(F.linear(h, params["add_w"], params["add_b"])).reshape(keys.shape)
    memory = memory + ops.matmul(ops.swapaxes(w_write, -1, -2), written)             # sum_h w^w_h(i) k_h (or a_h)
    similarity = F.pairwise_cosine_similarity(keys, memory)                        # (..., heads, N)
    w_read = softmax(similarity, axis=-1)
    reads = ops.matmul(w_read, memory)                                              # (..., heads, M)
    r = reads.reshape(reads.shape[:-2] + (heads * M,))
    usage = gamma * usage + w_read.sum(axis=-2) + w_write.sum(axis=-2)
    out = F.linear(ops.concatenate([h, r], axis=-1), params["out_w"], params["out_b"])
    return out, (h, c, r, w_read, usage, memory)


class MANN(Model):
    """Memory-augmented neural network with least-recently-used access (Santoro et al. 2016).

    ``logits = mann(params, x)`` maps a batch of episodes ``x`` (..., L, inputs) (each
    input an image joined with the one-hot label of the previous step) to class logits
    (..., L, classes). With ``heads=0`` it is the paper's LSTM baseline: the same
    controller and output layer, no memory.

    Sizes as the paper's Omniglot setting and tristandeleu/ntm-one-shot mann/model.py:12-14:
    200 LSTM units, memory 128 x 40, 4 read heads, usage decay gamma 0.95 (model.py:36).
    Initial state as model.py:20-25: memory 1e-6 everywhere, zero controller state and
    reads, each head's read weights and the usage one-hot at location 0.
    Controller: PyTorch's LSTM layout and init; linear layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    ``write``: what a head adds to memory, ``"key"`` its read key (the paper's Sec. 3.2,
    M_t(i) = M_{t-1}(i) + w^w_t(i) k_t) or ``"add"`` a separate add vector (tristandeleu's
    model.py:59, 72), so that what is stored need not be what is looked up.
    ``least_used_to``: where a head's write goes when it does not update its last read, ``"each"``
    (head h to the h-th least-used location, tristandeleu's model.py:63-67) or ``"all"`` (every
    head to all ``heads`` least-used locations: Sec. 3.2's w^lu, which marks the n least used).
    """

    def __init__(self, inputs=405, classes=5, hidden=200, memory_size=128, memory_width=40, heads=4, gamma=0.95,
                 write="key", least_used_to="each"):
        self.inputs, self.classes, self.hidden = int(inputs), int(classes), int(hidden)
        self.memory_size, self.memory_width, self.heads = int(memory_size), int(memory_width), int(heads)
        self.gamma = float(gamma)
        if write not in ("key", "add"):
            raise ValueError(f"MANN: write must be 'key' (the paper's) or 'add' (a separate add vector), got {write!r}")
        self.write = write
        if least_used_to not in ("each", "all"):
            raise ValueError(f"MANN: least_used_to must be 'each' (head h to the h-th least-used location) or 'all' "
                             f"(every head to all n least-used ones, the paper's w^lu), got {least_used_to!r}")
        self.least_used_to = least_used_to
        if min(self.inputs, self.classes, self.hidden, self.memory_width) < 1 or self.heads < 0 \
                or self.memory_size < max(self.heads, 1) or not 0 <= self.gamma <= 1:
            raise ValueError(f"MANN: sizes must be >= 1, heads >= 0 and <= memory_size, gamma in [0, 1]; got "
                             f"inputs {inputs}, classes {classes}, hidden {hidden}, memory {memory_size} x "
                             f"{memory_width}, heads {heads}, gamma {gamma}")
        self.reads = self.heads * self.memory_width
        self.controller = LSTM(self.inputs + self.reads, self.hidden)

    def _init(self, rng):
        p = self.controller._init(rng)
        H = self.hidden
        a = 1.0 / math.sqrt(H)
        if self.heads:
            p["key_w"] = rng.uniform(-a, a, (self.heads * self.memory_width, H))
            p["key_b"] = rng.uniform(-a, a, self.heads * self.memory_width)
            p["alpha_w"] = rng.uniform(-a, a, (self.heads, H))
            p["alpha_b"] = rng.uniform(-a, a, self.heads)
            if self.write == "add":
                p["add_w"] = rng.uniform(-a, a, (self.heads * self.memory_width, H))
                p["add_b"] = rng.uniform(-a, a, self.heads * self.memory_width)
        a = 1.0 / math.sqrt(H + self.reads)
        p["out_w"] = rng.uniform(-a, a, (self.classes, H + self.reads))
        p["out_b"] = rng.uniform(-a, a, self.classes)
        return p

    def initial_state(self, params, batch_shape):
        """(h, c, r, w_read, usage, memory) at the start of every episode."""
        ref, b = params["out_w"], tuple(batch_shape)

        def const(a):
            return tensor(a, dtype=ref.dtype, device=ref.device)
        one_hot = np.zeros(self.memory_size)
        one_hot[0] = 1.0
        return (const(np.zeros(b + (self.hidden,))), const(np.zeros(b + (self.hidden,))),
                const(np.zeros(b + (self.reads,))),
                const(np.broadcast_to(one_hot, b + (self.heads, self.memory_size)).copy()),
                const(np.broadcast_to(one_hot, b + (self.memory_size,)).copy()),
                const(np.full(b + (self.memory_size, self.memory_width), 1e-6)))

    def step(self, params, x, state):
        """One step: (logits (..., classes), new state)."""
        if not self.heads:
            h, c = lstm_cell(params, x, state[0], state[1], suffix="_l0")
            return F.linear(h, params["out_w"], params["out_b"]), (h, c) + tuple(state[2:])
        return mann_step(params, x, state, self.heads, self.gamma, self.write, self.least_used_to)

    def __call__(self, params, x):
        if x.ndim < 2 or x.shape[-1] != self.inputs:
            raise ValueError(f"MANN: input must be (..., L, {self.inputs}), got {x.shape}")
        state = self.initial_state(params, x.shape[:-2])
        outs = []
        for t in range(x.shape[-2]):
            out, state = self.step(params, x[..., t, :], state)
            outs.append(out)
        return ops.stack(outs, axis=x.ndim - 2)

    def __repr__(self):
        return (f"MANN(inputs={self.inputs}, classes={self.classes}, hidden={self.hidden}, memory_size="
                f"{self.memory_size}, memory_width={self.memory_width}, heads={self.heads}, gamma={self.gamma}"
                + (f", write={self.write!r}" if self.write != "key" else "")
                + (f", least_used_to={self.least_used_to!r})" if self.least_used_to != "each" else ")"))
