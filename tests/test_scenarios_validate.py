"""``relance scenarios validate``: every error names file, line, field and a fix (S-01, D-02)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from relance.cli.scenarios import scenarios_app
from relance.core.yaml_source import Problem
from relance.scenarios.loader import ScenarioError, load_scenario, load_scenarios
from relance.scenarios.validate import validate_directory
from relance.templates.engine import CONTEXT_VARIABLES, TemplateError, TemplateStore, sample_context
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
INVITE = "referral/post_purchase_invite"


def validate(directory: Path, templates: Path = TEMPLATES) -> Result:
    args = ["validate", str(directory), "--templates", str(templates)]
    return CliRunner().invoke(scenarios_app, args, catch_exceptions=False)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(text: str, tmp_path: Path) -> list[str]:
    """Output lines of validating one scenario file with ``text``."""
    write(tmp_path / "scenarios", "s.yaml", text)
    result = validate(tmp_path / "scenarios")
    assert result.exit_code == 1, result.output
    prefix = f"{tmp_path / 'scenarios' / 's.yaml'}:"
    return [line.removeprefix(prefix) for line in result.stdout.splitlines()]


# -- S-01: scenario files ----------------------------------------------------------------------


@pytest.mark.feature("S-01")
@pytest.mark.parametrize(
    ("directory", "files", "warnings"),
    [("scenarios", "2 scenario files", 0), ("demo/scenarios", "1 scenario file", 2)],
)
def test_shipped_examples_are_valid(directory: str, files: str, warnings: int) -> None:
    result = validate(EXAMPLES / directory)
    assert result.exit_code == 0, result.output
    # The demo's delays are seconds long on purpose, so it is told they are short (S-04).
    assert len(result.stdout.splitlines()) == warnings
    assert result.stderr == f"0 errors, {warnings} warning{'s' if warnings != 1 else ''} in {files}\n"


@pytest.mark.feature("S-01")
def test_shipped_examples_load_as_a_scenario_set() -> None:
    scenarios = load_scenarios(EXAMPLES / "scenarios")
    referral = scenarios.get("referral")
    assert referral is not None and scenarios.get("nope") is None
    assert [(s.scenario, j.id) for s, j in scenarios.journeys_for_event("purchase")] == [
        ("referral", "post_purchase")
    ]
    assert scenarios.journeys_for_event("referral_sent") == []
    assert scenarios.known_event_types() == {
        "purchase",
        "unsubscribed",
        "referral_sent",
        "signup",
        "referee_registered",
        "gift_reserved",
    }
    assert scenarios.line("referral", ("journeys", 0, "messages", 1, "template")) == 28


@pytest.mark.feature("S-01")
def test_yaml_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    assert problems_of("scenario: s\njourneys:\n  - id: x\n    trigger: {event: purchase\n", tmp_path) == [
        "5: yaml: expected ',' or '}', but got '<stream end>' at column 1 "
        "(while parsing a flow mapping that starts at line 4): check indentation, colons and quotes"
    ]


@pytest.mark.feature("S-01")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "scenario: s\njourneys:\n\t- id: x\n",
            "3: yaml: found character '\\t' that cannot start any token at column 1: indent with spaces, not tabs",
        ),
        (
            "scenario: s\nname: Offer: 10%\n",
            "2: yaml: mapping values are not allowed here at column 12: put a space after each ':' and quote values containing ': '",
        ),
        (
            "scenario: s\nname: !!python/object:os.system x\n",
            "2: yaml: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system' at column 7: remove the '!' tag: scenario files use plain YAML",
        ),
        ("scenario: s\nname: a\x01\n", "2: yaml: invisible character #x0001 at column 8: delete it"),
        ("", "1: file: the file is empty: start with 'scenario: <id>'"),
        ("- a\n", "1: file: expected a mapping starting with 'scenario: <id>'"),
        ("a: &a [*a]\n", "1: a[0]: this alias contains itself: copy the values instead"),
    ],
)
def test_yaml_problems_are_explained(tmp_path: Path, text: str, expected: str) -> None:
    assert problems_of(text, tmp_path) == [expected]


@pytest.mark.feature("S-01")
def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    assert problems_of("\n".join(lines) + "\n", tmp_path) == [
        "1: file: more than 50000 values once aliases are expanded"
    ]


@pytest.mark.feature("S-01")
def test_field_errors_give_line_field_and_fix(tmp_path: Path) -> None:
    text = (
        GOOD.format(template=INVITE).replace("3 days", "3 dayz")
        + "        chanel: email\n"
        + "      - id: Reminder\n"
        + "        template: referral/post_purchase_reminder\n"
        + "        enabled: maybe\n"
        + "        unless: referral_sent\n"
        + "        channel: emial\n"
    )
    assert problems_of(text, tmp_path) == [
        "9: journeys[0].messages[0].delay: '3 dayz' is not a delay: write e.g. '3 days', '12 hours', '30 minutes'",
        "10: journeys[0].messages[0].chanel: unknown field 'chanel': did you mean 'channel'?",
        "11: journeys[0].messages[1].id: an id uses lowercase letters, digits and '_', starting with a letter: write 'reminder'",
        "13: journeys[0].messages[1].enabled: write true or false (got 'maybe')",
        "14: journeys[0].messages[1].unless: expected a list, not 'referral_sent': write [referral_sent]",
        "15: journeys[0].messages[1].channel: write 'email' or 'sms' (got 'emial'): did you mean 'email'?",
    ]


@pytest.mark.feature("S-01")
def test_wrong_shapes_and_unknown_keys_say_what_to_write(tmp_path: Path) -> None:
    text = (
        "scenario: shop\n"
        "journeys:\n"
        "  - id: post_purchase\n"
        "    trigger: purchase\n"
        "    exit_on: [Unsubscribed]\n"
        "    messages:\n"
        "      - id: invite\n"
        "        template: referral/post_purchase_invite\n"
        "        delay: {days: -1}\n"
        "        tint: red\n"
        "  - id: empty\n"
        "    trigger: {event: purchase}\n"
        "    messages: []\n"
        "    name: no\n"
    )
    assert problems_of(text, tmp_path) == [
        "4: journeys[0].trigger: trigger needs 'key: value' lines under it, not 'purchase', e.g. trigger: {event: purchase}",
        "5: journeys[0].exit_on[0]: an event type uses lowercase letters, digits, '_' and '.', starting with a letter: write 'unsubscribed'",
        "9: journeys[0].messages[0].delay.days: must be 0 or more (got -1)",
        "10: journeys[0].messages[0].tint: unknown field 'tint': a message has after, after_date, at, before_date, channel, delay, enabled, holdout, id, ignore_sms_hours, name, on_pressure, priority, purpose, sender, sms_hours, template, unless, variants",
        "13: journeys[1].messages: the list is empty: add at least one message",
        "14: journeys[1].name: YAML reads this unquoted word as true/false: put it in quotes, e.g. 'no'",
    ]


@pytest.mark.feature("S-01")
def test_a_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    text = "scenario: s\njourneys:\n  - id: x\n    messages:\n      - id: m\n        delay: 3 days\n"
    assert problems_of(text, tmp_path) == [
        "3: journeys[0].trigger: required field missing: add 'trigger:', e.g. trigger: {event: purchase}",
        "5: journeys[0].messages[0].template: required field missing: add 'template:', e.g. template: referral/post_purchase_invite",
    ]


@pytest.mark.feature("S-01")
def test_duplicate_message_and_journey_ids_point_at_the_second_one(tmp_path: Path) -> None:
    message = f"      - id: invite\n        template: {INVITE}\n"
    assert problems_of(GOOD.format(template=INVITE) + message, tmp_path) == [
        "10: journeys[0].messages[1].id: message id 'invite' is already used by journeys[0].messages[0] (line 7): give each message its own id",
    ]
    journey = "  - id: post_purchase\n    trigger: {event: purchase}\n    messages:\n      - id: a\n        template: t\n"
    assert problems_of(GOOD.format(template=INVITE) + journey, tmp_path) == [
        "10: journeys[1].id: journey id 'post_purchase' is already used by journeys[0] (line 3): give each journey its own id",
    ]


@pytest.mark.feature("S-01")
def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    text = GOOD.format(template=INVITE) + "        delay: 4 days\n"
    assert problems_of("scenario: s\n" + text, tmp_path) == [
        "2: scenario: written twice in this mapping (first at line 1): keep one",
        "11: journeys[0].messages[0].delay: written twice in this mapping (first at line 10): keep one",
    ]


@pytest.mark.feature("S-01")
def test_duplicate_scenario_ids_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD.format(template=INVITE))
    second = write(tmp_path, "b.yml", "# the same again\n" + GOOD.format(template=INVITE))
    result = validate(tmp_path)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{second}:2: scenario: id 'shop' is already used by {first}:1: give each scenario its own id"
    ]
    assert result.stderr == "1 error, 0 warnings in 2 scenario files\n"
    with pytest.raises(ScenarioError) as caught:
        load_scenarios(tmp_path)
    assert [(p.file, p.line, p.field) for p in caught.value.problems] == [(str(second), 2, "scenario")]


@pytest.mark.feature("S-01")
def test_every_broken_file_is_reported_in_one_run(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "t.subject.j2", "{{ contact.nom }}")
    write(templates, "t.txt.j2", "x {{ links.unsubscribe }}")
    broken = write(tmp_path / "scenarios", "a.yaml", "scenario: Shop\n")
    good = write(tmp_path / "scenarios", "b.yaml", GOOD.format(template="t"))
    assert [str(p) for p in validate_directory(tmp_path / "scenarios", templates)] == [
        f"{broken}:1: journeys: required field missing: add 'journeys:', e.g. journeys: with a list of '- id: ...' items",
        f"{broken}:1: scenario: an id uses lowercase letters, digits and '_', starting with a letter: write 'shop'",
        f"{good}:8: journeys[0].messages[0].template: {templates}/t.subject.j2:1: unknown variable 'contact.nom'; "
        "known: attributes, email, external_id, first_name, last_name, locale, phone, time_zone "
        "(free-form data: contact.attributes.nom)",
    ]


@pytest.mark.feature("S-01")
def test_load_scenario_raises_with_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", GOOD.format(template=INVITE).replace("3 days", "3"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.problems == [
        Problem(str(path), 9, "journeys[0].messages[0].delay", "write a unit: '3 days' or '{days: 3}'")
    ]
    assert (
        str(caught.value)
        == f"{path}:9: journeys[0].messages[0].delay: write a unit: '3 days' or '{{days: 3}}'"
    )


@pytest.mark.feature("S-01")
def test_warnings_do_not_fail_validation(tmp_path: Path) -> None:
    path = write(tmp_path / "scenarios", "s.yaml", GOOD.format(template=INVITE) + "        enabled: false\n")
    result = validate(tmp_path / "scenarios")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{path}:6: warning: journeys[0].messages: every message has 'enabled: false': "
        "the journey sends nothing; enable one or remove the journey"
    ]
    assert result.stderr == "0 errors, 1 warning in 1 scenario file\n"

    empty = tmp_path / "empty"
    empty.mkdir()
    result = validate(empty)
    assert (result.exit_code, result.stdout) == (
        0,
        f"{empty}: warning: directory: no *.yaml or *.yml file here\n",
    )


@pytest.mark.feature("S-04")
def test_bad_practice_gets_warnings_that_say_why(tmp_path: Path) -> None:
    path = write(
        tmp_path / "scenarios",
        "s.yaml",
        f"""\
