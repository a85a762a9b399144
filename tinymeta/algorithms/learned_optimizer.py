r"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al. 2016, arXiv:1606.04474).

An optimiser is a rule that turns gradients into steps. Here the rule is a network, the
coordinatewise LSTM :class:`tinymeta.nn.LSTMOptimizer` with parameters phi, and phi is
trained by gradient descent on how well the rule optimises (paper eq. 1 and 3)::

    theta_{t+1} = theta_t + g_t,     [g_t, h_{t+1}] = m(grad f(theta_t), h_t; phi)
    L(phi) = E_f [ sum_{t=1}^{T} w_t f(theta_t) ],      w_t = 1

The meta-gradient dL/dphi runs back through the unrolled optimisation, but not through
the optimisee's gradients: the paper drops those second derivatives, propagating no gradient
along the dashed edges of its Fig. 2, which is to assume that grad f(theta_t) does not depend on
phi (Sec. 2.1); so does the original code by default (meta.py:311-318, "Stopping the gradient
here corresponds to what was done in the original L2L NIPS submission"; train.py:47
``--second_derivatives=False``). Training truncates the unroll: a run of ``steps`` = 100
steps is cut into pieces of ``unroll_length`` = 20 (train.py:43-45, meta.py:349-364), each
piece a meta-loss and one Adam step on phi (learning rate 0.001, train.py:46, meta.py:400),
with theta and the LSTM state carried from piece to piece as constants (meta.py:375-377).

The optimisees are the paper's random quadratics (Sec. 3.1), :class:`Quadratics`::

    f(theta) = || W theta - y ||^2,     W (10, 10), y (10,)

with 128 functions per meta-batch (util.py:88, problems.py:71-97). The baselines of the
paper's Fig. 4 are :class:`SGDRule`, :class:`RMSpropRule` and :class:`AdamRule` (the original
code's ``Sgd`` and ``Adam`` networks, networks.py:311-370), their learning rates tuned on
held-out functions by :func:`tune_learning_rate`.

File and line numbers refer to github.com/deepmind/learning-to-learn at f3c1a8d. Deliberate
deviations from that code, each an argument away where it matters:

- W and y are drawn from N(0, 1) as the paper says (Sec. 3.1); the code draws them from
  U[0, 1) (problems.py:85-94, ``tf.random_uniform_initializer()``): ``distribution="uniform"``.
- Each function's gradient is its own, d f_i / d theta_i. The code differentiates the *mean*
  over the 128 functions (problems.py:97, meta.py:311), so its LSTM sees gradients 128 times
  smaller; a mean over functions is kept for the meta-loss, where it only scales phi's gradient.
- The meta-loss sums f(theta_1) .. f(theta_T) (eq. 3); the code also adds f(theta_0)
  (meta.py:332-364), a constant within each piece, which changes its value but not its gradient.
- No early stopping on a validation set (paper Sec. 3; train.py:94-112 keeps the best of
  periodic evaluations): :func:`meta_train` returns the last phi.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import ops
from ..autograd import enable_grad, grad, no_grad
from ..optim import Adam
from ..tensor import Tensor, tensor

UNROLL_LENGTH = 20      # train.py:45
STEPS = 100             # train.py:43
META_LR = 1e-3          # train.py:46
FUNCTIONS = 128         # util.py:88 (batch_size)
DIMS = 10               # util.py:88 (num_dims), paper Sec. 3.1
THETA_INIT_STD = 0.01   # problems.py:78-82
DISTRIBUTIONS = ("normal", "uniform")


# ---- the optimisees ---------------------------------------------------------------------------
class Quadratics:
    r"""A batch of N quadratic functions f_i(theta_i) = ||W_i theta_i - y_i||^2 (paper Sec. 3.1).

    ``W`` is (N, d, d) and ``y`` (N, d), Tensors without gradients; ``theta`` is (N, d), one
    point per function. :meth:`losses` gives the N values, each a function of its own row.
    """

    def __init__(self, W: Tensor, y: Tensor):
        if W.ndim != 3 or W.shape[1] != W.shape[2] or y.shape != W.shape[:2]:
            raise ValueError(f"Quadratics: W must be (N, d, d) and y (N, d), got {W.shape} and {y.shape}")
        self.W, self.y = W, y

    @classmethod
    def sample(cls, n, rng, dims=DIMS, distribution="normal", dtype="float64", device=None):
        """``n`` functions with W and y drawn IID from N(0, 1) (``"normal"``, the paper) or U[0, 1)
        (``"uniform"``, the original code's problems.py:85-94)."""
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"Quadratics: distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if int(n) < 1 or int(dims) < 1:
            raise ValueError(f"Quadratics: n and dims must be >= 1, got {n} and {dims}")
        draw = rng.standard_normal if distribution == "normal" else rng.random
        W, y = draw((int(n), int(dims), int(dims))), draw((int(n), int(dims)))
        return cls(tensor(W, dtype=dtype, device=device), tensor(y, dtype=dtype, device=device))

    @property
    def num_functions(self) -> int:
        return self.W.shape[0]

    @property
    def dims(self) -> int:
        return self.W.shape[1]

    def initial_theta(self, rng, std=THETA_INIT_STD) -> Tensor:
        """theta_0 ~ N(0, std^2) per coordinate, (N, d) (problems.py:78-82)."""
        theta = rng.standard_normal((self.num_functions, self.dims)) * std
        return tensor(theta, dtype=self.W.dtype, device=self.W.device)

    def losses(self, theta: Tensor) -> Tensor:
        """f_i(theta_i) for every function: (N,)."""
        residual = ops.matmul(self.W, ops.unsqueeze(theta, -1))[..., 0] - self.y
        return (residual * residual).sum(axis=-1)


