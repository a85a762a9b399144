"""What every checker shares: run the student's function, compare, and say precisely what is wrong.

A checker returns True when the student's function agrees with the reference,
prints what is wrong and returns False otherwise (a notebook keeps running),
and prints a reminder when the stub was not filled in yet (it raises
NotImplementedError). ``raise_on_failure=True`` turns a failure into an
:class:`ExerciseError` instead, for tests and autograders.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class ExerciseError(AssertionError):
    """The student's answer differs from the reference (the message says where and how)."""


class Mismatch(Exception):
    """Raised inside a checker's body to report one precise difference."""


def as_array(value, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    if value is None:
        raise Mismatch(f"{what} is None: did the function forget to return it?")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} should be an array or Tensor, got {type(value).__name__}") from None


def compare(got, expected, what: str, rtol: float = 1e-6, atol: float = 1e-8):
    """Raise Mismatch naming ``what``, the shapes, or the worst element with expected vs got."""
    g, e = as_array(got, what), as_array(expected, f"reference {what}")
    if g.shape != e.shape:
        raise Mismatch(f"{what} has shape {g.shape}, expected {e.shape}")
    if not np.all(np.isfinite(g)):
        raise Mismatch(f"{what} contains NaN or Inf")
    err = np.abs(g - e) - (atol + rtol * np.abs(e))
    if err.size and err.max() > 0:
        idx = np.unravel_index(int(np.argmax(err)), e.shape)
        where = f" at index {tuple(int(i) for i in idx)}" if e.ndim else ""
        raise Mismatch(f"{what} is wrong{where}: expected {e[idx]:.6g}, got {g[idx]:.6g}")


def run_checker(name: str, body, raise_on_failure: bool = False) -> bool:
    """Run ``body()`` (which raises Mismatch on a wrong answer) and report like a teacher would."""
    try:
        body()
    except NotImplementedError:
        print(f"{name}: not attempted yet. Fill in the function (replace the `raise NotImplementedError`) "
              "and run this cell again.")
        if raise_on_failure:
            raise ExerciseError(f"{name}: not attempted") from None
        return False
    except Mismatch as exc:
        print(f"{name}: not yet. {exc}")
        if raise_on_failure:
            raise ExerciseError(f"{name}: {exc}") from None
        return False
    print(f"{name}: correct!")
    return True
