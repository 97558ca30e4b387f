"""What backfill and reconciliation share: a job lease, a lister into staging, an event queue.

A run belongs to one connection and holds that connection's job lease (a ``sync_jobs`` row), so one
process at a time runs it; the row is also the checkpoint: after each page listed or each batch
decided, the cursors, the phase and the counts are committed together with the page's rows, and a
run started after a crash carries on from there. Records are listed into ``staged_contacts`` and
read back in batches, so memory stays flat however many contacts the sides hold.

Upstream reads go through the connection's ``GhlClient``/``RankrClient`` (their retries and rate
handling apply); writes are queued as inbox events for the worker (``queueing``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.automation.config import field_maps
from app.backfill import events
from app.backfill import repository as repo
from app.backfill.job import JobLease, JobName, JobState, Progress
from app.backfill.listing import Lister
from app.backfill.queueing import EventQueue
from app.config import Settings
from app.connections.models import Connection
from app.db import unit_of_work
from app.errors import JobLost
from app.integrations.registry import Upstreams
from app.kit.clock import Clock
from app.sync import repair

log = logging.getLogger(__name__)

BATCH = 100


async def backfill_unfinished(session: AsyncSession, connection_id: int) -> str | None:
    """Why a reconciliation of the connection must wait, or None: its backfill has not finished."""
    backfill = await repo.get_job(session, connection_id, JobName.BACKFILL)
    if backfill is not None and backfill.state == JobState.RUNNING:
        return f"the backfill of connection {connection_id} has not finished; reconciliation waits for it"
    return None


class SyncRun:
    """A backfill or reconciliation of one connection."""

    job: str

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        upstreams: Callable[[Connection], Upstreams],
        *,
        clock: Clock,
        progress: Progress | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        """``on_queued``: called once a batch of queued events is committed, to wake the workers
        (the intake's ``on_stored``, or the worker of the command's own process)."""
        self._sessions = sessions
        self._settings = settings
        self._upstreams = upstreams
        self._clock = clock
        self._maps = field_maps(settings)
        lease = timedelta(seconds=settings.worker_lease_seconds)
        self.lease = JobLease(sessions, self.job, clock=clock, lease=lease, progress=progress)
        self.lister = Lister(sessions, settings, self.lease, self._maps)
        self.queue = EventQueue(sessions, settings, self.lease, clock=clock, on_queued=on_queued)

    @property
    def counts(self) -> dict[str, Any]:
        return self.lease.counts

    async def run(self, connection: Connection) -> dict[str, Any]:
        """Run (or resume) the job for one connection; its counts."""
        raise NotImplementedError

    async def claim(self, connection: Connection) -> None:
        """Take the job's lease now (``run`` keeps it): JobBusy when another process holds it."""
        await self.lease.take(connection)

    async def _survey_children(self, connection: Connection) -> None:
        """Queue a survey of every linked contact's tasks and notes (``repair.ChildRepair``), a batch
        at a time within SYNC_MAX_IN_FLIGHT; the cursor ``surveyed`` (a link id) is the checkpoint,
        and a survey queued again after a crash stores nothing new (its id is deterministic)."""
        run = str(self.lease.cursor.get("run", "0"))
        prefix = events.prefix(self.job, connection)
        after = int(self.lease.cursor.get("surveyed", 0))
        while True:
            async with unit_of_work(self._sessions) as session:
                batch = await repo.linked_contacts(session, connection.id, after, BATCH)
                if not batch:
                    return
                for link in batch:
                    await self.queue.put(session, repair.survey(self.job, run, prefix, connection, link))
                after = batch[-1].id
                await self.lease.save(session, cursor={**self.lease.cursor, "surveyed": after})
            await self.queue.wait_for_room(connection)

    async def _released_after(self, exc: BaseException) -> None:
        """A run stopped by ``exc`` leaves its checkpoint for the next run to resume from and records
        why it stopped; one whose lease was lost (``JobLost``) leaves both to the lease's new holder."""
        if isinstance(exc, JobLost):
            return
        try:
            await self.lease.release(exc)
        except Exception:  # the database itself may be what failed; the lease then expires on its own
            log.exception("sync_run.checkpoint_failed", extra={"job": self.job})
