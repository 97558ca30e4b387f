"""The shared request budgets in the database: the ``SlotStore`` of every connection and upstream.

Each reservation is one autocommitted statement on its own connection (no BEGIN/COMMIT round
trips): the budget must be shared the moment it is spent, whatever transaction the caller is in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.connections import repository
from app.errors import UnroutableEvent
from app.kit.clock import Clock
from app.kit.pacing import Grant, Pacer, RateLimits, SlotRequest, SlotStore


class BudgetRow(SlotStore):
    """The ``rate_budgets`` row of one connection and upstream."""

    def __init__(self, engine: AsyncEngine, connection_id: int, upstream: str) -> None:
        self._engine = engine
        self._connection_id = connection_id
        self._upstream = upstream

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")

    async def reserve(self, request: SlotRequest) -> Grant:
        async with self._autocommit() as connection:
            grant = await repository.reserve_slots(connection, self._connection_id, self._upstream, request)
            if grant is None:
                await repository.create_budget(connection, self._connection_id, self._upstream)
                grant = await repository.reserve_slots(
                    connection, self._connection_id, self._upstream, request
                )
        if grant is None:  # the row was just made unless the connection was removed meanwhile
            raise UnroutableEvent(f"connection {self._connection_id} was removed")
        return grant

    async def push_back(self, until: float) -> None:
        async with self._autocommit() as connection:
            await repository.push_back_slots(connection, self._connection_id, self._upstream, until)


def rate_limits(settings: Settings, upstream: str) -> RateLimits:
    """The configured budget of an upstream (the documented one unless the settings change it)."""
    if upstream == "ghl":
        return RateLimits(
            settings.ghl_rate_limit,
            settings.ghl_rate_window_seconds,
            settings.ghl_daily_limit,
            settings.rate_limit_headroom,
        )
    return RateLimits(
        settings.rankr_rate_limit, settings.rankr_rate_window_seconds, None, settings.rate_limit_headroom
    )


def pacer(engine: AsyncEngine, settings: Settings, clock: Clock, connection_id: int, upstream: str) -> Pacer:
    """The pacer of one connection's requests to one upstream, in this process."""
    return Pacer(
        BudgetRow(engine, connection_id, upstream),
        rate_limits(settings, upstream),
        name=f"{upstream} (connection {connection_id})",
        now=lambda: clock().timestamp(),
    )
