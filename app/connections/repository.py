"""SQL of connections and their observed rate budgets. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.models import Connection, ConnectionStatus, RateBudget
from app.kit.http import RateLimitSnapshot


async def all_connections(session: AsyncSession) -> Sequence[Connection]:
    return (await session.execute(select(Connection).order_by(Connection.id))).scalars().all()


async def by_account(session: AsyncSession, source: str, account_key: str) -> Connection | None:
    """The connection an event belongs to: by Rankr account id, or by GHL location id."""
    column = Connection.rankr_account_id if source == "rankr" else Connection.ghl_location_id
    return (await session.execute(select(Connection).where(column == account_key))).scalar_one_or_none()


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


async def save_budget(
    session: AsyncSession, connection_id: int, upstream: str, snap: RateLimitSnapshot
) -> None:
    row = (
        await session.execute(
            select(RateBudget).where(
                RateBudget.connection_id == connection_id, RateBudget.upstream == upstream
            )
        )
    ).scalar_one_or_none()
    if row is None:
        row = RateBudget(connection_id=connection_id, upstream=upstream, observed_at=snap.observed_at)
        session.add(row)
    row.limit = snap.limit
    row.remaining = snap.remaining
    row.window_ms = snap.window_ms
    row.reset_at = snap.reset_at
    row.daily_limit = snap.daily_limit
    row.daily_remaining = snap.daily_remaining
    row.observed_at = snap.observed_at


async def budgets(session: AsyncSession) -> Sequence[RateBudget]:
    return (await session.execute(select(RateBudget))).scalars().all()
