"""The algorithms compute with the engine only: no raw arrays, no backend, no attribute flipping.

The rule, checked on the source of every file in tinymeta/algorithms/ with ``ast``:

1. no ``.data`` attribute (a Tensor's raw array) and no ``.xp`` (its array module);
2. no import of ``tinymeta.backend``, ``cupy`` or ``cupyx``;
3. numpy imported only as a module (``import numpy as np``) and used only through
   ``ALLOWED_NUMPY``: random numbers and index arrays on the host (``np.random``,
   ``np.arange``), a type check (``np.isscalar``) and reading host results
   (``np.asarray``, ``np.float64``); array math on tensors goes through Tensor ops;
4. ``self.<attribute> = ...`` only in ``__init__``: no method changes its object's
   settings, even for a while (pass them as arguments instead).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = sorted((ROOT / "tinymeta" / "algorithms").glob("*.py"))
ALLOWED_NUMPY = {"random", "arange", "isscalar", "asarray", "float64"}
FORBIDDEN_MODULES = ("cupy", "cupyx")


def violations(source: str) -> list[str]:
    """Every place where ``source`` breaks the rule above, as 'line N: what'."""
    tree = ast.parse(source)
    found, numpy_names = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numpy":
                    numpy_names.add(alias.asname or "numpy")
                elif alias.name.split(".")[0] in FORBIDDEN_MODULES or alias.name.endswith("backend"):
                    found.append(f"line {node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [a.name for a in node.names]
            if module.split(".")[0] in FORBIDDEN_MODULES or module.split(".")[-1] == "backend" or "backend" in names:
                found.append(f"line {node.lineno}: imports the backend ({module or '.'} {names})")
            elif module.split(".")[0] == "numpy":
                found.append(f"line {node.lineno}: imports names from numpy ({names}); use np.<name>")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in ("data", "xp"):
                found.append(f"line {node.lineno}: .{node.attr} reaches for a raw array")
            elif isinstance(node.value, ast.Name) and node.value.id in numpy_names and node.attr not in ALLOWED_NUMPY:
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr} is array math outside the engine")
        elif isinstance(node, ast.FunctionDef) and node.name != "__init__":
            for inner in ast.walk(node):
                targets = inner.targets if isinstance(inner, ast.Assign) else \
                    [inner.target] if isinstance(inner, (ast.AugAssign, ast.AnnAssign)) else []
                for t in targets:
                    for leaf in ast.walk(t):
                        if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) \
                                and leaf.value.id == "self":
                            found.append(f"line {leaf.lineno}: {node.name}() sets self.{leaf.attr}")
    return found


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: p.name)
def test_algorithms_use_only_the_engine(path):
    assert violations(path.read_text()) == []


def test_the_checks_cover_the_algorithms():
    assert {"maml.py", "reptile.py", "gradient_agreement.py", "common.py", "base.py"} <= {p.name for p in CHECKED}


def test_the_rule_catches_each_kind_of_violation():
    bad = '''
import numpy as np
import cupy
from .. import backend
from ..backend import get_xp
from numpy import exp

def f(t, self):
    a = t.data + 1
    xp = t.xp
    b = np.exp(a)
    c = np.arange(3) + np.random.default_rng(0).normal()

class A:
    def __init__(self):
        self.first_order = True
    def flip(self):
        self.first_order, keep = False, self.first_order
'''
    found = violations(bad)
    for what in ["imports cupy", "({'.'} ['backend'])".replace("{'.'}", "."), "['get_xp']", "names from numpy",
                 "line 9: .data", "line 10: .xp", "np.exp", "flip() sets self.first_order"]:
        assert any(what in v for v in found), (what, found)
    assert not any("np.arange" in v or "np.random" in v or "__init__" in v for v in found)
    assert len(found) == 8, found
