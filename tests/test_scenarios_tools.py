"""``relance scenarios diff / map / apply`` on the shipped examples (S-05)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from relance.cli.scenarios import scenarios_app
from relance.scenarios.apply import read_generation, replacing
from relance.scenarios.loader import load_scenarios
from relance.scenarios.registry import scenario_registry
from tests import test_unsubscribe_browser
from tests.conftest import EXAMPLES

browser = test_unsubscribe_browser.browser  # the Chromium fixture of the unsubscribe page's test

SCENARIOS = EXAMPLES / "scenarios"
TEMPLATES = EXAMPLES / "templates"
REMINDER = """\
        delay: 7 days
        after: previous
        unless:
          - referral_sent      # the contact invited a friend meanwhile: no need to remind
        purpose: marketing
        priority: low
"""
# A second journey on 'purchase' sending the referral invitation again, the same day.
SHOP = """\
scenario: shop
journeys:
  - id: thanks
    trigger: {event: purchase}
    messages:
      - id: thank_you
        template: referral/post_purchase_invite
        delay: 3 days
        after: trigger
      - id: survey
        template: referral/post_purchase_reminder
        delay: 20 days
        enabled: false
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(scenarios_app, list(args), catch_exceptions=False)


def copy_examples(destination: Path) -> Path:
    shutil.copytree(SCENARIOS, destination)
    return destination


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def edited_examples(destination: Path) -> Path:
    """The examples with the reminder 3 days later, a last call added and the discovery journey removed."""
    copy_examples(destination)
    referral = destination / "referral.yaml"
    last_call = (
        "      - id: last_call\n        channel: sms\n        template: referral/last_call\n"
        "        delay: 14 days\n        unless: [referral_sent, order_returned]\n"
    )
    edit(referral, REMINDER, REMINDER.replace("7 days", "10 days") + last_call)
    text = referral.read_text(encoding="utf-8")
    referral.write_text(text[: text.index("  - id: discovery")], encoding="utf-8")
    return destination


# -- diff --------------------------------------------------------------------------------------------


@pytest.mark.feature("S-05")
def test_diff_lists_each_change_in_the_marketers_words(tmp_path: Path) -> None:
    old, new = copy_examples(tmp_path / "old"), edited_examples(tmp_path / "new")
    result = run("diff", str(old), str(new))
    assert result.exit_code == 1, result.output
    versions = {s.scenario: s.version for s in load_scenarios(old)}, load_scenarios(new).get("referral")
    assert versions[1] is not None
    assert result.stdout.splitlines() == [
        f"scenario referral: version {versions[0]['referral']} → {versions[1].version}",
        "  journey discovery removed (it had 1 message)",
        "  journey post_purchase: message reminder: delay 7 days → 10 days",
        "  journey post_purchase: message last_call added: sms referral/last_call, 14 days after the previous,"
        " at +27 days",
        "1 scenario differs: 3 changes.",
        "Running journeys are not affected: each keeps the scenario version it started with. "
        "These changes apply to journeys that start once the new files are loaded.",
    ]


@pytest.mark.feature("S-05")
def test_diff_of_identical_sets_exits_0(tmp_path: Path) -> None:
    copy = copy_examples(tmp_path / "copy")
    edit(copy / "referral.yaml", "# The referral", "# Reworded comment.\n# The referral")
    result = run("diff", str(SCENARIOS), str(copy))
    assert result.exit_code == 0, result.output
    assert result.stdout == "no differences (2 scenarios compared)\n"


