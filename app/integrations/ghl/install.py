"""The GHL marketplace install flow (what the app ``INSTALL`` / ``UNINSTALL`` webhooks change is in
``app_events``).

Starting an install binds a GHL location to a Rankr account, so it takes the admin's credentials:
``GET /oauth/ghl/install?rankrAccountId=acct_1`` with the bearer ``ADMIN_TOKEN`` or a browser's admin
session (``app.admin``), or ``GET /oauth/ghl/install?link=...``, a one-time link the operator made
for one Rankr account (``rankr-ghl-sync connections install-link``, ``POST /admin/install-links``).
It redirects to GHL's location chooser with the app's client id, the redirect URI, the scopes below
and a random ``state``, which the browser also keeps in a cookie. ``GET /oauth/ghl/callback`` takes
the state once (``app.connections.installs``), only from the browser that started the install and
within ``STATE_TTL_SECONDS``, exchanges the code at ``/oauth/token``, stores the tokens (encrypted)
and creates (or re-activates) the connection. An unknown, replayed, foreign or expired ``state``, an
``error`` from GHL or a failed exchange answers a plain HTML page and creates nothing; refusals of a
known state are counted on ``/status``.

Agency installs (``userType: Company``) store the agency's tokens; when the agency approved exactly
one location, a location token is minted at once (``/oauth/locationToken``); otherwise each location
is connected with ``rankr-ghl-sync connections add --ghl-location X --rankr-account Y``, which mints it.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.admin import admin_router, request_is_admin
from app.config import Settings
from app.connections import credentials, installs
from app.connections import repository as connections
from app.connections.models import Connection, ConnectionStatus, CredentialKind, InstallStateKind
from app.db import unit_of_work
from app.errors import ProblemError, UpstreamError
from app.integrations.ghl.oauth import GhlOAuthClient, TokenAnswer
from app.integrations.ghl.tokens import expiry
from app.kit.crypto import TokenCipher

log = logging.getLogger(__name__)

router = APIRouter(tags=["install"])
admin_routes = admin_router()

# Least privilege, from the endpoints the service calls (docs/connections-and-oauth.md, "Scopes"):
#   contacts.readonly          GET /contacts/{id}, GET /contacts/search/duplicate, tasks and notes reads,
#                              GET /contacts/{id}/appointments, and the Contact*/Task*/Note* webhooks
#   contacts.write             POST /contacts/upsert, PUT/DELETE /contacts/{id}, POST /contacts/{id}/tags,
#                              task and note writes under /contacts/{id}/
#   locations/tasks.readonly   POST /locations/{id}/tasks/search (a TaskCreate without contactId)
#   locations.readonly         GET /locations/{id}: a connection's verification reads its name
#   locations/customFields.readonly  GET /locations/{id}/customFields: the console's field mapping
#   users.readonly             GET /users/?locationId=: the console's user mapping
#   oauth.write                POST /oauth/locationToken (agency installs only)
SCOPES = (
    "contacts.readonly",
    "contacts.write",
    "locations/tasks.readonly",
    "locations.readonly",
    "locations/customFields.readonly",
    "users.readonly",
    "oauth.write",
)
STATE_TTL_SECONDS = 600


STATE_COOKIE = "rankr_ghl_sync_install"
INSTALL_LINK_TTL = timedelta(days=7)


def install_url(settings: Settings, state: str) -> str:
    client = settings.ghl_oauth_client
    if client is None:
        raise ValueError("GHL_CLIENT_ID / GHL_CLIENT_SECRET are not configured")
    query = {
        "response_type": "code",
        "redirect_uri": settings.ghl_oauth_redirect_uri,
        "client_id": client[0],
        "scope": " ".join(SCOPES),
        "state": state,
    }
    return f"{settings.ghl_chooser_url}?{urlencode(query)}"


async def new_install_link(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, rankr_account_id: str, now: datetime
) -> str:
    """A one-time link that starts the install for ``rankr_account_id``, for whoever opens it first."""
    async with unit_of_work(sessions) as session:
        secret = await installs.issue(session, InstallStateKind.LINK, rankr_account_id, now, INSTALL_LINK_TTL)
    return f"{settings.public_base_url}/oauth/ghl/install?{urlencode({'link': secret})}"


@dataclass(frozen=True, slots=True)
class Installed:
    connection_id: int | None
    location_id: str | None
    company_id: str | None
    pending_locations: tuple[str, ...] = ()


async def activate(
    session: AsyncSession, rankr_account_id: str, location_id: str, now: datetime
) -> Connection:
    """The connection of this pair, created or re-enabled (ValueError if either side is taken)."""
    connection = await connections.ensure(session, rankr_account_id, location_id, now)
    if connection.status != ConnectionStatus.ACTIVE:
        connection.status = ConnectionStatus.ACTIVE
        connection.updated_at = now
    return connection


async def store_answer(
    session: AsyncSession,
    cipher: TokenCipher,
    answer: TokenAnswer,
    kind: CredentialKind,
    now: datetime,
    connection_id: int | None = None,
) -> None:
    """Store the tokens of a token answer as the credentials of a connection (or of the agency)."""
    await credentials.put(
        session,
        cipher,
        kind=kind,
        connection_id=connection_id,
        company_id=answer.company_id,
        access_token=answer.access_token,
        refresh_token=answer.refresh_token,
        expires_at=expiry(now, answer),
        scope=answer.scope,
        now=now,
    )


async def connect_agency_location(
    sessions: async_sessionmaker[AsyncSession],
    oauth: GhlOAuthClient,
    agency_token: str,
    cipher: TokenCipher,
    *,
    company_id: str,
    location_id: str,
    rankr_account_id: str,
    now: datetime,
) -> int:
    """Mint a location token from the agency's and store it with a new (or re-enabled) connection."""
    answer = await oauth.location_token(agency_token, company_id, location_id)
    async with unit_of_work(sessions) as session:
        connection = await activate(session, rankr_account_id, location_id, now)
        answer = replace(answer, company_id=company_id, refresh_token=None)
        await store_answer(session, cipher, answer, CredentialKind.AGENCY_LOCATION, now, connection.id)
        return connection.id


