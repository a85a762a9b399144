"""ADML: adversarial meta-learning (Yin, Tang, Xu & Wang 2018, arXiv:1806.03316, Algorithm 1).

Every task brings clean samples and adversarial ones made from them with FGSM
(Goodfellow et al. 2015), from the gradient of the loss with respect to the input:
    x_adv = clip(x + epsilon * sign(grad_x L(f_theta(x), y)), 0, 1)
The inner loop adapts theta twice per task, once on each support set (Alg. 1, lines 6-7):
    theta_clean,i = theta - alpha * grad L_i(theta; D_clean,i)
    theta_adv,i   = theta - alpha * grad L_i(theta; D_adv,i)
and the meta-update evaluates each on the *other* kind of query set (lines 9-10):
    min_theta  mean_i [ L_i(theta_clean,i; D'_adv,i) + L_i(theta_adv,i; D'_clean,i) ]
The paper applies the two cross terms as two steps with rates beta1, beta2; here one
outer optimizer steps on their sum (beta1 = beta2). The attack is a constant input
(no gradient flows through its construction), generated against the current
theta at meta-training and against the adapted weights at test time.
"""
from __future__ import annotations

from ..autograd import enable_grad, grad, no_grad
from ..ops import astype, maximum, minimum, stack
from .base import MetaLearner
from .common import per_task
from .maml import maml_inner_loop


def fgsm(model, objective, params, x, y, epsilon, clip=(0.0, 1.0)):
    """FGSM adversarial inputs, every task at once: clip(x + epsilon * sign(grad_x L(model(params, x), y))).

    ``params`` are per-task (T, ...) or shared; ``x`` is (T, N, ...). Each task's
    perturbation follows its own loss (a sum over tasks of per-task losses has
    the per-task gradients). The result is a constant Tensor (detached).
    """
    x_in = x.detach().requires_grad_()
    with enable_grad():
        g = grad(objective.losses(model(params, x_in), y).sum(), x_in)
    sign = astype(g > 0, x.dtype) - astype(g < 0, x.dtype)               # sign(g), 0 where g == 0
    lo, hi = clip
    return minimum(maximum(x.detach() + epsilon * sign, lo), hi).detach()


def adml_meta_loss(model, objective, params, batch, inner_lr, steps, epsilon, first_order=False, keys=None):
    """(mean_i [L_i(theta_clean,i; adv query) + L_i(theta_adv,i; clean query)], metrics): Alg. 1's meta-objective.

    The adversarial support and query sets are made by :func:`fgsm` against theta.
    Metrics: ``query_loss`` (the meta-loss), ``query_accuracy`` (the mean of the two cross terms'
    accuracies), and each cross term's loss and accuracy.
    """
    theta = per_task(params, batch.num_tasks)
    xs_adv = fgsm(model, objective, theta, batch.x_support, batch.y_support, epsilon)
    xq_adv = fgsm(model, objective, theta, batch.x_query, batch.y_query, epsilon)
    clean = maml_inner_loop(model, objective, params, batch.support, inner_lr, steps, first_order, keys=keys)
    adv = maml_inner_loop(model, objective, params, (xs_adv, batch.y_support), inner_lr, steps, first_order,
                          keys=keys)
    pred_ca, pred_ac = model(clean, xq_adv), model(adv, batch.x_query)
    loss_ca = objective.losses(pred_ca, batch.y_query).mean()          # clean-adapted on adversarial queries
    loss_ac = objective.losses(pred_ac, batch.y_query).mean()          # adversarial-adapted on clean queries
    loss = loss_ca + loss_ac
    metrics = {"query_loss": loss.detach(), "loss_clean_adapted_adv_query": loss_ca.detach(),
               "loss_adv_adapted_clean_query": loss_ac.detach()}
    accs = [objective.accuracies(pred, batch.y_query) for pred in (pred_ca, pred_ac)]
    if accs[0] is not None:
        metrics["query_accuracy"] = ((accs[0].mean() + accs[1].mean()) / 2).detach()   # of the two cross terms
        metrics["accuracy_clean_adapted_adv_query"] = accs[0].mean().detach()
        metrics["accuracy_adv_adapted_clean_query"] = accs[1].mean().detach()
    return loss, metrics


def evaluate_under_attack(algo, meta_params, batch, steps, epsilon) -> dict:
    """Query loss and accuracy, clean and FGSM-attacked, before adaptation and after each inner step.

    The learner adapts on the clean support set (``algo.adapt``); the attack is made
    against each adapted model, on its query set. Returns NumPy arrays (steps + 1, T)
    under 'loss', 'accuracy', 'attacked_loss', 'attacked_accuracy' (accuracies for classification).
    """
    rows = {"loss": [], "accuracy": [], "attacked_loss": [], "attacked_accuracy": []}
    objective, model = algo.objective, algo.model
    for fast in algo.adapt(meta_params, batch, steps):
        x_adv = fgsm(model, objective, fast, batch.x_query, batch.y_query, epsilon)
        with no_grad():
            for prefix, x in (("", batch.x_query), ("attacked_", x_adv)):
                pred = model(fast, x)
                rows[prefix + "loss"].append(objective.losses(pred, batch.y_query))
                acc = objective.accuracies(pred, batch.y_query)
                if acc is not None:
                    rows[prefix + "accuracy"].append(acc)
    return {k: stack(v).numpy() for k, v in rows.items() if v}


class ADML(MetaLearner):
    """Adversarial meta-learning: MAML's inner loop on clean and FGSM support sets, cross-evaluated."""

    name = "adml"

    def __init__(self, model, objective, inner_lr=0.01, inner_steps=1, first_order=False, adapt_norm=True,
                 transductive=True, *, epsilon=0.2):
        super().__init__(model, objective, inner_lr, inner_steps, first_order, adapt_norm, transductive)
        if not epsilon >= 0:
            raise ValueError(f"the FGSM epsilon must be >= 0, got {epsilon}")
        self.epsilon = float(epsilon)

    @classmethod
    def from_config(cls, model, objective, cfg):
        """Reads ``cfg.inner_lr``, ``cfg.inner_steps``, ``cfg.first_order``, ``cfg.adapt_norm``, ``cfg.adv_epsilon``."""
        return cls(model, objective, inner_lr=cfg.inner_lr, inner_steps=cfg.inner_steps,
                   first_order=cfg.first_order, adapt_norm=cfg.adapt_norm, transductive=cfg.transductive,
                   epsilon=cfg.adv_epsilon)

    def meta_loss(self, meta_params, batch):
        return adml_meta_loss(self.model, self.objective, meta_params, batch, self.inner_lr, self.inner_steps,
                              self.epsilon, self.first_order, self.inner_keys(meta_params))

    def evaluate(self, meta_params, batch, steps=None):
        """Clean and FGSM-attacked query loss and accuracy (attack on the adapted model), (steps + 1, T) each."""
        steps = self.inner_steps if steps is None else steps
        return evaluate_under_attack(self, meta_params, batch, steps, self.epsilon)

    def __repr__(self):
        return (f"ADML(inner_lr={self.inner_lr}, inner_steps={self.inner_steps}, first_order={self.first_order}, "
                f"epsilon={self.epsilon})")
