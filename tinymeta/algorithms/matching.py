"""Matching networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra 2016, "Matching networks
for one shot learning", arXiv:1606.04080).

A query x̂ is labelled by attention over the support set S = {(x_i, y_i)} (Eq. 1)::

    P(ŷ | x̂, S) = sum_i a(x̂, x_i) y_i                  (y_i one-hot)

with the attention a softmax over the cosine similarities c of the embeddings (Eq. 2)::

    a(x̂, x_i) = exp(c(f(x̂), g(x_i))) / sum_j exp(c(f(x̂), g(x_j)))

The paper trains on the log-likelihood of the true label of each query (Sec. 2.2).
The cosine is not scaled (neither Eq. 2 nor Sec. 4 scales it): with 5 classes of one
shot the true class can get at most e / (e + 4 / e) = 0.65 of the mass. Known
reimplementations differ here: AntreasAntoniou/MatchingNetworks
one_shot_learning_network.py:109-116 divides the dot product by the support norm only
(the query's norm acts as a learned temperature); oscarknagg/few-shot
few_shot/utils.py:65-73 and few_shot/matching.py:81 use softmax(cos), as here.

Without full context embeddings, f = g = the embedding network (the model's body).
With them (``fce=True``, Appendix A), both read the whole support set:

- g (A.2): a bidirectional LSTM over the support embeddings g'(x_i) (in the support
  set's order), with a skip connection: g(x_i, S) = h→_i + h←_i + g'(x_i), the LSTM's
  hidden size that of the embedding.
- f (A.1): an LSTM with read-attention over g(S), K = ``fce_steps`` processing steps
  on the query embedding f'(x̂)::

      ĥ_k, c_k = LSTM(f'(x̂), [h_{k-1}, r_{k-1}], c_{k-1})    (3)
      h_k = ĥ_k + f'(x̂)                                        (4)
      r_{k-1} = sum_i a(h_{k-1}, g(x_i)) g(x_i)                 (5)
      a(h_{k-1}, g(x_i)) = softmax_i(h_{k-1}^T g(x_i))          (6)

  and f(x̂, S) = h_K. The LSTM's recurrent input is the concatenation [h, r]; its gates
  are linear in it, so it is computed here as :func:`tinymeta.nn.lstm_cell` with input
  [f'(x̂), r_{k-1}] (weights (4D, 2D)) and state h_{k-1}: the same function, with
  W [x; h; r] split into its x, r and h columns. h_0 = f'(x̂) (ĥ_0 = 0) and c_0 = 0,
  as oscarknagg/few-shot few_shot/models.py:230-236 starts. That reimplementation
  adds r to h instead of concatenating (models.py:247) to keep the cell's size;
  Antoniou's feeds the LSTM the concatenation through TensorFlow's cell. K: the paper
  does not give its value; 5 is Antoniou's default (utils/parser_utils.py:11),
  oscarknagg's is 2 (experiments/matching_nets.py:37).

The paper has no released code.
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import ops
from ..nn import LSTM, lstm_cell
from ..tensor import tensor
from .metric import MetricLearner
from .protonet import squared_distances

G_PREFIX, F_PREFIX = "fce_g_", "fce_f_"  # meta-parameter names of the two LSTMs


def softmax(x, axis=-1):
    """exp(x) / sum exp(x) along ``axis``, through the stable log-softmax."""
    return ops.exp(F.log_softmax(x, dim=axis))


def cosine_similarities(zq, zs, eps: float = 1e-8):
    """c(f(x̂), g(x_i)) for every query and support embedding, (T, Q, S): unit vectors, then one matmul.

    A norm below ``eps`` counts as ``eps``, through ``sqrt(max(|z|^2, eps^2))``, so an embedding of all
    zeros (every ReLU of the body off, which happens in training) has cosine 0 and a finite gradient;
    ``max(|a| |b|, eps)`` after the square root gives 0 / 0 = NaN in the square root's backward there.
    """
    def unit(z):
        return z / ops.sqrt(ops.maximum((z * z).sum(axis=-1, keepdims=True), eps * eps))

    return unit(zq) @ unit(zs).swapaxes(-1, -2)


DISTANCES = ("cosine", "l2")


def attention(zq, zs, distance: str = "cosine"):
    """a(x̂, x_i) of Eq. 2: softmax over the support set of the cosine similarities, (T, Q, S).

    ``distance="l2"``: softmax of the negative squared Euclidean distances -||f(x̂) - g(x_i)||^2
    instead, the variant with which oscarknagg/few-shot reproduces the paper's Omniglot table
    (few_shot/utils.py ``pairwise_distances``, few_shot/matching.py); not the paper's.
    """
    if distance == "l2":
        return softmax(-squared_distances(zq, zs), axis=-1)
    return softmax(cosine_similarities(zq, zs), axis=-1)


def matching_log_probs(zq, zs, ys, n_way: int, distance: str = "cosine"):
    """log P(y | x̂, S) of Eq. 1, (T, Q, n_way): log of the attention-weighted sum of one-hot labels.

    These are log-probabilities (their exps sum to one), so their cross-entropy is the
    paper's negative log-likelihood.
    """
    onehot = F.one_hot(ys, n_way, dtype=zq.dtype)                         # (T, S, N)
    return ops.log(attention(zq, zs, distance) @ onehot)


def fce_support(params, zs):
    """g(x_i, S) of Appendix A.2: h→_i + h←_i + g'(x_i) from a bidirectional LSTM over ``zs`` (T, S, D)."""
    D = zs.shape[-1]
    out, _ = LSTM(D, D, bidirectional=True)(params, zs)                   # (T, S, 2D)
    return out[..., :D] + out[..., D:] + zs


