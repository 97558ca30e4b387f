"""Tasks end to end where the worker's own loop is the point: the task poll finds GHL changes that
send no webhook. The task and note handlers are tested in process in tests/sync/.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.service import Service, running_service, wait_for


def linked_contact(service: Service) -> tuple[str, str]:
    """A contact made in Rankr and synced: (rankr id, ghl id)."""
    email = f"grace.{uuid.uuid4().hex[:10]}@example.com"
    contact = service.rankr.create(email=email, firstName="Grace", lastName="Hopper")
    service.settle()
    [ghl] = service.ghl.by_email(email)
    return contact["contactId"], ghl["id"]


def rankr_task(service: Service, contact_id: str, **fields: Any) -> dict[str, Any]:
    answer = service.rankr.api("POST", f"/contacts/{contact_id}/tasks", json=fields)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def rankr_tasks(service: Service, contact_id: str) -> list[dict[str, Any]]:
    return list(service.rankr.api("GET", f"/contacts/{contact_id}/tasks").json()["data"])


def ghl_tasks(service: Service, contact_id: str) -> list[dict[str, Any]]:
    return list(service.ghl.api("GET", f"/contacts/{contact_id}/tasks").json()["tasks"])


def test_task_reopened_or_renamed_in_ghl_reaches_rankr_through_the_poll(database_url: str) -> None:
    """GHL sends no webhook for these; the task poll finds them."""
    with running_service(database_url, task_poll_seconds=0.3) as service:
        rankr_id, ghl_id = linked_contact(service)
        task = rankr_task(service, rankr_id, title="Invoice", dueDate="2026-12-09T09:00:00.000Z")
        path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
        service.rankr.api("PUT", path, json={"status": "completed"}).raise_for_status()
        service.settle()
        [ghl] = ghl_tasks(service, ghl_id)
        assert ghl["completed"] is True
        ghl_path = f"/contacts/{ghl_id}/tasks/{ghl['id']}"
        ghl_mark = service.ghl.mark()
        service.ghl.api("PUT", f"{ghl_path}/completed", json={"completed": False}).raise_for_status()
        service.ghl.api("PUT", ghl_path, json={"title": "Invoice (resend)"}).raise_for_status()
        current = wait_for(
            lambda: (
                rankr_tasks(service, rankr_id)[0]
                if rankr_tasks(service, rankr_id)[0]["title"] == "Invoice (resend)"
                else None
            ),
            what="the GHL edits in Rankr",
            timeout=40,  # the poll reads a contact it has just seen after ACTIVE_TARGET (15 s)
        )
        assert current["status"] == "open"
        service.settle()
        polled = [e for e in service.events() if e["event_id"].startswith("poll:task:")]
        assert polled
        assert all(e["status"] == "done" for e in polled)
        # Nothing went back to GHL but the test's own edits: the changes came from there.
        assert service.ghl.writes_since(ghl_mark) == [f"PUT {ghl_path}/completed", f"PUT {ghl_path}"]
