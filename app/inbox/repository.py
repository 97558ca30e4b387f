"""SQL of the inbox: claim due events, settle them, count them. Never commits.

The intake's insert lives in ``app.inbox.writer`` (compiled by SQLAlchemy, run on the driver itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import UTCDateTime, on_postgres, table_of
from app.inbox.models import IS_OPEN, OPEN_STATUSES, EventStatus, WebhookEvent

EVENTS = table_of(WebhookEvent)

# Due events looked at per round of ``claim_due`` (it goes on while it finds too few heads).
CLAIM_WINDOW = 200
# Windows a claim walks at most once it has taken an event: a backlog of accounts it may take little
# of must not make every claim walk all of it.
CLAIM_WINDOWS = 5


@dataclass
class Sweep:
    """Where a worker's walk over the due events has got to: the id its last claim's walk ended at."""

    position: int = 0


async def claim_due(
    session: AsyncSession,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    most_per_account: Mapping[str, int] | None = None,
    sweep: Sweep | None = None,
) -> Sequence[WebhookEvent]:
    """Lease up to ``limit`` due events, at most one per ordering key and only the oldest open one.

    An event is due when it is pending or retrying and its time has come, or when the worker that
    claimed it let its lease expire (it crashed). An event waits while an older event with the same
    ordering key is still open, so one record's events apply in arrival order. On Postgres the
    heads are locked with SKIP LOCKED, so concurrent workers never claim the same row.
    Of an account in ``most_per_account``, at most that many events are taken (none at 0: its
    budget is spent for now); the rest are left where they are for a later claim.

    The due events are walked in id order, a window at a time, and the heads among them found by
    one probe of the (ordering_key, id) index each. Each step costs in proportion to its window,
    whatever the planner knows: as one statement (``NOT EXISTS`` an older open event), Postgres may
    plan an anti join against every open event, quadratic in the backlog while the table has no
    statistics yet (11 s per claim with 20,000 events just stored, before autovacuum analysed it; with
    the windows, 18 ms at 50,000: ``python -m bench.claim``). The walk goes through the partial index
    of open events' ids, so the done events kept for EVENT_RETENTION_DAYS cost it nothing (without
    it, 50 ms per claim behind 200,000 done events).

    With a ``sweep`` (a worker keeps one), the walk starts where the last claim's walk ended and wraps
    around, and each window's heads are taken one account at a time: the worker sweeps the backlog,
    and connections whose imports were stored one after the other drain side by side, each at its
    share of the workers. Walked from the oldest every time, the first-stored location's import took
    every claim until it was done or out of budget.
    """
    most = most_per_account or {}
    excluded = [account for account, room in most.items() if room <= 0]
    excluding = bool(excluded)
    params: dict[str, Any] = {
        "now": now,
        "excluded": excluded,
        "worker": worker,
        "until": now + lease,
    }
    postgres = on_postgres(session)
    if postgres:
        # Without statistics Postgres takes every index for a few rows and ANDs bitmaps of them, each
        # of which reads the whole backlog (0.9 ms per probe at 50,000 events): plain index scans
        # keep a probe at one index lookup. For this transaction only (the claim's).
        await session.execute(_NO_BITMAP_SCANS)
    start = sweep.position if sweep else 0
    # From the start to the newest event, then from the oldest up to the start.
    passes = [(start, _NEWEST), (0, start)] if start else [(0, _NEWEST)]
    rows: list[WebhookEvent] = []
    taken: Counter[str] = Counter()
    walked = 0
    after, upto = passes.pop(0)
    while len(rows) < limit and not (rows and walked >= CLAIM_WINDOWS):
        window = {**params, "after": after, "upto": upto}
        probed = (await session.execute(_claim_window(excluding), window)).all()
        if not probed:
            if not passes:
                break
            after, upto = passes.pop(0)
            continue
        walked += 1
        after = probed[-1][0]
        heads = _in_turn(
            [(event_id, account) for event_id, oldest, account in probed if event_id == oldest], most, taken
        )
        take = _claim_heads(excluding, postgres)
        # The next heads in turn; again with the following ones while other workers hold some.
        while heads and len(rows) < limit:
            room = limit - len(rows)
            chosen, heads = heads[:room], heads[room:]
            leased = (await session.execute(take, {**params, "heads": chosen, "room": room})).scalars().all()
            taken.update(event.account_key for event in leased)
            rows += leased
    if sweep:
        sweep.position = after
    return sorted(rows, key=lambda event: event.id)


_NOW = bindparam("now", type_=UTCDateTime())
_NEWEST = 2**62  # above every event id
_NO_BITMAP_SCANS = text("SET LOCAL enable_bitmapscan = off")


@cache
def _due(excluding: bool) -> ColumnElement[bool]:
    """Due at ``now``: pending or retrying and its time has come, or its worker's lease ran out."""
    due = or_(
        and_(
            WebhookEvent.status.in_((EventStatus.PENDING, EventStatus.RETRYING)),
            WebhookEvent.next_attempt_at <= _NOW,
        ),
        and_(WebhookEvent.status == EventStatus.PROCESSING, WebhookEvent.lease_until < _NOW),
    )
    if excluding:
        due = and_(due, WebhookEvent.account_key.not_in(bindparam("excluded", expanding=True)))
    return due


