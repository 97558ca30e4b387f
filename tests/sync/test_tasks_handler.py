"""The task handlers, both directions, in process: create, update, complete, delete, echoes, replays,
tasks of contacts not synced yet, a create whose answer was lost.

People act through the sandboxed products' APIs; the sandboxes' webhooks are delivered and the
worker applies them (``settle``); the tests check both products and count the writes made upstream.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.kit.clock import format_instant, parse_instant
from app.sandbox import keys
from tests.support.inprocess import InProcessService
from tests.support.service import ghl_event, rankr_event
from tests.sync.records import (
    ghl_notes,
    ghl_tasks,
    ghl_tasks_now,
    linked_contact,
    links_of,
    rankr_task,
    rankr_tasks,
)

pytestmark = pytest.mark.anyio


async def test_rankr_task_lifecycle_reaches_ghl(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    due = "2026-12-01T09:30:00.000Z"
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    task = await rankr_task(service, rankr_id, title="Call Grace", description="About COBOL", dueDate=due)
    await service.settle()
    [ghl] = await ghl_tasks(service, ghl_id)
    assert (ghl["title"], ghl["body"], ghl["dueDate"], ghl["completed"]) == (
        "Call Grace",
        "About COBOL",
        due,
        False,
    )
    # One write to GHL; GHL's TaskCreate echo costs no write back to Rankr.
    assert await service.ghl.writes_since(ghl_mark) == [f"POST /contacts/{ghl_id}/tasks"]
    assert await service.rankr.writes_since(rankr_mark) == [f"POST /contacts/{rankr_id}/tasks"]
    assert await links_of(service, "task") == [("linked", task["taskId"], ghl["id"])]

    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    ghl_mark = await service.ghl.mark()
    (await service.rankr.api("PUT", path, json={"status": "completed"})).raise_for_status()
    await service.settle()
    assert (await ghl_tasks(service, ghl_id))[0]["completed"] is True
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/tasks/{ghl['id']}/completed"]
    # Re-opened in Rankr: re-opened in GHL.
    (await service.rankr.api("PUT", path, json={"status": "open"})).raise_for_status()
    await service.settle()
    assert (await ghl_tasks(service, ghl_id))[0]["completed"] is False

    ghl_mark = await service.ghl.mark()
    (
        await service.rankr.api("PUT", path, json={"title": "Call Grace today", "description": None})
    ).raise_for_status()
    await service.settle()
    [changed] = await ghl_tasks(service, ghl_id)
    assert changed["title"] == "Call Grace today"
    assert "body" not in changed or not changed["body"]
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/tasks/{ghl['id']}"]

    assert (await service.rankr.api("DELETE", path)).status_code == 204
    await service.settle()
    assert await ghl_tasks(service, ghl_id) == []
    assert await links_of(service, "task") == [("deleted", task["taskId"], ghl["id"])]
    assert all(event["status"] == "done" for event in await service.events()), await service.events()


async def test_rankr_task_without_due_date_gets_the_default_in_ghl_only(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    task = await rankr_task(service, rankr_id, title="Send the brochure")
    await service.settle()
    [ghl] = await ghl_tasks(service, ghl_id)
    due = parse_instant(ghl["dueDate"])
    made = parse_instant(task["lastModified"])
    assert due is not None
    assert made is not None
    assert due - made == timedelta(hours=24)
    # Rankr keeps its empty due date, and later changes never try to clear GHL's.
    rankr_mark = await service.rankr.mark()
    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    (await service.rankr.api("PUT", path, json={"title": "Send the brochure now"})).raise_for_status()
    await service.settle()
    [ghl] = await ghl_tasks(service, ghl_id)
    assert (ghl["title"], ghl["dueDate"]) == ("Send the brochure now", format_instant(due))
    assert (await rankr_tasks(service, rankr_id))[0]["dueDate"] is None
    assert await service.rankr.writes_since(rankr_mark) == [f"PUT {path}"]  # only the test's own


async def test_replayed_and_stale_rankr_task_events_write_nothing(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    task = await rankr_task(service, rankr_id, title="First title", dueDate="2026-12-02T10:00:00.000Z")
    await service.settle()
    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    (await service.rankr.api("PUT", path, json={"title": "Second title"})).raise_for_status()
    await service.settle()
    ghl_mark = await service.ghl.mark()
    # A replay of the created event (new delivery id, old state) and a duplicate of the newest.
    assert (await service.post_rankr(rankr_event("task.created", task))).status_code == 202
    current = (await rankr_tasks(service, rankr_id))[0]
    assert (await service.post_rankr(rankr_event("task.updated", current))).status_code == 202
    await service.settle()
    assert (await ghl_tasks(service, ghl_id))[0]["title"] == "Second title"
    assert await service.ghl.writes_since(ghl_mark) == []


async def test_ghl_task_lifecycle_reaches_rankr(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    due = "2026-12-03T15:00:00.000Z"
    answer = await service.ghl.api(
        "POST",
        f"/contacts/{ghl_id}/tasks",
        json={"title": "Demo", "body": "Bring slides", "dueDate": due, "completed": False},
    )
    assert answer.status_code == 201, answer.text
    ghl_task = answer.json()["task"]
    await service.settle()
    [task] = await rankr_tasks(service, rankr_id)
    assert (task["title"], task["description"], task["dueDate"], task["status"]) == (
        "Demo",
        "Bring slides",
        due,
        "open",
    )
    assert await service.rankr.writes_since(rankr_mark) == [f"POST /contacts/{rankr_id}/tasks"]
    assert await service.ghl.writes_since(ghl_mark) == [f"POST /contacts/{ghl_id}/tasks"]  # the test's own

    path = f"/contacts/{ghl_id}/tasks/{ghl_task['id']}"
    (await service.ghl.api("PUT", f"{path}/completed", json={"completed": True})).raise_for_status()
    await service.settle()
    assert (await rankr_tasks(service, rankr_id))[0]["status"] == "completed"

    (await service.ghl.api("DELETE", path)).raise_for_status()
    await service.settle()
    assert await rankr_tasks(service, rankr_id) == []
    assert await links_of(service, "task") == [("deleted", task["taskId"], ghl_task["id"])]


async def test_ghl_task_event_without_contact_or_body_is_completed_by_a_lookup(
    service: InProcessService,
) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    await service.ghl.control(webhooks_enabled=False)
    answer = await service.ghl.api(
        "POST",
        f"/contacts/{ghl_id}/tasks",
        json={"title": "Quote", "body": "Net 30", "dueDate": "2026-12-04T08:00:00.000Z", "completed": False},
    )
    ghl_task = answer.json()["task"]
    await service.ghl.control(webhooks_enabled=True)
    # As reported of real GHL: a TaskCreate with neither contactId nor body.
    payload = ghl_event(
        "TaskCreate", {"id": ghl_task["id"], "title": "Quote", "dueDate": ghl_task["dueDate"]}
    )
    ghl_mark = await service.ghl.mark()
    assert (await service.post_ghl(payload)).status_code == 202
    await service.settle()
    [task] = await rankr_tasks(service, rankr_id)
    assert (task["title"], task["description"]) == ("Quote", "Net 30")
    reads = [f"{r['method']} {r['path']}" for r in await service.ghl.requests_since(ghl_mark)]
    assert reads == [f"POST /locations/{keys.GHL_LOCATION_ID}/tasks/search"]


async def test_ghl_task_created_while_rankr_creates_one_is_not_duplicated(service: InProcessService) -> None:
    """Tasks made on both sides at once for one contact each arrive exactly once on the other."""
    rankr_id, ghl_id = await linked_contact(service)
    await rankr_task(service, rankr_id, title="From Rankr", dueDate="2026-12-08T09:00:00.000Z")
    (
        await service.ghl.api(
            "POST",
            f"/contacts/{ghl_id}/tasks",
            json={"title": "From GHL", "dueDate": "2026-12-08T10:00:00.000Z", "completed": False},
        )
    ).raise_for_status()
    await service.settle()
    assert sorted(t["title"] for t in await ghl_tasks(service, ghl_id)) == ["From GHL", "From Rankr"]
    assert sorted(t["title"] for t in await rankr_tasks(service, rankr_id)) == ["From GHL", "From Rankr"]
    assert sorted(state for state, _, _ in await links_of(service, "task")) == ["linked", "linked"]


async def test_a_task_create_whose_answer_is_lost_is_not_made_twice(service: InProcessService) -> None:
    """GHL applies the create, but its answer is lost (a 504): the retry finds the task among the
    contact's tasks instead of creating a second one."""
    rankr_id, ghl_id = await linked_contact(service)
    await service.ghl.control(lost_answer_rate=1)
    task = await rankr_task(service, rankr_id, title="Lost answer", dueDate="2026-12-14T09:00:00.000Z")
    await service.deliver()
    await service.run_worker()  # the create reaches GHL; its answer does not
    assert await ghl_tasks_now(service, ghl_id)
    await service.ghl.control(lost_answer_rate=0)
    await service.settle()
    [ghl] = await ghl_tasks(service, ghl_id)
    assert ghl["title"] == "Lost answer"
    assert await links_of(service, "task") == [("linked", task["taskId"], ghl["id"])]
    assert any(e["type"] == "task.created" and e["attempts"] > 1 for e in await service.events())


