"""The sync engine: routes one stored event to its connection and to the handler of its record kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.connections import repository as connections
from app.connections.models import Connection, ConnectionStatus
from app.db import unit_of_work
from app.errors import UnroutableEvent
from app.inbox import repository as inbox
from app.inbox.models import EventStatus, WebhookEvent
from app.integrations.registry import Upstreams
from app.kit.clock import Clock
from app.sync import coalesce
from app.sync.base import Job, LeaseLost, Side
from app.sync.coalesce import CONTACT_TYPES
from app.sync.contacts import ContactSync
from app.sync.mapping import FieldMaps


class SyncEngine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        upstreams: Callable[[Connection], Upstreams],
        *,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._upstreams = upstreams
        self._clock = clock
        maps = FieldMaps(custom_fields=settings.custom_fields, users=settings.users)
        self.contacts = ContactSync(
            sessions,
            clock=clock,
            lease=timedelta(seconds=settings.worker_lease_seconds),
            maps=maps,
            delete_mode=settings.contact_delete_mode,
            unlink_tag=settings.unlink_tag,
        )

    @staticmethod
    def plan(head: WebhookEvent, waiting: Sequence[WebhookEvent], worker: str) -> Job:
        """The job for a claimed event: the newest state of it and the events waiting behind it.

        The job runs under the head's claim (``event_id``); the events it supersedes are settled
        with it (see ``app.sync.coalesce``).
        """
        folded = coalesce.foldable(head, waiting)
        chosen = coalesce.newest([head, *folded]) if folded else head
        return Job(
            event_id=head.id,
            source=Side(head.source),
            type=chosen.type,
            account_key=head.account_key,
            payload=chosen.payload,
            worker=worker,
            superseded=tuple(event.id for event in folded),
        )

    async def handle(self, job: Job) -> None:
        """Apply one event; raises the errors of ``app.errors`` for the worker to act on."""
        async with self._sessions() as session:
            connection = await connections.by_account(session, job.source.value, job.account_key)
        if connection is None or connection.status != ConnectionStatus.ACTIVE:
            state = "disabled" if connection is not None else "no"
            raise UnroutableEvent(f"{state} connection for {job.source.value} account {job.account_key}")
        if job.type in CONTACT_TYPES:
            await self.contacts.handle(job, connection, self._upstreams(connection))
            return
        await self._skip(job, f"{job.type} events are not synced by this version")

    async def _skip(self, job: Job, note: str) -> None:
        async with unit_of_work(self._sessions) as session:
            now = self._clock()
            if not await inbox.finish(session, job.event_id, job.worker, EventStatus.SKIPPED, now, note):
                raise LeaseLost()
            await inbox.finish_waiting(session, job.superseded, EventStatus.SKIPPED, now, note)
