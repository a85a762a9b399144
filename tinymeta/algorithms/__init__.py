"""Meta-learning algorithms, one short file each, each citing its paper.

- :class:`MAML` and :class:`FOMAML` (Finn et al. 2017)
- :class:`MetaSGD` (Li et al. 2017)
- :class:`Reptile` (Nichol et al. 2018)
- :class:`ANIL` and :class:`NIL` (Raghu et al. 2020)
- :class:`GradientAgreement` (Eshratifar et al. 2018)

All run the whole meta-batch on a leading task axis.
"""
from .anil import ANIL, NIL, nil_predict
from .base import MetaLearner
from .common import Objective, expand, inner_sgd, summarize
from .gradient_agreement import GradientAgreement, agreement_weights
from .maml import FOMAML, MAML
from .meta_sgd import MetaSGD
from .reptile import Reptile

ALGORITHMS = {cls.name: cls for cls in (MAML, FOMAML, MetaSGD, Reptile, ANIL, NIL, GradientAgreement)}

__all__ = ["ALGORITHMS", "ANIL", "FOMAML", "GradientAgreement", "MAML", "agreement_weights", "MetaLearner", "MetaSGD", "NIL", "Objective", "Reptile",
           "expand", "inner_sgd", "nil_predict", "summarize"]