async def test_task_of_a_contact_not_synced_yet_waits_for_it(service: InProcessService) -> None:
    await service.rankr.control(webhooks_enabled=False)
    email = f"alan.{uuid.uuid4().hex[:10]}@example.com"
    contact = await service.rankr.create(email=email, firstName="Alan")
    task = await rankr_task(
        service, contact["contactId"], title="Follow up", dueDate="2026-12-05T09:00:00.000Z"
    )
    note = (
        await service.rankr.api("POST", f"/contacts/{contact['contactId']}/notes", json={"body": "Hi"})
    ).json()
    await service.rankr.control(webhooks_enabled=True)
    # Only the task and note events arrive; the contact's own event never does.
    assert (await service.post_rankr(rankr_event("task.created", task))).status_code == 202
    assert (await service.post_rankr(rankr_event("note.created", note))).status_code == 202
    await service.settle()
    [ghl] = await service.ghl.by_email(email)
    assert [t["title"] for t in await ghl_tasks(service, ghl["id"])] == ["Follow up"]
    assert [n["body"] for n in await ghl_notes(service, ghl["id"])] == ["Hi"]
    assert [c["contactId"] for c in await service.rankr.by_email(email)] == [contact["contactId"]]
    # The service queued the contact's update itself, once, and applied everything.
    requested = [e for e in await service.events() if e["event_id"].startswith("sync:contact:")]
    assert [(e["event_id"], e["status"]) for e in requested] == [
        (f"sync:contact:{contact['contactId']}", "done")
    ]
    assert all(event["status"] == "done" for event in await service.events()), await service.events()


