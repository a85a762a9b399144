"""Checkers for the chapters' exercises, one module per chapter or appendix.

The chapters carry the numbers of the chapters of *Hands-On Meta Learning with Python*;
tinymeta's own material that is not in the book is in appendices A1, A2, ... Chapter N's
checkers live in ``tinymeta.exercises.chNN_<topic>`` (named after the notebook
``chapters/NN_<topic>.ipynb``), its reference solutions in ``chapters/solutions/chNN_<topic>.py``,
and its tests in ``tests/test_chNN_<topic>.py``, marked ``chNN``: ``pytest -m ch06`` runs
chapter 6's checks and its notebook. Appendix AN's are ``aN_<topic>`` (notebook
``chapters/AN_<topic>.ipynb``, marker ``aN``): ``pytest -m a1`` runs appendix A1's.

Each ``check_*`` takes the function a student wrote in a chapter, runs it on
test inputs, compares values (and gradients where it matters) with a reference,
and says precisely what is wrong: which output, expected vs got.
:mod:`tinymeta.exercises.folders` tells the chapters where their data and runs are.
"""
from ._check import ExerciseError
from .a1_autodiff_from_scratch import check_softplus
from .a2_networks_from_scratch import check_batch_norm, check_conv2d
from .ch01_what_is_meta_learning import check_sample_task
from .ch04_relation_and_matching_networks import check_class_maps, check_matching_probs, check_relation_loss
from .ch05_memory_augmented_networks import check_circular_convolution, check_lru_write_weights
from .ch06_maml import check_maml_inner_step, check_maml_meta_gradient
from .ch06_maml_variants import check_caml_inner_step, check_fgsm
from .ch07_meta_sgd_and_reptile import (check_meta_sgd_init, check_meta_sgd_rate_gradient, check_meta_sgd_update,
                                        check_reptile_update)
from .ch08_gradient_agreement import check_gradient_agreement_weights
from .ch09_recent_advances import check_msl_weights, check_nil_predict

__all__ = ["ExerciseError", "check_batch_norm", "check_caml_inner_step", "check_circular_convolution",
           "check_class_maps", "check_conv2d", "check_fgsm", "check_gradient_agreement_weights",
           "check_lru_write_weights", "check_maml_inner_step", "check_maml_meta_gradient", "check_matching_probs",
           "check_meta_sgd_init", "check_meta_sgd_rate_gradient", "check_meta_sgd_update", "check_msl_weights",
           "check_nil_predict",
           "check_relation_loss", "check_reptile_update", "check_sample_task", "check_softplus"]
