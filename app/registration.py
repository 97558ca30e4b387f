"""What to register where so GHL and Rankr reach this service: ``rankr-ghl-sync urls``.

Every URL is built on ``Settings.public_base_url``; the event lists come from what the intake accepts
and the sync engine applies, so a new event type shows up here without another list to keep.
"""

from __future__ import annotations

import ipaddress
from typing import Any, get_args
from urllib.parse import urlencode, urlsplit

from app.config import Settings

# Names the intake accepts that GHL's marketplace does not offer to subscribe to: the bodies of the
# AppInstall / AppUninstall events say INSTALL / UNINSTALL, and GHL's catalogue has no TaskUpdate.
NOT_SUBSCRIBABLE = frozenset({"INSTALL", "UNINSTALL", "TaskUpdate"})
# The one scope only an agency install uses (minting location tokens); a Private Integration needs
# the others.
AGENCY_ONLY_SCOPE = "oauth.write"


def applied_types() -> frozenset[str]:
    """Every event type the sync engine applies (the rest is stored and skipped)."""
    from app.integrations.ghl.app_events import APP_EVENTS
    from app.sync.coalesce import CONTACT_TYPES, NOTE_TYPES, TASK_TYPES

    return CONTACT_TYPES | TASK_TYPES | NOTE_TYPES | APP_EVENTS


def ghl_events() -> list[str]:
    """The GHL webhook events to tick in the marketplace app: accepted by the intake and applied."""
    from app.integrations.ghl import endpoints
    from app.integrations.ghl.app_events import APP_EVENTS

    accepted = endpoints.CONTACT_EVENTS | endpoints.CHILD_EVENTS | endpoints.APPOINTMENT_EVENTS | APP_EVENTS
    return sorted((accepted & applied_types()) - NOT_SUBSCRIBABLE)


def rankr_events() -> list[str]:
    """The Rankr webhook events to subscribe: those the intake's schema accepts and the engine applies."""
    from app.integrations.rankr.schemas import ContactEventType, NoteEventType, TaskEventType

    accepted = {name for kind in (ContactEventType, TaskEventType, NoteEventType) for name in get_args(kind)}
    return sorted(accepted & applied_types())


def install_link(settings: Settings, rankr_account_id: str | None) -> str:
    """The URL that starts the marketplace install for a Rankr account (``GET /oauth/ghl/install``)."""
    query = f"?{urlencode({'rankrAccountId': rankr_account_id})}" if rankr_account_id else ""
    return f"{settings.public_base_url}/oauth/ghl/install{query}"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url_warnings(settings: Settings, fallback: str | None = None) -> list[str]:
    """One line per reason GHL or Rankr cannot reach the URLs this service gives out (none in sandbox
    mode, where the sandboxes call it in-process or on loopback). ``fallback``: the base used while
    PUBLIC_URL is not set, when it is not ``LOCAL_URL`` (``serve`` derives it from --host/--port)."""
    if settings.sandbox_mode:
        return []
    if settings.public_url is None:
        used = f"{fallback} from --host/--port" if fallback else settings.public_base_url
        return [
            "PUBLIC_URL is not set: GHL and Rankr need it (the service's HTTPS address) to reach the "
            f"webhooks and the OAuth callback; using {used}, which they cannot reach"
        ]
    if urlsplit(settings.public_url).scheme == "http" and not is_loopback(settings.public_url):
        return [
            f"PUBLIC_URL {settings.public_url} is plain http: GHL delivers webhooks and OAuth "
            "redirects only over HTTPS; put a TLS endpoint in front and set PUBLIC_URL to it"
        ]
    return []


def registration(settings: Settings) -> dict[str, Any]:
    """Everything to register, as ``urls --json`` prints it."""
    from app.integrations.ghl.install import SCOPES
    from app.integrations.rankr.client import SCOPES as RANKR_SCOPES

    base = settings.public_base_url
    secrets = len(settings.rankr_secrets)
    oauth = settings.ghl_oauth_client
    return {
        "publicUrl": base,
        "publicUrlSet": settings.public_url is not None,
        "sandbox": settings.sandbox_mode,
        "warnings": public_url_warnings(settings),
        "ghl": {
            "webhookUrl": f"{base}/webhooks/ghl",
            "events": ghl_events(),
            "redirectUri": settings.ghl_oauth_redirect_uri,
            "installUrl": install_link(settings, settings.rankr_account_id),
            "clientIdSet": oauth is not None,
            "scopes": list(SCOPES),
            "privateIntegrationScopes": [scope for scope in SCOPES if scope != AGENCY_ONLY_SCOPE],
        },
        "rankr": {
            "webhookUrl": f"{base}/webhooks/rankr",
            "events": rankr_events(),
            "secretSetting": "RANKR_WEBHOOK_SECRETS",
            "secretsConfigured": secrets,
            "apiScopes": RANKR_SCOPES.split(),
        },
    }


def as_text(sheet: dict[str, Any]) -> str:
    """The registration sheet for a person: where each value goes, in the order it is needed."""
    ghl, rankr = sheet["ghl"], sheet["rankr"]
    configured = rankr["secretsConfigured"]
    secret_state = f"{configured} set" if configured else "none set: Rankr webhooks are refused (401)"
    install = ghl["installUrl"]
    if "rankrAccountId" not in install:
        install += "?rankrAccountId=<Rankr account id>"
    lines = [
        f"public URL  {sheet['publicUrl']}"
        + ("" if sheet["publicUrlSet"] else "   (PUBLIC_URL not set: derived)")
        + ("   [sandbox mode]" if sheet["sandbox"] else ""),
        "",
        "GHL marketplace app (Advanced Settings)",
        f"  webhook URL      {ghl['webhookUrl']}",
        f"  events to tick   {', '.join(ghl['events'])}",
        f"  redirect URL     {ghl['redirectUri']}",
        f"  scopes           {' '.join(ghl['scopes'])}",
        f"  install (open)   {install}"
        + ("" if ghl["clientIdSet"] else "   (needs GHL_CLIENT_ID and GHL_CLIENT_SECRET)"),
        "  or a Private Integration token (GHL_PRIVATE_TOKEN) with the scopes "
        + " ".join(ghl["privateIntegrationScopes"]),
        "",
        "Rankr webhook endpoint",
        f"  URL              {rankr['webhookUrl']}",
        f"  events           {', '.join(rankr['events'])}",
        f"  signing secret   paste the endpoint's whsec_... into {rankr['secretSetting']} ({secret_state})",
        f"  API credentials  scopes {' '.join(rankr['apiScopes'])} (RANKR_CLIENT_ID, RANKR_CLIENT_SECRET)",
    ]
    return "\n".join(lines)
