"""The intake's one insert: a Core statement built once, run on the service's engine.

Its placeholders carry the ``webhook_events`` columns' own types, so the payload and the times are
encoded exactly as the ORM writes and reads them. The statement is text rather than the dialects'
``insert().on_conflict_do_nothing()`` because SQLAlchemy never caches those (their ``Insert`` sets
``inherit_cache = False``) and would compile one per request; a typed text statement is compiled
once. On Postgres it runs autocommitted: one round trip, no BEGIN or COMMIT around it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, dispose, is_unavailable, table_of
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


class InboxWriter(ABC):
    """Inserts one event row unless its (source, event_id) is stored; True when it was new."""

    @abstractmethod
    async def insert(self, row: dict[str, Any]) -> bool: ...

    @abstractmethod
    async def close(self) -> None: ...


def insert_statement() -> TextClause:
    table = table_of(WebhookEvent)
    statement = text(
        "INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at,"
        " status, attempts, next_attempt_at) VALUES (:source, :event_id, :type, :account_key, :ordering_key,"
        " :payload, :received_at, :status, :attempts, :next_attempt_at)"
        " ON CONFLICT (source, event_id) DO NOTHING"
    )
    return statement.bindparams(*(bindparam(name, type_=table.c[name].type) for name in COLUMNS))


class CoreWriter(InboxWriter):
    """The insert on ``engine`` (the service's own); ``owned`` engines are disposed by ``close``."""

    STATEMENT = insert_statement()

    def __init__(self, engine: AsyncEngine, *, owned: bool = False) -> None:
        self._owned = engine if owned else None
        self._engine = engine
        if engine.dialect.name == "postgresql":
            self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def insert(self, row: dict[str, Any]) -> bool:
        try:
            return await self._insert(row)
        except Exception as error:
            if not is_unavailable(error):
                raise
        # A pooled connection the server dropped (it restarted): the pool has let it go; one more
        # try on a fresh one. The insert is idempotent (ON CONFLICT DO NOTHING).
        return await self._insert(row)

    async def _insert(self, row: dict[str, Any]) -> bool:
        async with self._engine.connect() as connection:
            result = await connection.execute(self.STATEMENT, row)
            await connection.commit()
        return result.rowcount == 1

    async def close(self) -> None:
        if self._owned is not None:
            await dispose(self._owned)


async def open_writer(database_url: str) -> InboxWriter:
    """A writer with an engine of its own, for a process that has none (tools, tests)."""
    return CoreWriter(create_engine(database_url), owned=True)
