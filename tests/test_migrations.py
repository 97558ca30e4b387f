"""One migration history for both databases: it upgrades, downgrades and matches the models exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db import create_engine
from app.health import alembic_config
from app.models import Base
from tests.support.databases import PostgresSchema


async def differences(database_url: str) -> list[Any]:
    """What autogenerate would change: empty when migrations and models agree (``alembic check``)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


def round_trip(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    assert asyncio.run(differences(database_url)) == []
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert asyncio.run(differences(database_url)) == []


def test_sqlite_round_trip(tmp_path: Path) -> None:
    round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_round_trip() -> None:
    schema = PostgresSchema(migrated=False)
    try:
        round_trip(schema.url)
    finally:
        schema.drop()
