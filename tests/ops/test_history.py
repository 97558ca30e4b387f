"""A contact's history holds its tasks' and notes' writes with its own (admin API, CLI, the query).

In-process: links and audit rows are written through the sync's repository functions, as the sync
writes them, then read back through ``app.ops.audit`` and the app over ``httpx.ASGITransport``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections import repository as connections
from app.db import session_factory, unit_of_work
from app.ops import audit
from app.sync import repository as links
from app.sync.models import Audit, Direction, LinkState
from tests.support.asgi import app_client
from tests.support.cli import cli_env, run_cli
from tests.support.inprocess import inprocess_service
from tests.support.service import ghl_event, rankr_event

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ADMIN = {"authorization": "Bearer s3cret"}


class Trail:
    """Writes links and audit entries the way the sync engine does, one second apart."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = session_factory(engine)
        self.connection_id = 0
        self.at = NOW

    async def connect(self) -> None:
        async with unit_of_work(self.sessions) as session:
            self.connection_id = (await connections.ensure(session, "acct_1", "loc_1", NOW)).id

    async def link(self, kind: str, rankr_id: str, ghl_id: str, parent_id: int | None = None) -> int:
        async with unit_of_work(self.sessions) as session:
            return await links.create(
                session,
                {
                    "connection_id": self.connection_id,
                    "kind": kind,
                    "rankr_id": rankr_id,
                    "ghl_id": ghl_id,
                    "parent_id": parent_id,
                    "state": LinkState.LINKED,
                    "created_at": NOW,
                    "updated_at": NOW,
                },
            )

    async def write(
        self,
        link_id: int,
        kind: str,
        ids: tuple[str, str],
        direction: str,
        action: str,
        *,
        changes: dict[str, Any] | None = None,
        result: Literal["ok", "error"] = "ok",
        detail: str | None = None,
        event_type: str | None = None,
    ) -> None:
        self.at += timedelta(seconds=1)
        entry = Audit(
            kind=kind,
            direction=Direction(direction),
            action=action,
            changes=changes or {},
            link_id=link_id,
            rankr_id=ids[0],
            ghl_id=ids[1],
            result=result,
            detail=detail,
        )
        async with unit_of_work(self.sessions) as session:
            await links.add_audit(
                session,
                entry,
                at=self.at,
                connection_id=self.connection_id,
                event_id=None,
                event_type=event_type or f"{kind}.updated",
                event_ref=f"msg_{self.at.second}",
            )


@pytest.fixture
async def trail(engine: AsyncEngine) -> Trail:
    """Contact c1 = G1 with a task and a note written both ways; contact c2 = G2 with a task of its own."""
    trail = Trail(engine)
    await trail.connect()
    contact = await trail.link("contact", "c1", "G1")
    other = await trail.link("contact", "c2", "G2")
    task = await trail.link("task", "t1", "GT1", parent_id=contact)
    note = await trail.link("note", "n1", "GN1", parent_id=contact)
    other_task = await trail.link("task", "t2", "GT2", parent_id=other)
    changes = {"firstName": {"from": None, "to": "Ada"}, "email": {"from": None, "to": "ada@example.com"}}
    await trail.write(contact, "contact", ("c1", "G1"), "to_ghl", "create", changes=changes)
    await trail.write(other, "contact", ("c2", "G2"), "to_ghl", "create")
    title = {"title": {"from": None, "to": "Call Ada back"}}
    await trail.write(task, "task", ("t1", "GT1"), "to_ghl", "create", changes=title)
    await trail.write(other_task, "task", ("t2", "GT2"), "to_ghl", "create")
    body = {"description": {"from": None, "to": "Ada prefers mornings"}}
    await trail.write(
        note, "note", ("n1", "GN1"), "to_rankr", "create", changes=body, event_type="NoteCreate"
    )
    await trail.write(
        task, "task", ("t1", "GT1"), "to_rankr", "update", changes={"completed": {"from": False, "to": True}}
    )
    await trail.write(
        note, "note", ("n1", "GN1"), "to_ghl", "update", result="error", detail="ghl 422: body too long"
    )
    await trail.write(contact, "contact", ("c1", "G1"), "to_rankr", "update", event_type="ContactUpdate")
    return trail


def steps(found: dict[str, Any]) -> list[tuple[str, str | None, str, str, str]]:
    return [(e["kind"], e["rankrId"], e["direction"], e["action"], e["result"]) for e in found["entries"]]


EXPECTED = [
    ("contact", "c1", "to_ghl", "create", "ok"),
    ("task", "t1", "to_ghl", "create", "ok"),
    ("note", "n1", "to_rankr", "create", "ok"),
    ("task", "t1", "to_rankr", "update", "ok"),
    ("note", "n1", "to_ghl", "update", "error"),
    ("contact", "c1", "to_rankr", "update", "ok"),
]


