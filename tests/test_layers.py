"""The layers of the code: imports point down only, no module imports itself back through
another, and only backends/ imports a deep-learning framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = {"tensorflow", "keras", "torch", "lightning", "pytorch_lightning", "jax", "jaxlib"}
# Lower rank = lower layer. A module may import its own layer or any lower one.
RANK = {
    "harness.core": 0,
    "harness.store": 1,
    "backends": 1,
    "harness.run": 2,
    "harness.report": 3,
    "harness.sweep": 3,
    "harness.tools": 4,
    "harness.api": 5,
    "harness": 6,  # the thin entry points: __main__, __init__ and the `python -m` shims
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> str:
    candidates = [name for name in RANK if module == name or module.startswith(name + ".")]
    return max(candidates, key=len)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside a function."""
    found: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("harness").rglob("*.py"), *ROOT.joinpath("backends").rglob("*.py")]
    return {module_name(path): path for path in files}


MODULES = project_modules()


def internal_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges[name] = {m for m in imports(path) if m in MODULES and m != name}
    return edges


def test_frameworks_are_imported_only_under_backends():
    offenders = [
        f"{name} imports {mod}"
        for name, path in MODULES.items()
        if not name.startswith("backends")
        for mod in imports(path)
        if mod.split(".")[0] in FRAMEWORKS
    ]
    assert offenders == []


def test_imports_point_down_the_layers():
    upward = [
        f"{src} ({layer(src)}) imports {dst} ({layer(dst)})"
        for src, targets in internal_edges().items()
        for dst in targets
        if RANK[layer(dst)] > RANK[layer(src)]
        # a package's own __init__ may re-export its modules
        and not dst.startswith(src + ".")
    ]
    assert upward == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
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
        for succ in edges.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    # a package __init__ that re-exports its own modules is not a cycle
    edges = {
        src: {
            dst for dst in targets if not (dst.startswith(src + ".") or src.startswith(dst + "."))
        }
        for src, targets in internal_edges().items()
    }
    assert cycles(edges) == []


def test_the_cycle_check_catches_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_small_enough_to_read(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= 420, f"{name} has {lines} lines; split it by what it does"
