"""Sphinx extension: the package tree and the tests of each subpackage, for the developers' page.

When the builder starts, it writes three tables that ``developers.rst`` includes, so the page
always shows the current tree: ``generated/layout/layers.rst.inc`` (the layers that
``tests/test_imports.py`` enforces, bottom up, each member with its docstring's first line),
``modules.rst.inc`` (every module of each subpackage) and ``tests.rst.inc`` (for each
subpackage, the test files that import from it, lazy imports included).
"""

import ast
import importlib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "sklearn_tcssl"
OUT_DIR = Path("generated") / "layout"


def _summary(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _entries(package_dir):
    """Top-level subpackages and modules, each ``(name, summary, [(module, summary)])``."""
    entries = []
    for path in sorted(package_dir.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            modules = [
                (p.name, _summary(p)) for p in sorted(path.glob("*.py")) if p.name != "__init__.py"
            ]
            entries.append((f"{path.name}/", _summary(path / "__init__.py"), modules))
        elif path.suffix == ".py" and path.name != "__init__.py":
            entries.append((path.name, _summary(path), []))
    return entries


def modules_rst(package_dir):
    """A definition list: each subpackage or module, its summary, and a subpackage's modules."""
    lines = []
    for name, summary, modules in _entries(package_dir):
        lines += [f"``{name}``", f"   {summary}", ""]
        lines += [f"   - ``{module}``: {text}" for module, text in modules]
        lines += [""] if modules else []
    return "\n".join(lines)


def enforced_layers(test_file):
    """The ``LAYERS`` list of ``tests/test_imports.py`` (read, not imported: it needs pytest)."""
    for node in ast.parse(test_file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "LAYERS"
        ]:
            return [sorted(layer) for layer in ast.literal_eval(node.value)]
    raise ValueError(f"{test_file} defines no LAYERS list")


def layers_rst(package_dir, test_file):
    """A table: each layer, bottom up, with its subpackages and modules and their summaries."""
    summaries = {
        name.rstrip("/").removesuffix(".py"): (name, s) for name, s, _ in _entries(package_dir)
    }
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 8 22 70", ""]
    lines += ["   * - Layer", "     - Subpackage or module", "     - Holds"]
    for k, layer in enumerate(enforced_layers(test_file), start=1):
        for j, member in enumerate(layer):
            name, summary = summaries.get(member, (member, ""))
            lines += [f"   * - {k if j == 0 else ''}", f"     - ``{name}``", f"     - {summary}"]
    return "\n".join(lines) + "\n"


def _subpackage(module, names):
    """The subpackages that ``from <module> import <names>`` reaches."""
    parts = module.split(".")
    if len(parts) > 1:
        return {parts[1].removesuffix(".py")}
    package = importlib.import_module(PACKAGE)
    found = set()
    for name in names:  # ``from sklearn_tcssl import X``: where X is defined
        defined_in = getattr(getattr(package, name, None), "__module__", None) or ""
        if defined_in.startswith(PACKAGE + "."):
            found.add(defined_in.split(".")[1])
    return found


def imported_subpackages(path):
    """Subpackages (and top-level modules) of the package that a file imports from."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == PACKAGE:
                found |= _subpackage(node.module, [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found |= _subpackage(alias.name, [])
    return found


def tests_rst(package_dir, tests_dir):
    """A table: each subpackage or module, and the test files that import from it."""
    by_part = defaultdict(list)
    for path in sorted(tests_dir.rglob("*.py")):
        if path.name != "conftest.py":
            for part in imported_subpackages(path):
                by_part[part].append(path.relative_to(tests_dir).as_posix())
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 25 75", ""]
    lines += ["   * - Subpackage or module", "     - Test files that import from it"]
    for name, _, _ in _entries(package_dir):
        files = by_part.get(name.rstrip("/").removesuffix(".py"), [])
        lines += [f"   * - ``{name}``", f"     - {', '.join(f'``{f}``' for f in files) or '-'}"]
    return "\n".join(lines) + "\n"


def _write_if_changed(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _on_builder_inited(app):
    folder = Path(app.srcdir) / OUT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    package_dir = ROOT / PACKAGE
    _write_if_changed(
        folder / "layers.rst.inc", layers_rst(package_dir, ROOT / "tests" / "test_imports.py")
    )
    _write_if_changed(folder / "modules.rst.inc", modules_rst(package_dir))
    _write_if_changed(folder / "tests.rst.inc", tests_rst(package_dir, ROOT / "tests"))


def setup(app):
    """Generate the layout files when the builder starts."""
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
