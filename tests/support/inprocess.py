"""The service, both sandboxes and a worker in the test's own event loop: no ports, servers or polling.

Every request between them goes through ``httpx.ASGITransport`` to the one app (the sandboxes are
mounted in it at ``/sandbox``): the service's upstream clients call the sandboxes, the sandboxes'
webhooks reach the service's intake. Nothing happens on its own: ``deliver()`` sends the webhooks the
sandboxes queued, ``run_worker()`` applies the stored events, and ``settle()`` repeats both, moving
the shared ``ManualClock`` on to the next due event (a burst's hold, a retry's delay), until nothing
is left. Tests read the same as the end-to-end ones (``tests/support/service.py``), with ``await``.
Time passes only on that clock, but for the upstream clients' own short retries of a failed request,
which wait in real time.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.inbox.models import IS_OPEN
from app.integrations.registry import UpstreamRegistry
from app.main import create_app
from app.sandbox import Sandbox, keys
from app.worker import Worker
from tests.support.service import (
    AUDIT_SQL,
    EVENTS_SQL,
    GHL_HEADERS,
    LINKS_SQL,
    RANKR_TOKEN_FORM,
    record_writes,
    signed_ghl,
    signed_rankr,
    test_settings,
    with_email,
)

# The app's own address, as the sandboxes send webhooks to it and its clients reach the sandboxes.
SERVICE_URL = "http://service.test"
# Budgets so large (the service's, and the sandboxes' it adapts to) that the pacers never wait: they
# sleep in real time until a slot on the clock, which here stands still. Pacing has tests of its own
# (tests/kit/test_pacing.py, tests/e2e/test_delivery.py).
UNPACED_LIMIT = 1_000_000
UNPACED = {"ghl_rate_limit": UNPACED_LIMIT, "rankr_rate_limit": UNPACED_LIMIT}


class ManualClock:
    """A clock that stands still until the test (or ``settle``) moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def advance_to(self, at: datetime) -> None:
        self.now = max(self.now, at)


class Product:
    """One sandboxed product (GHL or Rankr) seen over HTTP: its API, its control and inspection routes."""

    def __init__(self, http: httpx.AsyncClient, base: str, name: str) -> None:
        self.http = http
        self.base = base
        self.name = name

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    async def sandbox_post(self, path: str, **body: Any) -> dict[str, Any]:
        """POST to one of the sandbox's own routes (``/_sandbox/control``, ``/_sandbox/oauth/revoke``)."""
        answer = await self.http.post(f"{self.base}/_sandbox{path}", json=body)
        answer.raise_for_status()
        return dict(answer.json())

    async def control(self, **changes: Any) -> None:
        await self.sandbox_post("/control", **changes)

    async def mark(self) -> int:
        answer = await self.http.get(f"{self.base}/_sandbox/requests", params={"since": 10**12})
        return int(answer.json()["next"])

    async def requests_since(self, mark: int) -> list[dict[str, Any]]:
        answer = await self.http.get(f"{self.base}/_sandbox/requests", params={"since": mark})
        return list(answer.json()["requests"])

    async def writes_since(self, mark: int) -> list[str]:
        return record_writes(await self.requests_since(mark))

    async def seed(self, contacts: list[dict[str, Any]]) -> list[str]:
        """Create contacts quickly and without webhooks (records that existed before the service)."""
        answer = await self.http.post(f"{self.base}/_sandbox/seed", json={"contacts": contacts})
        assert answer.status_code == 201, answer.text
        return list(answer.json()["ids"])

    async def deliveries(self) -> list[dict[str, Any]]:
        answer = await self.http.get(f"{self.base}/_sandbox/webhooks", params={"body": "true"})
        return list(answer.json()["deliveries"])

    async def contacts(self) -> list[dict[str, Any]]:
        return list((await self.http.get(f"{self.base}/_sandbox/state")).json()["contacts"])

    async def by_email(self, email: str) -> list[dict[str, Any]]:
        return with_email(await self.contacts(), email)


class Ghl(Product):
    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        super().__init__(http, base, "ghl")
        self.headers = GHL_HEADERS

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, f"{self.base}{path}", headers=self.headers, **kwargs)

    async def create(self, **fields: Any) -> dict[str, Any]:
        answer = await self.api("POST", "/contacts/", json={"locationId": keys.GHL_LOCATION_ID, **fields})
        assert answer.status_code == 201, answer.text
        return dict(answer.json()["contact"])

    async def get(self, contact_id: str) -> dict[str, Any] | None:
        answer = await self.api("GET", f"/contacts/{contact_id}")
        if answer.status_code in (400, 404):
            return None
        answer.raise_for_status()
        return dict(answer.json()["contact"])

    async def update(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        answer = await self.api("PUT", f"/contacts/{contact_id}", json=fields)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["contact"])

    async def delete(self, contact_id: str) -> None:
        (await self.api("DELETE", f"/contacts/{contact_id}")).raise_for_status()


