"""Reconciliation: repair what webhooks missed, for one connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, or_, select

from app.backfill import events
from app.backfill import repository as repo
from app.backfill.job import JobName, JobState, Phase
from app.backfill.matching import Outcome
from app.backfill.models import StagedContact, SyncJob
from app.backfill.run import BATCH, SyncRun, backfill_unfinished
from app.connections.models import Connection
from app.db import unit_of_work
from app.errors import BackfillUnfinished
from app.sync.models import Kind, Link, LinkState


class Reconciliation(SyncRun):
    """Repair what webhooks missed, for one connection.

    1. **Changes**: the contacts changed on each side since the newest modification time seen by the
       previous run (Rankr ``updatedSince``; GHL search on ``dateUpdated``) are listed into staging.
       A linked one whose fields differ from the link's snapshot gets a ``sync.contact.reconcile``
       event (both sides are compared there, field by field); an unlinked one gets the created event
       its webhook would have been.
    2. **Deletions**: every id of both sides is listed (a ``sweep``); a linked record missing from
       its side gets a reconcile event, which confirms the absence with a GET and then does what a
       delete webhook would (``CONTACT_DELETE_MODE``).
    3. **Tasks and notes**: every linked contact's tasks and notes are listed on both sides (a
       survey event per contact, ``repair.ChildRepair``): a linked one that drifted or is gone from
       a side is repaired three ways like a contact, one on one side only is created on the other.
    """

    job = JobName.RECONCILE

    async def _take(self, connection: Connection) -> SyncJob:
        async with self._sessions() as session:
            unfinished = await backfill_unfinished(session, connection.id)
        if unfinished is not None:
            raise BackfillUnfinished(unfinished)
        return await self.lease.take(connection)

    async def claim(self, connection: Connection) -> None:
        await self._take(connection)

    async def run(self, connection: Connection) -> dict[str, Any]:
        lease = self.lease
        row = await self._take(connection)
        try:
            marks = dict(row.cursor) if row.state == JobState.DONE else {}
            resumed = row.state == JobState.RUNNING
            now = self._clock()
            if not resumed:
                async with unit_of_work(self._sessions) as session:
                    await repo.clear_staged(session, connection.id, JobName.RECONCILE)
                    await repo.clear_staged(session, connection.id, JobName.SWEEP)
                    lease.counts = {}
                    cursor = {
                        "run": str(int(now.timestamp() * 1000)),
                        "since": {side: marks.get(f"{side}Newest") for side in ("rankr", "ghl")},
                    }
                    await lease.save(session, state=JobState.RUNNING, phase=Phase.CHANGES, cursor=cursor,
                                     started_at=now, finished_at=None, error=None)  # fmt: skip
            else:
                lease.counts = dict(row.counts)
            up = self._upstreams(connection)
            since = lease.cursor.get("since") or {}
            if lease.phase == Phase.CHANGES:
                await self.lister.list_both(connection, up, JobName.RECONCILE, ("rankr", "ghl"), since)
                await self._repair_changes(connection)
                await lease.save(phase=Phase.SWEEP)
            if lease.phase == Phase.SWEEP:
                await self.lister.list_both(connection, up, JobName.SWEEP, ("rankrAll", "ghlAll"))
                await self._repair_missing(connection)
                await lease.save(phase=Phase.CHILDREN)
            if lease.phase == Phase.CHILDREN:
                await self._survey_children(connection)
                await lease.save(phase=Phase.APPLY)
            await self.queue.drain(connection)
            async with unit_of_work(self._sessions) as session:
                await repo.clear_staged(session, connection.id, JobName.RECONCILE)
                await repo.clear_staged(session, connection.id, JobName.SWEEP)
            cursor = lease.cursor
            # The next run starts at the newest change this one saw (inclusive, so none is missed).
            await lease.save(cursor={
                "rankrNewest": cursor.get("rankrNewest") or since.get("rankr"),
                "ghlNewest": cursor.get("ghlNewest") or since.get("ghl"),
            })  # fmt: skip
            await lease.finish()
        except BaseException as exc:
            await self._released_after(exc)
            raise
        return self.counts

    async def _repair_changes(self, connection: Connection) -> None:
        run = str(self.lease.cursor.get("run"))
        after = 0
        while True:
            async with unit_of_work(self._sessions) as session:
                batch = await repo.staged(
                    session, connection.id, JobName.RECONCILE, after, BATCH, undecided=False
                )
                if not batch:
                    return
                people = await repo.people(session, connection.id, JobName.RECONCILE, batch)
                for record in batch:
                    after = record.id
                    if record.outcome is not None:
                        continue
                    link = people.links[record.side].get(record.record_id)
                    if link is None and people.linked_to(record) is not None:
                        # Left alone by the backfill as a duplicate of a linked person (or became one).
                        record.outcome = Outcome.DUPLICATE
                    elif link is None:
                        event = events.create(
                            self.job, run, connection, record.side, record.record_id, record.wire
                        )
                        record.outcome, record.event_ref = (
                            Outcome.CREATE,
                            await self.queue.put(session, event),
                        )
                    elif (
                        link.state == LinkState.LINKED
                        and record.fingerprint != link.synced_hash
                        and link.rankr_id
                    ):
                        event = events.reconcile(self.job, run, connection, link.id, link.rankr_id)
                        record.outcome, record.event_ref = (
                            Outcome.REPAIR,
                            await self.queue.put(session, event),
                        )
                    else:
                        record.outcome = Outcome.UNCHANGED
                    self.lease.count(record.outcome)
                await self.lease.save(session)
            await self.queue.wait_for_room(connection)

    async def _repair_missing(self, connection: Connection) -> None:
        """Queue a reconcile event for each live link whose record was not listed by its side."""
        run = str(self.lease.cursor.get("run"))
        after = 0
        while True:
            async with unit_of_work(self._sessions) as session:
                rows = await session.execute(
                    select(Link)
                    .where(
                        Link.connection_id == connection.id,
                        Link.kind == Kind.CONTACT,
                        Link.state == LinkState.LINKED,
                        Link.id > after,
                        or_(
                            _unlisted(connection, "rankr", Link.rankr_id),
                            _unlisted(connection, "ghl", Link.ghl_id),
                        ),
                    )
                    .order_by(Link.id)
                    .limit(BATCH)
                )
                batch = rows.scalars().all()
                if not batch:
                    return
                for link in batch:
                    after = link.id
                    if link.rankr_id is None:
                        continue
                    await self.queue.put(
                        session, events.reconcile(self.job, run, connection, link.id, link.rankr_id)
                    )
                    self.lease.count("missing")
                await self.lease.save(session)
            await self.queue.wait_for_room(connection)


def _unlisted(connection: Connection, side: str, column: Any) -> Any:
    return ~exists().where(
        and_(
            StagedContact.connection_id == connection.id,
            StagedContact.job == JobName.SWEEP,
            StagedContact.side == side,
            StagedContact.record_id == column,
        )
    )
