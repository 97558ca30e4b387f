"""Shared fixtures: the reference material in ../shared, real databases, the in-process service.

Three layers: unit tests; in-process tests (``inprocess``: the app, both sandboxes and a worker over
httpx.ASGITransport, tests/support/inprocess.py), run by ``make test``; and the end-to-end tests
(marker ``e2e``, all of tests/e2e/), run by ``make test-e2e``. Behaviour runs on SQLite
(``behaviour_database_url``); what depends on the database (SQL, locking and claiming, migrations,
repositories) takes ``database_url`` and runs on SQLite and Postgres.
"""

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
from tests.support.inprocess import InProcessService, inprocess_service
from tests.support.reference import SHARED

# The container image's tests need the image built: `make container-test` runs them.
collect_ignore = [] if os.environ.get("CONTAINER_TESTS") else ["container"]

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e/ is end to end, so a test added there cannot slip into `make test`."""
    e2e = pytest.mark.e2e
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(e2e)


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
def behaviour_database_url(sqlite_url: str) -> str:
    """The database of tests of behaviour: SQLite. What depends on the database (SQL, locking and
    claiming, migrations, repositories) takes ``database_url`` and runs on both."""
    return sqlite_url


@pytest.fixture
async def inprocess(behaviour_database_url: str) -> AsyncIterator[InProcessService]:
    """The service, its sandboxes and a worker in the test's loop (``tests/support/inprocess.py``)."""
    async with inprocess_service(behaviour_database_url) as service:
        yield service


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on ``database_url`` (each kind), for tests of SQL."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
