"""The chapters, as a package only so that their reference solutions import normally.

``from chapters.solutions import ch06_maml`` works from the repository's root (the test
suite puts it on ``sys.path`` through ``pythonpath`` in ``pytest.ini``).
"""
