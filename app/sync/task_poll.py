"""The GHL task poll: GHL sends no event when a task is edited or re-opened.

GHL's webhook catalogue has TaskCreate, TaskComplete and TaskDelete only, so a task re-opened, renamed
or re-dated in GHL would never reach Rankr. Every ``TASK_POLL_SECONDS`` the worker reads the task
lists of a few contacts that have linked tasks (``TASK_POLL_CONTACTS`` per round, round robin: one
GHL read each), and queues a ``TaskUpdate`` event for every linked task whose state differs from what
was last synced. The worker applies it like any GHL event (read the task, write the change), so the
poll itself writes nothing. The event id names the task, the link's version and the state seen, so
several workers polling at once queue one event per change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app.connections.models import Connection, ConnectionStatus
from app.errors import UpstreamError
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, enqueue, ordering_key
from app.integrations.registry import Upstreams
from app.kit.clock import Clock, format_instant
from app.sync import mapping
from app.sync.mapping import FieldMaps
from app.sync.models import Kind, Link, LinkState

log = logging.getLogger(__name__)


class TaskPoll:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        upstreams: Callable[[Connection], Upstreams],
        *,
        maps: FieldMaps,
        clock: Clock,
        contacts_per_round: int,
    ) -> None:
        self._sessions = sessions
        self._upstreams = upstreams
        self._maps = maps
        self._clock = clock
        self._limit = contacts_per_round
        self._after = 0  # the round robin's position: contact link ids above it come next

    async def run_once(self) -> int:
        """Poll the next contacts; returns how many task changes were queued."""
        task = aliased(Link)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Link, Connection)
                    .join(Connection, Connection.id == Link.connection_id)
                    .where(
                        Link.kind == Kind.CONTACT,
                        Link.state == LinkState.LINKED,
                        Link.id > self._after,
                        Connection.status == ConnectionStatus.ACTIVE,
                        select(task.id)
                        .where(task.parent_id == Link.id, task.state == LinkState.LINKED)
                        .exists(),
                    )
                    .order_by(Link.id)
                    .limit(self._limit)
                )
            ).all()
        self._after = rows[-1][0].id if len(rows) == self._limit else 0
        queued = 0
        for contact, connection in rows:
            try:
                queued += await self._poll_contact(contact, connection)
            except UpstreamError as exc:
                log.warning("task_poll.failed", extra={"link": contact.id, "error": str(exc)[:200]})
        return queued

    async def _poll_contact(self, contact: Link, connection: Connection) -> int:
        assert contact.ghl_id is not None  # noqa: S101 - a linked contact has both ids
        tasks = await self._upstreams(connection).ghl.list_tasks(contact.ghl_id)
        async with self._sessions() as session:
            linked = {
                link.ghl_id: link
                for link in (
                    await session.scalars(
                        select(Link).where(
                            Link.parent_id == contact.id,
                            Link.kind == Kind.TASK,
                            Link.state == LinkState.LINKED,
                        )
                    )
                ).all()
            }
        queued = 0
        for task in tasks:
            link = linked.get(task.id)
            if link is None or not mapping.changes(mapping.task_from_ghl(task, self._maps), link.snapshot):
                continue
            body = task.model_dump(by_alias=True, exclude_none=True)
            now = self._clock()
            payload = {
                **body,
                "type": "TaskUpdate",
                "locationId": connection.ghl_location_id,
                "contactId": contact.ghl_id,
                "timestamp": format_instant(now),
            }
            # One request per (state synced, state seen): a repeat poll finds the same id.
            seen = mapping.fingerprint(mapping.task_from_ghl(task, self._maps))[:16]
            version = int(link.updated_at.timestamp() * 1000)
            event = IncomingEvent(
                Source.GHL,
                f"poll:task:{task.id}:{version}:{seen}",
                "TaskUpdate",
                connection.ghl_location_id,
                ordering_key(Source.GHL, connection.ghl_location_id, Kind.TASK, task.id),
                payload,
            )
            queued += await enqueue(self._sessions, event, now)
        return queued
