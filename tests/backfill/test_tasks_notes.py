"""Tasks and notes in backfill and reconciliation, in process: records made on both sides before the
service was connected (or while every webhook was dropped) end up on both sides exactly once."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from app.inbox.models import Source
from app.inbox.service import IncomingEvent, enqueue, ordering_key
from app.sandbox import keys
from app.sync.children import SURVEY
from tests.backfill.jobs import backfill, drive, reconciliation
from tests.support.inprocess import InProcessService, inprocess_service
from tests.sync.records import (
    ghl_notes,
    ghl_tasks,
    ghl_tasks_now,
    linked_contact,
    links_of,
    rankr_notes,
    rankr_task,
    rankr_tasks,
)

pytestmark = pytest.mark.anyio

DUE = "2026-12-01T09:30:00.000Z"
LATER = "2026-12-03T15:00:00.000Z"


@pytest.fixture
def service(inprocess: InProcessService) -> InProcessService:
    return inprocess


async def rankr_child(service: InProcessService, contact: str, kind: str, **fields: Any) -> dict[str, Any]:
    answer = await service.rankr.api("POST", f"/contacts/{contact}/{kind}", json=fields)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def ghl_child(service: InProcessService, contact: str, kind: str, **fields: Any) -> dict[str, Any]:
    answer = await service.ghl.api("POST", f"/contacts/{contact}/{kind}", json=fields)
    assert answer.status_code == 201, answer.text
    return dict(answer.json()["task" if kind == "tasks" else "note"])


async def world_before_connecting(service: InProcessService) -> None:
    """Two people on both sides, one on each side only, with tasks and notes; no webhook sent."""
    await service.rankr.control(webhooks_enabled=False)
    await service.ghl.control(webhooks_enabled=False)
    both_r = await service.rankr.seed([{"email": f"both{i}@example.com", "firstName": "R"} for i in range(2)])
    both_g = await service.ghl.seed([{"email": f"both{i}@example.com", "lastName": "G"} for i in range(2)])
    [rankr_only] = await service.rankr.seed([{"email": "rankr.only@example.com"}])
    [ghl_only] = await service.ghl.seed([{"email": "ghl.only@example.com"}])
    for r, g in zip(both_r, both_g, strict=True):
        # The same task and note on both sides (paired), and some on one side only.
        await rankr_child(service, r, "tasks", title="Call back", dueDate=DUE)
        await ghl_child(service, g, "tasks", title="Call back", dueDate=DUE, completed=False)
        await rankr_child(service, r, "notes", body="Met at the fair")
        await ghl_child(service, g, "notes", body="Met at the fair")
        await rankr_child(service, r, "tasks", title="Send a quote", dueDate=LATER, description="10 seats")
        await ghl_child(service, g, "tasks", title="Book a demo", dueDate=LATER, completed=True)
        await rankr_child(service, r, "notes", body="Prefers email")
        await ghl_child(service, g, "notes", body="Has a dog")
    await rankr_child(service, rankr_only, "tasks", title="Welcome call", dueDate=DUE)
    await rankr_child(service, rankr_only, "notes", body="Signed up online")
    await ghl_child(service, ghl_only, "tasks", title="Follow up", dueDate=DUE, completed=False)
    await ghl_child(service, ghl_only, "notes", body="From the landing page")
    await service.rankr.control(webhooks_enabled=True)
    await service.ghl.control(webhooks_enabled=True)


async def both_sides(service: InProcessService) -> dict[str, tuple[Counter[tuple[Any, ...]], ...]]:
    """Per linked contact (by its Rankr id): its tasks (title, due date, done) and note bodies on
    each side."""
    seen: dict[str, tuple[Counter[tuple[Any, ...]], ...]] = {}
    for link in await links_of(service, "contact"):
        state, rankr_id, ghl_id = link
        assert state == "linked"
        assert rankr_id
        assert ghl_id
        seen[rankr_id] = (
            Counter(
                (t["title"], t.get("dueDate"), t["status"] == "completed")
                for t in await rankr_tasks(service, rankr_id)
            ),
            Counter(
                (t["title"], t.get("dueDate"), bool(t["completed"])) for t in await ghl_tasks(service, ghl_id)
            ),
            Counter((n["body"],) for n in await rankr_notes(service, rankr_id)),
            Counter((n["body"],) for n in await ghl_notes(service, ghl_id)),
        )
    return seen


async def assert_in_step(service: InProcessService, tasks: int, notes: int) -> None:
    seen = await both_sides(service)
    for rankr_tasks_, ghl_tasks_, rankr_notes_, ghl_notes_ in seen.values():
        assert rankr_tasks_ == ghl_tasks_
        assert rankr_notes_ == ghl_notes_
        assert max([*rankr_tasks_.values(), *rankr_notes_.values()]) == 1  # each exactly once
    assert sum(sum(s[0].values()) for s in seen.values()) == tasks
    assert sum(sum(s[2].values()) for s in seen.values()) == notes
    assert Counter(state for state, *_ in await links_of(service, "task")) == {"linked": tasks}
    assert Counter(state for state, *_ in await links_of(service, "note")) == {"linked": notes}


async def test_a_dry_run_of_contacts_only_reads_no_task_or_note_list(service: InProcessService) -> None:
    await world_before_connecting(service)
    marks = await service.rankr.mark(), await service.ghl.mark()
    dry = await drive(service, backfill(service, dry_run=True, count_tasks_and_notes=False))
    assert dry is not None
    assert "tasks" not in dry
    assert "notes" not in dry
    for upstream, mark in zip((service.rankr, service.ghl), marks, strict=True):
        paths = [str(request["path"]) for request in await upstream.requests_since(mark)]
        assert paths
        assert not [path for path in paths if "/tasks" in path or "/notes" in path]


async def test_backfill_brings_tasks_and_notes_over_once_and_a_second_run_writes_nothing(
    service: InProcessService,
) -> None:
    await world_before_connecting(service)
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    dry = await drive(service, backfill(service, dry_run=True))
    assert dry is not None
    assert dry["tasks"] == {"paired": 2, "createdInGhl": 3, "createdInRankr": 3}
    assert dry["notes"] == {"paired": 2, "createdInGhl": 3, "createdInRankr": 3}
    assert await service.rankr.writes_since(rankr_mark) == []
    assert await service.ghl.writes_since(ghl_mark) == []
    assert await service.links() == []

    counts = await drive(service, backfill(service))
    assert counts is not None
    # Per person on both sides: 3 tasks (one paired) and 3 notes (one paired); one on each side only.
    await assert_in_step(service, tasks=2 * 3 + 2, notes=2 * 3 + 2)
    assert counts["contactsSurveyed"] == counts["contactsToSurvey"] == 4
    assert counts["tasks"] == {"paired": 2, "createdInGhl": 3, "createdInRankr": 3, "repaired": 0}
    assert counts["notes"] == {"paired": 2, "createdInGhl": 3, "createdInRankr": 3, "repaired": 0}
    [connection] = (await service.status())["connections"]
    assert connection["backfill"]["counts"]["notes"] == counts["notes"]  # /status shows them
    assert dead_events(await service.events()) == []

    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    again = await drive(service, backfill(service))
    assert again is not None
    assert await service.rankr.writes_since(rankr_mark) == []
    assert await service.ghl.writes_since(ghl_mark) == []
    assert again["tasks"] == {"paired": 0, "createdInGhl": 0, "createdInRankr": 0, "repaired": 0}
    await assert_in_step(service, tasks=8, notes=8)


def json_of(value: str | dict[str, Any] | None) -> dict[str, Any]:
    """A JSON column as read back (SQLite hands back its text)."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def dead_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["status"] == "dead"]


