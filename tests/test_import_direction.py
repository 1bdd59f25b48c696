"""Packages import in one direction, and no file reaches itself again through its imports.

The order, lowest first (ARCHITECTURE.md, "Packages and their imports" says why):

1. edge core: every ``edge`` module outside the runtime packages and the CLI (errors, frames,
   samples, policy, capture, face, datasets);
2. ``engines``; 3. ``calibration``;
4. the runtime: ``edge.live``, ``edge.kiosk``, ``edge.bench``;
5. ``train`` (torch);
6. ``edge.cli``, the composition root, which may import anything.

A module may import its own layer and the layers below it. Every import counts, wherever it is
written: at module level, inside a function (a lazy import is still a dependency), relative or
absolute, and ``import_module``/``import_optional`` with a literal name. A string that names a
module of these packages (``"engines.ort_runner:open_ort_runner"`` in a backend table) counts for
the direction too; it does not count for loops, because a table row names a module that the
table's own module opens on demand, not one it needs to exist.

``from package import name`` depends on the package's ``__init__`` (the name is looked up there
first) and, when ``name`` is a module, on that module as well.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "engines", "calibration", "train")
RUNTIME = ("edge.live", "edge.kiosk", "edge.bench")
ROOT = "edge.cli"
LAYERS = ("edge core", "engines", "calibration", "runtime", "train", ROOT)  # lowest first
MODULE_STRING = re.compile(r"^(?:%s)(?:\.\w+)+(?::\w+)?$" % "|".join(PACKAGES))


def layer_of(module: str) -> str:
    def within(prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    if within(ROOT):
        return ROOT
    if any(within(p) for p in RUNTIME):
        return "runtime"
    top = module.split(".")[0]
    return "edge core" if top == "edge" else top


def rank(module: str) -> int:
    return LAYERS.index(layer_of(module))


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module (a file of PACKAGES)
    where: str  # "path:line" of the import
    statement: bool  # an import statement or call; False for a module named in a string


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def known(name: str, files: dict[str, Path]) -> str | None:
    """The longest prefix of the dotted ``name`` that is a file here (``edge.face.finder.X`` -> the finder)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in files:
            return ".".join(parts)
        parts.pop()
    return None


def imported_names(node: ast.AST, module: str, is_package: bool, files: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        return [origin] + [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in files]
    if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "import_optional")):
        return [node.args[0].value]
    return []


def import_edges() -> list[Edge]:
    files = module_files()
    edges = []
    for module, path in files.items():
        where = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = imported_names(node, module, path.name == "__init__.py", files)
            statement = bool(names)
            if (not names and isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and MODULE_STRING.match(node.value)):
                names = [node.value.split(":")[0]]
            for name in names:
                target = known(name, files)
                if target is not None and target != module:
                    edges.append(Edge(module, target, f"{where}:{node.lineno}", statement))
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of more than one module, each sorted."""
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_scan_sees_every_package_and_lazy_imports():
    files = module_files()
    assert {m.split(".")[0] for m in files} == set(PACKAGES)
    assert all(layer_of(m) in LAYERS for m in files)
    edges = import_edges()
    # a lazy import inside a function is found (the CLI opens its commands' libraries lazily)
    assert any(e.source.startswith(ROOT + ".") and layer_of(e.target) == "train" for e in edges)


def test_packages_import_only_downward():
    upward = sorted({f"{e.where}: {e.source} -> {e.target} ({layer_of(e.source)} may not import "
                     f"{layer_of(e.target)})" for e in import_edges()
                     if layer_of(e.source) != ROOT and rank(e.target) > rank(e.source)})
    assert not upward, ("imports against the layer order " + " < ".join(LAYERS) + ":\n  "
                        + "\n  ".join(upward))


def test_no_import_loop_between_files():
    edges = [e for e in import_edges() if e.statement]
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.source].add(e.target)
    loops = []
    for component in strongly_connected(graph):
        inside = sorted({f"{e.where}: {e.source} -> {e.target}" for e in edges
                         if e.source in component and e.target in component})
        loops.append(" <-> ".join(component) + "\n    " + "\n    ".join(inside))
    assert not loops, "files that import each other (move the shared piece to one of them):\n  " + "\n  ".join(loops)
