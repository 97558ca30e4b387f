"""A burst held back by the worker is claimed when its hold is over, even when a timer fires early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import session_factory
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, ordering_key, record
from app.inbox.writer import open_writer
from app.integrations.registry import UpstreamRegistry
from app.sync.engine import SyncEngine
from app.worker import Worker

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def update(event_id: str) -> IncomingEvent:
    return IncomingEvent(
        source=Source.RANKR,
        event_id=event_id,
        type="contact.updated",
        account_key="acct",
        ordering_key=ordering_key(Source.RANKR, "acct", "contact", "c1"),
        payload={"id": event_id},
    )


async def test_a_claim_that_came_a_moment_early_does_not_leave_the_held_burst_to_the_next_poll(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = Settings(database_url=database_url, worker_poll_seconds=30, coalesce_quiet_seconds=0.15)
    now = [NOW + 20 * MS]
    registry = UpstreamRegistry(settings, lambda: now[0], engine)
    sessions = session_factory(engine)
    sync = SyncEngine(sessions, settings, registry.for_connection, clock=lambda: now[0])
    worker = Worker(sessions, sync, settings, registry, clock=lambda: now[0], listen=False)
    writer = await open_writer(database_url)
    try:
        await record(writer, update("e1"), NOW)
        await record(writer, update("e2"), NOW + 10 * MS)
    finally:
        await writer.close()

    # The second update came 10 ms after the first: the burst is held until 150 ms after it.
    assert await worker._claim(10) == []
    assert worker._idle_seconds() == pytest.approx(0.14, abs=0.001)
    # The timer fires a moment early: nothing is due yet.
    now[0] = NOW + 159 * MS
    assert await worker._claim(10) == []
    # By the time the worker looks how long to wait, the hold is over: it must look again at once,
    # not wait for its next poll (30 s here).
    now[0] = NOW + 161 * MS
    assert worker._idle_seconds() <= 0.001
    [(head, _)] = await worker._claim(10)
    assert head.event_id == "e1"