async def test_a_killed_backfill_resumes_and_still_makes_each_task_and_note_once(
    behaviour_database_url: str,
) -> None:
    # A few events claimed at a time: the backfill is stopped with some contacts surveyed, others not.
    async with inprocess_service(behaviour_database_url, worker_concurrency=1) as service:
        await resumed_after_a_kill(service)


async def resumed_after_a_kill(service: InProcessService) -> None:
    await world_before_connecting(service)

    async def surveying() -> bool:
        rows = await service.query(
            "SELECT count(*) AS n FROM webhook_events WHERE type = 'sync.children.survey' AND status = 'done'"
        )
        return bool(rows[0]["n"])

    assert await drive(service, backfill(service), until=surveying, rounds=1) is None
    [job] = await service.query("SELECT state, phase FROM sync_jobs WHERE job = 'backfill'")
    assert job == {"state": "running", "phase": "children"}
    surveys = await service.query("SELECT status FROM webhook_events WHERE type = 'sync.children.survey'")
    assert 0 < Counter(row["status"] for row in surveys)["done"] < 4
    counts = await drive(service, backfill(service))
    assert counts is not None
    await assert_in_step(service, tasks=8, notes=8)
    assert dead_events(await service.events()) == []
    [job] = await service.query("SELECT state, phase FROM sync_jobs WHERE job = 'backfill'")
    assert job == {"state": "done", "phase": "done"}


