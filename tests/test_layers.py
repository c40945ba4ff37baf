"""The package's shape, read from its source: layers in folders, imports going down.

Every ``import`` and ``from ... import`` of every module counts, including those inside
functions and under ``if TYPE_CHECKING:`` (a cycle that only type checkers see still
ties the modules together for a reader). Importing the module's own package
(``from pytest_chaos.proxy import x`` inside ``pytest_chaos.proxy``) counts too; the
parent package that Python runs before any submodule does not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import pytest_chaos

ROOT = Path(pytest_chaos.__file__).parent

#: the top-level parts, highest first: a part may import only parts below it
LAYERS = [
    # exploration's pytest glue reads the session's seed from the plugin package
    ["plugin", "explore"],
    # Hypothesis strategies: schedules of the fault strings that experiments parses
    ["strategies"],
    # YAML experiments build pytest items: plugin-level code, above what they drive
    ["experiments"],
    ["backends", "reporting"],
    ["experiment"],
    ["checks", "services", "client"],
    ["proxy"],
    ["toxics"],
    ["timeline", "errors", "lazy", "version"],
]


def _modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts = parts[:-1]
        modules[".".join(parts)] = (path, package)
    return modules


MODULES = _modules()


def _targets(module: str, package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix]
        names += [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in MODULES]
    found = []
    for name in names:
        if not name.startswith("pytest_chaos"):
            continue
        while name not in MODULES and "." in name:
            name = name.rsplit(".", 1)[0]
        if name != module:
            found.append(name)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, (path, package) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[module].update(_targets(module, package, node))
    return graph


GRAPH = _graph()


def _package_of(module: str) -> str:
    return module if MODULES[module][1] else module.rsplit(".", 1)[0]


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(MODULES):
        if node not in index:
            visit(node)
    return found


def test_the_analysis_sees_the_imports() -> None:
    # a parser that found nothing would pass every rule below
    assert len(MODULES) > 80
    assert "pytest_chaos.checks" in GRAPH["pytest_chaos.experiment._chaos"]
    assert sum(len(t) for t in GRAPH.values()) > 150


def test_no_import_cycles_type_checking_included() -> None:
    assert _cycles(GRAPH) == []


def test_no_module_imports_another_packages_private_module() -> None:
    offenders = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if target.rsplit(".", 1)[-1].startswith("_")
        and not target.endswith("__")
        and _package_of(target) != _package_of(module)
    )
    assert offenders == []


def test_the_package_root_holds_only_public_modules() -> None:
    root_modules = {p.stem for p in ROOT.glob("*.py")}
    assert root_modules == {"__init__", "errors", "lazy", "timeline", "version"}


def test_imports_go_down_the_layers() -> None:
    rank = {part: i for i, layer in enumerate(LAYERS) for part in layer}
    parts = {_part(m) for m in MODULES} - {""}
    assert parts == set(rank), "a new top-level part needs a place in LAYERS"
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _part(module)
        and _part(target)
        and _part(module) != _part(target)
        and rank[_part(target)] < rank[_part(module)]
    )
    assert upward == []


@pytest.mark.parametrize("word", ["mixin", "surface", "backstop"])
def test_no_internal_words_in_the_public_api(word: str) -> None:
    public = [name for name in pytest_chaos.__all__ if word in name.lower()]
    for package in ("checks", "services", "experiment", "proxy", "reporting", "client"):
        module = __import__(f"pytest_chaos.{package}", fromlist=["__all__"])
        public += [f"{package}.{n}" for n in module.__all__ if word in n.lower()]
    assert public == []
