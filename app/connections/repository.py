"""SQL of connections and their rate budgets. Never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Update,
    bindparam,
    case,
    delete,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.connections.models import Connection, ConnectionStatus, ConnectionVerification, RateBudget
from app.db import table_of
from app.kit.http import RateLimitSnapshot
from app.kit.pacing import Grant, SlotRequest, seconds_to_midnight


async def all_connections(session: AsyncSession) -> Sequence[Connection]:
    return (await session.execute(select(Connection).order_by(Connection.id))).scalars().all()


async def set_status(session: AsyncSession, connection_id: int, status: str, now: datetime) -> bool:
    """Disable or re-enable a connection; False when there is none with this id."""
    row = await session.get(Connection, connection_id)
    if row is None:
        return False
    row.status = status
    row.updated_at = now
    return True


async def remove(session: AsyncSession, connection_id: int) -> bool:
    """Delete a connection; its credentials, links, audit entries and budgets go with it (ON DELETE
    CASCADE), its events stay as unrouted. False when there is none with this id."""
    deleted = await session.execute(delete(Connection).where(Connection.id == connection_id))
    return bool(getattr(deleted, "rowcount", 0))


_BY_ACCOUNTS = select(Connection).where(
    Connection.rankr_account_id.in_(bindparam("rankr", expanding=True))
    | Connection.ghl_location_id.in_(bindparam("ghl", expanding=True))
)


async def by_accounts(
    session: AsyncSession, accounts: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Connection]:
    """The connections events belong to, by (source, account key): a Rankr account id, or a GHL
    location id. One query for all of them; accounts with no connection are left out."""
    if not accounts:
        return {}
    rankr = {key for source, key in accounts if source == "rankr"}
    ghl = {key for source, key in accounts if source != "rankr"}
    rows = await session.execute(_BY_ACCOUNTS, {"rankr": list(rankr), "ghl": list(ghl)})
    found: dict[tuple[str, str], Connection] = {}
    for connection in rows.scalars():
        found[("rankr", connection.rankr_account_id)] = connection
        found[("ghl", connection.ghl_location_id)] = connection
    return {account: found[account] for account in accounts if account in found}


async def ensure(
    session: AsyncSession, rankr_account_id: str, ghl_location_id: str, now: datetime
) -> Connection:
    """Create the connection for this account and location, or return the one that exists."""
    existing = (
        (
            await session.execute(
                select(Connection).where(
                    (Connection.rankr_account_id == rankr_account_id)
                    | (Connection.ghl_location_id == ghl_location_id)
                )
            )
        )
        .scalars()
        .all()
    )
    for connection in existing:
        if connection.rankr_account_id == rankr_account_id and connection.ghl_location_id == ghl_location_id:
            return connection
    if existing:
        taken = existing[0]
        raise ValueError(
            f"connection {taken.id} already links Rankr account {taken.rankr_account_id} "
            f"with GHL location {taken.ghl_location_id}"
        )
    connection = Connection(
        name=f"{rankr_account_id} <-> {ghl_location_id}",
        rankr_account_id=rankr_account_id,
        ghl_location_id=ghl_location_id,
        status=ConnectionStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    session.add(connection)
    await session.flush()
    return connection


def _budget(connection_id: int, upstream: str) -> ColumnElement[bool]:
    return (RateBudget.connection_id == connection_id) & (RateBudget.upstream == upstream)


def _greatest(a: Any, b: Any) -> Any:
    # GREATEST on Postgres is MAX on SQLite: a CASE is the same on both.
    return case((a > b, a), else_=b)


@cache
def _reserve(daily_limit: bool) -> Update:
    """Prebuilt (see ``table_of``): the reservation, refused past ``latest`` (and, with
    ``daily_limit``, past the day's limit)."""
    budgets = table_of(RateBudget)
    start = _greatest(budgets.c.next_slot, bindparam("not_before", type_=Float))
    used = _greatest(
        case((budgets.c.day == bindparam("today"), budgets.c.day_count), else_=0),
        bindparam("used_at_least", type_=Integer),
    )
    conditions = [
        budgets.c.connection_id == bindparam("budget_connection"),
        budgets.c.upstream == bindparam("budget_upstream"),
        start <= bindparam("latest", type_=Float),
    ]
    if daily_limit:
        conditions.append(
            used + bindparam("count", type_=Integer) <= bindparam("limit_per_day", type_=Integer)
        )
    return (
        update(budgets)
        .where(*conditions)
        .values(
            next_slot=start + bindparam("span", type_=Float),
            day=bindparam("today"),
            day_count=used + bindparam("count", type_=Integer),
        )
        .returning(budgets.c.next_slot)
    )


async def reserve_slots(
    connection: AsyncConnection, connection_id: int, upstream: str, request: SlotRequest
) -> Grant | None:
    """Reserve ``request.count`` slots in one atomic UPDATE, or say how long to wait; None: no row.

    The row lock (Postgres) or the single writer (SQLite) makes concurrent reservations of every
    process queue up, each seeing the schedule the previous one left.
    """
    reserve = _reserve(request.daily_limit is not None)
    params = {
        "budget_connection": connection_id,
        "budget_upstream": upstream,
        "not_before": request.not_before,
        "latest": request.now + request.max_wait,
        "today": request.today,
        "used_at_least": request.used_today_at_least,
        "count": request.count,
        "limit_per_day": request.daily_limit,
        "span": request.count * request.interval,
    }
    for _ in range(3):
        next_slot = (await connection.execute(reserve, params)).scalar_one_or_none()
        if next_slot is not None:
            return Grant(first_slot=next_slot - request.count * request.interval, next_slot=next_slot)
        row = (
            await connection.execute(
                select(RateBudget.next_slot, RateBudget.day, RateBudget.day_count).where(
                    _budget(connection_id, upstream)
                )
            )
        ).one_or_none()
        if row is None:
            return None
        wait = max(row.next_slot, request.not_before) - request.now
        if wait > request.max_wait:
            return Grant(first_slot=None, next_slot=row.next_slot, wait=wait)
        spent = max(row.day_count if row.day == request.today else 0, request.used_today_at_least)
        if request.daily_limit is not None and spent + request.count > request.daily_limit:
            return Grant(first_slot=None, next_slot=row.next_slot, wait=seconds_to_midnight(request.now))
        # Neither refuses now: the row changed between the two statements (it was just made). Again.
    return Grant(first_slot=None, next_slot=request.now, wait=request.interval)


def _budget_row(dialect: str, connection_id: int, values: dict[str, Any]) -> Any:
    """INSERT of the budget row with ``values`` while the connection exists, else of no row: for a
    connection removed meanwhile (by another process) nothing is written, no foreign key error."""
    columns = RateBudget.__table__.c
    row = {"connection_id": connection_id, **values}
    typed = [literal(value, columns[name].type) for name, value in row.items()]
    only_if_connected = select(*typed).where(exists().where(Connection.id == connection_id))
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(RateBudget).from_select(list(row), only_if_connected)


async def create_budget(connection: AsyncConnection, connection_id: int, upstream: str) -> None:
    """The budget row of a connection and upstream, unless it exists (any process may race here) or
    the connection was removed."""
    row = {"upstream": upstream, "next_slot": 0.0, "day_count": 0}
    insert = _budget_row(connection.dialect.name, connection_id, row)
    await connection.execute(insert.on_conflict_do_nothing(index_elements=["connection_id", "upstream"]))


async def push_back_slots(
    connection: AsyncConnection, connection_id: int, upstream: str, until: float
) -> None:
    """No slot before ``until`` (a 429's Retry-After), for every process."""
    await connection.execute(
        update(RateBudget)
        .where(_budget(connection_id, upstream))
        .values(next_slot=_greatest(RateBudget.next_slot, until))
    )


async def save_budget(
    session: AsyncSession, connection_id: int, upstream: str, snap: RateLimitSnapshot
) -> None:
    """Record the rate-limit headers an upstream sent last (for /status); nothing for a connection
    removed meanwhile."""
    seen = {
        "limit": snap.limit,
        "remaining": snap.remaining,
        "window_ms": snap.window_ms,
        "reset_at": snap.reset_at,
        "daily_limit": snap.daily_limit,
        "daily_remaining": snap.daily_remaining,
        "observed_at": snap.observed_at,
    }
    insert = _budget_row(session.get_bind().dialect.name, connection_id, {"upstream": upstream, **seen})
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["connection_id", "upstream"],
            set_={name: getattr(insert.excluded, name) for name in seen},
        )
    )


