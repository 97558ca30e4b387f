"""Shared fixtures: the reference material in ../shared and real databases (SQLite and Postgres)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from tests.support.databases import (
    KINDS,
    PostgresSchema,
    empty_database,
    fresh_sqlite,
    postgres_available,
    sqlite_template,
)
from tests.support.reference import SHARED

# The container image's tests need the image built: `make container-test` runs them.
collect_ignore = [] if os.environ.get("CONTAINER_TESTS") else ["container"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def sqlite_template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    if not postgres_available():
        pytest.fail("Postgres at 127.0.0.1:5432 (database test) is not reachable; .ci/run starts it")
    schema = PostgresSchema()
    yield schema
    schema.drop()


@pytest.fixture(params=KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database of each kind."""
    return empty_database(request, tmp_path)


@pytest.fixture
def postgres_url(postgres_schema: PostgresSchema) -> str:
    postgres_schema.empty()
    return postgres_schema.url


@pytest.fixture
def sqlite_url(sqlite_template_path: Path, tmp_path: Path) -> str:
    return fresh_sqlite(sqlite_template_path, tmp_path)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on ``database_url`` (each kind), for tests of SQL."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
