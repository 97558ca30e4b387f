"""The contact handlers, both directions, in process: create, update, delete, echoes, duplicates.

Each test acts as a person or another integration would (through the sandboxed products' APIs),
lets the sandboxes deliver their signed webhooks and the worker apply them (``settle``), then checks
both products and counts the writes the service made upstream in each sandbox's request log.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.inprocess import InProcessService
from tests.support.service import ghl_event, rankr_event
from tests.sync.records import rankr_person, unique_email

pytestmark = pytest.mark.anyio


async def created_in_rankr(service: InProcessService, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Rankr contact, synced: (rankr contact, ghl contact)."""
    email = unique_email()
    contact = await service.rankr.create(**rankr_person(email, **extra))
    await service.settle()
    [ghl] = await service.ghl.by_email(email)
    return contact, ghl


async def test_rankr_contact_created_appears_in_ghl_once(service: InProcessService) -> None:
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    contact, ghl = await created_in_rankr(service)
    assert ghl["firstName"] == "Ada"
    assert ghl["lastName"] == "Lovelace"
    assert ghl["companyName"] == "Analytical Engines"
    assert ghl["website"] == "https://ada.example"
    assert (ghl["address1"], ghl["city"], ghl["state"], ghl["postalCode"], ghl["country"]) == (
        "12 Loop Street",
        "London",
        "LDN",
        "N1 9GU",
        "GB",
    )
    assert ghl["phone"] == contact["phone"]
    assert sorted(ghl["tags"]) == ["lead", "vip"]
    # One write to GHL (the upsert); the GHL echo of it costs no write back to Rankr.
    assert await service.ghl.writes_since(ghl_mark) == ["POST /contacts/upsert"]
    assert await service.rankr.writes_since(rankr_mark) == ["POST /contacts"]  # the test's own create
    assert [(link["state"], link["rankr_id"], link["ghl_id"]) for link in await service.links()] == [
        ("linked", contact["contactId"], ghl["id"])
    ]
    assert all(event["status"] == "done" for event in await service.events())


async def test_rankr_update_writes_only_the_change(service: InProcessService) -> None:
    contact, ghl = await created_in_rankr(service)
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    await service.rankr.update(contact["contactId"], firstName="Augusta", address={"city": "Paris"})
    await service.settle()
    after = await service.ghl.get(ghl["id"])
    assert after is not None
    assert (after["firstName"], after["city"], after["address1"]) == ("Augusta", "Paris", "12 Loop Street")
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}"]
    assert await service.rankr.writes_since(rankr_mark) == [
        f"PUT /contacts/{contact['contactId']}"
    ]  # the test's
    [update] = [entry for entry in await service.audit() if entry["action"] == "update"]
    assert update["direction"] == "to_ghl"


async def test_an_update_that_changes_no_mapped_field_writes_nothing(service: InProcessService) -> None:
    contact, _ = await created_in_rankr(service)
    ghl_mark = await service.ghl.mark()
    await service.rankr.update(contact["contactId"], customFields={"unmapped": "x"})
    await service.settle()
    assert await service.ghl.writes_since(ghl_mark) == []


async def test_a_rankr_event_showing_the_synced_state_settles_at_once_unless_it_is_newer(
    service: InProcessService,
) -> None:
    contact, _ = await created_in_rankr(service)
    ghl_mark = await service.ghl.mark()
    # As the echo of the service's own write would: the fields last synced, no newer than the link.
    assert (await service.post_rankr(rankr_event("contact.updated", contact))).status_code == 202
    await service.settle()
    # The same fields stamped later (a change to something unmapped): the link keeps the later time.
    later = {**contact, "lastModified": "2030-01-01T00:00:00.000Z"}
    assert (await service.post_rankr(rankr_event("contact.updated", later))).status_code == 202
    await service.settle()
    notes = [event["last_error"] for event in await service.events("rankr")][-2:]
    assert notes == ["unchanged since the last sync (echo or no-op)", "no mapped field changed"]
    [link] = await service.query("SELECT rankr_modified_at FROM links")
    assert str(link["rankr_modified_at"]).startswith("2030-01-01")
    assert await service.ghl.writes_since(ghl_mark) == []


