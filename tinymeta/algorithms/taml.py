"""TAML: task-agnostic meta-learning (Jamal & Qi, CVPR 2019, arXiv:1805.07722), on top of MAML.

MAML's initial model theta can end up biased towards the training tasks. TAML adds a
regulariser to MAML's meta-objective (theta_i = theta - alpha grad L_i(f_theta), MAML Eq. 1),
in one of two forms.

Entropy maximisation/reduction (classification; the paper's "Entropy-Maximization/Reduction
TAML"): the initial model should guess every label with equal probability, and the adapted
model should be confident:
    min_theta  E_i [ L_i(f_theta_i) + lambda ( -H_i(f_theta) + H_i(f_theta_i) ) ]
    H_i(f) = -E_{x ~ P_i(x)} sum_n y_hat_n log y_hat_n,    [y_hat_1 .. y_hat_N] = softmax(f(x))
Inequality minimisation (any loss; "Inequality-Minimization TAML"): the initial model's losses
should be equal across the tasks of a meta-batch:
    min_theta  E_i [ L_i(f_theta_i) ] + lambda I({ L_i(f_theta) }_{i=1..M})
with I an inequality measure over the M tasks' losses: the Theil index (the default), the
generalized entropy index GE(alpha), the Atkinson index A_epsilon, the Gini coefficient or the
variance of logarithms.

Which examples. As in MAML's notation, where L_i(f_theta) in the inner step is the loss on the
task's K support examples and L_i(f_theta_i) in the meta-objective the loss on its query
examples, the "before" terms (H_i(f_theta), L_i(f_theta)) are computed on the support set, with
theta (the inner loop's first forward pass, reused: no extra pass), and H_i(f_theta_i) on the
query set with the adapted weights (the meta-loss's forward pass, reused). The expectation over
x in H_i is the mean over the task's examples; E_i is the mean over the meta-batch's tasks.

Sources. No code of the authors is known; no reimplementation was found in the searchable
corpora. The paper's PDF could not be opened here: the two objectives and the five measures
above follow a public summary of the paper that reproduces its equations (a blog post,
"Task-Agnostic Meta-Learning for few-shot learning"), and their section numbers (3.1, 3.2) the
project's issue 27. Two of the summary's formulas were corrected to their standard definitions,
which they must mean: the Atkinson index for epsilon = 1 is 1 - (prod_i l_i)^(1/M) / mean(l)
(the summary's 1/M inside the product would not vanish for equal losses), and the Gini
coefficient's "2n" is 2M. The paper's lambda and its experiments' numbers could not be read
either: the presets' lambda is tinymeta's choice (see presets.py), and no paper number is quoted.
"""
from __future__ import annotations

import math

from .. import functional as F
from ..ops import abs as absolute
from ..ops import exp, log, maximum
from .base import MetaLearner
from .common import inner_sgd, per_task, query_metrics

ENTROPY = "entropy"
# inequality measures: name -> the parameter it takes (None: none)
INEQUALITIES = {"theil": None, "ge": "alpha", "atkinson": "epsilon", "gini": None, "variance-of-logs": None}
MEASURE_HELP = ("entropy, theil, ge:ALPHA (generalized entropy), atkinson:EPSILON (>= 0), gini or variance-of-logs")
_TINY = 1e-30  # log's argument floor: 0 * log 0 counts as 0 (a task with a zero loss), not NaN


def entropy(logits):
    """(T,) mean over each task's examples of the prediction's entropy -sum_n p_n log p_n, p = softmax(logits).

    ``logits`` is (T, N, C). Computed from log_softmax, so it is finite for any finite logits.
    """
    log_p = F.log_softmax(logits, -1)
    return -(exp(log_p) * log_p).sum(axis=-1).mean(axis=-1)


def theil(losses):
    """Theil index T_T = (1/M) sum_i (l_i / mean(l)) ln(l_i / mean(l)) of the (M,) losses; 0 when all are equal."""
    r = losses / losses.mean()
    return (r * log(maximum(r, _TINY))).mean()


