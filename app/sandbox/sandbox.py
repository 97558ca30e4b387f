"""``Sandbox``: both emulators behind one FastAPI app, and the standalone app of ``rankr-ghl-sync sandbox``.

    sandbox = Sandbox(SandboxConfig(webhook_target="http://127.0.0.1:8000"))
    service_app.mount("/sandbox", sandbox.app)   # GHL at /sandbox/ghl, Rankr at /sandbox/rankr
    await sandbox.start()                        # in the service's lifespan: mounted apps get none
    ...
    await sandbox.stop()

Everything lives on the instance (records, logs, limiter, dice, HTTP client); nothing at module level.
"""

from __future__ import annotations

import html
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.requests import Request

from app.sandbox.config import SandboxConfig
from app.sandbox.ghl.sandbox import GhlSandbox
from app.sandbox.rankr.sandbox import RankrSandbox
from app.sandbox.webhooks import WebhookDispatcher


class Sandbox:
    """The GHL and Rankr sandboxes, their shared webhook dispatcher, and the app serving both."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        # One seeded die for faults and drops of both sides: a seed makes a whole run repeatable.
        self.dice = random.Random(config.random_seed)
        self.dispatcher = WebhookDispatcher(
            config.clock, config.webhook_timeout_seconds, config.delivery_log_size
        )
        self.ghl = GhlSandbox(config, self.dispatcher, self.dice)
        self.rankr = RankrSandbox(config, self.dispatcher, self.dice)
        self.app = FastAPI(title="rankr-ghl-sync sandboxes", docs_url=None, redoc_url=None, openapi_url=None)
        self.app.mount("/ghl", self.ghl.app)
        self.app.mount("/rankr", self.rankr.app)
        self.app.add_api_route("/", self._index, methods=["GET"], response_class=HTMLResponse)
        for side in (self.ghl, self.rankr):
            side.app.add_api_route("/", _to_ui, methods=["GET"], include_in_schema=False)

    async def start(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """Start sending webhooks (deliveries queued before now go out too); through ``transport``
        instead of the network when given (tests: the service's ASGI app)."""
        await self.dispatcher.start(transport)

    async def stop(self) -> None:
        """Stop sending and close the HTTP client; unsent deliveries stay ``pending`` in the log."""
        await self.dispatcher.stop()

    async def drain_webhooks(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - the agreed interface
        """Wait until every queued webhook was delivered or given up; TimeoutError if not in time."""
        await self.dispatcher.drain(timeout)

    def reset(self) -> None:
        """Reset both sandboxes (records, logs, counters, settings)."""
        self.ghl.reset()
        self.rankr.reset()

    async def _index(self, request: Request) -> HTMLResponse:
        root = html.escape(request.scope.get("root_path", "").rstrip("/"))
        return HTMLResponse(
            "<!doctype html><title>Sandboxes</title><h1>rankr-ghl-sync sandboxes</h1><ul>"
            f'<li><a href="{root}/ghl/ui">GHL sandbox</a> (API root <code>{root}/ghl</code>)</li>'
            f'<li><a href="{root}/rankr/ui">Rankr sandbox</a> (API root <code>{root}/rankr</code>)</li></ul>'
        )


async def _to_ui(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{request.scope.get('root_path', '').rstrip('/')}/ui", status_code=307)


def create_standalone_app(config: SandboxConfig) -> FastAPI:
    """An app serving Sandbox.app under /sandbox with a lifespan that calls start()/stop().

    The ``Sandbox`` is at ``app.state.sandbox`` for callers (and tests) that want to inspect it.
    """
    sandbox = Sandbox(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sandbox.start()
        try:
            yield
        finally:
            await sandbox.stop()

    app = FastAPI(title="rankr-ghl-sync sandboxes", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    app.mount("/sandbox", sandbox.app)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/sandbox/", status_code=307)

    return app
