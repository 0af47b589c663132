"""Every setting relance reads is in the README's settings table, so none is a secret to operators."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from relance.core.settings import Settings

ROOT = Path(__file__).parents[1]


def _read_by_the_code() -> set[str]:
    fields = {f"RELANCE_{name.upper()}" for name in Settings.model_fields}
    # The few variables read directly (os.environ) rather than through Settings.
    quoted = subprocess.run(
        ["git", "grep", "-h", "-o", "-E", '"RELANCE_[A-Z_]+"', "--", "relance"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return fields | {name.strip('"') for name in quoted.split()}


def test_the_settings_table_lists_every_variable() -> None:
    table = "\n".join(
        line
        for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `RELANCE_")
    )
    listed = set(re.findall(r"RELANCE_[A-Z_]+", table))
    missing = sorted(_read_by_the_code() - listed)
    assert not missing, f"add these to the README's settings table: {missing}"
    assert len(listed) > 40
