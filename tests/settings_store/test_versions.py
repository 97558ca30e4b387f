"""The configuration kept in the database: each save a version with who and what, a roll-back one
step, and the newest version the one the sync uses (unless CONFIG_FILE is set). The JSON column is
stored differently on each database, so the SQL runs on both."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.automation.config import SyncConfig, document, parse, sync_config, to_yaml
from app.db import session_factory, unit_of_work
from app.settings_store import service as store
from tests.support.service import test_settings as service_settings

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
MAPPED = parse("mapping:\n  customFields:\n    industry: fieldAAAAAAAAAAAAAAA\n")
TEMPLATE = parse(
    "mapping:\n  customFields:\n    industry: fieldAAAAAAAAAAAAAAA\n"
    "taskTemplates:\n  call:\n    title: Call {firstName}\n"
)


async def test_each_save_is_a_version_naming_who_and_what_changed(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with unit_of_work(sessions) as session:
        first = await store.save(session, MAPPED, "console:admin", NOW)
        unchanged = await store.save(session, MAPPED, "console:admin", NOW)
        second = await store.save(session, TEMPLATE, "cli", NOW)
    assert first is not None
    assert second is not None
    assert unchanged is None
    assert first.summary == "mapping.customFields.industry"
    assert second.summary == "taskTemplates.call.title"
    async with sessions() as session:
        listed = await store.history(session)
        assert [(v.id, v.changed_by) for v in listed] == [(second.id, "cli"), (first.id, "console:admin")]
        assert await store.current_config(session) == TEMPLATE


async def test_roll_back_saves_the_version_before_again(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with unit_of_work(sessions) as session:
        with pytest.raises(store.NothingToRollBack):
            await store.roll_back(session, "console:admin", NOW)
        first = await store.save(session, MAPPED, "cli", NOW)
        await store.save(session, TEMPLATE, "cli", NOW)
        restored = await store.roll_back(session, "console:admin", NOW)
    assert first is not None
    assert restored.summary == f"rolled back to version {first.id}: taskTemplates.call.title"
    async with sessions() as session:
        assert await store.current_config(session) == MAPPED
        assert len(await store.history(session)) == 3


async def test_the_newest_version_is_the_configuration_in_use(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    settings = service_settings(database_url, "http://service.test")
    await store.refresh(sessions, settings)
    assert sync_config(settings) == SyncConfig()
    async with unit_of_work(sessions) as session:
        await store.save(session, MAPPED, "cli", NOW)
    assert await store.refresh(sessions, settings) is True
    assert sync_config(settings) == MAPPED
    assert await store.refresh(sessions, settings) is False

    file = tmp_path / "sync.yaml"
    file.write_text(to_yaml(TEMPLATE), encoding="utf-8")
    with_file = settings.model_copy(update={"config_file": file})
    assert await store.refresh(sessions, with_file) is False
    assert sync_config(with_file) == TEMPLATE


def test_the_stored_document_is_the_yaml_file_read_back() -> None:
    assert parse(to_yaml(TEMPLATE)) == TEMPLATE
    assert document(SyncConfig()) == {"version": 1}
