"""Carries the rules out: task templates, routing, tags, and enrichment, after an event was synced.

When a synced event may set a rule off (its type is one a rule listens to, or enrichment is on for
contact changes), the handler's final transaction also queues an ``automation.run`` event for the
contact (``enqueue``), so automations are as durable as the sync itself: retried, and never lost
with a crash. Running it (``handle``):

- The rules are evaluated against the contact as both sides hold it (the link's snapshot), the
  event's trigger and source, GHL's ``source`` of the contact (read only when a rule asks for it),
  and its recent activity (tasks and notes created within the rule's window).
- **A rule acts at most once per contact.** A ``rule_runs`` row is committed before the rule writes
  anything and marked done with its audit entry; a replayed or repeated event finds it done. A run
  cut short by a crash resumes: its task is looked for on the GHL contact before it is created.
- Task templates are created on the GHL contact (GHL's TaskCreate then brings them to Rankr like
  any task); routing sets GHL ``assignedTo`` (round robin in the order the contacts were routed) and
  adds tags. Every decision goes into the audit log with the rule's name.
- Enrichment fills empty fields only, re-checked against Rankr's current record just before the
  write; the change then reaches GHL through the normal sync. A failing provider is noted, never an
  error.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.automation.config import SyncConfig
from app.automation.enrich import Enricher, LocalProvider
from app.automation.models import RuleRun
from app.automation.rules import TRIGGERS, Decision, Signals, decide, listens, needs_activity
from app.db import unit_of_work
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, enqueue_in, ordering_key
from app.kit.clock import format_instant
from app.sync import mapping
from app.sync import repository as links
from app.sync.base import EventContext, Handler, Job, Settlement, Side, Upstreams
from app.sync.mapping import FieldMaps
from app.sync.models import Kind, Link, LinkState

log = logging.getLogger(__name__)

EVENT_TYPE = "automation.run"
CONTACT_TRIGGERS = frozenset({"contact.created", "contact.updated"})


class AutomationRunner(Handler):
    kind = Kind.CONTACT.value

    def __init__(
        self, *args: Any, config: SyncConfig, maps: FieldMaps, enricher: Enricher | None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.config = config
        self._maps = maps
        self.enricher = enricher

    def wants(self, event_type: str) -> bool:
        """Whether a synced event of this type may set off a rule or an enrichment."""
        if listens(self.config, event_type):
            return True
        return self.enricher is not None and TRIGGERS.get(event_type) in CONTACT_TRIGGERS

    async def enqueue(self, session: AsyncSession, job: Job, result: Settlement, kind: str) -> None:
        """Queue the automation run of a synced event, in the transaction that settles it."""
        if result.link_id is None or not self.wants(job.type):
            return
        contact_link_id: int | None = result.link_id
        if kind != Kind.CONTACT:
            child = await links.get(session, result.link_id)
            contact_link_id = child.parent_id if child is not None else None
        if contact_link_id is None:
            return
        source = Source(job.source.value)
        payload = {
            "type": EVENT_TYPE,
            "trigger": TRIGGERS[job.type],
            "eventType": job.type,
            "source": job.source.value,
            "contactLinkId": contact_link_id,
            "eventId": job.event_id,
        }
        key = ordering_key(source, job.account_key, "automation", str(contact_link_id))
        event = IncomingEvent(source, f"automation:{job.event_id}", EVENT_TYPE, job.account_key, key, payload)
        enqueue_in(session, event, self._clock())

    # --- running -------------------------------------------------------------------------------------

    async def handle(self, context: EventContext) -> None:
        async with self._sessions() as session:
            contact = await links.get(session, int(context.job.payload["contactLinkId"]))
        if contact is None or contact.state != LinkState.LINKED or contact.ghl_id is None:
            await self.settle(context, Settlement(note="the contact is no longer linked"))
            return
        trigger = str(context.job.payload["trigger"])
        signals = await self._signals(trigger, str(context.job.payload["source"]), contact, context.upstreams)
        notes = []
        location = context.connection.ghl_location_id
        for decision in decide(self.config, signals, self._clock(), location):
            notes.append(await self._carry_out(context, contact, decision))
        if self.enricher is not None and trigger in CONTACT_TRIGGERS:
            notes.append(await self._enrich(context, contact))
        note = "; ".join(note for note in notes if note) or "no rule applies"
        await self.settle(context, Settlement(note=note[:1000]))

    async def _signals(self, trigger: str, source: str, contact: Link, upstreams: Upstreams) -> Signals:
        fields = dict(contact.snapshot or {})
        contact_source = None
        if any(rule.when.sources for rule in self.config.rules):
            assert contact.ghl_id is not None  # noqa: S101 - checked by handle()
            found = await upstreams.ghl.get_contact(contact.ghl_id)
            contact_source = found.source if found is not None else None
        activity: dict[float, int] = {}
        now = self._clock()
        async with self._sessions() as session:
            for days in needs_activity(self.config):
                since = now - timedelta(days=days)
                activity[days] = int(
                    await session.scalar(
                        select(func.count())
                        .select_from(Link)
                        .where(Link.parent_id == contact.id, Link.created_at >= since)
                    )
                    or 0
                )
        return Signals(trigger, source, fields, contact_source, activity)

    async def _carry_out(self, context: EventContext, contact: Link, decision: Decision) -> str:
        run, resumed = await self._start(context, contact, decision)
        if run is None:
            return ""  # this rule acted on this contact already
        ghl_id = contact.ghl_id
        assert ghl_id is not None  # noqa: S101 - checked by handle()
        described = decision.describe()
        if decision.task is not None:
            task = decision.task
            existing = await context.upstreams.ghl.list_tasks(ghl_id) if resumed else []
            if not any(found.title == task.title for found in existing):
                body: dict[str, Any] = {
                    "title": task.title,
                    "dueDate": format_instant(task.due),
                    "completed": False,
                }
                if task.body:
                    body["body"] = task.body
                if task.assignee:
                    body["assignedTo"] = task.assignee
                create = context.upstreams.ghl.create_task(ghl_id, body)
                await self.write(context, contact, Side.GHL, "rule", described, create)
        if decision.assign_to:
            user = await self._pick(run, decision)
            described["assignedTo"] = user
            assign = context.upstreams.ghl.update_contact(ghl_id, {"assignedTo": user})
            await self.write(context, contact, Side.GHL, "rule", described, assign)
        if decision.add_tags:
            tag = context.upstreams.ghl.add_tags(ghl_id, mapping.tags(decision.add_tags))
            await self.write(context, contact, Side.GHL, "rule", described, tag)
        async with unit_of_work(self._sessions) as session:
            saved = await session.get(RuleRun, run.id)
            assert saved is not None  # noqa: S101 - rule runs go only with their contact
            saved.state, saved.decision, saved.finished_at = "done", described, self._clock()
            entry = self.audit(contact, Side.GHL, "rule", described, detail=f"rule {decision.rule.name}")
            await self.record(session, context, entry)
        return f"rule {decision.rule.name} applied"

    async def _start(
        self, context: EventContext, contact: Link, decision: Decision
    ) -> tuple[RuleRun | None, bool]:
        """The rule's run on this contact, begun now or resumed (None when it is done already)."""
        try:
            async with unit_of_work(self._sessions) as session:
                run = RuleRun(
                    connection_id=context.connection.id,
                    rule=decision.rule.name,
                    contact_link_id=contact.id,
                    event_id=context.job.event_id,
                    state="started",
                    decision={},
                    created_at=self._clock(),
                )
                session.add(run)
            return run, False
        except IntegrityError:
            async with self._sessions() as session:
                found = await session.scalar(
                    select(RuleRun).where(
                        RuleRun.connection_id == context.connection.id,
                        RuleRun.rule == decision.rule.name,
                        RuleRun.contact_link_id == contact.id,
                    )
                )
            if found is None or found.state == "done":
                return None, False
            return found, True

    async def _pick(self, run: RuleRun, decision: Decision) -> str:
        """Round robin: the contacts a rule routed before this one decide whose turn it is."""
        async with self._sessions() as session:
            before = await session.scalar(
                select(func.count())
                .select_from(RuleRun)
                .where(
                    RuleRun.connection_id == run.connection_id,
                    RuleRun.rule == run.rule,
                    RuleRun.id < run.id,
                )
            )
        return decision.assign_to[int(before or 0) % len(decision.assign_to)]

    async def _enrich(self, context: EventContext, contact: Link) -> str:
        assert self.enricher is not None  # noqa: S101 - checked by handle()
        fills, failures = await self.enricher.fills(contact.snapshot or {})
        failed = f"enrichment failed: {', '.join(failures)}" if failures else ""
        if not fills or contact.rankr_id is None:
            return failed
        current = await context.upstreams.rankr.get_contact(contact.rankr_id)
        if current is None:
            return failed
        # Only fields still empty now: never overwrite what a person entered meanwhile.
        maps = self._maps.at(context.connection.ghl_location_id)
        now_held = mapping.from_rankr(current, maps)
        fills = {name: value for name, value in fills.items() if now_held.get(name) in (None, "", [])}
        if not fills:
            return failed
        changes = mapping.describe(fills, now_held)
        call = context.upstreams.rankr.update_contact(contact.rankr_id, mapping.rankr_body(fills, maps))
        await self.write(context, contact, Side.RANKR, "enrich", changes, call)
        async with unit_of_work(self._sessions) as session:
            await self.record(session, context, self.audit(contact, Side.RANKR, "enrich", changes))
        return "; ".join(part for part in (f"enriched {sorted(fills)}", failed) if part)