async def test_reconciliation_repairs_task_and_note_events_that_were_missed(
    service: InProcessService,
) -> None:
    await world_before_connecting(service)
    assert await drive(service, backfill(service)) is not None
    [rankr_id] = [contact["contactId"] for contact in await service.rankr.by_email("both0@example.com")]
    [ghl_id] = [contact["id"] for contact in await service.ghl.by_email("both0@example.com")]
    [quote] = [t for t in await rankr_tasks(service, rankr_id) if t["title"] == "Send a quote"]
    [ghl_quote] = [t for t in await ghl_tasks(service, ghl_id) if t["title"] == "Send a quote"]
    [call] = [t for t in await ghl_tasks(service, ghl_id) if t["title"] == "Call back"]
    [fair] = [n for n in await rankr_notes(service, rankr_id) if n["body"] == "Met at the fair"]
    await service.rankr.control(webhook_drop_rate=1.0)
    await service.ghl.control(webhook_drop_rate=1.0)

    await rankr_child(service, rankr_id, "tasks", title="New in Rankr", dueDate=DUE)
    await ghl_child(service, ghl_id, "notes", body="New in GHL")
    call_path = f"/contacts/{ghl_id}/tasks/{call['id']}"
    (await service.ghl.api("PUT", call_path, json={"title": "Call back soon"})).raise_for_status()
    fair_path = f"/contacts/{rankr_id}/notes/{fair['noteId']}"
    assert (await service.rankr.api("DELETE", fair_path)).status_code == 204
    # The same field changed on both sides: CONFLICT_TIE_WINNER (rankr) decides, and it is audited.
    quote_path = f"/contacts/{rankr_id}/tasks/{quote['taskId']}"
    (await service.rankr.api("PUT", quote_path, json={"description": "12 seats"})).raise_for_status()
    ghl_quote_path = f"/contacts/{ghl_id}/tasks/{ghl_quote['id']}"
    (await service.ghl.api("PUT", ghl_quote_path, json={"body": "15 seats"})).raise_for_status()
    await service.settle()
    assert [e for e in await service.events() if e["status"] != "done"] == []
    await service.rankr.control(webhook_drop_rate=0.0)
    await service.ghl.control(webhook_drop_rate=0.0)

    counts = await drive(service, reconciliation(service))
    assert counts is not None
    # 8 tasks + 1 new; 8 notes + 1 new - 1 deleted (the GHL copy goes too, its link ends).
    seen = await both_sides(service)
    rankr_tasks_, ghl_tasks_, rankr_notes_, ghl_notes_ = seen[rankr_id]
    assert rankr_tasks_ == ghl_tasks_
    assert rankr_notes_ == ghl_notes_
    assert ("New in Rankr", DUE, False) in ghl_tasks_
    assert ("New in GHL",) in rankr_notes_
    assert ("Met at the fair",) not in ghl_notes_
    assert ("Call back soon", DUE, False) in rankr_tasks_
    [quoted] = [t for t in await ghl_tasks(service, ghl_id) if t["title"] == "Send a quote"]
    assert quoted["body"] == "12 seats"
    decisions = [
        changes
        for entry in await service.audit()
        if entry["action"] == "merge" and "description" in (changes := json_of(entry["changes"]))
    ]
    assert decisions[-1]["description"] == {
        "rankr": "12 seats",
        "ghl": "15 seats",
        "to": "12 seats",
        "why": "changed on both sides; no modification time to compare; CONFLICT_TIE_WINNER=rankr",
    }
    assert counts["tasks"]["createdInGhl"] == 1
    assert counts["notes"]["createdInRankr"] == 1
    assert counts["tasks"]["repaired"] == 2
    assert counts["notes"]["repaired"] == 1
    assert dead_events(await service.events()) == []

    ghl_mark, rankr_mark = await service.ghl.mark(), await service.rankr.mark()
    assert await drive(service, reconciliation(service)) is not None
    assert await service.rankr.writes_since(rankr_mark) == []
    assert await service.ghl.writes_since(ghl_mark) == []


async def test_a_task_the_survey_found_is_not_held_as_a_possible_echo(service: InProcessService) -> None:
    """While a task create toward GHL is in flight for a contact, a GHL task new to the service may
    be its echo and waits; one a survey listed was there before that create and is applied at once.
    Each task still ends up once on each side."""
    rankr_id, ghl_id = await linked_contact(service)
    await service.ghl.control(lost_answer_rate=1)
    await rankr_task(service, rankr_id, title="In flight", dueDate=DUE)
    await service.deliver()
    await service.run_worker()  # the create reaches GHL, its answer does not: the link stays pending
    await service.ghl.control(lost_answer_rate=0, webhooks_enabled=False)
    found = await ghl_child(service, ghl_id, "tasks", title="Found", dueDate=DUE, completed=False)
    await service.ghl.control(webhooks_enabled=True)
    await ghl_child(service, ghl_id, "tasks", title="Sent", dueDate=LATER, completed=False)
    location = keys.GHL_LOCATION_ID
    body = {"type": "TaskCreate", "locationId": location, **found, "contactId": ghl_id, "synthetic": SURVEY}
    key = ordering_key(Source.GHL, location, "task", found["id"])
    surveyed = IncomingEvent(
        Source.GHL, f"survey:task:create:ghl:{found['id']}", "TaskCreate", location, key, body
    )
    assert await enqueue(service.app.state.sessions, surveyed, service.clock())

    await service.deliver()  # the TaskCreate webhook of "Sent"
    await service.run_worker()
    # The create toward GHL is unresolved: "Sent" (its webhook) waits, "Found" (the survey's) did not.
    assert ("pending", None) in [(state, ghl) for state, _, ghl in await links_of(service, "task")]
    assert sorted(t["title"] for t in await rankr_tasks(service, rankr_id)) == ["Found", "In flight"]

    await service.settle()
    assert sorted(t["title"] for t in await rankr_tasks(service, rankr_id)) == ["Found", "In flight", "Sent"]
    assert sorted(t["title"] for t in await ghl_tasks_now(service, ghl_id)) == ["Found", "In flight", "Sent"]
    assert Counter(state for state, *_ in await links_of(service, "task")) == {"linked": 3}
