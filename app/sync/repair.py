"""The synthetic events of backfill and reconciliation, applied by the worker like any webhook.

``sync.contact.pair`` links two records the backfill found to be the same person and merges their
fields; ``sync.contact.reconcile`` compares a linked pair with both sides as they are now and
repairs what drifted, a record gone from one side included (handled as its delete webhook would
be, per ``CONTACT_DELETE_MODE``). Both reuse the contact handler's leases, audited writes and the
one final commit, so they hold the same guarantees as webhook-driven work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.connections.models import Connection
from app.db import autocommit
from app.errors import Deferred
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, enqueue, ordering_key
from app.sync import mapping
from app.sync import repository as links
from app.sync.base import (
    EventContext,
    Handler,
    Job,
    Observed,
    Settlement,
    Side,
    Upstreams,
    newest,
    snapshot_values,
)
from app.sync.children import SURVEY, ChildSync, NoteSync, TaskSync
from app.sync.contacts import KIND, ContactSync
from app.sync.mapping import Canonical
from app.sync.merge import Winner, merge
from app.sync.models import Kind, Link, LinkState
from app.sync.pairing import pair_up

PAIR = "sync.contact.pair"
RECONCILE = "sync.contact.reconcile"
TYPES = frozenset({PAIR, RECONCILE})


class ContactRepair(ContactSync):
    """Applies ``sync.contact.*`` events: link-and-merge a pair, or reconcile a link."""

    def __init__(self, *args: Any, tie: Winner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tie = tie

    async def handle(self, context: EventContext) -> None:
        if context.job.type == PAIR:
            await self._pair(context, str(context.job.payload["rankrId"]), str(context.job.payload["ghlId"]))
            return
        async with autocommit(self._sessions) as session:
            link = await links.get(session, int(context.job.payload["linkId"]))
        if link is None:
            await self.settle(context, Settlement(note="the link no longer exists"))
            return
        await self.leased(context, link, lambda held: self._reconcile(context, held))

    # --- backfill: two records of the same person -------------------------------------------------

    async def _pair(self, context: EventContext, rankr_id: str, ghl_id: str) -> None:
        async with autocommit(self._sessions) as session:
            by_rankr, by_ghl = await links.find_pair(session, context.connection.id, KIND, rankr_id, ghl_id)
        if by_rankr is not None and by_ghl is not None and by_rankr.id == by_ghl.id:
            # Ours, from an attempt that did not finish (pending), or linked since: make both agree.
            await self.leased(context, by_rankr, lambda held: self._reconcile(context, held))
            return
        if by_rankr is not None or by_ghl is not None:
            taken = by_rankr or by_ghl
            note = f"one of the two records was linked meanwhile (link {taken.id if taken else '?'})"
            await self.settle(context, Settlement(note=note))
            return
        link = await self.claim_new(context, Side.RANKR, rankr_id, {}, ghl_id=ghl_id)
        listed = context.job.payload.get("listed") or {}
        rankr, ghl = self.listed(listed.get("rankr"), Side.RANKR), self.listed(listed.get("ghl"), Side.GHL)
        if rankr is not None and ghl is not None:
            # Both as the backfill listed them a moment ago: merging them needs no read.
            await self.creating(context, link, self._merge(context, link, rankr, ghl))
            return
        await self.creating(context, link, self._reconcile(context, link))

    # --- both: compare the pair with both sides now, and repair --------------------------------------

    async def _reconcile(self, context: EventContext, link: Link) -> None:
        if link.rankr_id is None or link.ghl_id is None:
            note = "the link is still being created by its own event"
            await self.settle(context, Settlement(note=note, link_id=link.id, link_values={}))
            return
        rankr = await self._fetch(context.upstreams, Side.RANKR, link.rankr_id)
        ghl = await self._fetch(context.upstreams, Side.GHL, link.ghl_id)
        if rankr is None or ghl is None:
            if link.state == LinkState.PENDING or (rankr is None and ghl is None):
                # Never linked, or gone on both sides: nothing is left to keep in step.
                values = {"state": LinkState.DELETED}
                note = "gone on both sides" if link.state != LinkState.PENDING else "a record vanished"
                await self.settle(context, Settlement(note=note, link_id=link.id, link_values=values))
                return
            # Deleted on one side without a webhook: do what its delete webhook would have done.
            await self.settle_delete(context, Side.RANKR if rankr is None else Side.GHL, link)
            return
        await self._merge(context, link, rankr, ghl)

    async def _merge(self, context: EventContext, link: Link, rankr: Observed, ghl: Observed) -> None:
        first = link.state == LinkState.PENDING
        snapshot = None if first else (link.snapshot or {})
        plan = merge(
            rankr.fields,
            ghl.fields,
            snapshot=snapshot,
            rankr_at=rankr.modified_at,
            ghl_at=ghl.modified_at,
            tie=self._tie,
        )
        result = Settlement(link_id=link.id)
        modified = {Side.RANKR: rankr.modified_at, Side.GHL: ghl.modified_at}
        merged = dict(plan.fields)
        for side, seen in ((Side.RANKR, rankr), (Side.GHL, ghl)):
            update = mapping.changes(plan.fields, seen.fields)
            # Only fields the side knows (an unmapped field is never written).
            update = self.writable(
                {name: value for name, value in update.items() if name in seen.fields}, side
            )
            if not update:
                continue
            decided = {name: plan.decisions[name] for name in update if name in plan.decisions}
            if decided:
                result.audits.append(self.audit(link, side, "merge", decided))
            written_at, applied = await self._update_side(
                context, side, seen.record_id, update, seen.fields, link, result
            )
            modified[side] = newest(modified[side], written_at)
            # What could not be written (GHL companyName without an identifier) stays as the side has it.
            merged.update({name: seen.fields[name] for name in update if name not in applied})
        merged_settlement(
            self, link, result, sorted(plan.decisions), modified, merged, first=first, now=self._clock()
        )
        await self.settle(context, result)


def merged_settlement(
    handler: Handler,
    link: Link,
    result: Settlement,
    decided: list[str],
    modified: dict[Side, datetime | None],
    fields: Canonical,
    *,
    first: bool,
    now: datetime,
    label: str = "",
) -> None:
    """Complete the settlement of a merge of two records: its link or reconcile audit entry, its note,
    and the link's new state (``modified``: the newest modification time seen per side)."""
    action = "link" if first else "reconcile"
    if first or result.audits:
        result.audits.append(handler.audit(link, Side.GHL, action, {"fieldsDecided": decided}))
    result.note = f"{label}{action}: {len(decided)} field(s) differed"
    result.link_values = {
        "state": LinkState.LINKED,
        "rankr_modified_at": newest(link.rankr_modified_at, modified[Side.RANKR]),
        "ghl_modified_at": newest(link.ghl_modified_at, modified[Side.GHL]),
        "synced_at": now,
        **snapshot_values(fields),
    }


