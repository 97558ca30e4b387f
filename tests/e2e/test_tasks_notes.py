"""Tasks and notes end to end, both directions, on SQLite and Postgres, through the sandboxes.

People act through the products' APIs; the sandboxes send their signed webhooks; the test waits for
the service to settle, then checks both products and counts the writes the service made upstream.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from app.kit.clock import format_instant, parse_instant
from app.sandbox import keys
from tests.support.service import Service, ghl_event, rankr_event, running_service, wait_for


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


def ghl_notes(service: Service, contact_id: str) -> list[dict[str, Any]]:
    return list(service.ghl.api("GET", f"/contacts/{contact_id}/notes").json()["notes"])


def rankr_notes(service: Service, contact_id: str) -> list[dict[str, Any]]:
    return list(service.rankr.api("GET", f"/contacts/{contact_id}/notes").json()["data"])


def links_of(service: Service, kind: str) -> list[tuple[str, str | None, str | None]]:
    return [
        (link["state"], link["rankr_id"], link["ghl_id"]) for link in service.links() if link["kind"] == kind
    ]


# --- tasks: Rankr -> GHL ---------------------------------------------------------------------------


def test_rankr_task_lifecycle_reaches_ghl(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    due = "2026-12-01T09:30:00.000Z"
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    task = rankr_task(service, rankr_id, title="Call Grace", description="About COBOL", dueDate=due)
    service.settle()
    [ghl] = ghl_tasks(service, ghl_id)
    assert (ghl["title"], ghl["body"], ghl["dueDate"], ghl["completed"]) == (
        "Call Grace",
        "About COBOL",
        due,
        False,
    )
    # One write to GHL; GHL's TaskCreate echo costs no write back to Rankr.
    assert service.ghl.writes_since(ghl_mark) == [f"POST /contacts/{ghl_id}/tasks"]
    assert service.rankr.writes_since(rankr_mark) == [f"POST /contacts/{rankr_id}/tasks"]
    assert links_of(service, "task") == [("linked", task["taskId"], ghl["id"])]

    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    ghl_mark = service.ghl.mark()
    service.rankr.api("PUT", path, json={"status": "completed"}).raise_for_status()
    service.settle()
    assert ghl_tasks(service, ghl_id)[0]["completed"] is True
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/tasks/{ghl['id']}/completed"]
    # Re-opened in Rankr: re-opened in GHL.
    service.rankr.api("PUT", path, json={"status": "open"}).raise_for_status()
    service.settle()
    assert ghl_tasks(service, ghl_id)[0]["completed"] is False

    ghl_mark = service.ghl.mark()
    service.rankr.api("PUT", path, json={"title": "Call Grace today", "description": None}).raise_for_status()
    service.settle()
    [changed] = ghl_tasks(service, ghl_id)
    assert changed["title"] == "Call Grace today"
    assert "body" not in changed or not changed["body"]
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/tasks/{ghl['id']}"]

    assert service.rankr.api("DELETE", path).status_code == 204
    service.settle()
    assert ghl_tasks(service, ghl_id) == []
    assert links_of(service, "task") == [("deleted", task["taskId"], ghl["id"])]
    assert all(event["status"] == "done" for event in service.events()), service.events()


def test_rankr_task_without_due_date_gets_the_default_in_ghl_only(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    task = rankr_task(service, rankr_id, title="Send the brochure")
    service.settle()
    [ghl] = ghl_tasks(service, ghl_id)
    due = parse_instant(ghl["dueDate"])
    made = parse_instant(task["lastModified"])
    assert due is not None
    assert made is not None
    assert due - made == timedelta(hours=24)
    # Rankr keeps its empty due date, and later changes never try to clear GHL's.
    rankr_mark = service.rankr.mark()
    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    service.rankr.api("PUT", path, json={"title": "Send the brochure now"}).raise_for_status()
    service.settle()
    [ghl] = ghl_tasks(service, ghl_id)
    assert (ghl["title"], ghl["dueDate"]) == ("Send the brochure now", format_instant(due))
    assert rankr_tasks(service, rankr_id)[0]["dueDate"] is None
    assert service.rankr.writes_since(rankr_mark) == [f"PUT {path}"]  # only the test's own


def test_replayed_and_stale_rankr_task_events_write_nothing(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    task = rankr_task(service, rankr_id, title="First title", dueDate="2026-12-02T10:00:00.000Z")
    service.settle()
    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    service.rankr.api("PUT", path, json={"title": "Second title"}).raise_for_status()
    service.settle()
    ghl_mark = service.ghl.mark()
    # A replay of the created event (new delivery id, old state) and a duplicate of the newest.
    assert service.post_rankr(rankr_event("task.created", task)).status_code == 202
    current = rankr_tasks(service, rankr_id)[0]
    assert service.post_rankr(rankr_event("task.updated", current)).status_code == 202
    service.settle()
    assert ghl_tasks(service, ghl_id)[0]["title"] == "Second title"
    assert service.ghl.writes_since(ghl_mark) == []


# --- tasks: GHL -> Rankr ---------------------------------------------------------------------------


def test_ghl_task_lifecycle_reaches_rankr(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    due = "2026-12-03T15:00:00.000Z"
    answer = service.ghl.api(
        "POST",
        f"/contacts/{ghl_id}/tasks",
        json={"title": "Demo", "body": "Bring slides", "dueDate": due, "completed": False},
    )
    assert answer.status_code == 201, answer.text
    ghl_task = answer.json()["task"]
    service.settle()
    [task] = rankr_tasks(service, rankr_id)
    assert (task["title"], task["description"], task["dueDate"], task["status"]) == (
        "Demo",
        "Bring slides",
        due,
        "open",
    )
    assert service.rankr.writes_since(rankr_mark) == [f"POST /contacts/{rankr_id}/tasks"]
    assert service.ghl.writes_since(ghl_mark) == [f"POST /contacts/{ghl_id}/tasks"]  # the test's own

    path = f"/contacts/{ghl_id}/tasks/{ghl_task['id']}"
    service.ghl.api("PUT", f"{path}/completed", json={"completed": True}).raise_for_status()
    service.settle()
    assert rankr_tasks(service, rankr_id)[0]["status"] == "completed"

    service.ghl.api("DELETE", path).raise_for_status()
    service.settle()
    assert rankr_tasks(service, rankr_id) == []
    assert links_of(service, "task") == [("deleted", task["taskId"], ghl_task["id"])]


def test_ghl_task_event_without_contact_or_body_is_completed_by_a_lookup(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    service.ghl.control(webhooks_enabled=False)
    answer = service.ghl.api(
        "POST",
        f"/contacts/{ghl_id}/tasks",
        json={"title": "Quote", "body": "Net 30", "dueDate": "2026-12-04T08:00:00.000Z", "completed": False},
    )
    ghl_task = answer.json()["task"]
    service.ghl.control(webhooks_enabled=True)
    # As reported of real GHL: a TaskCreate with neither contactId nor body.
    payload = ghl_event(
        "TaskCreate", {"id": ghl_task["id"], "title": "Quote", "dueDate": ghl_task["dueDate"]}
    )
    ghl_mark = service.ghl.mark()
    assert service.post_ghl(payload).status_code == 202
    service.settle()
    [task] = rankr_tasks(service, rankr_id)
    assert (task["title"], task["description"]) == ("Quote", "Net 30")
    reads = [f"{r['method']} {r['path']}" for r in service.ghl.requests_since(ghl_mark)]
    assert reads == [f"POST /locations/{keys.GHL_LOCATION_ID}/tasks/search"]


# --- notes -----------------------------------------------------------------------------------------


def test_notes_lifecycle_both_ways(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    ghl_mark = service.ghl.mark()
    answer = service.rankr.api("POST", f"/contacts/{rankr_id}/notes", json={"body": "Met at the expo"})
    note = answer.json()
    service.settle()
    [ghl_note] = ghl_notes(service, ghl_id)
    assert ghl_note["body"] == "Met at the expo"
    assert service.ghl.writes_since(ghl_mark) == [f"POST /contacts/{ghl_id}/notes"]

    # Edited in GHL: Rankr follows; the echo costs nothing.
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    service.ghl.api(
        "PUT", f"/contacts/{ghl_id}/notes/{ghl_note['id']}", json={"body": "Met at the expo; wants a demo"}
    ).raise_for_status()
    service.settle()
    assert rankr_notes(service, rankr_id)[0]["body"] == "Met at the expo; wants a demo"
    assert service.rankr.writes_since(rankr_mark) == [f"PUT /contacts/{rankr_id}/notes/{note['noteId']}"]
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/notes/{ghl_note['id']}"]

    # A stale NoteUpdate (GHL sends no time): the note is read, and nothing is overwritten.
    rankr_mark = service.rankr.mark()
    stale = ghl_event("NoteUpdate", {"id": ghl_note["id"], "contactId": ghl_id, "body": "Met at the expo"})
    assert service.post_ghl(stale).status_code == 202
    service.settle()
    assert rankr_notes(service, rankr_id)[0]["body"] == "Met at the expo; wants a demo"
    assert service.rankr.writes_since(rankr_mark) == []

    # Created in GHL, deleted in Rankr.
    answer = service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "Prefers email"})
    second = answer.json()["note"]
    service.settle()
    [mirror] = [n for n in rankr_notes(service, rankr_id) if n["body"] == "Prefers email"]
    assert service.rankr.api("DELETE", f"/contacts/{rankr_id}/notes/{mirror['noteId']}").status_code == 204
    service.settle()
    assert [n["id"] for n in ghl_notes(service, ghl_id)] == [ghl_note["id"]]
    assert ("deleted", mirror["noteId"], second["id"]) in links_of(service, "note")


# --- ordering across records -----------------------------------------------------------------------


def test_task_of_a_contact_not_synced_yet_waits_for_it(service: Service) -> None:
    service.rankr.control(webhooks_enabled=False)
    email = f"alan.{uuid.uuid4().hex[:10]}@example.com"
    contact = service.rankr.create(email=email, firstName="Alan")
    task = rankr_task(service, contact["contactId"], title="Follow up", dueDate="2026-12-05T09:00:00.000Z")
    note = service.rankr.api("POST", f"/contacts/{contact['contactId']}/notes", json={"body": "Hi"}).json()
    service.rankr.control(webhooks_enabled=True)
    # Only the task and note events arrive; the contact's own event never does.
    assert service.post_rankr(rankr_event("task.created", task)).status_code == 202
    assert service.post_rankr(rankr_event("note.created", note)).status_code == 202
    service.settle()
    [ghl] = service.ghl.by_email(email)
    assert [t["title"] for t in ghl_tasks(service, ghl["id"])] == ["Follow up"]
    assert [n["body"] for n in ghl_notes(service, ghl["id"])] == ["Hi"]
    assert [c["contactId"] for c in service.rankr.by_email(email)] == [contact["contactId"]]
    # The service queued the contact's update itself, once, and applied everything.
    requested = [e for e in service.events() if e["event_id"].startswith("sync:contact:")]
    assert [(e["event_id"], e["status"]) for e in requested] == [
        (f"sync:contact:{contact['contactId']}", "done")
    ]
    assert all(event["status"] == "done" for event in service.events()), service.events()


def test_task_event_before_its_contact_event_is_applied_after_it(service: Service) -> None:
    service.rankr.control(webhooks_enabled=False)
    email = f"edsger.{uuid.uuid4().hex[:10]}@example.com"
    contact = service.rankr.create(email=email, firstName="Edsger")
    task = rankr_task(service, contact["contactId"], title="Review", dueDate="2026-12-06T09:00:00.000Z")
    service.rankr.control(webhooks_enabled=True)
    ghl_mark = service.ghl.mark()
    assert service.post_rankr(rankr_event("task.created", task)).status_code == 202
    assert service.post_rankr(rankr_event("contact.created", contact)).status_code == 202
    service.settle()
    [ghl] = service.ghl.by_email(email)
    assert [t["title"] for t in ghl_tasks(service, ghl["id"])] == ["Review"]
    writes = service.ghl.writes_since(ghl_mark)
    assert writes.count("POST /contacts/upsert") == 1
    assert writes.count(f"POST /contacts/{ghl['id']}/tasks") == 1


def test_deleting_a_contact_settles_its_task_and_note_links(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    rankr_task(service, rankr_id, title="Ring", dueDate="2026-12-07T09:00:00.000Z")
    service.rankr.api("POST", f"/contacts/{rankr_id}/notes", json={"body": "Note"}).raise_for_status()
    service.settle()
    service.rankr.delete(rankr_id)
    service.settle()
    assert service.ghl.get(ghl_id) is None
    assert {link["kind"]: link["state"] for link in service.links()} == {
        "contact": "deleted",
        "task": "deleted",
        "note": "deleted",
    }


def test_ghl_task_created_while_rankr_creates_one_is_not_duplicated(service: Service) -> None:
    """Tasks made on both sides at once for one contact each arrive exactly once on the other."""
    rankr_id, ghl_id = linked_contact(service)
    rankr_task(service, rankr_id, title="From Rankr", dueDate="2026-12-08T09:00:00.000Z")
    service.ghl.api(
        "POST",
        f"/contacts/{ghl_id}/tasks",
        json={"title": "From GHL", "dueDate": "2026-12-08T10:00:00.000Z", "completed": False},
    ).raise_for_status()
    service.settle()
    assert sorted(t["title"] for t in ghl_tasks(service, ghl_id)) == ["From GHL", "From Rankr"]
    assert sorted(t["title"] for t in rankr_tasks(service, rankr_id)) == ["From GHL", "From Rankr"]
    assert sorted(state for state, _, _ in links_of(service, "task")) == ["linked", "linked"]


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
        )
        assert current["status"] == "open"
        service.settle()
        polled = [e for e in service.events() if e["event_id"].startswith("poll:task:")]
        assert polled
        assert all(e["status"] == "done" for e in polled)
        # Nothing went back to GHL but the test's own edits: the changes came from there.
        assert service.ghl.writes_since(ghl_mark) == [f"PUT {ghl_path}/completed", f"PUT {ghl_path}"]


# --- a contact's sync state and its appointments ---------------------------------------------------


def test_contact_state_and_appointments_through_the_admin_routes(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    task = rankr_task(service, rankr_id, title="Prepare", dueDate="2026-12-10T09:00:00.000Z")
    booked = service.http.post(
        f"{service.ghl.base}/ui/contacts/{ghl_id}/appointments",
        data={"title": "Intro call", "startTime": "2026-12-11T10:00", "endTime": "2026-12-11T10:30"},
    )
    assert booked.status_code in (200, 303)
    service.settle()
    state = service.http.get(f"{service.url}/admin/contacts/{ghl_id}").json()
    assert (state["rankrId"], state["ghlId"], state["state"]) == (rankr_id, ghl_id, "linked")
    assert [(t["rankrId"], t["state"], t["title"]) for t in state["tasks"]] == [
        (task["taskId"], "linked", "Prepare")
    ]
    found = service.http.get(f"{service.url}/admin/contacts/{rankr_id}/appointments").json()
    assert [(a["title"], a["startTime"][:16]) for a in found["appointments"]] == [
        ("Intro call", "2026-12-11 10:00")
    ]
    missing = service.http.get(f"{service.url}/admin/contacts/nobody/appointments")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_task_create_whose_answer_is_lost_is_not_made_twice(service: Service) -> None:
    """GHL applies the create, but its answer is lost (a 504): the retry finds the task among the
    contact's tasks instead of creating a second one."""
    rankr_id, ghl_id = linked_contact(service)
    service.ghl.control(lost_answer_rate=1)
    task = rankr_task(service, rankr_id, title="Lost answer", dueDate="2026-12-14T09:00:00.000Z")
    wait_for(lambda: ghl_tasks_now(service, ghl_id) or None, what="the task in GHL")
    service.ghl.control(lost_answer_rate=0)
    service.settle()
    [ghl] = ghl_tasks(service, ghl_id)
    assert ghl["title"] == "Lost answer"
    assert links_of(service, "task") == [("linked", task["taskId"], ghl["id"])]
    assert any(e["type"] == "task.created" and e["attempts"] > 1 for e in service.events())


def ghl_tasks_now(service: Service, contact_id: str) -> list[dict[str, Any]]:
    """The contact's GHL tasks from the sandbox's state (not the API, which may be slowed down)."""
    state = service.http.get(f"{service.ghl.base}/_sandbox/state").json()
    return [task for task in state["tasks"] if task["contactId"] == contact_id]


def test_note_edited_in_rankr_and_deleted_in_ghl(service: Service) -> None:
    rankr_id, ghl_id = linked_contact(service)
    ghl_note = service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "Draft"}).json()["note"]
    service.settle()
    [note] = rankr_notes(service, rankr_id)
    ghl_mark = service.ghl.mark()
    path = f"/contacts/{rankr_id}/notes/{note['noteId']}"
    service.rankr.api("PUT", path, json={"body": "Final"}).raise_for_status()
    service.settle()
    assert [n["body"] for n in ghl_notes(service, ghl_id)] == ["Final"]
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/notes/{ghl_note['id']}"]
    service.ghl.api("DELETE", f"/contacts/{ghl_id}/notes/{ghl_note['id']}").raise_for_status()
    service.settle()
    assert rankr_notes(service, rankr_id) == []
    assert links_of(service, "note") == [("deleted", note["noteId"], ghl_note["id"])]
