"""Conversions by reminder rank and by delay after the message (A-03), on the hand-counted
ledger of test_reports (see its comments for who bought after which message)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from relance.reports.cli import reports_app
from relance.reports.timing import bucket_of
from tests.conftest import EXAMPLES
from tests.test_reports import cli_database  # noqa: F401 (the seeded database, as a fixture)


@pytest.mark.feature("A-03")
def test_conversions_by_rank_and_by_delay(cli_database: str) -> None:  # noqa: F811
    args = ["timing", "--since", "2026-01", "--until", "2026-02", "--scenarios", str(EXAMPLES / "scenarios")]
    result = CliRunner().invoke(reports_app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_rank = [
        (r["journey"], r["rank"], r["message"], r["sent"], r["conversions"], r["share"])
        for r in report["by_rank"]
    ]
    assert by_rank == [
        ("post_purchase", 1, "invite", 3, 2, 0.5),  # bounced sends are not sends; the resend is
        ("post_purchase", 2, "reminder", 1, 2, 0.5),  # the reminder earns as much as the invite
        ("lapsed", None, "first", 1, 1, 1.0),  # winback is not in the scenario files: no rank
    ]
    by_delay = [(d["message"], d["bucket"], d["conversions"]) for d in report["by_delay"]]
    assert by_delay == [
        ("invite", "0-1 h", 1),  # Cy, an hour after the resend
        ("invite", "3-7 d", 1),  # Ana, four days after January's invite
        ("reminder", "1-24 h", 1),  # Ana, 12 hours after the reminder
        ("reminder", "3-7 d", 1),  # Ana, exactly 7 days after it
        ("first", "1-24 h", 1),  # Bob, 15 hours after the win-back
    ]
    table = CliRunner().invoke(reports_app, args, env={"COLUMNS": "200"}, catch_exceptions=False)
    assert "Conversions by reminder rank" in table.stdout and "post_purchase" in table.stdout


def test_delay_buckets() -> None:
    assert bucket_of(timedelta(hours=1)) == "0-1 h"
    assert bucket_of(timedelta(hours=1, seconds=1)) == "1-24 h"
    assert bucket_of(timedelta(days=7)) == "3-7 d"
    assert bucket_of(timedelta(days=31)) == "over 30 d"
