"""A contact's sync state and its appointments through the admin routes (app/sync/views.py), in process."""

from __future__ import annotations

import pytest

from tests.support.inprocess import InProcessService
from tests.sync.records import (
    linked_contact,
    rankr_task,
)

pytestmark = pytest.mark.anyio


async def test_contact_state_and_appointments_through_the_admin_routes(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    task = await rankr_task(service, rankr_id, title="Prepare", dueDate="2026-12-10T09:00:00.000Z")
    booked = await service.http.post(
        f"{service.ghl.base}/ui/contacts/{ghl_id}/appointments",
        data={"title": "Intro call", "startTime": "2026-12-11T10:00", "endTime": "2026-12-11T10:30"},
    )
    assert booked.status_code in (200, 303)
    await service.settle()
    state = (await service.http.get(f"{service.url}/admin/contacts/{ghl_id}")).json()
    assert (state["rankrId"], state["ghlId"], state["state"]) == (rankr_id, ghl_id, "linked")
    assert [(t["rankrId"], t["state"], t["title"]) for t in state["tasks"]] == [
        (task["taskId"], "linked", "Prepare")
    ]
    found = (await service.http.get(f"{service.url}/admin/contacts/{rankr_id}/appointments")).json()
    assert [(a["title"], a["startTime"][:16]) for a in found["appointments"]] == [
        ("Intro call", "2026-12-11 10:00")
    ]
    missing = await service.http.get(f"{service.url}/admin/contacts/nobody/appointments")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
