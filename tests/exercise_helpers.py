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
