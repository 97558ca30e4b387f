"""An event that can never be applied goes dead on its first attempt, with a note that quotes no data.

Such events are refused at the intake now; these are stored directly, as one that got through (or
was stored before the intake knew better) would be.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.connections import repository as connections
from app.db import create_engine, session_factory, unit_of_work
from app.db_problems import cannot_store, describe_error
from app.inbox.models import EventStatus, Source, WebhookEvent
from app.inbox.service import IncomingEvent, ordering_key, record
from app.inbox.writer import open_writer
from app.integrations.registry import UpstreamRegistry
from app.sync.engine import SyncEngine
from app.worker import Worker, cannot_apply

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LONG_EMAIL = "secret.local.part." + "x" * 320 + "@example.com"


async def test_a_value_postgres_cannot_store_kills_the_event_at_once_without_quoting_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(database_url=postgres_url, sandbox=True, _env_file=None)  # type: ignore[call-arg]
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    registry = UpstreamRegistry(settings, lambda: NOW, engine)
    worker = Worker(
        sessions,
        SyncEngine(sessions, settings, registry.for_connection, clock=lambda: NOW),
        settings,
        registry,
        clock=lambda: NOW,
        listen=False,
    )
    async with unit_of_work(sessions) as session:
        await connections.ensure(session, "acct", "loc", NOW)
    writer = await open_writer(postgres_url)
    data = {"contactId": "c1", "email": LONG_EMAIL, "lastModified": "2026-11-26T11:00:00Z"}
    event = IncomingEvent(
        source=Source.RANKR,
        event_id="poison",
        type="contact.created",
        account_key="acct",
        ordering_key=ordering_key(Source.RANKR, "acct", "contact", "c1"),
        payload={"type": "contact.created", "accountId": "acct", "data": data},
    )
    try:
        await record(writer, event, NOW)
        with caplog.at_level(logging.DEBUG, logger="app"):
            await worker.run_until_idle()
        async with sessions() as session:
            stored = (await session.execute(select(WebhookEvent))).scalar_one()
    finally:
        await writer.close()
        await registry.aclose()
        await engine.dispose()
    assert (stored.status, stored.attempts) == (EventStatus.DEAD, 1)
    assert stored.last_error is not None
    assert stored.last_error.startswith("the event cannot be applied: database error")
    assert "SQLSTATE 22001" in stored.last_error
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert "secret.local.part" not in logged
    assert "secret.local.part" not in stored.last_error


async def test_database_errors_are_described_without_the_values_they_refused(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            with pytest.raises(DBAPIError) as refused:
                await connection.execute(
                    text(
                        "INSERT INTO connections (name, rankr_account_id, ghl_location_id, status,"
                        " created_at, updated_at) VALUES (:name, 'a', 'l', 'active', now(), now())"
                    ),
                    {"name": "private-value-" + "y" * 300},
                )
    finally:
        await engine.dispose()
    assert cannot_store(refused.value)
    assert cannot_apply(refused.value)
    assert "private-value" not in str(refused.value)  # hide_parameters
    assert describe_error(refused.value) == ("database error StringDataRightTruncationError (SQLSTATE 22001)")


async def test_an_unreachable_database_is_not_a_poison_event() -> None:
    engine = create_engine("postgresql://root@127.0.0.1:1/test")
    try:
        with pytest.raises(OSError, match="Connect call failed") as away:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    assert not cannot_apply(away.value)


@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        OverflowError("date value out of range"),
    ],
)
def test_errors_the_same_work_reproduces_are_poison(error: Exception) -> None:
    assert cannot_apply(error)
    assert describe_error(error) == type(error).__name__