async def test_rankr_delete_deletes_in_ghl(service: InProcessService) -> None:
    contact, ghl = await created_in_rankr(service)
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    await service.rankr.delete(contact["contactId"])
    await service.settle()
    assert await service.ghl.get(ghl["id"]) is None
    assert await service.ghl.writes_since(ghl_mark) == [f"DELETE /contacts/{ghl['id']}"]
    assert await service.rankr.writes_since(rankr_mark) == [
        f"DELETE /contacts/{contact['contactId']}"
    ]  # the test's
    assert [link["state"] for link in await service.links()] == ["deleted"]


async def test_ghl_contact_created_updated_and_deleted_reaches_rankr(service: InProcessService) -> None:
    email = unique_email()
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    ghl = await service.ghl.create(
        email=email, firstName="Grace", lastName="Hopper", tags=["Navy"], city="Arlington"
    )
    await service.settle()
    [contact] = await service.rankr.by_email(email)
    assert (contact["firstName"], contact["lastName"], contact["tags"]) == ("Grace", "Hopper", ["navy"])
    assert contact["address"]["city"] == "Arlington"
    assert await service.rankr.writes_since(rankr_mark) == ["POST /contacts"]
    assert await service.ghl.writes_since(ghl_mark) == ["POST /contacts/"]  # the test's own create

    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    await service.ghl.update(ghl["id"], lastName="Murray Hopper")
    await service.settle()
    assert (await service.rankr.get(contact["contactId"]))["lastName"] == "Murray Hopper"  # type: ignore[index]
    assert await service.rankr.writes_since(rankr_mark) == [f"PUT /contacts/{contact['contactId']}"]
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}"]  # the test's own

    rankr_mark = await service.rankr.mark()
    await service.ghl.delete(ghl["id"])
    await service.settle()
    assert await service.rankr.get(contact["contactId"]) is None
    assert await service.rankr.writes_since(rankr_mark) == [f"DELETE /contacts/{contact['contactId']}"]
    # The service's client-credentials token is fetched once and reused (the other one is the test's).
    tokens = [r for r in await service.rankr.requests_since(0) if r["path"] == "/oauth/token"]
    assert len(tokens) == 2


async def test_a_redelivered_or_replayed_event_writes_nothing(service: InProcessService) -> None:
    contact, _ = await created_in_rankr(service)
    current = await service.rankr.get(contact["contactId"])
    assert current is not None
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    before = len(await service.events())
    first = await service.post_rankr(rankr_event("contact.updated", current), msg_id="msg_fixed_1")
    assert first.status_code == 202
    again = await service.post_rankr(rankr_event("contact.updated", current), msg_id="msg_fixed_1")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    replay = await service.post_rankr(rankr_event("contact.updated", current))  # a new id, same old state
    assert replay.status_code == 202
    await service.settle()
    assert len(await service.events()) == before + 2
    assert await service.ghl.writes_since(ghl_mark) == []
    assert await service.rankr.writes_since(rankr_mark) == []


async def test_an_older_state_never_overwrites_a_newer_one(service: InProcessService) -> None:
    contact, ghl = await created_in_rankr(service)
    await service.rankr.control(webhooks_enabled=False)  # the test delivers this pair itself, reversed
    older = await service.rankr.update(contact["contactId"], firstName="Older")
    newer = await service.rankr.update(contact["contactId"], firstName="Newer")
    ghl_mark = await service.ghl.mark()
    assert (await service.post_rankr(rankr_event("contact.updated", newer))).status_code == 202
    assert (await service.post_rankr(rankr_event("contact.updated", older))).status_code == 202
    await service.settle()
    assert (await service.ghl.get(ghl["id"]))["firstName"] == "Newer"  # type: ignore[index]
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}"]


async def test_a_late_ghl_event_applies_the_current_state(service: InProcessService) -> None:
    contact, ghl = await created_in_rankr(service)
    await service.ghl.control(webhooks_enabled=False)
    await service.ghl.update(ghl["id"], firstName="First")
    stale_body = {**await service.ghl.get(ghl["id"]), "firstName": "First"}  # type: ignore[dict-item]
    await service.ghl.update(ghl["id"], firstName="Second")
    await service.ghl.control(webhooks_enabled=True)
    assert (await service.post_ghl(ghl_event("ContactUpdate", stale_body))).status_code == 202
    await service.settle()
    assert (await service.rankr.get(contact["contactId"]))["firstName"] == "Second"  # type: ignore[index]