def contact_fields_of(event: dict[str, Any], maps: FieldMaps) -> tuple[str, str | None, dict[str, Any]]:
    """For a dry run: the (source, trigger, contact fields) an event body shows by itself."""
    from app.integrations.ghl.schemas import GhlContact
    from app.integrations.rankr.schemas import RankrContact

    event_type = str(event.get("type", ""))
    trigger = TRIGGERS.get(event_type)
    if "accountId" in event and isinstance(event.get("data"), dict):
        data = event["data"]
        if event_type.startswith("contact."):
            return "rankr", trigger, mapping.from_rankr(RankrContact.model_validate(data), maps)
        return "rankr", trigger, {}
    if event_type.startswith("Contact"):
        return "ghl", trigger, mapping.from_ghl(GhlContact.model_validate(event), maps)
    return "ghl", trigger, {}


async def dry_run(
    config: SyncConfig, event: dict[str, Any], maps: FieldMaps, now: datetime, location: str | None = None
) -> dict[str, Any]:
    """What the rules (and the local enrichment) would do for ``event``, a webhook body of either
    product, judged by the event alone: nothing is read from or written to anywhere. With a GHL
    ``location``, as that location's connection would (its rules and custom fields)."""
    source, trigger, contact = contact_fields_of(event, maps.at(location))
    if trigger is None:
        return {"trigger": None, "decisions": [], "note": f"no rule listens to {event.get('type')!r} events"}
    signals = Signals(trigger, source, contact)
    decisions = [decision.describe() for decision in decide(config, signals, now, location)]
    result: dict[str, Any] = {"trigger": trigger, "source": source, "decisions": decisions}
    if config.enrichment.local and trigger in CONTACT_TRIGGERS and contact:
        local = Enricher([LocalProvider()], cache_for=timedelta(0), clock=lambda: now)
        result["enrichment"] = (await local.fills(contact))[0]
    if not contact:
        result["note"] = "the event carries no contact; rules on contact fields see none"
    return result