# ---- the unrolled optimisation ----------------------------------------------------------------
def optimisee_gradient(problem: Quadratics, theta: Tensor, second_order: bool = False) -> Tensor:
    """grad f(theta), each function's own (N, d).

    By default a constant: computed at a detached copy of theta, so that nothing that comes
    after it can differentiate through it (the paper's dashed edges, Fig. 2; meta.py:317-318).
    ``second_order=True`` keeps it in the graph (train.py:47 ``--second_derivatives``); theta
    must then require grad.
    """
    if second_order:
        return grad(problem.losses(theta).sum(), theta, create_graph=True)
    point = theta.detach().requires_grad_()
    return grad(problem.losses(point).sum(), point)


def unroll(optimizer, params, problem: Quadratics, theta: Tensor, state, steps: int, second_order: bool = False):
    r"""``steps`` steps of the learned optimiser: ``(meta_loss, theta_T, state_T)``.

    theta_{t+1} = theta_t + g_t with ``g_t, state = optimizer(params, grad f(theta_t), state)``,
    and meta_loss = sum_{t=1}^{T} mean_i f_i(theta_t) (paper eq. 3 with w_t = 1), a graph
    node that depends on ``params`` through every theta_t (and, with ``second_order``, also
    through the gradients). Backpropagating it is truncated BPTT over one piece.
    """
    if int(steps) < 1:
        raise ValueError(f"unroll: steps must be >= 1 (a meta-loss needs at least one step), got {steps}")
    if second_order and not theta.requires_grad:
        theta = theta.detach().requires_grad_()
    meta_loss = None
    for _ in range(int(steps)):
        gradient = optimisee_gradient(problem, theta, second_order)
        update, state = optimizer(params, gradient, state)
        theta = theta + update
        loss = problem.losses(theta).mean()
        meta_loss = loss if meta_loss is None else meta_loss + loss
    return meta_loss, theta, state


def detach_state(state):
    """The LSTM state [(h, c)] as constants: the next truncated piece starts from its values."""
    return [(h.detach(), c.detach()) for h, c in state]