@cache
def _claim_window(excluding: bool) -> Select[tuple[int, int, str]]:
    """The next CLAIM_WINDOW due events in (``after``, ``upto``] (the partial index of open events'
    ids), each with the oldest open event of its key: one probe of the (ordering_key, id) index each
    (a scalar subquery with LIMIT 1 is not turned into a join)."""
    window = (
        select(WebhookEvent.id, WebhookEvent.ordering_key, WebhookEvent.account_key)
        .where(
            _due(excluding),
            WebhookEvent.id > bindparam("after"),
            WebhookEvent.id <= bindparam("upto"),
            text(IS_OPEN),
        )
        .order_by(WebhookEvent.id)
        .limit(CLAIM_WINDOW)
        .subquery()
    )
    earlier = aliased(WebhookEvent)
    first = (
        select(earlier.id)
        .where(earlier.ordering_key == window.c.ordering_key, earlier.status.in_(OPEN_STATUSES))
        .order_by(earlier.id)
        .limit(1)
        .scalar_subquery()
    )
    return select(window.c.id, first, window.c.account_key).order_by(window.c.id)


def _in_turn(heads: list[tuple[int, str]], most: Mapping[str, int], taken: Mapping[str, int]) -> list[int]:
    """The heads' ids taken in turns, one of each account per turn (oldest first within an account),
    so a window spanning several locations' backlogs gives each of them a share of the claim; of an
    account listed in ``most``, no more than it leaves beside what the claim has ``taken`` already."""
    turn: dict[str, int] = {}
    ranked = []
    for event_id, account in heads:
        turn[account] = turn.get(account, -1) + 1
        room = most.get(account)
        if room is None or taken.get(account, 0) + turn[account] < room:
            ranked.append((turn[account], event_id))
    return [event_id for _, event_id in sorted(ranked)]


@cache
def _claim_heads(excluding: bool, postgres: bool) -> Update:
    """Lock and lease, in one statement, up to ``room`` of the ``heads`` still due that no other
    worker holds."""
    lock = (
        select(WebhookEvent.id)
        .where(WebhookEvent.id.in_(bindparam("heads", expanding=True)), _due(excluding))
        .order_by(WebhookEvent.id)
        .limit(bindparam("room"))
        .correlate(None)
    )
    if postgres:
        lock = lock.with_for_update(skip_locked=True)
    return (
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(lock.scalar_subquery()))
        .values(
            status=EventStatus.PROCESSING,
            lease_until=bindparam("until"),
            leased_by=bindparam("worker"),
            attempts=WebhookEvent.attempts + 1,
        )
        .returning(WebhookEvent)
        .execution_options(synchronize_session=False)
    )


_WAITING_BEHIND = (
    select(WebhookEvent)
    .where(
        WebhookEvent.ordering_key.in_(bindparam("keys", expanding=True)),
        WebhookEvent.status.in_((EventStatus.PENDING, EventStatus.RETRYING)),
    )
    .order_by(WebhookEvent.id)
    .limit(bindparam("most"))
)


async def waiting_behind(
    session: AsyncSession, heads: Sequence[WebhookEvent], *, limit: int
) -> dict[str, list[WebhookEvent]]:
    """The events queued behind each claimed head (same ordering key), oldest first.

    They are not claimed: the open head keeps every other worker off them (see ``claim_due``), and
    if the head's work fails they simply stay queued. At most ``limit`` rows in all.
    """
    keys = {head.ordering_key for head in heads}
    if not keys:
        return {}
    rows = await session.execute(_WAITING_BEHIND, {"keys": list(keys), "most": limit})
    waiting: dict[str, list[WebhookEvent]] = {}
    for event in rows.scalars():
        waiting.setdefault(event.ordering_key, []).append(event)
    return waiting


