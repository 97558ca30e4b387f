"""The status page (``GET /status`` for a browser) and its replay form.

Health at a glance, per connection (``health_of``; the same rule is in the JSON as ``health``):

- **red**: the connection is not active, or its verification failed (a problem to fix), or it has
  dead events (they will not run again until replayed), or its oldest open event has waited longer
  than ``RED_AGE_SECONDS`` (the worker is down or stuck);
- **amber**: it is not verified yet, or an upstream did not answer its verification, or events are
  retrying, or the oldest open event has waited longer than ``AMBER_AGE_SECONDS``, or an upstream's
  rate budget is below ``LOW_BUDGET_SHARE`` of its limit;
- **green**: otherwise.

The page is rendered on the server from ``templates/status.html`` (Jinja2, autoescaped), has no
external assets, and reloads itself every ``REFRESH_SECONDS`` (a script that waits while someone is
typing the admin token; a meta refresh without scripts).

A browser cannot send ``Authorization``, so the page has a form with the admin token as a field: its
"show details" posts to ``POST /status/login`` and its replay buttons to ``POST /status/replay``. A
right token starts the browser's admin session (``app.admin.start_session``: a signed, expiring
cookie, never the token itself), so later views show ids and errors, replays need no retyping, and
the GHL install can be started; ``POST /status/logout`` ends it.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.admin import end_session, request_is_admin, start_session
from app.config import Settings
from app.connections.models import Connection, ConnectionId
from app.db import unit_of_work
from app.errors import ProblemError
from app.inbox import repository as inbox
from app.inbox.models import EventRowId
from app.ops.openapi import problem

AMBER_AGE_SECONDS = 60.0
RED_AGE_SECONDS = 900.0
LOW_BUDGET_SHARE = 0.1
REFRESH_SECONDS = 10

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def health_of(entry: dict[str, Any]) -> dict[str, Any]:
    """``{"level": "green" | "amber" | "red", "reasons": [...]}`` for one connection's status entry."""
    red: list[str] = []
    amber: list[str] = []
    events = entry["events"]
    age = entry.get("oldestPendingAgeSeconds")
    if entry.get("state") != "active":
        red.append(f"connection is {entry.get('state')}")
    verification = entry.get("verification")
    if verification is not None and not verification.get("verified"):
        problem = verification.get("problem") or {}
        if verification.get("state") == "failed":
            red.append(f"not verified: {problem.get('reason')}")
        elif verification.get("state") == "unverifiable":
            amber.append(f"could not verify: {problem.get('reason')}")
        else:
            amber.append("not verified yet")
    if events.get("dead"):
        red.append(f"{events['dead']} dead event(s) need a replay or a fix")
    if age is not None and age > RED_AGE_SECONDS:
        red.append(f"oldest open event waits for {duration(age)}")
    elif age is not None and age > AMBER_AGE_SECONDS:
        amber.append(f"oldest open event waits for {duration(age)}")
    if events.get("retrying"):
        amber.append(f"{events['retrying']} event(s) retrying")
    for upstream, budget in (entry.get("rateBudget") or {}).items():
        limit, remaining = budget.get("limit"), budget.get("remaining")
        if limit and remaining is not None and remaining < limit * LOW_BUDGET_SHARE:
            amber.append(f"{upstream} rate budget low ({remaining} of {limit} left)")
    level = "red" if red else "amber" if amber else "green"
    return {"level": level, "reasons": red + amber}


def duration(seconds: float | None) -> str:
    """``75.2`` -> ``1m 15s``; ``None`` -> ``-``."""
    if seconds is None:
        return "-"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _time_ago(value: str | None, now: datetime) -> str:
    if not value:
        return "never"
    at = datetime.fromisoformat(value)
    return f"{duration((now - at).total_seconds())} ago"


def _budget_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for upstream, budget in sorted((entry.get("rateBudget") or {}).items()):
        limit, remaining = budget.get("limit"), budget.get("remaining")
        used = limit - remaining if limit is not None and remaining is not None else None
        share = round(100 * used / limit) if used is not None and limit else None
        rows.append({"upstream": upstream, "used": used, "limit": limit, "share": share})
    return rows


def _token(entry: dict[str, Any]) -> str:
    token = entry.get("token")
    if not token:
        return "-"
    text = f"{token.get('kind') or '?'}: {token.get('state') or '?'}"
    if token.get("expiresAt"):
        text += f", expires {token['expiresAt']}"
    return text


_LEVELS = ("green", "amber", "red")


def heading(facts: dict[str, Any], levels: list[str]) -> tuple[str, str]:
    """The page's heading and its colour: the overall state, never greener than the worst connection."""
    if not levels:
        return facts.get("status") or "unconfigured", "none"
    worst = max(levels, key=_LEVELS.index)
    status = facts.get("status") or "ok"
    if worst == "red" or status == "degraded":
        return "degraded", "red" if worst == "red" else "amber"
    if worst == "amber":
        return "ok, with warnings", "amber"
    return status, "green"


