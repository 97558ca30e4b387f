"""The HTML pages: a person creates, edits and deletes records with plain forms, and the products
send the same webhooks as for API changes."""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import RANKR_LIFE_CYCLE_EVENTS, Env


def submit(env: Env, side: str, path: str, form: dict[str, str]) -> str:
    """Post a form as a browser does; the answer is a redirect to the page to show next."""
    answer = env.http.post(f"{env.url}/sandbox/{side}/ui{path}", data=form)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"/sandbox/{side}/ui")
    return location


def state(env: Env, side: str) -> dict[str, Any]:
    return dict(env.http.get(f"{env.url}/sandbox/{side}/_sandbox/state").json())


# The inputs of each side's contact form (checkboxes aside: a browser leaves an unticked one out).
CONTACT_INPUTS = {
    "ghl": (
        "firstName",
        "lastName",
        "email",
        "phone",
        "companyName",
        "website",
        "address1",
        "city",
        "state",
        "postalCode",
        "country",
        "source",
        "assignedTo",
        "tags",
        "customFields",
    ),
    "rankr": (
        "firstName",
        "lastName",
        "email",
        "phone",
        "companyName",
        "website",
        "ownerId",
        "address.line1",
        "address.city",
        "address.state",
        "address.postalCode",
        "address.country",
        "tags",
        "customFields",
    ),
}


def contact_form(side: str, **fields: str) -> dict[str, str]:
    """The side's contact form as a browser posts it: every input, blank unless given."""
    return {**dict.fromkeys(CONTACT_INPUTS[side], ""), **fields}


