"""What every sync handler shares: the job, the upstream clients, leases, and the one final commit.

A handler applies one stored event. It reads the link, takes the link's lease (so no other worker
works on the same pair of records at the same time, whichever side its event came from), calls the
upstream APIs, and then commits everything it learned in ONE transaction: the link's new state, the
audit entries of its writes, and the event marked done. A crash before that commit leaves the event
to be claimed again, and the writes it repeats are idempotent (they set the same values again).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import Connection
from app.db import unit_of_work
from app.errors import Deferred, TransientUpstreamError, UpstreamError
from app.inbox import repository as inbox
from app.inbox.models import EventStatus
from app.integrations.registry import Upstreams
from app.kit.clock import Clock
from app.sync import repository as links
from app.sync.models import Direction, Link

__all__ = ["Handler", "Job", "LeaseLost", "Settlement", "Side", "Upstreams"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Side(StrEnum):
    RANKR = "rankr"
    GHL = "ghl"

    @property
    def other(self) -> Side:
        return Side.GHL if self is Side.RANKR else Side.RANKR

    @property
    def inbound(self) -> Direction:
        """The direction of a write that lands on this side."""
        return Direction.TO_GHL if self is Side.GHL else Direction.TO_RANKR


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed event, as the handler sees it.

    ``type`` and ``payload`` are the newest state of the record among the claimed event and the
    events queued behind it (``superseded``), which are settled together with it.
    """

    event_id: int
    source: Side
    type: str
    account_key: str
    payload: dict[str, Any]
    worker: str
    superseded: tuple[int, ...] = ()

    @property
    def holder(self) -> str:
        """Who holds a link's lease: this very job, not just its worker (which runs several at once)."""
        return f"{self.worker}/{self.event_id}"


@dataclass
class Settlement:
    """Everything one event changes in the database, committed together with the event's status."""

    note: str | None = None
    link_id: int | None = None
    link_values: dict[str, Any] | None = None
    audits: list[dict[str, Any]] = field(default_factory=list)
    synced: set[Direction] = field(default_factory=set)


class LeaseLost(TransientUpstreamError):
    """The link's lease expired while the handler worked; the event runs again."""

    def __init__(self) -> None:
        super().__init__("sync", "the link's lease expired before the result was saved")


class Handler:
    """Base of the record handlers: leases, audited upstream writes and the final commit."""

    kind: str  # the record kind the handler syncs (``contact``, ...)

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock, lease: timedelta) -> None:
        self._sessions = sessions
        self._clock = clock
        self._lease = lease

    async def acquire(self, job: Job, link: Link) -> Link:
        """Take the link's lease and return the link as it is now, or defer while another job holds it.

        The link must be read again once the lease is ours: the copy read before may predate the
        work of the job that held the lease until now, and diffing against its old snapshot would
        write stale values back.
        """
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            taken = await links.acquire_lease(session, link.id, job.holder, now, now + self._lease)
            current = await links.get(session, link.id) if taken else None
        if current is None:
            raise Deferred(f"link {link.id} is being synced by another worker")
        return current

    async def release(self, job: Job, link_id: int) -> None:
        async with unit_of_work(self._sessions) as session:
            await links.release_lease(session, link_id, job.holder)

    async def write(
        self,
        job: Job,
        connection: Connection,
        link: Link | None,
        side: Side,
        action: str,
        changes: dict[str, Any],
        call: Awaitable[T],
    ) -> T:
        """Run one upstream write; a failed one is audited at once (the event's commit will not happen)."""
        try:
            return await call
        except UpstreamError as exc:
            async with unit_of_work(self._sessions) as session:
                links.add_audit(
                    session,
                    at=self._clock(),
                    connection_id=connection.id,
                    event_id=job.event_id,
                    link_id=link.id if link else None,
                    kind=self.kind,
                    rankr_id=link.rankr_id if link else None,
                    ghl_id=link.ghl_id if link else None,
                    direction=side.inbound,
                    action=action,
                    changes=changes,
                    result="error",
                    detail=str(exc)[:1000],
                )
            raise

    async def settle(self, job: Job, connection: Connection, result: Settlement) -> None:
        """Commit the event's outcome atomically: link state, audit entries, event done."""
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            if result.link_id is not None and result.link_values is not None:
                values = {**result.link_values, "updated_at": now}
                if not await links.save(session, result.link_id, job.holder, values):
                    raise LeaseLost()
            for audit in result.audits:
                links.add_audit(
                    session,
                    at=now,
                    connection_id=connection.id,
                    event_id=job.event_id,
                    **{"result": "ok", **audit},
                )
            marks: dict[str, datetime] = {}
            if Direction.TO_GHL in result.synced:
                marks["last_synced_to_ghl_at"] = now
            if Direction.TO_RANKR in result.synced:
                marks["last_synced_to_rankr_at"] = now
            if marks:
                await session.execute(
                    update(Connection).where(Connection.id == connection.id).values(**marks)
                )
            if not await inbox.finish(session, job.event_id, job.worker, EventStatus.DONE, now, result.note):
                # Our claim on the event expired and another worker took it: let that one decide.
                raise LeaseLost()
            note = f"coalesced: applied with event {job.event_id}"
            await inbox.finish_waiting(session, job.superseded, EventStatus.DONE, now, note)
        log.info(
            "sync.event_applied",
            extra={"event": job.event_id, "coalesced": len(job.superseded), "note": result.note},
        )
