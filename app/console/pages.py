"""The console's routes: sign-in, connections and the settings' history (``app.console``).

Pages are rendered on the server (Jinja2, autoescaped). A form post does one thing and answers a
303 to the page to show next, with a notice or the reason it was refused in the query string.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from app.admin import CONSOLE_ROOT, end_session, start_session
from app.config import Settings
from app.console.security import CSRF_FIELD, check_csrf, csrf_token, keep_binding
from app.errors import ProblemError

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
NAV = (
    (f"{CONSOLE_ROOT}/", "Connections"),
    (f"{CONSOLE_ROOT}/activity", "Activity"),
    (f"{CONSOLE_ROOT}/settings", "Settings"),
)


class Pages:
    """Renders the console's templates with what every page shows (navigation, CSRF token, notices)."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["show"] = show

    def render(
        self, request: Request, template: str, title: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        values: dict[str, Any] = {
            "title": title,
            "nav": NAV,
            "current": request.url.path,
            "signed_in": template != "sign_in.html",
            "csrf": csrf_token(request),
            "message": request.query_params.get("msg", ""),
            "error": request.query_params.get("error", ""),
        }
        answer = HTMLResponse(
            self.env.get_template(template).render({**values, **context}), status_code=status
        )
        keep_binding(request, answer)
        return answer


def show(value: Any) -> str:
    """A value as a person reads it: text as it is, nothing as a dash, structures as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def go(path: str, *, msg: str = "", error: str = "") -> RedirectResponse:
    """303 to a console page (``path`` below the console's root), carrying a notice for it."""
    query = urlencode({k: v for k, v in (("msg", msg), ("error", error)) if v})
    return RedirectResponse(f"{CONSOLE_ROOT}{path}" + (f"?{query}" if query else ""), status_code=303)


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is this browser's."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    check_csrf(request, token if isinstance(token, str) else "")
    return form


def text(form: Mapping[str, Any], name: str, *, limit: int = 255) -> str:
    """A form field's text, trimmed; 422 when it is longer than ``limit``."""
    value = form.get(name)
    clean = value.strip() if isinstance(value, str) else ""
    if len(clean) > limit:
        raise ProblemError(422, "Unprocessable Content", f"{name} is longer than {limit} characters")
    return clean


def safe_next(target: str) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target.startswith(f"{CONSOLE_ROOT}/") and not target.startswith(f"{CONSOLE_ROOT}//"):
        return target
    return f"{CONSOLE_ROOT}/"


def sign_in_router(pages: Pages) -> APIRouter:
    router = APIRouter(prefix=CONSOLE_ROOT, include_in_schema=False)

    @router.get("/sign-in")
    async def sign_in_page(request: Request, next: str = "") -> HTMLResponse:
        return pages.render(request, "sign_in.html", "Sign in", next=safe_next(next))

    @router.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        form = await checked_form(request)
        settings: Settings = request.app.state.settings
        token = text(form, "token", limit=1024)
        expected = settings.admin_token.get_secret_value() if settings.admin_token else None
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            return pages.render(
                request,
                "sign_in.html",
                "Sign in",
                status=401,
                next=safe_next(text(form, "next", limit=2000)),
                error="That is not the admin token.",
            )
        answer = RedirectResponse(safe_next(text(form, "next", limit=2000)), status_code=303)
        start_session(answer, request)
        return answer

    @router.post("/sign-out")
    async def sign_out(request: Request) -> RedirectResponse:
        await checked_form(request)
        answer = go("/sign-in", msg="Signed out.")
        end_session(answer, request)
        return answer

    return router
