"""Webhooks the sandboxes send: official payload shapes, signatures the service can verify, order per
record, and each product's retry rules (GHL: only on 429; Rankr: on any non-2xx or no answer)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from app.kit.clock import parse_instant
from app.kit.signatures import GhlVerifier, WebhookSecret, load_public_key, verify_standard
from app.sandbox import keys
from app.sandbox.config import SandboxConfig
from app.sandbox.webhooks import MAX_SENDING, Delivery, RetryPolicy, WebhookDispatcher
from tests.sandbox.capture import Received
from tests.sandbox.conftest import RANKR_LIFE_CYCLE_EVENTS, Env
from tests.sandbox.specs import ghl_validate_webhook, rankr_validate
from tests.support.server import serve

LOCATION = {"locationId": keys.GHL_LOCATION_ID}
DELETION_DATA = {
    "contact.deleted": {"contactId", "accountId", "lastModified"},
    "task.deleted": {"taskId", "contactId", "lastModified"},
    "note.deleted": {"noteId", "contactId", "lastModified"},
}


def ghl_verifiers() -> tuple[GhlVerifier, GhlVerifier]:
    ed25519 = load_public_key(keys.GHL_ED25519_PUBLIC_PEM)
    rsa = load_public_key(keys.GHL_RSA_PUBLIC_PEM)
    return GhlVerifier(ed25519, None), GhlVerifier(None, rsa)  # type: ignore[arg-type]


def check_ghl_delivery(received: Received) -> dict[str, Any]:
    """Both signatures verify over the raw bytes; the body matches its event's official schema."""
    by_ed25519, by_rsa = ghl_verifiers()
    by_ed25519.verify(received.body, received.headers["x-ghl-signature"], None)
    by_rsa.verify(received.body, None, received.headers["x-wh-signature"])
    body = received.json()
    ghl_validate_webhook(body)
    assert body["locationId"] == keys.GHL_LOCATION_ID
    uuid.UUID(body["webhookId"])
    sent = parse_instant(body["timestamp"])
    assert sent is not None
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60
    assert "dateUpdated" not in body
    return body


def check_rankr_delivery(received: Received) -> dict[str, Any]:
    secret = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
    headers = received.headers
    verify_standard(
        [secret],
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
        received.body,
        datetime.now(UTC),
    )
    body = received.json()
    if body["type"] in DELETION_DATA:
        # The yaml: "for deletions: the id fields and lastModified only" (so not a full Contact/Task/Note).
        assert set(body["data"]) == DELETION_DATA[body["type"]]
        assert set(body) == {"type", "timestamp", "accountId", "data"}
        assert parse_instant(body["timestamp"]) is not None
    else:
        rankr_validate(body, "WebhookEvent")
    assert body["accountId"] == keys.RANKR_ACCOUNT_ID
    return body


