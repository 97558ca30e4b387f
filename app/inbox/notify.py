"""Wake-ups across processes on Postgres: ``serve`` NOTIFYs after storing events, workers LISTEN.

Without them a separate ``rankr-ghl-sync worker`` finds a new event only at its next poll
(``WORKER_POLL_SECONDS``). Both sides are best effort and each holds one dedicated asyncpg
connection: a NOTIFY that is lost, or a worker that is not listening, only means the event is found
by polling, which goes on as before. The notification carries no payload; it only says "look now".

The intake must not pay a round trip per request for this, so ``Notifier`` coalesces: at most one
NOTIFY is in flight, and pokes that arrive meanwhile cause one more when it is done (an event
committed while a NOTIFY was on its way may not have been visible to the worker it woke), but not
sooner than ``MIN_INTERVAL_SECONDS`` after it. Idle, each event gets its NOTIFY at once; under load,
fewer than 100 a second whatever the request rate (rather than one per round trip, several hundred
a second here: each NOTIFY is a transaction of its own, which takes a database-wide lock at commit).

A channel is per database, not per schema: workers of other schemas in the same database (tests)
may be woken too, and then simply find nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from app.db import asyncpg_arguments
from app.db_problems import database_streak
from app.kit.loop import cancel_and_wait
from app.kit.streak import FailureStreak

log = logging.getLogger(__name__)

CHANNEL = "rankr_ghl_sync_inbox"
CONNECT_SECONDS = 5.0
CLOSE_SECONDS = 2.0
MIN_INTERVAL_SECONDS = 0.01
# How long a worker polls only, after its listening connection failed, before listening again.
RETRY_SECONDS = 5.0
# How often a listening connection is checked: a peer that vanished without closing the socket
# (a failover, a NAT timeout) would otherwise leave the worker listening to nothing.
CHECK_SECONDS = 60.0


async def connect(database_url: str) -> asyncpg.Connection:
    connection: asyncpg.Connection = await asyncpg.connect(
        **asyncpg_arguments(database_url), timeout=CONNECT_SECONDS
    )
    return connection


async def close(connection: asyncpg.Connection) -> None:
    # close() aborts the connection itself when the server does not answer in time.
    with contextlib.suppress(Exception):
        await connection.close(timeout=CLOSE_SECONDS)


class Notifier:
    """Sends ``NOTIFY`` on the channel after events are stored, coalesced (see the module docstring).

    ``poke()`` is synchronous and cheap; the NOTIFY runs in a task on a connection of its own,
    opened on first use and again after a failure. Failures never reach the caller.
    """

    def __init__(self, database_url: str, channel: str = CHANNEL) -> None:
        self._database_url = database_url
        self._statement = f'NOTIFY "{channel}"'
        self._connection: asyncpg.Connection | None = None
        self._sending: asyncio.Task[None] | None = None
        self._again = False
        self._outage = database_streak(log, "inbox.notify", database_url)

    def poke(self) -> None:
        """Say that an event was stored (committed)."""
        if self._sending is None:
            self._sending = asyncio.create_task(self._send(), name="inbox-notify")
        else:
            self._again = True

    async def close(self) -> None:
        """Let the NOTIFY in flight finish (briefly), then close the connection."""
        if self._sending is not None:
            sending = self._sending
            await asyncio.wait([sending], timeout=CLOSE_SECONDS)
            await cancel_and_wait(sending)
        if self._connection is not None:
            await close(self._connection)
            self._connection = None

    async def _send(self) -> None:
        try:
            while True:
                self._again = False
                if not await self._notify():
                    return
                await asyncio.sleep(MIN_INTERVAL_SECONDS)
                if not self._again:
                    return
        finally:
            self._sending = None

    async def _notify(self) -> bool:
        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await connect(self._database_url)
                # Not waiting for the WAL flush: a NOTIFY lost in a crash costs a worker one poll.
                await self._connection.execute("SET synchronous_commit = off")
            await self._connection.execute(self._statement)
        except Exception as error:
            # Dropped rather than retried: the workers poll, and the next stored event reconnects.
            self._outage.failed(error)
            if self._connection is not None:
                await close(self._connection)
                self._connection = None
            return False
        self._outage.succeeded()
        return True


async def listen(database_url: str, wake: Callable[[], None], channel: str = CHANNEL) -> None:
    """Call ``wake`` on every notification on the channel, until cancelled.

    When the connection cannot be opened or is lost, the worker goes on polling and listening is
    tried again ``RETRY_SECONDS`` later; ``wake`` is also called each time listening (re)starts, for
    the events stored while nobody listened.
    """
    outage = database_streak(log, "inbox.listen", database_url)
    while True:
        try:
            await _listen_until_lost(database_url, wake, channel, outage)
            outage.failed(asyncpg.ConnectionDoesNotExistError("the listening connection was closed"))
        except Exception as error:
            outage.failed(error)
        await asyncio.sleep(RETRY_SECONDS)


async def _listen_until_lost(
    database_url: str, wake: Callable[[], None], channel: str, outage: FailureStreak
) -> None:
    connection = await connect(database_url)
    try:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(channel, lambda *_: wake())
        outage.succeeded()
        log.info("inbox.listening", extra={"channel": channel})
        wake()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=CHECK_SECONDS)
            if not lost.is_set():
                await connection.execute("SELECT 1", timeout=CONNECT_SECONDS)
    finally:
        await close(connection)
