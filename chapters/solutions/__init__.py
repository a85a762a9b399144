"""Reference solutions to the chapters' exercises: chapter N's in ``chNN_<topic>.py``.

Each module holds the functions a student writes at the end of ``chapters/NN_<topic>.ipynb``;
``tinymeta.exercises.chNN_<topic>`` checks them and ``tests/test_chNN_<topic>.py`` runs
the checks on these answers.
"""