def test_ghl_sends_every_official_event_validly_signed(env: Env) -> None:
    contact = env.ghl(
        "POST", "/contacts/", json={**LOCATION, "firstName": "Ada", "email": "ada@example.com", "tags": ["a"]}
    )
    cid = contact.json()["contact"]["id"]
    env.ghl("PUT", f"/contacts/{cid}", json={"lastName": "Lovelace", "tags": ["b"], "dnd": True})
    env.ghl("POST", f"/contacts/{cid}/tags", json={"tags": ["c"]})
    task = env.ghl(
        "POST",
        f"/contacts/{cid}/tasks",
        json={"title": "Call", "dueDate": "2030-01-01T10:00:00Z", "completed": False},
    )
    tid = task.json()["task"]["id"]
    env.ghl("PUT", f"/contacts/{cid}/tasks/{tid}", json={"title": "Call back"})  # GHL has no TaskUpdate event
    env.ghl("PUT", f"/contacts/{cid}/tasks/{tid}/completed", json={"completed": True})
    env.ghl("PUT", f"/contacts/{cid}/tasks/{tid}/completed", json={"completed": True})  # already complete
    env.ghl("PUT", f"/contacts/{cid}/tasks/{tid}/completed", json={"completed": False})  # reopening: no event
    env.ghl("DELETE", f"/contacts/{cid}/tasks/{tid}")
    note = env.ghl("POST", f"/contacts/{cid}/notes", json={"body": "hello"})
    nid = note.json()["note"]["id"]
    env.ghl("PUT", f"/contacts/{cid}/notes/{nid}", json={"body": "hello again"})
    env.ghl("DELETE", f"/contacts/{cid}/notes/{nid}")
    env.http.post(
        f"{env.ghl_base}/_sandbox/appointments", json={"contactId": cid, "startTime": "2030-01-01T10:00:00Z"}
    )
    env.ghl("DELETE", f"/contacts/{cid}")
    env.drain()
    received = env.capture.received("ghl")
    bodies = [check_ghl_delivery(r) for r in received]
    assert [b["type"] for b in bodies] == [
        "ContactCreate",
        "ContactUpdate",
        "ContactTagUpdate",
        "ContactDndUpdate",
        "ContactTagUpdate",
        "TaskCreate",
        "TaskComplete",
        "TaskDelete",
        "NoteCreate",
        "NoteUpdate",
        "NoteDelete",
        "AppointmentCreate",
        "ContactDelete",
    ]
    assert len({b["webhookId"] for b in bodies}) == len(bodies)
    assert bodies[1]["lastName"] == "Lovelace"
    assert bodies[1]["tags"] == ["b"]
    assert bodies[6]["title"] == "Call back"
    assert bodies[6]["id"] == tid
    assert bodies[10]["body"] == "hello again"
    assert env.capture.received("rankr") == []


def test_rankr_sends_every_event_validly_signed(env: Env) -> None:
    cid = env.rankr("POST", "/contacts", json={"email": "ada@example.com"}).json()["contactId"]
    env.rankr("PUT", f"/contacts/{cid}", json={"firstName": "Ada"})
    tid = env.rankr("POST", f"/contacts/{cid}/tasks", json={"title": "Call"}).json()["taskId"]
    env.rankr("PUT", f"/contacts/{cid}/tasks/{tid}", json={"description": "soon"})
    env.rankr("PUT", f"/contacts/{cid}/tasks/{tid}", json={"status": "completed"})
    env.rankr("PUT", f"/contacts/{cid}/tasks/{tid}", json={"status": "open"})
    env.rankr("DELETE", f"/contacts/{cid}/tasks/{tid}")
    nid = env.rankr("POST", f"/contacts/{cid}/notes", json={"body": "hello"}).json()["noteId"]
    env.rankr("PUT", f"/contacts/{cid}/notes/{nid}", json={"body": "again"})
    env.rankr("DELETE", f"/contacts/{cid}/notes/{nid}")
    env.rankr("DELETE", f"/contacts/{cid}")
    env.drain()
    received = env.capture.received("rankr")
    bodies = [check_rankr_delivery(r) for r in received]
    assert [b["type"] for b in bodies] == RANKR_LIFE_CYCLE_EVENTS
    assert len({r.headers["webhook-id"] for r in received}) == len(received)
    assert bodies[1]["data"]["firstName"] == "Ada"  # the object right after the change
    stamps = [b["data"]["lastModified"] for b in bodies if b["type"].startswith("task.")]
    assert stamps == sorted(set(stamps)), "a deletion's lastModified is later than the last write"


def test_events_of_one_record_arrive_in_emission_order(env: Env) -> None:
    cid = env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "v0"}).json()["contact"]["id"]
    rid = env.rankr("POST", "/contacts", json={"firstName": "v0"}).json()["contactId"]
    env.capture.script["ghl"].extend([429, 429])  # the first deliveries are retried, later ones must wait
    env.capture.script["rankr"].extend([500, 500])
    for i in range(1, 21):
        env.ghl("PUT", f"/contacts/{cid}", json={"firstName": f"v{i}"})
        env.rankr("PUT", f"/contacts/{rid}", json={"firstName": f"v{i}"})
    env.drain()
    ghl_names = [b["firstName"] for b in env.capture.accepted("ghl")]
    rankr_names = [b["data"]["firstName"] for b in env.capture.accepted("rankr")]
    assert ghl_names == rankr_names == [f"v{i}" for i in range(21)]


