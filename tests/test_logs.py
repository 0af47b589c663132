"""JSON logs never carry a contact's email address or phone number in clear (O-05)."""

from __future__ import annotations

import json

import pytest
import structlog

from relance.core.logs import configure_logging, mask_text


@pytest.mark.feature("O-05")
def test_json_logs_mask_emails_and_phones(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    try:
        structlog.get_logger("test").info(
            "delivery.sent",
            to="jane.doe@example.com",
            phone="+33 6 12 34 56 78",
            note="reply to bob@shop.fr or call 0612345678",
            nested={"email": "x@y.org"},
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        structlog.reset_defaults()
    record = json.loads(line)
    assert record["event"] == "delivery.sent" and record["level"] == "info"
    assert record["to"] == "j***@e***.com"
    assert record["phone"] == "***78"
    assert record["note"] == "reply to b***@s***.fr or call ***78"
    assert record["nested"] == {"email": "x***@y***.org"}
    for secret in ("jane.doe", "example", "12 34 56", "bob@", "0612345678"):
        assert secret not in line


def test_masking_leaves_ordinary_text_alone() -> None:
    assert mask_text("journey:referral:post_purchase:c-1:A-1 at 2026-09-04") == (
        "journey:referral:post_purchase:c-1:A-1 at 2026-09-04"
    )
