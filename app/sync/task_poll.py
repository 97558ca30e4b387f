"""The GHL task poll: GHL sends no event when a task is edited or re-opened.

GHL's webhook catalogue has TaskCreate, TaskComplete and TaskDelete only, so a task re-opened, renamed
or re-dated in GHL would never reach Rankr. Every ``TASK_POLL_SECONDS`` the worker reads the task
lists of up to ``TASK_POLL_CONTACTS`` linked contacts with linked tasks per connection (one GHL read
each), and queues a ``TaskUpdate`` event for every linked task whose state differs from what was last
synced. The worker applies it like any GHL event (read the task, write the change), so the poll itself
writes nothing. The event id names the task, the link's version and the state seen, so a poll
repeated (by a worker that took over) queues one event per change.

One process at a time polls a connection (``TaskPollLease``), so its reads are spent once however
many workers run: the one holding the lease renews it every round, another takes over when it has
run out (``POLL_LEASE_ROUNDS`` rounds, at least a minute), starting its own view of the contacts.

Which contacts, out of the budget of reads: the ones most likely to have changed (``choose``). Each
contact has a target time between reads by what is known of it (``target``): short while someone is
working on it (it, or one of its tasks or notes, was synced lately), longer while a task is due soon,
longer still while tasks are open. The contacts furthest past their target are read first. A share
of every round (``sweep_reads``) goes to the contacts read longest ago whatever their target, so each
one is read at least once every ``visit_bound`` while GHL's budget allows.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.connections.models import Connection, ConnectionStatus
from app.db import unit_of_work
from app.errors import OutOfBudget, UpstreamError
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, enqueue, ordering_key
from app.integrations.registry import Upstreams
from app.kit.clock import Clock, format_instant, parse_instant
from app.sync import mapping
from app.sync import repository as links
from app.sync.mapping import FieldMaps
from app.sync.models import Kind, Link, LinkState

log = logging.getLogger(__name__)

# Someone worked on a contact (a sync of it, its tasks or notes) this recently: its tasks may be
# edited next, and are read most often.
ACTIVE_WITHIN = timedelta(minutes=30)
# An open task due (or overdue) within this of now is likely to be re-dated or completed.
DUE_WITHIN = timedelta(hours=24)
ACTIVE_TARGET = timedelta(seconds=15)
DUE_TARGET = timedelta(minutes=2)
OPEN_TARGET = timedelta(minutes=10)
IDLE_TARGET = timedelta(hours=1)
# The sweep (below) reads only contacts left unread this long: a small location is not read over and
# over just because it is small.
SWEEP_AFTER = timedelta(minutes=2)
# The view of the links is read whole this often, and between times only what changed since.
FULL_READ_EVERY = timedelta(minutes=10)
# Rows committed a little after the time they carry are read again on the next round.
CHANGED_OVERLAP = timedelta(seconds=30)
# The lease on a connection's poll lasts this many rounds, and at least MIN_POLL_LEASE.
POLL_LEASE_ROUNDS = 3
MIN_POLL_LEASE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A linked contact with linked tasks, as the poll sees it."""

    link_id: int
    read_at: datetime  # its tasks' last read, or when the poll first saw it
    active_at: datetime | None = None  # the newest sync of it, its tasks or its notes
    open_tasks: int = 0
    next_due: datetime | None = None  # the earliest due date among its open tasks


def target(candidate: Candidate, now: datetime) -> timedelta:
    """How long after a read the contact's tasks are worth reading again."""
    if candidate.active_at is not None and now - candidate.active_at <= ACTIVE_WITHIN:
        return ACTIVE_TARGET
    if candidate.next_due is not None and abs(candidate.next_due - now) <= DUE_WITHIN:
        return DUE_TARGET
    if candidate.open_tasks:
        return OPEN_TARGET
    return IDLE_TARGET


def priority(candidate: Candidate, now: datetime) -> float:
    """How far past its target the contact is (1.0: just due; below 1: not due yet)."""
    return (now - candidate.read_at) / target(candidate, now)


