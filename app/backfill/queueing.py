"""Handing a job's writes to the worker: synthetic inbox events, at most SYNC_MAX_IN_FLIGHT open at
a time, so webhook-driven events never wait behind more than that many; then waiting for them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.backfill import events
from app.backfill import repository as repo
from app.backfill.job import JobLease
from app.config import Settings
from app.connections.models import Connection
from app.inbox.models import EventStatus
from app.inbox.service import IncomingEvent
from app.kit.clock import Clock

POLL_SECONDS = 0.2
TAIL_POLL_SECONDS = 0.02  # per event still open, while draining

T = TypeVar("T")


class EventQueue:
    """The events one job queues for one connection (their ids share ``events.prefix``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        lease: JobLease,
        *,
        clock: Clock,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        """``on_queued``: called once a batch of queued events is committed, to wake the workers
        (the intake's ``on_stored``, or the worker of the command's own process)."""
        self._sessions = sessions
        self._settings = settings
        self._lease = lease
        self._clock = clock
        self._on_queued = on_queued or (lambda: None)

    async def put(self, session: AsyncSession, event: IncomingEvent) -> int | None:
        """Store one event in ``session``'s transaction: its row id (None: stored before)."""
        return (await repo.enqueue(session, [event], self._clock())).get(event.event_id)

    async def wait_for_room(self, connection: Connection) -> None:
        """After a batch was queued: wake the workers (so they take it now rather than at their next
        poll), then wait until fewer than SYNC_MAX_IN_FLIGHT of this job's events are open."""
        self._on_queued()
        limit = self._settings.sync_max_in_flight
        while True:
            async with self._sessions() as session:
                waiting = await repo.open_events(session, events.prefix(self._lease.job, connection))
            if waiting < limit:
                return
            await self._lease.save()  # keeps the lease while the worker catches up
            await asyncio.sleep(POLL_SECONDS)

    async def drain(self, connection: Connection) -> None:
        """Wait until every event this job queued was applied (or went dead)."""
        while True:
            async with self._sessions() as session:
                waiting = await repo.open_events(session, events.prefix(self._lease.job, connection))
            await self.count(connection)
            if waiting == 0:
                return
            await self._lease.save()
            # The last few are applied within a few slots of the budget: look sooner for them.
            await asyncio.sleep(min(POLL_SECONDS, waiting * TAIL_POLL_SECONDS))

    async def count(self, connection: Connection) -> None:
        """The job's counts of its events: queued, applied, failed, and those of tasks and notes."""
        prefix = events.prefix(self._lease.job, connection)
        async with self._sessions() as session:
            by_type = await repo.events_by_type(session, prefix)
        statuses: dict[str, int] = {}
        for (_, _, status), count in by_type.items():
            statuses[status] = statuses.get(status, 0) + count
        counts = self._lease.counts
        counts["queued"] = sum(statuses.values())
        counts["applied"] = statuses.get(EventStatus.DONE, 0) + statuses.get(EventStatus.SKIPPED, 0)
        counts["failed"] = statuses.get(EventStatus.DEAD, 0)
        run = self._lease.cursor.get("run")
        if run is not None:  # what this run did to tasks and notes (not earlier runs)
            async with self._sessions() as session:
                counts.update(events.child_counts(await repo.events_by_type(session, f"{prefix}{run}:")))


def mixed(streams: Sequence[Sequence[T]]) -> list[T]:
    """The items of several streams in one list, each stream's spread evenly over it (in order)."""
    placed = [
        ((index + 0.5) / len(stream), order, index, item)
        for order, stream in enumerate(streams)
        for index, item in enumerate(stream)
    ]
    return [item for *_, item in sorted(placed, key=lambda entry: entry[:3])]