@pytest.mark.feature("S-05")
def test_diff_json_follows_messages_that_move_and_trigger_fields(tmp_path: Path) -> None:
    new = copy_examples(tmp_path / "new")
    edit(new / "referral.yaml", "delay: 3 days", "delay: 5 days")
    edit(new / "referral.yaml", "ref: order_id", "ref: basket_id")
    edit(
        new / "referral.yaml",
        "- unsubscribed           # the contact",
        "- order_returned\n      - unsubscribed  #",
    )
    (new / "loyalty.yaml").unlink()
    result = run("diff", str(SCENARIOS), str(new), "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["identical"] is False and data["running_journeys_affected"] is False
    by_id = {s["scenario"]: s for s in data["scenarios"]}
    assert by_id["loyalty"]["status"] == "removed"
    assert [c["text"] for c in by_id["loyalty"]["changes"]] == ["journey gift_reservation removed"]
    assert [c["text"] for c in by_id["referral"]["changes"]] == [
        "journey post_purchase: trigger ref order_id → basket_id",
        "journey post_purchase: exit_on [unsubscribed] → [order_returned, unsubscribed]",
        "journey post_purchase: message invite: delay 3 days → 5 days",
        "journey post_purchase: message reminder: now at +12 days (was +10 days), after a message that moved",
    ]
    delay = by_id["referral"]["changes"][2]
    assert (delay["journey"], delay["message"], delay["field"], delay["old"], delay["new"]) == (
        "post_purchase", "invite", "delay", 3 * 86400, 5 * 86400,
    )  # fmt: skip


@pytest.mark.feature("S-05")
def test_diff_reports_bad_yaml_with_file_and_line(tmp_path: Path) -> None:
    new = copy_examples(tmp_path / "new")
    edit(new / "referral.yaml", "        delay: 3 days", "        delay 3 days")
    result = run("diff", str(SCENARIOS), str(new))
    assert result.exit_code == 2
    assert f"{new / 'referral.yaml'}:22: yaml: " in result.stderr
    assert run("diff", str(SCENARIOS), str(tmp_path / "nowhere")).exit_code == 2


# -- map ---------------------------------------------------------------------------------------------


@pytest.mark.feature("S-05")
def test_map_shows_timings_from_the_trigger_channels_and_conditions() -> None:
    result = run("map", str(SCENARIOS), "--templates", str(TEMPLATES))
    assert result.exit_code == 0, result.output
    lines = [line.strip("│├└─ ") for line in result.stdout.splitlines()]
    assert "trigger purchase  (ref: order_id)" in lines
    assert "+3 days   invite    email  referral/post_purchase_invite  marketing, important" in lines
    assert (
        "+10 days  reminder  email  referral/post_purchase_reminder  marketing, low  unless referral_sent"
    ) in lines
    assert "+1 day   welcome   email  referral/post_signup  marketing, important" in lines
    assert (
        "+8 days  reminder  email  referral/post_signup_reminder  marketing, low  unless referral_sent"
        in lines
    )
    assert "exits early on unsubscribed" in lines
    assert lines[-1] == "no inconsistency or duplicate found"


@pytest.mark.feature("S-05")
def test_map_flags_duplicates_same_day_messages_and_disabled_ones(tmp_path: Path) -> None:
    directory = copy_examples(tmp_path / "scenarios")
    (directory / "shop.yaml").write_text(SHOP, encoding="utf-8")
    result = run("map", str(directory), "--templates", str(TEMPLATES))
    assert result.exit_code == 0, result.output
    flags = result.stdout.split("\n3 flags:\n")[1].splitlines()
    assert flags == [
        f"  ⚠ {directory / 'shop.yaml'}:13: message shop/thanks/survey is never sent: it has 'enabled: false'",
        f"  ⚠ {directory / 'referral.yaml'}:17: same day: 'purchase' starts referral/post_purchase and "
        "shop/thanks; referral/post_purchase/invite (+3 days, email) and shop/thanks/thank_you (+3 days, email) "
        "reach the contact on day 3 after the trigger",
        f"  ⚠ {directory / 'referral.yaml'}:17: duplicate: email template referral/post_purchase_invite is sent "
        "by 2 journeys started by 'purchase': referral/post_purchase/invite (+3 days), "
        "shop/thanks/thank_you (+3 days)",
    ]
    invite = next(line for line in result.stdout.splitlines() if " invite " in line)
    assert invite.endswith("⚠ same day  ⚠ duplicate")
    # Events from outside (referral_sent, unsubscribed) that no journey starts on are not flagged.
    assert "referral_sent" not in result.stdout.split("flags:")[1]


@pytest.mark.feature("S-05")
def test_map_flags_journeys_that_send_nothing_and_missing_templates(tmp_path: Path) -> None:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    text = SHOP.replace("      - id: survey", "      - id: survey\n        channel: sms").replace(
        "template: referral/post_purchase_invite", "template: shop/thanks"
    )
    (directory / "shop.yaml").write_text(text.replace("after: trigger", "enabled: false"), encoding="utf-8")
    lines = run("map", str(directory), "--templates", str(TEMPLATES)).stdout.splitlines()
    assert lines[-2:] == [
        "1 flag:",
        f"  ⚠ {directory / 'shop.yaml'}:5: journey shop/thanks sends nothing: every message is disabled; "
        "add or enable a message, or remove the journey",
    ]
    (directory / "shop.yaml").write_text(text, encoding="utf-8")
    lines = run("map", str(directory), "--templates", str(TEMPLATES)).stdout.splitlines()
    assert (
        f"  ⚠ {directory / 'shop.yaml'}:7: message shop/thanks/thank_you can never be sent: its email "
        + ("template shop/thanks lacks shop/thanks.subject.j2, shop/thanks.txt.j2")
        in lines
    )


@pytest.mark.feature("S-05")
async def test_map_html_page_in_chromium(browser: object, tmp_path: Path) -> None:
    directory = copy_examples(tmp_path / "scenarios")
    (directory / "shop.yaml").write_text(SHOP, encoding="utf-8")
    page_file = tmp_path / "map.html"
    result = run("map", str(directory), "--templates", str(TEMPLATES), "--html", str(page_file))
    assert result.exit_code == 0, result.output
    assert f"map written to {page_file}" in result.stdout
    html = page_file.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html and "<script" not in html  # opens offline

    page = await browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await page.goto(page_file.as_uri())
    assert requests == [page_file.as_uri()]  # nothing else fetched
    lanes = page.locator("svg.timeline g.lane")
    assert await lanes.count() == 5  # one per journey
    names = [await lanes.nth(n).get_attribute("data-journey") for n in range(5)]
    assert names == [
        "loyalty/gift_reservation", "referral/post_purchase", "referral/post_signup", "referral/discovery",
        "shop/thanks",
    ]  # fmt: skip
    lane = page.locator('g.lane[data-journey="referral/post_purchase"]')
    invite, reminder = (
        lane.locator('g.message[data-message="invite"]'),
        lane.locator('[data-message="reminder"]'),
    )
    assert await invite.get_attribute("data-offset") == str(3 * 86400)
    assert await reminder.get_attribute("data-offset") == str(10 * 86400)
    start = await lane.locator("line.lane-line").bounding_box()
    dots = [await m.locator("circle.dot").bounding_box() for m in (invite, reminder)]
    assert start is not None and dots[0] is not None and dots[1] is not None
    # Dots sit at their offsets on one scale: +3 days is 3/10 of the way to +10 days.
    origin = start["x"] + 18  # the lane starts a little before +0, where the trigger is drawn
    ratio = (dots[0]["x"] + dots[0]["width"] / 2 - origin) / (dots[1]["x"] + dots[1]["width"] / 2 - origin)
    assert ratio == pytest.approx(0.3, abs=0.01)
    assert await lane.locator("g.branch.unless").text_content() == "skip if referral_sent"
    assert await lane.locator("g.branch.exit").text_content() == "exit on unsubscribed"
    assert await invite.get_attribute("class") == "message flagged"
    assert await reminder.get_attribute("class") == "message"
    assert await page.locator('g.lane[data-journey="shop/thanks"] circle.dot.off').count() == 1  # disabled
    flags = page.locator("ul.flags li.flag")
    assert await flags.count() == 3
    assert await page.locator("li.flag-duplicate").count() == 1
    assert (
        "same day: 'purchase' starts referral/post_purchase and shop/thanks"
        in await page.locator("li.flag-same_day").inner_text()
    )
    assert await page.locator("h2#flags").inner_text() == "3 flags"
    await page.close()


# -- apply -------------------------------------------------------------------------------------------


def templates_with_last_call(tmp_path: Path) -> Path:
    """The example templates plus the SMS the edited examples add."""
    templates = Path(shutil.copytree(TEMPLATES, tmp_path / "templates"))
    sms = "Last days to invite a friend and both get 10 EUR off. Stop: {{ links.unsubscribe }}"
    (templates / "referral" / "last_call.sms.j2").write_text(sms, encoding="utf-8")
    return templates


def files_of(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and p.suffix == ".yaml"
    }


@pytest.mark.feature("S-05")
def test_apply_refuses_an_invalid_source_and_copies_nothing(tmp_path: Path) -> None:
    target = copy_examples(tmp_path / "live")
    before = files_of(target)
    source = edited_examples(tmp_path / "new")
    edit(source / "referral.yaml", "delay: 10 days", "delay: 10 dayz")
    result = run("apply", str(source), "--to", str(target), "--templates", str(TEMPLATES), "--yes")
    assert result.exit_code == 1
    assert f"{source / 'referral.yaml'}:29: journeys[0].messages[1].delay: " in result.stdout
    assert result.stderr == f"{source}: 1 error: nothing copied to {target}\n"
    assert files_of(target) == before and not (target / ".history").exists()


@pytest.mark.feature("S-05")
def test_apply_without_yes_off_a_terminal_changes_nothing(tmp_path: Path) -> None:
    target = copy_examples(tmp_path / "live")
    before = files_of(target)
    source = copy_examples(tmp_path / "new")
    edit(source / "referral.yaml", "delay: 3 days", "delay: 5 days")
    result = run("apply", str(source), "--to", str(target), "--templates", str(TEMPLATES))
    assert result.exit_code == 2
    assert "journey post_purchase: message invite: delay 3 days → 5 days" in result.stdout  # shown first
    assert result.stderr == (
        f"error: not replacing the scenarios in {target} without confirmation: there is no terminal to "
        "ask on; run again with --yes\n"
    )
    assert files_of(target) == before


@pytest.mark.feature("S-05")
def test_apply_replaces_the_set_keeps_a_backup_and_prints_versions(tmp_path: Path) -> None:
    target = copy_examples(tmp_path / "live")
    (target / "old_promo.yaml").write_text(
        SHOP.replace("scenario: shop", "scenario: promo"), encoding="utf-8"
    )
    before = files_of(target)
    old = load_scenarios(target)
    source = edited_examples(tmp_path / "new")
    templates = templates_with_last_call(tmp_path)
    registry = scenario_registry(target)
    assert registry().get("promo") is not None

    result = run("apply", str(source), "--to", str(target), "--templates", str(templates), "--yes")
    assert result.exit_code == 0, result.output
    new = load_scenarios(target)
    referral, loyalty = new.get("referral"), new.get("loyalty")
    assert referral is not None and loyalty is not None and new.get("promo") is None
    assert [m.id for m in referral.journeys[0].messages] == ["invite", "reminder", "last_call"]
    assert files_of(target) == files_of(source)
    (backup,) = (target / ".history").iterdir()
    assert files_of(backup) == before
    old_referral, old_promo = old.get("referral"), old.get("promo")
    assert old_referral is not None and old_promo is not None
    out = result.stdout.splitlines()
    assert "  journey post_purchase: message reminder: delay 7 days → 10 days" in out
    assert f"scenario promo removed (version {old_promo.version})" in out
    assert out[-4:] == [
        f"applied 2 scenario files to {target}; previous files kept in {backup}",
        f"  loyalty: version {loyalty.version} (unchanged)",
        f"  referral: version {referral.version} (was {old_referral.version})",
        f"  promo: removed (was {old_promo.version})",
    ]
    # A running API or worker picks up the new set on its next call.
    assert registry().get("promo") is None
    assert read_generation(target).value == 2 and not read_generation(target).in_progress
    again = run("apply", str(source), "--to", str(target), "--templates", str(templates), "--yes")
    assert again.stdout == f"{target} already has these files: nothing to do\n"


@pytest.mark.feature("S-05")
def test_running_processes_keep_the_whole_old_set_while_files_are_replaced(tmp_path: Path) -> None:
    target = copy_examples(tmp_path / "live")
    registry = scenario_registry(target)
    referral = registry().get("referral")
    assert referral is not None
    with replacing(target):
        assert read_generation(target).in_progress
        (target / "loyalty.yaml").unlink()  # half of a replacement
        assert registry().get("loyalty") is not None  # still the complete previous set
    assert registry().get("loyalty") is None
    assert registry().get("referral") == referral
