"""The shape of the Python package: no import cycle among the modules of ``kmm``."""

from __future__ import annotations

import ast
from pathlib import Path

import kmm

PACKAGE = Path(kmm.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Dotted name -> source file of every module of the package (``__init__`` as the package;
    the compiled extension by its stub, a leaf that imports nothing of kmm)."""
    out = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")]):
        parts = ["kmm", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out.setdefault(".".join(parts), path)
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports, at module level or inside functions.

    ``from X import y`` counts as importing ``X.y`` when that is a module, else ``X``.
    Imports under ``if TYPE_CHECKING:`` count too: a cycle in the types is a
    cycle in the design. Parent packages that Python imports on the way are not
    counted: they are always initialised before their submodules run.
    """
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                base_name = ".".join(base)
            else:
                base_name = node.module or ""
            targets = [
                f"{base_name}.{alias.name}" if f"{base_name}.{alias.name}" in modules else base_name
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # kmm.x.func -> kmm.x
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_import_graph_resolves_relative_and_absolute_imports():
    modules = _modules()
    assert _imports("kmm.workloads.stress", modules["kmm.workloads.stress"], modules) >= {
        "kmm._args",  # from .._args import ...
        "kmm.workloads.walk",  # from . import walk
        "kmm.workloads.load",  # from .load import Load, combine
    }
    assert "kmm.commands.common" in _imports(
        "kmm.commands.buddyinfo", modules["kmm.commands.buddyinfo"], modules
    )
    assert "kmm" in _imports("kmm.cli", modules["kmm.cli"], modules)  # from . import __version__


def test_no_import_cycle():
    modules = _modules()
    graph = {
        name: set() if path.suffix == ".pyi" else _imports(name, path, modules)
        for name, path in modules.items()
    }
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
