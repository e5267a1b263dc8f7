"""The web package's shape: no import cycle, no module over 600 lines, no project import
hidden in a function body, and one route table.

Why: `web/app.py` and the views used to import each other (resolved by imports inside
functions), and one views module held every handler.  These checks keep the split.
"""

from __future__ import annotations

import ast
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in WEB.rglob("*.py"):
        parts = path.relative_to(WEB.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imported(node: ast.AST, modules: dict[str, Path]) -> set[str]:
    names: list[str] = []
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    return {n for n in names if n in modules}


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    inner: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = _imported(node, modules) - {name}
            graph[name] |= targets
            if targets and node not in tree.body:
                inner.append(f"{name}:{getattr(node, 'lineno', '?')}")
    return graph, inner


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_web() -> None:
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_no_project_import_inside_a_function() -> None:
    _, inner = _graph()
    assert inner == []


def test_no_module_over_600_lines() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in _modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_one_route_table() -> None:
    """Only `web/routes.py` registers routes."""
    registering = sorted(
        name
        for name, path in _modules().items()
        if "router.add_" in path.read_text() and name != "web.routes"
    )
    assert registering == []
