"""Every HTTP error answer of the service is an RFC 9457 problem document (application/problem+json)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import DATABASE_ERRORS, is_unavailable
from app.errors import ProblemError
from app.ops import metrics

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# What a client is told to wait while the database is away: short, since the service is back within
# seconds of its database, and a sender's wait is most of the time a refused webhook takes to apply.
RETRY_AFTER_SECONDS = 2


def problem_response(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def database_unavailable(status: int = 503) -> ProblemError:
    """The answer while the database is away: come back later (503, or 429 for a sender that
    re-sends only after that)."""
    return ProblemError(
        status,
        "Service Unavailable" if status == 503 else "Too Many Requests",
        "the database is unavailable; try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error answer of ``app`` an RFC 9457 problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        _count_rejected_webhook(request, exc.status)
        return problem_response(exc.status, exc.title, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        _count_rejected_webhook(request, 422)
        return problem_response(422, "Unprocessable Content", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "HTTP error")
        return problem_response(exc.status_code, title, str(exc.detail))

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            raise exc  # a fault of the service: the 500 below
        log.warning("http.database_unavailable", extra={"path": request.url.path})
        problem = database_unavailable()
        return problem_response(problem.status, problem.title, problem.detail, headers=problem.headers)

    # Registered on the error types a database driver raises, not on Exception: Starlette re-raises
    # what the catch-all handler answered (and drops the connection), which a 503 should not do.
    for error_type in DATABASE_ERRORS:
        app.add_exception_handler(error_type, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("http.unhandled_error", extra={"path": request.url.path})
        return problem_response(500, "Internal Server Error", "an unexpected error occurred")


def _count_rejected_webhook(request: Request, status: int) -> None:
    path = request.url.path
    if path.startswith("/webhooks/"):
        metrics.webhook_received(path.removeprefix("/webhooks/"), None, f"rejected_{status}")
