"""``/admin/*``: operator routes, all behind ``ADMIN_TOKEN`` (a bearer token compared in constant time).

Feature modules add their routes to ``router``; every route on it requires the token.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from app.config import Settings
from app.errors import ProblemError
from app.ops.openapi import problem


def is_admin(settings: Settings, authorization: str | None) -> bool:
    """True when ``authorization`` carries the admin token (or, with none set, in sandbox mode only)."""
    if settings.admin_token is None:
        # With no admin token the admin surface is open only in sandbox mode (a local playground).
        return settings.sandbox_mode
    expected = f"Bearer {settings.admin_token.get_secret_value()}"
    return authorization is not None and hmac.compare_digest(authorization.encode(), expected.encode())


async def require_admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    if not is_admin(request.app.state.settings, authorization):
        raise ProblemError(
            401,
            "Unauthorized",
            "this route needs 'Authorization: Bearer <ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=problem(401, "Unauthorized", "this route needs 'Authorization: Bearer <ADMIN_TOKEN>'"),
)


@router.post(
    "/connections/{connection_id}/verify",
    summary="Check a connection against GHL and Rankr now (read-only calls); the outcome is stored",
    responses=problem(404, "Not Found", "no connection 7"),
)
async def verify_connection(connection_id: int, request: Request) -> dict[str, Any]:
    outcomes = await request.app.state.verifier(connection_id)
    if not outcomes:
        raise ProblemError(404, "Not Found", f"no connection {connection_id}")
    result: dict[str, Any] = outcomes[0].as_json()
    return result
