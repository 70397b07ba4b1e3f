"""The package's shape: no import cycle (function-level imports included) and every ``ocisign.X``
import in the repository resolves to a file where the layout says it lives.

The import graph is built from the source with :mod:`ast` (nothing is imported): every
``import``/``from … import`` statement anywhere in a module (also inside functions and
``TYPE_CHECKING`` blocks) is an edge; relative imports are resolved against the importing
module; ``from ocisign.x import y`` is an edge to ``ocisign.x.y`` when that is a module, else
to ``ocisign.x``. A package's ``__init__`` is the node of the package itself.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Collection, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: top-level package name -> directory holding it
PACKAGE_DIRS = {
    "ocisign": ROOT / "src" / "ocisign",
    "ocisign.hooks": ROOT / "hooks",
    "ocisign.plugins": ROOT / "plugins",
}
SCANNED_TREES = ("src", "hooks", "plugins", "tests", "bench", "examples")


def _module_files() -> dict[str, Path]:
    """Every module of the installed package (host, hooks, plugins) by dotted name."""
    modules: dict[str, Path] = {}
    for prefix, base in PACKAGE_DIRS.items():
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([prefix, *parts])
            if prefix == "ocisign" and parts and parts[0] in ("hooks", "plugins"):
                continue  # those names belong to hooks/ and plugins/
            modules[name] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, list[str], int]]:
    """(base module, imported names, line) for every import statement in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                if node.level > 1:
                    package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base, [a.name for a in node.names], node.lineno


def _resolve(name: str, modules: Collection[str]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def module_edges(source: str, name: str, *, is_package: bool, modules: Collection[str]) -> dict[str, int]:
    """{imported module: line of the first import} for module ``name`` with ``source``, our modules only."""
    edges: dict[str, int] = {}
    for base, names, line in _imported_names(ast.parse(source), name, is_package):
        targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules] or [base]
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != name:
                edges.setdefault(resolved, line)
    return edges


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first import}, our modules only."""
    modules = _module_files()
    return {name: module_edges(path.read_text(encoding="utf-8"), name, is_package=_is_package(path), modules=modules)
            for name, path in modules.items()}


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a cycle path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_path(graph, comp) for comp in components]


def _cycle_path(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One concrete cycle inside a strongly connected component, start module repeated at the end."""
    members = set(component)
    start = component[0]
    # breadth-first search back to start, staying inside the component
    parent: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return component  # pragma: no cover - a component always holds a cycle


def _describe_cycle(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]}) -> {b}" for a, b in itertools.pairwise(cycle)]
    return "\n    ".join(steps)


def test_find_cycles_reports_a_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_edges_cover_function_level_relative_and_submodule_imports() -> None:
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.sub.d"}
    source = (
        "import os\n"
        "from pkg import b\n"               # b is a submodule: edge to pkg.b, not pkg
        "from . import d\n"                 # relative, resolves to pkg.sub.d
        "def f():\n"
        "    from ..a import thing\n"       # function level, two dots: pkg.a
        "    import pkg.sub.c as c\n"
        "if False:\n"
        "    from pkg.b import helper\n"   # a name inside pkg.b: edge to pkg.b
    )
    edges = module_edges(source, "pkg.sub.e", is_package=False, modules=modules)
    assert edges == {"pkg.b": 2, "pkg.sub.d": 3, "pkg.a": 5, "pkg.sub.c": 6}
    # in a package's __init__, one dot is the package itself
    assert module_edges("from .c import x\n", "pkg.sub", is_package=True, modules=modules) == {"pkg.sub.c": 1}
    assert module_edges("from pkg import nothing_here\n", "pkg.a", is_package=False, modules=modules) == {"pkg": 1}


def test_graph_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    # cli.app imports cli.context inside a function; the graph must see it
    assert "ocisign.cli.context" in graph["ocisign.cli.app"]
    assert "ocisign.errors" in graph["ocisign.cli.app"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    text = "\n".join("  cycle:\n    " + _describe_cycle(graph, c) for c in cycles)
    assert not cycles, f"import cycles in the package:\n{text}"


def test_hooks_import_no_command_module() -> None:
    # what a hook shares with a command (key/format choice, failure output) lives below both, in cli/
    graph = import_graph()
    wrong = [f"{module} line {line}: imports {target}" for module, edges in sorted(graph.items())
             if module.startswith("ocisign.hooks") for target, line in edges.items()
             if target.startswith("ocisign.cli.commands")]
    assert "ocisign.cli.commands.hook" in graph and any(m.startswith("ocisign.hooks.") for m in graph)
    assert not wrong, "\n".join(wrong)


def _absolute_ocisign_imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "ocisign" or alias.name.startswith("ocisign."):
                    yield alias.name, [], node.lineno
        elif (isinstance(node, ast.ImportFrom) and not node.level and node.module
              and (node.module == "ocisign" or node.module.startswith("ocisign."))):
            yield node.module, [a.name for a in node.names], node.lineno


def _location(dotted: str) -> Path | None:
    """Where the layout says ``dotted`` lives: a ``.py`` file or a package directory, or None."""
    for prefix in sorted(PACKAGE_DIRS, key=len, reverse=True):
        if dotted == prefix or dotted.startswith(prefix + "."):
            rest = dotted[len(prefix) + 1:].split(".") if dotted != prefix else []
            base = PACKAGE_DIRS[prefix].joinpath(*rest)
            if not rest:
                return base if (base / "__init__.py").is_file() else None
            if base.with_suffix(".py").is_file():
                return base.with_suffix(".py")
            if (base / "__init__.py").is_file():
                return base
            return None
    return None  # pragma: no cover - only ocisign names are passed


def test_every_ocisign_import_resolves_to_its_file() -> None:
    problems: list[str] = []
    files = [p for tree in SCANNED_TREES for p in sorted((ROOT / tree).rglob("*.py"))]
    assert len(files) > 50
    for path in files:
        for module, _names, line in _absolute_ocisign_imports(path):
            if _location(module) is None:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {module} has no file in the layout")
    assert not problems, "\n".join(problems)


def test_location_rules() -> None:
    assert _location("ocisign.errors") == ROOT / "src" / "ocisign" / "errors.py"
    assert _location("ocisign.cli") == ROOT / "src" / "ocisign" / "cli"
    assert _location("ocisign.hooks.run") == ROOT / "hooks" / "run.py"
    assert _location("ocisign.plugins") == ROOT / "plugins"
    assert _location("ocisign.no_such_module") is None