scenario: shop
journeys:
  - id: too_soon
    trigger: {{event: purchase}}
    messages:
      - id: invite
        template: {INVITE}
        delay: 12 hours
      - id: reminder
        template: {INVITE}
        delay: 3 days
  - id: too_late
    trigger: {{event: purchase}}
    messages:
      - id: invite
        template: {INVITE}
        delay: 120 days
      - id: reminder
        template: {INVITE}
        delay: 40 days
        after: trigger
  - id: referee
    trigger: {{event: referee_registered}}
    messages:
      - id: discovery
        template: {INVITE}
        purpose: transactional
      - id: nudge
        template: {INVITE}
        delay: 7 days
        purpose: transactional
""",
    )
    result = validate(tmp_path / "scenarios")
    assert result.exit_code == 0, result.output  # advice, not errors: the scenario still runs
    assert result.stdout.splitlines() == [
        f"{path}:8: warning: journeys[0].messages[0].delay: a post-purchase message sent 12 hours after the "
        "purchase: 1 to 90 days is advised (after delivery, while the purchase is fresh)",
        f"{path}:11: warning: journeys[0].messages[1].delay: 'reminder' comes 3 days after 'invite': leave at "
        "least 7 days before a reminder, or it reads as pressure",
        f"{path}:17: warning: journeys[1].messages[0].delay: a post-purchase message sent 120 days after the "
        "purchase: 1 to 90 days is advised (after delivery, while the purchase is fresh)",
        f"{path}:31: warning: journeys[2].messages[1].purpose: 'nudge' reminds a referee: that is marketing, "
        "and needs their opt-in (GDPR); set 'purpose: marketing'",
    ]
    assert result.stderr == "0 errors, 4 warnings in 1 scenario file\n"


@pytest.mark.feature("S-01")
def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = validate(tmp_path / "missing")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {tmp_path / 'missing'}: no such scenarios directory\n",
    )
    result = validate(tmp_path, tmp_path / "nope")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {tmp_path / 'nope'}: no such templates directory\n",
    )


# -- D-02: templates ---------------------------------------------------------------------------


@pytest.mark.feature("D-02")
def test_unknown_template_variables_fail_validation_with_the_template_line(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "t.subject.j2", "Hello {{ contact.frist_name }}\n")
    write(
        templates,
        "t.txt.j2",
        "Hi\n\n{{ coupon }} and {{ event.properties.code }} {{ contact['emial'] }}\n{{ links.unsubscribe }}\n",
    )
    scenario = write(tmp_path / "scenarios", "s.yaml", GOOD.format(template="t"))
    result = validate(tmp_path / "scenarios", templates)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.subject.j2:1: "
        "unknown variable 'contact.frist_name': did you mean 'first_name'?",
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.txt.j2:3: "
        "unknown variable 'contact.emial': did you mean 'email'?",
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.txt.j2:3: "
        "unknown variable 'coupon'; known: contact, event, links, message, sender "
        "(free-form data: contact.attributes.coupon or event.properties.coupon)",
    ]


@pytest.mark.feature("D-02")
def test_check_follows_includes_and_flags_private_names(tmp_path: Path) -> None:
    write(tmp_path, "t.sms.j2", "Hi {{ event.type }}\n{% include 'footer.j2' %}\n{{ message.__class__ }}\n")
    write(tmp_path, "footer.j2", "\n{{ message.chanel }}{% include 'gone.j2' %}")
    assert [str(p) for p in TemplateStore(tmp_path).check("t", "sms")] == [
        f"{tmp_path}/t.sms.j2:3: '__class__' is not allowed: templates cannot read names starting with '_'",
        f"{tmp_path}/footer.j2:2: unknown variable 'message.chanel': did you mean 'channel'?",
        f"{tmp_path}/footer.j2:2: 'gone.j2' not found in {tmp_path}",
    ]


@pytest.mark.feature("D-02")
def test_missing_template_files_and_syntax_errors(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write(templates, "t.subject.j2", "Hello {{ contact.first_name }\n")
    write(templates, "referral/invite.sms.j2", "Hi")
    text = (
        GOOD.format(template="t")
        + "      - id: second\n        template: referral/invit\n        channel: sms\n"
    )
    text += "      - id: third\n        template: referral/invite\n"
    scenario = write(tmp_path / "scenarios", "s.yaml", text)
    result = validate(tmp_path / "scenarios", templates)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.subject.j2:1: syntax error: unexpected '}}'",
        f"{scenario}:8: journeys[0].messages[0].template: {templates}/t.txt.j2: file not found: create t.txt.j2",
        f"{scenario}:11: journeys[0].messages[1].template: {templates}: no template 'referral/invit': "
        "did you mean 'referral/invite'? Otherwise create referral/invit.sms.j2",
        f"{scenario}:14: journeys[0].messages[2].template: {templates}/referral/invite.subject.j2: "
        "file not found: create invite.subject.j2 (invite.sms.j2 exists: is the channel sms?)",
        f"{scenario}:14: journeys[0].messages[2].template: {templates}/referral/invite.txt.j2: "
        "file not found: create invite.txt.j2 (invite.sms.j2 exists: is the channel sms?)",
    ]


@pytest.mark.feature("D-02")
def test_a_multi_line_subject_is_a_warning_and_sent_as_one_line(tmp_path: Path) -> None:
    write(tmp_path, "t.subject.j2", "Hello {{ contact.first_name }},\nyour offer\n")
    write(tmp_path, "t.txt.j2", "x")
    store = TemplateStore(tmp_path)
    assert [(p.severity, str(p)) for p in store.check("t", "email")] == [
        ("warning", f"{tmp_path}/t.subject.j2:2: the subject spans 2 lines; it is sent as one line "
         "(line breaks become spaces): write it on one line"),
    ]  # fmt: skip
    context = sample_context()
    context["contact"]["first_name"] = "Zoé\r\nBcc: x@example.com"  # data cannot add a header line either
    assert store.render("t", "email", context).subject == "Hello Zoé Bcc: x@example.com, your offer"


@pytest.mark.feature("D-02")
@pytest.mark.parametrize(
    ("source", "error"),
    [
        (
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "2: not allowed in templates: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ contact.__class__.__mro__ }}",
            "2: not allowed in templates: access to attribute '__class__' of 'dict' object is unsafe.",
        ),
        (
            "{{ '{0.__class__}'.format(1) }}",
            "2: not allowed in templates: access to attribute '__class__' of 'int' object is unsafe.",
        ),
        (
            "{% set l = [] %}{{ l.append(1) }}",
            "2: not allowed in templates: access to attribute 'append' of 'list' object is unsafe.",
        ),
        ("{{ 'a' * 10000000 }}", "2: not allowed in templates: '*' would build a value longer than 100000"),
        ("{{ 1 / 0 }}", "2: ZeroDivisionError: division by zero"),
        ("{{ x }", "2: syntax error: unexpected '}'"),
    ],
)
def test_templates_run_in_the_sandbox(tmp_path: Path, source: str, error: str) -> None:
    write(tmp_path, "evil.sms.j2", "Hello\n" + source)
    with pytest.raises(TemplateError) as caught:
        TemplateStore(tmp_path).render("evil", "sms", sample_context())
    assert str(caught.value) == f"{tmp_path}/evil.sms.j2:{error}"


@pytest.mark.feature("D-02")
def test_template_names_stay_inside_the_directory(tmp_path: Path) -> None:
    write(tmp_path, "t.sms.j2", "x")
    message = "template name '../t' must be a path inside the templates directory, e.g. referral/post_purchase_invite"
    with pytest.raises(TemplateError, match=message):
        TemplateStore(tmp_path / "sub").render("../t", "sms", sample_context())
    assert [str(p) for p in TemplateStore(tmp_path / "sub").check("../t", "sms")] == [
        f"{tmp_path / 'sub'}: {message}"
    ]


@pytest.mark.feature("D-02")
def test_html_part_is_autoescaped_text_part_is_not() -> None:
    context = sample_context(scenario="referral", journey="post_purchase", message="invite")
    context["contact"]["first_name"] = "<b>Zoé</b>"
    rendered = TemplateStore(TEMPLATES).render(INVITE, "email", context)
    assert rendered.subject == "<b>Zoé</b>, share the love and get rewarded"
    assert rendered.text.startswith("Hello <b>Zoé</b>,\n\nThank you for your order SAMPLE-1.\n")
    assert rendered.text.endswith(
        "Unsubscribe: https://example.com/u/SAMPLE-TOKEN"
    )  # no trailing newline kept
    assert rendered.html is not None
    assert rendered.html.startswith("<p>Hello &lt;b&gt;Zoé&lt;/b&gt;,</p>\n")
    assert '<a href="https://example.com/referral?contact=sample-1">' in rendered.html


@pytest.mark.feature("D-02")
def test_sms_has_only_text_and_email_html_is_optional(tmp_path: Path) -> None:
    write(tmp_path, "t.sms.j2", "\n  Hi {{ contact.first_name }}, code {{ event.properties.order_id }}  \n")
    write(tmp_path, "t.subject.j2", "S")
    write(tmp_path, "t.txt.j2", "T {{ message.channel }}")
    store = TemplateStore(tmp_path)
    sms = store.render("t", "sms", sample_context(channel="sms"))
    assert (sms.subject, sms.text, sms.html) == (None, "Hi Camille, code SAMPLE-1", None)
    email = store.render("t", "email", sample_context())
    assert (email.subject, email.text, email.html) == ("S", "T email", None)


@pytest.mark.feature("D-02")
def test_a_missing_value_fails_the_render_but_may_be_tested(tmp_path: Path) -> None:
    write(tmp_path, "t.subject.j2", "{% if event.properties.code %}code{% else %}none{% endif %}")
    write(tmp_path, "t.txt.j2", "line 1\n{{ event.properties.code }}")
    with pytest.raises(TemplateError) as caught:
        TemplateStore(tmp_path).render("t", "email", sample_context())
    assert str(caught.value) == (
        f"{tmp_path}/t.txt.j2:2: undefined value: 'dict object' has no attribute 'code' "
        "(test optional values with {% if ... %} or use '| default(...)')"
    )
    write(tmp_path, "t.txt.j2", "{{ event.properties.code | default('none') }}")
    assert TemplateStore(tmp_path).render("t", "email", sample_context()).text == "none"


@pytest.mark.feature("D-02")
def test_the_sample_context_has_exactly_the_documented_variables() -> None:
    context = sample_context()
    assert {name: set(value) for name, value in context.items()} == {
        name: set(attributes) for name, attributes in CONTEXT_VARIABLES.items()
    }
