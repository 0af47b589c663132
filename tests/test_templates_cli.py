"""``relance templates preview`` and SMS length reporting (D-02)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from relance.templates.sms_length import sms_length
from tests.conftest import EXAMPLES


def relance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relance.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.feature("D-02")
def test_preview_renders_every_part_with_sample_or_given_data(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(
        json.dumps({"contact": {"first_name": "Zoé"}, "event": {"properties": {"order_id": "Z-42"}}})
    )
    result = relance(
        "templates", "preview", "referral/post_purchase_invite",
        "--templates", str(EXAMPLES / "templates"), "--data", str(data),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Subject: Zoé, share the love and get rewarded"
    assert "Thank you for your order Z-42." in result.stdout
    assert "-- HTML part --" in result.stdout and "<p>Hello Zoé,</p>" in result.stdout


@pytest.mark.feature("D-02")
def test_preview_of_an_sms_reports_encoding_and_segments(tmp_path: Path) -> None:
    (tmp_path / "club").mkdir()
    (tmp_path / "club" / "promo.sms.j2").write_text("{{ contact.first_name }}, -20% ce week-end 🎉")
    result = relance("templates", "preview", "club/promo", "--channel", "sms", "--templates", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Camille, -20% ce week-end 🎉",
        "-- 28 UCS-2 units, UCS-2, 1 segment(s)",
    ]


def test_preview_names_a_broken_template(tmp_path: Path) -> None:
    (tmp_path / "t.subject.j2").write_text("x")
    (tmp_path / "t.txt.j2").write_text("{{ event.properties.missing }}")
    result = relance("templates", "preview", "t", "--templates", str(tmp_path))
    assert result.returncode == 1
    assert "t.txt.j2" in result.stderr and "missing" in result.stderr


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM-7 basic set
        ("ê" * 70, "UCS-2", 70, 1),  # ê is not
        ("ê" * 71, "UCS-2", 71, 2),
        ("🎉" * 35, "UCS-2", 70, 1),  # an emoji is two UTF-16 units
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
    ],
)
def test_sms_length(text: str, encoding: str, units: int, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


@pytest.mark.feature("D-02")
@pytest.mark.feature("S-04")
def test_validation_warns_on_a_multi_segment_sms(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "long.sms.j2").write_text("Bonjour {{ contact.first_name }}, " + "ê" * 80)
    (tmp_path / "scenarios").mkdir()
    scenario = tmp_path / "scenarios" / "s.yaml"
    scenario.write_text(
        "scenario: s\njourneys:\n  - id: j\n    trigger: {event: purchase}\n    messages:\n"
        "      - id: m\n        channel: sms\n        template: long\n        purpose: transactional\n"
    )
    result = relance(
        "scenarios", "validate", str(tmp_path / "scenarios"), "--templates", str(tmp_path / "templates")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"{scenario}:8: warning: journeys[0].messages[0].template: with sample data this SMS takes "
        "97 UCS-2 units, UCS-2, 2 segment(s): each segment is billed"
    )


@pytest.mark.feature("D-02")
def test_locale_variants_fall_back_from_region_to_language_to_default(tmp_path: Path) -> None:
    for locale, words in {"": "Hello", ".fr": "Bonjour", ".fr-ca": "Allô"}.items():
        (tmp_path / f"hi{locale}.subject.j2").write_text(words)
        (tmp_path / f"hi{locale}.txt.j2").write_text(f"{words} {{{{ contact.first_name }}}}")
    (tmp_path / "hi.de.subject.j2").write_text("Hallo")  # incomplete variant: never chosen
    subjects = {
        locale: relance(
            "templates",
            "preview",
            "hi",
            "--templates",
            str(tmp_path),
            *(["--locale", locale] if locale else []),
        ).stdout.splitlines()[0]
        for locale in ["", "fr", "fr-CA", "fr_BE", "de", "en-GB"]
    }
    assert subjects == {
        "": "Subject: Hello",
        "fr": "Subject: Bonjour",
        "fr-CA": "Subject: Allô",
        "fr_BE": "Subject: Bonjour",
        "de": "Subject: Hello",
        "en-GB": "Subject: Hello",
    }


@pytest.mark.feature("D-02")
@pytest.mark.feature("S-04")
def test_validation_checks_every_locale_variant(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "t.subject.j2").write_text("Hi")
    (templates / "t.txt.j2").write_text("Hi {{ links.unsubscribe }}")
    (templates / "t.fr.subject.j2").write_text("Salut {{ contact.prenom }}")
    (templates / "t.fr.txt.j2").write_text("Salut")  # no unsubscribe link in French
    (tmp_path / "scenarios").mkdir()
    scenario = tmp_path / "scenarios" / "s.yaml"
    scenario.write_text(
        "scenario: s\njourneys:\n  - id: j\n    trigger: {event: purchase}\n    messages:\n"
        "      - id: m\n        template: t\n        delay: 3 days\n"
    )
    result = relance("scenarios", "validate", str(tmp_path / "scenarios"), "--templates", str(templates))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert f"{templates}/t.fr.subject.j2:1: unknown variable 'contact.prenom'" in lines[0]
    assert lines[1].endswith(
        "a marketing email needs an unsubscribe link: add {{ links.unsubscribe }} to t.txt.j2 (and to its .html.j2)"
    )
