"""Meta-learning algorithms, one short file each, each citing its paper.

Each file holds its paper's meta-loss (or update) as a function over a param
dict, and a thin class the training loop drives:

- :func:`maml_meta_loss`, :class:`MAML` and :class:`FOMAML` (Finn et al. 2017)
- :func:`meta_sgd_meta_loss`, :class:`MetaSGD` (Li et al. 2017)
- :func:`reptile_meta_gradient`, :class:`Reptile` (Nichol et al. 2018)
- :func:`anil_meta_loss`, :class:`ANIL` and :class:`NIL` (Raghu et al. 2020)
- :func:`gradient_agreement_meta_loss`, :class:`GradientAgreement` (Eshratifar et al. 2018)
- :func:`adml_meta_loss`, :class:`ADML`, :func:`fgsm` (Yin et al. 2018)
- :func:`caml_meta_loss`, :class:`CAML`, :class:`ContextModel` (Zintgraf et al. 2019, CAVIA)
- :func:`taml_meta_loss`, :class:`TAML` and its entropy and inequality measures (Jamal & Qi 2019)
- :func:`mann_episode_loss`, :class:`MANNLearner` (Santoro et al. 2016: a memory-augmented net learns within the episode)
- :func:`maml_plus_plus_meta_loss`, :class:`MAMLPlusPlus`, :func:`multi_step_loss_weights` (Antoniou et al. 2019)

Learners without an inner loop (:class:`MetricLearner`, the book's chapters 2-4):

- :func:`protonet_scores`, :class:`ProtoNet` (Snell et al. 2017)
- :func:`gaussian_protonet_scores`, :class:`GaussianProtoNet` (Fort 2017)
- :func:`soft_kmeans_step`, :class:`SemiProtoNet` (Ren et al. 2018)
- :func:`weighted_l1_logits`, :func:`contrastive_pair_losses`, :class:`Siamese` (Koch et al. 2015; the book's
  contrastive loss, Hadsell et al. 2006)
- :func:`matching_scores`, :class:`MatchingNet` (Vinyals et al. 2016), with full context embeddings
- :func:`relation_scores`, :class:`RelationNet`, :class:`RelationModel` (Sung et al. 2018)

All run the whole meta-batch on a leading task axis. Every class is built the
same way from a run's config: ``ALGORITHMS[cfg.algorithm].from_config(model, objective, cfg)``.
"""
from .adml import ADML, adml_meta_loss, evaluate_under_attack, fgsm
from .anil import ANIL, NIL, anil_meta_loss, nil_predict
from .base import MetaLearner
from .caml import CAML, ContextModel, caml_inner_loop, caml_meta_loss
from .common import Objective, inner_sgd, per_task, query_metrics, summarize
from .gaussian_protonet import GaussianProtoNet, gaussian_protonet_scores
from .gradient_agreement import GradientAgreement, agreement_weights, gradient_agreement_meta_loss
from .matching import MatchingNet, matching_scores
from .maml import FOMAML, MAML, maml_inner_loop, maml_meta_loss
from .maml_plus_plus import MAMLPlusPlus, maml_plus_plus_meta_loss, multi_step_loss_weights
from .mann import MANNLearner, accuracy_by_instance, mann_episode_loss
from .meta_sgd import MetaSGD, meta_sgd_meta_loss
from .metric import MetricLearner
from .protonet import ProtoNet, prototypes, protonet_scores, squared_distances
from .relation import RelationModel, RelationNet, relation_scores
from .reptile import Reptile, reptile_meta_gradient
from .semi_protonet import SemiProtoNet, soft_kmeans_step
from .siamese import (Siamese, balanced_pair_weights, bce_pair_losses, class_scores, contrastive_pair_losses,
                      euclidean_distances, weighted_l1_logits)
from .taml import TAML, taml_meta_loss

ALGORITHMS = {cls.name: cls for cls in (MAML, FOMAML, MetaSGD, Reptile, ANIL, NIL, GradientAgreement, ADML, CAML, TAML,
                                        MAMLPlusPlus, MANNLearner, ProtoNet, GaussianProtoNet, SemiProtoNet, Siamese,
                                        MatchingNet, RelationNet)}

__all__ = ["ADML", "ALGORITHMS", "ANIL", "CAML", "ContextModel", "FOMAML", "GaussianProtoNet", "GradientAgreement",
           "MAML", "MAMLPlusPlus", "MANNLearner", "MatchingNet", "MetaLearner", "MetaSGD", "MetricLearner", "NIL",
           "Objective", "ProtoNet", "RelationModel", "RelationNet", "Reptile", "SemiProtoNet", "Siamese", "TAML",
           "accuracy_by_instance", "adml_meta_loss", "agreement_weights", "anil_meta_loss", "balanced_pair_weights",
           "bce_pair_losses", "caml_inner_loop", "caml_meta_loss", "class_scores", "contrastive_pair_losses",
           "euclidean_distances", "evaluate_under_attack", "fgsm", "gaussian_protonet_scores",
           "gradient_agreement_meta_loss", "inner_sgd", "maml_inner_loop", "maml_meta_loss", "maml_plus_plus_meta_loss",
           "mann_episode_loss", "matching_scores", "meta_sgd_meta_loss", "multi_step_loss_weights", "nil_predict",
           "per_task", "protonet_scores", "prototypes", "query_metrics", "relation_scores", "reptile_meta_gradient",
           "soft_kmeans_step", "squared_distances", "summarize", "taml_meta_loss", "weighted_l1_logits"]
