"""CSRF tokens for the console's forms, bound to the browser's session.

A form's token is an HMAC of the browser's admin session cookie (or, before sign-in, of a random
``csrf`` cookie the sign-in page sets), keyed with the admin token; a page on another site can
neither read the cookie nor compute the token, so it cannot post a form that passes. Without an
admin token (sandbox mode only) the key is a random secret of the process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from app.admin import SESSION_COOKIE
from app.config import Settings
from app.errors import ProblemError

CSRF_COOKIE = "rankr_ghl_sync_csrf"
CSRF_FIELD = "csrf"
_PROCESS_KEY = secrets.token_bytes(32)


def _key(settings: Settings) -> bytes:
    if settings.admin_token is None:
        return _PROCESS_KEY
    return hashlib.sha256(b"console csrf\0" + settings.admin_token.get_secret_value().encode()).digest()


def _binding(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(CSRF_COOKIE)


def csrf_token(request: Request) -> str:
    """The token the page's forms carry (``keep_binding`` then sets the cookie it needs, if any)."""
    binding = _binding(request) or getattr(request.state, "csrf_binding", None)
    if binding is None:
        binding = secrets.token_urlsafe(24)
        request.state.csrf_binding = binding
    settings: Settings = request.app.state.settings
    return hmac.new(_key(settings), binding.encode(), hashlib.sha256).hexdigest()


def keep_binding(request: Request, response: Response) -> None:
    """Give the browser the pre-sign-in cookie its page's CSRF token was made from, when it is new."""
    binding = getattr(request.state, "csrf_binding", None)
    if binding is not None:
        response.set_cookie(
            CSRF_COOKIE,
            binding,
            max_age=3600,
            path="/admin/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def check_csrf(request: Request, token: str) -> None:
    """Refuse a form whose CSRF token is not this browser's (403, nothing done)."""
    binding = _binding(request)
    settings: Settings = request.app.state.settings
    expected = hmac.new(_key(settings), (binding or "").encode(), hashlib.sha256).hexdigest()
    if binding is None or not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise ProblemError(
            403,
            "Forbidden",
            "the form's CSRF token is missing or not this browser's: reload the page and send it again",
        )
