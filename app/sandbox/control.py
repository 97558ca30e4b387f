"""Control and inspection routes of one sandbox, under ``/{ghl|rankr}/_sandbox``; no auth, not logged.

GET  /_sandbox/requests?since=N    API requests with seq >= N: {"requests": [...], "next": M, "writes": W}
POST /_sandbox/reset               forget records, logs and counters; settings back to the configuration
GET  /_sandbox/control             current settings (shape below)
POST /_sandbox/control             change some: {"rate_max": 5, "rate_window_seconds": 1.0,
                                   "daily_limit": 1000, "error_rate": 0.5, "error_status": 503,
                                   "latency_ms": 50, "answer_latency_ms": 0, "lost_answer_rate": 0.1,
                                   "webhooks_enabled": false, "webhook_drop_rate": 0.2}
GET  /_sandbox/webhooks?body=true  deliveries of this sandbox, oldest first, with attempts and states
POST /_sandbox/webhooks/drain?timeout=10   wait until none is pending; 504 when some still are
GET  /_sandbox/state               every record in the product's wire format
POST /_sandbox/seed                {"contacts": [create bodies]}: create contacts quickly, no webhooks
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.sandbox.side import CONTROL_PREFIX, SandboxSide


class ControlChanges(BaseModel):
    """Body of ``POST /_sandbox/control``: every field optional; absent or null leaves it unchanged."""

    model_config = ConfigDict(extra="forbid")

    rate_max: int | None = Field(default=None, ge=0)
    rate_window_seconds: float | None = Field(default=None, gt=0)
    daily_limit: int | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    error_status: int | None = Field(default=None, ge=400, le=599)
    latency_ms: float | None = Field(default=None, ge=0)
    lost_answer_rate: float | None = Field(default=None, ge=0, le=1)
    answer_latency_ms: float | None = Field(default=None, ge=0)
    webhooks_enabled: bool | None = None
    webhook_drop_rate: float | None = Field(default=None, ge=0, le=1)


class SeedBody(BaseModel):
    """Body of ``POST /_sandbox/seed``: contacts as the product's create route takes them."""

    model_config = ConfigDict(extra="forbid")

    contacts: list[dict[str, Any]] = Field(max_length=10_000)


def control_router(side: SandboxSide) -> APIRouter:
    """The control/inspection routes bound to ``side``."""
    router = APIRouter(prefix=CONTROL_PREFIX)

    @router.get("/requests")
    async def list_requests(since: int = 0) -> dict[str, Any]:
        mark = side.mark()
        entries = side.requests_since(since)
        return {
            "requests": [entry.as_json() for entry in entries],
            "next": mark,
            "writes": sum(1 for entry in entries if entry.is_write),
        }

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        side.reset()
        return {"reset": True, "settings": side.control_settings()}

    @router.get("/control")
    async def get_control() -> dict[str, Any]:
        return side.control_settings()

    @router.post("/control")
    async def set_control(changes: ControlChanges) -> dict[str, Any]:
        return side.apply_control(changes.model_dump(exclude_none=True))

    @router.get("/webhooks")
    async def list_webhooks(body: bool = False) -> dict[str, Any]:
        return {
            "deliveries": [delivery.as_json(with_body=body) for delivery in side.deliveries()],
            "pending": side.dispatcher.pending(side.name),
        }

    @router.post("/webhooks/drain")
    async def drain_webhooks(seconds: Annotated[float, Query(alias="timeout")] = 10.0) -> JSONResponse:
        try:
            await side.dispatcher.drain(seconds, source=side.name)
        except TimeoutError as exc:
            return JSONResponse(
                {"pending": side.dispatcher.pending(side.name), "error": str(exc)}, status_code=504
            )
        return JSONResponse({"pending": 0})

    @router.post("/seed", status_code=201)
    async def seed(body: SeedBody) -> dict[str, Any]:
        return {"ids": side.seed_contacts(body.contacts)}

    @router.get("/state")
    async def dump_state() -> dict[str, Any]:
        return side.state_dump()

    return router
