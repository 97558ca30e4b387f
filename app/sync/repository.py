"""SQL of the sync: links between records and the audit trail. Never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.sync.models import AuditEntry, Link, LinkState


def side_column(side: str) -> Any:
    return Link.rankr_id if side == "rankr" else Link.ghl_id


async def get(session: AsyncSession, link_id: int) -> Link | None:
    return await session.get(Link, link_id, populate_existing=True)


async def find(
    session: AsyncSession, connection_id: int, kind: str, side: str, record_id: str
) -> Link | None:
    row = await session.execute(
        select(Link).where(
            Link.connection_id == connection_id, Link.kind == kind, side_column(side) == record_id
        )
    )
    return row.scalar_one_or_none()


async def find_pair(
    session: AsyncSession, connection_id: int, kind: str, rankr_id: str, ghl_id: str
) -> tuple[Link | None, Link | None]:
    """The link of a Rankr record and that of a GHL record (the same link when they are paired), in
    one query."""
    rows = await session.execute(
        select(Link).where(
            Link.connection_id == connection_id,
            Link.kind == kind,
            or_(Link.rankr_id == rankr_id, Link.ghl_id == ghl_id),
        )
    )
    found = rows.scalars().all()
    by_rankr = next((link for link in found if link.rankr_id == rankr_id), None)
    return by_rankr, next((link for link in found if link.ghl_id == ghl_id), None)


async def find_many(
    session: AsyncSession, connection_id: int, kind: str, side: str, record_ids: Collection[str]
) -> dict[str, Link]:
    """The links of these records of one side, by record id (those that have one)."""
    if not record_ids:
        return {}
    column = side_column(side)
    rows = await session.execute(
        select(Link).where(Link.connection_id == connection_id, Link.kind == kind, column.in_(record_ids))
    )
    return {getattr(link, f"{side}_id"): link for link in rows.scalars()}


async def find_with_pending(
    session: AsyncSession,
    connection_id: int,
    kind: str,
    side: str,
    record_id: str,
    *,
    parent_id: int | None = None,
) -> tuple[Link | None, list[Link]]:
    """The link of a record, and the links still being created toward the record's side (only those
    under ``parent_id`` when given: the tasks or notes of one contact).

    One statement, so the answer is one consistent snapshot: a create that finishes between two
    separate queries could otherwise be missed by both.
    """
    column = side_column(side)
    in_flight = and_(Link.state == LinkState.PENDING, column.is_(None))
    if parent_id is not None:
        in_flight = and_(in_flight, Link.parent_id == parent_id)
    rows = await session.execute(
        select(Link).where(
            Link.connection_id == connection_id, Link.kind == kind, or_(column == record_id, in_flight)
        )
    )
    found: Link | None = None
    pending: list[Link] = []
    for link in rows.scalars():
        if getattr(link, f"{side}_id") == record_id:
            found = link
        else:
            pending.append(link)
    return found, pending


async def find_by_match(
    session: AsyncSession, connection_id: int, kind: str, email: str | None, phone: str | None
) -> Sequence[Link]:
    """Live links whose record has this normalised email or phone."""
    conditions = []
    if email:
        conditions.append(Link.match_email == email)
    if phone:
        conditions.append(Link.match_phone == phone)
    if not conditions:
        return []
    rows = await session.execute(
        select(Link).where(
            Link.connection_id == connection_id,
            Link.kind == kind,
            Link.state.in_((LinkState.LINKED, LinkState.PENDING)),
            or_(*conditions),
        )
    )
    return rows.scalars().all()


async def acquire_lease(
    session: AsyncSession, link_id: int, owner: str, now: datetime, until: datetime
) -> Link | None:
    """Take the link's lease unless someone else holds an unexpired one: the link as it is now (one
    statement), or None."""
    result = await session.execute(
        update(Link)
        .where(
            Link.id == link_id,
            or_(Link.lease_until.is_(None), Link.lease_until < now, Link.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=until)
        .returning(Link)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return result.scalar_one_or_none()


async def release_lease(session: AsyncSession, link_id: int, owner: str) -> None:
    await session.execute(
        update(Link)
        .where(Link.id == link_id, Link.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


async def save(session: AsyncSession, link_id: int, owner: str, values: dict[str, Any]) -> bool:
    """Write the link's new state and release its lease, if ``owner`` still holds it."""
    result = await session.execute(
        update(Link)
        .where(Link.id == link_id, Link.lease_owner == owner)
        .values(**values, lease_owner=None, lease_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def remove(session: AsyncSession, link_id: int, owner: str) -> None:
    link = await session.get(Link, link_id)
    if link is not None and link.lease_owner == owner:
        await session.delete(link)


def add_audit(session: AsyncSession, **values: Any) -> None:
    session.add(AuditEntry(**values))


async def link_counts(session: AsyncSession) -> dict[tuple[int, str], int]:
    rows = await session.execute(
        select(Link.connection_id, Link.kind, func.count())
        .where(Link.state == LinkState.LINKED)
        .group_by(Link.connection_id, Link.kind)
    )
    return {(connection_id, kind): count for connection_id, kind, count in rows.all()}


async def set_children_state(session: AsyncSession, parent_id: int, state: str, now: datetime) -> None:
    """End the links of a record's tasks and notes (their contact was deleted or unlinked)."""
    await session.execute(
        update(Link)
        .where(Link.parent_id == parent_id, Link.state.in_((LinkState.LINKED, LinkState.PENDING)))
        .values(state=state, lease_owner=None, lease_until=None, updated_at=now)
    )
