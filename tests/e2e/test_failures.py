"""A bad day: upstream errors, rate limits, permanent refusals, unknown accounts, unlink mode."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from tests.support.service import Service, query, rankr_event, running_service, wait_for


def one_event(service: Service, status: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        matching = [event for event in service.events("rankr") if event["status"] == status]
        return matching[0] if matching else None

    return wait_for(found, what=f"a Rankr event in state {status}")


def test_a_transient_ghl_outage_is_retried_until_it_passes(service: Service) -> None:
    service.ghl.control(error_rate=1.0, error_status=503)
    email = f"outage.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=email, firstName="Patient")
    retrying = one_event(service, "retrying")
    assert "ghl 503" in retrying["last_error"]
    assert service.ghl.by_email(email) == []
    service.ghl.control(error_rate=0.0)
    service.settle()
    assert len(service.ghl.by_email(email)) == 1
    assert [link["state"] for link in service.links()] == ["linked"]
    assert {event["status"] for event in service.events()} == {"done"}


def test_a_permanent_refusal_goes_dead_with_the_upstream_message_and_leaves_nothing_half_done(
    service: Service,
) -> None:
    service.ghl.control(error_rate=1.0, error_status=422)
    service.rankr.create(email=f"refused.{uuid.uuid4().hex[:8]}@example.com", firstName="Refused")
    dead = one_event(service, "dead")
    assert dead["attempts"] == 1
    assert dead["last_error"].startswith("ghl 422")
    assert service.links() == []  # the pending link is gone
    [failed] = service.audit()
    assert (failed["direction"], failed["action"], failed["result"]) == ("to_ghl", "create", "error")
    [connection] = service.status()["connections"]
    assert connection["events"]["dead"] == 1
    assert "ghl 422" in connection["latestErrors"][0]["error"]


def test_an_event_that_keeps_failing_goes_dead_after_max_attempts(database_url: str) -> None:
    with running_service(database_url, max_attempts=2, retry_schedule="0.1") as service:
        service.ghl.control(error_rate=1.0, error_status=502)
        service.rankr.create(email=f"flaky.{uuid.uuid4().hex[:8]}@example.com")
        dead = one_event(service, "dead")
        assert dead["attempts"] == 2
        assert "gave up after 2 attempts" in dead["last_error"]


def test_a_429_parks_the_event_for_its_retry_after(service: Service) -> None:
    service.ghl.control(rate_max=0, rate_window_seconds=30)
    service.rankr.create(email=f"limited.{uuid.uuid4().hex[:8]}@example.com")
    retrying = one_event(service, "retrying")
    assert "ghl 429" in retrying["last_error"]
    [row] = query(
        service.database_url, "SELECT received_at, next_attempt_at FROM webhook_events WHERE source = 'rankr'"
    )
    waited = _instant(row["next_attempt_at"]) - _instant(row["received_at"])
    assert waited.total_seconds() >= 25  # Retry-After (about 30 s), not the 0.2 s of the schedule


def _instant(value: str) -> datetime:
    # SQLite gives naive UTC text, Postgres (through json_agg) ISO text with an offset; both parse.
    return datetime.fromisoformat(str(value))


def test_an_event_for_an_unknown_account_is_stored_and_reported_never_applied(service: Service) -> None:
    data = {
        "contactId": "con_elsewhere",
        "email": "x@example.com",
        "lastModified": "2026-11-26T08:00:00.000Z",
    }
    event = {**rankr_event("contact.created", data), "accountId": "acct_unknown"}
    assert service.post_rankr(event).status_code == 202
    service.settle()
    [dead] = service.events()
    assert (dead["status"], dead["last_error"]) == ("dead", "no connection for rankr account acct_unknown")
    assert service.status()["unrouted"]["events"]["dead"] == 1
    assert service.ghl.contacts() == []


def test_unlink_mode_keeps_and_tags_the_other_side(database_url: str) -> None:
    with running_service(database_url, contact_delete_mode="unlink") as service:
        email = f"unlink.{uuid.uuid4().hex[:8]}@example.com"
        contact = service.rankr.create(email=email, firstName="Kept")
        service.settle()
        [ghl] = service.ghl.by_email(email)
        service.rankr.delete(contact["contactId"])
        service.settle()
        kept = service.ghl.get(ghl["id"])
        assert kept is not None
        assert "sync-unlinked" in kept["tags"]
        assert [link["state"] for link in service.links()] == ["unlinked"]
        # The pair is no longer synced: a later GHL edit does not recreate the Rankr contact.
        rankr_mark = service.rankr.mark()
        service.ghl.update(ghl["id"], firstName="Still here")
        service.settle()
        assert service.rankr.writes_since(rankr_mark) == []
        assert service.rankr.by_email(email) == []