async def complete_install(
    sessions: async_sessionmaker[AsyncSession],
    oauth: GhlOAuthClient,
    cipher: TokenCipher,
    answer: TokenAnswer,
    rankr_account_id: str,
    now: datetime,
) -> Installed:
    if answer.user_type != "Company" and answer.location_id:
        async with unit_of_work(sessions) as session:
            connection = await activate(session, rankr_account_id, answer.location_id, now)
            await store_answer(session, cipher, answer, CredentialKind.OAUTH, now, connection.id)
            return Installed(connection.id, answer.location_id, answer.company_id)
    if not answer.company_id:
        raise ValueError("GHL's answer names neither a location nor a company")
    async with unit_of_work(sessions) as session:
        await store_answer(session, cipher, answer, CredentialKind.AGENCY, now)
    if len(answer.approved_locations) != 1:
        return Installed(None, None, answer.company_id, answer.approved_locations)
    [location] = answer.approved_locations
    connection_id = await connect_agency_location(
        sessions,
        oauth,
        answer.access_token,
        cipher,
        company_id=answer.company_id,
        location_id=location,
        rankr_account_id=rankr_account_id,
        now=now,
    )
    return Installed(connection_id, location, answer.company_id)


# -- routes ------------------------------------------------------------------------------------------


def page(title: str, message: str, status: int = 200, *, items: list[str] | None = None) -> HTMLResponse:
    rows = "".join(f"<li>{html.escape(item)}</li>" for item in items or [])
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:50em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f"{f'<ul>{rows}</ul>' if rows else ''}</body></html>",
        status_code=status,
    )


class InstallLinkRequest(BaseModel):
    rankr_account_id: str = Field(alias="rankrAccountId", min_length=1, max_length=255)


@admin_routes.post(
    "/install-links",
    summary="A one-time link that installs the GHL app on a location for this Rankr account",
)
async def create_install_link(request: Request, body: InstallLinkRequest) -> dict[str, str]:
    now = request.app.state.clock()
    url = await new_install_link(
        request.app.state.sessions, request.app.state.settings, body.rankr_account_id, now
    )
    return {"url": url, "expiresAt": (now + INSTALL_LINK_TTL).isoformat()}


_START_NEEDS = (
    "starting an install needs the admin's credentials ('Authorization: Bearer <ADMIN_TOKEN>', or sign in "
    "on /status) or a one-time install link ('rankr-ghl-sync connections install-link')"
)


