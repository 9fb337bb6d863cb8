"""The package's import graph has no cycles (DESIGN.md: data flows one way; a cycle is two parts that
cannot be understood, tested or replaced apart).

Every ``import`` counts, wherever it is — module level, inside a function (run time) or under
``TYPE_CHECKING`` — since each is a dependency a reader must follow. Importing ``a.b.c`` also runs the
``__init__`` of ``a`` and ``a.b``, so it depends on them too (that is how ``weighting`` once came to load
TRL through ``training/__init__``); a module's own enclosing packages are not counted, and
``from package import submodule`` depends on the submodule, not on the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import musc_ecd

ROOT = Path(musc_ecd.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            targets.update(submodules if len(submodules) == len(node.names) else [base, *submodules])
    edges = set()
    for target in targets:
        known = _known(target, modules)
        if known is None or not known.startswith("musc_ecd"):
            continue
        parts = known.split(".")
        for depth in range(1, len(parts) + 1):  # the target and the packages whose __init__ it runs
            name = ".".join(parts[:depth])
            if name in modules and name != module and not module.startswith(name + "."):
                edges.add(name)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def _reach(graph: dict[str, set[str]], module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    return seen - {module}


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_data_building_does_not_load_the_trainer():
    """weighting and the methods build data; the trainer (TRL) must not be among their dependencies."""
    graph = import_graph()
    for module in ("musc_ecd.weighting", "musc_ecd.generate"):
        assert not any(m.startswith("musc_ecd.training") for m in _reach(graph, module)), module


def test_data_building_and_evaluation_meet_only_in_the_checkers():
    """The typed constraints and the scorer both take their verdicts from ``musc_ecd.checkers``, which sits below
    both: data building never reaches evaluation, and the checkers reach neither."""
    graph = import_graph()
    assert "musc_ecd.checkers" in graph["musc_ecd.constraints.typed.constraint"]
    assert "musc_ecd.checkers" in graph["musc_ecd.evaluation.ifeval"]
    for module in (m for m in graph if m.startswith("musc_ecd.constraints")):
        assert not any(m.startswith("musc_ecd.evaluation") for m in _reach(graph, module)), module
    for module in (m for m in graph if m.startswith("musc_ecd.checkers")):
        below = _reach(graph, module)
        assert not any(m.startswith(("musc_ecd.evaluation", "musc_ecd.constraints")) for m in below), module