# --- tasks and notes ----------------------------------------------------------------------------------

CHILD_PAIR = {Kind.TASK.value: "sync.task.pair", Kind.NOTE.value: "sync.note.pair"}
CHILD_RECONCILE = {Kind.TASK.value: "sync.task.reconcile", Kind.NOTE.value: "sync.note.reconcile"}
CHILD_TYPES = frozenset({SURVEY, *CHILD_PAIR.values(), *CHILD_RECONCILE.values()})
# The created event a record's webhook would have been, per kind and side.
CREATED = {
    (Kind.TASK.value, Side.RANKR): "task.created",
    (Kind.TASK.value, Side.GHL): "TaskCreate",
    (Kind.NOTE.value, Side.RANKR): "note.created",
    (Kind.NOTE.value, Side.GHL): "NoteCreate",
}


@dataclass(frozen=True)
class Listed:
    """A task or note as its side listed it: the canonical record and the body its webhook carries."""

    seen: Observed
    wire: dict[str, Any]


class ChildRepair(Handler):
    """Backfill and reconciliation of tasks and notes, one linked contact at a time.

    A ``sync.children.survey`` event lists the contact's tasks and notes on both sides (four reads)
    and queues, behind itself, what each needs (``plan``):

    - a linked record that differs from its link's snapshot, or is missing on a side:
      ``sync.<kind>.reconcile``, which reads both sides again and merges them three ways like a
      contact (a record gone from one side is deleted on the other, as its delete webhook would);
    - records of both sides that no link holds and that are the same (``pairing``):
      ``sync.<kind>.pair``, which links them and merges their fields;
    - a record on one side only: the created event its webhook would have been, applied by the
      task or note handler like any webhook.

    The queued events' ids derive from the survey's, so a survey run again (a resumed backfill)
    queues nothing twice.
    """

    kind = Kind.CONTACT.value

    def __init__(self, *args: Any, tasks: TaskSync, notes: NoteSync, tie: Winner, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kinds: dict[str, ChildSync] = {Kind.TASK.value: tasks, Kind.NOTE.value: notes}
        self._tie = tie

    async def handle(self, context: EventContext) -> None:
        job = context.job
        if job.type == SURVEY:
            await self._survey(context)
            return
        kind = str(job.payload["kind"])
        handler = self._kinds[kind]
        if job.type == CHILD_PAIR[kind]:
            await self._pair(handler, context)
            return
        async with autocommit(self._sessions) as session:
            link = await links.get(session, int(job.payload["linkId"]))
        if link is None:
            await handler.settle(context, Settlement(note="the link no longer exists"))
            return
        await handler.leased(context, link, lambda held: self._reconcile(handler, context, held))

    # --- the survey of one contact -------------------------------------------------------------------

    async def _survey(self, context: EventContext) -> None:
        job, connection = context.job, context.connection
        async with self._sessions() as session:
            contact = await links.get(session, int(job.payload["linkId"]))
        if contact is None or contact.state != LinkState.LINKED or not contact.rankr_id or not contact.ghl_id:
            note = (
                f"the contact is {contact.state if contact else 'gone'}; its tasks and notes are left alone"
            )
            await self.settle(context, Settlement(note=note))
            return
        # The four lists at once (each side paces its own budget); the links are read after them,
        # so a record linked meanwhile is seen as linked rather than as new.
        kinds = list(self._kinds.items())
        lists = await asyncio.gather(
            *(
                list_records(context.upstreams, kind, side, contact_id, handler)
                for kind, handler in kinds
                for side, contact_id in ((Side.RANKR, contact.rankr_id), (Side.GHL, contact.ghl_id))
            )
        )
        queued: list[IncomingEvent] = []
        async with self._sessions() as session:
            for index, (kind, _) in enumerate(kinds):
                rankr, ghl = lists[2 * index], lists[2 * index + 1]
                known = {
                    side: await links.find_many(
                        session, connection.id, kind, side.value, [r.seen.record_id for r in listed]
                    )
                    for side, listed in ((Side.RANKR, rankr), (Side.GHL, ghl))
                }
                held = await links.children(session, contact.id, kind)
                if any(link.state == LinkState.PENDING for link in held):
                    raise Deferred(f"a {kind} of the contact is being created; surveying it after", 2.0)
                queued += plan(job, connection, kind, rankr, ghl, known, held)
        now = self._clock()
        stored = sum([await enqueue(self._sessions, event, now) for event in queued])
        note = f"{len(queued)} task or note event(s) to apply ({stored} new)"
        await self.settle(context, Settlement(note=note))

    # --- two unlinked records found to be the same ---------------------------------------------------

    async def _pair(self, handler: ChildSync, context: EventContext) -> None:
        job, connection = context.job, context.connection
        rankr = _observed(handler, Side.RANKR, job.payload["rankr"])
        ghl = _observed(handler, Side.GHL, job.payload["ghl"])
        kind = handler.kind
        async with autocommit(self._sessions) as session:
            by_rankr, by_ghl = await links.find_pair(
                session, connection.id, kind, rankr.record_id, ghl.record_id
            )
            parent = await links.get(session, int(job.payload["parentId"]))
        if by_rankr is not None or by_ghl is not None:
            taken = by_rankr or by_ghl
            note = f"one of the two {kind}s was linked meanwhile (link {taken.id if taken else '?'})"
            await handler.settle(context, Settlement(note=note))
            return
        if parent is None or parent.state != LinkState.LINKED:
            await handler.settle(context, Settlement(note="its contact is no longer linked"))
            return
        link = await handler.claim_new(
            context, Side.RANKR, rankr.record_id, {}, ghl_id=ghl.record_id, parent_id=parent.id
        )
        await handler.creating(context, link, self._merge(handler, context, link, parent, rankr, ghl))

    # --- a linked record that drifted or went missing ------------------------------------------------

    async def _reconcile(self, handler: ChildSync, context: EventContext, link: Link) -> None:
        up = context.upstreams
        async with autocommit(self._sessions) as session:
            parent = await links.get(session, link.parent_id) if link.parent_id is not None else None
        if (
            parent is None
            or parent.state != LinkState.LINKED
            or not (parent.rankr_id and parent.ghl_id and link.rankr_id and link.ghl_id)
        ):
            note = f"its contact is {parent.state if parent else 'gone'}, or the link is being created"
            await handler.settle(context, Settlement(note=note, link_id=link.id, link_values={}))
            return
        rankr = await handler.fetch(up, Side.RANKR, parent.rankr_id, link.rankr_id)
        ghl = await handler.fetch(up, Side.GHL, parent.ghl_id, link.ghl_id)
        if rankr is None and ghl is None:
            values = {"state": LinkState.DELETED}
            await handler.settle(
                context, Settlement(note="gone on both sides", link_id=link.id, link_values=values)
            )
            return
        if rankr is None or ghl is None:
            # Deleted on one side without a webhook: do what its delete webhook would have done.
            gone = Side.RANKR if rankr is None else Side.GHL
            await handler.settle_delete(context, gone, link)
            return
        await self._merge(handler, context, link, parent, rankr, ghl)

    async def _merge(
        self,
        handler: ChildSync,
        context: EventContext,
        link: Link,
        parent: Link,
        rankr: Observed,
        ghl: Observed,
    ) -> None:
        """Merge the two records (three ways against the link's snapshot, or two on first link) and
        write each side what it lacks. GHL tasks and notes carry no modification time, so a field
        changed on both sides goes to CONFLICT_TIE_WINNER."""
        first = link.state == LinkState.PENDING
        merged = merge(
            rankr.fields,
            ghl.fields,
            snapshot=None if first else (link.snapshot or {}),
            rankr_at=None,
            ghl_at=None,
            tie=self._tie,
        )
        result = Settlement(link_id=link.id)
        modified = {Side.RANKR: rankr.modified_at, Side.GHL: ghl.modified_at}
        for side, seen in ((Side.RANKR, rankr), (Side.GHL, ghl)):
            update = {
                name: value
                for name, value in mapping.changes(merged.fields, seen.fields).items()
                if name in seen.fields
            }
            if not update:
                continue
            decided = {name: merged.decisions[name] for name in update if name in merged.decisions}
            if decided:
                result.audits.append(handler.audit(link, side, "merge", decided))
            contact_id = getattr(parent, f"{side.value}_id")
            call = handler.update(context.upstreams, side, contact_id, seen.record_id, update)
            changes = mapping.describe(update, seen.fields)
            written = await handler.write(context, link, side, "update", changes, call)
            result.audits.append(handler.audit(link, side, "update", changes))
            modified[side] = newest(modified[side], written.modified_at)
            result.synced.add(side.inbound)
        merged_settlement(
            handler, link, result, sorted(merged.decisions), modified, merged.fields,
            first=first, now=self._clock(), label=f"{handler.kind} ",
        )  # fmt: skip
        await handler.settle(context, result)


def plan(
    job: Job,
    connection: Connection,
    kind: str,
    rankr: list[Listed],
    ghl: list[Listed],
    known: dict[Side, dict[str, Link]],
    held: Sequence[Link],
) -> list[IncomingEvent]:
    """The events one contact's tasks or notes need (see ``ChildRepair``), given both sides' listings,
    the links of the listed records (``known``, by side and id) and the links held under the contact."""
    listed = {Side.RANKR: {r.seen.record_id: r for r in rankr}, Side.GHL: {g.seen.record_id: g for g in ghl}}
    queued: list[IncomingEvent] = []
    for link in held:
        if link.state != LinkState.LINKED or not link.rankr_id or not link.ghl_id:
            continue
        found = (listed[Side.RANKR].get(link.rankr_id), listed[Side.GHL].get(link.ghl_id))
        if any(record is None or mapping.changes(record.seen.fields, link.snapshot) for record in found):
            queued.append(_child_event(job, connection, f"{kind}:link:{link.id}", CHILD_RECONCILE[kind],
                                       link.rankr_id, kind, {"kind": kind, "linkId": link.id}))  # fmt: skip
    free = {
        side: [record for record in records if record.seen.record_id not in known[side]]
        for side, records in ((Side.RANKR, rankr), (Side.GHL, ghl))
    }
    wires = {id(record.seen): record.wire for records in free.values() for record in records}
    pairing = pair_up(kind, [r.seen for r in free[Side.RANKR]], [g.seen for g in free[Side.GHL]])
    for r, g in pairing.pairs:
        payload = {
            "kind": kind,
            "parentId": job.payload["linkId"],
            "rankr": wires[id(r)],
            "ghl": wires[id(g)],
        }
        name = f"{kind}:pair:{r.record_id}:{g.record_id}"
        queued.append(_child_event(job, connection, name, CHILD_PAIR[kind], r.record_id, kind, payload))
    for side, records in ((Side.RANKR, pairing.rankr_only), (Side.GHL, pairing.ghl_only)):
        for seen in records:
            queued.append(_created(job, connection, kind, side, seen.record_id, wires[id(seen)]))
    return queued


async def list_records(
    up: Upstreams, kind: str, side: Side, contact_id: str, handler: ChildSync
) -> list[Listed]:
    """A contact's tasks or notes on ``side``, each with the body its created webhook would carry."""
    if side is Side.RANKR:
        records: list[BaseModel] = list(
            await (up.rankr.list_tasks(contact_id) if kind == Kind.TASK else up.rankr.list_notes(contact_id))
        )
        wires = [record.model_dump(by_alias=True, mode="json") for record in records]
        return [Listed(handler.from_rankr(wire), wire) for wire in wires]
    records = list(
        await (up.ghl.list_tasks(contact_id) if kind == Kind.TASK else up.ghl.list_notes(contact_id))
    )
    event_type = CREATED[(kind, side)]
    wires = [{**record.model_dump(by_alias=True, mode="json"), "contactId": contact_id} for record in records]
    return [Listed(handler.from_ghl(event_type, wire), wire) for wire in wires]


def _observed(handler: ChildSync, side: Side, wire: dict[str, Any]) -> Observed:
    if side is Side.RANKR:
        return handler.from_rankr(wire)
    return handler.from_ghl(CREATED[(handler.kind, side)], wire)


def _child_event(
    job: Job,
    connection: Connection,
    name: str,
    kind_type: str,
    rankr_id: str,
    kind: str,
    payload: dict[str, Any],
) -> IncomingEvent:
    """A ``sync.<kind>.*`` event queued by a survey, ordered with the webhooks of its Rankr record."""
    account = connection.rankr_account_id
    return IncomingEvent(
        Source.RANKR,
        f"{job.ref}:{name}",
        kind_type,
        account,
        ordering_key(Source.RANKR, account, kind, rankr_id),
        {**payload, "synthetic": SURVEY},
    )


def _created(
    job: Job, connection: Connection, kind: str, side: Side, record_id: str, wire: dict[str, Any]
) -> IncomingEvent:
    """The created event a record's webhook would have been (a record on one side only)."""
    event_type = CREATED[(kind, side)]
    event_id = f"{job.ref}:{kind}:create:{side.value}:{record_id}"
    if side is Side.RANKR:
        account = connection.rankr_account_id
        payload = {"type": event_type, "accountId": account, "data": wire, "synthetic": SURVEY}
        key = ordering_key(Source.RANKR, account, kind, record_id)
        return IncomingEvent(Source.RANKR, event_id, event_type, account, key, payload)
    location = connection.ghl_location_id
    payload = {"type": event_type, "locationId": location, **wire, "synthetic": SURVEY}
    key = ordering_key(Source.GHL, location, kind, record_id)
    return IncomingEvent(Source.GHL, event_id, event_type, location, key, payload)


def survey(job: str, run: str, prefix: str, connection: Connection, link: Link) -> IncomingEvent:
    """The survey event of one linked contact (``prefix``: the id prefix of the job's events)."""
    account = connection.rankr_account_id
    assert link.rankr_id is not None  # noqa: S101 - a linked contact has both ids
    return IncomingEvent(
        Source.RANKR,
        f"{prefix}{run}:children:{link.id}",
        SURVEY,
        account,
        ordering_key(Source.RANKR, account, KIND, link.rankr_id),
        {"linkId": link.id, "synthetic": job},
    )
