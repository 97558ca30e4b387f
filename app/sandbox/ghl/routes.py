"""The GHL Contacts API routes of the sandbox (paths as in GHL's contacts.json, Version 2021-07-28).

Authentication, the ``Version`` header, the rate limit and injected faults are applied before these
run (``ApiGate``); here each route checks the location, validates its body against the DTO and
calls ``GhlStore``. Bodies are parsed by hand rather than by FastAPI so that malformed JSON answers
GHL's 400 and DTO violations GHL's 422, not FastAPI's own error shapes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from app.sandbox.ghl import errors, search, serialize
from app.sandbox.ghl.schemas import (
    CreateContactDto,
    CreateCustomFieldsDTO,
    CreateTaskParams,
    NotesDTO,
    SearchBody,
    TagsDTO,
    TaskSearchParamsDto,
    UpdateContactDto,
    UpdateNoteDTO,
    UpdateTaskBody,
    UpdateTaskStatusParams,
    UpsertContactDto,
    nest_messages,
    parse_iso_instant,
)
from app.sandbox.ghl.state import normalize_phone
from app.sandbox.side import Principal

if TYPE_CHECKING:
    from app.sandbox.ghl.sandbox import GhlSandbox

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_json(request: Request) -> Any:
    """The JSON body ({} when empty); malformed JSON answers 400 as GHL's body parser does."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        position = getattr(exc, "pos", 0)
        raise errors.bad_request(f"Unexpected token in JSON at position {position}") from exc


