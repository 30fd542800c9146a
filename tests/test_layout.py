"""The package's layout: no import cycle between its modules, and `import trajpred` is cheap.

Imports are read from the source with ast, so these checks import nothing themselves. Imports
under `if TYPE_CHECKING:` are left out (they never run); imports inside functions count: they
run too, only later.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "trajpred"
HEAVY = ("torch", "cv2", "ultralytics")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.AST, top_level_only: bool):
    """Import and ImportFrom nodes that run, skipping TYPE_CHECKING blocks (and functions'
    bodies when top_level_only: those run only when called)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for stmt in node.orelse:
                yield from _import_statements(ast.Module([stmt], []), top_level_only)
            continue
        if top_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_statements(node, top_level_only)


def imports_of(name: str, top_level_only: bool = False) -> tuple[set[str], set[str]]:
    """(trajpred modules, other top-level packages) that module `name` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside, outside = set(), set()
    for node in _import_statements(ast.parse(path.read_text()), top_level_only):
        if isinstance(node, ast.Import):
            modules, members = [a.name for a in node.names], []
        else:
            module = node.module or ""
            if node.level:  # relative: from .x import y, from .. import z
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            modules, members = [module], [f"{module}.{a.name}" for a in node.names]
        for target in modules + members:  # `from . import x` imports the module x
            if target.split(".")[0] == "trajpred" and target in MODULES and target != name:
                inside.add(target)
        outside.update(m.split(".")[0] for m in modules if m.split(".")[0] != "trajpred")
    return inside, outside


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_finds_a_hand_made_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_relative_and_type_checking_imports_are_read_as_they_run():
    predict, _ = imports_of("trajpred.commands.predict")
    assert "trajpred.writer" in predict  # `from ..writer import ...` inside a function
    assert "trajpred.writer" not in imports_of("trajpred.commands.predict", True)[0]
    crowd, outside = imports_of("trajpred.synth.crowd")
    assert "trajpred.synth.world" not in crowd  # only under TYPE_CHECKING
    assert "numpy" in outside


def test_no_import_cycle_inside_the_package():
    graph = {name: imports_of(name)[0] for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_importing_the_package_loads_no_heavy_library():
    """What `import trajpred` runs (its __init__ and the modules that imports at top level)
    imports none of torch, cv2 or ultralytics: they load when a stage needs them. (test_api.py
    checks the same in a fresh interpreter, as a slow test.)"""
    seen, todo, heavy = set(), ["trajpred"], {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        inside, outside = imports_of(name, top_level_only=True)
        todo.extend(inside)
        heavy.update({lib: name for lib in outside if lib in HEAVY})
    assert not heavy, f"import trajpred loads {heavy}"
