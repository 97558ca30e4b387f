"""The Rankr API client, bound to one account: client-credentials token, cached until shortly before expiry.

Every Rankr route, ``/oauth/token`` included, is relative to ``RANKR_API_BASE_URL`` (which may carry
a path). Every answer's ``RateLimit-*`` headers are reported to ``on_rate_limit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from app.errors import PermanentUpstreamError, UpstreamError, UpstreamNotFound
from app.integrations.rankr.schemas import RankrContact, RankrFieldSurvey, RankrNote, RankrTask
from app.integrations.upstream import UpstreamClient
from app.kit.clock import format_instant
from app.kit.http import RateLimitSnapshot, header_int, url_path

SCOPES = "contacts.read contacts.write tasks.read tasks.write notes.read notes.write"
# Renew this long before the token expires, so no request goes out with a token about to lapse.
TOKEN_MARGIN = timedelta(seconds=60)


def rankr_rate_limit(headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
    """Rankr's IETF-draft ``RateLimit-*`` headers (Reset in seconds from now)."""
    remaining = header_int(headers, "ratelimit-remaining")
    if remaining is None:
        return None
    reset = header_int(headers, "ratelimit-reset")
    return RateLimitSnapshot(
        limit=header_int(headers, "ratelimit-limit"),
        remaining=remaining,
        window_ms=None,
        reset_at=now + timedelta(seconds=reset) if reset is not None else None,
        daily_limit=None,
        daily_remaining=None,
        observed_at=now,
    )


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A created contact, or the id of the contact that already holds the email (Rankr's 409)."""

    contact: RankrContact | None
    existing_id: str | None


class RankrClient(UpstreamClient):
    upstream = "rankr"

    def __init__(
        self, http: httpx.AsyncClient, *, base_url: str, client_id: str, client_secret: str, **kwargs: Any
    ) -> None:
        super().__init__(http, **kwargs)
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    def _rate_limit(self, headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
        return rankr_rate_limit(headers, now)

    def _error_message(self, body: dict[str, Any], response: httpx.Response) -> str:
        for key in ("detail", "title", "error_description", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return super()._error_message(body, response)

    @property
    def token_expires_at(self) -> datetime | None:
        return self._expires_at

    def forget_token(self) -> None:
        """The next request asks ``/oauth/token`` for a new token (the credentials may have changed)."""
        self._token = None

    async def _access_token(self) -> str:
        async with self._lock:
            now = self._clock()
            if self._token and self._expires_at and now < self._expires_at - TOKEN_MARGIN:
                return self._token
            response = await self.send(
                "POST",
                f"{self._base}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "scope": SCOPES,
                },
                paced=False,
            )
            body = response.json()
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise PermanentUpstreamError("rankr", "the token answer carries no access_token")
            self._token = token
            self._expires_at = now + timedelta(seconds=float(body.get("expires_in", 3600)))
            return token

    async def _call(self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> Any:
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {await self._access_token()}", "Accept": "application/json"}
            try:
                response = await self.send(
                    method, self._base + path, headers=headers, idempotent=idempotent, **kwargs
                )
            except UpstreamError as exc:
                # A token revoked or expired early: fetch a new one once, then give up.
                if exc.status == 401 and attempt == 0:
                    self._token = None
                    continue
                raise
            return response.json() if response.content else {}
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_contact(self, contact_id: str) -> RankrContact | None:
        try:
            return RankrContact.model_validate(await self._call("GET", url_path("contacts", contact_id)))
        except UpstreamNotFound:
            return None

    async def list_contacts(
        self, *, cursor: str | None = None, updated_since: datetime | None = None, limit: int = 200
    ) -> tuple[list[RankrContact], str | None]:
        """One page of ``GET /contacts`` (oldest ``lastModified`` first) and the next page's cursor."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if updated_since is not None:
            params["updatedSince"] = format_instant(updated_since)
        body = await self._call("GET", "/contacts", params=params)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise PermanentUpstreamError("rankr", "the contact list carries no data")
        following = body.get("nextCursor")
        contacts = [RankrContact.model_validate(item) for item in data]
        return contacts, following if isinstance(following, str) and following else None

    async def survey_contacts(self, max_contacts: int = 1000, samples: int = 3) -> RankrFieldSurvey:
        """The custom field keys and owner ids of the account's contacts, from at most ``max_contacts``
        of them (Rankr has no list of custom fields: its keys are whatever the contacts carry)."""
        survey = RankrFieldSurvey()
        cursor: str | None = None
        while survey.contacts_read < max_contacts:
            limit = min(200, max_contacts - survey.contacts_read)
            contacts, cursor = await self.list_contacts(cursor=cursor, limit=limit)
            for contact in contacts:
                for key, value in contact.custom_fields.items():
                    seen = survey.custom_fields.setdefault(key, [])
                    if value is not None and value not in seen and len(seen) < samples:
                        seen.append(value)
                if contact.owner_id:
                    survey.owner_ids.add(contact.owner_id)
            survey.contacts_read += len(contacts)
            if cursor is None or not contacts:
                break
        return survey

    async def create_contact(self, fields: dict[str, Any]) -> CreateResult:
        try:
            body = await self._call("POST", "/contacts", json=fields, idempotent=False)
        except PermanentUpstreamError as exc:
            existing = exc.body.get("contactId")
            if exc.status == 409 and isinstance(existing, str) and existing:
                return CreateResult(contact=None, existing_id=existing)
            raise
        return CreateResult(contact=RankrContact.model_validate(body), existing_id=None)

    async def update_contact(self, contact_id: str, fields: dict[str, Any]) -> RankrContact:
        return RankrContact.model_validate(
            await self._call("PUT", url_path("contacts", contact_id), json=fields)
        )

    async def delete_contact(self, contact_id: str) -> None:
        try:
            await self._call("DELETE", url_path("contacts", contact_id))
        except UpstreamNotFound:
            return

    # --- tasks and notes: ``/contacts/{contactId}/{tasks|notes}[/{id}]`` ----------------------------

    async def get_task(self, contact_id: str, task_id: str) -> RankrTask | None:
        try:
            return RankrTask.model_validate(
                await self._call("GET", url_path("contacts", contact_id, "tasks", task_id))
            )
        except UpstreamNotFound:
            return None

    async def list_tasks(self, contact_id: str) -> list[RankrTask]:
        return [
            RankrTask.model_validate(item)
            async for item in self._pages(url_path("contacts", contact_id, "tasks"))
        ]

    async def create_task(self, contact_id: str, fields: dict[str, Any]) -> RankrTask:
        body = await self._call(
            "POST", url_path("contacts", contact_id, "tasks"), json=fields, idempotent=False
        )
        return RankrTask.model_validate(body)

    async def update_task(self, contact_id: str, task_id: str, fields: dict[str, Any]) -> RankrTask:
        body = await self._call("PUT", url_path("contacts", contact_id, "tasks", task_id), json=fields)
        return RankrTask.model_validate(body)

    async def delete_task(self, contact_id: str, task_id: str) -> None:
        with suppress(UpstreamNotFound):
            await self._call("DELETE", url_path("contacts", contact_id, "tasks", task_id))

    async def get_note(self, contact_id: str, note_id: str) -> RankrNote | None:
        try:
            return RankrNote.model_validate(
                await self._call("GET", url_path("contacts", contact_id, "notes", note_id))
            )
        except UpstreamNotFound:
            return None

    async def list_notes(self, contact_id: str) -> list[RankrNote]:
        return [
            RankrNote.model_validate(item)
            async for item in self._pages(url_path("contacts", contact_id, "notes"))
        ]

    async def create_note(self, contact_id: str, body: str) -> RankrNote:
        answer = await self._call(
            "POST", url_path("contacts", contact_id, "notes"), json={"body": body}, idempotent=False
        )
        return RankrNote.model_validate(answer)

    async def update_note(self, contact_id: str, note_id: str, body: str) -> RankrNote:
        answer = await self._call(
            "PUT", url_path("contacts", contact_id, "notes", note_id), json={"body": body}
        )
        return RankrNote.model_validate(answer)

    async def delete_note(self, contact_id: str, note_id: str) -> None:
        with suppress(UpstreamNotFound):
            await self._call("DELETE", url_path("contacts", contact_id, "notes", note_id))

    async def _pages(self, path: str, **params: str) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged list (``Page``: ``data`` and ``nextCursor``)."""
        cursor: str | None = None
        while True:
            query = {**params, "limit": "200", **({"cursor": cursor} if cursor else {})}
            page = await self._call("GET", path, params=query)
            for item in page.get("data") or ():
                if isinstance(item, dict):
                    yield item
            cursor = page.get("nextCursor")
            if not cursor:
                return
