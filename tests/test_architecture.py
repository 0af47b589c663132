"""The package layout, pinned: the design card's top level, inert package ``__init__`` files,
workflow code that imports only workflow-safe modules, and no import cycle.

Read from the source files with ``ast``: nothing is imported, so a breach is reported with its
file and line rather than by its side effects.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "relance"
ROOT_MODULES = {"__init__.py", "__main__.py", "worker.py"}
DESIGN_CARD_FOLDERS = ("workflows", "activities", "models", "starter", "migrations")
# Third-party code a workflow may import: the SDK itself and what it passes through by default.
WORKFLOW_SAFE_DISTRIBUTIONS = {"temporalio", "pydantic", "pydantic_core", "annotated_types"}
# What relance.starter's PEP 562 export may import at module level.
LAZY_EXPORT_IMPORTS = {"__future__", "typing"}


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name, resolved to a module file of relance where it names one
    line: int
    top_level: bool  # runs when the importing module is imported (not inside a def or TYPE_CHECKING)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str) -> Path | None:
    """The file of a relance module or package, None when there is none (an attribute import)."""
    base = PACKAGE.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def relance_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for p in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in p.relative_to(PACKAGE).parts
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], top_level: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement, with whether it runs at import time; ``with`` blocks (such as
    ``workflow.unsafe.imports_passed_through()``), ``if`` and ``try`` at module level do."""
    for node in body:
        yield node, top_level
        if isinstance(node, ast.If):
            inner = top_level and not _is_type_checking(node.test)
            yield from _statements(node.body, inner)
            yield from _statements(node.orelse, top_level)
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.For, ast.While)):
            yield from _statements(node.body, top_level)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _statements(block, top_level)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield from _statements(node.body, False)


def imports(path: Path) -> list[Import]:
    """Every import statement of a module (also inside functions and with blocks), resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: list[Import] = []
    for node, top_level in _statements(ast.parse(path.read_text(), str(path)).body, True):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno, top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from relance.models import journey` imports the module relance.models.journey.
                submodule = f"{base}.{alias.name}"
                name = submodule if base.startswith("relance") and module_file(submodule) else base
                found.append(Import(name, node.lineno, top_level))
    return list(dict.fromkeys(found))  # one per module and line: `from x import a, b` is one import


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{line}"


# --- the top level -------------------------------------------------------------------------


def test_the_top_level_has_the_design_cards_folders() -> None:
    missing = [f"relance/{name}/" for name in DESIGN_CARD_FOLDERS if not (PACKAGE / name).is_dir()]
    if not (PACKAGE / "worker.py").is_file():
        missing.append("relance/worker.py")
    assert missing == [], f"the design card's top level lacks {missing}"


def test_no_loose_module_at_the_package_root() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ROOT_MODULES)
    assert loose == [], (
        f"move {loose} into the package of their capability (root allows {sorted(ROOT_MODULES)})"
    )


# --- package __init__ files ------------------------------------------------------------------


def sub_package_inits() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)


def _lazy_export_breaches(path: Path, tree: ast.Module) -> list[str]:
    """PEP 562: ``__getattr__`` imports on first use; module level only ``__future__``/``typing``."""
    breaches = []
    for found in imports(path):
        if found.top_level and found.module.split(".")[0] not in LAZY_EXPORT_IMPORTS:
            breaches.append(f"{where(path, found.line)}: imports {found.module} at module level")
    for node in tree.body[1:]:
        allowed = (ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.AnnAssign, ast.If)
        if not isinstance(node, allowed) or (isinstance(node, ast.If) and not _is_type_checking(node.test)):
            breaches.append(f"{where(path, node.lineno)}: {type(node).__name__} in a lazy export")
        elif isinstance(node, ast.FunctionDef) and node.name not in ("__getattr__", "__dir__"):
            breaches.append(f"{where(path, node.lineno)}: def {node.name} in a lazy export")
    return breaches


def test_sub_package_init_files_hold_nothing_but_their_docstring() -> None:
    breaches = []
    for path in sub_package_inits():
        tree = ast.parse(path.read_text(), str(path))
        body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
        if path == PACKAGE / "starter" / "__init__.py":
            breaches += _lazy_export_breaches(path, tree)
        else:
            breaches += [f"{where(path, node.lineno)}: {type(node).__name__}" for node in body]
    assert breaches == [], "package __init__ files are a docstring only:\n" + "\n".join(breaches)


def test_every_sub_package_init_says_what_the_package_is_for() -> None:
    silent = [
        str(p.relative_to(PACKAGE.parent))
        for p in sub_package_inits()
        if not ast.get_docstring(ast.parse(p.read_text()))
    ]
    assert silent == [], f"give these a docstring: {silent}"


# --- workflow-safe imports -------------------------------------------------------------------


def is_payload_module(name: str) -> bool:
    """relance.models.<capability>: workflow payloads (the tables under models.tables are not)."""
    parts = name.split(".")
    return len(parts) == 3 and parts[:2] == ["relance", "models"] and parts[2] != "tables"


def is_workflow_module(name: str) -> bool:
    return name.startswith("relance.workflows.")


def workflow_unsafe_imports() -> list[str]:
    """Imports of workflow modules and of the payload modules they reach that are not workflow-safe."""
    modules = relance_modules()
    pending = [n for n in modules if is_workflow_module(n)]
    checked: set[str] = set()
    breaches = []
    while pending:
        name = pending.pop()
        if name in checked:
            continue
        checked.add(name)
        path = modules[name]
        for found in imports(path):
            top = found.module.split(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names or top in WORKFLOW_SAFE_DISTRIBUTIONS:
                continue
            if found.module in ("relance.models", "relance.workflows"):
                continue  # the docstring-only package itself
            if is_workflow_module(found.module) or is_payload_module(found.module):
                pending.append(found.module)  # safe only if what it imports is safe too
                continue
            breaches.append(f"{where(path, found.line)}: {name} imports {found.module}")
    assert any(is_payload_module(n) for n in checked), "no payload module reached: the check lost its way"
    return sorted(breaches)


def test_workflow_modules_and_their_payloads_import_only_workflow_safe_code() -> None:
    breaches = workflow_unsafe_imports()
    assert breaches == [], (
        "workflow code imports only the standard library, pydantic, temporalio, payload modules "
        "(relance/models/*.py) and workflow helpers (relance/workflows/*.py), passed through or not:\n"
        + "\n".join(breaches)
    )


# --- import cycles ---------------------------------------------------------------------------


def import_graph() -> dict[str, set[str]]:
    """relance module -> the relance modules it imports when it is imported."""
    modules = relance_modules()
    return {
        name: {i.module for i in imports(path) if i.top_level and i.module in modules and i.module != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    # Guards the check below: a finder that never reports would let every cycle through.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_relance_modules() -> None:
    graph = import_graph()
    assert graph.get("relance.worker"), "the graph lost its edges"
    found = cycles(graph)
    assert found == [], "import cycles (top-level imports):\n" + "\n".join(" <-> ".join(c) for c in found)
