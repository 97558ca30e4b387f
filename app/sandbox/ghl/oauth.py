"""GHL's OAuth 2.0 in the sandbox: the location chooser, ``/oauth/token`` and ``/oauth/locationToken``.

Faithful to openapi/oauth.json and docs/oauth/Authorization.md:

- ``GET /oauth/chooselocation?response_type=code&client_id=..&redirect_uri=..&scope=..&state=..`` is
  the page an admin approves the install on (the location, or the whole agency); approving redirects
  to ``redirect_uri`` with ``code`` (single use, short-lived) and ``state``; denying redirects with
  ``error=access_denied``. Approval also sends the ``INSTALL`` webhook, as GHL does.
- ``POST /oauth/token`` (form-encoded ``GetAccessCodebodyDto``): ``authorization_code`` and
  ``refresh_token`` grants. Every refresh returns a new refresh token and spends the old one: reusing
  it answers 400 ``invalid_grant`` (so two refreshers racing lock the loser out, as in production).
- ``POST /oauth/locationToken`` (form ``companyId``, ``locationId``; agency bearer token and
  ``Version``): a location access token minted from an agency token (no refresh token: mint again).

Access tokens expire after ``ghl_access_token_ttl_seconds`` (a day by default; tests shorten it);
the Contacts API accepts live ones for their location and answers 401 ``Invalid JWT`` otherwise.

Control routes (``/_sandbox/oauth``): counters, token lifetime, the Private Integration token's
scopes, "expire every access token now", revoke grants, uninstall (sends ``UNINSTALL``), and "lose
the next N refresh answers": the sandbox rotates the tokens and then answers 504, as a proxy does
when the upstream's answer is lost.
"""

from __future__ import annotations

import hmac
import html
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from app.sandbox.side import CONTROL_PREFIX

if TYPE_CHECKING:
    from app.sandbox.ghl.sandbox import GhlSandbox

LOCATION = "Location"
COMPANY = "Company"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a code or token stands for: the installed location (or agency) and the approved scopes."""

    user_type: str
    company_id: str
    location_id: str | None
    scopes: str
    user_id: str = "SbxUser000000000001"
    approved_locations: tuple[str, ...] = ()


@dataclass(slots=True)
class _Issued:
    grant: Grant
    expires_at: float  # monotonic seconds


@dataclass
class OAuthCounters:
    code_exchanges: int = 0
    refreshes: int = 0
    location_tokens: int = 0
    rejected_refreshes: int = 0


@dataclass
class OAuthSettings:
    access_token_ttl_seconds: float
    lose_refresh_answers: int = 0


@dataclass
class OAuthServer:
    """Codes, access and refresh tokens the sandbox issued, and the switches tests turn."""

    client_id: str
    client_secret: str
    default_ttl: float
    code_ttl: float
    monotonic: Callable[[], float]
    settings: OAuthSettings = field(init=False)
    counters: OAuthCounters = field(default_factory=OAuthCounters)
    _codes: dict[str, tuple[_Issued, str]] = field(default_factory=dict)
    _access: dict[str, _Issued] = field(default_factory=dict)
    _refresh: dict[str, Grant] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings = OAuthSettings(self.default_ttl)

    def clear(self) -> None:
        self._codes.clear()
        self._access.clear()
        self._refresh.clear()
        self.counters = OAuthCounters()
        self.settings = OAuthSettings(self.default_ttl)

    def client_valid(self, client_id: str, client_secret: str | None) -> bool:
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        if client_secret is None:
            return id_ok
        return id_ok and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def new_code(self, grant: Grant, redirect_uri: str) -> str:
        code = secrets.token_hex(20)
        self._codes[code] = (_Issued(grant, self.monotonic() + self.code_ttl), redirect_uri)
        return code

    def redeem_code(self, code: str, redirect_uri: str | None) -> Grant | None:
        entry = self._codes.pop(code, None)  # single use, even when the answer is an error
        if entry is None:
            return None
        issued, bound_uri = entry
        if issued.expires_at <= self.monotonic():
            return None
        if redirect_uri is not None and redirect_uri != bound_uri:
            return None
        return issued.grant

    def spend_refresh(self, refresh_token: str) -> Grant | None:
        return self._refresh.pop(refresh_token, None)

    def issue(self, grant: Grant, *, with_refresh: bool = True) -> dict[str, Any]:
        """A new access token (and refresh token) for ``grant``, as GetAccessCodeSuccessfulResponseDto."""
        ttl = self.settings.access_token_ttl_seconds
        access = "sbx_at_" + secrets.token_urlsafe(32)
        self._access[access] = _Issued(grant, self.monotonic() + ttl)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": round(ttl),
            "scope": grant.scopes,
            "userType": grant.user_type,
            "companyId": grant.company_id,
            "userId": grant.user_id,
        }
        if grant.location_id is not None:
            body["locationId"] = grant.location_id
        if grant.user_type == COMPANY:
            body["approvedLocations"] = list(grant.approved_locations)
            body["isBulkInstallation"] = False
        if with_refresh:
            refresh = "sbx_rt_" + secrets.token_urlsafe(32)
            self._refresh[refresh] = grant
            body["refresh_token"] = refresh
        return body

    def lookup(self, access_token: str) -> Grant | None:
        """The grant of a live access token; None when unknown or expired."""
        issued = self._access.get(access_token)
        if issued is None or issued.expires_at <= self.monotonic():
            return None
        return issued.grant

    def expire_all(self) -> int:
        now = self.monotonic()
        live = [issued for issued in self._access.values() if issued.expires_at > now]
        for issued in live:
            issued.expires_at = now
        return len(live)

    def revoke(self, location_id: str | None = None, company_id: str | None = None) -> int:
        """Forget the refresh and access tokens of a location or company (all when neither is given)."""

        def hit(grant: Grant) -> bool:
            if location_id is None and company_id is None:
                return True
            return (location_id is not None and grant.location_id == location_id) or (
                company_id is not None and grant.company_id == company_id and grant.location_id is None
            )

        gone = [token for token, grant in self._refresh.items() if hit(grant)]
        for token in gone:
            del self._refresh[token]
        for token in [token for token, issued in self._access.items() if hit(issued.grant)]:
            del self._access[token]
        return len(gone)

    def as_json(self) -> dict[str, Any]:
        now = self.monotonic()
        return {
            "codeExchanges": self.counters.code_exchanges,
            "refreshes": self.counters.refreshes,
            "rejectedRefreshes": self.counters.rejected_refreshes,
            "locationTokens": self.counters.location_tokens,
            "liveAccessTokens": sum(1 for issued in self._access.values() if issued.expires_at > now),
            "refreshTokens": len(self._refresh),
            "accessTokenTtlSeconds": self.settings.access_token_ttl_seconds,
            "loseRefreshAnswers": self.settings.lose_refresh_answers,
        }


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """RFC 6749 section 5.2 error answer of the token endpoint."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(params)}", status_code=302)


class OAuthControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token_ttl_seconds: float | None = Field(default=None, gt=0)
    lose_refresh_answers: int | None = Field(default=None, ge=0)
    # The scopes of the Private Integration token (a token created with fewer scopes).
    private_token_scopes: list[str] | None = None


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locationId: str | None = None  # noqa: N815 - GHL's spelling
    companyId: str | None = None  # noqa: N815 - GHL's spelling


def oauth_router(side: GhlSandbox) -> APIRouter:
    """The chooser page and the two token endpoints of ``side``."""
    router = APIRouter()
    server = side.oauth
    config = side.config

    def chooser_error(message: str) -> HTMLResponse:
        return _page("Cannot install this app", f"<p>{html.escape(message)}</p>", status=400)

    @router.get("/oauth/chooselocation", response_class=HTMLResponse)
    async def choose_location(request: Request) -> Response:
        query = request.query_params
        if query.get("response_type") != "code":
            return chooser_error("response_type must be 'code'")
        if not server.client_valid(query.get("client_id", ""), None):
            return chooser_error("unknown client_id")
        if not query.get("redirect_uri"):
            return chooser_error("redirect_uri is required")
        hidden = "".join(
            f"<input type='hidden' name='{name}' value='{html.escape(query.get(name, ''), quote=True)}'>"
            for name in ("client_id", "redirect_uri", "scope", "state")
        )
        scopes = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in query.get("scope", "").split())
        location, company = html.escape(config.ghl_location_id), html.escape(config.ghl_company_id)
        return _page(
            "Choose a sub-account",
            f"<p>The app asks for:</p><ul>{scopes}</ul>"
            f"<form method='post' action=''>{hidden}"
            f"<label><input type='radio' name='choice' value='location' checked> Sub-account {location}"
            f"</label><br><label><input type='radio' name='choice' value='company'> "
            f"The whole agency {company}</label><br>"
            "<button name='decision' value='approve'>Allow</button> "
            "<button name='decision' value='deny'>Cancel</button></form>",
        )

    @router.post("/oauth/chooselocation")
    async def approve(request: Request) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "") for name in ("client_id", "redirect_uri", "scope", "state")}
        if not server.client_valid(values["client_id"], None) or not values["redirect_uri"]:
            return chooser_error("unknown client_id or no redirect_uri")
        extra = {"state": values["state"]} if values["state"] else {}
        if form.get("decision") == "deny":
            return _redirect(values["redirect_uri"], {"error": "access_denied", **extra})
        scopes = " ".join(values["scope"].split())
        if form.get("choice") == "company":
            grant = Grant(
                COMPANY, config.ghl_company_id, None, scopes, approved_locations=(config.ghl_location_id,)
            )
        else:
            grant = Grant(LOCATION, config.ghl_company_id, config.ghl_location_id, scopes)
        code = server.new_code(grant, values["redirect_uri"])
        side.send_app_event("INSTALL", grant)
        return _redirect(values["redirect_uri"], {"code": code, **extra})

    @router.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        value = {name: str(form[name]) if name in form else None for name in form}
        client_id, client_secret, grant_type = (
            value.get("client_id"),
            value.get("client_secret"),
            value.get("grant_type"),
        )
        if not client_id or not client_secret or not grant_type:
            return oauth_error(422, "invalid_request", "client_id, client_secret and grant_type are required")
        if not server.client_valid(client_id, client_secret):
            return oauth_error(401, "invalid_client", "client authentication failed")
        if grant_type == "authorization_code":
            grant = server.redeem_code(value.get("code") or "", value.get("redirect_uri"))
            if grant is None:
                return oauth_error(400, "invalid_grant", "the authorization code is invalid or expired")
            server.counters.code_exchanges += 1
            return JSONResponse(server.issue(grant))
        if grant_type == "refresh_token":
            grant = server.spend_refresh(value.get("refresh_token") or "")
            if grant is None:
                server.counters.rejected_refreshes += 1
                return oauth_error(400, "invalid_grant", "the refresh token is invalid or was already used")
            server.counters.refreshes += 1
            body = server.issue(grant)
            if server.settings.lose_refresh_answers > 0:
                server.settings.lose_refresh_answers -= 1
                return JSONResponse({"statusCode": 504, "message": "Gateway Timeout"}, status_code=504)
            return JSONResponse(body)
        return oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type} is not supported here")

    @router.post("/oauth/locationToken")
    async def location_token(request: Request) -> Response:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        agency = server.lookup(bearer.strip()) if scheme.lower() == "bearer" else None
        if agency is None or agency.user_type != COMPANY:
            return JSONResponse({"statusCode": 401, "message": "Invalid JWT"}, status_code=401)
        if request.headers.get("version") not in config.ghl_api_versions:
            return JSONResponse({"statusCode": 401, "message": "version header is invalid"}, status_code=401)
        form = await request.form()
        company_id, location_id = str(form.get("companyId") or ""), str(form.get("locationId") or "")
        if not company_id or not location_id:
            return JSONResponse(
                {"statusCode": 422, "message": ["companyId and locationId are required"]}, status_code=422
            )
        if company_id != agency.company_id or location_id not in agency.approved_locations:
            return JSONResponse(
                {"statusCode": 400, "message": "Location not found or app not installed"}, status_code=400
            )
        server.counters.location_tokens += 1
        grant = replace(agency, user_type=LOCATION, location_id=location_id, approved_locations=())
        return JSONResponse(server.issue(grant, with_refresh=False))

    return router


