"""The backfill: the first sync of a connection's records that exist before it was connected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.backfill import events
from app.backfill import repository as repo
from app.backfill.job import LISTING, JobName, JobState, Phase
from app.backfill.matching import Decision, Outcome, decide
from app.backfill.models import StagedContact
from app.backfill.queueing import POLL_SECONDS, mixed
from app.backfill.run import BATCH, SyncRun
from app.connections.models import Connection
from app.db import unit_of_work
from app.inbox.service import IncomingEvent
from app.integrations.registry import Upstreams
from app.kit.loop import cancel_and_wait
from app.sync import repair
from app.sync import repository as links
from app.sync.base import Observed, Side
from app.sync.children import ChildSync, NoteSync, TaskSync
from app.sync.models import Kind, LinkState
from app.sync.pairing import pair_up

log = logging.getLogger(__name__)

# The counts a backfill takes from its staging: what was listed and decided.
DECISIONS = frozenset({"rankrListed", "ghlListed", "decided", *Outcome})


class Backfill(SyncRun):
    """The first sync of a connection: link the same people, merge their fields, create the rest.

    Phases: ``list`` lists every contact of both sides into staging, at once; ``match`` decides
    for each staged record, Rankr's first (see ``matching.decide``) and queues the writes; ``apply``
    waits until the worker applied them all; ``children`` then surveys the tasks and notes of every
    linked contact (``repair.ChildRepair``: pairs the same ones, creates the rest on the other side)
    and waits for those writes. A dry run lists and decides the same way into its own staging,
    queues nothing, reports each decision (and counts the tasks and notes it would pair or create),
    and clears its staging at the end.
    """

    def __init__(
        self,
        *args: Any,
        dry_run: bool = False,
        count_tasks_and_notes: bool = True,
        report: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        self.dry_run = dry_run
        # A dry run counts tasks and notes by reading four lists per contact: at GHL's pace that is
        # most of its time, so the caller may leave it out.
        self._count_tasks_and_notes = count_tasks_and_notes
        self.job = JobName.DRY_RUN if dry_run else JobName.BACKFILL
        super().__init__(*args, **kwargs)
        self._report = report or (lambda line: None)
        # Set when deciding committed a batch: queuing starts on it, not on its next poll.
        self._batch_decided = asyncio.Event()
        # Deciding and queuing take turns, a batch each: interleaved on the event loop, a round of
        # queuing would wait behind a batch of deciding at each of its statements.
        self._turn = asyncio.Lock()

    async def run(self, connection: Connection) -> dict[str, Any]:
        lease = self.lease
        row = await lease.take(connection)
        try:
            if row.state != JobState.RUNNING or self.dry_run:
                # A new run (the previous one finished, or never started): start from scratch.
                now = self._clock()
                async with unit_of_work(self._sessions) as session:
                    await repo.clear_staged(session, connection.id, self.job)
                    lease.counts = {}
                    await lease.save(
                        session, state=JobState.RUNNING, phase=Phase.LIST,
                        cursor={"run": str(int(now.timestamp()))},
                        started_at=now, finished_at=None, error=None,
                    )  # fmt: skip
            else:
                lease.counts = await self._recounted(connection, row.counts)
                log.info("backfill.resuming", extra={"connection": connection.id, "phase": row.phase})
            up = self._upstreams(connection)
            if lease.phase in LISTING:
                await self.lister.list_both(connection, up, self.job, ("rankr", "ghl"))
                await lease.save(phase=Phase.MATCH)
            if lease.phase == Phase.MATCH:
                if self.dry_run:
                    await self._match(connection)
                else:  # the writes decided so far are queued while the rest is being decided
                    await self._queue_decided(connection, asyncio.create_task(self._match(connection)))
                await lease.save(phase=Phase.APPLY)
            if lease.phase == Phase.QUEUE:
                await self._queue_decided(connection)
                await lease.save(phase=Phase.APPLY)
            if self.dry_run and self._count_tasks_and_notes:
                await self._count_children(connection, up)
            else:
                await self.queue.drain(connection)
                if lease.phase == Phase.APPLY:  # the contacts are linked: their tasks and notes next
                    await lease.save(phase=Phase.CHILDREN)
                await self._survey_children(connection)
                await self.queue.drain(connection)
            async with self._sessions() as session:
                lease.counts["outcomes"] = await repo.outcome_counts(session, connection.id, self.job)
            if self.dry_run:
                async with unit_of_work(self._sessions) as session:
                    await repo.clear_staged(session, connection.id, self.job)
            await lease.finish()
        except BaseException as exc:
            await self._released_after(exc)
            raise
        return self.counts

    async def _recounted(self, connection: Connection, saved: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint's counts, with what was listed and decided counted again from staging.

        Deciding runs beside queuing, and either one's checkpoint may be committed while the other
        has counted decisions it has not committed yet; staging is what was really committed.
        """
        async with self._sessions() as session:
            staged = await repo.outcome_counts(session, connection.id, self.job)
        counts = {key: value for key, value in saved.items() if key not in DECISIONS}
        for key, count in staged.items():
            side, outcome = key.split(":", 1)
            counts[f"{side}Listed"] = counts.get(f"{side}Listed", 0) + count
            if outcome != "undecided":
                counts[outcome] = counts.get(outcome, 0) + count
                counts["decided"] = counts.get("decided", 0) + count
        return counts

    async def _match(self, connection: Connection) -> None:
        after = 0
        while True:
            async with self._turn, unit_of_work(self._sessions) as session:
                batch = await repo.staged(session, connection.id, self.job, after, BATCH, undecided=True)
                if not batch:
                    return
                people = await repo.people(session, connection.id, self.job, batch)
                for record in batch:
                    after = record.id
                    if record.outcome is None:  # decided in this batch as another's counterpart
                        self._apply(record, decide(people, record))
                await self.lease.save(session)
            self._batch_decided.set()

    def _apply(self, record: StagedContact, decision: Decision) -> None:
        if decision.report is not None:
            self._report(decision.report)
        self._set_outcome(record, decision.outcome, decision.detail)
        if decision.counterpart is not None:
            self._set_outcome(decision.counterpart, Outcome.PAIRED, decision.counterpart_detail)
            record.counterpart_id = decision.counterpart.id

    def _set_outcome(self, record: StagedContact, outcome: Outcome, detail: str) -> None:
        record.outcome = outcome
        record.detail = detail[:600]
        self.lease.count(outcome)
        self.lease.count("decided")

    async def _queue_decided(
        self, connection: Connection, deciding: asyncio.Task[None] | None = None
    ) -> None:
        """Queue the decided writes (while ``deciding`` decides the rest), those bound for GHL and
        for Rankr in proportion to what is left of each (``mixed``), at most SYNC_MAX_IN_FLIGHT
        open at a time.

        In decision order (Rankr's records first) the records found in GHL only, which need Rankr
        calls and no GHL budget, come last; queued in that order, GHL's budget would idle while
        they are applied. Deciding is quicker than applying, so once it is over the two are mixed
        for the rest of the run. The cursors ``queued:ghl`` / ``queued:rankr`` are the checkpoint
        (phase ``queue`` once everything is decided); queuing an event again after a crash stores
        nothing new (its id is deterministic).
        """
        cursor = self.lease.cursor
        run = str(cursor.get("run", "0"))
        after = {target: int(cursor.get(f"queued:{target}", 0)) for target in repo.BOUND_FOR}
        try:
            while True:
                decided = deciding is None or deciding.done()
                if decided and deciding is not None:
                    await deciding  # its error, if it failed
                    await self.lease.save(phase=Phase.QUEUE)
                    deciding = None
                self._batch_decided.clear()
                async with self._sessions() as session:
                    left = {
                        target: await repo.count_decided(
                            session, connection.id, self.job, target, after[target]
                        )
                        for target in after
                    }
                total = sum(left.values())
                if total == 0:
                    if decided:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._batch_decided.wait(), POLL_SECONDS)
                    continue
                await self._queue_round(connection, run, after, left, total)
                await self.queue.wait_for_room(connection)
        finally:
            await cancel_and_wait(deciding)

    async def _queue_round(
        self, connection: Connection, run: str, after: dict[str, int], left: dict[str, int], total: int
    ) -> None:
        """Queue the next BATCH decided records, each upstream's share by what is left for it."""
        share = {target: -(-BATCH * count // total) for target, count in left.items()}  # ceil
        async with self._turn, unit_of_work(self._sessions) as session:
            streams = [
                await repo.decided(session, connection.id, self.job, target, after[target], share[target])
                for target in after
            ]
            for target, stream in zip(after, streams, strict=True):
                if stream:
                    after[target] = stream[-1].id
            records = mixed(streams)
            await repo.load(session, {r.counterpart_id for r in records if r.counterpart_id is not None})
            queued = [await self._event(session, connection, run, record) for record in records]
            refs = await repo.enqueue(session, [event for event, _ in queued], self._clock())
            for event, carried in queued:
                for staged in carried if event.event_id in refs else ():  # else queued before a crash
                    staged.event_ref = refs[event.event_id]
            queued_to = {f"queued:{target}": position for target, position in after.items()}
            await self.lease.save(session, cursor={**self.lease.cursor, **queued_to})

    async def _event(
        self, session: AsyncSession, connection: Connection, run: str, record: StagedContact
    ) -> tuple[IncomingEvent, list[StagedContact]]:
        """The event that carries a decided record's writes (``create`` or ``pair``), and the staged
        records it carries."""
        if record.outcome == Outcome.CREATE:
            created = events.create(self.job, run, connection, record.side, record.record_id, record.wire)
            return created, [record]
        counterpart = await session.get(StagedContact, record.counterpart_id)
        assert counterpart is not None  # noqa: S101 - decided together, in one transaction
        rankr, ghl = (record, counterpart) if record.side == "rankr" else (counterpart, record)
        return events.pair(self.job, run, connection, rankr, ghl), [rankr, ghl]

    async def _count_children(self, connection: Connection, up: Upstreams) -> None:
        """Dry run: count the tasks and notes the children phase would pair or create, reading the
        lists it would read (those of every contact decided to be paired, created or linked)."""
        lease = timedelta(seconds=self._settings.worker_lease_seconds)
        due = timedelta(hours=self._settings.task_default_due_hours)
        handlers: dict[str, ChildSync] = {
            Kind.TASK: TaskSync(
                self._sessions, clock=self._clock, lease=lease, maps=self._maps, default_due=due
            ),
            Kind.NOTE: NoteSync(self._sessions, clock=self._clock, lease=lease, maps=self._maps),
        }
        totals = {f"{kind}s": {"paired": 0, "createdInGhl": 0, "createdInRankr": 0} for kind in handlers}
        after = 0
        while True:
            async with self._sessions() as session:
                batch = await repo.staged(session, connection.id, self.job, after, BATCH, undecided=False)
                if not batch:
                    break
                contacts = [await self._contact_ids(session, connection, record) for record in batch]
                after = batch[-1].id
            for rankr_id, ghl_id in filter(None, contacts):
                for kind, handler in handlers.items():
                    rankr = await self._unlinked(connection, up, kind, Side.RANKR, rankr_id, handler)
                    ghl = await self._unlinked(connection, up, kind, Side.GHL, ghl_id, handler)
                    pairing = pair_up(kind, rankr, ghl)
                    counted = totals[f"{kind}s"]
                    counted["paired"] += len(pairing.pairs)
                    counted["createdInGhl"] += len(pairing.rankr_only)
                    counted["createdInRankr"] += len(pairing.ghl_only)
        self.lease.counts.update(totals)
        await self.lease.save()

    async def _contact_ids(
        self, session: AsyncSession, connection: Connection, record: StagedContact
    ) -> tuple[str | None, str | None] | None:
        """The Rankr and GHL ids a decided record's contact will have (None where it is created; None
        for a record whose tasks and notes are another's or left alone)."""
        if record.outcome == Outcome.PAIR:
            counterpart = await session.get(StagedContact, record.counterpart_id)
            assert counterpart is not None  # noqa: S101 - decided together, in one transaction
            pair = {record.side: record.record_id, counterpart.side: counterpart.record_id}
            return pair.get("rankr"), pair.get("ghl")
        if record.outcome == Outcome.CREATE:
            return (record.record_id, None) if record.side == "rankr" else (None, record.record_id)
        if record.outcome == Outcome.LINKED and record.side == "rankr":
            link = await links.find(session, connection.id, Kind.CONTACT, "rankr", record.record_id)
            if link is not None and link.state == LinkState.LINKED:
                return link.rankr_id, link.ghl_id
        return None

    async def _unlinked(
        self,
        connection: Connection,
        up: Upstreams,
        kind: str,
        side: Side,
        contact_id: str | None,
        handler: ChildSync,
    ) -> list[Observed]:
        """A contact's tasks or notes on ``side`` that no link holds yet."""
        if contact_id is None:
            return []
        listed = await self.lister.with_retries(
            lambda _: repair.list_records(up, kind, side, contact_id, handler), None
        )
        async with self._sessions() as session:
            known = await links.find_many(
                session, connection.id, kind, side.value, [record.seen.record_id for record in listed]
            )
        return [record.seen for record in listed if record.seen.record_id not in known]
