"""First-order optimizers over a parameter dict: SGD (with momentum) and Adam.

A tinymeta model is a plain dict ``name -> Tensor`` (leaves that require grad)
plus a pure forward function. An optimizer holds that dict and, on
:meth:`Optimizer.step`, changes each parameter's ``.data`` array **in place**:
the dict keeps the very same Tensor objects, so anything that refers to them
(a model, a meta-learner, a checkpoint helper) sees the new values.

Typical loop::

    params = {"w": tm.tensor(w0, requires_grad=True), "b": tm.tensor(b0, requires_grad=True)}
    opt = tinymeta.optim.Adam(params, lr=1e-3)
    for x, y in batches:
        loss = loss_fn(model(params, x), y)
        opt.step(tm.grad(loss, params))       # grads: a dict with the same keys

or, PyTorch style, ``opt.zero_grad(); loss.backward(); opt.step()``.

The update rules are exactly those documented for ``torch.optim.SGD`` and
``torch.optim.Adam`` (without their rarely used options), so results can be
compared line by line with PyTorch code.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from . import backend
from .autograd import no_grad
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


# ---- argument checks ------------------------------------------------------------------------
def _check_number(name: str, value, low: float = 0.0, high: float | None = None) -> float:
    """A finite float in [low, high) (high=None: no upper bound), or a ValueError saying so."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _scalar(value):
    """A Python scalar from a number or a 0-d array (state dicts read back from .npz hold those)."""
    if getattr(value, "shape", None) == ():
        return value.item()
    return value


def _check_params(params) -> dict[str, Tensor]:
    """A copy of the parameter dict, after checking that every entry can be optimized."""
    if not isinstance(params, Mapping):
        raise TypeError(f"optimizers take a dict name -> Tensor, got {type(params).__name__}; "
                        "e.g. Adam({'w': w, 'b': b}) rather than Adam([w, b])")
    if not params:
        raise ValueError("the parameter dict is empty: an optimizer needs at least one parameter")
    seen: dict[int, str] = {}
    for name, p in params.items():
        if not isinstance(name, str):
            raise TypeError(f"parameter names must be strings, got {name!r}")
        if not isinstance(p, Tensor):
            raise TypeError(f"parameter {name!r} is a {type(p).__name__}, not a Tensor; "
                            "create it with tinymeta.tensor(..., requires_grad=True)")
        if p.dtype.kind != "f":
            raise TypeError(f"parameter {name!r} has dtype {p.dtype}; only floating-point "
                            "tensors can be optimized")
        if not p.is_leaf:
            raise ValueError(f"parameter {name!r} is the result of an operation, not a leaf; "
                             "optimizers update leaves (make one with .detach().requires_grad_())")
        if id(p) in seen:  # it would be updated twice per step
            raise ValueError(f"parameters {seen[id(p)]!r} and {name!r} are the same Tensor; "
                             "list each parameter once")
        seen[id(p)] = name
    return dict(params)


