"""KPI alerts over the monthly message report (A-02), on the hand-counted ledger of test_reports.

The figures the rules are checked against (test_reports' hand count): the referral invite had a
click rate of 1.0 in January (1 delivered, clicked) and 0.5 in February (2 delivered, 1 clicked,
1 unsubscribed); the February reminder 0 clicks of 1; nobody opened February's win-back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from relance.cli.reports import reports_app
from relance.reports.alerts import load_rules
from relance.reports.months import last_complete_month, shift
from relance.scenarios.loader import ScenarioError
from tests.conftest import EXAMPLES
from tests.test_reports import cli_database, reports_http  # noqa: F401 (the seeded database, as fixtures)

RULES = """\
- {kpi: open_rate, below: 0.15, min_sent: 0}
- {kpi: click_rate, below_trailing: 0.7, months: 3, min_sent: 0}
- {kpi: unsubscribe_rate, above: 0.01, min_sent: 0, scenario: referral}
- {kpi: rpm, below: 5}
- {kpi: sent, below: 1000}
"""
# rpm and sent would fire on every message, but a message sent fewer than 100 times (the default
# min_sent) is not judged.


def alerts(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    wide = {"COLUMNS": "250"} | (env or {})
    result = CliRunner().invoke(reports_app, ["alerts", *args], env=wide, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES)
    return rules


@pytest.mark.feature("A-02")
def test_alerts_below_a_threshold_or_the_trailing_average(cli_database: str, rules_file: Path) -> None:  # noqa: F811
    code, out, _ = alerts("--rules", str(rules_file), "--month", "2026-02", "--json")
    assert code == 1  # something fired: a cron job can mail it
    fired = [json.loads(line) for line in out.splitlines()]
    got = [
        (a["journey"], a["message"], a["channel"], a["kpi"], a["value"], round(a["limit"], 6), a["rule"])
        for a in fired
    ]
    assert got == [
        ("lapsed", "first", "email", "open_rate", 0.0, 0.15, f"{rules_file}:1"),  # nobody opened it
        # 0.5 against 70 % of January's 1.0; the reminder (0 clicks) has no month before to compare
        ("post_purchase", "invite", "email", "click_rate", 0.5, 0.7, f"{rules_file}:2"),
        ("post_purchase", "invite", "email", "unsubscribe_rate", 0.5, 0.01, f"{rules_file}:3"),
    ]
    assert fired[0]["threshold"] == 0.15 and fired[0]["trailing_average"] is None
    assert fired[1]["threshold"] is None and fired[1]["trailing_average"] == 1.0
    assert fired[1]["reason"] == "click_rate 0.5 is below 70% of its average over the 1 month(s) before (1)"
    assert {a["scenario"] for a in fired} == {"winback", "referral"} and {a["month"] for a in fired} == {
        "2026-02"
    }

    code, out, _ = alerts("--rules", str(rules_file), "--month", "2026-02")
    assert code == 1
    assert out.splitlines() == [
        f"2026-02 winback/lapsed/first (email): open_rate 0 is below 0.15 [{rules_file}:1]",
        "2026-02 referral/post_purchase/invite (email): click_rate 0.5 is below 70% of its average over "
        f"the 1 month(s) before (1) [{rules_file}:2]",
        f"2026-02 referral/post_purchase/invite (email): unsubscribe_rate 0.5 is above 0.01 [{rules_file}:3]",
    ]


@pytest.mark.feature("A-02")
def test_no_alert_exits_0(cli_database: str, rules_file: Path, tmp_path: Path) -> None:  # noqa: F811
    # January: the invite opened, clicked, nobody unsubscribed; nothing before it to trail.
    code, out, err = alerts("--rules", str(rules_file), "--month", "2026-01")
    assert (code, out) == (0, "") and "no alert for 2026-01 (5 rules checked)" in err
    # A month without sends has nothing to judge.
    assert alerts("--rules", str(rules_file), "--month", "2025-06")[:2] == (0, "")
    # The trailing average only counts the months asked for: with months: 1 and a floor of 40 % of
    # January's 1.0, February's 0.5 passes; the winback is not a referral message.
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(
        "- {kpi: click_rate, below_trailing: 0.4, months: 1, min_sent: 0}\n"
        "- {kpi: open_rate, below: 0.15, scenario: referral, min_sent: 0}\n"
    )
    assert alerts("--rules", str(narrow), "--month", "2026-02")[:2] == (0, "")
    # The rules file can come from the environment (the cron job's).
    code, out, _ = alerts("--month", "2026-02", "--json", env={"RELANCE_ALERT_RULES": str(narrow)})
    assert (code, out) == (0, "")
    code, out, _ = alerts("--month", "2026-02", "--json", env={"RELANCE_ALERT_RULES": str(rules_file)})
    assert code == 1 and len(out.splitlines()) == 3


@pytest.mark.feature("A-02")
def test_a_bad_rules_file_names_the_line(tmp_path: Path) -> None:
    assert len(load_rules(EXAMPLES / "reports" / "alerts.yaml")) == 4  # the shipped example loads
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "# checked every month\n"
        "- {kpi: open_rate, below: 0.1}\n"
        "- {kpi: opens, below: 0.1}\n"
        "- {kpi: click_rate}\n"
        "- kpi: rpm\n"
        "  below: cheap\n"
    )
    code, out, err = alerts("--rules", str(rules), "--month", "2026-02")
    assert (code, out) == (2, "")  # 2: the rules are wrong, not the KPIs
    assert f"{rules}:3: [1].kpi: Input should be 'open_rate'" in err
    assert f"{rules}:4: [2]: give one of 'below', 'above' or 'below_trailing'" in err
    assert f"{rules}:6: [3].below: Input should be a valid number" in err

    rules.write_text("- {kpi: open_rate, below: 0.1\n")
    code, _, err = alerts("--rules", str(rules))
    assert code == 2 and f"{rules}:2: yaml: expected ',' or '}}'" in err
    rules.write_text("kpi: open_rate\nbelow: 0.1\n")
    code, _, err = alerts("--rules", str(rules))
    assert code == 2 and f"{rules}:1: file: write a list of rules" in err
    rules.write_text("")
    assert f"{rules}:1: file: the file is empty: write a list of rules" in alerts("--rules", str(rules))[2]
    code, _, err = alerts("--rules", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: file: cannot read the file" in err
    with pytest.raises(ScenarioError):
        load_rules(rules)

    good = tmp_path / "good.yaml"
    good.write_text(RULES)
    code, _, err = alerts("--rules", str(good), "--month", "2026-13")
    assert code == 2 and "--month: '2026-13' is not a month" in err


def test_the_default_month_is_the_last_complete_one() -> None:
    assert last_complete_month(datetime(2026, 3, 1, 0, 0, tzinfo=UTC)) == "2026-02"
    assert last_complete_month(datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) == "2025-12"
    assert shift("2026-02", -3) == "2025-11"


@pytest.mark.feature("A-02")
async def test_the_http_alerts(
    reports_http: httpx.AsyncClient,  # noqa: F811
    rules_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELANCE_ALERT_RULES", str(rules_file))
    answer = await reports_http.get("/v1/reports/alerts", params={"month": "2026-02"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["month"], body["rules"], body["window_days"]) == ("2026-02", str(rules_file), 7)
    assert [(a["message"], a["kpi"], a["value"]) for a in body["alerts"]] == [
        ("first", "open_rate", 0.0),
        ("invite", "click_rate", 0.5),
        ("invite", "unsubscribe_rate", 0.5),
    ]
    january = await reports_http.get("/v1/reports/alerts", params={"month": "2026-01"})
    assert january.json()["alerts"] == []
    assert (await reports_http.get("/v1/reports/alerts", params={"month": "2026-1"})).status_code == 422

    broken = tmp_path / "broken.yaml"
    broken.write_text("- {kpi: opens, below: 1}\n")
    monkeypatch.setenv("RELANCE_ALERT_RULES", str(broken))
    failed = await reports_http.get("/v1/reports/alerts", params={"month": "2026-02"})
    assert failed.status_code == 500
    assert failed.json()["details"][0] | {"message": ""} == {
        "file": str(broken),
        "line": 1,
        "field": "[0].kpi",
        "message": "",
    }
