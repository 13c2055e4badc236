"""The package layout: no import cycles inside ``exchange`` (not even through imports inside functions), and
only ``exchange._impl`` imports the compiled twins.

The graph is built from the source with ``ast`` (every ``import`` / ``from ... import`` anywhere in a module,
function bodies included, except under ``if TYPE_CHECKING:``), plus the Python-level imports of the ``.pyx``
twins. An edge goes to the module imported: ``from .x import name`` depends on ``x`` (or on ``x.name`` when
that is a module), ``from . import x`` on ``x``; importing a submodule also runs its packages'
``__init__``, which hold docstrings only (checked below), so those implicit edges cannot close a cycle.
"""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "exchange"
COMPILED = {"exchange.orders._matching", "exchange.clearing._sweep", "exchange.accounts._pretrade", "exchange.clearing._fills",
            "exchange.orders._entry", "exchange.liquidation.adl._bounds", "exchange.boundary._batch",
            "exchange.boundary._validate", "exchange.liquidation._waterfall", "exchange.accounts._positions",
            "exchange.liquidation._monitor", "exchange._engine", "exchange._records"}  # built from the .pyx beside their references


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "TYPE_CHECKING" or isinstance(n, ast.Attribute)
               and n.attr == "TYPE_CHECKING" for n in ast.walk(test))


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


_PYX_IMPORT = re.compile(r"^\s*(?:from\s+(exchange[\w.]*)\s+(?:c?import)\s+([\w, ]+)|import\s+(exchange[\w.]*))", re.M)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the package's .py and .pyx files (edges inside the package only)."""
    files = {_module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}
    files.update({_module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.pyx"))})
    modules = set(files)
    top = package_dir.name
    graph: dict[str, set[str]] = {}

    def target(base: str, name: str | None) -> str | None:
        for candidate in ((f"{base}.{name}" if name else None), base):
            if candidate in modules:
                return candidate
        return None

    for module, path in files.items():
        deps = graph.setdefault(module, set())
        if path.suffix == ".pyx":
            for m in _PYX_IMPORT.finditer(path.read_text()):
                base = m.group(1) or m.group(3)
                names = [n.strip() for n in (m.group(2) or "").split(",") if n.strip()] or [None]
                deps.update(t for n in names if (t := target(base, n)) and t != module)
            continue
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in modules and a.name != module)
                continue
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != top and not base.startswith(top + "."):
                continue
            deps.update(t for a in node.names if (t := target(base, a.name)) and t != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycles():
    graph = import_graph(PACKAGE)
    assert "exchange.engine" in graph and "exchange.liquidation.adl.ranking" in graph
    assert "exchange.accounts.pretrade" in graph["exchange.liquidation.waterfall"]  # edges are seen
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_detector_finds_cycles(tmp_path):
    """A cycle through a function-level import and one through ``from . import x`` are found; one through
    ``if TYPE_CHECKING:`` is not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub.b import thing\n")
    (pkg / "sub" / "b.py").write_text("def thing():\n    from ..a import other\n    return other\n")
    (pkg / "c.py").write_text("from . import d\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import x\n")
    (pkg / "e.py").write_text("from .sub import f\n")
    (pkg / "sub" / "f.py").write_text("import pkg.e\n")
    found = cycles(import_graph(pkg))
    assert ["pkg.a", "pkg.sub.b"] in found
    assert ["pkg.e", "pkg.sub.f"] in found
    assert not any("pkg.c" in c for c in found)


def _source(module: str) -> Path:
    path = ROOT / module.replace(".", "/")
    return path.with_suffix(".pyx") if path.with_suffix(".pyx").exists() else path.with_suffix(".py")


def test_only_impl_imports_the_compiled_twins():
    """Python code reaches a compiled twin only through ``exchange._impl`` (the one switch); a compiled twin may
    ``cimport`` another's declarations, and then only through the ``.pxd`` beside it (its table of contents)."""
    graph = import_graph(PACKAGE)
    importers = sorted(m for m, deps in graph.items() if deps & COMPILED and _source(m).suffix == ".py")
    assert importers == ["exchange._impl"], importers
    assert COMPILED <= set(graph), "the .pyx twins were not found beside their references"
    assert {m for m in COMPILED if _source(m).suffix == ".pyx"} == COMPILED
    for module in sorted(COMPILED):
        for dep in sorted(graph[module] & COMPILED):
            assert _source(dep).with_suffix(".pxd").exists(), f"{module} imports {dep}, which has no .pxd"


def test_subpackage_inits_hold_no_imports():
    """A subpackage's ``__init__`` is its table of contents: importing one stage module runs no other."""
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if init.parent == PACKAGE or init.parent.is_relative_to(PACKAGE / "sim"):
            continue
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} has no docstring (its table of contents)"
        assert not list(_imports(tree)), f"{init} imports something"


@pytest.mark.parametrize("old, new", [
    ("exchange.risk", "exchange.accounts.pretrade"), ("exchange.adlqueue", "exchange.liquidation.adl.queue"),
])
def test_old_flat_modules_are_gone(old, new):
    """One home each: the flat names of before the layout do not linger beside the new ones."""
    assert not (ROOT / (old.replace(".", "/") + ".py")).exists()
    assert (ROOT / (new.replace(".", "/") + ".py")).exists()
