"""Delivery under load: coalesced bursts, the shared rate budget, 429 back-off, replay of dead events."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

from tests.support.service import Service, max_in_window, query, running_service
from tests.support.workers import start_worker


def unique_email() -> str:
    return f"burst.{uuid.uuid4().hex[:10]}@example.com"


def linked_pair(service: Service) -> tuple[dict[str, Any], dict[str, Any]]:
    email = unique_email()
    contact = service.rankr.create(email=email, firstName="Burst", lastName="Zero")
    service.settle()
    [ghl] = service.ghl.by_email(email)
    return contact, ghl


def coalesced(service: Service) -> list[dict[str, Any]]:
    return [event for event in service.events() if (event["last_error"] or "").startswith("coalesced")]


def test_a_burst_of_twenty_rankr_updates_costs_at_most_two_ghl_writes(service: Service) -> None:
    contact, ghl = linked_pair(service)
    ghl_mark = service.ghl.mark()
    # GHL answers slowly: while the first update is being written, the other 19 queue up behind it.
    service.ghl.control(latency_ms=800)
    for n in range(1, 21):
        service.rankr.update(contact["contactId"], lastName=f"Burst {n}", website=f"https://{n}.example")
    service.settle()
    writes = service.ghl.writes_since(ghl_mark)
    assert 1 <= len(writes) <= 2, writes
    assert set(writes) == {f"PUT /contacts/{ghl['id']}"}
    current = service.ghl.get(ghl["id"])
    assert current is not None
    assert (current["lastName"], current["website"]) == ("Burst 20", "https://20.example")
    assert len(coalesced(service)) >= 18
    assert {event["status"] for event in service.events()} == {"done"}


def test_a_burst_still_arriving_is_held_back_and_costs_at_most_two_writes_when_ghl_answers_at_once(
    service: Service,
) -> None:
    # GHL answers at once: without holding the burst back, the first update would be written alone
    # and the rest would trickle into several more writes as they arrive.
    contact, ghl = linked_pair(service)
    ghl_mark = service.ghl.mark()
    for n in range(1, 21):
        service.rankr.update(contact["contactId"], lastName=f"Quick {n}")
    service.settle()
    writes = service.ghl.writes_since(ghl_mark)
    assert 1 <= len(writes) <= 2, writes
    current = service.ghl.get(ghl["id"])
    assert current is not None
    assert current["lastName"] == "Quick 20"
    assert {event["status"] for event in service.events()} == {"done"}


def test_a_burst_of_ghl_updates_is_read_once_and_written_once(service: Service) -> None:
    contact, ghl = linked_pair(service)
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    service.rankr.control(latency_ms=800)
    for n in range(1, 21):
        service.ghl.update(ghl["id"], firstName=f"Ghl {n}")
    service.settle()
    rankr_writes = service.rankr.writes_since(rankr_mark)
    assert 1 <= len(rankr_writes) <= 2, rankr_writes
    reads = [r for r in service.ghl.requests_since(ghl_mark) if r["method"] == "GET"]
    assert len(reads) <= 2
    current = service.rankr.get(contact["contactId"])
    assert current is not None
    assert current["firstName"] == "Ghl 20"


def test_a_delete_queued_behind_updates_wins(service: Service) -> None:
    contact, ghl = linked_pair(service)
    ghl_mark = service.ghl.mark()
    service.ghl.control(latency_ms=800)
    service.rankr.update(contact["contactId"], lastName="One")  # taken at once, slow to write
    for n in range(2, 6):
        service.rankr.update(contact["contactId"], lastName=f"Update {n}")
    service.rankr.delete(contact["contactId"])
    service.settle()
    assert service.ghl.get(ghl["id"]) is None
    writes = service.ghl.writes_since(ghl_mark)
    assert writes[-1] == f"DELETE /contacts/{ghl['id']}"
    assert len(writes) <= 3  # the first update, perhaps one more, and the delete
    assert [link["state"] for link in service.links()] == ["deleted"]


def test_a_created_contact_with_queued_updates_is_created_once_with_the_newest_state(
    database_url: str, tmp_path: Path
) -> None:
    with running_service(database_url, run_worker_in_process=False) as service:
        email = unique_email()
        contact = service.rankr.create(email=email, firstName="First")
        for n in range(1, 6):
            service.rankr.update(contact["contactId"], firstName=f"Version {n}")
        service.rankr.drain()
        ghl_mark = service.ghl.mark()
        worker = start_worker(database_url, service.url, tmp_path / "worker.log")
        try:
            service.settle()
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        [ghl] = service.ghl.by_email(email)
        assert ghl["firstName"] == "Version 5"
        assert service.ghl.writes_since(ghl_mark) == ["POST /contacts/upsert"]
        rankr_events = service.events("rankr")
        assert [e["attempts"] for e in rankr_events] == [1, 0, 0, 0, 0, 0]
        assert {e["status"] for e in rankr_events} == {"done"}


def burst_of_creates(service: Service, first_name: str) -> tuple[list[str], list[dict[str, Any]]]:
    """25 contacts created in Rankr while GHL allows 10 requests per 2 s: their emails, and the
    requests GHL answered meanwhile."""
    service.ghl.control(rate_max=10, rate_window_seconds=2)
    ghl_mark = service.ghl.mark()
    emails = [unique_email() for _ in range(25)]
    for email in emails:
        service.rankr.create(email=email, firstName=first_name)
    service.settle(timeout=60)
    for email in emails:
        assert len(service.ghl.by_email(email)) == 1
    return emails, service.ghl.requests_since(ghl_mark)


def test_requests_are_paced_inside_the_budget_without_a_429(database_url: str) -> None:
    # The settings say what GHL allows here.
    with running_service(database_url, ghl_rate_limit=10, ghl_rate_window_seconds=2) as service:
        _, requests = burst_of_creates(service, "Paced")
        assert [r for r in requests if r["status"] == 429] == []
        assert len([r for r in requests if r["path"] == "/contacts/upsert"]) == 25
        assert max_in_window(requests, seconds=2) <= 10


def test_the_pace_adapts_to_a_lower_limit_the_upstream_reports(database_url: str) -> None:
    # The settings say 100 per 10 s: GHL's X-RateLimit-Max and -Interval-Milliseconds slow the
    # service down. Only requests paced before the first answer came back can overrun the window,
    # and then one 429 backs the connection off.
    with running_service(database_url) as service:
        _, requests = burst_of_creates(service, "Adapted")
        assert len([r for r in requests if r["status"] == 429]) <= 1
        assert all(event["attempts"] == 1 for event in service.events("rankr"))


def test_a_429_backs_off_the_whole_connection_and_costs_no_attempt(service: Service) -> None:
    # One 429 with Retry-After 3 s: the other event waiting for GHL does not try meanwhile.
    service.ghl.control(rate_max=1, rate_window_seconds=3)
    ghl_mark = service.ghl.mark()
    first, second = unique_email(), unique_email()
    service.rankr.create(email=first)
    service.rankr.create(email=second)
    service.settle(timeout=30)
    requests = service.ghl.requests_since(ghl_mark)
    limited = [r for r in requests if r["status"] == 429]
    assert len(limited) <= 1, requests
    assert len(service.ghl.by_email(first)) == 1
    assert len(service.ghl.by_email(second)) == 1
    assert all(event["attempts"] == 1 for event in service.events("rankr"))


def test_dead_events_are_replayed_from_the_admin_route(database_url: str) -> None:
    with running_service(database_url, admin_token="s3cret") as service:
        service.ghl.control(error_rate=1.0, error_status=422)
        emails = [unique_email() for _ in range(3)]
        for email in emails:
            service.rankr.create(email=email)
        service.settle()
        assert [e["status"] for e in service.events("rankr")] == ["dead"] * 3
        dead_id = query(service.database_url, "SELECT event_id FROM webhook_events WHERE source = 'rankr'")[0]
        service.ghl.control(error_rate=0.0)
        url = f"{service.url}/admin/replay"
        assert service.http.post(url, json={"events": [dead_id["event_id"]]}).status_code == 401
        auth = {"authorization": "Bearer s3cret"}
        answer = service.http.post(url, json={"events": [dead_id["event_id"]]}, headers=auth)
        assert answer.status_code == 200
        assert answer.json() == {"replayed": 1}
        service.settle()
        assert sorted(e["status"] for e in service.events("rankr")) == ["dead", "dead", "done"]
        answer = service.http.post(url, json={"all": True}, headers=auth)
        assert answer.json() == {"replayed": 2}
        service.settle()
        assert {e["status"] for e in service.events("rankr")} == {"done"}
        for email in emails:
            assert len(service.ghl.by_email(email)) == 1
        bad = service.http.post(url, json={}, headers=auth)
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
