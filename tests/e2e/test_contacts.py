"""Contacts sync end to end, both directions, on SQLite and Postgres, through the sandboxes.

Each test acts as a person or another integration would (through the products' APIs), lets the
sandboxes deliver their signed webhooks, waits for the service to settle, then checks both products
and counts the writes the service made upstream in each sandbox's request log.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.service import Service, ghl_event, query, rankr_event


def unique_email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example.com"


def rankr_person(email: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "phone": f"+1555{uuid.uuid4().int % 10**7:07d}",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Analytical Engines",
        "website": "https://ada.example",
        "address": {
            "line1": "12 Loop Street",
            "city": "London",
            "state": "LDN",
            "postalCode": "N1 9GU",
            "country": "GB",
        },
        "tags": ["VIP", "lead"],
        **extra,
    }


def created_in_rankr(service: Service, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Rankr contact, synced: (rankr contact, ghl contact)."""
    email = unique_email()
    contact = service.rankr.create(**rankr_person(email, **extra))
    service.settle()
    [ghl] = service.ghl.by_email(email)
    return contact, ghl


def test_rankr_contact_created_appears_in_ghl_once(service: Service) -> None:
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    contact, ghl = created_in_rankr(service)
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
    assert service.ghl.writes_since(ghl_mark) == ["POST /contacts/upsert"]
    assert service.rankr.writes_since(rankr_mark) == ["POST /contacts"]  # the test's own create
    assert [(link["state"], link["rankr_id"], link["ghl_id"]) for link in service.links()] == [
        ("linked", contact["contactId"], ghl["id"])
    ]
    assert all(event["status"] == "done" for event in service.events())


def test_the_echo_of_a_create_still_in_flight_costs_no_read(service: Service) -> None:
    """GHL sends the create's webhook before it answers the create: the echo, claimed while the
    create waits, is recognised from its body and waits too, with no call of its own."""
    service.ghl.control(answer_latency_ms=1500)
    ghl_mark = service.ghl.mark()
    email = unique_email()
    service.rankr.create(**rankr_person(email))
    service.settle()
    assert [f"{r['method']} {r['path']}" for r in service.ghl.requests_since(ghl_mark)] == [
        "POST /contacts/upsert"
    ]
    [ghl] = service.ghl.by_email(email)
    [echo] = service.events("ghl")
    assert echo["status"] == "done"
    assert echo["last_error"].startswith("unchanged"), echo
    assert [link["ghl_id"] for link in service.links()] == [ghl["id"]]


def test_rankr_update_writes_only_the_change(service: Service) -> None:
    contact, ghl = created_in_rankr(service)
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    service.rankr.update(contact["contactId"], firstName="Augusta", address={"city": "Paris"})
    service.settle()
    after = service.ghl.get(ghl["id"])
    assert after is not None
    assert (after["firstName"], after["city"], after["address1"]) == ("Augusta", "Paris", "12 Loop Street")
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}"]
    assert service.rankr.writes_since(rankr_mark) == [f"PUT /contacts/{contact['contactId']}"]  # the test's
    [update] = [entry for entry in service.audit() if entry["action"] == "update"]
    assert update["direction"] == "to_ghl"


def test_an_update_that_changes_no_mapped_field_writes_nothing(service: Service) -> None:
    contact, _ = created_in_rankr(service)
    ghl_mark = service.ghl.mark()
    service.rankr.update(contact["contactId"], customFields={"unmapped": "x"})
    service.settle()
    assert service.ghl.writes_since(ghl_mark) == []


def test_a_rankr_event_showing_the_synced_state_settles_at_once_unless_it_is_newer(service: Service) -> None:
    contact, _ = created_in_rankr(service)
    ghl_mark = service.ghl.mark()
    # As the echo of the service's own write would: the fields last synced, no newer than the link.
    assert service.post_rankr(rankr_event("contact.updated", contact)).status_code == 202
    service.settle()
    # The same fields stamped later (a change to something unmapped): the link keeps the later time.
    later = {**contact, "lastModified": "2030-01-01T00:00:00.000Z"}
    assert service.post_rankr(rankr_event("contact.updated", later)).status_code == 202
    service.settle()
    notes = [event["last_error"] for event in service.events("rankr")][-2:]
    assert notes == ["unchanged since the last sync (echo or no-op)", "no mapped field changed"]
    [link] = query(service.database_url, "SELECT rankr_modified_at FROM links")
    assert str(link["rankr_modified_at"]).startswith("2030-01-01")
    assert service.ghl.writes_since(ghl_mark) == []


