"""Examples and documented answers for the OpenAPI document at ``/docs``: one place, used by the routes.

Webhook routes read their raw body (the signature covers the exact bytes), so FastAPI cannot infer
their request body; it is described here with the headers that sign it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"
# Where the Swagger UI and ReDoc pages find their scripts, styles and icon (fastapi-offline serves them).
DOCS_ASSETS_URL = "/docs/assets"


def problem(status: int, title: str, detail: str, description: str | None = None) -> dict[int | str, Any]:
    """A documented problem+json answer, with an example."""
    example = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return {status: {"description": description or title, "content": {PROBLEM_JSON: {"example": example}}}}


def answer(status: int, description: str, example: Any) -> dict[int | str, Any]:
    return {status: {"description": description, "content": {"application/json": {"example": example}}}}


def webhook_body(description: str, example: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a webhook route: the JSON body it takes (read raw, verified first)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
        }
    }


RANKR_WEBHOOK = {
    "type": "contact.updated",
    "timestamp": "2026-11-26T10:15:00.000Z",
    "accountId": "acct_8Kd2",
    "data": {
        "contactId": "con_7Hq1",
        "email": "jane@example.com",
        "firstName": "Jane",
        "lastName": "Doe",
        "tags": ["lead"],
        "lastModified": "2026-11-26T10:14:59.120Z",
    },
}
GHL_WEBHOOK = {
    "type": "ContactUpdate",
    "locationId": "ve9EPM428h8vShlRW1KT",
    "id": "nmFmQEsNgz6AVpgLVUJ0",
    "email": "jane@example.com",
    "firstName": "Jane",
    "lastName": "Doe",
    "tags": ["lead"],
    "webhookId": "6f3a4c1e-1d2b-4e0b-9a55-0c3f0f6d8a11",
    "timestamp": "2026-11-26T10:15:00.000Z",
}
STORED = answer(202, "stored; the worker applies it", {"status": "accepted", "eventId": "msg_2b9c"})
BAD_SIGNATURE = problem(
    401, "Unauthorized", "no signature matches", "bad or missing signature, or stale timestamp"
)
WEBHOOK_REFUSALS: dict[int | str, Any] = {
    **BAD_SIGNATURE,
    **problem(400, "Bad Request", "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    **problem(413, "Content Too Large", "the body exceeds 1048576 bytes"),
    **problem(422, "Unprocessable Content", "data.contactId: Field required"),
}

HEALTHY = answer(200, "the process runs", {"status": "ok"})
READY: dict[int | str, Any] = {
    **answer(200, "ready", {"status": "ready"}),
    **problem(
        503,
        "Service Unavailable",
        "the schema is at 0001, the newest migration is 0006; run 'rankr-ghl-sync migrate'",
        "the database does not answer or its schema is not the newest",
    ),
}
STATUS_EXAMPLE = {
    "status": "degraded",
    "message": "1 of 1 connection(s) need attention",
    "problems": [
        {
            "connectionId": 1,
            "name": "acct_8Kd2 <-> ve9EPM428h8vShlRW1KT",
            "reason": "1 dead event(s) need a replay or a fix",
        }
    ],
    "generatedAt": "2026-11-26T10:20:00+00:00",
    "connections": [
        {
            "id": 1,
            "name": "acct_8Kd2 <-> ve9EPM428h8vShlRW1KT",
            "state": "active",
            "verification": {
                "verified": True,
                "state": "verified",
                "checkedAt": "2026-11-26T08:00:02+00:00",
                "problem": None,
                "locationName": "Dentist Downtown",
            },
            "events": {"pending": 2, "processing": 1, "retrying": 0, "done": 812, "skipped": 4, "dead": 1},
            "oldestPendingAgeSeconds": 3.2,
            "lastSyncToGhlAt": "2026-11-26T10:19:58+00:00",
            "lastSyncToRankrAt": "2026-11-26T10:12:03+00:00",
            "linked": {"contacts": 640, "tasks": 0, "notes": 0},
            "tokens": {
                "ghl": {"kind": "private-integration", "expiresAt": None},
                "rankr": {"kind": "client-credentials", "expiresAt": "2026-11-26T11:02:00+00:00"},
            },
            "rateBudget": {
                "ghl": {
                    "limit": 100,
                    "remaining": 87,
                    "windowMs": 10000,
                    "dailyRemaining": 199200,
                    "observedAt": "2026-11-26T10:19:58+00:00",
                }
            },
            "health": {"level": "red", "reasons": ["1 dead event(s) need a replay or a fix"]},
        }
    ],
    "unrouted": {
        "accounts": 0,
        "events": {"pending": 0, "processing": 0, "retrying": 0, "done": 0, "skipped": 0, "dead": 0},
    },
}
STATUS: dict[int | str, Any] = {
    200: {
        "description": "JSON by default (ids and latestErrors with the admin token); the status page for "
        "Accept: text/html",
        "content": {
            "application/json": {"example": STATUS_EXAMPLE},
            "text/html": {"example": "<!doctype html><html>...status page...</html>"},
        },
    }
}


def install(app: FastAPI) -> None:
    """Describe FastAPI's own 422 answers as what the service sends: problem+json (app.problems)."""
    build = app.openapi

    def openapi_document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        validation = problem(422, "Unprocessable Content", "query.replayed: Input should be a valid integer")
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                content = responses.get("422", {}).get("content", {})
                if "application/json" in content and "HTTPValidationError" in str(content):
                    responses["422"] = {**validation[422], "description": "a parameter or field is invalid"}
        app.openapi_schema = document
        return document

    app.openapi = openapi_document  # type: ignore[method-assign]
