"""The GHL Contacts API client (``Version`` header from settings), bound to one location.

Authentication is a token source (a Private Integration token, or the connection's OAuth access
token from ``app.integrations.ghl.tokens``). A 401 is retried once with the token ``on_unauthorized``
returns (a refreshed one), if it returns one. Every answer's ``X-RateLimit-*`` headers are reported
to ``on_rate_limit``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from app.errors import PermanentUpstreamError, UpstreamNotFound
from app.integrations.ghl.schemas import (
    GhlContact,
    GhlFieldDefinition,
    GhlLocation,
    GhlNote,
    GhlTask,
    GhlUser,
)
from app.integrations.upstream import UpstreamClient
from app.kit.clock import format_instant
from app.kit.http import RateLimitSnapshot, header_int, url_path

TokenSource = Callable[[], Awaitable[str]]
ModelT = TypeVar("ModelT", bound=BaseModel)


def _member(body: Any, key: str, model: type[ModelT]) -> ModelT:
    """The record under ``key`` of an answer (``{"task": {...}}``), validated."""
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise PermanentUpstreamError("ghl", f"the answer carries no {key}")
    return model.model_validate(value)


def _members(body: Any, key: str, model: type[ModelT]) -> list[ModelT]:
    values = body.get(key) if isinstance(body, dict) else None
    return [model.model_validate(value) for value in values or () if isinstance(value, dict)]


# Called with the token GHL answered 401 to; returns a newer token to retry with, or None.
Unauthorized = Callable[[str], Awaitable[str | None]]


def static_token(token: str) -> TokenSource:
    async def source() -> str:
        return token

    return source


def ghl_rate_limit(headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
    """GHL's ``X-RateLimit-*`` headers (docs/oauth/Authorization.md)."""
    remaining = header_int(headers, "x-ratelimit-remaining")
    if remaining is None:
        return None
    window_ms = header_int(headers, "x-ratelimit-interval-milliseconds")
    return RateLimitSnapshot(
        limit=header_int(headers, "x-ratelimit-max"),
        remaining=remaining,
        window_ms=window_ms,
        reset_at=None,
        daily_limit=header_int(headers, "x-ratelimit-limit-daily"),
        daily_remaining=header_int(headers, "x-ratelimit-daily-remaining"),
        observed_at=now,
    )


