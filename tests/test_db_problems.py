"""Database errors in words: the real errors of the local Postgres and SQLite, classified by cause."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import opened
from app.db_problems import FATAL_AT_START, DatabaseNotUsable, ProblemKind, database_problem
from app.main import create_app
from tests.support.databases import POSTGRES_SERVER, PostgresSchema

pytestmark = pytest.mark.anyio
SERVER = POSTGRES_SERVER.rsplit("/", 1)[0].replace("postgresql://root@", "")  # 127.0.0.1:5432


async def error_of(database_url: str) -> BaseException:
    """What the service's engine raises when it first asks this database something."""
    try:
        async with opened(database_url) as (engine, _), engine.connect() as connection:
            await connection.execute(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:
        return exc
    raise AssertionError(f"{database_url} answered")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("database_url", "kind", "words"),
    [
        (
            f"postgresql://root:hunter2@{SERVER}/nosuchdb",
            ProblemKind.NO_DATABASE,
            f'the database "nosuchdb" does not exist on {SERVER}; create it (createdb nosuchdb)',
        ),
        (
            f"postgresql://nobody:hunter2@{SERVER}/test",
            ProblemKind.CREDENTIALS,
            f'the database at {SERVER} refused user "nobody" (no such role',
        ),
        (
            "postgresql://root:hunter2@127.0.0.1:1/test",
            ProblemKind.UNREACHABLE,
            "cannot reach the database at 127.0.0.1:1 (connection refused); start Postgres there",
        ),
        (
            "postgresql://root:hunter2@nosuchhost.invalid/test",
            ProblemKind.UNREACHABLE,
            "cannot reach the database at nosuchhost.invalid:5432 (unknown host)",
        ),
    ],
)
async def test_postgres_connection_problems(database_url: str, kind: ProblemKind, words: str) -> None:
    problem = database_problem(await error_of(database_url), database_url)
    assert problem is not None
    assert problem.kind == kind
    assert kind in FATAL_AT_START
    assert words in str(problem)
    assert "hunter2" not in str(problem)


@pytest.mark.postgres
async def test_a_postgres_schema_never_migrated(request: pytest.FixtureRequest) -> None:
    empty = PostgresSchema(migrated=False)
    request.addfinalizer(empty.drop)
    problem = database_problem(await error_of(empty.url), empty.url)
    assert problem is not None
    assert problem.kind == ProblemKind.NOT_MIGRATED
    assert "(table alembic_version is missing)" in problem.cause
    assert "run 'rankr-ghl-sync migrate' first" in problem.fix


@pytest.mark.parametrize(
    ("path", "cause"),
    [
        ("missing/dir/x.db", "cannot open the SQLite file {p}: the directory {d} does not exist"),
        ("a-file/x.db", "cannot open the SQLite file {p}: {d} is not a directory"),
        (".", "the SQLite path {p} is a directory"),
    ],
)
async def test_sqlite_files_that_cannot_be_opened(path: str, cause: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    target = (tmp_path / path) if path != "." else tmp_path
    url = f"sqlite:///{target}"
    problem = database_problem(await error_of(url), url)
    assert problem is not None
    assert problem.kind == ProblemKind.CANNOT_OPEN
    assert problem.cause == cause.format(p=target, d=target.parent)


async def test_a_sqlite_file_never_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    problem = database_problem(await error_of(url), url)
    assert problem is not None
    assert problem.kind == ProblemKind.NOT_MIGRATED
    assert problem.kind not in FATAL_AT_START


async def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x" * 4096)
    url = f"sqlite:///{tmp_path / 'notes.txt'}"
    problem = database_problem(await error_of(url), url)
    assert problem is not None
    assert problem.cause == f"{tmp_path / 'notes.txt'} is not a SQLite database file"


# Errors the local server cannot be made to send (it trusts every local user), built by type.
@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (
            asyncpg.InvalidPasswordError('password authentication failed for user "app"'),
            ProblemKind.CREDENTIALS,
            'refused the password of user "app"',
        ),
        (
            asyncpg.InsufficientPrivilegeError("permission denied for schema public"),
            ProblemKind.PERMISSION,
            'user "app" lacks a privilege',
        ),
        (
            asyncpg.TooManyConnectionsError("sorry, too many clients already"),
            ProblemKind.UNAVAILABLE,
            "no connection slot left",
        ),
        (
            asyncpg.CannotConnectNowError("the database system is starting up"),
            ProblemKind.UNAVAILABLE,
            "starting up or shutting down",
        ),
        (
            asyncpg.UndefinedColumnError('column "held_until" does not exist'),
            ProblemKind.NOT_MIGRATED,
            "column held_until is missing",
        ),
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            ProblemKind.UNAVAILABLE,
            "the connection to the database at db.internal:5433 was lost",
        ),
        (
            asyncpg.InvalidSchemaNameError("no schema has been selected to create in"),
            ProblemKind.NO_DATABASE,
            "the schema the service should use does not exist in sync",
        ),
        (
            asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
            ProblemKind.UNAVAILABLE,
            "the connection to the database at db.internal:5433 was lost",
        ),
        (TimeoutError(), ProblemKind.UNREACHABLE, "(no answer in time)"),
        (
            ConnectionError("unexpected connection_lost() call"),
            ProblemKind.UNREACHABLE,
            "at db.internal:5433 (the connection was closed)",
        ),
    ],
)
def test_errors_by_type_and_sqlstate(error: BaseException, kind: ProblemKind, words: str) -> None:
    problem = database_problem(error, "postgresql://app:s3cret@db.internal:5433/sync")
    assert problem is not None
    assert (problem.kind, words in str(problem)) == (kind, True), str(problem)
    assert "s3cret" not in str(problem)


def test_a_locked_sqlite_file_passes_by_itself() -> None:
    problem = database_problem(sqlite3.OperationalError("database is locked"), "sqlite:///x.db")
    assert problem is not None
    assert problem.kind == ProblemKind.UNAVAILABLE


def test_other_errors_are_not_database_problems() -> None:
    assert database_problem(KeyError("x"), "sqlite:///x.db") is None
    assert database_problem(sqlite3.IntegrityError("UNIQUE constraint failed"), "sqlite:///x.db") is None
    assert database_problem(asyncpg.UniqueViolationError("duplicate key"), None) is None
    assert database_problem(asyncpg.InternalClientError("unexpected message"), None) is None


def test_the_cause_is_found_behind_a_wrapping_error() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError as exc:
            raise RuntimeError("the claim failed") from exc
    except RuntimeError as wrapped:
        problem = database_problem(wrapped, "postgresql://root@10.0.0.9/test")
    assert problem is not None
    assert problem.cause == "cannot reach the database at 10.0.0.9:5432 (connection refused)"


async def test_the_app_refuses_to_start_on_a_database_it_cannot_open(tmp_path: Path) -> None:
    """For apps built without the CLI (which checks first and exits 2): a clear error, not a later one."""
    url = f"sqlite:///{tmp_path / 'missing' / 'sync.db'}"
    app = create_app(Settings(database_url=url, sandbox_mode=True))
    with pytest.raises(DatabaseNotUsable) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert refused.value.problem.kind == ProblemKind.CANNOT_OPEN
    assert str(refused.value).startswith(f"cannot open the SQLite file {tmp_path / 'missing' / 'sync.db'}")