def oauth_control_router(side: GhlSandbox) -> APIRouter:
    """``/_sandbox/oauth``: counters and switches of the sandbox's OAuth server."""
    router = APIRouter(prefix=f"{CONTROL_PREFIX}/oauth")
    server = side.oauth

    @router.get("")
    async def oauth_state() -> dict[str, Any]:
        return server.as_json()

    @router.post("")
    async def oauth_control(changes: OAuthControl) -> dict[str, Any]:
        if changes.access_token_ttl_seconds is not None:
            server.settings.access_token_ttl_seconds = changes.access_token_ttl_seconds
        if changes.lose_refresh_answers is not None:
            server.settings.lose_refresh_answers = changes.lose_refresh_answers
        if changes.private_token_scopes is not None:
            side.private_token_scopes = frozenset(changes.private_token_scopes)
        return server.as_json()

    @router.post("/expire")
    async def expire() -> dict[str, Any]:
        """Every access token issued so far expires now (refresh tokens stay valid)."""
        return {"expired": server.expire_all()}

    @router.post("/revoke")
    async def revoke(target: Revoke) -> dict[str, Any]:
        """Forget the grants of a location or agency: their next refresh answers invalid_grant."""
        return {"revoked": server.revoke(target.locationId, target.companyId)}

    @router.post("/uninstall")
    async def uninstall(target: Revoke) -> dict[str, Any]:
        """The admin uninstalls the app: grants are revoked and the UNINSTALL webhook is sent."""
        revoked = server.revoke(target.locationId, target.companyId)
        company = target.companyId or side.config.ghl_company_id
        side.send_app_event("UNINSTALL", Grant(LOCATION, company, target.locationId, ""))
        return {"revoked": revoked}

    return router
