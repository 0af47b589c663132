"""Workflow code and the payloads it carries stay workflow-safe.

The sandbox re-imports workflow modules for every workflow: with SQLAlchemy, jinja2 or
structlog among them, each workflow cost about a second of CPU.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import relance

PACKAGE = Path(relance.__file__).parent
WORKFLOW_MODULES = sorted(p for p in (PACKAGE / "workflows").glob("*.py") if p.name != "__init__.py")
PAYLOAD_MODULES = ["journey", "referral", "gift_card", "broadcast", "promo_code"]
# Safe everywhere in workflow code: what the sandbox passes through or re-imports cheaply.
SAFE_TOP_LEVEL = {"__future__", "collections", "dataclasses", "datetime", "enum", "typing", "temporalio"}
HEAVY = {"sqlalchemy", "jinja2", "structlog", "httpx", "boto3", "fastapi", "yaml", "email_validator"}


def _module(path: Path) -> str:
    return "relance.workflows." + path.stem


def test_workflow_and_payload_modules_import_nothing_heavy() -> None:
    modules = [_module(p) for p in WORKFLOW_MODULES] + [f"relance.models.{m}" for m in PAYLOAD_MODULES]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        json.loads(
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        )
    )
    assert not loaded & HEAVY, (
        f"importing workflow code loads {sorted(loaded & HEAVY)}: keep it out of {modules}"
    )


def test_workflow_modules_pass_relance_imports_through() -> None:
    """Top-level imports are the standard library and temporalio; relance's own go through
    ``workflow.unsafe.imports_passed_through()``, so the sandbox does not rebuild them."""
    for path in WORKFLOW_MODULES:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")[0]
            elif isinstance(node, ast.Import):
                top = node.names[0].name.split(".")[0]
            else:
                continue
            assert top in SAFE_TOP_LEVEL, (
                f"{path}:{node.lineno}: import {top} inside `with workflow.unsafe.imports_passed_through():`"
            )