def fce_query(params, zq, gs, steps: int):
    """f(x̂, S) of Appendix A.1 (Eq. 3-6): ``steps`` attention-LSTM steps over ``gs`` (T, S, D), (T, Q, D)."""
    h, c = zq, zq * 0.0
    for _ in range(steps):
        a = softmax(h @ gs.swapaxes(-1, -2), axis=-1)                     # Eq. 6, (T, Q, S)
        r = a @ gs                                                        # Eq. 5
        h_hat, c = lstm_cell(params, ops.concatenate([zq, r], axis=-1), h, c)   # Eq. 3
        h = h_hat + zq                                                    # Eq. 4
    return h


def embedding_size(model) -> int:
    """D, the size of the model's body output: a ConvNet's ``features``, an MLP's last hidden layer."""
    if hasattr(model, "features"):
        return int(model.features)
    return int(model.sizes[-2])


def _strip(meta_params, prefix):
    return {k[len(prefix):]: v for k, v in meta_params.items() if k.startswith(prefix)}


def matching_scores(meta_params, zs, ys, zq, n_way: int, fce: bool = False, fce_steps: int = 5,
                    distance: str = "cosine"):
    """Log-probabilities (T, Q, n_way) of matching networks, with or without full context embeddings."""
    if fce:
        zs = fce_support(_strip(meta_params, G_PREFIX), zs)
        zq = fce_query(_strip(meta_params, F_PREFIX), zq, zs, fce_steps)
    return matching_log_probs(zq, zs, ys, n_way, distance)


class MatchingNet(MetricLearner):
    """Matching networks: cosine attention over the embedded support set, with optional FCE."""

    name = "matching"

    def __init__(self, model, objective, transductive: bool = True, fce: bool = False, fce_steps: int = 5,
                 distance: str = "cosine", **_inner_settings):
        super().__init__(model, objective, transductive=transductive)
        if not isinstance(fce_steps, int) or isinstance(fce_steps, bool) or fce_steps < 1:
            raise ValueError(f"fce_steps must be an integer >= 1, got {fce_steps!r}")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        self.fce, self.fce_steps, self.distance = bool(fce), int(fce_steps), distance

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Built from ``cfg.transductive``, ``cfg.fce``, ``cfg.fce_steps`` and ``cfg.matching_distance``."""
        return cls(model, objective, transductive=cfg.transductive, fce=cfg.fce, fce_steps=cfg.fce_steps,
                   distance=cfg.matching_distance)

    def extra_params(self, rng, dtype, device) -> dict:
        """With FCE: g's bidirectional LSTM and f's attention LSTM, PyTorch's initialisation U(±1/sqrt(D))."""
        if not self.fce:
            return {}
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        D = embedding_size(self.model)
        out = {G_PREFIX + k: v for k, v in LSTM(D, D, bidirectional=True).init_params(rng, dtype, device).items()}
        bound = 1.0 / math.sqrt(D)
        for name, shape in (("weight_ih", (4 * D, 2 * D)), ("weight_hh", (4 * D, D)), ("bias_ih", (4 * D,)),
                            ("bias_hh", (4 * D,))):
            out[F_PREFIX + name] = tensor(rng.uniform(-bound, bound, shape), dtype=dtype, device=device,
                                          requires_grad=True)
        return out

    def scores(self, meta_params, zs, ys, zq, n_way):
        return matching_scores(meta_params, zs, ys, zq, n_way, self.fce, self.fce_steps, self.distance)

    def __repr__(self):
        extra = [f"fce=True, fce_steps={self.fce_steps}"] if self.fce else []
        extra += [] if self.transductive else ["transductive=False"]
        extra += [] if self.distance == "cosine" else [f"distance={self.distance!r}"]
        return f"MatchingNet({', '.join(extra)})"