def _verification(entry: dict[str, Any], now: datetime) -> dict[str, Any]:
    verification = entry.get("verification") or {}
    problem = verification.get("problem")
    checked = verification.get("checkedAt")
    if verification.get("verified"):
        name = verification.get("locationName")
        where = f"GHL location '{name}'" if name else "GHL location name unknown"
        text = f"verified {_time_ago(checked, now)} ({where})"
    elif problem:
        verdict = "could not verify" if verification.get("state") == "unverifiable" else "failed"
        text = f"{verdict} {_time_ago(checked, now)}: {problem.get('reason')}"
    else:
        text = "not verified yet"
    return {
        "state": verification.get("state") or "unchecked",
        "text": text,
        "code": problem.get("code") if problem else None,
        "fix": problem.get("fix") if problem else None,
        "checked": checked,
    }


def render_status_page(facts: dict[str, Any], *, detailed: bool, notice: str | None = None) -> str:
    now = datetime.fromisoformat(facts["generatedAt"])
    connections_view = []
    for entry in facts["connections"]:
        events = entry["events"]
        connections_view.append(
            {
                "entry": entry,
                "health": entry.get("health") or health_of(entry),
                "verification": _verification(entry, now),
                "pending": events["pending"] + events["processing"],
                "oldest": duration(entry.get("oldestPendingAgeSeconds")),
                "to_ghl": _time_ago(entry.get("lastSyncToGhlAt"), now),
                "to_rankr": _time_ago(entry.get("lastSyncToRankrAt"), now),
                "budgets": _budget_rows(entry),
                "token": _token(entry),
                "errors": [
                    {**error, "received": _time_ago(error.get("receivedAt"), now)}
                    for error in entry.get("latestErrors") or []
                ],
            }
        )
    title, level = heading(facts, [view["health"]["level"] for view in connections_view])
    return _templates.get_template("status.html").render(
        facts=facts,
        title=title,
        level=level,
        connections=connections_view,
        detailed=detailed,
        notice=notice,
        refresh=REFRESH_SECONDS,
    )


def _form_admin(request: Request, token: str) -> bool:
    """The admin token from a form field, or the browser's admin session (open in sandbox mode
    without a token)."""
    settings: Settings = request.app.state.settings
    if settings.admin_token is not None and token:
        return hmac.compare_digest(token.encode(), settings.admin_token.get_secret_value().encode())
    return request_is_admin(request)


def _back_to_status(request: Request, query: str = "") -> RedirectResponse:
    answer = RedirectResponse(f"/status{query}", status_code=303)
    start_session(answer, request)
    return answer


_TOKEN_FIELD = Form(description="the ADMIN_TOKEN (or none, with the page's cookie)", examples=["s3cret"])
_UNAUTHORIZED = problem(
    401,
    "Unauthorized",
    "the admin token is missing or wrong",
    "neither the token field nor the page's cookie is the admin token",
)


router = APIRouter(tags=["health"])


@router.post(
    "/status/replay",
    summary="Replay dead events from the status page (form post with the admin token)",
    status_code=303,
    responses={
        303: {"description": "replayed; back to the status page, which says how many"},
        **_UNAUTHORIZED,
        **problem(404, "Not Found", "no connection 7"),
        **problem(422, "Unprocessable Content", "choose a dead event or a connection to replay"),
    },
)
async def replay_from_status_page(
    request: Request,
    token: Annotated[str, _TOKEN_FIELD] = "",
    event: Annotated[EventRowId | None, Form(description="inbox id of one dead event", examples=[42])] = None,
    connection: Annotated[
        ConnectionId | None, Form(description="replay every dead event of this connection", examples=[1])
    ] = None,
) -> RedirectResponse:
    if not _form_admin(request, token):
        raise ProblemError(401, "Unauthorized", "the admin token is missing or wrong")
    if event is None and connection is None:
        raise ProblemError(422, "Unprocessable Content", "choose a dead event or a connection to replay")
    async with unit_of_work(request.app.state.sessions) as session:
        keys: list[str] | None = None
        if connection is not None:
            found = await session.get(Connection, connection)
            if found is None:
                raise ProblemError(404, "Not Found", f"no connection {connection}")
            keys = [found.rankr_account_id, found.ghl_location_id]
        count = await inbox.replay_dead(
            session,
            request.app.state.clock(),
            event_ids=[event] if event is not None else None,
            account_keys=keys,
        )
    if count:
        request.app.state.intake.on_stored()
    return _back_to_status(request, f"?replayed={count}")


@router.post(
    "/status/login",
    summary="Show the status page's details in a browser (form post with the admin token)",
    status_code=303,
    responses={303: {"description": "back to the status page, now with ids and errors"}, **_UNAUTHORIZED},
)
async def status_page_login(request: Request, token: Annotated[str, _TOKEN_FIELD] = "") -> RedirectResponse:
    settings: Settings = request.app.state.settings
    if settings.admin_token is not None and not token:
        raise ProblemError(401, "Unauthorized", "the admin token is missing or wrong")
    if not _form_admin(request, token):
        raise ProblemError(401, "Unauthorized", "the admin token is missing or wrong")
    return _back_to_status(request)


@router.post(
    "/status/logout",
    summary="End the browser's admin session",
    status_code=303,
    responses={
        303: {
            "description": "back to the status page, without details",
            "headers": {"Location": {"schema": {"type": "string"}, "example": "/status"}},
        }
    },
)
async def status_page_logout(request: Request) -> RedirectResponse:
    answer = RedirectResponse("/status", status_code=303)
    end_session(answer, request)
    return answer
