"""The job row of a backfill or reconciliation: its lease (one process at a time runs a job of a
connection) and its checkpoint (phase, cursors and counts, committed with the work they describe).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.backfill import repository as repo
from app.backfill.models import SyncJob
from app.connections.models import Connection
from app.db import unit_of_work
from app.errors import JobBusy, JobLost
from app.kit.clock import Clock


class JobName(StrEnum):
    """A job of a connection (``sync_jobs.job``; also the staging and event-id namespace)."""

    BACKFILL = "backfill"
    DRY_RUN = "backfill-dry"
    RECONCILE = "reconcile"
    SWEEP = "sweep"  # the staging of reconciliation's full id listing (deletions)


class JobState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    DONE = "done"


class Phase(StrEnum):
    """Where a job is; a run started after a crash carries on from its phase."""

    NEW = "new"
    LIST = "list"
    # Checkpoints of versions that listed one side, then the other.
    LISTED_RANKR = "rankr"
    LISTED_GHL = "ghl"
    MATCH = "match"
    QUEUE = "queue"
    CHILDREN = "children"
    APPLY = "apply"
    CHANGES = "changes"
    SWEEP = "sweep"
    DONE = "done"


LISTING = (Phase.LIST, Phase.LISTED_RANKR, Phase.LISTED_GHL)

Progress = Callable[[str, dict[str, Any]], None]


def _owner() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{secrets.token_hex(3)}"


def no_progress(_phase: str, _counts: dict[str, Any]) -> None:
    return None


class JobLease:
    """One job's row, held by this process: take it, checkpoint it (renewing the lease), finish it."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        job: str,
        *,
        clock: Clock,
        lease: timedelta,
        progress: Progress | None = None,
    ) -> None:
        self._sessions = sessions
        self.job = job
        self._clock = clock
        # A process that dies holds the job this long, like a worker its events.
        self.lease = lease
        self._progress = progress or no_progress
        self._owner = _owner()
        self.row: SyncJob | None = None
        self.counts: dict[str, Any] = {}

    async def take(self, connection: Connection) -> SyncJob:
        """The job's row with its lease taken now: JobBusy when another process holds it."""
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            row = await repo.take_job(session, connection.id, self.job, self._owner, now, now + self.lease)
        if row is None:
            raise JobBusy(f"a {self.job} of connection {connection.id} is running in another process")
        self.row = row
        return row

    async def save(self, session: AsyncSession | None = None, **values: Any) -> None:
        """Checkpoint: phase, cursors, counts (and renew the lease), in ``session``'s transaction."""
        assert self.row is not None  # noqa: S101 - set by take
        now = self._clock()
        values = {"counts": dict(self.counts), "updated_at": now, "lease_until": now + self.lease, **values}
        if session is None:
            async with unit_of_work(self._sessions) as own:
                saved = await repo.save_job(own, self.row.id, self._owner, **values)
        else:
            saved = await repo.save_job(session, self.row.id, self._owner, **values)
        if not saved:
            raise JobLost(f"the {self.job} lease of connection {self.row.connection_id} was taken over")
        for name, value in values.items():
            setattr(self.row, name, value)
        self._progress(self.row.phase, self.counts)

    async def finish(self) -> None:
        await self.save(
            state=JobState.DONE, phase=Phase.DONE, error=None,
            finished_at=self._clock(), lease_owner=None, lease_until=None,
        )  # fmt: skip

    async def release(self, exc: BaseException) -> None:
        """Let go of the lease after a failure, recording why; the checkpoint stays for the next run."""
        await self.save(error=f"{type(exc).__name__}: {exc}"[:2000], lease_owner=None, lease_until=None)

    def count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    @property
    def phase(self) -> str:
        return self.row.phase if self.row is not None else Phase.NEW

    @property
    def cursor(self) -> dict[str, Any]:
        return dict(self.row.cursor) if self.row is not None else {}
