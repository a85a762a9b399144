"""Checkers for the chapters' exercises.

Each ``check_*`` takes the function a student wrote in a chapter, runs it on
test inputs, compares values (and gradients where it matters) with a reference,
and says precisely what is wrong: which output, expected vs got. Reference
solutions live in ``chapters/solutions/``, apart from the stubs.
"""
from ._check import ExerciseError

__all__ = ["ExerciseError"]