def test_rankr_delete_deletes_in_ghl(service: Service) -> None:
    contact, ghl = created_in_rankr(service)
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    service.rankr.delete(contact["contactId"])
    service.settle()
    assert service.ghl.get(ghl["id"]) is None
    assert service.ghl.writes_since(ghl_mark) == [f"DELETE /contacts/{ghl['id']}"]
    assert service.rankr.writes_since(rankr_mark) == [
        f"DELETE /contacts/{contact['contactId']}"
    ]  # the test's
    assert [link["state"] for link in service.links()] == ["deleted"]


def test_ghl_contact_created_updated_and_deleted_reaches_rankr(service: Service) -> None:
    email = unique_email()
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    ghl = service.ghl.create(
        email=email, firstName="Grace", lastName="Hopper", tags=["Navy"], city="Arlington"
    )
    service.settle()
    [contact] = service.rankr.by_email(email)
    assert (contact["firstName"], contact["lastName"], contact["tags"]) == ("Grace", "Hopper", ["navy"])
    assert contact["address"]["city"] == "Arlington"
    assert service.rankr.writes_since(rankr_mark) == ["POST /contacts"]
    assert service.ghl.writes_since(ghl_mark) == ["POST /contacts/"]  # the test's own create

    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    service.ghl.update(ghl["id"], lastName="Murray Hopper")
    service.settle()
    assert service.rankr.get(contact["contactId"])["lastName"] == "Murray Hopper"  # type: ignore[index]
    assert service.rankr.writes_since(rankr_mark) == [f"PUT /contacts/{contact['contactId']}"]
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}"]  # the test's own

    rankr_mark = service.rankr.mark()
    service.ghl.delete(ghl["id"])
    service.settle()
    assert service.rankr.get(contact["contactId"]) is None
    assert service.rankr.writes_since(rankr_mark) == [f"DELETE /contacts/{contact['contactId']}"]
    # The service's client-credentials token is fetched once and reused (the other one is the test's).
    tokens = [r for r in service.rankr.requests_since(0) if r["path"] == "/oauth/token"]
    assert len(tokens) == 2


def test_a_redelivered_or_replayed_event_writes_nothing(service: Service) -> None:
    contact, _ = created_in_rankr(service)
    current = service.rankr.get(contact["contactId"])
    assert current is not None
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    before = len(service.events())
    first = service.post_rankr(rankr_event("contact.updated", current), msg_id="msg_fixed_1")
    assert first.status_code == 202
    again = service.post_rankr(rankr_event("contact.updated", current), msg_id="msg_fixed_1")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    replay = service.post_rankr(rankr_event("contact.updated", current))  # a new id, same old state
    assert replay.status_code == 202
    service.settle()
    assert len(service.events()) == before + 2
    assert service.ghl.writes_since(ghl_mark) == []
    assert service.rankr.writes_since(rankr_mark) == []


def test_an_older_state_never_overwrites_a_newer_one(service: Service) -> None:
    contact, ghl = created_in_rankr(service)
    service.rankr.control(webhooks_enabled=False)  # the test delivers this pair itself, reversed
    older = service.rankr.update(contact["contactId"], firstName="Older")
    newer = service.rankr.update(contact["contactId"], firstName="Newer")
    ghl_mark = service.ghl.mark()
    assert service.post_rankr(rankr_event("contact.updated", newer)).status_code == 202
    assert service.post_rankr(rankr_event("contact.updated", older)).status_code == 202
    service.settle()
    assert service.ghl.get(ghl["id"])["firstName"] == "Newer"  # type: ignore[index]
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}"]


