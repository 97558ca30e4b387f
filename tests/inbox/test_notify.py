"""Wake-ups over LISTEN/NOTIFY: the intake's coalesced NOTIFYs and a worker's listening connection.

Each test uses a channel of its own: channels are per database, and other test sessions may be
notifying on the service's channel in the same database meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from app.inbox import notify
from app.inbox.notify import Notifier

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
def channel() -> str:
    return f"test_{secrets.token_hex(5)}"


@pytest.fixture
async def received(postgres_url: str, channel: str) -> AsyncIterator[list[str]]:
    """The notifications on ``channel``, as another process's worker would receive them."""
    notifications: list[str] = []
    connection = await notify.connect(postgres_url)
    await connection.add_listener(channel, lambda _c, _pid, name, _payload: notifications.append(name))
    yield notifications
    await connection.close()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_pokes_are_coalesced_into_one_notify_in_flight_and_one_after_it(
    postgres_url: str, channel: str, received: list[str]
) -> None:
    notifier = Notifier(postgres_url, channel)
    try:
        # A burst before the NOTIFY starts: the one NOTIFY follows every event of the burst.
        for _ in range(100):
            notifier.poke()
        await eventually(lambda: len(received) == 1)
        await asyncio.sleep(0.3)
        assert len(received) == 1
        # A burst while a NOTIFY is in flight: those events may not have been visible to the worker
        # it woke, so exactly one more follows.
        notifier.poke()
        await asyncio.sleep(0)  # the NOTIFY is now on its way
        for _ in range(100):
            notifier.poke()
        await eventually(lambda: len(received) == 3)
        await asyncio.sleep(0.3)
        assert len(received) == 3
        # Idle again: one event, one NOTIFY at once.
        notifier.poke()
        await eventually(lambda: len(received) == 4)
    finally:
        await notifier.close()
    assert set(received) == {channel}


async def test_a_notifier_without_its_database_never_fails_the_caller_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier = Notifier("postgresql://nobody@127.0.0.1:1/nothing")
    with caplog.at_level(logging.INFO, logger="app.inbox.notify"):
        for _ in range(3):
            notifier.poke()
            await asyncio.sleep(0.2)
        await notifier.close()
    assert [record.message for record in caplog.records] == ["inbox.notify_failed"]


async def test_a_listening_worker_is_woken_and_listens_again_after_losing_its_connection(
    postgres_url: str, channel: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(notify, "RETRY_SECONDS", 0.1)
    wakes = 0

    def wake() -> None:
        nonlocal wakes
        wakes += 1

    sender = await notify.connect(postgres_url)
    listening = asyncio.create_task(notify.listen(postgres_url, wake, channel))
    try:
        with caplog.at_level(logging.INFO, logger="app.inbox.notify"):
            await eventually(lambda: wakes == 1)  # listening started: look once for what is stored
            await sender.execute(f'NOTIFY "{channel}"')
            await eventually(lambda: wakes == 2)
            # The server ends the listening connection (a restart, an administrator).
            ended = await sender.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1",
                f'LISTEN "{channel}"',
            )
            assert ended == 1
            await eventually(lambda: wakes == 3)  # listening again
            await sender.execute(f'NOTIFY "{channel}"')
            await eventually(lambda: wakes == 4)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await sender.close()
    assert [record.message for record in caplog.records] == [
        "inbox.listening",
        "inbox.listen_failed",
        "inbox.listen_restored",
        "inbox.listening",
    ]
    # Cancelled, it closed its connection.
    async with asyncio.timeout(5):
        while await _listeners(postgres_url, channel):
            await asyncio.sleep(0.05)


async def _listeners(database_url: str, channel: str) -> int:
    connection: asyncpg.Connection = await notify.connect(database_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query = $1", f'LISTEN "{channel}"'
        )
    finally:
        await connection.close()
    return count
