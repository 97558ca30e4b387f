"""The settings page: the configuration in force, its history with who and what, a roll-back one
version; read-only, saying why, when CONFIG_FILE is set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.automation.config import parse, sync_config
from app.db import unit_of_work
from app.settings_store import service as store
from tests.console.conftest import TOKEN, Browser
from tests.support.inprocess import InProcessService, inprocess_service

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


async def test_history_and_roll_back(console: InProcessService, signed_in: Browser) -> None:
    first = parse("mapping:\n  users:\n    u1: ghlUser1\n")
    second = parse("mapping:\n  users:\n    u1: ghlUser2\n")
    async with unit_of_work(console._sessions) as session:
        await store.save(session, first, "cli", NOW)
        await store.save(session, second, "console (admin)", NOW)
    page = (await signed_in.get("/admin/console/settings")).text
    assert "ghlUser2" in page
    assert "mapping.users.u1" in page
    answer = await signed_in.post("/admin/console/settings/roll-back", page="/admin/console/settings")
    assert "Rolled+back" in answer.headers["location"]
    assert sync_config(console.app.state.settings) == first
    page = (await signed_in.get("/admin/console/settings")).text
    assert "rolled back to version 1" in page


async def test_with_config_file_the_settings_are_read_only_and_say_why(
    behaviour_database_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "sync.yaml"
    file.write_text("mapping:\n  users:\n    u1: ghlFromFile\n", encoding="utf-8")
    async with inprocess_service(behaviour_database_url, admin_token=TOKEN, config_file=file) as service:
        person = Browser(service)
        await person.sign_in()
        page = (await person.get("/admin/console/settings")).text
        assert "ghlFromFile" in page
        assert f"CONFIG_FILE is set ({file})" in page
        assert 'id="roll-back"' not in page
        refused = await person.post("/admin/console/settings/roll-back", page="/admin/console/settings")
        assert "error=CONFIG_FILE" in refused.headers["location"]
        await person.aclose()
