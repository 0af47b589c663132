"""Event and contact payloads accepted at the edge (HTTP API, starter, simulate files)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from relance.models.journey import Channel, Purpose
from relance.models.referral import ReferralOutcome

_PHONE = re.compile(r"^\+?[0-9][0-9 .\-()]{5,24}$")


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = None
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    locale: str | None = Field(None, pattern=r"^[a-z]{2}([-_][A-Za-z]{2})?$")
    time_zone: str | None = Field(None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)
    consents: dict[Channel, dict[Purpose, bool]] = Field(
        default_factory=dict,
        description='opt-ins per channel and purpose, e.g. {"email": {"marketing": true}}',
    )
    last_purchase_at: AwareDatetime | None = Field(None, description="for the 3-year rule")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise ValueError(f"'{value}' is not a valid email address: {error}") from None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _PHONE.match(value):
            raise ValueError(f"'{value}' is not a phone number: write it as +33612345678")
        return re.sub(r"[ .\-()]", "", value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone such as Europe/Paris") from None
        return value

    @model_validator(mode="after")
    def _has_key(self) -> ContactIn:
        if not self.external_id and not self.email:
            raise ValueError("a contact needs an 'external_id' or an 'email' to be identified")
        return self


class EventIn(BaseModel):
    """``POST /v1/events`` body; also one line of a simulation's events file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="your idempotency key: the same id posted twice is stored once",
    )
    type: str = Field(pattern=r"^[a-z][a-z0-9_.]*$", max_length=64)
    contact: ContactIn
    occurred_at: AwareDatetime = Field(description="ISO-8601 with a UTC offset")
    properties: dict[str, Any] = Field(default_factory=dict)


class JourneyStarted(BaseModel):
    workflow_id: str
    scenario: str
    journey: str
    status: str = Field(description="started, or duplicate when this trigger already ran it")


class EventAccepted(BaseModel):
    event_id: int
    duplicate: bool = False
    contact: str = Field(description="the contact's external id")
    contact_created: bool
    journeys: list[JourneyStarted] = Field(default_factory=list)
    signalled: list[str] = Field(default_factory=list, description="running journeys notified")
    referrals: list[ReferralOutcome] = Field(
        default_factory=list,
        description="what the referral program made of it (invitations, purchases, returns)",
    )


class ContactSaved(BaseModel):
    external_id: str
    created: bool


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