def generalized_entropy(losses, alpha: float):
    """Generalized entropy index GE(alpha) of the (M,) losses (alpha = 1: Theil; alpha = 0: mean log deviation).

    GE(alpha) = 1 / (M alpha (alpha - 1)) sum_i [(l_i / mean(l))^alpha - 1] for alpha not 0 or 1.
    """
    r = losses / losses.mean()
    if alpha == 1:
        return theil(losses)
    if alpha == 0:
        return -log(r).mean()
    return ((r ** float(alpha)) - 1.0).mean() * (1.0 / (alpha * (alpha - 1)))


def atkinson(losses, epsilon: float):
    """Atkinson index A_epsilon of the (M,) losses, epsilon >= 0 (inequality aversion).

    1 - (mean_i l_i^(1 - epsilon))^(1 / (1 - epsilon)) / mean(l); for epsilon = 1,
    1 - geometric mean / mean = 1 - exp(mean_i ln l_i) / mean(l).
    """
    if epsilon == 1:
        return 1.0 - exp(log(losses).mean()) / losses.mean()
    e = 1.0 - float(epsilon)
    return 1.0 - ((losses ** e).mean() ** (1.0 / e)) / losses.mean()


def gini(losses):
    """Gini coefficient G = sum_i sum_j |l_i - l_j| / (2 M sum_i l_i) of the (M,) losses."""
    m = losses.shape[0]
    diffs = losses.unsqueeze(1) - losses.unsqueeze(0)                       # (M, M): l_i - l_j
    return absolute(diffs).sum() / (2.0 * m * losses.sum())


def variance_of_logarithms(losses):
    """V_L = (1/M) sum_i [ln l_i - ln g(l)]^2, g the geometric mean: the (population) variance of ln l."""
    logs = log(losses)
    d = logs - logs.mean()
    return (d * d).mean()


def parse_measure(text):
    """(name, parameter) of a measure's spelling: 'entropy', 'theil', 'ge:2', 'atkinson:0.5', 'gini', ...

    Raises ValueError naming the accepted spellings.
    """
    if not isinstance(text, str):
        raise ValueError(f"the TAML measure must be one of {MEASURE_HELP}; got {text!r}")
    name, _, value = text.partition(":")
    if name == ENTROPY or (name in INEQUALITIES and INEQUALITIES[name] is None):
        if value:
            raise ValueError(f"the TAML measure {name!r} takes no parameter; got {text!r}")
        return name, None
    if name in INEQUALITIES:
        what = INEQUALITIES[name]
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or (name == "atkinson" and number < 0):
            raise ValueError(f"the TAML measure {name} needs its {what} as a finite number"
                             f"{' >= 0' if name == 'atkinson' else ''} after a colon (e.g. {name}:"
                             f"{'0.5' if name == 'atkinson' else '2'}); got {text!r}")
        return name, number
    raise ValueError(f"the TAML measure must be one of {MEASURE_HELP}; got {text!r}")


def inequality(losses, measure: str = "theil"):
    """The inequality measure ``measure`` (a spelling :func:`parse_measure` takes, not 'entropy') of (M,) losses."""
    name, p = parse_measure(measure)
    if name == ENTROPY:
        raise ValueError("'entropy' is not an inequality measure: it is TAML's other variant")
    if name == "theil":
        return theil(losses)
    if name == "ge":
        return generalized_entropy(losses, p)
    if name == "atkinson":
        return atkinson(losses, p)
    if name == "gini":
        return gini(losses)
    return variance_of_logarithms(losses)


