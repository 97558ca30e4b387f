"""A bad day for the sync, in process: upstream errors retried, permanent refusals and exhausted
retries dead with the reason, a 429's Retry-After, events of unknown accounts, unlink mode."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.support.inprocess import InProcessService, inprocess_service
from tests.support.service import rankr_event

pytestmark = pytest.mark.anyio


async def one_event(service: InProcessService, status: str) -> dict[str, Any]:
    """The first Rankr event in ``status`` once the webhooks are delivered and the worker has run."""
    await service.deliver()
    await service.run_worker()
    [event, *_] = [event for event in await service.events("rankr") if event["status"] == status]
    return event


async def test_a_transient_ghl_outage_is_retried_until_it_passes(service: InProcessService) -> None:
    await service.ghl.control(error_rate=1.0, error_status=503)
    email = f"outage.{uuid.uuid4().hex[:8]}@example.com"
    await service.rankr.create(email=email, firstName="Patient")
    retrying = await one_event(service, "retrying")
    assert "ghl 503" in retrying["last_error"]
    assert await service.ghl.by_email(email) == []
    await service.ghl.control(error_rate=0.0)
    await service.settle()
    assert len(await service.ghl.by_email(email)) == 1
    assert [link["state"] for link in await service.links()] == ["linked"]
    assert {event["status"] for event in await service.events()} == {"done"}


async def test_a_permanent_refusal_goes_dead_with_the_upstream_message_and_leaves_nothing_half_done(
    service: InProcessService,
) -> None:
    await service.ghl.control(error_rate=1.0, error_status=422)
    await service.rankr.create(email=f"refused.{uuid.uuid4().hex[:8]}@example.com", firstName="Refused")
    dead = await one_event(service, "dead")
    assert dead["attempts"] == 1
    assert dead["last_error"].startswith("ghl 422")
    assert await service.links() == []  # the pending link is gone
    [failed] = await service.audit()
    assert (failed["direction"], failed["action"], failed["result"]) == ("to_ghl", "create", "error")
    [connection] = (await service.status())["connections"]
    assert connection["events"]["dead"] == 1
    assert "ghl 422" in connection["latestErrors"][0]["error"]


async def test_an_event_that_keeps_failing_goes_dead_after_max_attempts(behaviour_database_url: str) -> None:
    async with inprocess_service(behaviour_database_url, max_attempts=2, retry_schedule="0.1") as service:
        await service.ghl.control(error_rate=1.0, error_status=502)
        await service.rankr.create(email=f"flaky.{uuid.uuid4().hex[:8]}@example.com")
        await service.settle()  # the clock moves on to the retry
        dead = await one_event(service, "dead")
        assert dead["attempts"] == 2
        assert "gave up after 2 attempts" in dead["last_error"]


async def test_a_429_parks_the_event_for_its_retry_after(service: InProcessService) -> None:
    await service.ghl.control(rate_max=0, rate_window_seconds=30)
    await service.rankr.create(email=f"limited.{uuid.uuid4().hex[:8]}@example.com")
    retrying = await one_event(service, "retrying")
    assert "ghl 429" in retrying["last_error"]
    [row] = await service.query(
        "SELECT received_at, next_attempt_at FROM webhook_events WHERE source = 'rankr'"
    )
    waited = _instant(row["next_attempt_at"]) - _instant(row["received_at"])
    assert waited.total_seconds() >= 25  # Retry-After (about 30 s), not the 0.2 s of the schedule


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(str(value))  # SQLite gives naive UTC text


async def test_an_event_for_an_unknown_account_is_stored_and_reported_never_applied(
    service: InProcessService,
) -> None:
    data = {
        "contactId": "con_elsewhere",
        "email": "x@example.com",
        "lastModified": "2026-11-26T08:00:00.000Z",
    }
    event = {**rankr_event("contact.created", data), "accountId": "acct_unknown"}
    assert (await service.post_rankr(event)).status_code == 202
    await service.settle()
    [dead] = await service.events()
    assert (dead["status"], dead["last_error"]) == ("dead", "no connection for rankr account acct_unknown")
    assert (await service.status())["unrouted"]["events"]["dead"] == 1
    assert await service.ghl.contacts() == []


async def test_unlink_mode_keeps_and_tags_the_other_side(behaviour_database_url: str) -> None:
    async with inprocess_service(behaviour_database_url, contact_delete_mode="unlink") as service:
        email = f"unlink.{uuid.uuid4().hex[:8]}@example.com"
        contact = await service.rankr.create(email=email, firstName="Kept")
        await service.settle()
        [ghl] = await service.ghl.by_email(email)
        await service.rankr.delete(contact["contactId"])
        await service.settle()
        kept = await service.ghl.get(ghl["id"])
        assert kept is not None
        assert "sync-unlinked" in kept["tags"]
        assert [link["state"] for link in await service.links()] == ["unlinked"]
        # The pair is no longer synced: a later GHL edit does not recreate the Rankr contact.
        rankr_mark = await service.rankr.mark()
        await service.ghl.update(ghl["id"], firstName="Still here")
        await service.settle()
        assert await service.rankr.writes_since(rankr_mark) == []
        assert await service.rankr.by_email(email) == []
