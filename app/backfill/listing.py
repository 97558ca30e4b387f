"""Listing both sides' contacts into staging, page by page, each page committed with its cursor.

A page that fails for a transient reason is asked again along RETRY_SCHEDULE (never sooner than the
upstream's Retry-After); the lease is kept meanwhile, and the checkpoint keeps what was listed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.backfill import repository as repo
from app.backfill.job import JobLease
from app.config import Settings
from app.connections.models import Connection
from app.db import unit_of_work
from app.errors import TransientUpstreamError
from app.integrations.registry import Upstreams
from app.kit.clock import parse_instant
from app.kit.loop import cancel_and_wait
from app.sync import mapping
from app.sync.mapping import Canonical, FieldMaps

log = logging.getLogger(__name__)

RANKR_PAGE = 200
GHL_PAGE = 100

Page = Callable[[Any], Awaitable[tuple[list[dict[str, Any]], Any]]]


def staged_row(
    connection: Connection, job: str, side: str, record_id: str, fields: Canonical, **extra: Any
) -> dict[str, Any]:
    """A ``staged_contacts`` row: the record's canonical fields and its match keys."""
    email, phone = mapping.match_keys(fields)
    return {
        "connection_id": connection.id,
        "job": job,
        "side": side,
        "record_id": record_id,
        "fields": fields,
        "fingerprint": mapping.fingerprint(fields),
        "match_email": email,
        "match_phone": phone,
        **extra,
    }


def later(stored: str | None, seen: datetime) -> str:
    previous = parse_instant(stored)
    return (seen if previous is None or seen > previous else previous).isoformat()


class Lister:
    """Lists contacts into staging for the job that holds ``lease``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        lease: JobLease,
        maps: FieldMaps,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._lease = lease
        self._maps = maps
        # Both sides are listed at once; a page's checkpoint merges its cursor into the row's.
        self._checkpointing = asyncio.Lock()

    async def list_both(
        self,
        connection: Connection,
        up: Upstreams,
        job: str,
        keys: tuple[str, str],
        since: dict[str, Any] | None = None,
    ) -> None:
        """List Rankr and GHL at once (each side has its own budget, so neither waits for the other),
        then refresh the staging table's statistics; the first failure stops the other listing too."""
        since = since or {}
        listings = [
            asyncio.create_task(
                self._list_rankr(connection, up, job, keys[0], parse_instant(since.get("rankr")))
            ),
            asyncio.create_task(
                self._list_ghl(connection, up, job, keys[1], parse_instant(since.get("ghl")))
            ),
        ]
        try:
            await asyncio.gather(*listings)
        finally:
            await cancel_and_wait(*listings)
        async with unit_of_work(self._sessions) as session:
            await repo.analyze_staged(session)

    async def _list_rankr(
        self, connection: Connection, up: Upstreams, job: str, key: str, since: datetime | None = None
    ) -> None:
        """Page through Rankr's contacts (changed since ``since``) into staging; resumable by ``key``."""

        async def page(position: Any) -> tuple[list[dict[str, Any]], Any]:
            contacts, following = await up.rankr.list_contacts(
                cursor=position, updated_since=since, limit=RANKR_PAGE
            )
            rows = [
                staged_row(
                    connection,
                    job,
                    "rankr",
                    contact.contact_id,
                    mapping.from_rankr(contact, self._maps),
                    wire=contact.model_dump(by_alias=True, mode="json"),
                    modified_at=contact.last_modified,
                )
                for contact in contacts
            ]
            return rows, following

        await self._list(key, page)

    async def _list_ghl(
        self, connection: Connection, up: Upstreams, job: str, key: str, since: datetime | None = None
    ) -> None:
        """Page through GHL's contacts (by ``dateAdded``, or updated since ``since`` by ``dateUpdated``)."""
        sort_by = "dateAdded" if since is None else "dateUpdated"

        async def page(position: Any) -> tuple[list[dict[str, Any]], Any]:
            contacts, following = await up.ghl.search_contacts(
                search_after=position, sort_by=sort_by, updated_from=since, page_limit=GHL_PAGE
            )
            rows = [
                staged_row(
                    connection,
                    job,
                    "ghl",
                    contact.id,
                    mapping.from_ghl(contact, self._maps),
                    wire=contact.model_dump(by_alias=True, mode="json"),
                    modified_at=parse_instant(contact.date_updated),
                )
                for contact in contacts
            ]
            return rows, following

        await self._list(key, page)

    async def _list(self, key: str, page: Page) -> None:
        """Stage page after page; each page is committed with the cursor of the next one (the
        checkpoint ``key``) and the newest modification time seen (``<key>Newest``)."""
        lease = self._lease
        if lease.cursor.get(f"{key}Done"):
            return
        fetching = asyncio.create_task(self.with_retries(page, lease.cursor.get(key)))
        try:
            while True:
                rows, following = await fetching
                if following is not None:  # asked for while this page is staged
                    fetching = asyncio.create_task(self.with_retries(page, following))
                lease.count(f"{key}Listed", len(rows))
                newest = max(
                    (row["modified_at"] for row in rows if row["modified_at"] is not None), default=None
                )
                async with self._checkpointing, unit_of_work(self._sessions) as session:
                    await repo.stage(session, rows)
                    cursor = {**lease.cursor, key: following, f"{key}Done": following is None}
                    if newest is not None:
                        cursor[f"{key}Newest"] = later(cursor.get(f"{key}Newest"), newest)
                    await lease.save(session, cursor=cursor)
                if following is None:
                    return
        finally:
            await cancel_and_wait(fetching)

    async def with_retries(self, page: Callable[[Any], Awaitable[Any]], position: Any) -> Any:
        """One page, waiting out rate limits and outages along RETRY_SCHEDULE (never sooner than the
        upstream's Retry-After) before giving up."""
        delays = self._settings.retry_delays
        for attempt in range(self._settings.max_attempts):
            try:
                return await page(position)
            except TransientUpstreamError as exc:
                if attempt + 1 >= self._settings.max_attempts:
                    raise
                wait = max(delays[min(attempt, len(delays) - 1)], exc.retry_after or 0.0)
                log.warning("sync_run.listing_retry", extra={"job": self._lease.job, "in_seconds": wait})
                deadline = time.monotonic() + wait
                while (left := deadline - time.monotonic()) > 0:
                    await self._lease.save()  # keep the lease while waiting
                    await asyncio.sleep(min(left, self._lease.lease.total_seconds() / 3))
        raise AssertionError("unreachable")  # pragma: no cover
