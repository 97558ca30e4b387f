"""Verifying a connection: read-only calls to GHL and Rankr through its own clients, the outcome stored.

GHL (docs: ../shared/ghl/openapi/locations.json ``get-location``, docs/oauth/Scopes.md):

- ``GET /locations/{locationId}`` proves the token and the location and reads the location's name.
  It needs ``locations.readonly``, which the sync itself does not: a token without it (401 "not
  authorized for this scope") is not a failure; a contacts read then proves the location and the
  name stays unknown.
- The scopes the sync needs (``REQUIRED_GHL_SCOPES``) and the console's mapping reads
  (``CONSOLE_GHL_SCOPES``: GHL's custom fields and users): an OAuth credential's stored ``scope`` says
  which were granted; a Private Integration token has no introspection, so each read scope is probed
  with a cheap read that needs it (``contacts.readonly``: ``GET /contacts/?limit=1``;
  ``locations/tasks.readonly``: the location task search). ``contacts.write`` cannot be probed
  without writing, so for such a token it is not checked; nor are the console's scopes, whose
  absence the mapping page itself reports.

Rankr: the client-credentials token and ``GET /contacts?limit=1``; a contact read back must belong to
the connection's account.

Each answer is classified into a ``Problem`` (``classify_ghl``, ``classify_rankr``: pure, table-tested):
a stable code, the reason in plain words, and what to do. An upstream that is down or answers 5xx
gives an *unverifiable* problem ("could not verify"), never a failure of the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.connections import credentials
from app.connections import repository as connections
from app.connections.models import Connection, ConnectionVerification, CredentialKind, CredentialState
from app.db import unit_of_work
from app.errors import OutOfBudget, PermanentUpstreamError, TransientUpstreamError, UpstreamError
from app.integrations.ghl.tokens import NeedsReauth
from app.integrations.rankr.client import SCOPES as RANKR_SCOPES
from app.integrations.registry import UpstreamRegistry, Upstreams
from app.kit.clock import Clock
from app.registration import install_link

log = logging.getLogger(__name__)

REQUIRED_GHL_SCOPES = ("contacts.readonly", "contacts.write", "locations/tasks.readonly")
# What the console's mapping page reads: GHL's custom fields and users.
CONSOLE_GHL_SCOPES = ("locations/customFields.readonly", "users.readonly")
# All a token should carry: what the sync and the console need, and locations.readonly for the name.
WANTED_GHL_SCOPES = tuple(sorted({*REQUIRED_GHL_SCOPES, *CONSOLE_GHL_SCOPES, "locations.readonly"}))
# The GHL read that proves each scope, and the scope each read needs.
GHL_STEP_SCOPES = {
    "location": "locations.readonly",
    "contacts": "contacts.readonly",
    "tasks": "locations/tasks.readonly",
}
# Codes of a check that could not be made (the upstream was down): the connection is not proven
# either way, and nothing needs changing on the operator's side.
UNVERIFIABLE = frozenset({"ghl_unreachable", "rankr_unreachable"})


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a connection is not verified: a stable code, the reason, and what to do about it."""

    code: str
    reason: str
    fix: str

    @property
    def conclusive(self) -> bool:
        """False when the check could not be made (upstream down): "could not verify", not "failed"."""
        return self.code not in UNVERIFIABLE

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "reason": self.reason, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class Verification:
    connection_id: int
    checked_at: datetime
    problem: Problem | None
    location_name: str | None

    @property
    def verified(self) -> bool:
        return self.problem is None

    def as_json(self) -> dict[str, Any]:
        """As on /status (``verification``), with the connection's id."""
        code = self.problem.code if self.problem else None
        return {
            "connectionId": self.connection_id,
            "verified": self.verified,
            "state": verification_state(self.verified, code),
            "checkedAt": self.checked_at.isoformat(),
            "problem": self.problem.as_json() if self.problem else None,
            "locationName": self.location_name,
        }

    def line(self) -> str:
        """One line for a terminal: verified (and the location's name), or the problem and its fix."""
        return describe(self.verified, self.problem, self.location_name)


def describe(verified: bool, problem: Problem | None, location_name: str | None) -> str:
    if verified or problem is None:
        where = f"GHL location '{location_name}'" if location_name else "GHL location name unknown"
        return f"verified ({where})"
    verdict = "failed" if problem.conclusive else "could not verify"
    return f"{verdict} [{problem.code}]: {problem.reason}. Fix: {problem.fix}"


