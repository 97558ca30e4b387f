"""What a database error means to the person running the service: its cause and the fix, in words.

One classification serves every place a database error reaches a user: the CLI's one-line error
(exit status 2), ``serve``'s start-up, ``/readyz``'s reason and the loops that log a failure once
per streak (``app.kit.streak``). Errors are told apart by type and SQLSTATE (asyncpg), by the
SQLite message (sqlite3 has no codes in Python 3.11), and by ``OSError`` for the network. The text
is composed here from the URL's host, port, database and user, never from a driver message that
may carry a statement's parameters, and never with the password.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from socket import gaierror

import asyncpg
from sqlalchemy import exc
from sqlalchemy.engine import URL, make_url

from app.db import is_unavailable
from app.kit.streak import FailureStreak

MIGRATE = "run 'rankr-ghl-sync migrate' first"


class ProblemKind(enum.StrEnum):
    UNREACHABLE = "unreachable"  # no server answers at the host and port
    NO_DATABASE = "no_database"  # the server answers; the database named does not exist
    CREDENTIALS = "credentials"  # wrong password, or no such role
    PERMISSION = "permission"  # the role lacks a privilege
    CANNOT_OPEN = "cannot_open"  # a SQLite file that cannot be opened or written
    NOT_MIGRATED = "not_migrated"  # tables or columns missing: the schema is older than the code
    UNAVAILABLE = "unavailable"  # lost, busy, starting up: passes by itself


# A service that starts on these only fails later; the others may pass while it runs.
FATAL_AT_START = frozenset(
    {
        ProblemKind.UNREACHABLE,
        ProblemKind.NO_DATABASE,
        ProblemKind.CREDENTIALS,
        ProblemKind.PERMISSION,
        ProblemKind.CANNOT_OPEN,
    }
)


@dataclass(frozen=True, slots=True)
class DatabaseProblem:
    kind: ProblemKind
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause}; {self.fix}"


class DatabaseNotUsable(RuntimeError):
    """The database cannot be used at start-up; the message is the problem's one line."""

    def __init__(self, problem: DatabaseProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _url(database_url: str | URL | None) -> URL | None:
    if database_url is None:
        return None
    try:
        return make_url(database_url) if isinstance(database_url, str) else database_url
    except Exception:  # an unparsable URL is reported by the settings, not here
        return None


def _is_sqlite(url: URL | None) -> bool:
    return url is not None and url.drivername.startswith("sqlite")


def _server(url: URL | None) -> str:
    if url is None or _is_sqlite(url):
        return "the database server"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what caused it, and the driver error SQLAlchemy wrapped, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _missing_object(message: str) -> str:
    """The table or column named in a "does not exist" / "no such" message (names, never values)."""
    found = re.search(r'relation "([\w.]+)"|column "([\w.]+)"|no such (?:table|column): ([\w.]+)', message)
    return next((name for name in found.groups() if name), "") if found else ""


def _sqlite_file_problem(url: URL | None, message: str) -> DatabaseProblem:
    fix = "correct DATABASE_URL (a relative SQLite path is read from the current directory)"
    path = Path(url.database) if url is not None and url.database else None
    if path is None:
        return DatabaseProblem(ProblemKind.CANNOT_OPEN, "the SQLite file cannot be opened", fix)
    if "readonly" in message:
        return DatabaseProblem(
            ProblemKind.CANNOT_OPEN,
            f"the SQLite file {path} is read-only",
            f"let the service's user write it and its directory, or {fix}",
        )
    if "not a database" in message:
        return DatabaseProblem(ProblemKind.CANNOT_OPEN, f"{path} is not a SQLite database file", fix)
    directory = path.parent
    if path.is_dir():
        cause = f"the SQLite path {path} is a directory"
    elif directory.exists() and not directory.is_dir():
        cause = f"cannot open the SQLite file {path}: {directory} is not a directory"
    elif not directory.is_dir():
        cause = f"cannot open the SQLite file {path}: the directory {directory} does not exist"
        fix = f"create the directory, or {fix}"
    elif not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        cause = f"cannot open the SQLite file {path}: the service may not write there"
        fix = f"let the service's user write {directory}, or {fix}"
    else:
        cause = f"cannot open the SQLite file {path}"
    return DatabaseProblem(ProblemKind.CANNOT_OPEN, cause, fix)


def _unreachable(url: URL | None, error: OSError) -> DatabaseProblem:
    if isinstance(error, gaierror):
        reason = "unknown host"
    elif isinstance(error, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(error, TimeoutError):
        reason = "no answer in time"
    elif isinstance(error, ConnectionError) and error.errno is None:
        reason = "the connection was closed"
    else:
        reason = error.strerror or type(error).__name__
    return DatabaseProblem(
        ProblemKind.UNREACHABLE,
        f"cannot reach the database at {_server(url)} ({reason})",
        "start Postgres there, or correct the host and port in DATABASE_URL",
    )


def _postgres_problem(url: URL | None, error: asyncpg.PostgresError) -> DatabaseProblem | None:
    user = f'user "{url.username}"' if url is not None and url.username else "the user in DATABASE_URL"
    name = url.database if url is not None and url.database else None
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return DatabaseProblem(
            ProblemKind.NO_DATABASE,
            f'the database "{name}" does not exist on {_server(url)}'
            if name
            else f"the database named in DATABASE_URL does not exist on {_server(url)}",
            f"create it (createdb {name or 'NAME'}), or correct the database name in DATABASE_URL",
        )
    if isinstance(error, asyncpg.InvalidPasswordError):
        return DatabaseProblem(
            ProblemKind.CREDENTIALS,
            f"the database at {_server(url)} refused the password of {user}",
            "correct the user and password in DATABASE_URL",
        )
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        return DatabaseProblem(
            ProblemKind.CREDENTIALS,
            f"the database at {_server(url)} refused {user} "
            "(no such role, or pg_hba.conf does not let it in)",
            "correct the user in DATABASE_URL, or create that role",
        )
    if isinstance(error, asyncpg.InvalidSchemaNameError):
        return DatabaseProblem(
            ProblemKind.NO_DATABASE,
            f"the schema the service should use does not exist in {name or 'the database'}",
            "create it (CREATE SCHEMA), or correct search_path in DATABASE_URL's options",
        )
    if isinstance(error, asyncpg.InsufficientPrivilegeError):
        return DatabaseProblem(
            ProblemKind.PERMISSION,
            f"{user} lacks a privilege the service needs on {name or 'the database'}",
            "grant it the rights on the database and its schema, or use the owner's role in DATABASE_URL",
        )
    if isinstance(error, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
        return _not_migrated(str(error))
    if isinstance(error, asyncpg.TooManyConnectionsError):
        return DatabaseProblem(
            ProblemKind.UNAVAILABLE,
            f"the database at {_server(url)} has no connection slot left",
            "raise its max_connections, or run fewer service processes",
        )
    if isinstance(error, asyncpg.CannotConnectNowError | asyncpg.OperatorInterventionError):
        return DatabaseProblem(
            ProblemKind.UNAVAILABLE,
            f"the database at {_server(url)} is starting up or shutting down",
            "the service tries again; check the server if it lasts",
        )
    return None


def _not_migrated(message: str) -> DatabaseProblem:
    missing = _missing_object(message)
    what = f" ({'column' if 'column' in message else 'table'} {missing} is missing)" if missing else ""
    return DatabaseProblem(
        ProblemKind.NOT_MIGRATED,
        f"the database has no schema, or an older one{what}",
        f"{MIGRATE}, or point DATABASE_URL at the service's database "
        "(a relative SQLite path is read from the current directory)",
    )


def _sqlite_problem(url: URL | None, error: sqlite3.Error) -> DatabaseProblem | None:
    message = str(error)
    if "no such table" in message or "no such column" in message:
        return _not_migrated(message)
    if "unable to open" in message or "readonly" in message or "not a database" in message:
        return _sqlite_file_problem(url, message)
    if "locked" in message:
        return DatabaseProblem(
            ProblemKind.UNAVAILABLE,
            "the SQLite file stayed locked by another writer",
            "the service tries again; if it lasts, look for another process holding the file",
        )
    return None


def database_problem(error: BaseException, database_url: str | URL | None = None) -> DatabaseProblem | None:
    """What ``error`` (or what caused it) says about the database, or None when it is not a known
    database problem (a fault of the service, reported with its traceback instead)."""
    url = _url(database_url)
    for current in _chain(error):
        found: DatabaseProblem | None = None
        if isinstance(current, asyncpg.PostgresError):
            found = _postgres_problem(url, current)
        elif isinstance(current, sqlite3.Error):
            found = _sqlite_problem(url, current)
        elif isinstance(current, OSError):
            found = _sqlite_file_problem(url, str(current)) if _is_sqlite(url) else _unreachable(url, current)
        if found is not None:
            return found
    if is_unavailable(error):
        return DatabaseProblem(
            ProblemKind.UNAVAILABLE,
            f"the connection to the database at {_server(url)} was lost",
            "the service tries again; check that the database runs",
        )
    return None


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def cannot_store(error: BaseException) -> bool:
    """True when the database refused a value itself (too long, out of range, invalid text):
    trying the same write again cannot succeed."""
    if isinstance(error, exc.DataError):
        return True
    code = _sqlstate(error)
    return code is not None and code.startswith("22")


def describe_error(error: BaseException) -> str:
    """What went wrong, in words safe to log and store: the error's kind and, for a database error,
    its SQLSTATE, never the driver's text (which may quote the values it refused)."""
    if isinstance(error, exc.DBAPIError):
        # SQLAlchemy's asyncpg adapter wraps the driver's own error, which names the problem.
        driver = getattr(error.orig, "__cause__", None) or error.orig or error
        kind = type(driver).__name__
        code = _sqlstate(error)
        return f"database error {kind}" + (f" (SQLSTATE {code})" if code else "")
    return type(error).__name__


def explainer(database_url: str | URL | None) -> Callable[[BaseException], str | None]:
    """``database_problem`` as the one line a ``FailureStreak`` logs (None for other errors)."""

    def explain(error: BaseException) -> str | None:
        problem = database_problem(error, database_url)
        return None if problem is None else str(problem)

    return explain


def database_streak(
    logger: logging.Logger,
    name: str,
    database_url: str | URL | None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> FailureStreak:
    """A ``FailureStreak`` for a loop that works on the database: its problems logged in words."""
    return FailureStreak(logger, name, explain=explainer(database_url), clock=clock)