class Rankr(Product):
    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        super().__init__(http, base, "rankr")
        self._token: str | None = None

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._token is None:
            answer = await self.http.post(f"{self.base}/oauth/token", data=RANKR_TOKEN_FORM)
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}"}
        return await self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    async def create(self, **fields: Any) -> dict[str, Any]:
        answer = await self.api("POST", "/contacts", json=fields)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def get(self, contact_id: str) -> dict[str, Any] | None:
        answer = await self.api("GET", f"/contacts/{contact_id}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return dict(answer.json())

    async def update(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        answer = await self.api("PUT", f"/contacts/{contact_id}", json=fields)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def delete(self, contact_id: str) -> None:
        assert (await self.api("DELETE", f"/contacts/{contact_id}")).status_code == 204


class InProcessService:
    """The app with its sandboxes, a worker the test drives, and the clock they all read."""

    def __init__(
        self,
        app: FastAPI,
        http: httpx.AsyncClient,
        worker: Worker,
        registry: UpstreamRegistry,
        clock: ManualClock,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.app = app
        self.url = SERVICE_URL
        self.http = http
        self.worker = worker
        self.registry = registry
        self.clock = clock
        self.sandbox: Sandbox | None = getattr(app.state, "sandbox", None)  # None: sandbox mode off
        self._sessions = sessions
        self.ghl = Ghl(http, f"{SERVICE_URL}/sandbox/ghl")
        self.rankr = Rankr(http, f"{SERVICE_URL}/sandbox/rankr")
        token = app.state.settings.admin_token
        # The admin routes' bearer header (empty when no admin token is set).
        self.admin = {"authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}

    # --- driving it --------------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Send every webhook the sandboxes queued (they are stored, not applied, by the service)."""
        if self.sandbox is not None:
            await self.sandbox.dispatcher.send_queued()

    async def run_worker(self) -> int:
        """Apply every stored event due now; how many the worker took."""
        return await self.worker.run_until_idle()

    async def settle(self, rounds: int = 50) -> None:
        """Deliver and apply until nothing is left, moving the clock to each next due event."""
        for _ in range(rounds):
            await self.deliver()
            if await self.run_worker():
                continue
            due = await self._next_due()
            if due is None:
                return
            self.clock.advance_to(due)
        raise AssertionError(f"the service did not settle: {await self.events()}")

    async def _next_due(self) -> datetime | None:
        """When the next open event falls due after now (events wait behind their record's first
        one, so one due now may still wait for a later one), or a held-back budget frees; None when
        no event is open."""
        rows = await self.query(f"SELECT next_attempt_at FROM webhook_events WHERE {IS_OPEN}")  # noqa: S608
        if not rows:
            return None
        later = [at for at in (_instant(row["next_attempt_at"]) for row in rows) if at > self.clock()]
        budget_frees_at = self.registry.claim_room().free_at
        if budget_frees_at is not None:
            later.append(datetime.fromtimestamp(budget_frees_at, UTC))
        if not later:
            raise AssertionError(f"events due that the worker does not take: {await self.events()}")
        return min(later)

    # --- reading its state -------------------------------------------------------------------------

    async def status(self, *, admin: bool = False) -> dict[str, Any]:
        """``/status`` as anyone sees it, or with ``admin`` as the operator does (with the admin token)."""
        answer = await self.http.get(f"{SERVICE_URL}/status", headers=self.admin if admin else {})
        answer.raise_for_status()
        return dict(answer.json())

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a read-only query, on the service's database."""
        async with self._sessions() as session:
            return [dict(row) for row in (await session.execute(text(sql))).mappings()]

    async def events(self, source: str | None = None) -> list[dict[str, Any]]:
        rows = await self.query(EVENTS_SQL)
        return [row for row in rows if source is None or row["source"] == source]

    async def links(self) -> list[dict[str, Any]]:
        return await self.query(LINKS_SQL)

    async def audit(self) -> list[dict[str, Any]]:
        return await self.query(AUDIT_SQL)

    # --- webhooks the test signs itself (redeliveries, replays, bad input) ---------------------------

    async def post_rankr(
        self, payload: dict[str, Any] | bytes, *, msg_id: str | None = None, at: datetime | None = None
    ) -> httpx.Response:
        body, headers = signed_rankr(payload, msg_id=msg_id, at=at or self.clock())
        return await self.http.post(f"{SERVICE_URL}/webhooks/rankr", content=body, headers=headers)

    async def post_ghl(self, payload: dict[str, Any] | bytes, *, scheme: str = "ed25519") -> httpx.Response:
        body, headers = signed_ghl(payload, scheme=scheme)
        return await self.http.post(f"{SERVICE_URL}/webhooks/ghl", content=body, headers=headers)


def _instant(value: datetime | str) -> datetime:
    """A stored time as an aware datetime (SQLite hands back naive UTC text)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@asynccontextmanager
async def inprocess_service(
    database_url: str, *, clock: ManualClock | None = None, **overrides: Any
) -> AsyncIterator[InProcessService]:
    """The service (its lifespan run, its in-process worker off) with its sandboxes and a worker the
    test drives, on the app's database sessions and API clients as the in-process worker would be,
    until the block ends. ``overrides`` are settings, as for ``running_service``."""
    clock = clock or ManualClock()
    settings = test_settings(
        database_url, SERVICE_URL, **{**UNPACED, "run_worker_in_process": False, **overrides}
    )
    app = create_app(settings, clock=clock, upstream_transport=lambda app: httpx.ASGITransport(app=app))
    sandbox: Sandbox | None = getattr(app.state, "sandbox", None)
    for side in (sandbox.ghl, sandbox.rankr) if sandbox is not None else ():
        side.apply_control({"rate_max": UNPACED_LIMIT})  # before the start-up verification's requests
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SERVICE_URL) as http,
        ):
            sessions, registry = app.state.sessions, app.state.registry
            worker = Worker.with_engine(
                sessions, settings, registry, clock=clock, name="test-worker", listen=False
            )
            service = InProcessService(app, http, worker, registry, clock, sessions)
            # The start-up verification of the connection runs in the background: done before the test.
            verification = getattr(app.state, "start_verification", None)
            if verification is not None:
                await verification
            yield service
    finally:
        gc.unfreeze()  # the lifespan froze what it built, for a process that lives on; this one ends
