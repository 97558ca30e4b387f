"""The intake's one insert: a SQLAlchemy Core statement, compiled once, run on the database driver.

SQLAlchemy builds the statement (``insert().on_conflict_do_nothing()`` on ``webhook_events``) for
the dialect of ``DATABASE_URL`` and encodes each value with its column type's own bind processor,
so the row is stored exactly as the ORM writes it. Only the execution skips SQLAlchemy: the dialect
insert is never cached (its ``Insert`` sets ``inherit_cache = False``), and its async adaption adds a
pool checkout and greenlet switches. Run through the engine, the same insert cost the intake about
twice the CPU per request (bench/findings.md has the figures), so it runs on a pool of the driver's
own (asyncpg) or a connection of its own (aiosqlite).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url

from app.db import async_url, asyncpg_arguments, is_postgres, is_unavailable, table_of
from app.inbox.models import WebhookEvent

COLUMNS = (
    "source",
    "event_id",
    "type",
    "account_key",
    "ordering_key",
    "payload",
    "received_at",
    "status",
    "attempts",
    "next_attempt_at",
)


class CompiledInsert:
    """The insert as the dialect's SQL, with its parameters in order and each one's encoder."""

    def __init__(self, dialect: Dialect) -> None:
        table = table_of(WebhookEvent)
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        statement = insert(table).values({name: bindparam(name) for name in COLUMNS})
        compiled = statement.on_conflict_do_nothing(index_elements=["source", "event_id"]).compile(
            dialect=dialect
        )
        self.sql = str(compiled)
        names = compiled.positiontup or []
        self._encoders: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names
        ]

    def values(self, row: dict[str, Any]) -> list[Any]:
        return [row[name] if encode is None else encode(row[name]) for name, encode in self._encoders]


def dialect_of(database_url: str) -> Dialect:
    dialect: Dialect = make_url(async_url(database_url)).get_dialect()()
    return dialect


class InboxWriter(ABC):
    """Inserts one event row unless its (source, event_id) is stored; True when it was new."""

    @abstractmethod
    async def insert(self, row: dict[str, Any]) -> bool: ...

    @abstractmethod
    async def close(self) -> None: ...


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release (a round trip per request): these connections only run
    one autocommitted INSERT, so they hold no transaction, locks, listeners or settings to reset."""


class PostgresWriter(InboxWriter):
    def __init__(self, pool: asyncpg.Pool, insert: CompiledInsert) -> None:
        self._pool = pool
        self._insert_statement = insert

    @classmethod
    async def open(cls, database_url: str, max_size: int) -> PostgresWriter:
        pool = await asyncpg.create_pool(
            **asyncpg_arguments(database_url),
            min_size=1,
            max_size=max_size,
            reset=_no_reset,
        )
        return cls(pool, CompiledInsert(dialect_of(database_url)))

    async def insert(self, row: dict[str, Any]) -> bool:
        values = self._insert_statement.values(row)
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
            status: str = await connection.execute(self._insert_statement.sql, *values)
        return status.endswith(" 1")

    async def close(self) -> None:
        await self._pool.close()


class SqliteWriter(InboxWriter):
    def __init__(self, connection: aiosqlite.Connection, insert: CompiledInsert) -> None:
        self._connection = connection
        self._insert_statement = insert

    @classmethod
    async def open(cls, database_url: str) -> SqliteWriter:
        path = make_url(database_url).database or ":memory:"
        connection = await aiosqlite.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
            await connection.execute(f"PRAGMA {pragma}")
        return cls(connection, CompiledInsert(dialect_of(database_url)))

    async def insert(self, row: dict[str, Any]) -> bool:
        cursor = await self._connection.execute(
            self._insert_statement.sql, self._insert_statement.values(row)
        )
        inserted = cursor.rowcount == 1
        await cursor.close()
        return inserted

    async def close(self) -> None:
        await self._connection.close()


async def open_writer(database_url: str, *, max_connections: int = 16) -> InboxWriter:
    if is_postgres(database_url):
        return await PostgresWriter.open(database_url, max_connections)
    return await SqliteWriter.open(database_url)
