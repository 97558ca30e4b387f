"""The sync engine: routes one stored event to its connection and to the handler of its record kind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.automation.config import field_maps, sync_config
from app.automation.enrich import Enricher
from app.automation.runner import EVENT_TYPE as AUTOMATION_EVENT
from app.automation.runner import AutomationRunner
from app.config import Settings
from app.connections.models import Connection, ConnectionStatus
from app.db import unit_of_work
from app.errors import LeaseLost, UnroutableEvent
from app.inbox import repository as inbox
from app.inbox.models import EventStatus, WebhookEvent
from app.integrations.ghl.app_events import APP_EVENTS, apply_app_event
from app.integrations.registry import Upstreams
from app.kit.clock import Clock
from app.kit.logs import bind_log_context
from app.sync import coalesce
from app.sync.base import EventContext, Handler, Job, Side, at_location
from app.sync.children import NoteSync, TaskSync
from app.sync.coalesce import CONTACT_TYPES, NOTE_TYPES, TASK_TYPES
from app.sync.contacts import UNCHANGED, ContactSync
from app.sync.repair import CHILD_TYPES, ChildRepair, ContactRepair
from app.sync.repair import TYPES as REPAIR_TYPES
from app.sync.task_poll import TaskPoll


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
        config = sync_config(settings)
        maps = field_maps(settings, config)
        lease = timedelta(seconds=settings.worker_lease_seconds)
        contact_options: dict[str, Any] = {
            "clock": clock,
            "lease": lease,
            "maps": maps,
            "delete_mode": settings.contact_delete_mode,
            "unlink_tag": settings.unlink_tag,
            "filters": config.filters,
        }
        self.contacts = ContactSync(sessions, **contact_options)
        due = timedelta(hours=settings.task_default_due_hours)
        tasks = TaskSync(sessions, clock=clock, lease=lease, maps=maps, default_due=due)
        notes = NoteSync(sessions, clock=clock, lease=lease, maps=maps)
        # Backfill and reconciliation hand their writes to the worker as synthetic events.
        self.repairs = ContactRepair(sessions, tie=settings.conflict_tie_winner, **contact_options)
        child_repairs = ChildRepair(
            sessions, clock=clock, lease=lease, tasks=tasks, notes=notes, tie=settings.conflict_tie_winner
        )
        # The one dispatch table: an event type is one entry here and one handler.
        self.handlers: dict[str, Handler] = {
            **dict.fromkeys(CONTACT_TYPES, self.contacts),
            **dict.fromkeys(REPAIR_TYPES, self.repairs),
            **dict.fromkeys(CHILD_TYPES, child_repairs),
            **dict.fromkeys(TASK_TYPES, tasks),
            **dict.fromkeys(NOTE_TYPES, notes),
        }
        self.automation: AutomationRunner | None = None
        if config.rules or config.enrichment.local or config.enrichment.http is not None:
            self.automation = AutomationRunner(
                sessions,
                clock=clock,
                lease=lease,
                config=config,
                maps=maps,
                enricher=Enricher.from_config(config.enrichment, clock),
            )
            self.handlers[AUTOMATION_EVENT] = self.automation
            for handler in (self.contacts, tasks, notes):
                handler.on_settled = self.automation.enqueue
        self.task_poll = TaskPoll(
            sessions,
            upstreams,
            maps=maps,
            clock=clock,
            contacts_per_round=settings.task_poll_contacts,
            round_seconds=settings.task_poll_seconds,
        )

    @staticmethod
    def plan(
        head: WebhookEvent, folded: Sequence[WebhookEvent], worker: str, connection: Connection | None
    ) -> Job:
        """The job for a claimed event: the newest state of it and of the events folded into it
        (``coalesce.foldable``: those waiting behind it that it may stand for), routed to
        ``connection`` (``connections.by_accounts``, read with the claim).

        The job runs under the head's claim (``event_id``); the events it supersedes are settled
        with it (see ``app.sync.coalesce``).
        """
        chosen = coalesce.newest([head, *folded]) if folded else head
        return Job(
            event_id=head.id,
            source=Side(head.source),
            type=coalesce.applied_type([head, *folded], chosen),
            account_key=head.account_key,
            payload=chosen.payload,
            worker=worker,
            ref=chosen.event_id,
            superseded=tuple(event.id for event in folded),
            connection=connection,
        )

    async def handle(self, job: Job) -> None:
        """Apply one event; raises the errors of ``app.errors`` for the worker to act on."""
        if job.type in APP_EVENTS:
            # App installs and uninstalls change the connections themselves; no connection routes them.
            note = await apply_app_event(self._sessions, job.type, job.payload, self._clock())
            await self._finish(job, EventStatus.DONE, note)
            return
        connection = job.connection
        if connection is None or connection.status != ConnectionStatus.ACTIVE:
            state = "disabled" if connection is not None else "no"
            raise UnroutableEvent(f"{state} connection for {job.source.value} account {job.account_key}")
        bind_log_context(connection=connection.id)
        handler = self.handlers.get(job.type)
        if handler is None:
            await self._skip(
                job,
                "no rules or enrichment are configured any more"
                if job.type == AUTOMATION_EVENT
                else f"{job.type} events are not synced by this version",
            )
            return
        with at_location(connection.ghl_location_id):
            await handler.handle(EventContext(job, connection, self._upstreams(connection)))

    async def settle_echoes(self, session: AsyncSession, jobs: Sequence[Job], now: datetime) -> set[int]:
        """Settle, in the claim's transaction (``session``), the claimed contact events that change
        nothing (``ContactSync.echoes``), and return their ids: the worker leaves them out, and logs
        them once the claim is committed.

        Each write of the service comes back as a webhook, so most events are such echoes. Settled
        here, a claim's echoes cost one lookup per connection and side and one UPDATE in all, where
        each would otherwise look its link up and settle on its own."""
        live = [
            job
            for job in jobs
            if job.type in CONTACT_TYPES
            and job.connection is not None
            and job.connection.status == ConnectionStatus.ACTIVE
        ]
        echoes = [job.event_id for job in await self.contacts.echoes(session, live)]
        if echoes:
            worker = jobs[0].worker
            await inbox.finish(session, echoes, worker, EventStatus.DONE, now, UNCHANGED)
        return set(echoes)

    async def _skip(self, job: Job, note: str) -> None:
        await self._finish(job, EventStatus.SKIPPED, note)

    async def _finish(self, job: Job, status: EventStatus, note: str) -> None:
        async with unit_of_work(self._sessions) as session:
            now = self._clock()
            if not await inbox.finish(session, [job.event_id], job.worker, status, now, note):
                raise LeaseLost()
            await inbox.finish_waiting(session, job.superseded, status, now, note)
