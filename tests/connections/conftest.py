"""The service and its sandboxes in one process: the app's clients reach the sandboxes it mounts over
``httpx.ASGITransport``, so verification runs real HTTP exchanges without a socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from app.sandbox import Sandbox

ADMIN = {"authorization": "Bearer s3cret"}


@dataclass
class InProcess:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = self.app.state.sandbox
        return sandbox

    async def ghl_control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post(f"/sandbox/ghl/_sandbox{path}", json=body)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def status(self) -> dict[str, Any]:
        answer = await self.http.get("/status", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


def settings_for(database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "sandbox": True,
        "run_worker_in_process": False,
        "reconcile_interval_seconds": 0,
        "admin_token": "s3cret",
        "public_url": "http://service.test",
        **changes,
    }
    return Settings(**values)


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[InProcess]:
    app = create_app(settings, upstream_transport=lambda app: httpx.ASGITransport(app=app))
    async with app.router.lifespan_context(app):
        # The start-up verification runs in the background; tests start once it is done.
        if app.state.start_verification is not None:
            await app.state.start_verification
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as http:
            yield InProcess(app, http)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[InProcess]:
    """The service in sandbox mode with its seeded connection, verified at start-up."""
    async with started(settings_for(database_url)) as running:
        yield running
