"""``relance scenarios validate``: every error names file, line, field and a fix (S-01, D-02)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relance.templates import TemplateError, TemplateStore, sample_context
from tests.conftest import EXAMPLES

TEMPLATES = EXAMPLES / "templates"

GOOD = """\
scenario: shop
journeys:
  - id: post_purchase
    trigger:
      event: purchase
    messages:
      - id: invite
        template: {template}
        delay: 3 days
"""


def validate(directory: Path, templates: Path = TEMPLATES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relance.cli", "scenarios", "validate", str(directory),
         "--templates", str(templates)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


@pytest.mark.feature("S-01")
@pytest.mark.parametrize("directory", ["scenarios", "demo/scenarios"])
def test_shipped_examples_are_valid(directory: str) -> None:
    result = validate(EXAMPLES / directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "0 error(s)" in result.stderr


@pytest.mark.feature("S-01")
def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "scenario: s\njourneys:\n  - id: x\n    trigger: {event: purchase\n")
    result = validate(tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith(f"{path}:5: yaml: expected ',' or '}}', but got '<stream end>'")
    assert "while parsing a flow mapping at line 4" in result.stdout


@pytest.mark.feature("S-01")
def test_field_errors_give_line_field_and_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.yaml",
        GOOD.format(template="referral/post_purchase_invite").replace("3 days", "3 dayz")
        + "        chanel: email\n"
        + "      - id: Reminder\n        template: referral/post_purchase_reminder\n",
    )
    result = validate(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}:9: journeys[0].messages[0].delay: '3 dayz' is not a delay: "
        "write e.g. '3 days', '12 hours', '30 minutes'",
        f"{path}:10: journeys[0].messages[0].chanel: unknown field 'chanel': did you mean 'channel'?",
        f"{path}:11: journeys[0].messages[1].id: use lowercase letters, digits and '_', "
        "starting with a letter (e.g. post_purchase)",
    ]


@pytest.mark.feature("S-01")
def test_missing_field_duplicate_ids_and_keys(tmp_path: Path) -> None:
    missing = write(
        tmp_path / "a",
        "s.yaml",
        "scenario: s\njourneys:\n  - id: x\n    messages:\n      - id: m\n        template: t\n",
    )
    result = validate(tmp_path / "a")
    assert f"{missing}:3: journeys[0].trigger: required field missing: add 'trigger:'" in result.stdout

    twice = write(
        tmp_path / "b",
        "s.yaml",
        GOOD.format(template="referral/post_purchase_invite")
        + "      - id: invite\n        template: referral/post_purchase_reminder\n",
    )
    result = validate(tmp_path / "b")
    assert (
        f"{twice}:6: journeys[0].messages: message id 'invite' is used twice in this journey" in result.stdout
    )

    key = write(tmp_path / "c", "s.yaml", "scenario: s\nscenario: t\njourneys: []\n")
    result = validate(tmp_path / "c")
    assert result.stdout.strip() == f"{key}:2: scenario: written twice in this mapping: keep one"


@pytest.mark.feature("D-02")
def test_unknown_template_variables_fail_validation_with_the_template_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "t.subject.j2", "Hello {{ contact.frist_name }}\n")
    write(templates, "t.txt.j2", "Hi\n\n{{ coupon }} and {{ event.properties.code }}\n")
    scenario = write(tmp_path / "scenarios", "s.yaml", GOOD.format(template="t"))
    result = validate(tmp_path / "scenarios", templates)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.subject.j2:1: "
        "unknown variable 'contact.frist_name': did you mean 'first_name'?",
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.txt.j2:3: "
        "unknown variable 'coupon'; known: contact, event, message",
    ]


@pytest.mark.feature("D-02")
def test_missing_template_file_and_syntax_error(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "t.subject.j2", "Hello {{ contact.first_name }\n")
    scenario = write(tmp_path / "scenarios", "s.yaml", GOOD.format(template="t"))
    result = validate(tmp_path / "scenarios", templates)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.subject.j2:1: syntax:"
    )
    assert lines[1] == (
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.txt.j2:1: "
        "file not found: create t.txt.j2"
    )


@pytest.mark.feature("D-02")
def test_templates_run_in_the_sandbox(tmp_path: Path) -> None:
    write(tmp_path, "evil.subject.j2", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    write(tmp_path, "evil.txt.j2", "x")
    with pytest.raises(TemplateError, match=r"SecurityError|undefined"):
        TemplateStore(tmp_path).render("evil", "email", sample_context())


@pytest.mark.feature("D-02")
def test_html_part_is_autoescaped_text_part_is_not() -> None:
    context = sample_context()
    context["contact"]["first_name"] = "<b>Zoé</b>"
    rendered = TemplateStore(TEMPLATES).render("referral/post_purchase_invite", "email", context)
    assert rendered.subject == "<b>Zoé</b>, share the love and get rewarded"
    assert "Hello <b>Zoé</b>," in rendered.text
    assert rendered.html is not None and "Hello &lt;b&gt;Zoé&lt;/b&gt;," in rendered.html


def test_a_missing_value_fails_the_render_but_may_be_tested(tmp_path: Path) -> None:
    write(tmp_path, "t.subject.j2", "{% if event.properties.code %}code{% else %}none{% endif %}")
    write(tmp_path, "t.txt.j2", "{{ event.properties.code }}")
    with pytest.raises(TemplateError, match=r"t\.txt\.j2"):
        TemplateStore(tmp_path).render("t", "email", sample_context())
