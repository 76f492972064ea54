"""The package's import structure (issue 12): no import cycles, nothing in the core imports
the CLI, argparse only in cli/. Read from the source with ast, so a lazy import inside a
function counts as much as a top-level one (it is a dependency all the same)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "tfinterop"
NAME = "tfinterop"


def module_name(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules ``path`` imports (``from .x import y`` counts ``x.y`` when that is
    a module, else ``x``); TYPE_CHECKING-only imports are left out (no runtime edge)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == NAME}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != NAME:
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in known else target)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path, set(found)) for name, path in found.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``edges`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_nothing_outside_the_cli_imports_it() -> None:
    offenders = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        if not name.startswith(f"{NAME}.cli") and name != f"{NAME}.__main__"
        for target in targets
        if target == f"{NAME}.cli" or target.startswith(f"{NAME}.cli.")
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("name", ["argparse"])
def test_argument_parsing_lives_in_the_cli(name: str) -> None:
    offenders = []
    for module, path in modules().items():
        if module.startswith(f"{NAME}.cli") or module.startswith(f"{NAME}.consumers.runners"):
            continue  # the runners are programs of their own (the consumer contract's CLI)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if name in names:
                offenders.append(module)
    assert not offenders, f"{name} imported outside cli/: {offenders}"


def test_the_import_reader_sees_relative_and_lazy_imports() -> None:
    # If the reader missed these, the tests above could pass on any package.
    edges = graph()
    assert f"{NAME}.pipeline.run" in edges[f"{NAME}.pipeline.interop"]
    assert f"{NAME}.cli.options" in edges[f"{NAME}.cli.interop"]
    assert f"{NAME}.report" in edges[f"{NAME}.cli.interop"]  # imported inside the command
