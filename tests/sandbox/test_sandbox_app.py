"""The ``Sandbox`` as the service uses it: mounted under /sandbox in another app whose lifespan starts
and stops it, webhooks going back to that same app; and its in-process life cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from app.sandbox import Sandbox, SandboxConfig, keys
from tests.sandbox.capture import Capture
from tests.support.server import reserve_port, serve


def test_mounted_in_a_service_app_it_delivers_webhooks_to_that_app() -> None:
    sock = reserve_port()
    sandbox = Sandbox(SandboxConfig(webhook_target=f"http://127.0.0.1:{sock.getsockname()[1]}"))
    received: list[tuple[str, dict[str, Any]]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sandbox.start()
        yield
        await sandbox.stop()

    service = FastAPI(lifespan=lifespan)

    @service.post("/webhooks/{source}")
    async def intake(source: str, request: Request) -> dict[str, bool]:
        received.append((source, await request.json()))
        return {"ok": True}

    service.mount("/sandbox", sandbox.app)
    with serve(service, sock) as url, httpx.Client() as http:
        headers = {"Authorization": f"Bearer {keys.GHL_PRIVATE_TOKEN}", "Version": "2021-07-28"}
        created = http.post(
            f"{url}/sandbox/ghl/contacts/",
            headers=headers,
            json={"locationId": keys.GHL_LOCATION_ID, "firstName": "Me"},
        )
        assert created.status_code == 201
        ui = http.get(f"{url}/sandbox/ghl/ui")
        assert ui.status_code == 200
        assert 'action="/sandbox/ghl/ui/contacts"' in ui.text
        http.post(f"{url}/sandbox/ghl/_sandbox/webhooks/drain").raise_for_status()
    assert [(source, body["type"]) for source, body in received] == [("ghl", "ContactCreate")]
    assert [r.path for r in sandbox.ghl.requests] == ["/contacts/"]


@pytest.mark.anyio
async def test_deliveries_queued_before_start_go_out_after_it(capture: Capture) -> None:
    capture.clear()
    sandbox = Sandbox(SandboxConfig(webhook_target=capture.url))
    sandbox.rankr.store.create_contact({"email": "early@example.com"})
    with pytest.raises(TimeoutError):
        await sandbox.drain_webhooks(0.05)
    await sandbox.start()
    try:
        await sandbox.drain_webhooks(5)
    finally:
        await sandbox.stop()
    assert [body["type"] for body in capture.accepted("rankr")] == ["contact.created"]
    assert [d.state for d in sandbox.rankr.deliveries()] == ["delivered"]


@pytest.mark.anyio
async def test_without_a_target_nothing_is_sent_but_deliveries_are_logged() -> None:
    sandbox = Sandbox(SandboxConfig(webhook_target=None))
    await sandbox.start()
    try:
        sandbox.ghl.store.create_contact({"firstName": "Alone"})
        await sandbox.drain_webhooks(1)
    finally:
        await sandbox.stop()
    assert [(d.event_type, d.state) for d in sandbox.ghl.deliveries()] == [("ContactCreate", "no_target")]


def test_reset_of_both_sides() -> None:
    sandbox = Sandbox(SandboxConfig(webhook_target=None))
    sandbox.ghl.store.create_contact({"firstName": "A"})
    sandbox.rankr.store.create_contact({"email": "a@example.com"})
    sandbox.reset()
    assert sandbox.ghl.store.list_contacts() == []
    assert sandbox.rankr.store.list_contacts() == []
    assert sandbox.ghl.deliveries() == []
    assert sandbox.rankr.deliveries() == []
