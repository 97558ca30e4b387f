"""``GET /metrics``: this process's counters plus the backlog gauges, read from the database at scrape."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections import repository as connections
from app.inbox.models import OPEN_STATUSES, EventStatus, WebhookEvent
from app.kit.clock import Clock


async def backlog_registry(sessions: async_sessionmaker[AsyncSession], now: datetime) -> CollectorRegistry:
    """A registry of the backlog gauges, filled from the database now."""
    registry = CollectorRegistry(auto_describe=False)
    size = Gauge(
        "rankr_ghl_sync_backlog_events",
        "Stored events by connection and status: pending, processing, retrying (open) and dead",
        ["connection", "status"],
        registry=registry,
    )
    age = Gauge(
        "rankr_ghl_sync_backlog_oldest_age_seconds",
        "Age of the oldest open (pending, processing or retrying) event, by connection (0 when none)",
        ["connection"],
        registry=registry,
    )
    counted = (*OPEN_STATUSES, EventStatus.DEAD)
    async with sessions() as session:
        owners: dict[str, str] = {}
        for connection in await connections.all_connections(session):
            owners[connection.rankr_account_id] = owners[connection.ghl_location_id] = str(connection.id)
        rows = await session.execute(
            select(
                WebhookEvent.account_key,
                WebhookEvent.status,
                func.count(),
                func.min(WebhookEvent.received_at),
            )
            .where(WebhookEvent.status.in_(counted))
            .group_by(WebhookEvent.account_key, WebhookEvent.status)
        )
        found = rows.all()
    for connection_id in {*owners.values()}:
        for status in counted:
            size.labels(connection_id, status.value).set(0)
        age.labels(connection_id).set(0)
    oldest: dict[str, datetime] = {}
    for account, status, count, first in found:
        owner = owners.get(account, "none")
        size.labels(owner, status).inc(count)
        if status in OPEN_STATUSES and first is not None:
            oldest[owner] = min(first, oldest.get(owner, first))
    for owner, first in oldest.items():
        age.labels(owner).set(max(0.0, (now - first).total_seconds()))
    return registry


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {
                CONTENT_TYPE_LATEST: {
                    "example": 'rankr_ghl_sync_backlog_events{connection="1",status="pending"} 3.0\n'
                }
            },
        }
    },
)
async def metrics(request: Request) -> Response:
    clock: Clock = request.app.state.clock
    backlog = await backlog_registry(request.app.state.sessions, clock())
    body = generate_latest(REGISTRY) + generate_latest(backlog)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
