"""``/admin/*``: operator routes, all behind ``ADMIN_TOKEN`` (a bearer token compared in constant time).

Feature modules add their routes to ``router``; every route on it requires the token. ``AdminGate``
checks it before FastAPI reads a request's body (which it does before running any dependency), so
a stranger's upload is refused unread; ``require_admin`` keeps the rule in the OpenAPI document.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from app.config import Settings
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


UNAUTHORIZED_DETAIL = "this route needs 'Authorization: Bearer <ADMIN_TOKEN>'"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    if not is_admin(request.app.state.settings, authorization):
        raise ProblemError(401, "Unauthorized", UNAUTHORIZED_DETAIL, headers=CHALLENGE)


class AdminGate:
    """ASGI middleware: a request under ``/admin`` without the admin token gets 401, its body unread."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"] + "/").startswith("/admin/"):
            authorization = dict(scope["headers"]).get(b"authorization")
            settings = scope["app"].state.settings
            if not is_admin(settings, authorization.decode("latin-1") if authorization else None):
                await send_problem(send, 401, "Unauthorized", UNAUTHORIZED_DETAIL, CHALLENGE)
                return
        await self.app(scope, receive, send)


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=problem(401, "Unauthorized", UNAUTHORIZED_DETAIL),
)
