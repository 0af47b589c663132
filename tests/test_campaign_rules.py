"""What a campaign must state before ``scenarios apply`` puts it live: an explicit name, the
criteria the organisation requires, and a confirmation for legal messages (M-09)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from relance.cli.scenarios import scenarios_app
from relance.core.settings import get_settings
from tests.conftest import EXAMPLES

CLUB = """\
scenario: club
journeys:
  - id: contract
    name: {name}
    trigger:
      event: contract_signed
      segment: {segment}
    messages:
      - id: send_contract
        template: club/welcome_back
        purpose: {purpose}
"""


@pytest.fixture
def required_club(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RELANCE_REQUIRED_CRITERIA", "club")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def apply(tmp_path: Path, text: str, *extra: str) -> tuple[int, str, str, Path]:
    source, target = tmp_path / "new", tmp_path / "live"
    source.mkdir(exist_ok=True)
    if not target.exists():
        shutil.copytree(EXAMPLES / "club" / "scenarios", target)
    (source / "club.yaml").write_text(text)
    result = CliRunner().invoke(
        scenarios_app,
        [
            "apply",
            str(source),
            "--to",
            str(target),
            "--templates",
            str(EXAMPLES / "templates"),
            "--yes",
            *extra,
        ],
    )
    return result.exit_code, result.stdout, result.stderr, target


@pytest.mark.feature("M-09")
def test_a_campaign_goes_live_only_named_with_its_criteria_and_legal_confirmed(
    tmp_path: Path, required_club: None
) -> None:
    unnamed = CLUB.format(name="''", segment="{club: [Lyon]}", purpose="transactional")
    code, out, err, target = apply(tmp_path, unnamed)
    assert code == 1 and "nothing copied" in err
    assert "journeys[0].name: journey 'contract' needs an explicit name before it goes live" in out
    before = (target / "club.yaml").read_text()

    no_club = CLUB.format(name="Contract sending", segment="{status: [client]}", purpose="transactional")
    code, out, err, _ = apply(tmp_path, no_club)
    assert code == 1
    assert "journeys[0].trigger: every campaign must state club (RELANCE_REQUIRED_CRITERIA)" in out
    assert (target / "club.yaml").read_text() == before  # nothing copied

    legal = CLUB.format(name="Contract sending", segment="{club: [Lyon], status: [client]}", purpose="legal")
    code, out, err, _ = apply(tmp_path, legal)  # no terminal to confirm on
    assert code == 2
    assert "club/contract/send_contract: purpose 'legal' sends even to contacts who refused marketing" in err
    assert "run again with --confirm-legal" in err and (target / "club.yaml").read_text() == before

    code, out, err, _ = apply(tmp_path, legal, "--confirm-legal")
    assert code == 0, out + err
    assert (target / "club.yaml").read_text() == legal
    code, out, err, _ = apply(tmp_path, legal.replace("Contract sending", "Contract sent"))
    assert code == 0, err  # already legal in the live set: nothing new to confirm