def meta_train(optimizer, params, epochs, rng, *, functions=FUNCTIONS, dims=DIMS, steps=STEPS,
               unroll_length=UNROLL_LENGTH, lr=META_LR, distribution="normal", second_order=False,
               callback=None):
    r"""Train the learned optimiser's ``params`` in place by truncated BPTT; returns the loss history.

    Each epoch (util.py:30-36, train.py:79-84) samples ``functions`` fresh quadratics and theta_0,
    zeroes the LSTM state, and runs ``steps`` steps in pieces of ``unroll_length``; after each
    piece one Adam step (``lr``) on the piece's meta-loss :func:`unroll`, then theta and the
    state continue as constants. Returns a list with, per epoch, the mean f(theta_T) after the
    last step. ``callback(epoch, final_loss)``, if given, is called after each epoch.
    """
    if int(steps) < 1 or int(unroll_length) < 1 or int(steps) % int(unroll_length):
        raise ValueError(f"meta_train: steps ({steps}) must be a positive multiple of unroll_length "
                         f"({unroll_length})")
    if int(epochs) < 0:
        raise ValueError(f"meta_train: epochs must be >= 0, got {epochs}")
    dtype = next(iter(params.values())).dtype
    adam = Adam(params, lr=lr)
    history = []
    for epoch in range(int(epochs)):
        problem = Quadratics.sample(functions, rng, dims, distribution, dtype=dtype)
        theta = problem.initial_theta(rng)
        state = optimizer.initial_state(theta)
        for _ in range(int(steps) // int(unroll_length)):
            meta_loss, theta, state = unroll(optimizer, params, problem, theta, state, unroll_length, second_order)
            adam.step(grad(meta_loss, params))
            theta, state = theta.detach(), detach_state(state)
        with no_grad():
            final = float(problem.losses(theta).mean().item())
        history.append(final)
        if callback is not None:
            callback(epoch, final)
    return history


# ---- update rules: the learned one and the hand-designed baselines ------------------------------
class LearnedRule:
    """The learned optimiser with fixed ``params``, as an update rule ``(grad, state) -> (update, state)``."""

    name = "LSTM"

    def __init__(self, optimizer, params):
        self.optimizer, self.params = optimizer, params

    def initial_state(self, theta):
        return self.optimizer.initial_state(theta)

    def __call__(self, gradient, state):
        return self.optimizer(self.params, gradient, state)


class SGDRule:
    """update = -lr grad (networks.py:311-325, the code's ``Sgd``)."""

    name = "SGD"

    def __init__(self, lr):
        self.lr = float(lr)

    def initial_state(self, theta):
        return None

    def __call__(self, gradient, state):
        return gradient * (-self.lr), state


class RMSpropRule:
    r"""RMSprop (Tieleman & Hinton 2012, lecture 6.5): v = rho v + (1 - rho) g^2, update = -lr g / (sqrt(v) + eps).

    rho = 0.9 as in the lecture and TensorFlow's ``RMSPropOptimizer`` (the paper's baselines
    ran in TensorFlow); eps = 1e-8.
    """

    name = "RMSprop"

    def __init__(self, lr, rho=0.9, eps=1e-8):
        self.lr, self.rho, self.eps = float(lr), float(rho), float(eps)

    def initial_state(self, theta):
        return theta.detach() * 0.0

    def __call__(self, gradient, v):
        v = v * self.rho + (gradient * gradient) * (1 - self.rho)
        return gradient * (-self.lr) / (ops.sqrt(v) + self.eps), v


class AdamRule:
    r"""Adam (Kingma & Ba 2015) as the code's ``Adam`` network (networks.py:339-370): bias-corrected
    moments, update = -lr m_hat / (sqrt(v_hat) + eps); betas (0.9, 0.999), eps 1e-8."""

    name = "Adam"

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)

    def initial_state(self, theta):
        zeros = theta.detach() * 0.0
        return 0, zeros, zeros

    def __call__(self, gradient, state):
        t, m, v = state
        t += 1
        m = m * self.beta1 + gradient * (1 - self.beta1)
        v = v * self.beta2 + (gradient * gradient) * (1 - self.beta2)
        m_hat, v_hat = m / (1 - self.beta1 ** t), v / (1 - self.beta2 ** t)
        return m_hat * (-self.lr) / (ops.sqrt(v_hat) + self.eps), (t, m, v)


BASELINES = {"SGD": SGDRule, "RMSprop": RMSpropRule, "Adam": AdamRule}
LEARNING_RATES = tuple(float(10.0 ** (k / 4)) for k in range(-16, 5))   # 1e-4 .. 10, four per decade
COARSE_RATES = tuple(float(10.0 ** k) for k in range(-4, 2))            # one per decade (quick runs)


def optimise(rule, problem: Quadratics, theta: Tensor, steps: int = STEPS, per_function: bool = False):
    """Run ``rule`` for ``steps`` steps from ``theta``: the mean loss over the functions after each
    step, (steps + 1,) with f(theta_0) first, inf once any function has diverged (overflowed).
    With ``per_function=True`` also each function's own final loss, (N,) (inf where it diverged).
    """
    state = rule.initial_state(theta)
    curve = []
    with no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # a diverging function overflows: it scores inf
        curve.append(float(problem.losses(theta).mean().item()))
        for _ in range(int(steps)):
            with enable_grad():
                gradient = optimisee_gradient(problem, theta)
            update, state = rule(gradient, state)
            theta = theta + update
            value = float(problem.losses(theta).mean().item())
            curve.append(value if math.isfinite(value) else math.inf)
        finals = [v if math.isfinite(v) else math.inf for v in problem.losses(theta).numpy().tolist()]
    curve = np.asarray(curve, dtype=np.float64)
    return (curve, np.asarray(finals, dtype=np.float64)) if per_function else curve


def tune_learning_rate(make_rule, problem: Quadratics, theta: Tensor, rates=LEARNING_RATES, steps: int = STEPS):
    """The rate whose run ends lowest: ``(best_rate, {rate: mean final loss})``, as the paper's Fig. 4
    tunes its baselines. Pass held-out functions, not the ones the comparison reports."""
    finals = {}
    for rate in rates:
        finals[float(rate)] = float(optimise(make_rule(rate), problem, theta, steps)[-1])
    best = min(finals, key=lambda r: (finals[r], r))
    if not math.isfinite(finals[best]):
        raise ValueError(f"tune_learning_rate: every rate in {list(finals)} diverged; try smaller rates")
    return best, finals
