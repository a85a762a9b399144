"""The package's shape (issue 11): engine imports point down, and the layers above the ops
(functional) never reaches for raw arrays (algorithms/: tests/test_algorithms_use_the_engine.py). Read from the source with ast."""
import ast
from pathlib import Path


import tinymeta as tm

PKG = Path(tm.__file__).resolve().parent
# lower number = lower layer; a module may import only from layers below it (or its own package)
LAYERS = {"backend": 0, "tensor": 1, "autograd": 2, "ops": 3, "functional": 4, "nn": 5, "optim": 5, "testing": 5,
          "memory": 6}
# the one documented late import: Tensor's operator methods call the ops (and backward() autograd)
LATE = {("tensor", "autograd"), ("tensor", "ops")}


def _module_of(path: Path) -> str:
    """'ops.conv' for tinymeta/ops/conv.py, 'ops' for tinymeta/ops/__init__.py."""
    parts = path.relative_to(PKG).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _engine_files():
    files = [PKG / f"{name}.py" for name in LAYERS if name != "ops"]
    return files + sorted((PKG / "ops").glob("*.py"))


def _imports(path: Path):
    """(imported tinymeta module, imported names, node) for every import in the file."""
    module = _module_of(path)
    package = module.split(".") if module else []
    if path.name != "__init__.py":
        package = package[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1] if node.level > 1 else package
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                yield (sub if (PKG / (sub.replace(".", "/") + ".py")).exists()
                       or (PKG / sub.replace(".", "/")).is_dir() else target), alias.name, node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                yield node.module, alias.name, node


def _layer(module: str):
    return LAYERS.get(module.split(".")[0])


