"""What every checker shares: run the student's function, compare, and say precisely what is wrong.

A checker returns True when the student's function agrees with the reference,
prints what is wrong and returns False otherwise (a notebook keeps running),
and prints a reminder when the stub was not filled in yet (it raises
NotImplementedError). ``raise_on_failure=True`` turns a failure into an
:class:`ExerciseError` instead, for tests and autograders.
"""
from __future__ import annotations

from collections.abc import Mapping

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


def dict_answer(got, keys, what: str) -> dict:
    """The student's answer as a dict with exactly ``keys``, or a Mismatch saying what is off."""
    if not isinstance(got, Mapping):
        raise Mismatch(f"{what} should be a dict name -> array (the same keys as params), "
                       f"got {type(got).__name__}")
    missing, extra = [k for k in keys if k not in got], [k for k in got if k not in keys]
    if missing or extra:
        raise Mismatch(f"{what} has the wrong keys: missing {missing}, unexpected {extra}; "
                       f"expected exactly {list(keys)}")
    return {k: got[k] for k in keys}


def same_values(got: dict, expected: dict, rtol=1e-6, atol=1e-10) -> bool:
    """True when every entry of ``got`` equals ``expected`` (shapes included)."""
    for k, e in expected.items():
        g, e = as_array(got[k], k), as_array(e, k)
        if g.shape != e.shape or not np.all(np.isfinite(g)) or not np.allclose(g, e, rtol=rtol, atol=atol):
            return False
    return True


def compare_dict(got: dict, expected: dict, what: str, rtol=1e-6, atol=1e-10):
    for k, e in expected.items():
        compare(got[k], e, f"{what}[{k!r}]", rtol=rtol, atol=atol)


def diagnose(got: dict, ref: dict, mistakes, what: str, rtol=1e-6, atol=1e-10):
    """Name a known mistake when the answer equals one of ``mistakes`` [(wrong answer, hint)], else compare."""
    if not same_values(got, ref, rtol=rtol, atol=atol):
        for wrong, hint in mistakes:
            if same_values(got, wrong, rtol=rtol, atol=atol):
                raise Mismatch(hint)
    compare_dict(got, ref, what, rtol=rtol, atol=atol)


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