@dataclass(frozen=True, slots=True)
class Context:
    """What the fixes name: where to install the app, which location and account, which credential."""

    connection_id: int
    location_id: str
    rankr_account_id: str
    install_url: str
    credential: str  # "oauth", "private" (stored) or "settings" (GHL_PRIVATE_TOKEN)

    def reinstall(self) -> str:
        return f"install the app on location {self.location_id} again at {self.install_url}"

    def new_private_token(self, scopes: Sequence[str]) -> str:
        where = (
            "set GHL_PRIVATE_TOKEN to it"
            if self.credential == "settings"
            else f"store it with 'rankr-ghl-sync connections add --ghl-location {self.location_id} "
            f"--rankr-account {self.rankr_account_id} --ghl-token TOKEN'"
        )
        return (
            f"create a Private Integration token in GHL location {self.location_id} with the scopes "
            f"{', '.join(scopes)}, and {where}"
        )

    def recheck(self) -> str:
        return (
            "nothing to change if the upstream is down; the check runs again at start-up, or now with "
            f"'rankr-ghl-sync connections verify {self.connection_id}'"
        )


def NEEDS_REAUTH(context: Context) -> Problem:  # noqa: N802 - reads as the constant problem it is
    return Problem(
        "ghl_needs_reauth", "GHL refused the app's stored grant (uninstalled or revoked)", context.reinstall()
    )


def _scope_message(message: str) -> bool:
    return "scope" in message.lower()


def classify_ghl(exc: UpstreamError, step: str, context: Context) -> Problem:
    """The problem a GHL answer to a verification read (``step``: location, contacts, tasks) means."""
    status, message = exc.status, exc.message
    if isinstance(exc, TransientUpstreamError):
        answer = f"HTTP {status}" if status is not None else message
        return Problem("ghl_unreachable", f"GHL did not answer the check ({answer})", context.recheck())
    if status in (401, 403) and _scope_message(message):
        scope = GHL_STEP_SCOPES[step]
        fix = (
            context.reinstall()
            if context.credential == "oauth"
            else context.new_private_token(WANTED_GHL_SCOPES)
        )
        return Problem("ghl_scope_missing", f"the GHL token lacks the scope {scope} ({message})", fix)
    if status == 401:
        fix = (
            context.reinstall()
            if context.credential == "oauth"
            else context.new_private_token(WANTED_GHL_SCOPES)
        )
        return Problem(
            "ghl_token_refused", f"GHL refused the token: it is expired or revoked ({message})", fix
        )
    if status in (400, 403, 404):
        variable = (
            "GHL_LOCATION_ID" if context.credential == "settings" else "the connection's --ghl-location"
        )
        return Problem(
            "ghl_location_unknown",
            f"GHL location {context.location_id} is unknown or the token has no access to it ({message})",
            f"check {variable}: it is the sub-account id in GHL's address (.../location/ID/...), and the "
            "token must belong to that sub-account",
        )
    return Problem(
        "ghl_refused",
        f"GHL refused the check with HTTP {status} ({message})",
        "check the connection's GHL settings, then run "
        f"'rankr-ghl-sync connections verify {context.connection_id}' again",
    )


def classify_rankr(exc: UpstreamError, context: Context) -> Problem:
    """The problem a Rankr answer to the token request or the contacts read means."""
    status, message = exc.status, exc.message
    if isinstance(exc, TransientUpstreamError):
        answer = f"HTTP {status}" if status is not None else message
        return Problem("rankr_unreachable", f"Rankr did not answer the check ({answer})", context.recheck())
    error = exc.body.get("error")
    if status == 401:
        return Problem(
            "rankr_credentials_refused",
            f"Rankr refused the client credentials ({message})",
            "check RANKR_CLIENT_ID and RANKR_CLIENT_SECRET: they must be a client of Rankr account "
            f"{context.rankr_account_id}",
        )
    if status == 403 or error == "invalid_scope" or _scope_message(message):
        return Problem(
            "rankr_scope_missing",
            f"the Rankr client may not read or write what the sync needs ({message})",
            f"grant the Rankr client the scopes {RANKR_SCOPES.replace(' ', ', ')}",
        )
    if status == 404:
        return Problem(
            "rankr_account_unknown",
            f"Rankr does not know the account of these credentials ({message})",
            f"check RANKR_API_BASE_URL and that the client belongs to account {context.rankr_account_id}",
        )
    return Problem(
        "rankr_refused",
        f"Rankr refused the check with HTTP {status} ({message})",
        "check RANKR_API_BASE_URL and the Rankr client settings",
    )


