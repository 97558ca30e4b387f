"""What every sync handler shares: the job, the upstream clients, leases, and the one final commit.

A handler applies one stored event. It reads the link, takes the link's lease (so no other worker
works on the same pair of records at the same time, whichever side its event came from), calls the
upstream APIs, and then commits everything it learned in ONE transaction: the link's new state, the
audit entries of its writes, and the event marked done. A crash before that commit leaves the event
to be claimed again, and the writes it repeats are idempotent (they set the same values again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, Literal, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import Connection
from app.db import autocommit, unit_of_work
from app.errors import (
    Deferred,
    LeaseLost,
    LinkConflictError,
    MappingError,
    PermanentUpstreamError,
    UpstreamError,
)
from app.inbox import repository as inbox
from app.inbox.models import EventStatus
from app.integrations.registry import Upstreams
from app.kit.clock import Clock
from app.sync import mapping
from app.sync import repository as links
from app.sync.mapping import Canonical
from app.sync.models import Audit, Direction, Link, LinkState

__all__ = [
    "Audit",
    "EventContext",
    "Handler",
    "Job",
    "LeaseLost",
    "Observed",
    "Settlement",
    "Side",
    "Upstreams",
    "modified_column",
    "newest",
    "not_newer",
    "snapshot_values",
]

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


ENDED = (LinkState.DELETED, LinkState.UNLINKED)


def modified_column(side: Side) -> str:
    """The link column holding the newest modification time seen on ``side``."""
    return f"{side.value}_modified_at"


def newest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def not_newer(seen: datetime | None, newest: datetime | None) -> bool:
    return seen is not None and newest is not None and seen <= newest


def snapshot_values(fields: Canonical) -> dict[str, Any]:
    """The link columns that record ``fields`` as what both sides hold."""
    email, phone = mapping.match_keys(fields)
    return {
        "snapshot": fields,
        "synced_hash": mapping.fingerprint(fields),
        "match_email": email,
        "match_phone": phone,
    }


@dataclass(frozen=True, slots=True)
class Observed:
    """A record as its side showed it: id, modification time, canonical fields.

    ``current``: just read from the API (the newest state there is), not from an event body (which
    may have been overtaken since). ``complete``: every mapped field is known (an event body may
    leave some out). Tasks and notes also name their contact (``contact_id``, the side's id) and,
    for notes, the author.
    """

    side: Side
    record_id: str
    modified_at: datetime | None
    fields: Canonical
    current: bool
    contact_id: str | None = None
    complete: bool = True
    author: str | None = None
    source: str | None = None  # GHL contacts: where the contact came from (``source``)


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
    ref: str | None = None  # the event's id as its source named it (webhook-id, webhookId)
    superseded: tuple[int, ...] = ()
    # The connection the event routes to, as found when it was claimed (None: there is none).
    connection: Connection | None = None

    @property
    def holder(self) -> str:
        """Who holds a link's lease: this very job, not just its worker (which runs several at once)."""
        return f"{self.worker}/{self.event_id}"


# The GHL location of the event being applied: the contact mapping reads it to use that location's own
# custom fields (``FieldMaps.at``), as the log context carries the connection, without every mapping
# call taking it as an argument.
_LOCATION: ContextVar[str | None] = ContextVar("sync_location", default=None)


@contextmanager
def at_location(location: str | None) -> Iterator[None]:
    """Apply what runs inside for the connection of GHL ``location``."""
    token = _LOCATION.set(location)
    try:
        yield
    finally:
        _LOCATION.reset(token)


def current_location() -> str | None:
    return _LOCATION.get()


@dataclass(frozen=True, slots=True)
class EventContext:
    """What applying one event works with: the claimed job, the connection it routes to (active), and
    that connection's upstream clients."""

    job: Job
    connection: Connection
    upstreams: Upstreams


@dataclass
class Settlement:
    """Everything one event changes in the database, committed together with the event's status."""

    note: str | None = None
    link_id: int | None = None
    link_values: dict[str, Any] | None = None
    audits: list[Audit] = field(default_factory=list)
    synced: set[Direction] = field(default_factory=set)
    # A new state for the links hanging off ``link_id`` (a deleted contact's tasks and notes).
    children_state: LinkState | None = None


# A connection's "last synced" time is stamped at most once a second by each handler: it is for
# people reading /status, and writing it with every event would make every settling transaction of
# a connection queue for that one row.
MARK_EVERY_SECONDS = 1.0


class Handler:
    """Base of the record handlers: leases, audited upstream writes and the final commit."""

    kind: str  # the record kind the handler syncs (``contact``, ...)
    # Called in the transaction that settles an event which wrote something (the automations queue
    # their run there): (session, job, settlement, kind).
    on_settled: Callable[[AsyncSession, Job, Settlement, str], Awaitable[None]] | None = None

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock, lease: timedelta) -> None:
        self._sessions = sessions
        self._clock = clock
        self._lease = lease
        self._marked: dict[tuple[int, Direction], float] = {}  # when this handler last stamped one

    async def handle(self, context: EventContext) -> None:
        """Apply one event of the types the engine's dispatch table routes here."""
        raise NotImplementedError

    async def acquire(self, context: EventContext, link: Link) -> Link:
        """Take the link's lease and return the link as it is now, or defer while another job holds it.

        The link must be read again once the lease is ours: the copy read before may predate the
        work of the job that held the lease until now, and diffing against its old snapshot would
        write stale values back.
        """
        now = self._clock()
        async with autocommit(self._sessions) as session:
            holder = context.job.holder
            current = await links.acquire_lease(session, link.id, holder, now, now + self._lease)
        if current is None:
            raise Deferred(f"link {link.id} is being synced by another worker")
        return current

    async def release(self, context: EventContext, link_id: int) -> None:
        async with autocommit(self._sessions) as session:
            await links.release_lease(session, link_id, context.job.holder)

    def audit(
        self,
        link: Link | None,
        side: Side,
        action: str,
        changes: dict[str, Any],
        *,
        written_id: str | None = None,
        result: Literal["ok", "error"] = "ok",
        detail: str | None = None,
    ) -> Audit:
        """The audit entry of a write to ``side``. Its ids are the link's, except that ``written_id``
        names the record written on ``side`` (one the link does not hold yet)."""
        rankr_id, ghl_id = (link.rankr_id, link.ghl_id) if link is not None else (None, None)
        if written_id is not None and side is Side.RANKR:
            rankr_id = written_id
        elif written_id is not None:
            ghl_id = written_id
        return Audit(
            kind=self.kind,
            direction=side.inbound,
            action=action,
            changes=changes,
            link_id=link.id if link is not None else None,
            rankr_id=rankr_id,
            ghl_id=ghl_id,
            result=result,
            detail=detail,
        )

    async def leased(
        self, context: EventContext, link: Link, work: Callable[[Link], Awaitable[None]]
    ) -> None:
        """Run ``work`` on the freshly read link while holding its lease, unless the record is (or
        became, while the event waited for the lease) deleted or unlinked; release it on failure."""
        note = f"{self.kind} is {link.state}; nothing to apply"
        if link.state in ENDED:
            await self.settle(context, Settlement(note=note))
            return
        link = await self.acquire(context, link)
        if link.state in ENDED:
            note = f"{self.kind} is {link.state}; nothing to apply"
            await self.settle(context, Settlement(note=note, link_id=link.id, link_values={}))
            return
        try:
            await work(link)
        except BaseException:
            await self.release(context, link.id)
            raise

    def writable(self, fields: Canonical, target: Side) -> Canonical:
        """The fields that may be written to ``target`` (all, unless the handler's kind has owners)."""
        return fields

    def in_flight_delay(self, in_flight: list[Link]) -> float:
        """How soon to look again when creates toward a side are in flight: soon while one of them is
        being worked on, slowly when its worker is away (waiting to retry)."""
        now = self._clock()
        active = any(link.lease_until is not None and link.lease_until > now for link in in_flight)
        return 0.5 if active else 5.0

    async def claim_new(
        self, context: EventContext, side: Side, record_id: str, fields: Canonical, **values: Any
    ) -> Link:
        """Commit a pending link for a record the other side does not know yet, holding its lease."""
        now = self._clock()
        values = {
            "connection_id": context.connection.id,
            "kind": self.kind,
            "state": LinkState.PENDING,
            "lease_owner": context.job.holder,
            "lease_until": now + self._lease,
            "created_at": now,
            "updated_at": now,
            f"{side.value}_id": record_id,
            **snapshot_values(fields),
            **values,
        }
        try:
            async with autocommit(self._sessions) as session:  # one INSERT
                link_id = await links.create(session, values)
        except IntegrityError as exc:
            raise Deferred(f"another worker is linking this {self.kind}") from exc
        return Link(id=link_id, **values)

    async def creating(self, context: EventContext, link: Link, work: Awaitable[None]) -> None:
        """Run a create behind its pending ``link``: a permanent failure removes the link (nothing was
        created it could point at: no half-written state), any other failure releases it for a retry."""
        try:
            await work
        except (PermanentUpstreamError, LinkConflictError, MappingError):
            async with unit_of_work(self._sessions) as session:
                await links.remove(session, link.id, context.job.holder)
            raise
        except BaseException:
            await self.release(context, link.id)
            raise

    async def settle_delete(self, context: EventContext, side: Side, link: Link) -> None:
        """Apply a deletion on ``side`` to the linked record (the lease is held)."""
        raise NotImplementedError

    async def deleted(self, context: EventContext, side: Side, record_id: str) -> None:
        """A record was deleted on ``side``: settle its link with ``settle_delete`` (under the lease), or
        remember the deletion of a record never linked, so a late create event for it is not applied."""
        async with autocommit(self._sessions) as session:
            link = await links.find(session, context.connection.id, self.kind, side, record_id)
        if link is not None:
            await self.leased(context, link, partial(self.settle_delete, context, side))
            return
        now = self._clock()
        try:
            async with unit_of_work(self._sessions) as session:
                session.add(
                    Link(
                        connection_id=context.connection.id,
                        kind=self.kind,
                        state=LinkState.DELETED,
                        created_at=now,
                        updated_at=now,
                        **{f"{side.value}_id": record_id},
                    )
                )
        except IntegrityError as exc:
            raise Deferred(f"the {self.kind} was linked meanwhile") from exc
        await self.settle(context, Settlement(note=f"{self.kind} was not linked; nothing to delete"))

    async def settle_gone(
        self, context: EventContext, side: Side, record_id: str, link: Link | None = None
    ) -> None:
        """Settle an event whose record (or its counterpart) no longer exists: nothing to apply; that
        side's delete event settles the link."""
        note = f"{side.value} {self.kind} {record_id} no longer exists"
        if link is None:
            await self.settle(context, Settlement(note=note))
        else:
            await self.settle(context, Settlement(note=note, link_id=link.id, link_values={}))

    async def current_change(
        self,
        context: EventContext,
        link: Link,
        seen: Observed,
        fetch: Callable[[], Awaitable[Observed | None]],
        *,
        untimed: bool = False,
    ) -> tuple[Observed, Canonical, dict[str, Any]] | None:
        """What ``seen`` changes against the link's snapshot: (the state, the changed fields, the link's
        new modification time). A state that may be outdated is read again first: one older than the
        newest seen (out of order, or overtaken by our own write), or any event body of a side that
        sends no times (``untimed``). Settles the event and returns None when the record is gone or
        nothing changed."""
        latest: datetime | None = getattr(link, modified_column(seen.side))
        update = mapping.changes(seen.fields, link.snapshot)
        if update and not seen.current and (untimed or not_newer(seen.modified_at, latest)):
            fresh = await fetch()
            if fresh is None:
                await self.settle_gone(context, seen.side, seen.record_id, link)
                return None
            seen = fresh
            update = mapping.changes(seen.fields, link.snapshot)
        update = self.writable(update, seen.side.other)
        values: dict[str, Any] = {modified_column(seen.side): newest(latest, seen.modified_at)}
        if not update:
            result = Settlement(note="no mapped field changed", link_id=link.id, link_values=values)
            await self.settle(context, result)
            return None
        return seen, update, values

    def synced_values(
        self, link: Link, target: Side, target_modified: datetime | None, fields: Canonical
    ) -> dict[str, Any]:
        """The link columns after ``fields`` were written to ``target``."""
        column = modified_column(target)
        return {
            column: newest(getattr(link, column), target_modified),
            "synced_at": self._clock(),
            **snapshot_values(fields),
        }

    async def write(
        self,
        context: EventContext,
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
            entry = self.audit(link, side, action, changes, result="error", detail=str(exc)[:1000])
            async with unit_of_work(self._sessions) as session:
                await self.record(session, context, entry)
            raise

    async def record(self, session: AsyncSession, context: EventContext, entry: Audit) -> None:
        """Add an audit entry for the event being applied."""
        job = context.job
        await links.add_audit(
            session,
            entry,
            at=self._clock(),
            connection_id=context.connection.id,
            event_id=job.event_id,
            event_type=job.type,
            event_ref=job.ref,
        )

    def _mark_due(self, connection_id: int, direction: Direction) -> bool:
        now = time.monotonic()
        key = (connection_id, direction)
        if now - self._marked.get(key, -MARK_EVERY_SECONDS) < MARK_EVERY_SECONDS:
            return False
        self._marked[key] = now
        return True

    async def settle(self, context: EventContext, result: Settlement) -> None:
        """Commit the event's outcome atomically: link state, audit entries, event done."""
        job, connection = context.job, context.connection
        now = self._clock()
        # Settling an event that changed nothing (an echo, say) is one UPDATE: atomic by itself.
        alone = result.link_values is None and not result.audits and not result.synced and not job.superseded
        async with (autocommit if alone else unit_of_work)(self._sessions) as session:
            if result.link_id is not None and result.link_values is not None:
                values = {**result.link_values, "updated_at": now}
                if not await links.save(session, result.link_id, job.holder, values):
                    raise LeaseLost()
                if result.children_state is not None:
                    await links.set_children_state(session, result.link_id, result.children_state, now)
            for audit in result.audits:
                await self.record(session, context, audit)
            marks = {
                f"last_synced_{direction.value}_at": now
                for direction in result.synced
                if self._mark_due(connection.id, direction)
            }
            if marks:
                await session.execute(
                    update(Connection).where(Connection.id == connection.id).values(**marks)
                )
            if self.on_settled is not None and any(audit.result == "ok" for audit in result.audits):
                await self.on_settled(session, job, result, self.kind)
            if not await inbox.finish(
                session, [job.event_id], job.worker, EventStatus.DONE, now, result.note
            ):
                # Our claim on the event expired and another worker took it: let that one decide.
                raise LeaseLost()
            note = f"coalesced: applied with event {job.event_id}"
            await inbox.finish_waiting(session, job.superseded, EventStatus.DONE, now, note)
        log.info(
            "sync.event_applied",
            extra={"event": job.event_id, "coalesced": len(job.superseded), "note": result.note},
        )