@router.get("/oauth/ghl/install", summary="Start the GHL marketplace install (redirects to GHL)")
async def start_install(
    request: Request,
    rankr_account_id: Annotated[str | None, Query(alias="rankrAccountId")] = None,
    link: Annotated[str | None, Query(description="a one-time install link's secret")] = None,
) -> Response:
    settings: Settings = request.app.state.settings
    sessions = request.app.state.sessions
    now = request.app.state.clock()
    if link is not None:
        async with unit_of_work(sessions) as session:
            used = await installs.use(session, InstallStateKind.LINK, link, now)
        if used.rankr_account_id is None:
            log.warning("install.link_refused")
            return page("The install cannot start", used.refusal or "", 403)
        account = used.rankr_account_id
    else:
        if not request_is_admin(request):
            raise ProblemError(401, "Unauthorized", _START_NEEDS, headers={"WWW-Authenticate": "Bearer"})
        account = (rankr_account_id or settings.rankr_account_id or "").strip()
        if not account and settings.sandbox_mode and settings.connection_seed is not None:
            account = settings.connection_seed.rankr_account_id
        if not account:
            raise ProblemError(400, "Bad Request", "rankrAccountId is required: the Rankr account to link")
        if len(account) > 255:
            raise ProblemError(400, "Bad Request", "rankrAccountId is too long")
    if settings.ghl_oauth_client is None:
        raise ProblemError(503, "Service Unavailable", "GHL_CLIENT_ID / GHL_CLIENT_SECRET are not configured")
    ttl = timedelta(seconds=STATE_TTL_SECONDS)
    async with unit_of_work(sessions) as session:
        state = await installs.issue(session, InstallStateKind.STATE, account, now, ttl)
    answer = RedirectResponse(install_url(settings, state), status_code=302)
    # SameSite=Lax: GHL sends the browser back with a top-level GET from its own site.
    answer.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_TTL_SECONDS,
        path="/oauth/ghl",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return answer


@router.get(
    "/oauth/ghl/callback",
    summary="Where GHL sends the admin back after the install",
    response_class=HTMLResponse,
)
async def install_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> HTMLResponse:
    answer = await _finish_install(request, code, state, error, error_description)
    answer.delete_cookie(STATE_COOKIE, path="/oauth/ghl", httponly=True, samesite="lax")
    return answer


async def _finish_install(
    request: Request, code: str | None, state: str | None, error: str | None, error_description: str | None
) -> HTMLResponse:
    registry = request.app.state.registry
    cipher: TokenCipher = registry.tokens.cipher
    if error:
        log.warning("install.refused_by_ghl", extra={"error": error[:100]})
        detail = f"GHL answered: {error}" + (f" ({error_description})" if error_description else "")
        return page("The app was not installed", detail[:500], 400)
    async with unit_of_work(request.app.state.sessions) as session:
        used = await installs.use(
            session,
            InstallStateKind.STATE,
            state or "",
            request.app.state.clock(),
            browser_secret=request.cookies.get(STATE_COOKIE),
            check_browser=True,
        )
    if used.rankr_account_id is None:
        log.warning("install.bad_state", extra={"reason": used.refusal})
        return page("The app was not installed", used.refusal or "", 400)
    rankr_account = used.rankr_account_id
    if not code:
        return page("The app was not installed", "GHL sent no authorization code.", 400)
    oauth = registry.ghl_oauth()
    try:
        answer = await oauth.exchange_code(code)
    except UpstreamError as exc:
        log.warning("install.exchange_failed", extra={"status": exc.status})
        return page("The app was not installed", f"GHL refused the authorization code ({exc.message}).", 502)
    try:
        done = await complete_install(
            request.app.state.sessions, oauth, cipher, answer, rankr_account, request.app.state.clock()
        )
    except ValueError as exc:
        return page("The app was not installed", str(exc), 409)
    except UpstreamError as exc:
        return page("The app was not installed", f"GHL refused the location token ({exc.message}).", 502)
    log.info("install.completed", extra={"connection": done.connection_id, "location": done.location_id})
    if done.connection_id is not None:
        # The new connection is checked at once (read-only calls), so the admin sees a problem now.
        [verification] = await request.app.state.verifier(done.connection_id)
        return page(
            "Connected",
            f"GHL location {done.location_id} is now synced with Rankr account {rankr_account} "
            f"(connection {done.connection_id}).",
            items=[f"Verification: {verification.line()}"],
        )
    return page(
        "Agency connected",
        f"The app is installed for agency {done.company_id}. Link each location to its Rankr account with "
        "'rankr-ghl-sync connections add --ghl-location LOCATION --rankr-account ACCOUNT':",
        items=list(done.pending_locations),
    )
