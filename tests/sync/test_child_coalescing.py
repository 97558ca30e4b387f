"""Bursts of task and note events, in process: folded into one write of the newest state, deletions
kept, and GHL bodies that arrive out of order not trusted over the record itself."""

from __future__ import annotations

import pytest

from tests.support.inprocess import InProcessService
from tests.support.service import ghl_event
from tests.sync.records import (
    ghl_notes,
    ghl_tasks,
    linked_contact,
    links_of,
    rankr_notes,
    rankr_task,
    rankr_tasks,
)

pytestmark = pytest.mark.anyio
BURST = 20


async def coalesced(service: InProcessService) -> int:
    return sum((event["last_error"] or "").startswith("coalesced") for event in await service.events())


async def test_a_burst_of_rankr_task_edits_is_one_write_of_the_newest_state(
    service: InProcessService,
) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    task = await rankr_task(service, rankr_id, title="Call", dueDate="2026-12-09T10:00:00.000Z")
    await service.settle()
    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    ghl_mark = await service.ghl.mark()
    for edit in range(1, BURST + 1):
        (await service.rankr.api("PUT", path, json={"title": f"Call, take {edit}"})).raise_for_status()
    await service.settle()
    [ghl] = await ghl_tasks(service, ghl_id)
    assert ghl["title"] == f"Call, take {BURST}"
    assert len(await service.ghl.writes_since(ghl_mark)) <= 2
    assert await coalesced(service) >= BURST - 2


async def test_a_burst_of_ghl_note_edits_is_one_write_of_the_newest_state(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    answer = await service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "draft"})
    note = answer.json()["note"]
    await service.settle()
    rankr_mark = await service.rankr.mark()
    for edit in range(1, BURST + 1):
        body = {"body": f"draft {edit}"}
        (await service.ghl.api("PUT", f"/contacts/{ghl_id}/notes/{note['id']}", json=body)).raise_for_status()
    await service.settle()
    assert [n["body"] for n in await rankr_notes(service, rankr_id)] == [f"draft {BURST}"]
    assert len(await service.rankr.writes_since(rankr_mark)) <= 2
    assert await coalesced(service) >= BURST - 2


async def test_a_burst_of_rankr_note_edits_is_one_write_of_the_newest_state(
    service: InProcessService,
) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    note = (await service.rankr.api("POST", f"/contacts/{rankr_id}/notes", json={"body": "v0"})).json()
    await service.settle()
    ghl_mark = await service.ghl.mark()
    path = f"/contacts/{rankr_id}/notes/{note['noteId']}"
    for edit in range(1, BURST + 1):
        (await service.rankr.api("PUT", path, json={"body": f"v{edit}"})).raise_for_status()
    await service.settle()
    assert [n["body"] for n in await ghl_notes(service, ghl_id)] == [f"v{BURST}"]
    assert len(await service.ghl.writes_since(ghl_mark)) <= 2


async def test_a_task_created_completed_and_edited_in_ghl_in_one_burst_arrives_completed(
    service: InProcessService,
) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    rankr_mark = await service.rankr.mark()
    body = {"title": "Demo", "dueDate": "2026-12-10T15:00:00.000Z", "completed": False}
    task = (await service.ghl.api("POST", f"/contacts/{ghl_id}/tasks", json=body)).json()["task"]
    path = f"/contacts/{ghl_id}/tasks/{task['id']}"
    for edit in range(1, BURST + 1):
        # Each re-completion sends a TaskComplete; the title edits send nothing (GHL has no TaskUpdate).
        (await service.ghl.api("PUT", path, json={"title": f"Demo {edit}"})).raise_for_status()
        done = {"completed": edit % 2 == 1}
        (await service.ghl.api("PUT", f"{path}/completed", json=done)).raise_for_status()
    (await service.ghl.api("PUT", f"{path}/completed", json={"completed": True})).raise_for_status()
    await service.settle()
    [mirror] = await rankr_tasks(service, rankr_id)
    assert (mirror["title"], mirror["status"]) == (f"Demo {BURST}", "completed")
    assert await service.rankr.writes_since(rankr_mark) == [f"POST /contacts/{rankr_id}/tasks"]


async def test_a_stale_ghl_note_body_arriving_last_does_not_hide_the_newer_edits(
    service: InProcessService,
) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    note = (await service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "first"})).json()["note"]
    await service.settle()
    path = f"/contacts/{ghl_id}/notes/{note['id']}"
    for body in ("second", "third"):
        (await service.ghl.api("PUT", path, json={"body": body})).raise_for_status()
    await service.deliver()
    # A delivery of the first state comes in last: it matches what was last synced.
    stale = ghl_event("NoteUpdate", {"id": note["id"], "contactId": ghl_id, "body": "first"})
    assert (await service.post_ghl(stale)).status_code == 202
    await service.settle()
    assert [n["body"] for n in await rankr_notes(service, rankr_id)] == ["third"]


async def test_a_deletion_behind_a_burst_of_edits_is_not_lost(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    task = await rankr_task(service, rankr_id, title="Quote", dueDate="2026-12-11T09:00:00.000Z")
    note = (await service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "n0"})).json()["note"]
    await service.settle()
    task_path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    note_path = f"/contacts/{ghl_id}/notes/{note['id']}"
    for edit in range(1, 6):
        (await service.rankr.api("PUT", task_path, json={"title": f"Quote {edit}"})).raise_for_status()
        (await service.ghl.api("PUT", note_path, json={"body": f"n{edit}"})).raise_for_status()
    assert (await service.rankr.api("DELETE", task_path)).status_code == 204
    (await service.ghl.api("DELETE", note_path)).raise_for_status()
    ghl_mark, rankr_mark = await service.ghl.mark(), await service.rankr.mark()
    await service.settle()
    assert await ghl_tasks(service, ghl_id) == []
    assert await rankr_notes(service, rankr_id) == []
    assert [state for state, _, _ in await links_of(service, "task")] == ["deleted"]
    assert [state for state, _, _ in await links_of(service, "note")] == ["deleted"]
    # One deletion each way, nothing written before it.
    assert len(await service.ghl.writes_since(ghl_mark)) == 1
    assert len(await service.rankr.writes_since(rankr_mark)) == 1