class Optimizer:
    """Base class: parameter bookkeeping, gradient checks and the state dict.

    Subclasses set ``_hyper_names`` (hyperparameters saved in the state dict),
    implement ``_buffer_names(hyper)`` (the per-parameter state arrays, e.g.
    Adam's moments) and ``_update(name, p, g)``, which changes the raw array
    ``p`` in place given the raw gradient array ``g``.
    """

    _hyper_names: tuple[str, ...] = ("lr",)

    def __init__(self, params, lr):
        self.params = _check_params(params)
        self.lr = lr
        self.step_count = 0  # number of step() calls so far (Adam's t)
        self.state = self._zero_buffers(self._buffer_names(self._hyper()))

    # ---- hyperparameters -----------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate; assign to it between steps for a schedule."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _check_number("lr", value)

    def _hyper(self) -> dict:
        return {name: getattr(self, name) for name in self._hyper_names}

    def _set_hyper(self, hyper: dict) -> None:
        """Check and set hyperparameters (subclasses validate their own)."""
        raise NotImplementedError

    def _buffer_names(self, hyper: dict) -> tuple[str, ...]:
        return ()

    def _zero_buffers(self, buffer_names) -> dict[str, dict]:
        """buffer name -> {parameter name -> zeros like the parameter (same device and dtype)}."""
        return {buf: {name: p.xp.zeros_like(p.array) for name, p in self.params.items()}
                for buf in buffer_names}

    # ---- gradients -----------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Forget accumulated ``.grad`` of every parameter (call before ``loss.backward()``)."""
        for p in self.params.values():
            p.grad = None

    def _collect_grads(self, grads) -> dict:
        """Raw gradient arrays on each parameter's device and dtype, checked against the params."""
        if grads is None:
            grads = {name: p.grad for name, p in self.params.items()}
            source = ".grad"
        elif isinstance(grads, Mapping):
            missing = [k for k in self.params if k not in grads]
            extra = [k for k in grads if k not in self.params]
            if missing:
                raise KeyError(f"no gradient for parameter(s) {missing}; pass a dict with the "
                               "same keys as the parameter dict (e.g. tm.grad(loss, params))")
            if extra:
                raise KeyError(f"gradient(s) {extra} match no parameter; known parameters: "
                               f"{list(self.params)}")
            source = "grads"
        else:
            raise TypeError(f"step() takes a dict name -> gradient, got {type(grads).__name__}")
        out = {}
        for name, p in self.params.items():
            g = grads[name]
            if g is None:
                hint = ("call loss.backward() before step(), or pass grads to step()"
                        if source == ".grad" else "it is not connected to the loss")
                raise ValueError(f"parameter {name!r} has no gradient ({hint})")
            if isinstance(g, Tensor):
                g = g.array
            # Same device and dtype as the parameter: float32 params stay float32.
            g = p.xp.asarray(backend.to_device(g, p.device), dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"gradient for parameter {name!r} has shape {tuple(g.shape)}, "
                                 f"the parameter has shape {p.shape}")
            out[name] = g
        return out

    def step(self, grads=None) -> None:
        """Apply one update to every parameter, in place.

        ``grads`` is a dict name -> Tensor or array with exactly the parameter
        dict's keys and shapes; without it each parameter's ``.grad`` is used.
        """
        grads = self._collect_grads(grads)  # check everything before changing anything
        with no_grad():
            self.step_count += 1
            for name, p in self.params.items():
                self._update(name, p.data, grads[name])  # .data: a change, so p's version rises

    def _update(self, name: str, p, g) -> None:
        raise NotImplementedError

    # ---- state dict ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A flat dict of host NumPy arrays and plain numbers: everything needed to resume.

        Keys: ``type`` (the class name), ``step``, the hyperparameters and
        ``<buffer>/<parameter name>`` for each state array (copies, so later
        steps do not change a saved state). Every value can go into an .npz
        without pickle.
        """
        sd = {"type": type(self).__name__, "step": self.step_count, **self._hyper()}
        for buf, arrays in self.state.items():
            for name, a in arrays.items():
                sd[f"{buf}/{name}"] = np.array(backend.to_numpy(a), copy=True)
        return sd

    def load_state_dict(self, sd: Mapping) -> None:
        """Restore a :meth:`state_dict` exactly, onto the parameters' devices.

        Hyperparameters (``lr`` included) are taken from ``sd``, as in PyTorch;
        set ``opt.lr`` afterwards to override. Nothing changes when ``sd`` does
        not fit (another optimizer type, missing or extra keys, wrong shapes).
        """
        if not isinstance(sd, Mapping):
            raise TypeError(f"load_state_dict takes a dict, got {type(sd).__name__}")
        kind = _scalar(sd.get("type"))
        if kind != type(self).__name__:
            raise ValueError(f"this state dict belongs to a {kind!r} optimizer, not "
                             f"{type(self).__name__!r}; create the same optimizer type to load it")
        hyper = {h: _scalar(sd[h]) for h in self._hyper_names if h in sd}
        expected = {"type", "step", *self._hyper_names}
        if len(hyper) == len(self._hyper_names):  # else reported as missing below
            expected |= {f"{buf}/{name}" for buf in self._buffer_names(hyper) for name in self.params}
        missing = sorted(expected - set(sd))
        extra = sorted(set(sd) - expected)
        if missing or extra:
            raise ValueError(f"state dict does not fit this {type(self).__name__} "
                           f"(missing keys: {missing}, unexpected keys: {extra}); was it saved "
                           "for a model with other parameter names or other hyperparameters?")
        step = _scalar(sd["step"])
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"state dict 'step' must be a non-negative integer, got {step!r}")
        state = {}
        for buf in self._buffer_names(hyper):
            state[buf] = {}
            for name, p in self.params.items():
                key = f"{buf}/{name}"
                a = backend.to_numpy(sd[key])
                if a.shape != p.shape:
                    raise ValueError(f"state {key!r} has shape {a.shape}, parameter {name!r} has "
                                     f"shape {p.shape}")
                # A copy on the parameter's device, so later steps leave `sd` alone.
                state[buf][name] = p.xp.array(a, dtype=p.dtype, copy=True)
        self._set_hyper(hyper)  # checks every value before assigning any
        self.step_count = int(step)
        self.state = state

    def __repr__(self):
        hyper = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({len(self.params)} params, {hyper}, step={self.step_count})"


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum and weight decay.

    With gradient :math:`g_t`, parameters :math:`\theta`, momentum :math:`\mu`
    and weight decay :math:`\lambda` (the PyTorch ``torch.optim.SGD`` rule,
    with dampening 0)::

        g_t   = g_t + λ θ_{t-1}                       (if weight_decay != 0)
        b_t   = μ b_{t-1} + g_t,   b_1 = g_1            (if momentum != 0)
        g_t   = g_t + μ b_t  (nesterov)   or   b_t      (if momentum != 0)
        θ_t   = θ_{t-1} - lr g_t

    The momentum buffer starts at zero, so the first step gives ``b_1 = g_1``
    exactly as in PyTorch. This momentum form (Sutskever et al., 2013) scales
    the step by ``lr`` after accumulating, unlike some textbooks.
    """

    _hyper_names = ("lr", "momentum", "nesterov", "weight_decay")

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self._set_hyper({"lr": lr, "momentum": momentum, "nesterov": nesterov,
                         "weight_decay": weight_decay})
        super().__init__(params, lr)

    def _set_hyper(self, hyper):
        momentum = _check_number("momentum", hyper["momentum"])
        weight_decay = _check_number("weight_decay", hyper["weight_decay"])
        nesterov = hyper["nesterov"]
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.lr = hyper["lr"]
        self.momentum, self.nesterov, self.weight_decay = momentum, bool(nesterov), weight_decay

    def _buffer_names(self, hyper):
        return ("momentum_buffer",) if _scalar(hyper["momentum"]) != 0 else ()

    def _update(self, name, p, g):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p  # a new array: the caller's gradient is left alone
        if self.momentum != 0:
            b = self.state["momentum_buffer"][name]
            b *= self.momentum
            b += g
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g


