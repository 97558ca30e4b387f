"""The intake baseline's insert, on the database driver itself (asyncpg on Postgres, aiosqlite on SQLite).

The service inserts through SQLAlchemy (``app.inbox.writer``); this is the least that insert can
cost, which the intake benchmark's baseline app uses so that its figures price the service's
database layer too. Values are encoded as the ORM reads them back: JSON as text, times in UTC (on
SQLite as the naive ISO text SQLAlchemy's DateTime stores).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy.engine import make_url

from app.db import asyncpg_arguments, is_postgres, is_unavailable
from app.inbox.writer import COLUMNS, InboxWriter

# The same statement on both databases, but for the placeholders (and the jsonb cast on Postgres).
_INSERT = (
    "INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at, "
    "status, attempts, next_attempt_at) VALUES ({}) ON CONFLICT (source, event_id) DO NOTHING"
)


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (a round trip per request): these connections only run
    one autocommitted INSERT, so they hold no transaction, locks, listeners or settings to reset."""


class PostgresWriter(InboxWriter):
    SQL = _INSERT.format("$1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, database_url: str, max_size: int) -> PostgresWriter:
        pool = await asyncpg.create_pool(
            **asyncpg_arguments(database_url),
            min_size=1,
            max_size=max_size,
            reset=_no_reset,
        )
        return cls(pool)

    async def insert(self, row: dict[str, Any]) -> bool:
        values = [json.dumps(row[name]) if name == "payload" else row[name] for name in COLUMNS]
        try:
            return await self._insert(values)
        except Exception as error:
            if not is_unavailable(error):
                raise
        # A pooled connection the server dropped (it restarted): the pool has let it go; one more
        # try on a fresh one. The insert is idempotent (ON CONFLICT DO NOTHING).
        return await self._insert(values)

    async def _insert(self, values: list[Any]) -> bool:
        async with self._pool.acquire() as connection:
            status: str = await connection.execute(self.SQL, *values)
        return status.endswith(" 1")

    async def close(self) -> None:
        await self._pool.close()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dict):
        return json.dumps(value)
    return value


class SqliteWriter(InboxWriter):
    SQL = _INSERT.format(", ".join("?" * len(COLUMNS)))

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    @classmethod
    async def open(cls, database_url: str) -> SqliteWriter:
        path = make_url(database_url).database or ":memory:"
        connection = await aiosqlite.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
            await connection.execute(f"PRAGMA {pragma}")
        return cls(connection)

    async def insert(self, row: dict[str, Any]) -> bool:
        values = [_sqlite_value(row[name]) for name in COLUMNS]
        cursor = await self._connection.execute(self.SQL, values)
        inserted = cursor.rowcount == 1
        await cursor.close()
        return inserted

    async def close(self) -> None:
        await self._connection.close()


async def open_writer(database_url: str, *, max_connections: int = 16) -> InboxWriter:
    if is_postgres(database_url):
        return await PostgresWriter.open(database_url, max_connections)
    return await SqliteWriter.open(database_url)
