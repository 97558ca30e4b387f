"""SQL of backfill and reconciliation: job checkpoints and leases, staged records, queued events.

Never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.backfill.matching import PERSON_RECORDS, Outcome, People
from app.backfill.models import StagedContact, SyncJob
from app.db import on_postgres
from app.inbox.models import OPEN_STATUSES, WebhookEvent
from app.inbox.service import IncomingEvent, event_row
from app.sync import repository as links
from app.sync.models import Kind, Link, LinkState


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = postgresql if on_postgres(session) else sqlite
    return dialect.insert(table)


# --- jobs ----------------------------------------------------------------------------------------------


async def get_job(session: AsyncSession, connection_id: int, job: str) -> SyncJob | None:
    row = await session.execute(
        select(SyncJob)
        .where(SyncJob.connection_id == connection_id, SyncJob.job == job)
        .execution_options(populate_existing=True)
    )
    return row.scalar_one_or_none()


async def take_job(
    session: AsyncSession, connection_id: int, job: str, owner: str, now: datetime, until: datetime
) -> SyncJob | None:
    """The job's row with its lease taken by ``owner`` (created when new), or None while another holds it."""
    await session.execute(
        _insert(session, SyncJob)
        .values(
            connection_id=connection_id,
            job=job,
            state="new",
            phase="new",
            cursor={},
            counts={},
            started_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["connection_id", "job"])
    )
    taken = await session.execute(
        update(SyncJob)
        .where(
            SyncJob.connection_id == connection_id,
            SyncJob.job == job,
            or_(SyncJob.lease_until.is_(None), SyncJob.lease_until < now, SyncJob.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=until)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None
    return await get_job(session, connection_id, job)


async def save_job(session: AsyncSession, job_id: int, owner: str, **values: Any) -> bool:
    """Write the job's progress (and renew its lease) if ``owner`` still holds it."""
    result = await session.execute(
        update(SyncJob).where(SyncJob.id == job_id, SyncJob.lease_owner == owner).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def jobs(session: AsyncSession) -> Sequence[SyncJob]:
    return (await session.execute(select(SyncJob).order_by(SyncJob.id))).scalars().all()


# --- staged records ------------------------------------------------------------------------------------


async def stage(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert staged records; one listed again (a resumed page) replaces its earlier copy."""
    if not rows:
        return
    statement = _insert(session, StagedContact)
    columns = ("fields", "wire", "fingerprint", "match_email", "match_phone", "modified_at")
    # The rows as parameters, not as values of the statement: its SQL is then compiled once and
    # cached, and the driver sends the rows in batches (a page's VALUES list was compiled anew for
    # every page: 44 % of a listing's CPU samples at 10,000 per side).
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["connection_id", "job", "side", "record_id"],
            set_={name: getattr(statement.excluded, name) for name in columns},
        ),
        rows,
    )


async def analyze_staged(session: AsyncSession) -> None:
    """Refresh Postgres's statistics of the staging table after a listing filled it.

    Without them (autovacuum gathers them only a while after a bulk load, or never where it is off),
    Postgres looks a record's person up by walking every staged record of the job through an index
    that leads with the same columns, milliseconds per lookup at 20,000 records instead of
    microseconds. SQLite's planner needs no statistics for these queries.
    """
    if on_postgres(session):
        await session.execute(text("ANALYZE staged_contacts"))


async def clear_staged(session: AsyncSession, connection_id: int, job: str) -> None:
    await session.execute(
        delete(StagedContact).where(StagedContact.connection_id == connection_id, StagedContact.job == job)
    )


async def staged(
    session: AsyncSession, connection_id: int, job: str, after_id: int, limit: int, *, undecided: bool
) -> Sequence[StagedContact]:
    """The next staged records in listing order (Rankr's first), only the undecided ones if asked."""
    statement = select(StagedContact).where(
        StagedContact.connection_id == connection_id,
        StagedContact.job == job,
        StagedContact.id > after_id,
    )
    if undecided:
        statement = statement.where(StagedContact.outcome.is_(None))
    rows = await session.execute(statement.order_by(StagedContact.id).limit(limit))
    return rows.scalars().all()


# The decided records whose event writes to each upstream: a record created on the other side; a
# pair in both (counted for GHL, whose budget binds).
BOUND_FOR: dict[str, ColumnElement[bool]] = {
    "ghl": or_(
        StagedContact.outcome == Outcome.PAIR,
        and_(StagedContact.outcome == Outcome.CREATE, StagedContact.side == "rankr"),
    ),
    "rankr": and_(StagedContact.outcome == Outcome.CREATE, StagedContact.side == "ghl"),
}


def _decided_for(connection_id: int, job: str, target: str, after_id: int) -> ColumnElement[bool]:
    return and_(
        StagedContact.connection_id == connection_id,
        StagedContact.job == job,
        StagedContact.id > after_id,
        StagedContact.event_ref.is_(None),
        BOUND_FOR[target],
    )


async def decided(
    session: AsyncSession, connection_id: int, job: str, target: str, after_id: int, limit: int
) -> Sequence[StagedContact]:
    """The next decided records not queued yet (in decision order) whose event writes to ``target``
    first."""
    rows = await session.execute(
        select(StagedContact)
        .where(_decided_for(connection_id, job, target, after_id))
        .order_by(StagedContact.id)
        .limit(limit)
    )
    return rows.scalars().all()


async def count_decided(
    session: AsyncSession, connection_id: int, job: str, target: str, after_id: int
) -> int:
    rows = await session.execute(
        select(func.count()).where(_decided_for(connection_id, job, target, after_id))
    )
    return int(rows.scalar_one())


def _of_people(emails: Any, phones: Any, records: Sequence[StagedContact]) -> ColumnElement[bool] | None:
    """Rows that share an email or a phone with one of ``records`` (a superset of ``same_person``)."""
    conditions: list[ColumnElement[bool]] = []
    wanted = {record.match_email for record in records} - {None}
    if wanted:
        conditions.append(emails.in_(wanted))
    wanted = {record.match_phone for record in records} - {None}
    if wanted:
        conditions.append(phones.in_(wanted))
    return or_(*conditions) if conditions else None


async def staged_people(
    session: AsyncSession, connection_id: int, job: str, records: Sequence[StagedContact]
) -> Sequence[StagedContact]:
    """The staged records of the job that may be the same people as ``records``, oldest first: what
    deciding a batch looks its candidates up in (at most PERSON_RECORDS per record of the batch)."""
    shared = _of_people(StagedContact.match_email, StagedContact.match_phone, records)
    if shared is None:
        return []
    rows = await session.execute(
        select(StagedContact)
        .where(StagedContact.connection_id == connection_id, StagedContact.job == job, shared)
        .order_by(StagedContact.id)
        .limit(len(records) * PERSON_RECORDS)
    )
    return rows.scalars().all()


async def linked_people(
    session: AsyncSession, connection_id: int, kind: str, records: Sequence[StagedContact]
) -> Sequence[tuple[int, str | None, str | None]]:
    """The live links (id, email, phone) that may stand for the same people as ``records``."""
    shared = _of_people(Link.match_email, Link.match_phone, records)
    if shared is None:
        return []
    rows = await session.execute(
        select(Link.id, Link.match_email, Link.match_phone)
        .where(
            Link.connection_id == connection_id,
            Link.kind == kind,
            Link.state.in_((LinkState.LINKED, LinkState.PENDING)),
            shared,
        )
        .order_by(Link.id)
        .limit(len(records) * PERSON_RECORDS)
    )
    return rows.tuples().all()


async def people(
    session: AsyncSession, connection_id: int, job: str, batch: Sequence[StagedContact]
) -> People:
    """What deciding ``batch`` looks at, read with four queries for the whole batch."""
    found: dict[str, dict[str, Link]] = {}
    for side in ("rankr", "ghl"):
        ids = {record.record_id for record in batch if record.side == side}
        found[side] = await links.find_many(session, connection_id, Kind.CONTACT.value, side, ids)
    return People(
        links=found,
        staged=await staged_people(session, connection_id, job, batch),
        linked=await linked_people(session, connection_id, Kind.CONTACT.value, batch),
    )


async def outcome_counts(session: AsyncSession, connection_id: int, job: str) -> dict[str, int]:
    rows = await session.execute(
        select(StagedContact.side, StagedContact.outcome, func.count())
        .where(StagedContact.connection_id == connection_id, StagedContact.job == job)
        .group_by(StagedContact.side, StagedContact.outcome)
    )
    counts: dict[str, int] = {}
    for side, outcome, count in rows.all():
        key = f"{side}:{outcome or 'undecided'}"
        counts[key] = counts.get(key, 0) + count
    return counts


# --- queued events -------------------------------------------------------------------------------------


async def enqueue(session: AsyncSession, queued: Sequence[IncomingEvent], now: datetime) -> dict[str, int]:
    """Store synthetic events in the inbox (one statement), each once per event id: the row ids of
    those stored now, by event id (one stored before is left out)."""
    if not queued:
        return {}
    statement = (
        _insert(session, WebhookEvent)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(WebhookEvent.event_id, WebhookEvent.id)
    )
    rows = [event_row(event, now) for event in queued]  # as parameters: see ``stage``
    return dict((await session.execute(statement, rows)).tuples().all())


async def load(session: AsyncSession, ids: Collection[int]) -> None:
    """Read these staged records into the session at once (``session.get`` then finds them there)."""
    if ids:
        await session.execute(select(StagedContact).where(StagedContact.id.in_(ids)))


async def events_by_status(session: AsyncSession, prefix: str) -> dict[str, int]:
    """Synthetic events whose id starts with ``prefix``, by status."""
    rows = await session.execute(
        select(WebhookEvent.status, func.count())
        .where(WebhookEvent.event_id.like(prefix + "%"))
        .group_by(WebhookEvent.status)
    )
    return dict(rows.tuples().all())


async def events_by_type(session: AsyncSession, prefix: str) -> dict[tuple[str, str, str], int]:
    """Synthetic events whose id starts with ``prefix``, by source, type and status."""
    rows = await session.execute(
        select(WebhookEvent.source, WebhookEvent.type, WebhookEvent.status, func.count())
        .where(WebhookEvent.event_id.like(prefix + "%"))
        .group_by(WebhookEvent.source, WebhookEvent.type, WebhookEvent.status)
    )
    return {(source, kind, status): count for source, kind, status, count in rows.tuples().all()}


async def linked_contacts(
    session: AsyncSession, connection_id: int, after_id: int, limit: int
) -> Sequence[Link]:
    """The next linked contacts of the connection, by link id."""
    rows = await session.execute(
        select(Link)
        .where(
            Link.connection_id == connection_id,
            Link.kind == Kind.CONTACT,
            Link.state == LinkState.LINKED,
            Link.id > after_id,
        )
        .order_by(Link.id)
        .limit(limit)
    )
    return rows.scalars().all()


async def open_events(session: AsyncSession, prefix: str) -> int:
    """Synthetic events with this id prefix still to be applied (pending, processing or retrying)."""
    row = await session.execute(
        select(func.count()).where(
            WebhookEvent.status.in_(OPEN_STATUSES), WebhookEvent.event_id.like(prefix + "%")
        )
    )
    return int(row.scalar_one())