def sweep_reads(reads: int) -> int:
    """Of a round's reads, how many go to the contacts read longest ago whatever their target."""
    return max(1, reads // 3)


def choose(candidates: Sequence[Candidate], now: datetime, reads: int) -> list[Candidate]:
    """The contacts whose tasks to read this round, at most ``reads``: the ones read longest ago, if
    that was ``SWEEP_AFTER`` ago or more (``sweep_reads`` of them), then the due ones furthest past
    their target."""
    stale = sorted(
        (c for c in candidates if now - c.read_at >= SWEEP_AFTER), key=lambda c: (c.read_at, c.link_id)
    )
    chosen = stale[: sweep_reads(reads)]
    taken = {c.link_id for c in chosen}
    due = [c for c in candidates if c.link_id not in taken and priority(c, now) >= 1.0]
    due.sort(key=lambda c: (-priority(c, now), c.link_id))
    return chosen + due[: max(0, reads - len(chosen))]


def visit_bound(contacts: int, reads: int, interval: timedelta) -> timedelta:
    """The longest a contact's tasks go unread while GHL's budget allows the reads:
    ``SWEEP_AFTER + ceil(N / sweep_reads) * TASK_POLL_SECONDS``. Each round the sweep takes the
    contacts read longest ago; once a contact is ``SWEEP_AFTER`` unread, at most the N - 1 others
    come before it, ``sweep_reads`` a round."""
    return SWEEP_AFTER + math.ceil(contacts / sweep_reads(reads)) * interval


@dataclass(slots=True)
class _Child:
    parent_id: int
    updated_at: datetime
    task: bool
    open: bool
    due: datetime | None


@dataclass(slots=True)
class _View:
    """What the poll knows of one connection's links, refreshed from what changed."""

    contacts: dict[int, tuple[str, datetime]]  # contact link id -> (GHL id, updated_at)
    children: dict[int, _Child]  # task or note link id -> what matters of it
    read_at: dict[int, datetime]  # contact link id -> last read (or first seen)
    full_at: datetime
    changed_at: datetime

    def candidates(self, now: datetime) -> list[Candidate]:
        active: dict[int, datetime] = {}
        open_tasks: dict[int, int] = {}
        next_due: dict[int, datetime] = {}
        tasked: set[int] = set()
        for child in self.children.values():
            parent = child.parent_id
            if parent not in self.contacts:
                continue
            active[parent] = max(active.get(parent, child.updated_at), child.updated_at)
            if not child.task:
                continue
            tasked.add(parent)
            if child.open:
                open_tasks[parent] = open_tasks.get(parent, 0) + 1
                if child.due is not None and (parent not in next_due or child.due < next_due[parent]):
                    next_due[parent] = child.due
        # A contact seen for the first time counts as read now: its turn comes after those before it.
        self.read_at = {link_id: self.read_at.get(link_id, now) for link_id in sorted(tasked)}
        return [
            Candidate(
                link_id,
                read_at,
                max(active[link_id], self.contacts[link_id][1]),
                open_tasks.get(link_id, 0),
                next_due.get(link_id),
            )
            for link_id, read_at in self.read_at.items()
        ]


class TaskPoll:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        upstreams: Callable[[Connection], Upstreams],
        *,
        maps: FieldMaps,
        clock: Clock,
        contacts_per_round: int,
        round_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._upstreams = upstreams
        self._maps = maps
        self._clock = clock
        self._reads = contacts_per_round
        self._lease = max(MIN_POLL_LEASE, POLL_LEASE_ROUNDS * timedelta(seconds=round_seconds))
        self._holder = secrets.token_hex(8)
        self._views: dict[int, _View] = {}  # by connection id

    async def run_once(self) -> int:
        """Read the task lists of each connection's contacts due this round; returns how many task
        changes were queued."""
        async with self._sessions() as session:
            active = (
                await session.scalars(select(Connection).where(Connection.status == ConnectionStatus.ACTIVE))
            ).all()
        self._views = {c.id: view for c in active if (view := self._views.get(c.id)) is not None}
        queued = 0
        for connection in active:
            queued += await self._poll_connection(connection)
        return queued

    async def _poll_connection(self, connection: Connection) -> int:
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            mine = await links.take_task_poll(session, connection.id, self._holder, now, now + self._lease)
        if not mine:
            self._views.pop(connection.id, None)  # should it come back here, it starts afresh
            return 0
        view = await self._refresh(connection.id, now)
        queued = 0
        for candidate in choose(view.candidates(now), now, self._reads):
            ghl_id = view.contacts[candidate.link_id][0]
            try:
                queued += await self._poll_contact(candidate.link_id, ghl_id, connection)
            except OutOfBudget:
                break  # the rest wait for the next round; their places in the order are kept
            except UpstreamError as exc:
                log.warning("task_poll.failed", extra={"link": candidate.link_id, "error": str(exc)[:200]})
            view.read_at[candidate.link_id] = now
        return queued

    async def _refresh(self, connection_id: int, now: datetime) -> _View:
        """The connection's view, with the links changed since the last round (all of them at first
        and every ``FULL_READ_EVERY``, which also forgets the links gone meanwhile)."""
        view = self._views.get(connection_id)
        since = None
        if view is not None and now - view.full_at < FULL_READ_EVERY:
            since = view.changed_at - CHANGED_OVERLAP
        else:  # the contacts' places in the order are kept
            view = _View({}, {}, view.read_at if view is not None else {}, now, now)
            self._views[connection_id] = view
        contact, child = aliased(Link), aliased(Link)
        query = (
            select(
                contact.id,
                contact.ghl_id,
                contact.updated_at,
                child.id,
                child.kind,
                child.snapshot,
                child.updated_at,
                child.state,
                contact.state,
            )
            .join(child, child.parent_id == contact.id, isouter=since is not None)
            .where(contact.connection_id == connection_id, contact.kind == Kind.CONTACT)
        )
        if since is None:
            query = query.where(contact.state == LinkState.LINKED, child.state == LinkState.LINKED)
        else:
            query = query.where((contact.updated_at > since) | (child.updated_at > since))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        for contact_id, ghl_id, contact_at, child_id, kind, snapshot, child_at, child_state, state in rows:
            if state == LinkState.LINKED and ghl_id is not None:
                view.contacts[contact_id] = (ghl_id, contact_at)
            else:
                view.contacts.pop(contact_id, None)
            if child_id is None:
                continue
            if child_state != LinkState.LINKED:
                view.children.pop(child_id, None)
                continue
            fields = snapshot or {}
            due = fields.get("dueDate")
            view.children[child_id] = _Child(
                contact_id,
                child_at,
                kind == Kind.TASK,
                fields.get("completed") is not True,
                parse_instant(due) if isinstance(due, str) else None,
            )
        view.changed_at = now
        return view

    async def _poll_contact(self, contact_id: int, contact_ghl_id: str, connection: Connection) -> int:
        tasks = await self._upstreams(connection).ghl.list_tasks(contact_ghl_id)
        async with self._sessions() as session:
            linked = {
                link.ghl_id: link
                for link in (
                    await session.scalars(
                        select(Link).where(
                            Link.parent_id == contact_id,
                            Link.kind == Kind.TASK,
                            Link.state == LinkState.LINKED,
                        )
                    )
                ).all()
            }
        queued = 0
        for task in tasks:
            link = linked.get(task.id)
            if link is None or not mapping.changes(mapping.task_from_ghl(task, self._maps), link.snapshot):
                continue
            body = task.model_dump(by_alias=True, exclude_none=True)
            now = self._clock()
            payload = {
                **body,
                "type": "TaskUpdate",
                "locationId": connection.ghl_location_id,
                "contactId": contact_ghl_id,
                "timestamp": format_instant(now),
            }
            # One request per (state synced, state seen): a repeat poll finds the same id.
            seen = mapping.fingerprint(mapping.task_from_ghl(task, self._maps))[:16]
            version = int(link.updated_at.timestamp() * 1000)
            event = IncomingEvent(
                Source.GHL,
                f"poll:task:{task.id}:{version}:{seen}",
                "TaskUpdate",
                connection.ghl_location_id,
                ordering_key(Source.GHL, connection.ghl_location_id, Kind.TASK, task.id),
                payload,
            )
            queued += await enqueue(self._sessions, event, now)
        return queued
