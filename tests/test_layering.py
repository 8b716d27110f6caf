"""Imports point one way along the data path, and no module imports itself back through others.

The stages, in the order data flows: checkpoint -> reference model -> export graph -> backends
(Core ML, Core AI) -> quantization -> manifest -> verify -> pipeline and CLI; benchmark and tool scripts
sit on top. A module may import its own stage and the stages before it. `quant/` sits after the
backend in the data path but imports nothing above the reference model: the backend gets its
compression handed in by the pipeline (exporter.coreml.functions.Compressor).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASE = ("exporter.errors", "exporter.files", "exporter.memory", "exporter.progress", "exporter.output",
        "exporter.patching")
STAGES = [  # (rank, module prefixes)
    (0, BASE),
    (1, ("exporter.checkpoint",)),
    (2, ("exporter.model",)),
    (3, ("exporter.graph",)),
    (4, ("exporter.coreml", "exporter.coreai")),
    (5, ("quant",)),
    (6, ("exporter.manifest",)),
    (7, ("exporter.verify",)),
    (8, ("exporter.pipeline", "exporter.pipeline_adapters", "exporter.cli", "exporter.__main__", "exporter.verify.__main__", "exporter.generate")),
    (9, ("exporter.tools",)),
]
QUANT_MAY_IMPORT = 2  # quant/ imports nothing above the reference model


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def own_modules() -> dict[str, Path]:
    return {module_name(p): p for package in ("exporter", "quant") for p in (ROOT / package).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `path` imports, at module level or inside a function (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def rank(module: str) -> int:
    matches = [(len(p), value) for value, prefixes in STAGES for p in prefixes
               if module == p or module.startswith(p + ".")]
    if matches:
        return max(matches)[1]  # the most specific prefix: exporter.verify.__main__ is an entry point
    raise AssertionError(f"{module} belongs to no stage: add it to tests/test_layering.py STAGES")


def back_edges(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            limit = QUANT_MAY_IMPORT if rank(module) == rank("quant") else rank(module)
            if rank(target) > limit and rank(target) != rank(module):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = own_modules()
    graph = {}
    for name, path in modules.items():
        targets = imports_of(path, modules)
        # `import exporter.coreml.convert` also names its packages; a package's __init__ is no edge.
        graph[name] = {t for t in targets if t != name and not (name.startswith(t + ".") and modules[t].name == "__init__.py")}
    return graph


def test_every_module_belongs_to_a_stage():
    for module in own_modules():
        if module not in ("exporter", "quant"):
            rank(module)


def test_imports_point_one_way_along_the_data_path():
    assert back_edges(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("edge, kind", [
    (("exporter.model.openelm", "exporter.graph.stateful"), "back"),
    (("quant.recipes", "exporter.coreml.package"), "back"),
    (("exporter.checkpoint.tensors", "exporter.model.load"), "back"),
    (("exporter.model.openelm", "exporter.model.load"), "cycle"),
])
def test_the_checks_see_an_added_back_edge_or_cycle(edge, kind):
    graph = import_graph()
    graph[edge[0]] = graph[edge[0]] | {edge[1]}
    if kind == "back":
        assert f"{edge[0]} -> {edge[1]}" in back_edges(graph)
    else:
        assert any(edge[0] in c and edge[1] in c for c in cycles(graph))
