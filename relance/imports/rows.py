"""One CSV row to one contact, or the reason it is rejected (line-level, never the whole file)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from relance.imports.columns import Columns
from relance.imports.errors import ImportFileError

TRUE = frozenset({"yes", "true", "1", "oui"})
FALSE = frozenset({"no", "false", "0", "non"})
DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
LOCALE = re.compile(r"[A-Za-z]{2}(?:[-_][A-Za-z]{2})?\Z")
# A plain ASCII dot-atom local part: email-validator accepts every one of these, so only the
# domain needs its checks, and domains repeat (gmail.com, orange.fr): they are cached.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
MAX_LENGTHS = {"external_id": 200, "first_name": 200, "last_name": 200}


class Rejected(ValueError):
    """This row cannot be imported; the message names the field and what is wrong."""


@dataclass(slots=True)
class ContactRow:
    line: int
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    locale: str | None
    time_zone: str | None
    last_purchase_at: datetime | None
    consents: dict[tuple[str, str], bool]
    attributes: dict[str, str]

    @property
    def key(self) -> str:
        """The unique key of the upsert: the external id when given, else the email."""
        return f"x:{self.external_id}" if self.external_id else f"e:{self.email}"

    @property
    def key_text(self) -> str:
        return self.external_id or self.email or ""

    def staged_id(self) -> str:
        # Only used when no contact has this email yet (like the API: rc_ and 16 hex digits).
        return self.external_id or f"rc_{uuid.uuid4().hex[:16]}"

    def attributes_json(self) -> str:
        return json.dumps(self.attributes, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@lru_cache(maxsize=65536)
def _domain(domain: str) -> str | None:
    """The normalised domain when email-validator accepts it, else None."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def check_email(text: str) -> str:
    local, at, domain = text.rpartition("@")
    if at and len(text) <= 254 and len(local) <= 64 and PLAIN_LOCAL.match(local):
        normal = _domain(domain)
        if normal is not None:
            return f"{local}@{normal}".lower()
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise Rejected(f"email: '{text}' is not a valid email address: {error}") from None


def parse_date(text: str, zone: tzinfo) -> datetime:
    """ISO 8601, DD/MM/YYYY [HH:MM[:SS]] or YYYY-MM-DD HH:MM[:SS]; no offset: the contact's zone."""
    value: datetime | None = None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        for pattern in DATE_FORMATS:
            try:
                value = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if value is None:
        raise Rejected(
            f"last_purchase_at: '{text}' is not a date: write 2024-03-31, 2024-03-31T14:30:00+02:00, "
            "31/03/2024 or 31/03/2024 14:30"
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Rejected(f"last_purchase_at: '{text}' is out of the range of dates") from None


class RowChecker:
    """Turns the fields of one record into a ContactRow, or raises Rejected."""

    def __init__(self, columns: Columns, default_region: str, default_time_zone: str) -> None:
        if default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ImportFileError(
                f"default region '{default_region}' is not a country code phonenumbers knows: "
                "give a two-letter code such as FR, BE or CH"
            )
        zone = _zone(default_time_zone)
        if zone is None:
            raise ImportFileError(f"default time zone '{default_time_zone}' is not an IANA zone name")
        self.columns = columns
        self.region = default_region.upper()
        self.zone = zone
        self.width = len(columns.names)
        self._get = {name: index for name, index in columns.fields.items()}

    def check(self, line: int, fields: list[str]) -> ContactRow:
        get = self._get

        def text(name: str) -> str | None:
            index = get.get(name)
            if index is None:
                return None
            value = fields[index].strip()
            if not value:
                return None
            if "\x00" in value:
                raise Rejected(f"{name}: contains a NUL character")
            limit = MAX_LENGTHS.get(name)
            if limit is not None and len(value) > limit:
                raise Rejected(f"{name}: longer than {limit} characters")
            return value

        external_id = text("external_id")
        raw_email = text("email")
        email = check_email(raw_email) if raw_email else None
        if external_id is None and email is None:
            raise Rejected("external_id and email are both empty: give one of them to identify the contact")
        raw_phone = text("phone")
        phone = self._phone(raw_phone) if raw_phone else None
        locale = text("locale")
        if locale is not None:
            if not LOCALE.match(locale):
                raise Rejected(f"locale: '{locale}' is not a locale: write fr, en or fr-FR")
            locale = locale[:2].lower() + locale[2:]
        time_zone = text("time_zone")
        zone = self.zone
        if time_zone is not None:
            found = _zone(time_zone)
            if found is None:
                raise Rejected(f"time_zone: '{time_zone}' is not an IANA time zone such as Europe/Paris")
            zone = found
        raw_date = text("last_purchase_at")
        last_purchase_at = parse_date(raw_date, zone) if raw_date else None
        consents: dict[tuple[str, str], bool] = {}
        for (channel, purpose), index in self.columns.consents.items():
            value = fields[index].strip().lower()
            if not value:
                continue
            if value in TRUE:
                consents[(channel, purpose)] = True
            elif value in FALSE:
                consents[(channel, purpose)] = False
            else:
                raise Rejected(
                    f"consent_{channel}_{purpose}: '{fields[index].strip()}' is not yes or no "
                    "(accepted: yes/no, true/false, 1/0, oui/non; empty: unchanged)"
                )
        attributes: dict[str, str] = {}
        for name, index in self.columns.attributes.items():
            value = fields[index].strip()
            if value:
                if "\x00" in value:
                    raise Rejected(f"attr_{name}: contains a NUL character")
                attributes[name] = value
        return ContactRow(
            line=line,
            external_id=external_id,
            email=email,
            phone=phone,
            first_name=text("first_name"),
            last_name=text("last_name"),
            locale=locale,
            time_zone=time_zone,
            last_purchase_at=last_purchase_at,
            consents=consents,
            attributes=attributes,
        )

    def _phone(self, value: str) -> str:
        try:
            number = phonenumbers.parse(value, self.region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise Rejected(
                f"phone: '{value}' is not a valid phone number: write it as +33612345678 "
                f"(or as a national number of {self.region}, the default region)"
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
