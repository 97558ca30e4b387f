"""Contacts sync end to end where timing is the point: a GHL answer that comes while its echo is handled.

The handlers' behaviour (create, update, delete both ways, echoes, duplicates) is tested in process
in tests/sync/test_contacts_handler.py.
"""

from __future__ import annotations

from tests.support.service import Service
from tests.sync.records import rankr_person, unique_email


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
