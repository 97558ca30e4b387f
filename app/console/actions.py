"""The console's ready-made actions (``app.console.catalogue``): switched on, edited and switched
off as settings versions, and previewed with the dry run against a recent real event."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from app.admin import CONSOLE_ROOT
from app.automation.config import SyncConfig, document, field_maps
from app.automation.rules import TRIGGERS
from app.automation.runner import dry_run
from app.config import Settings
from app.connections import repository as connections
from app.connections.models import Connection, ConnectionId
from app.console import catalogue
from app.console.pages import Pages, checked_form, go, text
from app.console.settings_page import config_in_force, read_only_reason, save_config
from app.inbox.models import WebhookEvent

RECENT_EVENTS = 200


async def recent_event(request: Request, connection: Connection, triggers: set[str]) -> WebhookEvent | None:
    """The connection's newest stored event that sets off one of ``triggers``."""
    types = [event_type for event_type, trigger in TRIGGERS.items() if trigger in triggers]
    query = (
        select(WebhookEvent)
        .where(
            WebhookEvent.account_key.in_([connection.rankr_account_id, connection.ghl_location_id]),
            WebhookEvent.type.in_(types),
        )
        .order_by(WebhookEvent.id.desc())
        .limit(1)
    )
    async with request.app.state.sessions() as session:
        found: WebhookEvent | None = (await session.execute(query)).scalar_one_or_none()
        return found


def _with_action(
    doc: dict[str, Any], action: catalogue.Action, values: catalogue.Values, location: str
) -> SyncConfig:
    changed = json.loads(json.dumps(doc))
    catalogue.switch_on(action, changed, values, location)
    return SyncConfig.model_validate(changed)


async def preview(request: Request, connection: Connection, action: catalogue.Action) -> dict[str, Any]:
    """What the action, with its current settings, would do for the connection's latest fitting event."""
    settings: Settings = request.app.state.settings
    doc = document(await config_in_force(request))
    location = connection.ghl_location_id
    config = _with_action(doc, action, catalogue.current_values(action, doc), location)
    rule = next((r for r in config.rules if r.name == action.rule_name), None)
    triggers: set[str] = set(rule.when.event) if rule is not None else {"contact.created", "contact.updated"}
    event = await recent_event(request, connection, triggers)
    if event is None:
        return {"note": f"no {' or '.join(sorted(triggers))} event of this connection is stored yet"}
    maps = field_maps(settings, config)
    outcome = await dry_run(config, event.payload, maps, request.app.state.clock(), location)
    if rule is not None:
        outcome["decisions"] = [d for d in outcome.get("decisions", []) if d.get("rule") == rule.name]
    return {"event": event, "outcome": json.dumps(outcome, indent=2, default=str)}


def actions_router(pages: Pages) -> APIRouter:
    router = APIRouter(
        prefix=f"{CONSOLE_ROOT}/connections/{{connection_id}}/actions", include_in_schema=False
    )

    async def connection_of(request: Request, connection_id: int) -> Connection | None:
        async with request.app.state.sessions() as session:
            found: Connection | None = await session.get(Connection, connection_id)
            return found

    @router.get("")
    async def actions_page(request: Request, connection_id: ConnectionId, preview_of: str = "") -> Response:
        connection = await connection_of(request, connection_id)
        if connection is None:
            return go("/", error=f"There is no connection {connection_id}.")
        doc = document(await config_in_force(request))
        shown = None
        if preview_of in catalogue.BY_ID:
            shown = {
                "action": catalogue.BY_ID[preview_of],
                **await preview(request, connection, catalogue.BY_ID[preview_of]),
            }
        return pages.render(
            request,
            "actions.html",
            f"Ready-made actions: {connection.name}",
            connection=connection,
            read_only=read_only_reason(request.app.state.settings),
            actions=[
                {
                    "action": a,
                    "on": catalogue.is_on(a, doc, connection.ghl_location_id),
                    "values": catalogue.current_values(a, doc),
                }
                for a in catalogue.CATALOGUE
            ],
            preview=shown,
        )

    async def change(request: Request, connection_id: int, action_id: str, on: bool) -> RedirectResponse:
        form = await checked_form(request)
        page = f"/connections/{connection_id}/actions"
        action = catalogue.BY_ID.get(action_id)
        if action is None:
            return go(page, error=f"There is no action {action_id}.")
        settings: Settings = request.app.state.settings
        reason = read_only_reason(settings)
        if reason is not None:
            return go(page, error=reason)
        connection = await connection_of(request, connection_id)
        if connection is None:
            return go("/", error=f"There is no connection {connection_id}.")
        location = connection.ghl_location_id
        doc = document(await config_in_force(request))
        try:
            if on:
                values = {s.name: text(form, s.name, limit=500) or s.default for s in action.settings}
                config = _with_action(doc, action, values, location)
            else:
                async with request.app.state.sessions() as session:
                    every = [c.ghl_location_id for c in await connections.all_connections(session)]
                catalogue.switch_off(action, doc, location, every)
                config = SyncConfig.model_validate(doc)
        except (ValidationError, ValueError, KeyError) as exc:
            return go(page, error=f"{action.title}: {_reason(exc)}")
        await save_config(request.app.state.sessions, settings, config, request.app.state.clock())
        scope = "" if action.id == "enrich-local" else " for this connection"
        return go(page, msg=f"{action.title}: {'on' if on else 'off'}{scope}.")

    @router.post("/{action_id}")
    async def switch_on(request: Request, connection_id: ConnectionId, action_id: str) -> RedirectResponse:
        return await change(request, connection_id, action_id, on=True)

    @router.post("/{action_id}/off")
    async def switch_off(request: Request, connection_id: ConnectionId, action_id: str) -> RedirectResponse:
        return await change(request, connection_id, action_id, on=False)

    return router


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    return f"a number was expected ({exc})" if isinstance(exc, ValueError) else str(exc)