async def test_a_contacts_history_holds_its_tasks_and_notes_oldest_first(trail: Trail) -> None:
    async with trail.sessions() as session:
        by_rankr = await audit.history(session, "c1")
        by_ghl = await audit.history(session, "G1")
        other = await audit.history(session, "c2")
        a_task_id = await audit.history(session, "t1")
    assert by_rankr is not None
    assert by_ghl is not None
    assert other is not None
    assert steps(by_rankr) == EXPECTED
    assert by_ghl["entries"] == by_rankr["entries"]
    assert by_rankr["ids"] == ["G1", "c1"]
    assert [e["ghlId"] for e in by_rankr["entries"]] == ["G1", "GT1", "GN1", "GT1", "GN1", "G1"]
    assert steps(other) == [
        ("contact", "c2", "to_ghl", "create", "ok"),
        ("task", "t2", "to_ghl", "create", "ok"),
    ]
    # The history is a contact's: a task's id alone finds nothing.
    assert a_task_id is None
    entries = by_rankr["entries"]
    assert entries[0]["changes"]["email"] == {"from": None, "to": "a***@***.com"}
    assert entries[1]["changes"] == {"title": {"from": None, "to": "C***"}}
    assert entries[2]["changes"] == {"description": {"from": None, "to": "A***"}}
    assert entries[2]["event"]["type"] == "NoteCreate"
    assert entries[4]["detail"] == "ghl 422: body too long"
    text = json.dumps(by_rankr)
    for secret in ("Ada", "ada@example.com", "mornings", "Call"):
        assert secret not in text


async def test_the_newest_entries_are_kept_when_there_are_too_many(trail: Trail) -> None:
    async with trail.sessions() as session:
        found = await audit.history(session, "c1", limit=4)
        everything = await audit.history(session, "c1", limit=6)
    assert found is not None
    assert everything is not None
    assert found["truncated"] is True
    assert steps(found) == EXPECTED[2:]
    assert everything["truncated"] is False
    assert steps(everything) == EXPECTED


async def test_a_task_whose_link_is_gone_drops_out_of_its_contacts_history(trail: Trail) -> None:
    # Entries are kept when a link row is removed (link_id is set to NULL), but no longer belong anywhere.
    async with unit_of_work(trail.sessions) as session:
        task = await links.find(session, trail.connection_id, "task", "rankr", "t1")
        assert task is not None
        task.lease_owner = "me"
        await session.flush()
        await links.remove(session, task.id, "me")
    async with trail.sessions() as session:
        found = await audit.history(session, "c1")
    assert found is not None
    assert [e["rankrId"] for e in found["entries"]] == ["c1", "n1", "n1", "c1"]


async def test_the_admin_api_answers_with_the_whole_history(trail: Trail, database_url: str) -> None:
    async with app_client(database_url, admin_token="s3cret") as (_, http):
        answer = await http.get("/admin/contacts/G1/history", headers=ADMIN)
        missing = await http.get("/admin/contacts/t1/history", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert steps(answer.json()) == EXPECTED
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["detail"] == "no audit entries for contact t1"


async def test_the_cli_names_the_record_of_each_entry(trail: Trail, database_url: str) -> None:
    shown = run_cli(["history", "c1"], cli_env(database_url))
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.startswith("2026-")]
    assert [line.split("  ", 1)[1] for line in lines] == [
        "to_ghl create [ok]  contact rankr c1 / ghl G1",
        "to_ghl create [ok]  task rankr t1 / ghl GT1",
        "to_rankr create [ok]  note rankr n1 / ghl GN1",
        "to_rankr update [ok]  task rankr t1 / ghl GT1",
        "to_ghl update [error]  note rankr n1 / ghl GN1",
        "to_rankr update [ok]  contact rankr c1 / ghl G1",
    ]
    assert "title        None -> 'C***'" in shown.stdout
    assert "Ada" not in shown.stdout


async def test_the_real_sync_writes_what_the_history_shows(database_url: str) -> None:
    """Through the sync engine and the sandboxes: a Rankr contact and its task go to GHL, a GHL note
    on it comes to Rankr; the contact's history shows the three writes, each naming its record."""
    async with inprocess_service(database_url, coalesce_quiet_seconds=0, admin_token="s3cret") as service:
        for product in (service.ghl, service.rankr):
            # The test delivers each webhook itself, signed, with the record the sandbox holds.
            await product.control(webhooks_enabled=False)
        contact = await service.rankr.create(email="ada@example.com", firstName="Ada")
        await delivered(service.post_rankr(rankr_event("contact.created", contact)))
        assert await service.run_worker() == 1
        path = f"/contacts/{contact['contactId']}/tasks"
        task = (await service.rankr.api("POST", path, json={"title": "Call Ada"})).json()
        await delivered(service.post_rankr(rankr_event("task.created", task)))
        assert await service.run_worker() == 1
        [ghl_contact] = [c for c in await service.ghl.contacts() if c.get("email")]
        path = f"/contacts/{ghl_contact['id']}/notes"
        note = (await service.ghl.api("POST", path, json={"body": "Ada prefers mornings"})).json()["note"]
        fields = {"id": note["id"], "contactId": ghl_contact["id"], "body": note["body"]}
        await delivered(service.post_ghl(ghl_event("NoteCreate", fields)))
        assert await service.run_worker() == 1

        answer = await service.http.get(f"/admin/contacts/{ghl_contact['id']}/history", headers=service.admin)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [(e["kind"], e["direction"], e["action"], e["result"]) for e in found["entries"]] == [
        ("contact", "to_ghl", "create", "ok"),
        ("task", "to_ghl", "create", "ok"),
        ("note", "to_rankr", "create", "ok"),
    ]
    contact_entry, task_entry, note_entry = found["entries"]
    assert (contact_entry["rankrId"], contact_entry["ghlId"]) == (contact["contactId"], ghl_contact["id"])
    assert task_entry["rankrId"] == task["taskId"]
    assert task_entry["event"]["type"] == "task.created"
    assert note_entry["ghlId"] == note["id"]
    assert note_entry["event"]["type"] == "NoteCreate"
    assert "Ada" not in answer.text


async def delivered(posted: Awaitable[httpx.Response]) -> None:
    answer = await posted
    assert answer.status_code == 202, answer.text
