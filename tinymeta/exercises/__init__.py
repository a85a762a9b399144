"""Checkers for the chapters' exercises.

Each ``check_*`` takes the function a student wrote in a chapter, runs it on
test inputs, compares values (and gradients where it matters) with a reference,
and says precisely what is wrong: which output, expected vs got. Reference
solutions live in ``chapters/solutions/``, apart from the stubs.
"""
from ._check import ExerciseError
from .anil import check_nil_predict
from .autodiff import check_softplus
from .basics import check_sample_task
from .gradient_agreement import check_gradient_agreement_weights
from .maml import check_maml_inner_step, check_maml_meta_gradient
from .meta_sgd_reptile import (check_meta_sgd_init, check_meta_sgd_rate_gradient, check_meta_sgd_update,
                               check_reptile_update)
from .networks import check_batch_norm, check_conv2d

__all__ = ["ExerciseError", "check_batch_norm", "check_conv2d", "check_gradient_agreement_weights",
           "check_maml_inner_step", "check_maml_meta_gradient", "check_meta_sgd_init",
           "check_meta_sgd_rate_gradient", "check_meta_sgd_update", "check_nil_predict", "check_reptile_update",
           "check_sample_task", "check_softplus"]