def test_ghl_retries_only_on_429_resending_the_same_signed_bytes(env: Env) -> None:
    env.capture.script["ghl"].extend([429, 429])
    env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Retry"})
    env.drain()
    attempts = env.capture.received("ghl")
    assert [a.status for a in attempts] == [429, 429, 200]
    assert len({a.body for a in attempts}) == 1
    assert len({a.headers["x-ghl-signature"] for a in attempts}) == 1
    delivery = env.http.get(f"{env.ghl_base}/_sandbox/webhooks").json()["deliveries"][-1]
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [429, 429, 200]

    env.capture.clear()
    env.capture.script["ghl"].append(500)
    env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "NoRetry"})
    env.drain()
    assert [a.status for a in env.capture.received("ghl")] == [500]
    delivery = env.http.get(f"{env.ghl_base}/_sandbox/webhooks").json()["deliveries"][-1]
    assert delivery["state"] == "failed"


def test_ghl_gives_up_after_six_retries(env: Env) -> None:
    env.capture.script["ghl"].extend([429] * 10)
    env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Busy"})
    env.drain()
    assert len(env.capture.received("ghl")) == 7


def test_rankr_retries_non_2xx_with_the_same_id_and_a_fresh_signature(env: Env) -> None:
    env.capture.script["rankr"].extend([500, 503, 404])
    env.rankr("POST", "/contacts", json={"email": "retry@example.com"})
    env.drain()
    attempts = env.capture.received("rankr")
    assert [a.status for a in attempts] == [500, 503, 404, 200]
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    for attempt in attempts:
        check_rankr_delivery(attempt)


@pytest.mark.anyio
async def test_rankr_retries_when_nobody_answers() -> None:
    """A delivery to a closed port is a transport error: retried on Rankr's schedule, then given up."""
    config = SandboxConfig(webhook_target="http://127.0.0.1:9")
    dispatcher = WebhookDispatcher(config.clock, 1.0, 100)
    delivery = Delivery(
        "msg_1",
        "rankr",
        "contact.created",
        "rankr:con_1",
        "con_1",
        "http://127.0.0.1:9/x",
        b"{}",
        config.clock(),
    )
    await dispatcher.start()
    try:
        dispatcher.submit(delivery, lambda d: {}, RetryPolicy((0.01, 0.01), lambda s: s is None or s >= 300))
        await dispatcher.drain(5)
    finally:
        await dispatcher.stop()
    assert delivery.state == "failed"
    assert [a.status for a in delivery.attempts] == [None, None, None]
    assert all(a.error for a in delivery.attempts)


@pytest.mark.anyio
async def test_a_backlog_of_records_is_sent_a_bounded_number_at_a_time() -> None:
    """Every record has its own queue; a backlog of many records still sends only MAX_SENDING at once
    (an unbounded sender let the HTTP pool's bookkeeping starve the sandbox's API on the same loop)."""
    in_flight = busiest = 0
    app = FastAPI()

    @app.post("/x")
    async def receive() -> Response:
        nonlocal in_flight, busiest
        in_flight += 1
        busiest = max(busiest, in_flight)
        await asyncio.sleep(0.1)
        in_flight -= 1
        return Response(status_code=204)

    config = SandboxConfig(webhook_target=None)
    dispatcher = WebhookDispatcher(config.clock, 5.0, 1000)
    records = 3 * MAX_SENDING + 7
    with serve(app) as url:
        await dispatcher.start()
        try:
            for n in range(records):
                delivery = Delivery(
                    f"msg_{n}",
                    "rankr",
                    "contact.created",
                    f"rankr:con_{n}",
                    f"con_{n}",
                    f"{url}/x",
                    b"{}",
                    config.clock(),
                )
                dispatcher.submit(delivery, lambda d: {}, RetryPolicy((), lambda s: False))
            await dispatcher.drain(30)
        finally:
            await dispatcher.stop()
    assert [d.state for d in dispatcher.deliveries()] == ["delivered"] * records
    # In parallel, but never more than the bound (an unbounded client's pool allowed 100 here).
    assert MAX_SENDING // 2 < busiest <= MAX_SENDING


