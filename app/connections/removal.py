"""Removing a connection, the one way the console and the CLI both take."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections import repository as connections
from app.db import unit_of_work
from app.integrations.registry import UpstreamRegistry


async def remove_connection(
    sessions: async_sessionmaker[AsyncSession], connection_id: int, registry: UpstreamRegistry | None
) -> bool:
    """Delete a connection with its credentials, links, audit entries and budgets (its events stay, as
    unrouted), and drop what ``registry`` (this process's, when it serves) holds for it. A service
    running elsewhere keeps its clients until it restarts, but writes no budget row for the removed
    connection. False when there is none with this id."""
    async with unit_of_work(sessions) as session:
        removed = await connections.remove(session, connection_id)
    if registry is not None:
        registry.forget(connection_id)
    return removed