def test_ghl_pages_render(env: Env) -> None:
    page = env.http.get(f"{env.ghl_base}/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "New contact" in page.text
    assert "Rate limit, faults and webhooks" in page.text
    assert env.http.get(f"{env.url}/sandbox/").status_code == 200
    assert env.http.get(f"{env.ghl_base}/", follow_redirects=True).url.path == "/sandbox/ghl/ui"


def test_ghl_contact_life_cycle_through_forms(env: Env) -> None:
    location = submit(
        env,
        "ghl",
        "/contacts",
        contact_form(
            "ghl",
            firstName="Ada",
            email="ada@example.com",
            tags="VIP, lead",
            customFields="fieldAAAAAAAAAAAAAAA=tea",
        ),
    )
    contact = state(env, "ghl")["contacts"][0]
    assert location.endswith(f"/contacts/{contact['id']}?msg=Contact+created.")
    assert contact["tags"] == ["vip", "lead"]
    assert contact["customFields"] == [{"id": "fieldAAAAAAAAAAAAAAA", "value": "tea"}]
    page = env.http.get(f"{env.ghl_base}/ui/contacts/{contact['id']}")
    assert page.status_code == 200
    assert 'value="ada@example.com"' in page.text

    cid = contact["id"]
    submit(
        env,
        "ghl",
        f"/contacts/{cid}",
        contact_form(
            "ghl", firstName="Ada", lastName="Lovelace", email="ada@example.com", tags="vip", dnd="on"
        ),
    )
    changed = state(env, "ghl")["contacts"][0]
    assert changed["lastName"] == "Lovelace"
    assert changed["tags"] == ["vip"]
    assert changed["customFields"] == []
    assert changed["dnd"] is True

    submit(
        env,
        "ghl",
        f"/contacts/{cid}/tasks",
        {"title": "Call", "body": "", "dueDate": "2030-01-01T10:00", "assignedTo": ""},
    )
    task = state(env, "ghl")["tasks"][0]
    assert task["dueDate"] == "2030-01-01T10:00:00.000Z"
    assert task["completed"] is False
    submit(
        env,
        "ghl",
        f"/contacts/{cid}/tasks/{task['id']}",
        {"title": "Call back", "body": "soon", "dueDate": "2030-01-02T10:00", "assignedTo": ""},
    )
    submit(env, "ghl", f"/contacts/{cid}/tasks/{task['id']}/complete", {"completed": "true"})
    assert state(env, "ghl")["tasks"][0]["completed"] is True
    submit(env, "ghl", f"/contacts/{cid}/tasks/{task['id']}/complete", {"completed": "false"})
    assert state(env, "ghl")["tasks"][0]["completed"] is False
    submit(env, "ghl", f"/contacts/{cid}/tasks/{task['id']}/delete", {})

    submit(env, "ghl", f"/contacts/{cid}/notes", {"body": "hello", "userId": ""})
    note = state(env, "ghl")["notes"][0]
    submit(env, "ghl", f"/contacts/{cid}/notes/{note['id']}", {"body": "hello again", "userId": ""})
    submit(env, "ghl", f"/contacts/{cid}/notes/{note['id']}/delete", {})
    submit(
        env,
        "ghl",
        f"/contacts/{cid}/appointments",
        {"title": "Demo", "startTime": "2030-01-03T09:00", "endTime": "2030-01-03T09:30", "notes": ""},
    )
    assert env.http.get(f"{env.ghl_base}/ui/contacts/{cid}").status_code == 200
    submit(env, "ghl", f"/contacts/{cid}/delete", {})
    assert state(env, "ghl")["contacts"] == []

    env.drain()
    assert [b["type"] for b in env.capture.accepted("ghl")] == [
        "ContactCreate",
        "ContactUpdate",
        "ContactTagUpdate",
        "ContactDndUpdate",
        "TaskCreate",
        "TaskComplete",
        "TaskDelete",
        "NoteCreate",
        "NoteUpdate",
        "NoteDelete",
        "AppointmentCreate",
        "ContactDelete",
    ]
    page = env.http.get(f"{env.ghl_base}/ui")
    assert "ContactDelete" in page.text
    assert "delivered" in page.text


def test_ghl_form_errors_are_shown_not_raised(env: Env) -> None:
    submit(env, "ghl", "/contacts", contact_form("ghl", email="dup@example.com"))
    location = submit(env, "ghl", "/contacts", contact_form("ghl", email="DUP@example.com"))
    assert "error=Duplicate+email" in location
    assert "Duplicate email" in env.http.get(f"{env.url}{location}").text
    assert len(state(env, "ghl")["contacts"]) == 1
    assert "error=" in submit(env, "ghl", "/contacts/nope/delete", {})


def test_a_form_post_that_is_not_a_form_is_refused_and_saves_nothing(env: Env) -> None:
    """JSON (or a body with no type) sent to a form's route is a 415, not a blank record."""
    for side in ("ghl", "rankr"):
        url = f"{env.url}/sandbox/{side}/ui/contacts"
        refused = [
            env.http.post(url, json={"email": "json@example.com"}),
            env.http.post(url, content=b"email=x%40example.com"),
        ]
        for answer in refused:
            assert answer.status_code == 415, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["status"] == 415
        assert "application/json" in refused[0].json()["detail"]
        assert state(env, side)["contacts"] == []
        # A form still works, multipart too, and a button's POST without a body (deleting) as well.
        page = submit(env, side, "/contacts", contact_form(side, email=f"form@{side}.example"))
        answer = env.http.post(url, files={"email": (None, f"multi@{side}.example")})
        assert answer.status_code == 303, answer.text
        assert len(state(env, side)["contacts"]) == 2
        path = page.partition("/ui")[2].partition("?")[0]
        assert "msg=" in submit(env, side, f"{path}/delete", {})
        assert len(state(env, side)["contacts"]) == 1


def test_pages_escape_what_people_type(env: Env) -> None:
    submit(env, "ghl", "/contacts", contact_form("ghl", firstName="<script>alert(1)</script>"))
    page = env.http.get(f"{env.ghl_base}/ui").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page


def test_settings_form_changes_the_controls(env: Env) -> None:
    form = {
        "rate_max": "7",
        "rate_window_seconds": "2",
        "daily_limit": "100",
        "error_rate": "0",
        "error_status": "502",
        "latency_ms": "0",
        "webhook_drop_rate": "0.1",
    }
    submit(env, "rankr", "/control", form)
    settings = env.http.get(f"{env.rankr_base}/_sandbox/control").json()
    assert (settings["rate_max"], settings["error_status"], settings["webhooks_enabled"]) == (7, 502, False)
    assert "error=" in submit(env, "rankr", "/control", {**form, "error_rate": "3"})


def test_rankr_contact_life_cycle_through_forms(env: Env) -> None:
    submit(
        env,
        "rankr",
        "/contacts",
        contact_form(
            "rankr", email="ada@example.com", **{"address.city": "London"}, customFields="tier=gold"
        ),
    )
    contact = state(env, "rankr")["contacts"][0]
    assert contact["address"]["city"] == "London"
    assert contact["customFields"] == {"tier": "gold"}
    cid = contact["contactId"]
    assert 'value="ada@example.com"' in env.http.get(f"{env.rankr_base}/ui/contacts/{cid}").text
    submit(env, "rankr", f"/contacts/{cid}", contact_form("rankr", email="ada@example.com", firstName="Ada"))
    changed = state(env, "rankr")["contacts"][0]
    assert changed["firstName"] == "Ada"
    assert changed["address"]["city"] is None
    assert changed["customFields"] == {}

    task_form = {"title": "Call", "description": "", "dueDate": "", "assigneeId": "", "status": "open"}
    submit(env, "rankr", f"/contacts/{cid}/tasks", task_form)
    task = state(env, "rankr")["tasks"][0]
    submit(env, "rankr", f"/contacts/{cid}/tasks/{task['taskId']}", {**task_form, "title": "Call back"})
    submit(env, "rankr", f"/contacts/{cid}/tasks/{task['taskId']}/complete", {"completed": "true"})
    submit(env, "rankr", f"/contacts/{cid}/tasks/{task['taskId']}/complete", {"completed": "false"})
    submit(env, "rankr", f"/contacts/{cid}/tasks/{task['taskId']}/delete", {})
    submit(env, "rankr", f"/contacts/{cid}/notes", {"body": "hello", "authorId": "usr_ada"})
    note = state(env, "rankr")["notes"][0]
    assert note["authorId"] == "usr_ada"
    submit(env, "rankr", f"/contacts/{cid}/notes/{note['noteId']}", {"body": "hello again"})
    submit(env, "rankr", f"/contacts/{cid}/notes/{note['noteId']}/delete", {})
    submit(env, "rankr", f"/contacts/{cid}/delete", {})
    env.drain()
    assert [b["type"] for b in env.capture.accepted("rankr")] == RANKR_LIFE_CYCLE_EVENTS


def test_rankr_form_validation_matches_the_api(env: Env) -> None:
    location = submit(env, "rankr", "/contacts", contact_form("rankr", email="not-an-email", phone="12"))
    assert "error=" in location
    assert state(env, "rankr")["contacts"] == []
    env.drain()
    assert env.capture.received("rankr") == []
