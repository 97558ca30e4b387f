"""The console's connections: their state, adding one (GHL app install or Private Integration
token), verifying, disabling, enabling and removing one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.admin import CONSOLE_ROOT
from app.config import Settings
from app.connections import credentials
from app.connections import repository as connections
from app.connections.models import ConnectionId, ConnectionStatus, CredentialKind
from app.connections.removal import remove_connection
from app.console.pages import Pages, checked_form, go, text
from app.db import unit_of_work
from app.health import collect_status
from app.integrations.ghl.install import activate


async def status_facts(request: Request) -> dict[str, Any]:
    """What ``/status`` knows, with the details an admin sees (ids, errors)."""
    registry = request.app.state.registry
    expiry = {cid: registry.rankr_token_expiry(cid) for cid in registry.connection_ids}
    facts: dict[str, Any] = await collect_status(
        request.app.state.sessions,
        request.app.state.clock,
        request.app.state.settings,
        detailed=True,
        token_expiry=expiry,
    )
    return facts


async def connection_facts(request: Request, connection_id: int) -> dict[str, Any] | None:
    facts = await status_facts(request)
    return next((c for c in facts["connections"] if c["id"] == connection_id), None)


def connections_router(pages: Pages) -> APIRouter:
    router = APIRouter(prefix=CONSOLE_ROOT, include_in_schema=False)

    @router.get("/")
    async def home(request: Request) -> HTMLResponse:
        settings: Settings = request.app.state.settings
        facts = await status_facts(request)
        return pages.render(
            request,
            "connections.html",
            "Connections",
            connections=facts["connections"],
            oauth=settings.ghl_oauth_client is not None,
            default_account=settings.rankr_account_id or "",
        )

    @router.get("/connections/install")
    async def install(request: Request, rankrAccountId: str = "") -> Response:  # noqa: N803
        account = rankrAccountId.strip()
        if not account or len(account) > 255:
            return go("/", error="The install needs the Rankr account id (1 to 255 characters).")
        url = f"/oauth/ghl/install?{urlencode({'rankrAccountId': account})}"
        return pages.render(request, "install.html", "Install the GHL app", account=account, install_url=url)

    @router.post("/connections")
    async def add(request: Request) -> RedirectResponse:
        form = await checked_form(request)
        location, account = text(form, "ghlLocationId"), text(form, "rankrAccountId")
        token = text(form, "ghlToken", limit=4096)
        if not (location and account and token):
            return go(
                "/", error="A connection needs the GHL location id, its token and the Rankr account id."
            )
        now = request.app.state.clock()
        try:
            async with unit_of_work(request.app.state.sessions) as session:
                connection = await activate(session, account, location, now)
                await credentials.put(
                    session,
                    request.app.state.registry.tokens.cipher,
                    kind=CredentialKind.PRIVATE,
                    connection_id=connection.id,
                    access_token=token,
                    now=now,
                )
        except ValueError as exc:
            return go("/", error=str(exc))
        [outcome] = await request.app.state.verifier(connection.id)
        return go(f"/connections/{connection.id}", msg=f"Connection added. {outcome.line()}")

    @router.get("/connections/{connection_id}")
    async def detail(request: Request, connection_id: ConnectionId) -> Response:
        found = await connection_facts(request, connection_id)
        if found is None:
            return go("/", error=f"There is no connection {connection_id}.")
        return pages.render(request, "connection.html", found["name"], c=found)

    @router.post("/connections/{connection_id}/verify")
    async def verify(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        await checked_form(request)
        outcomes = await request.app.state.verifier(connection_id)
        if not outcomes:
            return go("/", error=f"There is no connection {connection_id}.")
        return go(f"/connections/{connection_id}", msg=outcomes[0].line())

    async def set_status(request: Request, connection_id: int, status: str, done: str) -> RedirectResponse:
        await checked_form(request)
        async with unit_of_work(request.app.state.sessions) as session:
            found = await connections.set_status(session, connection_id, status, request.app.state.clock())
        if not found:
            return go("/", error=f"There is no connection {connection_id}.")
        return go(f"/connections/{connection_id}", msg=done)

    @router.post("/connections/{connection_id}/disable")
    async def disable(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        return await set_status(request, connection_id, ConnectionStatus.DISABLED, "Disabled: nothing syncs.")

    @router.post("/connections/{connection_id}/enable")
    async def enable(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        return await set_status(request, connection_id, ConnectionStatus.ACTIVE, "Enabled: syncing again.")

    @router.get("/connections/{connection_id}/remove")
    async def confirm_remove(request: Request, connection_id: ConnectionId) -> Response:
        found = await connection_facts(request, connection_id)
        if found is None:
            return go("/", error=f"There is no connection {connection_id}.")
        return pages.render(request, "remove.html", f"Remove {found['name']}?", c=found)

    @router.post("/connections/{connection_id}/remove")
    async def remove(request: Request, connection_id: ConnectionId) -> RedirectResponse:
        await checked_form(request)
        state = request.app.state
        removed = await remove_connection(state.sessions, connection_id, state.registry)
        if not removed:
            return go("/", error=f"There is no connection {connection_id}.")
        return go("/", msg=f"Connection {connection_id} removed.")

    return router