def test_dropped_and_disabled_webhooks_are_logged_but_not_sent(env: Env) -> None:
    env.control("ghl", webhook_drop_rate=1.0)
    env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Dropped"})
    env.control("ghl", webhook_drop_rate=0.0, webhooks_enabled=False)
    env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Disabled"})
    env.control("ghl", webhooks_enabled=True)
    env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Sent"})
    env.drain()
    assert [b["firstName"] for b in env.capture.accepted("ghl")] == ["Sent"]
    states = [d["state"] for d in env.http.get(f"{env.ghl_base}/_sandbox/webhooks").json()["deliveries"]]
    assert states == ["dropped", "disabled", "delivered"]


def test_a_fraction_of_webhooks_can_be_dropped(env: Env) -> None:
    env.control("rankr", webhook_drop_rate=0.5)
    for i in range(40):
        env.rankr("POST", "/contacts", json={"email": f"d{i}@example.com"})
    env.drain()
    delivered = len(env.capture.accepted("rankr"))
    assert 5 < delivered < 35
    states = [d["state"] for d in env.http.get(f"{env.rankr_base}/_sandbox/webhooks").json()["deliveries"]]
    assert states.count("dropped") == 40 - delivered


def test_delivery_log_shows_bodies_on_request(env: Env) -> None:
    env.rankr("POST", "/contacts", json={"email": "log@example.com"})
    env.drain()
    deliveries = env.http.get(f"{env.rankr_base}/_sandbox/webhooks", params={"body": "true"}).json()[
        "deliveries"
    ]
    assert len(deliveries) == 1
    assert '"contact.created"' in deliveries[0]["body"]
    assert deliveries[0]["recordId"].startswith("con_")


@pytest.mark.anyio
async def test_send_queued_delivers_everything_queued_through_the_given_transport_in_order() -> None:
    """With a transport (an ASGI app in this process), ``send_queued`` returns once every queued
    delivery was sent, those of one record in order, retries included: nothing left to wait for."""
    received: list[tuple[str, bytes]] = []
    refusals = {"msg_r1": 1}  # answered 503 once, then accepted
    app = FastAPI()

    @app.post("/webhooks/{source}")
    async def receive(source: str, request: Request) -> Response:
        msg_id = request.headers["webhook-id"]
        received.append((msg_id, await request.body()))
        if refusals.get(msg_id, 0) > 0:
            refusals[msg_id] -= 1
            return Response(status_code=503)
        return Response(status_code=204)

    config = SandboxConfig(webhook_target="http://service.test")
    dispatcher = WebhookDispatcher(config.clock, 5.0, 100)
    policy = RetryPolicy((0.0,), lambda status: status is None or status >= 500)
    await dispatcher.start(httpx.ASGITransport(app=app))
    try:
        for msg_id, record in (("msg_r1", "con_1"), ("msg_r2", "con_1"), ("msg_s1", "con_2")):
            delivery = Delivery(
                msg_id, "rankr", "contact.updated", f"rankr:{record}", record,
                "http://service.test/webhooks/rankr", msg_id.encode(), config.clock(),
            )  # fmt: skip
            dispatcher.submit(delivery, lambda d: {"webhook-id": d.id}, policy)
        await dispatcher.send_queued()
        assert dispatcher.pending() == 0
    finally:
        await dispatcher.stop()
    assert [d.state for d in dispatcher.deliveries()] == ["delivered"] * 3
    first_record = [msg_id for msg_id, _ in received if msg_id.startswith("msg_r")]
    assert first_record == ["msg_r1", "msg_r1", "msg_r2"]
    assert ("msg_s1", b"msg_s1") in received
