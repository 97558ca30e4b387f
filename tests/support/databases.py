"""Real databases for tests: a migrated SQLite file, or a fresh Postgres schema in database ``test``.

Each test gets an empty, migrated database: SQLite files are copied from one migrated template;
Postgres schemas are created per test session under a unique name (so parallel runs never share
state) and emptied between tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from alembic import command

from app.health import alembic_config

POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
TABLES = (
    "rule_runs",
    "staged_contacts",
    "sync_jobs",
    "audit_entries",
    "links",
    "rate_budgets",
    "webhook_events",
    "ghl_credentials",
    "connection_verifications",
    "install_states",
    "connections",
    "settings_versions",
    "reveals",
)


def migrate(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    migrate(f"sqlite:///{path}")
    return path


def fresh_sqlite(template: Path, directory: Path) -> str:
    path = directory / f"{secrets.token_hex(4)}.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def psql(sql: str) -> str:
    """Run ``sql`` on the test database; what it printed, unaligned and without headers."""
    done = subprocess.run(
        ["psql", POSTGRES_SERVER, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def postgres_available() -> bool:
    try:
        psql("SELECT 1")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    return True


class PostgresSchema:
    """One migrated schema in the test database, for one test session."""

    def __init__(self, *, migrated: bool = True) -> None:
        self.name = f"t_{secrets.token_hex(5)}"
        psql(f"CREATE SCHEMA {self.name}")
        self.url = f"{POSTGRES_SERVER}?options=-csearch_path%3D{self.name}"
        if migrated:
            migrate(self.url)

    def empty(self) -> None:
        tables = ", ".join(f"{self.name}.{table}" for table in TABLES)
        psql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")

    def drop(self) -> None:
        psql(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


# Parameters of a fixture that runs once on each database (Postgres ones carry the ``postgres`` mark).
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def empty_database(request: pytest.FixtureRequest, directory: Path) -> str:
    """An empty, migrated database of the kind ``request.param`` names (``KINDS``): a copy of the
    session's SQLite template in ``directory``, or the session's Postgres schema, emptied."""
    if request.param == "sqlite":
        return fresh_sqlite(request.getfixturevalue("sqlite_template_path"), directory)
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    schema.empty()
    return schema.url