def test_a_late_ghl_event_applies_the_current_state(service: Service) -> None:
    contact, ghl = created_in_rankr(service)
    service.ghl.control(webhooks_enabled=False)
    service.ghl.update(ghl["id"], firstName="First")
    stale_body = {**service.ghl.get(ghl["id"]), "firstName": "First"}  # type: ignore[dict-item]
    service.ghl.update(ghl["id"], firstName="Second")
    service.ghl.control(webhooks_enabled=True)
    assert service.post_ghl(ghl_event("ContactUpdate", stale_body)).status_code == 202
    service.settle()
    assert service.rankr.get(contact["contactId"])["firstName"] == "Second"  # type: ignore[index]


def test_a_rankr_contact_links_to_the_ghl_contact_holding_its_email(service: Service) -> None:
    email = unique_email()
    service.ghl.control(webhooks_enabled=False)  # a contact the service never heard of
    existing = service.ghl.create(email=email, firstName="Existing", website="https://kept.example")
    service.ghl.control(webhooks_enabled=True)
    rankr_mark = service.rankr.mark()
    contact = service.rankr.create(email=email, firstName="From Rankr", lastName="Person")
    service.settle()
    [ghl] = service.ghl.by_email(email)
    assert ghl["id"] == existing["id"]
    assert (ghl["firstName"], ghl["lastName"]) == ("From Rankr", "Person")
    # What only GHL knew comes back to Rankr, so both sides agree.
    assert service.rankr.get(contact["contactId"])["website"] == "https://kept.example"  # type: ignore[index]
    assert service.rankr.writes_since(rankr_mark) == [
        "POST /contacts",
        f"PUT /contacts/{contact['contactId']}",
    ]
    assert [(link["rankr_id"], link["ghl_id"]) for link in service.links()] == [
        (contact["contactId"], existing["id"])
    ]


def test_a_ghl_contact_links_to_the_rankr_contact_holding_its_email(service: Service) -> None:
    email = unique_email()
    service.rankr.control(webhooks_enabled=False)
    existing = service.rankr.create(email=email, firstName="Existing", lastName="Person")
    service.rankr.control(webhooks_enabled=True)
    ghl = service.ghl.create(email=email, firstName="From GHL")
    service.settle()
    [contact] = service.rankr.by_email(email)
    assert contact["contactId"] == existing["contactId"]
    assert (contact["firstName"], contact["lastName"]) == ("From GHL", "Person")
    assert service.ghl.get(ghl["id"])["lastName"] == "Person"  # type: ignore[index]
    assert [(link["rankr_id"], link["ghl_id"]) for link in service.links()] == [
        (existing["contactId"], ghl["id"])
    ]


def test_no_ping_pong_after_many_changes(service: Service) -> None:
    contact, ghl = created_in_rankr(service)
    for number in range(3):
        service.rankr.update(contact["contactId"], lastName=f"Rankr {number}")
        service.ghl.update(ghl["id"], website=f"https://ghl{number}.example")
    service.settle()
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    service.settle()
    final_rankr = service.rankr.get(contact["contactId"])
    final_ghl = service.ghl.get(ghl["id"])
    assert final_rankr is not None
    assert final_ghl is not None
    assert (final_rankr["lastName"], final_rankr["website"]) == (final_ghl["lastName"], final_ghl["website"])
    assert (final_ghl["lastName"], final_ghl["website"]) == ("Rankr 2", "https://ghl2.example")
    assert service.rankr.writes_since(rankr_mark) == []
    assert service.ghl.writes_since(ghl_mark) == []


def test_a_company_name_change_reaches_ghl_through_its_upsert(service: Service) -> None:
    """GHL's update endpoint has no companyName (UpdateContactDto); the service upserts it instead."""
    contact, ghl = created_in_rankr(service)
    ghl_mark = service.ghl.mark()
    service.rankr.update(contact["contactId"], companyName="Difference Engines", firstName="Augusta")
    service.settle()
    after = service.ghl.get(ghl["id"])
    assert after is not None
    assert (after["companyName"], after["firstName"]) == ("Difference Engines", "Augusta")
    assert service.ghl.writes_since(ghl_mark) == [f"PUT /contacts/{ghl['id']}", "POST /contacts/upsert"]
    assert len(service.ghl.contacts()) == 1
