"""Pooled Postgres connections the server dropped: replaced before use after a pause, and otherwise
failing one statement as "unavailable" (which callers retry), never for longer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import db
from tests.support.databases import psql

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def postgres_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(postgres_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    return pid


def drop(pid: int) -> None:
    """The server ends the backend, as a restart or a failover would."""
    assert psql(f"SELECT pg_terminate_backend({pid})").strip() == "t"


async def test_a_connection_dropped_while_it_sat_in_the_pool_is_replaced_before_use(
    postgres_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    first = await backend_pid(postgres_engine)
    drop(first)
    await asyncio.sleep(0.3)

    assert await backend_pid(postgres_engine) != first


async def test_a_connection_dropped_while_in_busy_use_fails_one_statement_as_unavailable(
    postgres_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Back in use within the pause: no ping (that is what keeps busy checkouts cheap).
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 60.0)
    first = await backend_pid(postgres_engine)
    drop(first)

    with pytest.raises(DBAPIError) as failed:
        await backend_pid(postgres_engine)
    assert db.is_unavailable(failed.value)
    assert await backend_pid(postgres_engine) != first
