"""The ``relance`` command in a subprocess, as a shell runs it: its own settings, exit code and output."""

from __future__ import annotations

import os
import subprocess
import sys

TIMEOUT = 60  # seconds: a command that hangs fails its test instead of the whole run


def relance(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``relance ARGS…`` with ``env`` (``RELANCE_DATABASE_URL="…"``…) over this process's environment.

    Warnings-only logs, and no RELANCE_DEBUG inherited from the shell running the tests: the output
    is what a user sees.
    """
    environment = {k: v for k, v in os.environ.items() if k != "RELANCE_DEBUG"}
    environment |= {"RELANCE_LOG_LEVEL": "warning", **env}
    return subprocess.run(
        [sys.executable, "-m", "relance.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=TIMEOUT,
    )
