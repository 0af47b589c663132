"""The package's import graph: no cycles, and only entry points use the client side (relance.starter).

Every ``import`` counts, function-local ones included: a local import that dodges a cycle still
is one. Imports under ``if TYPE_CHECKING:`` never run, so the cycle check leaves them out; the
client-side rule counts them (a service should not even name the starter's types).
"""

from __future__ import annotations

import ast
from pathlib import Path

import relance
from tests.test_architecture import cycles

ROOT = Path(relance.__file__).parent
# What may use the Relance facade or the Ingestor: the surfaces people and services call.
ENTRY_POINTS = (
    "relance.starter",
    "relance.api",
    "relance.cli",
    "relance.devstack",
    "relance.imports",
    "relance.simulation",
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_only(tree: ast.AST) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:``."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }


def _graph(type_checking: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = set() if type_checking else _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from a import b`` imports the module a.b when there is one, else a name of a
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph(type_checking=False)
    found = cycles(graph)
    described = [" -> ".join(c) for c in found]
    assert not found, f"import cycles (break them, do not hide them in a function): {described}"


def test_only_entry_points_use_the_client_side() -> None:
    graph = _graph(type_checking=True)
    users = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if not name.startswith(ENTRY_POINTS)
        for target in targets
        if target.startswith("relance.starter")
    )
    assert users == [], "services and the worker use the services, never relance.starter"
