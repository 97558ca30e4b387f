"""The GHL Contacts API client (``Version`` header from settings), bound to one location.

Authentication is a token source: a Private Integration token today, OAuth access tokens later.
Every answer's ``X-RateLimit-*`` headers are reported to ``on_rate_limit``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from app.errors import PermanentUpstreamError, UpstreamNotFound
from app.integrations.ghl.schemas import GhlContact
from app.kit.clock import format_instant
from app.kit.http import RateLimitSnapshot, UpstreamClient, ghl_rate_limit

TokenSource = Callable[[], Awaitable[str]]


def static_token(token: str) -> TokenSource:
    async def source() -> str:
        return token

    return source


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
        **kwargs: Any,
    ) -> None:
        super().__init__(http, **kwargs)
        self._base = base_url.rstrip("/")
        self._version = version
        self.location_id = location_id
        self._token = token

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
        headers = {
            "Authorization": f"Bearer {await self._token()}",
            "Version": self._version,
            "Accept": "application/json",
        }
        response = await self.send(
            method, self._base + path, headers=headers, idempotent=idempotent, **kwargs
        )
        return response.json() if response.content else {}

    @staticmethod
    def _contact(body: Any) -> GhlContact:
        contact = body.get("contact") if isinstance(body, dict) else None
        if not isinstance(contact, dict):
            raise PermanentUpstreamError("ghl", "the answer carries no contact")
        return GhlContact.model_validate(contact)

    async def get_contact(self, contact_id: str) -> GhlContact | None:
        try:
            return self._contact(await self._call("GET", f"/contacts/{contact_id}"))
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
        return self._contact(await self._call("PUT", f"/contacts/{contact_id}", json=fields))

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
            await self._call("DELETE", f"/contacts/{contact_id}")
        except UpstreamNotFound:
            return

    async def add_tags(self, contact_id: str, tags: list[str]) -> None:
        await self._call("POST", f"/contacts/{contact_id}/tags", json={"tags": tags})
