"""The inbox's SQL on both databases: insert-if-absent, per-record ordering, leases, SKIP LOCKED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, session_factory, unit_of_work
from app.inbox import repository
from app.inbox.models import EventStatus, Source, WebhookEvent
from app.inbox.service import IncomingEvent, ordering_key, record
from app.inbox.writer import InboxWriter, open_writer

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
async def writer(database_url: str) -> AsyncIterator[InboxWriter]:
    writer = await open_writer(database_url)
    yield writer
    await writer.close()


def event(event_id: str, record_id: str, account: str = "acct") -> IncomingEvent:
    return IncomingEvent(
        source=Source.RANKR,
        event_id=event_id,
        type="contact.updated",
        account_key=account,
        ordering_key=ordering_key(Source.RANKR, account, "contact", record_id),
        payload={"id": event_id},
    )


async def claim(
    sessions: async_sessionmaker[AsyncSession], worker: str, now: datetime = NOW, limit: int = 10
):
    async with unit_of_work(sessions) as session:
        return [
            e.event_id
            for e in await repository.claim_due(session, worker=worker, now=now, lease=LEASE, limit=limit)
        ]


async def settle(sessions: async_sessionmaker[AsyncSession], worker: str, event_id: str) -> None:
    async with unit_of_work(sessions) as session:
        row = (
            await session.execute(select(WebhookEvent).where(WebhookEvent.event_id == event_id))
        ).scalar_one()
        assert await repository.finish(session, [row.id], worker, EventStatus.DONE, NOW, None)


async def test_a_redelivery_stores_nothing_new(engine: AsyncEngine, writer: InboxWriter) -> None:
    assert await record(writer, event("e1", "c1"), NOW) is True
    assert await record(writer, event("e1", "c1"), NOW) is False
    async with session_factory(engine)() as session:
        assert len((await session.execute(select(WebhookEvent))).scalars().all()) == 1


async def test_the_writer_stores_what_the_orm_reads_back_unchanged(
    engine: AsyncEngine, writer: InboxWriter
) -> None:
    """The intake's writer encodes through the columns' own types: JSON with any text, and times in UTC."""
    payload = {"name": "Zoë 名前 \u2028", "nested": {"list": [1, 2.5, None, True]}, "quote": 'it\'s "x"'}
    received = datetime(2026, 11, 26, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    incoming = IncomingEvent(
        source=Source.GHL, event_id="w1", type="ContactCreate", account_key="loc",
        ordering_key=ordering_key(Source.GHL, "loc", "contact", "g1"), payload=payload,
    )  # fmt: skip
    assert await record(writer, incoming, received) is True
    async with session_factory(engine)() as session:
        row = (await session.execute(select(WebhookEvent))).scalar_one()
    assert row.payload == payload
    assert row.received_at == row.next_attempt_at == received
    assert row.received_at.tzinfo is not None
    assert (row.source, row.event_id, row.status, row.attempts) == ("ghl", "w1", "pending", 0)


async def test_events_of_one_record_are_claimed_one_at_a_time_in_order(
    engine: AsyncEngine, writer: InboxWriter
) -> None:
    for event_id, record_id in [("e1", "c1"), ("e2", "c1"), ("e3", "c2"), ("e4", "c1")]:
        await record(writer, event(event_id, record_id), NOW)
    sessions = session_factory(engine)
    assert await claim(sessions, "w1") == ["e1", "e3"]
    assert await claim(sessions, "w2") == []  # e2 waits for e1, e4 for e2
    await settle(sessions, "w1", "e1")
    assert await claim(sessions, "w2") == ["e2"]
    await settle(sessions, "w2", "e2")
    assert await claim(sessions, "w1") == ["e4"]


async def test_future_events_wait_and_expired_leases_are_taken_over(
    engine: AsyncEngine, writer: InboxWriter
) -> None:
    await record(writer, event("e1", "c1"), NOW)
    sessions = session_factory(engine)
    assert await claim(sessions, "w1", now=NOW - timedelta(seconds=1)) == []
    assert await claim(sessions, "w1") == ["e1"]
    assert await claim(sessions, "w2", now=NOW + LEASE - timedelta(seconds=1)) == []
    # w1 died holding the lease: after it expires another worker takes the event over ...
    assert await claim(sessions, "w2", now=NOW + LEASE + timedelta(seconds=1)) == ["e1"]
    # ... and w1, should it come back, can no longer settle it.
    async with unit_of_work(sessions) as session:
        row = (await session.execute(select(WebhookEvent))).scalar_one()
        assert row.attempts == 2
        assert not await repository.finish(session, [row.id], "w1", EventStatus.DONE, NOW, None)


async def test_a_deferral_does_not_count_as_an_attempt(engine: AsyncEngine, writer: InboxWriter) -> None:
    await record(writer, event("e1", "c1"), NOW)
    sessions = session_factory(engine)
    await claim(sessions, "w1")
    async with unit_of_work(sessions) as session:
        row = (await session.execute(select(WebhookEvent))).scalar_one()
        await repository.reschedule(
            session, row.id, "w1", status=EventStatus.PENDING, at=NOW, error=None, count_attempt=False
        )
    async with sessions() as session:
        row = (await session.execute(select(WebhookEvent))).scalar_one()
        assert (row.status, row.attempts, row.leased_by) == ("pending", 0, None)


async def test_backlogs_stored_one_after_the_other_are_claimed_side_by_side(
    engine: AsyncEngine, writer: InboxWriter
) -> None:
    # Two locations' imports, the first stored in full before the second, claimed as a worker does
    # (each claim's walk starts where the last one's ended): of the first 30 events claimed,
    # a third at least come from each, not all from the first (oldest first, all 30 did).
    await store_imports(writer, ("first", "second"), 30)
    sessions = session_factory(engine)
    sweep = repository.Sweep()
    claimed: list[str] = []
    for _ in range(15):
        async with unit_of_work(sessions) as session:
            batch = await repository.claim_due(
                session, worker="w1", now=NOW, lease=LEASE, limit=2, sweep=sweep
            )
        claimed += [e.account_key for e in batch]
    assert len(claimed) == 30
    assert claimed.count("first") >= 10
    assert claimed.count("second") >= 10


async def test_a_claim_takes_the_accounts_in_its_window_in_turn(
    engine: AsyncEngine, writer: InboxWriter
) -> None:
    await store_imports(writer, ("a", "b", "c"), 4)
    assert await claimed_once(engine, limit=6) == ["a0", "a1", "b0", "b1", "c0", "c1"]


async def test_a_claim_takes_no_more_of_an_account_than_its_budget_has_room_for(
    engine: AsyncEngine, writer: InboxWriter
) -> None:
    # Three imports stored one after the other; "a" may take 2 events, "b" none (spent), "c" any.
    await store_imports(writer, ("a", "b", "c"), 5)
    batch = await claimed_once(engine, limit=6, most_per_account={"a": 2, "b": 0})
    assert batch == ["a0", "a1", "c0", "c1", "c2", "c3"]


async def store_imports(writer: InboxWriter, accounts: tuple[str, ...], size: int) -> None:
    """Each account's import of ``size`` contacts, stored one account after the other."""
    for account in accounts:
        for number in range(size):
            await record(writer, event(f"{account}{number}", f"c{number}", account), NOW)


