"""KPI alerts over the monthly message report (A-02), on the hand-counted ledger of test_reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relance.reports.alerts import load_rules
from relance.reports.cli import reports_app
from tests.conftest import EXAMPLES
from tests.test_reports import cli_database  # noqa: F401 (the seeded database, as a fixture)

RULES = """\
- {kpi: open_rate, below: 0.15, min_sent: 0}
- {kpi: click_rate, below_trailing: 0.7, months: 3, min_sent: 0}
- {kpi: unsubscribe_rate, above: 0.01, min_sent: 0, scenario: referral}
- {kpi: rpm, below: 5}
"""


def alerts(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(reports_app, ["alerts", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.feature("A-02")
def test_alerts_below_a_threshold_or_the_trailing_average(cli_database: str, tmp_path: Path) -> None:  # noqa: F811
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    code, out, _ = alerts("--rules", str(rules), "--month", "2026-02", "--json")
    assert code == 1  # something fired: a cron job can mail it
    fired = [json.loads(line) for line in out.splitlines()]
    assert [(a["journey"], a["message"], a["kpi"], a["value"], round(a["limit"], 6)) for a in fired] == [
        ("lapsed", "first", "open_rate", 0.0, 0.15),  # nobody opened the win-back
        ("post_purchase", "invite", "click_rate", 0.5, 0.7),  # 0.5 against 70 % of January's 1.0
        ("post_purchase", "invite", "unsubscribe_rate", 0.5, 0.01),
    ]
    assert fired[1]["reason"] == ("click_rate 0.5 is below 70% of its average over the 1 month(s) before (1)")
    code, out, err = alerts("--rules", str(rules), "--month", "2026-01")
    assert (code, out) == (0, "") and "no alert for 2026-01" in err
    code, out, _ = alerts("--rules", str(rules), "--month", "2026-02")
    assert out.splitlines()[0] == "2026-02 winback/lapsed/first (email): open_rate 0 is below 0.15"


def test_a_bad_rules_file_names_the_line(tmp_path: Path) -> None:
    assert len(load_rules(EXAMPLES / "reports" / "alerts.yaml")) == 4  # the shipped example loads
    rules = tmp_path / "alerts.yaml"
    rules.write_text("- {kpi: open_rate, below: 0.1}\n- {kpi: opens, below: 0.1}\n- {kpi: click_rate}\n")
    code, _, err = alerts("--rules", str(rules), "--month", "2026-02")
    assert code == 2
    assert f"{rules}:2: [1].kpi: Input should be 'open_rate'" in err
    assert f"{rules}:3: [2]: give one of 'below', 'above' or 'below_trailing'" in err