def _what_lacks(missing: Sequence[str]) -> str:
    """What stops working without ``missing``: the sync, or only the console's mapping page."""
    if any(scope in REQUIRED_GHL_SCOPES for scope in missing):
        return ""
    return " (the sync runs; the console's mapping cannot read GHL's custom fields and users)"


def missing_granted_scopes(scope: str | None) -> list[str]:
    """The scopes the sync and the console need that an OAuth grant's ``scope`` lacks (None: the grant
    did not say)."""
    if scope is None:
        return []
    granted = set(scope.split())
    return [wanted for wanted in (*REQUIRED_GHL_SCOPES, *CONSOLE_GHL_SCOPES) if wanted not in granted]


async def check_ghl(
    upstreams: Upstreams, context: Context, granted: str | None
) -> tuple[Problem | None, str | None]:
    """The GHL problem of a connection (None: verified) and its location's name if it could be read."""
    ghl = upstreams.ghl
    name: str | None = None
    step = "location"
    try:
        try:
            location = await ghl.get_location()
            name = location.name
        except PermanentUpstreamError as exc:
            if not (exc.status in (401, 403) and _scope_message(exc.message)):
                raise
            # No locations.readonly: the contacts read below proves the location instead.
            step = "contacts"
            await ghl.first_contacts()
        if context.credential == "oauth" and granted is not None:
            missing = missing_granted_scopes(granted)
            if missing:
                return (
                    Problem(
                        "ghl_scope_missing",
                        f"the app was installed without the scope(s) {', '.join(missing)}"
                        + _what_lacks(missing),
                        context.reinstall(),
                    ),
                    name,
                )
            return None, name
        step = "contacts"
        await ghl.first_contacts()
        step = "tasks"
        await ghl.first_tasks()
    except NeedsReauth:
        return NEEDS_REAUTH(context), name
    except OutOfBudget as exc:
        return Problem(
            "ghl_unreachable", f"no request to GHL allowed now: {exc.reason}", context.recheck()
        ), name
    except UpstreamError as exc:
        return classify_ghl(exc, step, context), name
    return None, name


async def check_rankr(upstreams: Upstreams, context: Context) -> Problem | None:
    # The token request is part of the check: a token this process holds proves nothing new.
    upstreams.rankr.forget_token()
    try:
        contacts, _ = await upstreams.rankr.list_contacts(limit=1)
    except OutOfBudget as exc:
        return Problem(
            "rankr_unreachable", f"no request to Rankr allowed now: {exc.reason}", context.recheck()
        )
    except UpstreamError as exc:
        return classify_rankr(exc, context)
    foreign = [contact for contact in contacts if contact.account_id != context.rankr_account_id]
    if foreign:
        return Problem(
            "rankr_account_mismatch",
            f"the Rankr credentials belong to account {foreign[0].account_id}, "
            f"not to the connection's account {context.rankr_account_id}",
            f"set RANKR_CLIENT_ID and RANKR_CLIENT_SECRET to a client of account {context.rankr_account_id}",
        )
    return None


async def verify(
    sessions: async_sessionmaker[AsyncSession],
    registry: UpstreamRegistry,
    settings: Settings,
    clock: Clock,
    connection: Connection,
) -> Verification:
    """Check one connection against GHL and Rankr and store the outcome (committed on its own)."""
    async with sessions() as session:
        credential = await credentials.for_connection(session, connection.id)
    if credential is None:
        kind = "settings"
    elif credential.kind == CredentialKind.PRIVATE:
        kind = "private"
    else:
        kind = "oauth"
    context = Context(
        connection.id,
        connection.ghl_location_id,
        connection.rankr_account_id,
        install_link(settings, connection.rankr_account_id),
        kind,
    )
    location_name: str | None = None
    problems: list[Problem] = []
    if credential is not None and credential.state == CredentialState.NEEDS_REAUTH:
        problems.append(NEEDS_REAUTH(context))
    elif credential is None and settings.ghl_token is None:
        problems.append(
            Problem(
                "ghl_no_credentials",
                f"there is no GHL credential for location {context.location_id}",
                f"install the app at {context.install_url}, or set GHL_PRIVATE_TOKEN "
                "(a Private Integration token of the location)",
            )
        )
    # The check is of the credentials stored now, not of the ones this process last used.
    registry.tokens.forget(connection.id)
    try:
        upstreams = registry.for_connection(connection)
    except UpstreamError as exc:
        problems.append(
            Problem(
                "rankr_not_configured",
                exc.message,
                "set RANKR_CLIENT_ID and RANKR_CLIENT_SECRET (a client of the Rankr account)",
            )
        )
    else:
        if not problems:
            ghl_problem, location_name = await check_ghl(
                upstreams, context, credential.scope if credential is not None else None
            )
            if ghl_problem is not None:
                problems.append(ghl_problem)
        rankr_problem = await check_rankr(upstreams, context)
        if rankr_problem is not None:
            problems.append(rankr_problem)
    # A definite failure says more than a check that could not be made.
    problem = next((p for p in problems if p.conclusive), problems[0] if problems else None)
    outcome = Verification(connection.id, clock(), problem, location_name)
    async with unit_of_work(sessions) as session:
        await connections.save_verification(
            session,
            outcome.connection_id,
            checked_at=outcome.checked_at,
            problem=problem.as_json() if problem else None,
            location_name=location_name,
        )
    log.log(
        logging.INFO if outcome.verified else logging.WARNING,
        "connections.verified" if outcome.verified else "connections.not_verified",
        extra={"connection": connection.id, "problem": problem.code if problem else None},
    )
    return outcome


