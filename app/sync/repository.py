"""SQL of the sync: links between records and the audit trail. Never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from app.db import on_postgres, table_of
from app.sync.models import Audit, AuditEntry, Link, LinkState, TaskPollLease

# The statements every event runs are built once (``table_of`` says why); ``cache`` builds each
# shape of the variable ones once.
LINKS = table_of(Link)
_LIVE = (LinkState.LINKED, LinkState.PENDING)
_OF_KIND = and_(Link.connection_id == bindparam("connection_id"), Link.kind == bindparam("kind"))


def _any_of(*arms: ColumnElement[bool]) -> ExecutableReturnsRows:
    """The links of one connection and kind that match any of the arms, as a UNION ALL of one query
    per arm (a link matching two arms comes twice).

    An OR of the arms leaves the plan to the table's size when Postgres first plans it, and a
    prepared statement keeps that plan: planned on a nearly empty ``links`` table (and never
    replanned while autovacuum is off), it walked every link of the connection for each lookup. Each
    arm here looks one id or key up in the index that leads with it, whatever the table holds.
    """
    return select(Link).from_statement(union_all(*(select(Link).where(_OF_KIND, arm) for arm in arms)))


def side_column(side: str) -> Any:
    return Link.rankr_id if side == "rankr" else Link.ghl_id


async def get(session: AsyncSession, link_id: int) -> Link | None:
    return await session.get(Link, link_id, populate_existing=True)


@cache
def _find(side: str) -> Select[tuple[Link]]:
    return select(Link).where(_OF_KIND, side_column(side) == bindparam("record_id"))


async def find(
    session: AsyncSession, connection_id: int, kind: str, side: str, record_id: str
) -> Link | None:
    params = {"connection_id": connection_id, "kind": kind, "record_id": record_id}
    return (await session.execute(_find(side), params)).scalar_one_or_none()


_FIND_PAIR = _any_of(Link.rankr_id == bindparam("rankr_id"), Link.ghl_id == bindparam("ghl_id"))


async def find_pair(
    session: AsyncSession, connection_id: int, kind: str, rankr_id: str, ghl_id: str
) -> tuple[Link | None, Link | None]:
    """The link of a Rankr record and that of a GHL record (the same link when they are paired), in
    one query."""
    params = {"connection_id": connection_id, "kind": kind, "rankr_id": rankr_id, "ghl_id": ghl_id}
    found = (await session.execute(_FIND_PAIR, params)).scalars().all()
    by_rankr = next((link for link in found if link.rankr_id == rankr_id), None)
    return by_rankr, next((link for link in found if link.ghl_id == ghl_id), None)


async def find_many(
    session: AsyncSession, connection_id: int, kind: str, side: str, record_ids: Collection[str]
) -> dict[str, Link]:
    """The links of these records of one side, by record id (those that have one)."""
    if not record_ids:
        return {}
    params = {"connection_id": connection_id, "kind": kind, "record_ids": list(record_ids)}
    rows = await session.execute(_find_many(side, on_postgres(session)), params)
    return {getattr(link, f"{side}_id"): link for link in rows.scalars()}


@cache
def _find_many(side: str, postgres: bool) -> Select[tuple[Link]]:
    """On Postgres, one lookup of the side's unique index per id. An IN list is planned like an OR
    (``_any_of``): on a nearly empty table, as a walk of every link of the connection. A LATERAL
    subquery with a LIMIT stays a lookup of its own, which the unique index answers whatever the
    table holds. SQLite's planner takes that index for the IN list."""
    if not postgres:
        return select(Link).where(_OF_KIND, side_column(side).in_(bindparam("record_ids", expanding=True)))
    wanted = func.unnest(bindparam("record_ids", type_=ARRAY(String))).table_valued("id").render_derived()
    found = select(Link).where(_OF_KIND, side_column(side) == wanted.c.id).limit(1).lateral("found")
    return select(aliased(Link, found)).select_from(wanted).join(found, true())


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
    params = {"connection_id": connection_id, "kind": kind, "record_id": record_id, "parent_id": parent_id}
    rows = await session.execute(_find_with_pending(side, parent_id is not None), params)
    found: Link | None = None
    pending: list[Link] = []
    for link in rows.scalars():
        if getattr(link, f"{side}_id") == record_id:
            found = link
        else:
            pending.append(link)
    return found, pending


@cache
def _find_with_pending(side: str, under_parent: bool) -> ExecutableReturnsRows:
    column = side_column(side)
    in_flight = and_(Link.state == LinkState.PENDING, column.is_(None))
    if under_parent:
        in_flight = and_(in_flight, Link.parent_id == bindparam("parent_id"))
    return _any_of(column == bindparam("record_id"), in_flight)


