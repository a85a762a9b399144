"""What the chapters' exercise tests share: a checker rejects a wrong answer and says why."""
import re

import pytest

from tinymeta.exercises import ExerciseError


def assert_fails(checker, fn, message, capsys):
    """The checker returns False, prints ``message``, and raises ExerciseError with it when asked."""
    assert checker(fn) is False
    assert message in capsys.readouterr().out
    with pytest.raises(ExerciseError, match=re.escape(message)):
        checker(fn, raise_on_failure=True)


def assert_passes(checker, fn, capsys):
    """The checker accepts the reference answer, says so, and does not raise when asked to."""
    assert checker(fn) is True
    checker(fn, raise_on_failure=True)
    assert "correct!" in capsys.readouterr().out


def assert_not_attempted(checker, nargs, capsys):
    """An untouched exercise stub (called with ``nargs`` arguments) is reported as not attempted."""
    def stub(*args):
        assert len(args) == nargs
        raise NotImplementedError("Exercise")
    assert checker(stub) is False
    assert "not attempted yet" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="not attempted"):
        checker(stub, raise_on_failure=True)