async def verify_all(
    sessions: async_sessionmaker[AsyncSession],
    registry: UpstreamRegistry,
    settings: Settings,
    clock: Clock,
    *,
    connection_id: int | None = None,
    active_only: bool = False,
) -> list[Verification]:
    """Verify one connection (``connection_id``) or all (only the active ones with ``active_only``)."""
    async with sessions() as session:
        rows = await connections.to_verify(session, connection_id, active_only=active_only)
    return [await verify(sessions, registry, settings, clock, row) for row in rows]


def verification_state(verified: bool, code: str | None) -> str:
    if verified:
        return "verified"
    return "unverifiable" if code in UNVERIFIABLE else "failed"


def verification_json(row: ConnectionVerification | None) -> dict[str, Any]:
    """A connection's ``verification`` object on /status.

    ``state``: ``verified``; ``failed`` (a problem to fix); ``unverifiable`` (an upstream did not
    answer the check); ``unchecked`` (not checked yet).
    """
    if row is None:
        return {
            "verified": False,
            "state": "unchecked",
            "checkedAt": None,
            "problem": None,
            "locationName": None,
        }
    problem = (
        {"code": row.problem_code, "reason": row.problem_reason or "", "fix": row.problem_fix or ""}
        if row.problem_code
        else None
    )
    return {
        "verified": row.verified,
        "state": verification_state(row.verified, row.problem_code),
        "checkedAt": row.checked_at.isoformat(),
        "problem": problem,
        "locationName": row.location_name,
    }


@dataclass(frozen=True, slots=True)
class Verifier:
    """``verify_all`` bound to a running service's database, clients and settings (``app.state.verifier``),
    so routes can verify without importing the integrations they are not allowed to know."""

    sessions: async_sessionmaker[AsyncSession]
    registry: UpstreamRegistry
    settings: Settings
    clock: Clock

    async def __call__(
        self, connection_id: int | None = None, *, active_only: bool = False
    ) -> list[Verification]:
        return await verify_all(
            self.sessions,
            self.registry,
            self.settings,
            self.clock,
            connection_id=connection_id,
            active_only=active_only,
        )


def unconfigured_hint(settings: Settings) -> str:
    """How to add the first connection (for /status, the status command and the start-up log)."""
    seed = {
        "GHL_LOCATION_ID": settings.ghl_location_id,
        "GHL_PRIVATE_TOKEN": settings.ghl_private_token,
        "RANKR_ACCOUNT_ID": settings.rankr_account_id,
        "RANKR_CLIENT_ID": settings.rankr_client_id,
        "RANKR_CLIENT_SECRET": settings.rankr_client_secret,
        "RANKR_API_BASE_URL": settings.rankr_api_base_url,
    }
    missing = [name for name, value in seed.items() if not value]
    install = f"install the GHL app at {install_link(settings, None)}"
    if len(missing) < len(seed):
        # Part of the settings' connection is set: name what is missing.
        return (
            f"the settings describe no connection: {', '.join(missing)} not set; set them and restart, "
            f"or {install}, or run 'rankr-ghl-sync connections add'"
        )
    return (
        f"no connection yet: {install}, or set {', '.join(seed)} and restart, "
        "or run 'rankr-ghl-sync connections add'"
    )
