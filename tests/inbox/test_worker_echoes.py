"""Events that change nothing are settled in the claim itself, and the worker claims on past them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.connections import repository as connections
from app.db import session_factory, unit_of_work
from app.inbox.models import EventStatus, Source, WebhookEvent
from app.inbox.service import IncomingEvent, ordering_key, record
from app.inbox.writer import open_writer
from app.integrations.rankr.schemas import RankrContact
from app.integrations.registry import UpstreamRegistry
from app.sync.base import snapshot_values
from app.sync.contacts import UNCHANGED
from app.sync.engine import SyncEngine
from app.sync.models import Link, LinkState
from app.worker import Worker

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SYNCED_AT = NOW - timedelta(minutes=5)


def contact(number: int, first_name: str) -> dict[str, Any]:
    return {
        "contactId": f"c{number}",
        "email": f"c{number}@example.com",
        "firstName": first_name,
        "lastModified": SYNCED_AT.isoformat(),
    }


def updated(number: int, first_name: str) -> IncomingEvent:
    return IncomingEvent(
        source=Source.RANKR,
        event_id=f"e{number}",
        type="contact.updated",
        account_key="acct",
        ordering_key=ordering_key(Source.RANKR, "acct", "contact", f"c{number}"),
        payload={"type": "contact.updated", "accountId": "acct", "data": contact(number, first_name)},
    )


async def test_a_claim_of_echoes_only_settles_them_and_claims_again(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = Settings(database_url=database_url, worker_poll_seconds=30, coalesce_quiet_seconds=0)
    registry = UpstreamRegistry(settings, lambda: NOW, engine)
    sessions = session_factory(engine)
    sync = SyncEngine(sessions, settings, registry.for_connection, clock=lambda: NOW)
    worker = Worker(sessions, sync, settings, registry, clock=lambda: NOW, listen=False)
    async with unit_of_work(sessions) as session:
        connection = await connections.ensure(session, "acct", "loc", NOW)
    async with unit_of_work(sessions) as session:
        for number in range(4):
            body = RankrContact.model_validate(contact(number, "Ada"))
            shown = sync.contacts.from_rankr(body, current=False)
            session.add(
                Link(
                    connection_id=connection.id, kind="contact", state=LinkState.LINKED,
                    rankr_id=f"c{number}", ghl_id=f"g{number}", rankr_modified_at=SYNCED_AT,
                    created_at=SYNCED_AT, updated_at=SYNCED_AT, **snapshot_values(shown.fields),
                )
            )  # fmt: skip
    writer = await open_writer(database_url)
    try:
        # Three echoes of what was synced, then a real change: the first claim (two events) holds
        # echoes only, which must not read as "nothing due".
        for number in range(3):
            await record(writer, updated(number, "Ada"), NOW - timedelta(seconds=10 - number))
        await record(writer, updated(3, "Grace"), NOW - timedelta(seconds=5))
    finally:
        await writer.close()

    claimed = await worker._claim(2)

    assert [head.event_id for head, _ in claimed] == ["e3"]
    async with sessions() as session:
        rows = (await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars().all()
    assert [(row.event_id, row.status, row.last_error) for row in rows] == [
        ("e0", EventStatus.DONE, UNCHANGED),
        ("e1", EventStatus.DONE, UNCHANGED),
        ("e2", EventStatus.DONE, UNCHANGED),
        ("e3", EventStatus.PROCESSING, None),
    ]
