"""Meta-learning by a memory-augmented network (Santoro et al. 2016, arXiv:1605.06065).

There is no inner loop: the network learns a task *within* an episode, by storing each
drawing with the label shown one step later and recalling it for the next drawing of
that class. What is meta-learned, by ordinary backpropagation through the whole
episode, is the network's weights: the mean cross-entropy over every step of every
episode (Sec. 4; tristandeleu/ntm-one-shot examples/omniglot.py:26-27, Adam at 1e-3).
Evaluation reports, as the paper's Table 1, the accuracy at the 1st, 2nd, ... drawing
of each class in an episode (``instance_accuracy``).

It needs a task family whose episodes are their own query sets (``online = True``,
:class:`tinymeta.tasks.omniglot_episodes.OmniglotEpisodes`); the same class trains the
paper's LSTM baseline (a model with no memory heads).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..ops import one_hot, stack
from ..tensor import tensor
from .base import MetaLearner
from .common import query_metrics


# The instances the paper tabulates (Santoro et al. 2016, Table 1): the 1st, 2nd, 3rd, 5th and 10th drawing
TABLE1_INSTANCES = (1, 2, 3, 5, 10)


def ordinal(k: int) -> str:
    """'1st', '2nd', '3rd', '4th', ..., '11th', '12th', '13th', '21st': the k-th drawing of a class."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def mann_episode_loss(model, objective, params, batch):
    """(mean over episodes of each episode's mean cross-entropy, metrics): every step predicts its label."""
    losses, metrics = query_metrics(objective, model(params, batch.x_query), batch.y_query)
    return losses.mean(), metrics


def accuracy_by_instance(logits, labels, instance, instances: int):
    """(instances, T) accuracy at the 1st, 2nd, ... drawing of a class, over every class of each episode.

    ``logits`` (T, L, N), ``labels`` (T, L); ``instance`` (T, L) host ints, 1 = a class's first drawing.
    """
    correct = F.accuracy(logits, labels, reduction="none")                         # (T, L), constant
    which = one_hot(tensor(np.asarray(instance) - 1, device=logits.device), instances, dtype=logits.dtype)
    hits = (correct.unsqueeze(-1) * which).sum(axis=1)                               # (T, instances)
    return (hits / which.sum(axis=1)).transpose()


class MANNLearner(MetaLearner):
    """The learner the loop drives for a memory-augmented network (or its LSTM baseline) on episodes.

    Built like every algorithm (:meth:`MetaLearner.from_config`); its inner steps are unused, and a
    run's config must set them to 0 (:meth:`tinymeta.experiment.Config.validate` says so).
    """

    name = "mann"
    adapts_head = False  # no inner steps: the network adapts within the episode

    def meta_loss(self, meta_params, batch):
        return mann_episode_loss(self.model, self.objective, meta_params, batch)

    def evaluate(self, meta_params, batch, steps=None) -> dict:
        """Loss and accuracy over whole episodes, (1, T) each, and ``instance_accuracy`` (K, T).

        ``steps`` must be 0 or None: the network adapts within the episode, not by inner steps.
        """
        if steps:
            raise ValueError(f"{self.name} has no inner steps (it learns within the episode): evaluate with 0, "
                             f"got {steps}")
        with no_grad():
            logits = self.model(meta_params, batch.x_query)
            losses = self.objective.losses(logits, batch.y_query)
            accs = self.objective.accuracies(logits, batch.y_query)
            instance = batch.info["instance"]
            by_instance = accuracy_by_instance(logits, batch.y_query, instance, int(np.asarray(instance).max()))
        return {"loss": stack([losses]).numpy(), "accuracy": stack([accs]).numpy(),
                "instance_accuracy": by_instance.numpy()}

    def __repr__(self):
        return f"MANNLearner(model={self.model!r})"
