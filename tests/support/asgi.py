"""The service's app in process, its lifespan run and its worker off, reached over ``httpx.ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app


@asynccontextmanager
async def app_client(database_url: str, **settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app built on ``settings`` (the worker and the periodic reconciliation off) and a client."""
    values = {"run_worker_in_process": False, "reconcile_interval_seconds": 0, **settings}
    app = create_app(Settings(database_url=database_url, _env_file=None, **values))  # type: ignore[call-arg]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as http,
    ):
        yield app, http