class Adam(Optimizer):
    r"""Adam: per-coordinate steps scaled by running moment estimates.

    Algorithm 1 of Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    ICLR 2015, in the form documented for ``torch.optim.Adam`` (``eps`` is
    added to the square root of the *bias-corrected* second moment). At step
    :math:`t = 1, 2, \dots` with gradient :math:`g_t`::

        g_t  = g_t + λ θ_{t-1}                    (if weight_decay λ != 0; L2, not AdamW)
        m_t  = β1 m_{t-1} + (1 - β1) g_t          (first moment, m_0 = 0)
        v_t  = β2 v_{t-1} + (1 - β2) g_t²         (second moment, v_0 = 0)
        m̂_t  = m_t / (1 - β1^t)                    (bias corrections: m_0 = v_0 = 0
        v̂_t  = v_t / (1 - β2^t)                     pull early estimates towards 0)
        θ_t  = θ_{t-1} - lr m̂_t / (sqrt(v̂_t) + eps)

    ``betas[0] = 0`` is allowed: then ``m̂_t = g_t`` (no momentum, RMSProp
    with bias correction), the setting Reptile (Nichol et al., 2018) uses for
    its inner loop.
    """

    _hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self._set_hyper({"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                         "weight_decay": weight_decay})
        super().__init__(params, lr)

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def _set_hyper(self, hyper):
        beta1 = _check_number("betas[0]", hyper["beta1"], 0.0, 1.0)
        beta2 = _check_number("betas[1]", hyper["beta2"], 0.0, 1.0)
        eps = _check_number("eps", hyper["eps"])
        weight_decay = _check_number("weight_decay", hyper["weight_decay"])
        self.lr = hyper["lr"]
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def _buffer_names(self, hyper):
        return ("exp_avg", "exp_avg_sq")

    def _update(self, name, p, g):
        b1, b2, t = self.beta1, self.beta2, self.step_count
        # the bias corrections folded into two scalars: lr m̂ / (sqrt(v̂) + eps)
        #   = step_size * m / (sqrt(v) + eps * sqrt(1 - b2^t)) with step_size = lr sqrt(1 - b2^t) / (1 - b1^t)
        root = math.sqrt(1 - b2 ** t)
        _adam_kernel(g, self.lr * root / (1 - b1 ** t), b1, b2, self.eps * root, self.weight_decay,
                     p, self.state["exp_avg"][name], self.state["exp_avg_sq"][name])


def _adam_reference(g, step_size, b1, b2, eps, weight_decay, p, m, v):
    """Adam's update of one parameter in place: what ``_adam_kernel`` does in one pass on a GPU."""
    if weight_decay != 0:
        g = g + weight_decay * p
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    p -= step_size * m / (np.sqrt(v) + eps)


_adam_kernel = backend.ElementwiseKernel(
    _adam_reference,
    "T g, float64 step_size, float64 b1, float64 b2, float64 eps, float64 weight_decay",
    "T p, T m, T v",
    """T gg = g + weight_decay * p;
    m = b1 * m + (1 - b1) * gg;
    v = b2 * v + (1 - b2) * gg * gg;
    p -= step_size * m / (sqrt(v) + eps);""",
    "tinymeta_adam")
