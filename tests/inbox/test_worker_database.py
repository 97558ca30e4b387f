"""The worker when its database is not there: a few lines for the whole wait, never one per poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from app.connections import repository as connections
from app.db import create_engine, session_factory, unit_of_work
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, ordering_key, record
from app.inbox.writer import open_writer
from app.integrations.registry import UpstreamRegistry
from app.sync.engine import SyncEngine
from app.worker import Worker
from tests.support.databases import PostgresSchema, migrate
from tests.support.proxy import TcpProxy, proxied

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLL = 0.01  # seconds: the worker tries (and fails) a hundred times a second


@asynccontextmanager
async def worker_on(database_url: str, **settings: float) -> AsyncIterator[Worker]:
    """A worker on ``database_url`` polling every ``POLL`` seconds, its task polls and pruning due
    every round, not listening for NOTIFY (the listener has a test of its own)."""
    config = Settings(
        database_url=database_url,
        worker_poll_seconds=POLL,
        task_poll_seconds=POLL,
        prune_interval_seconds=POLL,
        **settings,
    )
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    registry = UpstreamRegistry(config, lambda: NOW, engine)
    sync = SyncEngine(sessions, config, registry.for_connection, clock=lambda: NOW)
    try:
        yield Worker(sessions, sync, config, registry, clock=lambda: NOW, listen=False)
    finally:
        await registry.aclose()
        await engine.dispose()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(POLL)


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name.startswith("app.")]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    empty = PostgresSchema(migrated=False)
    yield empty.url
    empty.drop()


async def test_a_worker_on_a_database_never_migrated_says_so_once_and_starts_when_it_is(
    unmigrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with worker_on(unmigrated_url) as worker:
        with caplog.at_level(logging.INFO, logger="app"):
            running = asyncio.create_task(worker.run())
            await until(lambda: worker._database.failures >= 30)
            await asyncio.to_thread(migrate, unmigrated_url)
            await until(lambda: not worker._database.failing)
            worker.stop()
            await running
    lines = logged(caplog)
    # SQLite creates the tables one by one: a claim may work before the last one is there.
    assert lines[:2] == ["worker.started", "worker.database_failed"]
    assert lines[-2:] == ["worker.database_restored", "worker.stopped"]
    assert len(lines) <= 6, lines
    assert set(lines[1:-1]) == {"worker.database_failed", "worker.database_restored"}
    failed, restored = caplog.records[1], caplog.records[2]
    assert "the database has no schema" in failed.__dict__["reason"]
    assert "run 'rankr-ghl-sync migrate' first" in failed.__dict__["reason"]
    assert restored.__dict__["failures"] >= 30
    no_tracebacks(caplog)


async def test_a_problem_reported_at_start_is_not_repeated_by_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with worker_on(f"sqlite:///{tmp_path / 'empty.db'}") as worker:
        worker.database_problem_reported("the database has no schema; run 'rankr-ghl-sync migrate' first")
        with caplog.at_level(logging.INFO, logger="app"):
            running = asyncio.create_task(worker.run())
            await until(lambda: worker._database.failures >= 30)
            worker.stop()
            await running
    assert logged(caplog) == ["worker.started", "worker.stopped"]


@pytest.fixture
async def through_proxy(postgres_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    url = make_url(postgres_url)
    with proxied((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        yield postgres_url.replace(f":{url.port}/", f":{proxy.port}/", 1), proxy


@pytest.mark.postgres
async def test_a_database_that_goes_away_and_comes_back_is_two_lines(
    through_proxy: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    database_url, proxy = through_proxy
    async with worker_on(database_url) as worker:
        with caplog.at_level(logging.INFO, logger="app"):
            running = asyncio.create_task(worker.run())
            await asyncio.sleep(5 * POLL)  # a few good rounds first
            assert not worker._database.failing
            proxy.cut()
            await until(lambda: worker._database.failures >= 30)
            proxy.restore()
            await until(lambda: not worker._database.failing)
            worker.stop()
            await running
    assert logged(caplog) == [
        "worker.started",
        "worker.database_failed",
        "worker.database_restored",
        "worker.stopped",
    ]
    reason = caplog.records[1].__dict__["reason"]
    assert f"the database at 127.0.0.1:{proxy.port}" in reason, reason
    no_tracebacks(caplog)


def created(number: int) -> IncomingEvent:
    return IncomingEvent(
        source=Source.RANKR,
        event_id=f"e{number}",
        type="contact.created",
        account_key="acct_1",
        ordering_key=ordering_key(Source.RANKR, "acct_1", "contact", f"c{number}"),
        payload={
            "type": "contact.created",
            "accountId": "acct_1",
            "data": {"contactId": f"c{number}", "firstName": "Ada", "lastModified": NOW.isoformat()},
        },
    )


@pytest.mark.postgres
async def test_events_in_hand_when_the_database_goes_away_are_one_line_for_all(
    through_proxy: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    database_url, proxy = through_proxy
    writer = await open_writer(database_url)
    try:
        for number in range(8):
            await record(writer, created(number), NOW)
    finally:
        await writer.close()
    # A budget that lets a claim take all eight again.
    async with worker_on(database_url, coalesce_quiet_seconds=0, ghl_rate_limit=10**6) as worker:
        async with unit_of_work(worker._sessions) as session:
            await connections.ensure(session, "acct_1", "loc_1", NOW)
        claimed = await worker._claim(8)
        assert len(claimed) == 8
        proxy.cut()
        with caplog.at_level(logging.INFO, logger="app"):
            await asyncio.gather(*(worker._process(event, job) for event, job in claimed))
        assert logged(caplog) == ["worker.database_failed"]
        assert "the database at 127.0.0.1" in caplog.records[0].__dict__["reason"]
        assert worker._database.failures == 16, worker._database.failures  # each: its work, then its retry
        no_tracebacks(caplog)
        # Back: the first claim puts the eight back and takes them again, leases or not, and the
        # outage cost them no attempt.
        proxy.restore()
        again = await worker._claim(8)
    assert sorted(event.event_id for event, _ in again) == [f"e{number}" for number in range(8)]
    assert {event.attempts for event, _ in again} == {1}
