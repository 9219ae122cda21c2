"""No import cycles among pam-guard's modules (issue 17): each module can be read, and
changed, knowing only what it imports. Imports inside functions count too: a cycle through a
lazy import still ties two modules together."""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("policy", "store", "pam_guard", "radius_hook")


def _module_name(path: str) -> str:
    return os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """{module: the pam-guard modules it imports anywhere in its text}."""
    sources = {}
    for package in PACKAGES:
        for directory, _subdirs, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    sources[_module_name(path)] = path
    graph = {}
    for module, path in sources.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        named = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named.add(node.module)
                named.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                named.update(alias.name for alias in node.names)
        graph[module] = {name for name in named if name in sources and name != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    graph = import_graph()
    assert "pam_guard.gate" in graph and "store.db" in graph["pam_guard.gate"]
    assert cycles(graph) == []


def test_policy_imports_nothing_of_the_other_layers():
    """policy/ is the pure core: no store, no adapters."""
    graph = import_graph()
    reach = {
        (m, d)
        for m, deps in graph.items()
        if m.startswith("policy")
        for d in deps
        if not d.startswith("policy")
    }
    assert reach == set()
