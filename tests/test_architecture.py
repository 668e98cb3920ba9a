"""The house's rules, read from the code: no import cycles, parts that never reach up, functions that fit a screen.

Imports are read with `ast` (every `import` and `from ... import`, at any depth, except those under
`if TYPE_CHECKING:`, which never run), so a lazy import inside a function counts like one at the top.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "peftbench"
FOUNDATION = {"errors", "registry", "specs", "tables"}  # below everything: they import only each other
MAX_TOP_MODULES = 6
MAX_FUNCTION_LINES = 50

# part -> parts it must never import (the rules, and "lower parts never import higher ones")
FORBIDDEN = {
    "config": {"grid", "run", "records", "regress", "report", "bench", "cli", "paper"},
    "methods": {"tasks", "run", "records", "bench", "grid", "regress", "report", "cli"},
    "models": {"config", "methods", "tasks", "run", "records", "bench", "grid", "regress", "report", "cli"},
    "tasks": {"methods", "run", "records", "bench", "grid", "regress", "report", "cli"},
    "records": {"methods", "models", "run", "bench", "grid", "regress", "report", "cli"},
    "run": {"grid", "regress", "report", "cli"},
    "bench": {"grid", "regress", "report", "cli"},
    "regress": {"grid", "run", "bench", "report", "cli"},
    "report": {"grid", "run", "bench", "regress", "cli"},
    "grid": {"regress", "report", "cli"},
    # paper may read models: a preset names the paper model it stands for
    "paper": {"config", "methods", "tasks", "run", "records", "bench", "grid", "regress", "report", "cli"},
}


@cache
def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path) -> set[str]:
    """The peftbench modules `name` imports (a `from pkg import mod` names the module, otherwise the package)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules() else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules() and m != name}


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(imported(name, path)) for name, path in modules().items()}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def cycles(edges: dict[str, frozenset[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_cycle_and_nothing_else():
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": frozenset({"b"}), "b": frozenset()}) == []


def test_no_import_cycles():
    assert cycles(graph()) == []


@pytest.mark.parametrize("low", sorted(FORBIDDEN))
def test_a_part_never_imports_the_parts_above_it(low):
    reaching_up = sorted(
        f"{m} -> {t}" for m, targets in graph().items() if part(m) == low for t in targets if part(t) in FORBIDDEN[low]
    )
    assert reaching_up == []


def test_the_foundation_imports_only_the_foundation():
    names = {f"peftbench.{m}" for m in FOUNDATION}
    assert {m for m in names if m in modules()} == names
    assert sorted(f"{m} -> {t}" for m in names for t in graph()[m] if t not in names) == []


def test_the_top_of_the_package_holds_few_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_no_function_is_longer_than_a_screen():
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
