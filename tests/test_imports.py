"""Imports flow one way (rigs -> capture -> annotate -> train; cinectrl, the CLI, may use all four) and no
module of ours imports, directly or through others, one that imports it back.

Every explicit import counts: module level, inside a function (a lazy import that hides a cycle is still one)
and under TYPE_CHECKING. A cycle is reported with its modules, a layer breach with the importing line."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("rigs", "capture", "annotate", "train", "cinectrl")


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for package in LAYERS:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _ours(name: str, modules) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module of ours it imports: line of the first such import}."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                ours = _ours(target, modules)
                if ours and ours != name:
                    edges.setdefault(ours, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_our_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (break each by moving what both need to the lower module): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_imports_flow_rigs_capture_annotate_train():
    rank = {package: i for i, package in enumerate(LAYERS)}
    breaches = [f"{src.replace('.', '/')}.py:{line} imports {dst}"
                for src, edges in import_graph().items() for dst, line in edges.items()
                if rank[dst.split(".")[0]] > rank[src.split(".")[0]]]
    assert not breaches, "imports against the layer direction: " + "; ".join(breaches)


def test_the_checks_see_cycles_and_breaches(tmp_path):
    """The graph is built from real imports: the known edges are there (so an empty answer means no cycle)."""
    graph = import_graph()
    assert "rigs.video" in graph["capture.report"] and "rigs.video" in graph["capture.exposure"]
    assert "capture.catalog" in graph["capture.export"]          # under TYPE_CHECKING: counted
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
