"""The Rankr API routes of the sandbox (rankr/openapi.yaml), including POST /oauth/token.

The gate (``ApiGate``) has already checked the bearer token and the rate limit, except on
``/oauth/token`` which is public; here each route checks its scope, validates the body and calls
``RankrStore``. Every error is a problem document.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

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

    from app.sandbox.rankr.records import RankrNote, RankrTask
    from app.sandbox.rankr.sandbox import RankrSandbox

ModelT = TypeVar("ModelT", bound=BaseModel)
RecordT = TypeVar("RecordT")
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


def _new_task(body: TaskWrite) -> dict[str, Any]:
    if body.title is None:
        raise validation([{"field": "title", "message": "is required"}])
    return _task_changes(body)


@dataclass(frozen=True)
class ContactRecords(Generic[RecordT, ModelT]):
    """One kind of record that belongs to a contact (tasks, notes): its store calls and wire shape.

    ``kind`` "task" gives the paths ``/contacts/{contact_id}/tasks`` and ``.../tasks/{task_id}`` and
    the scopes ``tasks.read`` and ``tasks.write``; ``model`` validates the bodies of POST and PUT.
    """

    kind: str
    model: type[ModelT]
    page: Callable[..., tuple[list[RecordT], str | None]]  # (contact_id, *, updated_since, cursor, limit)
    get: Callable[[str, str], RecordT]
    create: Callable[[str, ModelT], RecordT]
    update: Callable[[str, str, ModelT], RecordT]
    delete: Callable[[str, str], object]
    to_json: Callable[[RecordT], dict[str, Any]]


def add_record_routes(router: APIRouter, records: ContactRecords[Any, Any]) -> None:
    """List (paged), create, get, update and delete one kind of a contact's records."""
    plural = f"{records.kind}s"
    id_param = f"{records.kind}_id"
    collection = f"/contacts/{{contact_id}}/{plural}"
    one = f"{collection}/{{{id_param}}}"
    read, write = f"{plural}.read", f"{plural}.write"

    @router.get(collection)
    async def list_records(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, read)
        since, cursor, limit = paging(request)
        found, next_cursor = records.page(contact_id, updated_since=since, cursor=cursor, limit=limit)
        return {"data": [records.to_json(r) for r in found], "nextCursor": next_cursor}

    @router.post(collection, status_code=201)
    async def create_record(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, write)
        body = validate(records.model, await read_json(request))
        return records.to_json(records.create(contact_id, body))

    @router.get(one)
    async def get_record(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, read)
        return records.to_json(records.get(contact_id, request.path_params[id_param]))

    @router.put(one)
    async def update_record(request: Request, contact_id: str) -> dict[str, Any]:
        require(request, write)
        body = validate(records.model, await read_json(request))
        return records.to_json(records.update(contact_id, request.path_params[id_param], body))

    @router.delete(one, status_code=204)
    async def delete_record(request: Request, contact_id: str) -> Response:
        require(request, write)
        records.delete(contact_id, request.path_params[id_param])
        return Response(status_code=204)


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

    # -- tasks and notes ----------------------------------------------------------------------------

    tasks: ContactRecords[RankrTask, TaskWrite] = ContactRecords(
        kind="task",
        model=TaskWrite,
        page=store.page_tasks,
        get=store.get_task,
        create=lambda contact_id, body: store.create_task(contact_id, _new_task(body)),
        update=lambda contact_id, task_id, body: store.update_task(contact_id, task_id, _task_changes(body)),
        delete=store.delete_task,
        to_json=serialize.task_json,
    )
    notes: ContactRecords[RankrNote, NoteWrite] = ContactRecords(
        kind="note",
        model=NoteWrite,
        page=store.page_notes,
        get=store.get_note,
        create=lambda contact_id, body: store.create_note(contact_id, body.body),
        update=lambda contact_id, note_id, body: store.update_note(contact_id, note_id, body.body),
        delete=store.delete_note,
        to_json=serialize.note_json,
    )
    add_record_routes(router, tasks)
    add_record_routes(router, notes)

    return router
