"""``/admin/*``: operator routes, all behind ``ADMIN_TOKEN`` (a bearer token compared in constant time).

Each feature module makes its own ``admin_router()``, which the app factory includes; every route
on one requires the token. ``AdminGate``
checks it before FastAPI reads a request's body (which it does before running any dependency), so
a stranger's upload is refused unread; ``require_admin`` keeps the rule in the OpenAPI document.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Request, Response
from itsdangerous import BadSignature, TimestampSigner

from app.config import Settings
from app.connections.models import ConnectionId
from app.errors import ProblemError
from app.kit.guards import ASGIApp, Receive, Scope, Send, send_problem
from app.ops.openapi import problem


def is_admin(settings: Settings, authorization: str | None) -> bool:
    """True when ``authorization`` carries the admin token (or, with none set, in sandbox mode only)."""
    if settings.admin_token is None:
        # With no admin token the admin surface is open only in sandbox mode (a local playground).
        return settings.sandbox_mode
    expected = f"Bearer {settings.admin_token.get_secret_value()}"
    return authorization is not None and hmac.compare_digest(authorization.encode(), expected.encode())


# A browser cannot send Authorization: once it has shown the admin token (the status page's form), it
# holds a signed session cookie that expires. Signed with the admin token, so changing the token ends
# every session.
SESSION_COOKIE = "rankr_ghl_sync_session"
SESSION_SECONDS = 8 * 3600


def _signer(settings: Settings) -> TimestampSigner | None:
    if settings.admin_token is None:
        return None
    return TimestampSigner(settings.admin_token.get_secret_value(), salt="rankr-ghl-sync admin session")


def session_is_admin(settings: Settings, cookie: str | None) -> bool:
    """True when ``cookie`` is an admin session that has not expired (or, with no token, in sandbox mode)."""
    signer = _signer(settings)
    if signer is None:
        return settings.sandbox_mode
    if not cookie:
        return False
    try:
        signer.unsign(cookie, max_age=SESSION_SECONDS)
    except BadSignature:
        return False
    return True


def request_is_admin(request: Request) -> bool:
    """The admin token as a bearer header, or a browser's admin session cookie."""
    settings: Settings = request.app.state.settings
    return is_admin(settings, request.headers.get("authorization")) or (
        settings.admin_token is not None and session_is_admin(settings, request.cookies.get(SESSION_COOKIE))
    )


def start_session(response: Response, request: Request) -> None:
    """Give the browser an admin session: HttpOnly, SameSite=Strict, Secure over HTTPS, expiring."""
    signer = _signer(request.app.state.settings)
    if signer is None:
        return
    response.set_cookie(
        SESSION_COOKIE,
        signer.sign(secrets.token_urlsafe(16)).decode(),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


UNAUTHORIZED_DETAIL = "this route needs 'Authorization: Bearer <ADMIN_TOKEN>'"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    if not is_admin(request.app.state.settings, authorization):
        raise ProblemError(401, "Unauthorized", UNAUTHORIZED_DETAIL, headers=CHALLENGE)


DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")
# The console's pages (``app.console``): the admin's session cookie admits a browser there; its
# sign-in page and its style sheet and script are open to everyone.
CONSOLE_ROOT = "/admin/console"
CONSOLE_OPEN = (f"{CONSOLE_ROOT}/sign-in", f"{CONSOLE_ROOT}/static/")
SIGN_IN_DETAIL = "the console needs the admin's session: sign in at /admin/console/sign-in"
DOCS_DETAIL = "the API documentation needs the admin's credentials (the bearer token, or sign in on /status)"


class AdminGate:
    """ASGI middleware: a request under ``/admin`` without the admin token gets 401, its body unread;
    the API documentation answers as ``API_DOCS`` says (everyone, the admin, or 404)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            settings: Settings = scope["app"].state.settings
            if path == "/admin/" or (path + "/").startswith(CONSOLE_ROOT + "/"):
                if not path.startswith(CONSOLE_OPEN) and not request_is_admin(Request(scope)):
                    await _to_sign_in(scope, send, path)
                    return
            elif (path + "/").startswith("/admin/"):
                authorization = dict(scope["headers"]).get(b"authorization")
                if not is_admin(settings, authorization.decode("latin-1") if authorization else None):
                    await send_problem(send, 401, "Unauthorized", UNAUTHORIZED_DETAIL, CHALLENGE)
                    return
            elif path.startswith(DOCS_PATHS) and settings.api_docs_access != "public":
                if settings.api_docs_access == "off":
                    await send_problem(send, 404, "Not Found", "Not Found")
                    return
                if not request_is_admin(Request(scope)):
                    await send_problem(send, 401, "Unauthorized", DOCS_DETAIL, CHALLENGE)
                    return
        await self.app(scope, receive, send)


async def _to_sign_in(scope: Scope, send: Send, path: str) -> None:
    """A page asked for without a session goes to the sign-in page; a form post is refused (401)."""
    if scope["method"] not in {"GET", "HEAD"}:
        await send_problem(send, 401, "Unauthorized", SIGN_IN_DETAIL, CHALLENGE)
        return
    target = f"{CONSOLE_ROOT}/sign-in?{urlencode({'next': path})}"
    headers = [(b"location", target.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def admin_router() -> APIRouter:
    """A router of ``/admin`` routes: each feature makes its own, and the app factory includes it."""
    return APIRouter(
        prefix="/admin",
        tags=["admin"],
        dependencies=[Depends(require_admin)],
        responses=problem(401, "Unauthorized", UNAUTHORIZED_DETAIL),
    )


router = admin_router()


@router.post(
    "/connections/{connection_id}/verify",
    summary="Check a connection against GHL and Rankr now (read-only calls); the outcome is stored",
    responses=problem(404, "Not Found", "no connection 7"),
)
async def verify_connection(connection_id: ConnectionId, request: Request) -> dict[str, Any]:
    outcomes = await request.app.state.verifier(connection_id)
    if not outcomes:
        raise ProblemError(404, "Not Found", f"no connection {connection_id}")
    result: dict[str, Any] = outcomes[0].as_json()
    return result
