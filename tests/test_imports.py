"""The package's import graph has no cycle, and the layers point one way.

Every ``import`` statement of every module counts, those inside functions included (a lazy
import hides a cycle, it does not remove it). ``from package import name`` is an edge to the
submodule ``package.name`` when there is one, else to the package's ``__init__``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sklearn_tcssl"
PACKAGE = "sklearn_tcssl"


def _module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(module, node):
    """Absolute name of the module an ImportFrom refers to."""
    if not node.level:
        return node.module
    base = module.split(".")
    if not MODULES[module].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module):
    tree = ast.parse(MODULES[module].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in MODULES else target)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles():
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(GRAPH[node]):
            if state.get(child) == "open":
                cycles.append(stack[stack.index(child) :] + [child])
            elif child not in state:
                visit(child)
        stack.pop()
        state[node] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    return cycles


def test_graph_is_read():
    assert f"{PACKAGE}.embedding._base" in GRAPH[f"{PACKAGE}.embedding._embedder"]
    assert f"{PACKAGE}.io._registry" in GRAPH[f"{PACKAGE}.embedding._base"]


def test_no_import_cycle():
    cycles = _cycles()
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _reachable(module):
    seen, todo = set(), [module]
    while todo:
        for child in GRAPH[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


# The layers, from the ground up (docs/developers.rst). An import may stay inside its layer or
# point down, never up. The package's ``__init__`` (lazy public names) sits above every layer.
LAYERS = [
    {"_utils", "_version"},
    {"nn"},
    {"_input", "_training"},
    {"io"},
    {"alignment", "datasets", "embedding", "networks"},
    {"baselines", "report", "plotting"},
    {"cli"},
]


def _layer(module):
    parts = module.split(".")
    if len(parts) == 1:
        return len(LAYERS)
    return next(i for i, names in enumerate(LAYERS) if parts[1] in names)


def test_every_module_has_a_layer():
    for module in MODULES:
        assert _layer(module) <= len(LAYERS), module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_point_one_way(module):
    upward = {child for child in GRAPH[module] if _layer(child) > _layer(module)}
    assert not upward, f"{module} imports from a higher layer: {sorted(upward)}"


def test_torch_layer_imports_no_scikit_learn_or_nilearn():
    for module, path in MODULES.items():
        if module.startswith(f"{PACKAGE}.nn"):
            names = set()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names.add(node.module.split(".")[0])
            assert not names & {"sklearn", "nilearn", "skorch"}, module


def test_no_module_over_600_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 600}
    assert not long


def test_io_does_not_reach_the_estimators():
    reached = {m.split(".")[1] for m in _reachable(f"{PACKAGE}.io") if "." in m}
    assert reached <= {"_utils", "_version", "nn", "_input", "io"}, reached
