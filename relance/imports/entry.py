"""C-02: new contacts of an import enter the default scenario, through the normal event ingestion.

When ``RELANCE_IMPORT_EVENT`` is set, each new contact gets one event of that type, with
the id ``import:<file sha256 prefix>:<key>``: running the same file again never sends it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.service import RPCError

from relance.imports.errors import SetupError
from relance.imports.run import Committed
from relance.imports.store import NewContact
from relance.models.event import ContactIn, EventIn
from relance.scenarios.loader import ScenarioError
from relance.starter.facade import Relance

CONCURRENCY = 16  # events in flight at once: each one is a database transaction and a Temporal call
CHUNK = 1000


def event_id(sha256: str, key: str) -> str:
    event = f"import:{sha256[:16]}:{key}"
    if len(event) > 200:  # the event id limit; very long keys are hashed
        event = f"import:{sha256[:16]}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"
    return event


async def check_ready(relance: Relance, event_type: str) -> None:
    """Before anything is written: Temporal answers and a scenario listens to the event type."""
    try:
        await relance.client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(seconds=10)
        )
    except RPCError as error:
        raise SetupError(
            f"RELANCE_IMPORT_EVENT is '{event_type}' but Temporal does not answer "
            f"({error.status.name}: {error.message}); start it (or check RELANCE_TEMPORAL_ADDRESS), "
            "or unset RELANCE_IMPORT_EVENT to import without the default scenario. Nothing was imported."
        ) from None
    try:
        known = relance.ingestor.scenarios().known_event_types()
    except ScenarioError as error:
        raise SetupError(f"the scenario files are invalid, fix them first: {error}") from None
    if event_type not in known:
        raise SetupError(
            f"RELANCE_IMPORT_EVENT is '{event_type}' but no scenario declares that event "
            f"(known: {', '.join(sorted(known)) or 'none'}); add a journey triggered by it, or change "
            "the setting. Nothing was imported."
        )


def entry_sender(relance: Relance, event_type: str, sha256: str) -> Committed:
    """A hook for ``import_csv``: one event per new contact, after their batch is committed."""

    async def send(new: list[NewContact]) -> None:
        occurred_at = datetime.now(UTC)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(contact: NewContact) -> None:
            async with gate:
                await relance.send_event(
                    EventIn(
                        id=event_id(sha256, contact.key),
                        type=event_type,
                        contact=ContactIn(external_id=contact.external_id),
                        occurred_at=occurred_at,
                        properties={"source": "import"},
                    )
                )

        for start in range(0, len(new), CHUNK):
            await asyncio.gather(*(one(c) for c in new[start : start + CHUNK]))

    return send
