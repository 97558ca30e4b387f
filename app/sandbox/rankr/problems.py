"""Rankr's error answers: RFC 9457 problem documents (``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_TYPE_BASE = "https://api.rankr.example/problems/"


class RankrProblem(Exception):
    """An error answer; ``extra`` members (``contactId``, ``errors``) go into the problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers

    def response(self) -> JSONResponse:
        try:
            title = HTTPStatus(self.status).phrase
        except ValueError:
            title = "Error"
        body = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }
        return JSONResponse(
            body, status_code=self.status, headers=self.headers, media_type="application/problem+json"
        )


def unauthorized(detail: str) -> RankrProblem:
    return RankrProblem(
        401,
        "unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="rankr", error="invalid_token"'},
    )


def not_found(kind: str, record_id: str) -> RankrProblem:
    return RankrProblem(404, "not-found", f"no {kind} {record_id}")


def validation(errors: list[dict[str, str]]) -> RankrProblem:
    detail = "; ".join(f"{e['field']} {e['message']}" for e in errors) or "the request body is invalid"
    return RankrProblem(422, "validation", detail, extra={"errors": errors})
