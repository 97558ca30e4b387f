"""The Rankr API routes of the sandbox (rankr/openapi.yaml), including POST /oauth/token.

The gate (``ApiGate``) has already checked the bearer token and the rate limit, except on
``/oauth/token`` which is public; here each route checks its scope, validates the body and calls
``RankrStore``. Every error is a problem document.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from app.kit.clock import parse_instant
from app.sandbox.rankr import serialize
from app.sandbox.rankr.problems import RankrProblem, validation
from app.sandbox.rankr.schemas import ContactWrite, NoteWrite, TaskWrite, field_errors, parse_rfc3339
from app.sandbox.rankr.tokens import InvalidScope
from app.sandbox.side import Principal

if TYPE_CHECKING:
    from datetime import datetime

    from app.sandbox.rankr.sandbox import RankrSandbox

ModelT = TypeVar("ModelT", bound=BaseModel)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise RankrProblem(400, "bad-request", "the request needs a JSON body")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise RankrProblem(400, "bad-request", f"the body is not valid JSON: {exc}") from exc


def validate(model: type[ModelT], data: Any) -> ModelT:
    if not isinstance(data, dict):
        raise validation([{"field": "body", "message": "must be a JSON object"}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation(field_errors(exc)) from exc


def require(request: Request, scope: str) -> None:
    principal: Principal = request.state.principal
    if scope not in principal.scopes:
        raise RankrProblem(403, "insufficient-scope", f"the token lacks the {scope} scope")


def paging(request: Request) -> tuple[datetime | None, str | None, int]:
    """``updatedSince``, ``cursor`` and ``limit`` (default 50, at most 200) from the query."""
    query = request.query_params
    since_text = query.get("updatedSince")
    since = None
    if since_text:
        since = parse_instant(since_text) if parse_rfc3339(since_text) else None
        if since is None:
            raise validation([{"field": "updatedSince", "message": "must be an RFC 3339 date-time"}])
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError as exc:
        raise validation([{"field": "limit", "message": "must be an integer"}]) from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise validation([{"field": "limit", "message": f"must be between 1 and {MAX_LIMIT}"}])
    return since, query.get("cursor") or None, limit


def _task_changes(body: TaskWrite) -> dict[str, Any]:
    changes = body.model_dump(by_alias=True, exclude_unset=True)
    if changes.get("dueDate") is not None:
        changes["dueDate"] = parse_instant(changes["dueDate"])
    return changes


def api_router(side: RankrSandbox) -> APIRouter:
    """Every Rankr API route, bound to ``side``'s store and token issuer."""
    router = APIRouter()
    store = side.store

    @router.post("/oauth/token", response_model=None)
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        client_id = str(form.get("client_id") or "")
        client_secret = str(form.get("client_secret") or "")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # RFC 6749 2.3.1 also allows HTTP Basic client authentication
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = ""
        if form.get("grant_type") != "client_credentials":
            raise RankrProblem(
                400,
                "unsupported-grant-type",
                "grant_type must be client_credentials",
                extra={"error": "unsupported_grant_type"},
            )
        if not side.tokens.credentials_valid(client_id, client_secret):
            raise RankrProblem(
                401, "invalid-client", "unknown client or wrong secret", extra={"error": "invalid_client"}
            )
        try:
            issued = side.tokens.issue(str(form.get("scope") or "") or None)
        except InvalidScope as exc:
            raise RankrProblem(
                400, "invalid-scope", f"unknown scope(s): {exc}", extra={"error": "invalid_scope"}
            ) from exc
        body = {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": round(side.tokens.ttl_seconds),
            "scope": " ".join(sorted(issued.scopes)),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    # -- contacts -----------------------------------------------------------------------------------

    @router.get("/contacts")
    async def list_contacts(request: Request) -> dict[str, Any]:
        require(request, "contacts.read")
        since, cursor, limit = paging(request)
        contacts, next_cursor = store.page_contacts(updated_since=since, cursor=cursor, limit=limit)
        return {"data": [serialize.contact_json(c) for c in contacts], "nextCursor": next_cursor}

    @router.post("/contacts", status_code=201)
    async def create_contact(request: Request) -> dict[str, Any]:
        require(request, "contacts.write")
        body = validate(ContactWrite, await read_json(request))
        return serialize.contact_json(
            store.create_contact(body.model_dump(by_alias=True, exclude_unset=True))
        )

    @router.get("/contacts/{contact_id}")
    async def get_contact(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, "contacts.read")
        return serialize.contact_json(store.get_contact(contact_id))

    @router.put("/contacts/{contact_id}")
    async def update_contact(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, "contacts.write")
        body = validate(ContactWrite, await read_json(request))
        changes = body.model_dump(by_alias=True, exclude_unset=True)
        return serialize.contact_json(store.update_contact(contact_id, changes))

    @router.delete("/contacts/{contact_id}", status_code=204)
    async def delete_contact(request: Request, contact_id: str) -> Response:
        require(request, "contacts.write")
        store.delete_contact(contact_id)
        return Response(status_code=204)

    # -- tasks --------------------------------------------------------------------------------------

    @router.get("/contacts/{contact_id}/tasks")
    async def list_tasks(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, "tasks.read")
        since, cursor, limit = paging(request)
        tasks, next_cursor = store.page_tasks(contact_id, updated_since=since, cursor=cursor, limit=limit)
        return {"data": [serialize.task_json(t) for t in tasks], "nextCursor": next_cursor}

    @router.post("/contacts/{contact_id}/tasks", status_code=201)
    async def create_task(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, "tasks.write")
        body = validate(TaskWrite, await read_json(request))
        if body.title is None:
            raise validation([{"field": "title", "message": "is required"}])
        return serialize.task_json(store.create_task(contact_id, _task_changes(body)))

    @router.get("/contacts/{contact_id}/tasks/{task_id}")
    async def get_task(request: Request, contact_id: str, task_id: str) -> dict[str, Any]:
        require(request, "tasks.read")
        return serialize.task_json(store.get_task(contact_id, task_id))

    @router.put("/contacts/{contact_id}/tasks/{task_id}")
    async def update_task(request: Request, contact_id: str, task_id: str) -> dict[str, Any]:
        require(request, "tasks.write")
        body = validate(TaskWrite, await read_json(request))
        return serialize.task_json(store.update_task(contact_id, task_id, _task_changes(body)))

    @router.delete("/contacts/{contact_id}/tasks/{task_id}", status_code=204)
    async def delete_task(request: Request, contact_id: str, task_id: str) -> Response:
        require(request, "tasks.write")
        store.delete_task(contact_id, task_id)
        return Response(status_code=204)

    # -- notes --------------------------------------------------------------------------------------

    @router.get("/contacts/{contact_id}/notes")
    async def list_notes(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, "notes.read")
        since, cursor, limit = paging(request)
        notes, next_cursor = store.page_notes(contact_id, updated_since=since, cursor=cursor, limit=limit)
        return {"data": [serialize.note_json(n) for n in notes], "nextCursor": next_cursor}

    @router.post("/contacts/{contact_id}/notes", status_code=201)
    async def create_note(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, "notes.write")
        body = validate(NoteWrite, await read_json(request))
        return serialize.note_json(store.create_note(contact_id, body.body))

    @router.get("/contacts/{contact_id}/notes/{note_id}")
    async def get_note(request: Request, contact_id: str, note_id: str) -> dict[str, Any]:
        require(request, "notes.read")
        return serialize.note_json(store.get_note(contact_id, note_id))

    @router.put("/contacts/{contact_id}/notes/{note_id}")
    async def update_note(request: Request, contact_id: str, note_id: str) -> dict[str, Any]:
        require(request, "notes.write")
        body = validate(NoteWrite, await read_json(request))
        return serialize.note_json(store.update_note(contact_id, note_id, body.body))

    @router.delete("/contacts/{contact_id}/notes/{note_id}", status_code=204)
    async def delete_note(request: Request, contact_id: str, note_id: str) -> Response:
        require(request, "notes.write")
        store.delete_note(contact_id, note_id)
        return Response(status_code=204)

    return router
