"""Database plumbing: the declarative Base, portable column types, engine and session factories.

One schema serves Postgres (production) and SQLite (the embedded default). ``DATABASE_URL`` is a
plain ``sqlite:///`` or ``postgresql://`` URL; the async driver (aiosqlite, asyncpg) is chosen here.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import JSON, DateTime, MetaData, Table, event, exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# The largest key an Integer / BigInteger column holds (Postgres: 32 / 64 bits). A larger number
# names no row, and both drivers refuse to send it (OverflowError), so ids from outside are checked.
MAX_INTEGER_KEY = 2**31 - 1
MAX_BIGINT_KEY = 2**63 - 1


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for the statements a worker runs for every event.

    Those are built once, with ``bindparam`` placeholders, and run on the table rather than the
    model: building a statement, computing its cache key and the ORM's handling of an UPDATE cost
    several times what running a prebuilt Core statement does (bench/findings.md has the figures).
    """
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - every model here maps one table
    return table


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no offset, so values are stored in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONValue = JSON().with_variant(JSONB(), "postgresql")


def async_url(database_url: str) -> str:
    """The SQLAlchemy URL with the async driver this service uses for the given database."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    if url.drivername in {"sqlite", "sqlite+aiosqlite"}:
        return url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if url.drivername.startswith("postgresql"):
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database: {url.drivername}")


def is_postgres(database_url: str) -> bool:
    return make_url(async_url(database_url)).drivername.startswith("postgresql")


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to Postgres (else SQLite)."""
    return session.bind.dialect.name == "postgresql"


def asyncpg_arguments(database_url: str) -> dict[str, Any]:
    """``asyncpg.connect`` / ``create_pool`` arguments for a Postgres ``DATABASE_URL``, with its
    ``sslmode`` and libpq ``options`` (tests give each session a schema with ``-csearch_path=x``)."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    options = url.query.get("options")
    ssl = url.query.get("sslmode")
    return {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "ssl": ssl if isinstance(ssl, str) else None,
        "server_settings": server_settings(options) if isinstance(options, str) else None,
    }


def server_settings(options: str) -> dict[str, str]:
    """libpq's ``options`` (``-c name=value ...``) as asyncpg server settings."""
    settings: dict[str, str] = {}
    for part in options.replace("-c ", "-c").split():
        if part.startswith("-c") and "=" in part:
            name, _, value = part[2:].partition("=")
            settings[name] = value
    return settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the intake write while the worker reads; busy_timeout makes writers queue instead of
    # failing with "database is locked" when intake and worker commit at the same moment.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``DATABASE_URL``; a Postgres URL may carry libpq ``options=-csearch_path=x``.

    Its errors never carry the statement's parameters: those are contact data.
    """
    url = make_url(async_url(database_url))
    kwargs.setdefault("hide_parameters", True)
    if url.drivername.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    options = url.query.get("options")
    if isinstance(options, str):
        url = url.difference_update_query(["options"])
        kwargs.setdefault("connect_args", {})["server_settings"] = server_settings(options)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs)
    for name, listener in (
        ("connect", _idle_from_now),
        ("checkin", _idle_from_now),
        ("checkout", _ping_if_idle),
    ):
        event.listen(engine.sync_engine, name, listener)
    return engine


# A pooled Postgres connection is pinged before use only when it sat in the pool this long: one the
# server dropped meanwhile (a restart, a failover) is then replaced before any work fails on it.
# SQLAlchemy's ``pool_pre_ping`` pings at every checkout, and asyncpg's ping is three round trips
# (BEGIN, ";", ROLLBACK): under load, where a connection is back in use within milliseconds, that
# adds three statements to almost every one. A connection lost while in busy use fails its statement,
# which invalidates the pool (SQLAlchemy's disconnect handling); callers treat that as unavailable.
PING_AFTER_IDLE_SECONDS = 1.0


def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        # The pool replaces this connection and every one checked in before now, then checks out again.
        raise exc.InvalidatePoolError(f"the pooled connection failed its ping: {error}") from error


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def opened(database_url: str) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    """An engine and its session factory for one command's work, disposed when the work ends."""
    engine = create_engine(database_url)
    try:
        yield engine, session_factory(engine)
    finally:
        await dispose(engine)


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's connections; on SQLite, also wait for aiosqlite's threads to end.

    When a connection fails to open, aiosqlite stops its thread without waiting for it, and the
    thread then posts its last result to the event loop: had the loop closed meanwhile, the thread
    would die with a traceback ("Event loop is closed") after the command's own error.
    """
    await engine.dispose()
    if engine.dialect.name != "sqlite":
        return
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 1.0)


# Errors that say "the database cannot be reached now" rather than "this statement is wrong".
_AWAY = (
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    exc.TimeoutError,  # no pooled connection came free in time
)


# The types database errors come as, through SQLAlchemy or from a driver directly.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    exc.SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) means the database is away or overwhelmed for now.

    The API answers those with 503 (so senders retry) and the worker waits for them to pass; any
    other database error is a fault of the service and stays a 500.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _AWAY):
            return True
        if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True
        # The server's shutdown notice, arriving on an idle connection, leaves asyncpg's protocol
        # consuming an error; the next statement then fails with this instead of a lost connection.
        if isinstance(current, asyncpg.InternalClientError) and "cannot switch to state" in str(current):
            return True
        if isinstance(current, sqlite3.OperationalError) and (
            "locked" in str(current) or "unable to open" in str(current)
        ):
            return True
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return False


@asynccontextmanager
async def autocommit(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose statements each take effect on their own, outside any transaction: for
    lookups, and for work that is one statement (which is atomic by itself).

    On Postgres that spares the BEGIN and the COMMIT or ROLLBACK round trips around them (two of
    every three statements of a lone lookup) and changes nothing else: at READ COMMITTED every
    statement reads from a snapshot of its own anyway. Not for locking reads (``FOR UPDATE``), nor
    for several writes that must stand or fall together (``unit_of_work``). SQLite's driver opens
    no transaction for reads, so there the session is left as it is.
    """
    async with sessions() as session:
        if on_postgres(session):
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
        await session.commit()


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits when the block ends normally and rolls back otherwise."""
    async with sessions() as session, session.begin():
        yield session
