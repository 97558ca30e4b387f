"""A configuration saved while the service runs is what the worker applies from its next claim on:
no restart, no file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.automation.config import parse
from app.db import unit_of_work
from app.sandbox import keys
from app.settings_store import service as store
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio


async def test_a_mapping_saved_while_running_applies_to_the_next_event(inprocess: InProcessService) -> None:
    answer = await inprocess.ghl.api(
        "POST",
        f"/locations/{keys.GHL_LOCATION_ID}/customFields",
        json={"name": "Industry", "dataType": "TEXT"},
    )
    field_id = answer.json()["customField"]["id"]
    before = await inprocess.rankr.create(email="before@example.com", customFields={"industry": "Looms"})
    await inprocess.settle()
    [unmapped] = await inprocess.ghl.by_email("before@example.com")
    assert unmapped["customFields"] == []

    config = parse(f"mapping:\n  customFields:\n    industry: {field_id}\n")
    async with unit_of_work(inprocess._sessions) as session:
        await store.save(session, config, "test", datetime.now(UTC))
    await inprocess.rankr.update(before["contactId"], customFields={"industry": "Mills"})
    await inprocess.rankr.create(email="after@example.com", customFields={"industry": "Looms"})
    await inprocess.settle()
    [updated] = await inprocess.ghl.by_email("before@example.com")
    [created] = await inprocess.ghl.by_email("after@example.com")
    assert updated["customFields"] == [{"id": field_id, "value": "Mills"}]
    assert created["customFields"] == [{"id": field_id, "value": "Looms"}]