def taml_meta_loss(model, objective, params, batch, inner_lr, steps, lam, measure="theil", first_order=False,
                   keys=None):
    """(TAML's meta-objective, metrics) on a meta-batch: MAML's query loss plus lambda times the regulariser.

    ``measure='entropy'``: mean_i [L_i^query(theta_i) + lam (H_i^query(theta_i) - H_i^support(theta))];
    any inequality measure: mean_i L_i^query(theta_i) + lam I({L_i^support(theta)}).
    theta_i is MAML's inner loop (recorded unless ``first_order``). With ``lam = 0`` the
    value is MAML's meta-loss. Metrics add ``entropy_before`` and ``entropy_after`` (means over
    tasks), or ``inequality``, unweighted.

    Example::

        loss, metrics = taml_meta_loss(model, Objective("classification"), params, batch, inner_lr=0.4,
                                       steps=1, lam=1.0, measure="theil")
    """
    name, _ = parse_measure(measure)
    if name == ENTROPY and objective.kind != "classification":
        raise ValueError("entropy TAML needs a classification task (the entropy of predicted labels); "
                         "use an inequality measure such as 'theil' for regression")
    x, y = batch.support
    before = []  # the initial model's support predictions: the inner loop's first forward pass

    def support_losses_of(fast):
        pred = model(fast, x)
        if not before:
            before.append(pred)
        return objective.losses(pred, y)

    trace = []
    fast = inner_sgd(support_losses_of, per_task(params, x.shape[0]), inner_lr, steps,
                     create_graph=not first_order, keys=keys, trace=trace)
    if not trace:  # no inner step: the initial model's support pass is made here
        trace.append(support_losses_of(per_task(params, x.shape[0])))
    pred_q = model(fast, batch.x_query)
    losses, metrics = query_metrics(objective, pred_q, batch.y_query, trace)
    if name == ENTROPY:
        h_before, h_after = entropy(before[0]), entropy(pred_q)
        metrics["entropy_before"], metrics["entropy_after"] = h_before.mean().detach(), h_after.mean().detach()
        return (losses + lam * (h_after - h_before)).mean(), metrics
    ineq = inequality(trace[0], measure)
    metrics["inequality"] = ineq.detach()
    return losses.mean() + lam * ineq, metrics


class TAML(MetaLearner):
    """TAML on MAML: MAML's meta-loss plus lambda times the entropy term or an inequality measure.

    ``lam`` is lambda; ``measure`` is 'entropy' (classification only) or an inequality measure
    ('theil', 'ge:ALPHA', 'atkinson:EPSILON', 'gini', 'variance-of-logs'). Adaptation and
    evaluation are MAML's (the regulariser only shapes the initial model).
    """

    name = "taml"

    def __init__(self, model, objective, inner_lr=0.01, inner_steps=1, first_order=False, adapt_norm=True,
                 transductive=True, *, lam=1.0, measure="theil"):
        super().__init__(model, objective, inner_lr, inner_steps, first_order, adapt_norm, transductive)
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"TAML's lambda must be a finite number >= 0, got {lam!r}")
        name, _ = parse_measure(measure)
        if name == ENTROPY and objective.kind != "classification":
            raise ValueError("entropy TAML needs a classification task (the entropy of predicted labels); "
                             "use an inequality measure such as 'theil' for regression")
        self.lam, self.measure = float(lam), measure

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Reads MAML's settings (``cfg.inner_lr``, ...) and ``cfg.taml_lambda``, ``cfg.taml_measure``."""
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   first_order=cfg.first_order, adapt_norm=cfg.adapt_norm, transductive=cfg.transductive,
                   lam=cfg.taml_lambda, measure=cfg.taml_measure)

    @classmethod
    def chunk_refusal(cls, cfg):
        """Entropy TAML is a mean over tasks (chunks combine exactly); an inequality measure couples the tasks."""
        if parse_measure(cfg.taml_measure)[0] == ENTROPY:
            return None
        return (f"with the inequality measure {cfg.taml_measure!r} adds lambda I(L_1 .. L_M), a function of all the "
                "meta-batch's support losses together, so the tasks cannot be split into chunks (entropy TAML can)")

    def meta_loss(self, meta_params, batch):
        return taml_meta_loss(self.model, self.objective, meta_params, batch, self.inner_lr, self.inner_steps,
                              self.lam, self.measure, self.first_order, self.inner_keys(meta_params))

    def __repr__(self):
        return (f"TAML(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, first_order={self.first_order}, "
                f"lam={self.lam}, measure={self.measure!r})")
