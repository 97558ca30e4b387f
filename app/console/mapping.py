"""The console's field mapping of a connection: standard fields with their direction, custom fields
discovered on both sides (dragged one onto the other, or chosen in a form), and users.

GHL's custom fields and users are read from the connection's location; Rankr's custom field keys
and owner ids from its contacts (``RankrClient.survey_contacts``). A mapping is saved as a new
version of the stored settings (``app.settings_store``), which the worker applies from its next
claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.admin import CONSOLE_ROOT
from app.automation.config import SyncConfig, document, field_maps
from app.config import Settings
from app.connections.models import Connection, ConnectionId
from app.connections.verify import CONSOLE_GHL_SCOPES
from app.console import compat
from app.console.pages import Pages, checked_form, go, text
from app.console.settings_page import config_in_force, read_only_reason, save_config
from app.errors import UpstreamError
from app.integrations.ghl.schemas import GhlFieldDefinition, GhlUser
from app.integrations.rankr.schemas import RankrFieldSurvey
from app.sync.mapping import TAGS, TEXT_FIELDS

# The standard contact fields, in the order a person reads a contact, with their labels.
STANDARD_FIELDS = (
    *((name, name.replace("address.", "address ")) for name in TEXT_FIELDS),
    (TAGS, "tags"),
    ("ownerId", "owner (contact owner / assigned user)"),
)
# Who owns a field (the configuration's words) as the direction it syncs.
DIRECTIONS = (
    ("both", "both ways"),
    ("rankr", "only to GHL"),
    ("ghl", "only to Rankr"),
    ("none", "off"),
)


@dataclass
class Discovery:
    """What both sides of a connection offer to map, and what could not be read."""

    ghl_fields: list[GhlFieldDefinition] = field(default_factory=list)
    ghl_users: list[GhlUser] = field(default_factory=list)
    rankr: RankrFieldSurvey = field(default_factory=RankrFieldSurvey)
    problems: list[str] = field(default_factory=list)


async def discover(request: Request, connection: Connection) -> Discovery:
    upstreams = request.app.state.registry.for_connection(connection)
    found = Discovery()
    try:
        found.ghl_fields = await upstreams.ghl.list_custom_fields()
        found.ghl_users = await upstreams.ghl.list_users()
    except UpstreamError as exc:
        scopes = f" (reading them needs the scopes {' and '.join(CONSOLE_GHL_SCOPES)})"
        hint = scopes if exc.status in {401, 403} else ""
        found.problems.append(f"GHL's custom fields and users could not be read: {exc}{hint}")
    try:
        found.rankr = await upstreams.rankr.survey_contacts()
    except UpstreamError as exc:
        found.problems.append(f"Rankr's contacts could not be read: {exc}")
    return found


async def _connection(request: Request, connection_id: int) -> Connection | None:
    async with request.app.state.sessions() as session:
        found: Connection | None = await session.get(Connection, connection_id)
        return found


async def _save(
    request: Request, page: str, change: Callable[[dict[str, Any]], None]
) -> RedirectResponse | None:
    """Apply ``change`` (a function editing the configuration's document) and save it; a redirect
    saying why not when it cannot be saved, else None."""
    settings: Settings = request.app.state.settings
    reason = read_only_reason(settings)
    if reason is not None:
        return go(page, error=reason)
    current = document(await config_in_force(request))
    change(current)
    try:
        config = SyncConfig.model_validate(current)
    except ValidationError as exc:
        return go(page, error="; ".join(str(e["msg"]) for e in exc.errors()))
    await save_config(request.app.state.sessions, settings, config, request.app.state.clock())
    return None


def mapping_router(pages: Pages) -> APIRouter:
    router = APIRouter(
        prefix=f"{CONSOLE_ROOT}/connections/{{connection_id}}/mapping", include_in_schema=False
    )

    @router.get("")
    async def mapping_page(request: Request, connection_id: ConnectionId) -> Response:
        connection = await _connection(request, connection_id)
        if connection is None:
            return go("/", error=f"There is no connection {connection_id}.")
        settings: Settings = request.app.state.settings
        config = await config_in_force(request)
        found = await discover(request, connection)
        by_id = {f.id: f for f in found.ghl_fields}
        custom = field_maps(settings, config).at(connection.ghl_location_id).custom_fields
        own = config.mapping.locations.get(connection.ghl_location_id)
        own_fields = own.custom_fields if own else {}
        mapped_to = {ghl_id: key for key, ghl_id in custom.items()}
        users = {**settings.env_users, **config.mapping.users}
        return pages.render(
            request,
            "mapping.html",
            f"Field mapping: {connection.name}",
            connection=connection,
            read_only=read_only_reason(settings),
            problems=found.problems,
            standard=[
                (name, label, config.mapping.fields.get(name, "both")) for name, label in STANDARD_FIELDS
            ],
            directions=DIRECTIONS,
            rankr_fields=[
                {"key": key, "kind": compat.kind_of(samples), "samples": samples, "mapped": key in custom}
                for key, samples in sorted(found.rankr.custom_fields.items())
            ],
            contacts_read=found.rankr.contacts_read,
            ghl_fields=[{"field": f, "mapped_from": mapped_to.get(f.id)} for f in found.ghl_fields],
            mappings=[
                {
                    "key": key,
                    "ghl_id": ghl_id,
                    "ghl": by_id.get(ghl_id),
                    "from_env": key not in config.mapping.custom_fields and key not in own_fields,
                    "shared": key in config.mapping.custom_fields and key not in own_fields,
                }
                for key, ghl_id in sorted(custom.items())
            ],
            owners=sorted(found.rankr.owner_ids | set(users)),
            ghl_users=found.ghl_users,
            users=users,
        )

    @router.post("/custom-fields")
    async def map_custom_field(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        form = await checked_form(request)
        page = f"/connections/{connection_id}/mapping"
        connection = await _connection(request, connection_id)
        if connection is None:
            return go("/", error=f"There is no connection {connection_id}.")
        key, ghl_id = text(form, "rankrKey"), text(form, "ghlFieldId")
        if not key or not ghl_id:
            return go(page, error="Choose a Rankr field and the GHL field it goes to.")
        found = await discover(request, connection)
        if found.problems:
            return go(page, error=" ".join(found.problems))
        target = next((f for f in found.ghl_fields if f.id == ghl_id), None)
        if target is None:
            return go(page, error=f"GHL has no custom field {ghl_id} in this location.")
        if key not in found.rankr.custom_fields:
            return go(page, error=f"No Rankr contact carries a custom field '{key}'.")
        config = await config_in_force(request)
        location = connection.ghl_location_id
        mapped = field_maps(request.app.state.settings, config).at(location).custom_fields
        holder = next((k for k, v in mapped.items() if v == ghl_id and k != key), None)
        if holder is not None:
            return go(
                page, error=f"GHL '{target.name}' already receives Rankr '{holder}': remove that first."
            )
        verdict = compat.check(
            key, found.rankr.custom_fields[key], target.name, target.data_type, target.picklist_options
        )
        if not verdict.ok:
            return go(page, error=f"Not mapped: {verdict.reason}.")

        def change(doc: dict[str, Any]) -> None:
            # The GHL field exists in this location only: the entry is this connection's.
            own = doc.setdefault("mapping", {}).setdefault("locations", {}).setdefault(location, {})
            own.setdefault("customFields", {})[key] = ghl_id

        refused = await _save(request, page, change)
        return refused or go(page, msg=f"Rankr '{key}' now syncs with GHL '{target.name}'.")

    @router.post("/custom-fields/remove")
    async def unmap_custom_field(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        form = await checked_form(request)
        page = f"/connections/{connection_id}/mapping"
        key = text(form, "rankrKey")
        connection = await _connection(request, connection_id)
        if connection is None:
            return go("/", error=f"There is no connection {connection_id}.")
        location = connection.ghl_location_id

        def change(doc: dict[str, Any]) -> None:
            # This connection's own entry; else one shared by every connection (a file written by hand).
            mapping = doc.get("mapping", {})
            located = mapping.get("locations", {})
            own = located.get(location, {}).get("customFields", {})
            if key in own:
                own.pop(key)
                if not own:
                    located.pop(location)
            else:
                mapping.get("customFields", {}).pop(key, None)

        refused = await _save(request, page, change)
        return refused or go(page, msg=f"Rankr '{key}' is no longer mapped.")

    @router.post("/fields")
    async def set_directions(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        form = await checked_form(request)
        page = f"/connections/{connection_id}/mapping"
        allowed = {value for value, _ in DIRECTIONS}
        chosen = {name: text(form, f"field:{name}") or "both" for name, _ in STANDARD_FIELDS}
        wrong = sorted(name for name, value in chosen.items() if value not in allowed)
        if wrong:
            return go(page, error=f"Unknown direction for {', '.join(wrong)}.")

        def change(doc: dict[str, Any]) -> None:
            owned = {name: value for name, value in chosen.items() if value != "both"}
            custom = {
                k: v
                for k, v in doc.get("mapping", {}).get("fields", {}).items()
                if k.startswith("customFields.")
            }
            doc.setdefault("mapping", {})["fields"] = {**owned, **custom}

        refused = await _save(request, page, change)
        return refused or go(page, msg="Directions saved.")

    @router.post("/users")
    async def map_users(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        form = await checked_form(request)
        page = f"/connections/{connection_id}/mapping"
        chosen = {name.removeprefix("user:"): text(form, name) for name in form if name.startswith("user:")}

        def change(doc: dict[str, Any]) -> None:
            users = doc.setdefault("mapping", {}).setdefault("users", {})
            for owner, ghl_user in chosen.items():
                if ghl_user:
                    users[owner] = ghl_user
                else:
                    users.pop(owner, None)

        refused = await _save(request, page, change)
        return refused or go(page, msg="Users saved.")

    return router