def _tensor_class_line():
    tree = ast.parse((PKG / "tensor.py").read_text())
    return next(n.lineno for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")


def test_engine_imports_point_down_with_one_documented_late_import():
    wrong = []
    for path in _engine_files():
        here = _module_of(path)
        for target, _, node in _imports(path):
            if target is None or target.split(".")[0] not in LAYERS or target == here:
                continue
            same_package = here.split(".")[0] == target.split(".")[0]
            if same_package and here.startswith("ops"):
                continue  # inside ops: checked for cycles below
            if (here, target.split(".")[0]) in LATE and node.lineno > _tensor_class_line():
                continue
            if _layer(target) >= _layer(here):
                wrong.append(f"{path.name}:{node.lineno} imports {target} (layer {_layer(target)} >= {_layer(here)})")
    assert not wrong, "imports pointing up or sideways:\n" + "\n".join(wrong)


def test_the_only_late_import_is_tensors_and_it_comes_after_the_class():
    late = []
    for path in _engine_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                late += [f"{path.name}:{n.lineno} inside {node.name}()" for n in ast.walk(node)
                         if isinstance(n, ast.ImportFrom) and n.level]  # (backend imports CuPy lazily: fine)
    assert not late, "tinymeta imports inside functions:\n" + "\n".join(late)
    tree = ast.parse((PKG / "tensor.py").read_text())
    classes = [n.lineno for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor"]
    ops_import = [n.lineno for n in tree.body if isinstance(n, ast.ImportFrom) and any(a.name == "ops" for a in n.names)]
    assert len(ops_import) == 1 and ops_import[0] > classes[0]


def _assert_no_cycle(graph: dict):
    """Fail naming the first import cycle found in {module: modules it imports}."""
    done, active = set(), []

    def visit(m):
        assert m not in active, f"import cycle: {' -> '.join(active[active.index(m):] + [m])}"
        if m in done:
            return
        active.append(m)
        for t in sorted(graph.get(m, ())):
            visit(t)
        active.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)


def test_ops_submodules_import_each_other_without_a_cycle():
    graph = {}
    for path in sorted((PKG / "ops").glob("*.py")):
        if path.name == "__init__.py":
            continue
        here = _module_of(path)
        graph[here] = {t for t, _, _ in _imports(path) if t and t.startswith("ops.") and t != here}
    _assert_no_cycle(graph)


def test_no_import_cycle_in_the_package_but_the_documented_late_import():
    """A cycle works only while the import order suits it, and hides which module is the lower one
    (the benchmarks and the command line once imported each other through an import inside a
    function). Imports anywhere in a file count: at its top or inside a function. Only tensor.py's
    documented late import (LATE) may close a cycle."""
    graph = {}
    for path in sorted(PKG.rglob("*.py")):
        here = _module_of(path)
        targets = {"" if t == "tinymeta" else t.removeprefix("tinymeta.") for t, _, _ in _imports(path) if t}
        graph[here] = {t for t in targets if t != here and (here, t.split(".")[0]) not in LATE}
    modules = set(graph)
    assert {"experiment.bench", "experiment.cli", "tensor", "ops.conv"} <= modules
    _assert_no_cycle({m: {t for t in ts if t in modules} for m, ts in graph.items()})


def test_no_private_name_is_imported_across_engine_modules():
    private = [f"{path.name}:{node.lineno} imports {name} from {target}"
               for path in _engine_files() for target, name, node in _imports(path)
               if name and name.startswith("_") and not name.startswith("__")]
    private += [f"{path.name}:{node.lineno} imports private module {target}"
                for path in _engine_files() for target, _, node in _imports(path)
                if target and target.split(".")[0] in LAYERS
                and any(part.startswith("_") and part != "__init__" for part in target.split("."))]
    assert not private, "\n".join(private)


def _raw_array_uses(path: Path, forbid_numpy: bool):
    """`.data`, `.array` and `.xp` attribute reads, and imports of backend/cupy (and numpy)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("data", "array", "xp"):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            banned = {"backend", "cupy", "cupyx"} | ({"numpy"} if forbid_numpy else set())
            hit = [n for n in names if n.split(".")[-1] in banned or n.split(".")[0] in banned]
            if hit:
                found.append(f"{path.name}:{node.lineno} imports {hit}")
    return found


def test_functional_never_reaches_for_raw_arrays():
    uses = _raw_array_uses(PKG / "functional.py", forbid_numpy=True)
    assert not uses, "functional.py works on Tensors with ops only:\n" + "\n".join(uses)


def test_import_tinymeta_gives_the_layers_above_the_ops():
    assert tm.functional.cross_entropy and tm.nn.MLP and tm.optim.Adam
    assert set(tm.ops.__all__) <= set(tm.__all__) and len(tm.__all__) == len(set(tm.__all__))
    assert all(hasattr(tm, name) for name in tm.__all__)
    assert tm.expand is tm.broadcast_to  # "expand" in the engine means broadcasting, as Tensor.expand


def _imports_run_on_import(tree):
    """The import statements that run when the module is imported: all but those inside functions."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def test_no_module_imports_an_optional_framework_when_imported():
    """PyTorch and JAX are never dependencies: a module that uses one (bench --compare torch) imports
    it inside the functions that need it, so that importing every module (as the API reference
    does) works without them."""
    found = []
    for path in sorted(PKG.rglob("*.py")):
        for node in _imports_run_on_import(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path.relative_to(PKG)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0] in ("torch", "jax", "jaxlib")]
    assert not found, "\n".join(found)


def _setup_floors() -> dict:
    """{package: its floor} for the dependencies of setup.py and its dev extra ("numpy>=1.24.1")."""
    call = next(n for n in ast.walk(ast.parse((PKG.parent / "setup.py").read_text()))
                if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("install_requires", "extras_require")}
    floors = {}
    for spec in kw["install_requires"] + kw["extras_require"]["dev"]:
        name, sep, version = spec.partition(">=")
        assert sep and version, f"setup.py: {spec!r} has no floor (>=) for the oldest-versions CI pass to pin"
        floors[name.strip().lower()] = version.strip()
    return floors


def test_the_oldest_versions_ci_pass_pins_every_floor_of_setup_py():
    """.ci/run's second pass installs with .ci/constraints-oldest.txt: it tests what setup.py promises
    only while that file pins each dependency to exactly its floor there."""
    lines = (PKG.parent / ".ci" / "constraints-oldest.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in (ln.split("#")[0].strip() for ln in lines) if line)

    def release(version):  # 3.6 and 3.6.0 are one version
        parts = [int(p) for p in version.strip().split(".")]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    assert {k.strip().lower(): release(v) for k, v in pins.items()} == \
        {k: release(v) for k, v in _setup_floors().items()}