async def test_a_rankr_contact_links_to_the_ghl_contact_holding_its_email(service: InProcessService) -> None:
    email = unique_email()
    await service.ghl.control(webhooks_enabled=False)  # a contact the service never heard of
    existing = await service.ghl.create(email=email, firstName="Existing", website="https://kept.example")
    await service.ghl.control(webhooks_enabled=True)
    rankr_mark = await service.rankr.mark()
    contact = await service.rankr.create(email=email, firstName="From Rankr", lastName="Person")
    await service.settle()
    [ghl] = await service.ghl.by_email(email)
    assert ghl["id"] == existing["id"]
    assert (ghl["firstName"], ghl["lastName"]) == ("From Rankr", "Person")
    # What only GHL knew comes back to Rankr, so both sides agree.
    assert (await service.rankr.get(contact["contactId"]))["website"] == "https://kept.example"  # type: ignore[index]
    assert await service.rankr.writes_since(rankr_mark) == [
        "POST /contacts",
        f"PUT /contacts/{contact['contactId']}",
    ]
    assert [(link["rankr_id"], link["ghl_id"]) for link in await service.links()] == [
        (contact["contactId"], existing["id"])
    ]


async def test_a_ghl_contact_links_to_the_rankr_contact_holding_its_email(service: InProcessService) -> None:
    email = unique_email()
    await service.rankr.control(webhooks_enabled=False)
    existing = await service.rankr.create(email=email, firstName="Existing", lastName="Person")
    await service.rankr.control(webhooks_enabled=True)
    ghl = await service.ghl.create(email=email, firstName="From GHL")
    await service.settle()
    [contact] = await service.rankr.by_email(email)
    assert contact["contactId"] == existing["contactId"]
    assert (contact["firstName"], contact["lastName"]) == ("From GHL", "Person")
    assert (await service.ghl.get(ghl["id"]))["lastName"] == "Person"  # type: ignore[index]
    assert [(link["rankr_id"], link["ghl_id"]) for link in await service.links()] == [
        (existing["contactId"], ghl["id"])
    ]


async def test_each_create_is_audited_under_both_records(service: InProcessService) -> None:
    # The link holds only the origin's id while the create runs; the entry names the new record too.
    contact, ghl = await created_in_rankr(service)
    email = unique_email()
    from_ghl = await service.ghl.create(email=email, firstName="Grace", lastName="Hopper")
    await service.settle()
    [rankr] = await service.rankr.by_email(email)
    audited = [
        (entry["direction"], entry["action"], entry["result"], entry["rankr_id"], entry["ghl_id"])
        for entry in await service.audit()
    ]
    assert audited == [
        ("to_ghl", "create", "ok", contact["contactId"], ghl["id"]),
        ("to_rankr", "create", "ok", rankr["contactId"], from_ghl["id"]),
    ]


async def test_no_ping_pong_after_many_changes(service: InProcessService) -> None:
    contact, ghl = await created_in_rankr(service)
    for number in range(3):
        await service.rankr.update(contact["contactId"], lastName=f"Rankr {number}")
        await service.ghl.update(ghl["id"], website=f"https://ghl{number}.example")
    await service.settle()
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    await service.settle()
    final_rankr = await service.rankr.get(contact["contactId"])
    final_ghl = await service.ghl.get(ghl["id"])
    assert final_rankr is not None
    assert final_ghl is not None
    assert (final_rankr["lastName"], final_rankr["website"]) == (final_ghl["lastName"], final_ghl["website"])
    assert (final_ghl["lastName"], final_ghl["website"]) == ("Rankr 2", "https://ghl2.example")
    assert await service.rankr.writes_since(rankr_mark) == []
    assert await service.ghl.writes_since(ghl_mark) == []


async def test_a_company_name_change_reaches_ghl_through_its_upsert(service: InProcessService) -> None:
    """GHL's update endpoint has no companyName (UpdateContactDto); the service upserts it instead."""
    contact, ghl = await created_in_rankr(service)
    ghl_mark = await service.ghl.mark()
    await service.rankr.update(contact["contactId"], companyName="Difference Engines", firstName="Augusta")
    await service.settle()
    after = await service.ghl.get(ghl["id"])
    assert after is not None
    assert (after["companyName"], after["firstName"]) == ("Difference Engines", "Augusta")
    assert await service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}", "POST /contacts/upsert"]
    assert len(await service.ghl.contacts()) == 1
