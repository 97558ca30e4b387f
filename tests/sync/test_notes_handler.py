"""The note handlers, both directions, in process: create, edit, delete, echoes, a stale NoteUpdate."""

from __future__ import annotations

import pytest

from tests.support.inprocess import InProcessService
from tests.support.service import ghl_event
from tests.sync.records import (
    ghl_notes,
    linked_contact,
    links_of,
    rankr_notes,
)

pytestmark = pytest.mark.anyio


async def test_notes_lifecycle_both_ways(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    ghl_mark = await service.ghl.mark()
    answer = await service.rankr.api("POST", f"/contacts/{rankr_id}/notes", json={"body": "Met at the expo"})
    note = answer.json()
    await service.settle()
    [ghl_note] = await ghl_notes(service, ghl_id)
    assert ghl_note["body"] == "Met at the expo"
    assert await service.ghl.writes_since(ghl_mark) == [f"POST /contacts/{ghl_id}/notes"]

    # Edited in GHL: Rankr follows; the echo costs nothing.
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    (
        await service.ghl.api(
            "PUT",
            f"/contacts/{ghl_id}/notes/{ghl_note['id']}",
            json={"body": "Met at the expo; wants a demo"},
        )
    ).raise_for_status()
    await service.settle()
    assert (await rankr_notes(service, rankr_id))[0]["body"] == "Met at the expo; wants a demo"
    assert await service.rankr.writes_since(rankr_mark) == [
        f"PUT /contacts/{rankr_id}/notes/{note['noteId']}"
    ]
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/notes/{ghl_note['id']}"]

    # A stale NoteUpdate (GHL sends no time): the note is read, and nothing is overwritten.
    rankr_mark = await service.rankr.mark()
    stale = ghl_event("NoteUpdate", {"id": ghl_note["id"], "contactId": ghl_id, "body": "Met at the expo"})
    assert (await service.post_ghl(stale)).status_code == 202
    await service.settle()
    assert (await rankr_notes(service, rankr_id))[0]["body"] == "Met at the expo; wants a demo"
    assert await service.rankr.writes_since(rankr_mark) == []

    # Created in GHL, deleted in Rankr.
    answer = await service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "Prefers email"})
    second = answer.json()["note"]
    await service.settle()
    [mirror] = [n for n in await rankr_notes(service, rankr_id) if n["body"] == "Prefers email"]
    assert (
        await service.rankr.api("DELETE", f"/contacts/{rankr_id}/notes/{mirror['noteId']}")
    ).status_code == 204
    await service.settle()
    assert [n["id"] for n in await ghl_notes(service, ghl_id)] == [ghl_note["id"]]
    assert ("deleted", mirror["noteId"], second["id"]) in await links_of(service, "note")


async def test_note_edited_in_rankr_and_deleted_in_ghl(service: InProcessService) -> None:
    rankr_id, ghl_id = await linked_contact(service)
    ghl_note = (await service.ghl.api("POST", f"/contacts/{ghl_id}/notes", json={"body": "Draft"})).json()[
        "note"
    ]
    await service.settle()
    [note] = await rankr_notes(service, rankr_id)
    ghl_mark = await service.ghl.mark()
    path = f"/contacts/{rankr_id}/notes/{note['noteId']}"
    (await service.rankr.api("PUT", path, json={"body": "Final"})).raise_for_status()
    await service.settle()
    assert [n["body"] for n in await ghl_notes(service, ghl_id)] == ["Final"]
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl_id}/notes/{ghl_note['id']}"]
    (await service.ghl.api("DELETE", f"/contacts/{ghl_id}/notes/{ghl_note['id']}")).raise_for_status()
    await service.settle()
    assert await rankr_notes(service, rankr_id) == []
    assert await links_of(service, "note") == [("deleted", note["noteId"], ghl_note["id"])]