async def test_task_event_before_its_contact_event_is_applied_after_it(service: InProcessService) -> None:
    await service.rankr.control(webhooks_enabled=False)
    email = f"edsger.{uuid.uuid4().hex[:10]}@example.com"
    contact = await service.rankr.create(email=email, firstName="Edsger")
    task = await rankr_task(service, contact["contactId"], title="Review", dueDate="2026-12-06T09:00:00.000Z")
    await service.rankr.control(webhooks_enabled=True)
    ghl_mark = await service.ghl.mark()
    assert (await service.post_rankr(rankr_event("task.created", task))).status_code == 202
    assert (await service.post_rankr(rankr_event("contact.created", contact))).status_code == 202
    await service.settle()
    [ghl] = await service.ghl.by_email(email)
    assert [t["title"] for t in await ghl_tasks(service, ghl["id"])] == ["Review"]
    writes = await service.ghl.writes_since(ghl_mark)
    assert writes.count("POST /contacts/upsert") == 1
    assert writes.count(f"POST /contacts/{ghl['id']}/tasks") == 1


async def test_deleting_a_contact_settles_its_task_and_note_links(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    await rankr_task(service, rankr_id, title="Ring", dueDate="2026-12-07T09:00:00.000Z")
    (await service.rankr.api("POST", f"/contacts/{rankr_id}/notes", json={"body": "Note"})).raise_for_status()
    await service.settle()
    await service.rankr.delete(rankr_id)
    await service.settle()
    assert await service.ghl.get(ghl_id) is None
    assert {link["kind"]: link["state"] for link in await service.links()} == {
        "contact": "deleted",
        "task": "deleted",
        "note": "deleted",
    }