# Only the worker holding the lease may settle the event: one whose lease expired and was taken over
# by another worker must not overwrite that worker's outcome. Prebuilt (see ``table_of``); its SET
# clause is the keys of the parameters it runs with.
_SETTLE = update(EVENTS).where(
    EVENTS.c.id.in_(bindparam("event_ids", expanding=True)), EVENTS.c.leased_by == bindparam("worker")
)


async def finish(
    session: AsyncSession,
    event_ids: Collection[int],
    worker: str,
    status: EventStatus,
    now: datetime,
    note: str | None,
) -> int:
    """Mark claimed events done, skipped or dead; returns how many this worker still held."""
    result = await session.execute(
        _SETTLE,
        {
            "status": status, "finished_at": now, "lease_until": None, "leased_by": None, "last_error": note,
            "event_ids": list(event_ids), "worker": worker,
        },
    )  # fmt: skip
    return int(result.rowcount)  # type: ignore[attr-defined]


async def renew(session: AsyncSession, event_ids: Collection[int], worker: str, until: datetime) -> None:
    """Extend the lease of the claimed events ``worker`` still holds to ``until``."""
    await session.execute(_SETTLE, {"lease_until": until, "event_ids": list(event_ids), "worker": worker})


async def finish_waiting(
    session: AsyncSession, event_ids: Sequence[int], status: EventStatus, now: datetime, note: str | None
) -> int:
    """Settle events that waited behind a claimed one and were folded into its work (done or dead)."""
    if not event_ids:
        return 0
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id.in_(event_ids),
            WebhookEvent.status.in_((EventStatus.PENDING, EventStatus.RETRYING)),
        )
        .values(status=status, finished_at=now, last_error=note)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def reschedule(
    session: AsyncSession,
    event_id: int,
    worker: str,
    *,
    status: EventStatus,
    at: datetime,
    error: str | None,
    count_attempt: bool,
) -> bool:
    """Put a claimed event back: ``retrying`` after a failure, ``pending`` when it was only deferred."""
    values: dict[str, Any] = {
        "status": status,
        "next_attempt_at": at,
        "lease_until": None,
        "leased_by": None,
        "last_error": error,
    }
    settle = _SETTLE if count_attempt else _SETTLE.values(attempts=EVENTS.c.attempts - 1)
    result = await session.execute(settle, {**values, "event_ids": [event_id], "worker": worker})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def status_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Event counts by (account_key, status)."""
    rows = await session.execute(
        select(WebhookEvent.account_key, WebhookEvent.status, func.count()).group_by(
            WebhookEvent.account_key, WebhookEvent.status
        )
    )
    return {(account, status): count for account, status, count in rows.all()}


async def oldest_open(session: AsyncSession) -> dict[str, datetime]:
    """Receive time of the oldest open event, by account_key."""
    rows = await session.execute(
        select(WebhookEvent.account_key, func.min(WebhookEvent.received_at))
        .where(WebhookEvent.status.in_(OPEN_STATUSES))
        .group_by(WebhookEvent.account_key)
    )
    return {account: at for account, at in rows.all() if at is not None}


async def latest_errors(session: AsyncSession, account_key: str, limit: int = 5) -> Sequence[WebhookEvent]:
    rows = await session.execute(
        select(WebhookEvent)
        .where(
            WebhookEvent.account_key == account_key,
            WebhookEvent.last_error.is_not(None),
            WebhookEvent.status.in_((EventStatus.RETRYING, EventStatus.DEAD)),
        )
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    )
    return rows.scalars().all()


async def purge_finished(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(WebhookEvent).where(
            WebhookEvent.status.in_((EventStatus.DONE, EventStatus.SKIPPED)),
            WebhookEvent.finished_at < before,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def replay_dead(
    session: AsyncSession,
    now: datetime,
    *,
    event_ids: Sequence[int] | None = None,
    account_keys: Sequence[str] | None = None,
    source_event_ids: Sequence[str] | None = None,
) -> int:
    """Put dead events back in the queue as new (all of them, or only these ids / these accounts).

    ``source_event_ids`` are the ids the senders gave (Rankr webhook-id, GHL webhookId), as
    ``/status`` shows them; together with ``event_ids`` an event matching either is replayed.
    """
    statement = update(WebhookEvent).where(WebhookEvent.status == EventStatus.DEAD)
    if event_ids is not None or source_event_ids is not None:
        statement = statement.where(
            or_(WebhookEvent.id.in_(event_ids or ()), WebhookEvent.event_id.in_(source_event_ids or ()))
        )
    if account_keys is not None:
        statement = statement.where(WebhookEvent.account_key.in_(account_keys))
    result = await session.execute(
        statement.values(
            status=EventStatus.PENDING, attempts=0, next_attempt_at=now, finished_at=None, last_error=None
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