class GhlClient(UpstreamClient):
    upstream = "ghl"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        version: str,
        location_id: str,
        token: TokenSource,
        on_unauthorized: Unauthorized | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(http, **kwargs)
        self._base = base_url.rstrip("/")
        self._version = version
        self.location_id = location_id
        self._token = token
        self._on_unauthorized = on_unauthorized

    def _rate_limit(self, headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
        return ghl_rate_limit(headers, now)

    def _error_message(self, body: dict[str, Any], response: httpx.Response) -> str:
        message = body.get("message")
        if isinstance(message, list):
            return "; ".join(str(part) for part in message)
        if isinstance(message, str) and message:
            return message
        return super()._error_message(body, response)

    def _is_not_found(self, status: int, message: str) -> bool:
        # GHL answers some lookups of unknown ids with 400 "... not found" rather than 404.
        return status == 404 or (status == 400 and "not found" in message.lower())

    async def _call(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        token = await self._token()
        try:
            response = await self._send_as(token, method, path, idempotent, kwargs)
        except PermanentUpstreamError as exc:
            # A 401 for a scope the grant lacks is no expired token: a refresh cannot help.
            if exc.status != 401 or self._on_unauthorized is None or "scope" in exc.message.lower():
                raise
            fresh = await self._on_unauthorized(token)
            if fresh is None:
                raise
            response = await self._send_as(fresh, method, path, idempotent, kwargs)
        return response.json() if response.content else {}

    async def _send_as(
        self, token: str, method: str, path: str, idempotent: bool, kwargs: dict[str, Any]
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Version": self._version, "Accept": "application/json"}
        return await self.send(method, self._base + path, headers=headers, idempotent=idempotent, **kwargs)

    @staticmethod
    def _contact(body: Any) -> GhlContact:
        return _member(body, "contact", GhlContact)

    async def get_contact(self, contact_id: str) -> GhlContact | None:
        try:
            return self._contact(await self._call("GET", url_path("contacts", contact_id)))
        except UpstreamNotFound:
            return None

    async def search_contacts(
        self,
        *,
        search_after: list[Any] | None = None,
        sort_by: str = "dateAdded",
        updated_from: datetime | None = None,
        page_limit: int = 100,
    ) -> tuple[list[GhlContact], list[Any] | None]:
        """One page of ``POST /contacts/search``, ascending by ``sort_by``, and the next page's
        ``searchAfter`` (None on the last page). ``updated_from`` keeps contacts with
        ``dateUpdated`` at or after it."""
        body: dict[str, Any] = {
            "locationId": self.location_id,
            "pageLimit": page_limit,
            "sort": [{"field": sort_by, "direction": "asc"}],
        }
        if search_after:
            body["searchAfter"] = search_after
        if updated_from is not None:
            since = format_instant(updated_from)
            body["filters"] = [{"field": "dateUpdated", "operator": "range", "value": {"gte": since}}]
        answer = await self._call("POST", "/contacts/search", json=body)
        hits = answer.get("contacts") if isinstance(answer, dict) else None
        if not isinstance(hits, list):
            raise PermanentUpstreamError("ghl", "the search answer carries no contacts")
        contacts = [GhlContact.model_validate(hit) for hit in hits]
        following = hits[-1].get("searchAfter") if hits and len(hits) == page_limit else None
        return contacts, following if isinstance(following, list) and following else None

    async def upsert_contact(self, fields: dict[str, Any]) -> tuple[GhlContact, bool]:
        """Create, or update the contact GHL matches by email then phone; True when created."""
        body = await self._call("POST", "/contacts/upsert", json={**fields, "locationId": self.location_id})
        return self._contact(body), bool(body.get("new"))

    async def update_contact(self, contact_id: str, fields: dict[str, Any]) -> GhlContact:
        return self._contact(await self._call("PUT", url_path("contacts", contact_id), json=fields))

    async def find_duplicate(
        self, *, email: str | None = None, phone: str | None = None
    ) -> GhlContact | None:
        """The contact GHL's duplicate rules match to this email or phone, if any."""
        params = {"locationId": self.location_id}
        if email:
            params["email"] = email
        if phone:
            params["number"] = phone
        body = await self._call("GET", "/contacts/search/duplicate", params=params)
        contact = body.get("contact") if isinstance(body, dict) else None
        return GhlContact.model_validate(contact) if isinstance(contact, dict) else None

    async def set_company_name(
        self, contact_id: str, company_name: str | None, *, email: str | None, phone: str | None
    ) -> GhlContact | None:
        """Set ``companyName``, which GHL's update endpoint does not accept (it is not in UpdateContactDto).

        Only the upsert endpoint sets it, and upsert finds its contact by email or phone. So the
        identifier is first confirmed, by the duplicate search, to lead to this very contact. None when
        the contact has no such identifier (the name then cannot be written through the API).
        """
        for field, value in (("email", email), ("phone", phone)):
            if not value:
                continue
            found = await self.find_duplicate(**{field: value})
            if found is None or found.id != contact_id:
                continue
            contact, _ = await self.upsert_contact({field: value, "companyName": company_name})
            if contact.id != contact_id:
                raise PermanentUpstreamError(
                    "ghl", f"upsert by {field} reached contact {contact.id}, not {contact_id}"
                )
            return contact
        return None

    async def delete_contact(self, contact_id: str) -> None:
        try:
            await self._call("DELETE", url_path("contacts", contact_id))
        except UpstreamNotFound:
            return

    async def add_tags(self, contact_id: str, tags: list[str]) -> None:
        await self._call("POST", url_path("contacts", contact_id, "tags"), json={"tags": tags})

    # --- tasks -------------------------------------------------------------------------------------

    async def get_task(self, contact_id: str, task_id: str) -> GhlTask | None:
        try:
            return _member(
                await self._call("GET", url_path("contacts", contact_id, "tasks", task_id)), "task", GhlTask
            )
        except UpstreamNotFound:
            return None

    async def list_tasks(self, contact_id: str) -> list[GhlTask]:
        return _members(await self._call("GET", url_path("contacts", contact_id, "tasks")), "tasks", GhlTask)

    async def find_task(self, task_id: str, title: str | None) -> GhlTask | None:
        """Find a task of this location by id when its contact is unknown (the location task search)."""
        body: dict[str, Any] = {"limit": 100}
        if title:
            body["query"] = title
        found = await self._call(
            "POST", url_path("locations", self.location_id, "tasks", "search"), json=body
        )
        for task in _members(found, "tasks", GhlTask):
            if task.id == task_id:
                return task
        return None

    async def create_task(self, contact_id: str, fields: dict[str, Any]) -> GhlTask:
        body = await self._call(
            "POST", url_path("contacts", contact_id, "tasks"), json=fields, idempotent=False
        )
        return _member(body, "task", GhlTask)

    async def update_task(self, contact_id: str, task_id: str, fields: dict[str, Any]) -> GhlTask:
        body = await self._call("PUT", url_path("contacts", contact_id, "tasks", task_id), json=fields)
        return _member(body, "task", GhlTask)

    async def set_task_completed(self, contact_id: str, task_id: str, completed: bool) -> GhlTask:
        path = url_path("contacts", contact_id, "tasks", task_id, "completed")
        return _member(await self._call("PUT", path, json={"completed": completed}), "task", GhlTask)

    async def delete_task(self, contact_id: str, task_id: str) -> None:
        try:
            await self._call("DELETE", url_path("contacts", contact_id, "tasks", task_id))
        except UpstreamNotFound:
            return

    # --- notes -------------------------------------------------------------------------------------

    async def get_note(self, contact_id: str, note_id: str) -> GhlNote | None:
        try:
            return _member(
                await self._call("GET", url_path("contacts", contact_id, "notes", note_id)), "note", GhlNote
            )
        except UpstreamNotFound:
            return None

    async def list_notes(self, contact_id: str) -> list[GhlNote]:
        return _members(await self._call("GET", url_path("contacts", contact_id, "notes")), "notes", GhlNote)

    async def create_note(self, contact_id: str, fields: dict[str, Any]) -> GhlNote:
        body = await self._call(
            "POST", url_path("contacts", contact_id, "notes"), json=fields, idempotent=False
        )
        return _member(body, "note", GhlNote)

    async def update_note(self, contact_id: str, note_id: str, fields: dict[str, Any]) -> GhlNote:
        body = await self._call("PUT", url_path("contacts", contact_id, "notes", note_id), json=fields)
        return _member(body, "note", GhlNote)

    async def delete_note(self, contact_id: str, note_id: str) -> None:
        try:
            await self._call("DELETE", url_path("contacts", contact_id, "notes", note_id))
        except UpstreamNotFound:
            return

    # --- appointments (read-only) --------------------------------------------------------------------

    async def list_appointments(self, contact_id: str) -> list[dict[str, Any]]:
        """The contact's appointments as GHL shows them (GetEventSchema objects, passed through)."""
        body = await self._call("GET", url_path("contacts", contact_id, "appointments"))
        events = body.get("events") if isinstance(body, dict) else None
        return [event for event in events or () if isinstance(event, dict)]

    # --- the location ------------------------------------------------------------------------------

    async def get_location(self) -> GhlLocation:
        """The location this client is bound to (``get-location``; needs ``locations.readonly``)."""
        return _member(await self._call("GET", f"/locations/{self.location_id}"), "location", GhlLocation)

    async def first_contacts(self, limit: int = 1) -> list[GhlContact]:
        """The location's oldest contacts (``GET /contacts/``), a cheap read needing ``contacts.readonly``."""
        params = {"locationId": self.location_id, "limit": limit}
        return _members(await self._call("GET", "/contacts/", params=params), "contacts", GhlContact)

    async def first_tasks(self, limit: int = 1) -> list[GhlTask]:
        """The location's first tasks (the location task search, read-only; ``locations/tasks.readonly``)."""
        found = await self._call("POST", f"/locations/{self.location_id}/tasks/search", json={"limit": limit})
        return _members(found, "tasks", GhlTask)

    async def list_custom_fields(self) -> list[GhlFieldDefinition]:
        """The location's contact custom fields (id, name, fieldKey, dataType), as GHL lists them."""
        path = url_path("locations", self.location_id, "customFields")
        return _members(
            await self._call("GET", path, params={"model": "contact"}), "customFields", GhlFieldDefinition
        )

    async def list_users(self) -> list[GhlUser]:
        """The location's users (``GET /users/?locationId=``; needs ``users.readonly``)."""
        found = await self._call("GET", "/users/", params={"locationId": self.location_id})
        return _members(found, "users", GhlUser)