async def find_by_match(
    session: AsyncSession, connection_id: int, kind: str, email: str | None, phone: str | None
) -> Sequence[Link]:
    """Live links whose record has this normalised email or phone."""
    if not email and not phone:
        return []
    params = {"connection_id": connection_id, "kind": kind, "email": email, "phone": phone}
    rows = await session.execute(_find_by_match(bool(email), bool(phone)), params)
    return list(dict.fromkeys(rows.scalars()))  # once each, though it may match both arms


@cache
def _find_by_match(email: bool, phone: bool) -> ExecutableReturnsRows:
    arms = [Link.match_email == bindparam("email")] if email else []
    if phone:
        arms.append(Link.match_phone == bindparam("phone"))
    return _any_of(*(and_(arm, Link.state.in_(_LIVE)) for arm in arms))


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


_RENEW = update(LINKS).where(LINKS.c.lease_owner.in_(bindparam("owners", expanding=True)))


async def renew_leases(session: AsyncSession, owners: Collection[str], until: datetime) -> None:
    """Extend the leases that ``owners`` (jobs still at work) hold on links to ``until``."""
    await session.execute(_RENEW, {"lease_until": until, "owners": list(owners)})


_INSERT = insert(LINKS).returning(LINKS.c.id)


async def create(session: AsyncSession, values: dict[str, Any]) -> int:
    """A new link's row; its id."""
    return int((await session.execute(_INSERT, values)).scalar_one())


# Its SET clause is the keys of the parameters it runs with (SQLAlchemy compiles each set once).
_SAVE = update(LINKS).where(LINKS.c.id == bindparam("link_id"), LINKS.c.lease_owner == bindparam("owner"))


async def save(session: AsyncSession, link_id: int, owner: str, values: dict[str, Any]) -> bool:
    """Write the link's new state and release its lease, if ``owner`` still holds it."""
    params = {**values, "lease_owner": None, "lease_until": None, "link_id": link_id, "owner": owner}
    result = await session.execute(_SAVE, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def remove(session: AsyncSession, link_id: int, owner: str) -> None:
    link = await session.get(Link, link_id)
    if link is not None and link.lease_owner == owner:
        await session.delete(link)


_ADD_AUDIT = insert(table_of(AuditEntry))


async def add_audit(
    session: AsyncSession,
    audit: Audit,
    *,
    at: datetime,
    connection_id: int,
    event_id: int | None,
    event_type: str | None,
    event_ref: str | None,
) -> None:
    """Store ``audit`` as the row of a write made for the event ``event_id`` of ``connection_id``."""
    values = {
        **asdict(audit),
        "at": at,
        "connection_id": connection_id,
        "event_id": event_id,
        "event_type": event_type,
        "event_ref": event_ref,
    }
    await session.execute(_ADD_AUDIT, values)


async def link_counts(session: AsyncSession) -> dict[tuple[int, str], int]:
    rows = await session.execute(
        select(Link.connection_id, Link.kind, func.count())
        .where(Link.state == LinkState.LINKED)
        .group_by(Link.connection_id, Link.kind)
    )
    return {(connection_id, kind): count for connection_id, kind, count in rows.all()}


async def children(session: AsyncSession, parent_id: int, kind: str) -> Sequence[Link]:
    """The links of one kind held under a contact's link, in any state."""
    rows = await session.execute(
        select(Link).where(Link.parent_id == parent_id, Link.kind == kind).order_by(Link.id)
    )
    return rows.scalars().all()


async def set_children_state(session: AsyncSession, parent_id: int, state: str, now: datetime) -> None:
    """End the links of a record's tasks and notes (their contact was deleted or unlinked)."""
    await session.execute(
        update(Link)
        .where(Link.parent_id == parent_id, Link.state.in_(_LIVE))
        .values(state=state, lease_owner=None, lease_until=None, updated_at=now)
    )


async def take_task_poll(
    session: AsyncSession, connection_id: int, holder: str, now: datetime, until: datetime
) -> bool:
    """Take or renew the lease on polling a connection's GHL task lists; False while another holds it."""
    insert_ = postgresql.insert if on_postgres(session) else sqlite.insert
    made = await session.execute(
        insert_(TaskPollLease)
        .values(connection_id=connection_id, holder=holder, lease_until=until)
        .on_conflict_do_nothing(index_elements=["connection_id"])
    )
    if made.rowcount:  # type: ignore[attr-defined]
        return True
    taken = await session.execute(
        update(TaskPollLease)
        .where(
            TaskPollLease.connection_id == connection_id,
            or_(TaskPollLease.holder == holder, TaskPollLease.lease_until < now),
        )
        .values(holder=holder, lease_until=until)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]