async def budgets(session: AsyncSession) -> Sequence[RateBudget]:
    return (await session.execute(select(RateBudget))).scalars().all()


async def to_verify(
    session: AsyncSession, connection_id: int | None, *, active_only: bool
) -> Sequence[Connection]:
    """One connection (``connection_id``) or all, only the active ones with ``active_only``."""
    query = select(Connection).order_by(Connection.id)
    if connection_id is not None:
        query = query.where(Connection.id == connection_id)
    if active_only:
        query = query.where(Connection.status == ConnectionStatus.ACTIVE)
    return (await session.execute(query)).scalars().all()


async def save_verification(
    session: AsyncSession,
    connection_id: int,
    *,
    checked_at: datetime,
    problem: dict[str, str] | None,
    location_name: str | None,
) -> None:
    """Record the latest verification of a connection (``problem``: code, reason, fix; None: verified)."""
    row = await session.get(ConnectionVerification, connection_id)
    if row is None:
        row = ConnectionVerification(connection_id=connection_id)
        session.add(row)
    row.verified = problem is None
    row.checked_at = checked_at
    row.problem_code = problem["code"] if problem else None
    row.problem_reason = problem["reason"] if problem else None
    row.problem_fix = problem["fix"] if problem else None
    row.location_name = location_name


async def verifications(session: AsyncSession) -> dict[int, ConnectionVerification]:
    rows = (await session.execute(select(ConnectionVerification))).scalars().all()
    return {row.connection_id: row for row in rows}
