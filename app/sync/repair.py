"""The synthetic events of backfill and reconciliation, applied by the worker like any webhook.

``sync.contact.pair`` links two records the backfill found to be the same person and merges their
fields; ``sync.contact.reconcile`` compares a linked pair with both sides as they are now and
repairs what drifted, a record gone from one side included (handled as its delete webhook would
be, per ``CONTACT_DELETE_MODE``). Both reuse the contact handler's leases, audited writes and the
one final commit, so they hold the same guarantees as webhook-driven work.
"""

from __future__ import annotations

from typing import Any

from app.db import autocommit
from app.sync import mapping
from app.sync import repository as links
from app.sync.base import EventContext, Observed, Settlement, Side, newest, snapshot_values
from app.sync.contacts import KIND, ContactSync
from app.sync.merge import Winner, merge
from app.sync.models import Link, LinkState

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
        action = "link" if first else "reconcile"
        if first or result.audits:
            result.audits.append(
                self.audit(link, Side.GHL, action, {"fieldsDecided": sorted(plan.decisions)})
            )
        result.note = f"{action}: {len(plan.decisions)} field(s) differed"
        result.link_values = {
            "state": LinkState.LINKED,
            "rankr_modified_at": newest(link.rankr_modified_at, modified[Side.RANKR]),
            "ghl_modified_at": newest(link.ghl_modified_at, modified[Side.GHL]),
            "synced_at": self._clock(),
            **snapshot_values(merged),
        }
        await self.settle(context, result)