async def claimed_once(engine: AsyncEngine, **claim: Any) -> list[str]:
    """The event ids one claim by ``w1`` takes."""
    async with unit_of_work(session_factory(engine)) as session:
        batch = await repository.claim_due(session, worker="w1", now=NOW, lease=LEASE, **claim)
    return [e.event_id for e in batch]


async def test_a_claim_that_took_something_walks_at_most_its_windows(
    engine: AsyncEngine, writer: InboxWriter, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # One location's long backlog of which a claim may take one event, then another location's: the
    # first claim stops after its windows, and the next goes on from there, to the other location.
    monkeypatch.setattr(repository, "CLAIM_WINDOW", 2)
    repository._claim_window.cache_clear()  # built with the window's size
    request.addfinalizer(repository._claim_window.cache_clear)
    for number in range(2 * repository.CLAIM_WINDOWS + 2):
        await record(writer, event(f"a{number}", f"c{number}", "a"), NOW)
    await record(writer, event("b0", "c0", "b"), NOW)
    sweep = repository.Sweep()
    batches = [await claimed_once(engine, limit=4, most_per_account={"a": 1}, sweep=sweep) for _ in range(2)]
    assert batches == [["a0"], ["a10", "b0"]]


async def test_a_claim_from_any_start_takes_every_due_head(engine: AsyncEngine, writer: InboxWriter) -> None:
    for event_id, record_id in [("e1", "c1"), ("e2", "c2"), ("e3", "c1"), ("e4", "c3"), ("e5", "c4")]:
        await record(writer, event(event_id, record_id), NOW)
    sessions = session_factory(engine)
    async with sessions() as session:
        ids = (await session.execute(select(WebhookEvent.id).order_by(WebhookEvent.id))).scalars().all()
    for start in [0, *ids]:  # the walk starts anywhere among the five, and wraps around
        async with sessions() as session:
            batch = await repository.claim_due(
                session, worker="w1", now=NOW, lease=LEASE, limit=10, sweep=repository.Sweep(start)
            )
            assert [e.event_id for e in batch] == ["e1", "e2", "e4", "e5"]
            await session.rollback()


@pytest.mark.postgres
async def test_concurrent_claims_never_overlap_on_postgres(postgres_url: str) -> None:
    engine_a, engine_b = create_engine(postgres_url), create_engine(postgres_url)
    writer = await open_writer(postgres_url)
    try:
        for number in range(60):
            await record(writer, event(f"e{number}", f"c{number}"), NOW)
        claimed: dict[str, list[str]] = {"a": [], "b": []}

        async def drain(name: str, sessions: async_sessionmaker[AsyncSession]) -> None:
            while batch := await claim(sessions, name, limit=3):
                claimed[name].extend(batch)
                await asyncio.sleep(0)

        await asyncio.gather(drain("a", session_factory(engine_a)), drain("b", session_factory(engine_b)))
        assert not set(claimed["a"]) & set(claimed["b"])
        assert len(claimed["a"]) + len(claimed["b"]) == 60
        assert claimed["a"]
        assert claimed["b"]
    finally:
        await writer.close()
        await engine_a.dispose()
        await engine_b.dispose()
