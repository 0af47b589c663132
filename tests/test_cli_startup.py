"""``relance --help`` stays quick: it imports none of the heavy libraries the commands use.

The root app imports every sub-app to list them, so a heavy top-level import in any
``relance/cli/*.py`` shows here. Commands import what they need when they run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import get_args

import pytest

from relance.cli.broadcasts import Channels
from relance.models.broadcast import ChannelMode

HEAVY = ("sqlalchemy", "temporalio", "httpx", "fastapi", "jinja2", "uvicorn", "boto3", "alembic")

# Runs ``python -m relance.cli <args> --help`` and prints the modules it left imported.
PROBE = """
import json, runpy, sys
sys.argv = ["relance", *json.loads(sys.argv[1]), "--help"]
try:
    runpy.run_module("relance.cli", run_name="__main__")
except SystemExit as done:
    if done.code:
        raise
sys.stdout.flush()
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


def loaded_by_help(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Usage" in done.stdout
    return {name.partition(".")[0] for name in json.loads(done.stderr)}


@pytest.mark.parametrize("group", [(), ("lists",), ("scenarios",), ("templates",), ("sends",)])
def test_help_imports_no_heavy_library(group: tuple[str, ...]) -> None:
    loaded = loaded_by_help(*group)
    assert "relance" in loaded, "the probe did not run the command"
    assert sorted(loaded & set(HEAVY)) == []


def test_the_sends_channels_are_the_channel_modes() -> None:
    # Written out in relance.cli.broadcasts so that `relance --help` does not import temporalio.
    assert list(get_args(Channels)) == [mode.value for mode in ChannelMode]
