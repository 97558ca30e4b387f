"""``/healthz``, ``/readyz`` and ``/status``, and the status facts the ``status`` command prints too."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin import request_is_admin
from app.backfill import repository as backfill_repo
from app.config import Settings
from app.connections import credentials as ghl_credentials
from app.connections import installs
from app.connections import repository as connections
from app.connections.models import CredentialKind, CredentialState, GhlCredential
from app.connections.verify import unconfigured_hint, verification_json
from app.db_problems import MIGRATE, DatabaseProblem, ProblemKind, database_problem
from app.errors import ProblemError
from app.inbox import repository as inbox
from app.inbox.models import EventStatus
from app.kit.clock import Clock, isoformat_or_none
from app.ops import openapi
from app.ops.status_page import health_of, render_status_page
from app.sync import repository as links
from app.sync.models import Kind

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def schema_problem(
    sessions: async_sessionmaker[AsyncSession], head: str | None
) -> DatabaseProblem | None:
    """Why the database is not ready, or None when it answers and is at the newest migration."""
    url = None
    try:
        async with sessions() as session:
            url = session.get_bind().engine.url
            current = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # any driver error means "not ready"; the reason is reported, not raised
        log.debug("db.check_failed", exc_info=exc)
        return database_problem(exc, url) or DatabaseProblem(
            ProblemKind.UNAVAILABLE,
            f"the database answered with an unexpected error ({type(exc).__name__})",
            "see the service's log with LOG_LEVEL=DEBUG",
        )
    if current != head:
        return DatabaseProblem(
            ProblemKind.NOT_MIGRATED, f"the schema is at {current}, the newest migration is {head}", MIGRATE
        )
    return None


def token_state(row: GhlCredential, now: datetime, margin_seconds: float) -> dict[str, Any]:
    """The GHL credential of a connection as /status shows it: kind, state, expiry (never the token)."""
    if row.state == CredentialState.NEEDS_REAUTH:
        state = "needs_reauth"
    elif row.expires_at is not None and (row.expires_at - now).total_seconds() <= margin_seconds:
        state = "expiring"
    else:
        state = "ok"
    kind = "private" if row.kind == CredentialKind.PRIVATE else "oauth"
    return {
        "kind": kind,
        "state": state,
        "expiresAt": isoformat_or_none(row.expires_at),
        "refreshedAt": isoformat_or_none(row.refreshed_at),
    }


async def collect_status(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    settings: Settings,
    *,
    detailed: bool,
    token_expiry: dict[int, datetime | None] | None = None,
) -> dict[str, Any]:
    """Per connection: verification, events by status, oldest open event, last syncs, links, tokens,
    rate budget; overall: ``ok`` only when there is a connection and each one is verified and syncing,
    ``unconfigured`` without any, else ``degraded`` with the ``problems`` of each failing connection."""
    now = clock()
    async with sessions() as session:
        rows = await connections.all_connections(session)
        checks = await connections.verifications(session)
        counts = await inbox.status_counts(session)
        oldest = await inbox.oldest_open(session)
        linked = await links.link_counts(session)
        sync_jobs = {(row.connection_id, row.job): row for row in await backfill_repo.jobs(session)}
        budgets = {
            (budget.connection_id, budget.upstream): budget for budget in await connections.budgets(session)
        }
        tokens = {
            row.connection_id: token_state(row, now, settings.ghl_token_refresh_margin_seconds)
            for row in await ghl_credentials.all_credentials(session)
            if row.connection_id is not None
        }
        refused = await installs.refusals(session)
        errors = {}
        if detailed:
            for connection in rows:
                for key in (connection.rankr_account_id, connection.ghl_location_id):
                    errors[key] = await inbox.latest_errors(session, key)

    def events_for(keys: tuple[str, ...]) -> dict[str, int]:
        return {
            status.value: sum(counts.get((key, status.value), 0) for key in keys) for status in EventStatus
        }

    result = []
    known: set[str] = set()
    for connection in rows:
        keys = (connection.rankr_account_id, connection.ghl_location_id)
        known.update(keys)
        first_open = min((oldest[key] for key in keys if key in oldest), default=None)
        entry: dict[str, Any] = {
            "id": connection.id,
            "name": connection.name,
            "state": connection.status,
            "verification": verification_json(checks.get(connection.id)),
            "events": events_for(keys),
            "oldestPendingAgeSeconds": round((now - first_open).total_seconds(), 1) if first_open else None,
            "lastSyncToGhlAt": isoformat_or_none(connection.last_synced_to_ghl_at),
            "lastSyncToRankrAt": isoformat_or_none(connection.last_synced_to_rankr_at),
            "linked": {f"{kind.value}s": linked.get((connection.id, kind.value), 0) for kind in Kind},
            "tokens": {
                "ghl": {
                    "kind": "oauth"
                    if connection.id in tokens and tokens[connection.id]["kind"] == "oauth"
                    else "private-integration",
                    "expiresAt": tokens.get(connection.id, {}).get("expiresAt"),
                },
                "rankr": {
                    "kind": "client-credentials",
                    "expiresAt": isoformat_or_none((token_expiry or {}).get(connection.id)),
                },
            },
            "token": tokens.get(connection.id, {"kind": "private", "state": "ok", "expiresAt": None}),
            "rateBudget": {
                upstream: {
                    "limit": budget.limit,
                    "remaining": budget.remaining,
                    "windowMs": budget.window_ms,
                    "dailyRemaining": budget.daily_remaining,
                    "observedAt": isoformat_or_none(budget.observed_at),
                }
                for (connection_id, upstream), budget in budgets.items()
                if connection_id == connection.id
            },
        }
        for job in ("backfill", "reconcile"):
            row = sync_jobs.get((connection.id, job))
            entry[job] = (
                None
                if row is None
                else {
                    "state": row.state,
                    "phase": row.phase,
                    "counts": row.counts,
                    "startedAt": isoformat_or_none(row.started_at),
                    "updatedAt": isoformat_or_none(row.updated_at),
                    "finishedAt": isoformat_or_none(row.finished_at),
                    **({"error": row.error} if detailed else {}),
                }
            )
        if detailed:
            entry["rankrAccountId"] = connection.rankr_account_id
            entry["ghlLocationId"] = connection.ghl_location_id
            entry["latestErrors"] = [
                {
                    "id": event.id,
                    "recordId": event.record_id,
                    "eventId": event.event_id,
                    "source": event.source,
                    "type": event.type,
                    "status": event.status,
                    "attempts": event.attempts,
                    "error": event.last_error,
                    "receivedAt": isoformat_or_none(event.received_at),
                }
                for key in keys
                for event in errors.get(key, ())
            ]
        entry["health"] = health_of(entry)
        result.append(entry)
    latest_refusal: dict[str, Any] | None = None
    if refused.latest_at is not None:
        latest_refusal = {"at": isoformat_or_none(refused.latest_at), "reason": refused.latest_reason}
        if detailed:
            latest_refusal["rankrAccountId"] = refused.latest_rankr_account_id
    unrouted = {account: None for account, _ in counts if account not in known}
    problems = [
        {"connectionId": entry["id"], "name": entry["name"], "reason": reason}
        for entry in result
        if entry["health"]["level"] == "red" or not entry["verification"]["verified"]
        for reason in entry["health"]["reasons"]
    ]
    if not result:
        overall = "unconfigured"
        message = unconfigured_hint(settings)
    elif problems:
        overall = "degraded"
        failing = len({problem["connectionId"] for problem in problems})
        message = f"{failing} of {len(result)} connection(s) need attention"
    else:
        overall = "ok"
        message = f"{len(result)} connection(s), each verified and syncing"
    return {
        "status": overall,
        "message": message,
        "problems": problems,
        "generatedAt": now.isoformat(),
        "connections": result,
        "installs": {"refusedCallbacks": refused.count, "latestRefusal": latest_refusal},
        "unrouted": {
            "accounts": len(unrouted),
            "events": {
                status.value: sum(counts.get((account, status.value), 0) for account in unrouted)
                for status in EventStatus
            },
        },
    }


@router.get("/healthz", summary="Liveness: 200 while the process runs", responses=openapi.HEALTHY)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Readiness: the database answers and its schema is current", responses=openapi.READY
)
async def readyz(request: Request) -> dict[str, str]:
    problem = await schema_problem(request.app.state.sessions, request.app.state.head_revision)
    if problem is not None:
        raise ProblemError(503, "Service Unavailable", str(problem))
    return {"status": "ready"}


@router.get(
    "/status",
    summary="Sync status per connection (JSON, or HTML for Accept: text/html)",
    responses=openapi.STATUS,
)
async def status(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="Bearer ADMIN_TOKEN: adds ids and the latest errors")
    ] = None,
    accept: Annotated[str, Header()] = "",
    replayed: Annotated[int | None, Query(description="shown on the page after a replay")] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    detailed = request_is_admin(request)
    registry = request.app.state.registry
    expiry = {
        connection_id: registry.rankr_token_expiry(connection_id) for connection_id in registry.connection_ids
    }
    facts = await collect_status(
        request.app.state.sessions, request.app.state.clock, settings, detailed=detailed, token_expiry=expiry
    )
    if "text/html" in accept:
        notice = f"{replayed} dead event(s) put back in the queue" if replayed is not None else None
        return HTMLResponse(render_status_page(facts, detailed=detailed, notice=notice))
    return JSONResponse(facts)