def validate(model: type[ModelT], data: Any) -> ModelT:
    if not isinstance(data, dict):
        # class-validator's wording when the body is not an object.
        raise errors.unprocessable(["an unknown value was passed to the validate function"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.unprocessable(nest_messages(exc)) from exc


def check_location(request: Request, location_id: str | None) -> None:
    """A location other than the token's answers 403, as GHL does."""
    principal: Principal = request.state.principal
    if location_id is None or location_id == "":
        raise errors.unprocessable(["locationId should not be empty", "locationId must be a string"])
    if location_id != principal.key:
        raise errors.forbidden_location()


# The scopes of docs/oauth/Scopes.md the sandbox checks, on the read routes a connection's verification
# and the console's mapping use; the other routes accept any live token of the location.
SCOPES = frozenset(
    {
        "contacts.readonly",
        "contacts.write",
        "locations.readonly",
        "locations/tasks.readonly",
        "locations/customFields.readonly",
        "users.readonly",
        "oauth.write",
    }
)


def require_scope(request: Request, scope: str) -> None:
    principal: Principal = request.state.principal
    if scope not in principal.scopes:
        raise errors.missing_scope()


def api_router(side: GhlSandbox) -> APIRouter:
    """Every Contacts API route the sandbox emulates, bound to ``side``'s store."""
    router = APIRouter()
    store = side.store

    # -- contacts -----------------------------------------------------------------------------------

    @router.post("/contacts/search")
    async def search_contacts(request: Request) -> dict[str, Any]:
        body = validate(SearchBody, await read_json(request))
        check_location(request, body.location_id)
        try:
            hits, total = search.search(
                store.list_contacts(),
                query=body.query,
                filters=body.filters,
                sort=body.sort,
                page=body.page,
                page_limit=body.page_limit,
                search_after=body.search_after,
            )
        except search.SearchError as exc:
            raise errors.unprocessable([str(exc)]) from exc
        contacts = [{**serialize.contact_json(c), "searchAfter": after} for c, after in hits]
        return {"contacts": contacts, "total": total}

    @router.get("/contacts/search/duplicate")
    async def duplicate_contact(request: Request) -> dict[str, Any]:
        query = request.query_params
        check_location(request, query.get("locationId"))
        email, number = query.get("email") or None, query.get("number") or None
        phone = normalize_phone(number) if number else None
        match = store.find_duplicate(email, phone) if (email or phone) else None
        return {"contact": None if match is None else serialize.contact_json(match[0])}

    @router.post("/contacts/upsert")
    async def upsert_contact(request: Request) -> dict[str, Any]:
        body = validate(UpsertContactDto, await read_json(request))
        check_location(request, body.location_id)
        contact, created = store.upsert_contact(body.changes())
        return {"new": created, "contact": serialize.contact_json(contact), "traceId": str(uuid.uuid4())}

    @router.post("/contacts/", status_code=201)
    @router.post("/contacts", status_code=201, include_in_schema=False)
    async def create_contact(request: Request) -> dict[str, Any]:
        body = validate(CreateContactDto, await read_json(request))
        check_location(request, body.location_id)
        return {"contact": serialize.contact_json(store.create_contact(body.changes()))}

    @router.get("/contacts/")
    @router.get("/contacts", include_in_schema=False)
    async def list_contacts(request: Request) -> dict[str, Any]:
        """Deprecated GET /contacts/: oldest first, paged by ``startAfter`` (ms) + ``startAfterId``."""
        require_scope(request, "contacts.readonly")
        query = request.query_params
        check_location(request, query.get("locationId"))
        try:
            limit = int(query.get("limit", "20"))
            start_after = int(query["startAfter"]) if query.get("startAfter") else None
        except ValueError as exc:
            raise errors.unprocessable(["limit must be a number", "startAfter must be a number"]) from exc
        if not 1 <= limit <= 100:
            raise errors.unprocessable(["limit must not be greater than 100"])
        ordered = sorted(
            (c for c in store.list_contacts() if search.matches_query(c, query.get("query"))),
            key=lambda c: (search.epoch_ms(c.date_added), c.id),
        )
        if start_after is not None or query.get("startAfterId"):
            anchor = (start_after or 0, query.get("startAfterId", ""))
            ordered_after = [c for c in ordered if (search.epoch_ms(c.date_added), c.id) > anchor]
        else:
            ordered_after = ordered
        page = ordered_after[:limit]
        current = (len(ordered) - len(ordered_after)) // limit + 1
        meta: dict[str, Any] = {
            "total": len(ordered),
            "currentPage": current,
            "prevPage": current - 1 or None,
        }
        if page and len(ordered_after) > limit:
            last = page[-1]
            meta["nextPage"] = current + 1
            meta["startAfterId"] = last.id
            meta["startAfter"] = search.epoch_ms(last.date_added)
            params = {
                "locationId": query["locationId"],
                "startAfter": meta["startAfter"],
                "startAfterId": last.id,
                "limit": limit,
            }
            meta["nextPageUrl"] = f"{request.url.remove_query_params(list(query.keys()))}?{urlencode(params)}"
        # The spec documents {contacts, count}; GHL answers {contacts, meta}: both are sent.
        contacts = [serialize.contact_json(c) for c in page]
        return {"contacts": contacts, "count": len(ordered), "meta": meta}

    @router.get("/contacts/{contactId}")
    async def get_contact(contactId: str) -> dict[str, Any]:  # noqa: N803 - GHL's parameter name
        return {"contact": serialize.contact_json(store.get_contact(contactId))}

    @router.put("/contacts/{contactId}")
    async def update_contact(contactId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(UpdateContactDto, await read_json(request))
        contact = store.update_contact(contactId, body.changes())
        return {"succeded": True, "contact": serialize.contact_json(contact)}

    @router.delete("/contacts/{contactId}")
    async def delete_contact(contactId: str) -> dict[str, Any]:  # noqa: N803
        store.delete_contact(contactId)
        return {"succeded": True}  # sic: GHL's spelling

    @router.post("/contacts/{contactId}/tags", status_code=201)
    async def add_tags(contactId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(TagsDTO, await read_json(request))
        return {"tags": list(store.add_tags(contactId, body.tags).tags)}

    @router.delete("/contacts/{contactId}/tags")
    async def remove_tags(contactId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(TagsDTO, await read_json(request))
        return {"tags": list(store.remove_tags(contactId, body.tags).tags)}

    @router.get("/contacts/{contactId}/appointments")
    async def list_appointments(contactId: str) -> dict[str, Any]:  # noqa: N803
        events = store.list_appointments(contactId)
        return {"events": [serialize.appointment_json(a, store.location_id) for a in events]}

    # -- tasks --------------------------------------------------------------------------------------

    @router.get("/contacts/{contactId}/tasks")
    async def list_tasks(contactId: str) -> dict[str, Any]:  # noqa: N803
        return {"tasks": [serialize.task_json(t) for t in store.list_tasks(contactId)]}

    @router.post("/contacts/{contactId}/tasks", status_code=201)
    async def create_task(contactId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(CreateTaskParams, await read_json(request))
        task = store.create_task(
            contactId,
            title=body.title,
            due_date=_instant(body.due_date),
            completed=body.completed,
            body=body.body,
            assigned_to=body.assigned_to,
        )
        return {"task": serialize.task_json(task)}

    @router.get("/locations/{locationId}")
    async def get_location(locationId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        """GetLocationByIdSuccessfulResponseDto: ``{"location": {...}}`` (locations.json ``get-location``)."""
        require_scope(request, "locations.readonly")
        check_location(request, locationId)
        return {"location": side.location_json()}

    @router.get("/locations/{locationId}/customFields")
    async def list_custom_fields(locationId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        """CustomFieldsListSuccessfulResponseDto; the sandbox has contact fields only."""
        require_scope(request, "locations/customFields.readonly")
        check_location(request, locationId)
        model = request.query_params.get("model", "all")
        if model not in {"contact", "opportunity", "all"}:
            raise errors.unprocessable(
                ["model must be one of the following values: contact, opportunity, all"]
            )
        definitions = store.list_custom_fields() if model != "opportunity" else []
        return {"customFields": [serialize.custom_field_json(d, store.location_id) for d in definitions]}

    @router.post("/locations/{locationId}/customFields")
    async def create_custom_field(locationId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        """CreateCustomFieldsDTO in, CustomFieldSuccessfulResponseDto out."""
        check_location(request, locationId)
        body = validate(CreateCustomFieldsDTO, await read_json(request))
        definition = store.create_custom_field(body.name, body.data_type, placeholder=body.placeholder)
        return {"customField": serialize.custom_field_json(definition, store.location_id)}

    @router.get("/users/")
    async def list_users(request: Request) -> dict[str, Any]:
        """LocationSuccessfulResponseDto (users.json ``get-user-by-location``): the location's users."""
        require_scope(request, "users.readonly")
        check_location(request, request.query_params.get("locationId"))
        return {"users": [serialize.user_json(u, store.location_id) for u in store.list_users()]}

    @router.post("/locations/{locationId}/tasks/search")
    async def search_tasks(locationId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        require_scope(request, "locations/tasks.readonly")
        check_location(request, locationId)
        body = validate(TaskSearchParamsDto, await read_json(request))
        found = store.search_tasks(
            query=body.query,
            contact_ids=body.contact_id,
            completed=body.completed,
            assigned_to=body.assigned_to,
        )
        return {"tasks": [serialize.task_json(t) for t in found[body.skip : body.skip + body.limit]]}

    @router.get("/contacts/{contactId}/tasks/{taskId}")
    async def get_task(contactId: str, taskId: str) -> dict[str, Any]:  # noqa: N803
        return {"task": serialize.task_json(store.get_task(contactId, taskId))}

    @router.put("/contacts/{contactId}/tasks/{taskId}")
    async def update_task(contactId: str, taskId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(UpdateTaskBody, await read_json(request))
        changes = body.model_dump(by_alias=True, exclude_unset=True)
        if changes.get("dueDate") is not None:
            changes["dueDate"] = _instant(changes["dueDate"])
        return {"task": serialize.task_json(store.update_task(contactId, taskId, changes))}

    @router.put("/contacts/{contactId}/tasks/{taskId}/completed")
    async def complete_task(contactId: str, taskId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(UpdateTaskStatusParams, await read_json(request))
        task = store.update_task(contactId, taskId, {"completed": body.completed})
        return {"task": serialize.task_json(task)}

    @router.delete("/contacts/{contactId}/tasks/{taskId}")
    async def delete_task(contactId: str, taskId: str) -> dict[str, Any]:  # noqa: N803
        store.delete_task(contactId, taskId)
        return {"succeded": True}

    # -- notes --------------------------------------------------------------------------------------

    @router.get("/contacts/{contactId}/notes")
    async def list_notes(contactId: str) -> dict[str, Any]:  # noqa: N803
        return {"notes": [serialize.note_json(n) for n in store.list_notes(contactId)]}

    @router.post("/contacts/{contactId}/notes", status_code=201)
    async def create_note(contactId: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(NotesDTO, await read_json(request))
        note = store.create_note(contactId, body.model_dump(by_alias=True, exclude_unset=True))
        return {"note": serialize.note_json(note)}

    @router.get("/contacts/{contactId}/notes/{id}")
    async def get_note(contactId: str, id: str) -> dict[str, Any]:  # noqa: N803 - GHL's names
        return {"note": serialize.note_json(store.get_note(contactId, id))}

    @router.put("/contacts/{contactId}/notes/{id}")
    async def update_note(contactId: str, id: str, request: Request) -> dict[str, Any]:  # noqa: N803
        body = validate(UpdateNoteDTO, await read_json(request))
        note = store.update_note(contactId, id, body.model_dump(by_alias=True, exclude_unset=True))
        return {"note": serialize.note_json(note)}

    @router.delete("/contacts/{contactId}/notes/{id}")
    async def delete_note(contactId: str, id: str) -> dict[str, Any]:  # noqa: N803
        store.delete_note(contactId, id)
        return {"succeded": True}

    return router


def _instant(value: str) -> datetime:
    parsed = parse_iso_instant(value)
    if parsed is None:  # the DTO already refused it; kept for type narrowing
        raise errors.unprocessable(["dueDate must be a valid ISO 8601 date string"])
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
