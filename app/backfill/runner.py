"""Backfill and reconciliation runs: list both sides into staging, decide, queue, wait, count.

A run belongs to one connection and holds that connection's job lease (a ``sync_jobs`` row), so one
process at a time runs it; the row is also the checkpoint: after each page listed or each batch
decided, the cursors, the phase and the counts are committed together with the page's rows, and a
run started after a crash carries on from there. Records are listed into ``staged_contacts`` and
read back in batches, so memory stays flat however many contacts the sides hold.

Upstream reads go through the connection's ``GhlClient``/``RankrClient`` (their retries and rate
handling apply); writes are queued as inbox events for the worker, at most ``SYNC_MAX_IN_FLIGHT``
open at a time, so webhook-driven events never wait behind more than that many.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.automation.config import field_maps
from app.backfill import events
from app.backfill import repository as repo
from app.backfill.models import StagedContact, SyncJob
from app.config import Settings
from app.connections.models import Connection
from app.db import unit_of_work
from app.errors import BackfillUnfinished, JobBusy, JobLost, TransientUpstreamError
from app.inbox.models import EventStatus
from app.inbox.service import IncomingEvent
from app.integrations.registry import Upstreams
from app.kit.clock import Clock, parse_instant
from app.kit.loop import cancel_and_wait
from app.sync import mapping
from app.sync import repository as links
from app.sync.mapping import Canonical
from app.sync.models import Kind, Link, LinkState

log = logging.getLogger(__name__)

BACKFILL = "backfill"
DRY_RUN = "backfill-dry"
RECONCILE = "reconcile"
SWEEP = "sweep"  # the staging of reconciliation's full id listing (deletions)
RANKR_PAGE = 200
GHL_PAGE = 100
BATCH = 100
POLL_SECONDS = 0.2
TAIL_POLL_SECONDS = 0.02  # per event still open, while draining
KIND = Kind.CONTACT.value
# The counts a backfill takes from its staging: what was listed and decided.
DECISIONS = frozenset(
    {"rankrListed", "ghlListed", "decided", "linked", "ended", "duplicate", "pair", "paired", "create"}
)

# A backfill's listing phase; "rankr" and "ghl" are checkpoints of versions that listed one side, then
# the other.
LISTING = ("list", "rankr", "ghl")

Progress = Callable[[str, dict[str, Any]], None]


async def backfill_unfinished(session: AsyncSession, connection_id: int) -> str | None:
    """Why a reconciliation of the connection must wait, or None: its backfill has not finished."""
    backfill = await repo.get_job(session, connection_id, BACKFILL)
    if backfill is not None and backfill.state == "running":
        return f"the backfill of connection {connection_id} has not finished; reconciliation waits for it"
    return None


def _owner() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{secrets.token_hex(3)}"


def _nothing(_phase: str, _counts: dict[str, Any]) -> None:
    return None


class SyncRun:
    """What backfill and reconciliation share: the job row, listing into staging, bounded queuing."""

    job: str

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        upstreams: Callable[[Connection], Upstreams],
        *,
        clock: Clock,
        progress: Progress | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        """``on_queued``: called once a batch of queued events is committed, to wake the workers
        (the intake's ``on_stored``, or the worker of the command's own process)."""
        self._sessions = sessions
        self._settings = settings
        self._upstreams = upstreams
        self._clock = clock
        self._progress = progress or _nothing
        self._on_queued = on_queued or (lambda: None)
        self._maps = field_maps(settings)
        self._owner = _owner()
        # A process that dies holds the job this long, like a worker its events.
        self._lease = timedelta(seconds=settings.worker_lease_seconds)
        self._row: SyncJob | None = None
        self.counts: dict[str, Any] = {}
        # Both sides are listed at once; a page's checkpoint merges its cursor into the row's.
        self._checkpointing = asyncio.Lock()

    async def run(self, connection: Connection) -> dict[str, Any]:
        """Run (or resume) the job for one connection; its counts."""
        raise NotImplementedError

    # --- the job row ---------------------------------------------------------------------------

    async def claim(self, connection: Connection) -> None:
        """Take the job's lease now (``run`` keeps it): JobBusy when another process holds it."""
        await self._take(connection)

    async def _take(self, connection: Connection) -> SyncJob:
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            row = await repo.take_job(session, connection.id, self.job, self._owner, now, now + self._lease)
        if row is None:
            raise JobBusy(f"a {self.job} of connection {connection.id} is running in another process")
        self._row = row
        return row

    async def _save(self, session: AsyncSession | None = None, **values: Any) -> None:
        """Checkpoint: phase, cursors, counts (and renew the lease), in ``session``'s transaction."""
        assert self._row is not None  # noqa: S101 - set by _take
        now = self._clock()
        values = {"counts": dict(self.counts), "updated_at": now, "lease_until": now + self._lease, **values}
        if session is None:
            async with unit_of_work(self._sessions) as own:
                saved = await repo.save_job(own, self._row.id, self._owner, **values)
        else:
            saved = await repo.save_job(session, self._row.id, self._owner, **values)
        if not saved:
            raise JobLost(f"the {self.job} lease of connection {self._row.connection_id} was taken over")
        for name, value in values.items():
            setattr(self._row, name, value)
        self._progress(self._row.phase, self.counts)

    async def _finish(self, state: str, error: str | None = None) -> None:
        await self._save(
            state=state, phase="done" if state == "done" else self._phase, error=error,
            finished_at=self._clock(), lease_owner=None, lease_until=None,
        )  # fmt: skip

    @property
    def _phase(self) -> str:
        return self._row.phase if self._row is not None else "new"

    @property
    def _cursor(self) -> dict[str, Any]:
        return dict(self._row.cursor) if self._row is not None else {}

    # --- listing into staging ------------------------------------------------------------------

    def _staged(
        self, connection: Connection, job: str, side: str, record_id: str, fields: Canonical, **extra: Any
    ) -> dict[str, Any]:
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

    async def _list_rankr(
        self, connection: Connection, up: Upstreams, job: str, key: str, since: datetime | None = None
    ) -> None:
        """Page through Rankr's contacts (changed since ``since``) into staging; resumable by ``key``."""

        async def page(position: Any) -> tuple[list[dict[str, Any]], Any]:
            contacts, following = await up.rankr.list_contacts(
                cursor=position, updated_since=since, limit=RANKR_PAGE
            )
            rows = [
                self._staged(
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
                self._staged(
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

    async def _list_both(
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

    async def _list(
        self, key: str, page: Callable[[Any], Awaitable[tuple[list[dict[str, Any]], Any]]]
    ) -> None:
        """Stage page after page; each page is committed with the cursor of the next one (the
        checkpoint ``key``) and the newest modification time seen (``<key>Newest``)."""
        if self._cursor.get(f"{key}Done"):
            return
        fetching = asyncio.create_task(self._patiently(page, self._cursor.get(key)))
        try:
            while True:
                rows, following = await fetching
                if following is not None:  # asked for while this page is staged
                    fetching = asyncio.create_task(self._patiently(page, following))
                self.counts[f"{key}Listed"] = self.counts.get(f"{key}Listed", 0) + len(rows)
                newest = max(
                    (row["modified_at"] for row in rows if row["modified_at"] is not None), default=None
                )
                async with self._checkpointing, unit_of_work(self._sessions) as session:
                    await repo.stage(session, rows)
                    cursor = {**self._cursor, key: following, f"{key}Done": following is None}
                    if newest is not None:
                        cursor[f"{key}Newest"] = _later(cursor.get(f"{key}Newest"), newest)
                    await self._save(session, cursor=cursor)
                if following is None:
                    return
        finally:
            await cancel_and_wait(fetching)

    async def _patiently(
        self, page: Callable[[Any], Awaitable[tuple[list[dict[str, Any]], Any]]], position: Any
    ) -> tuple[list[dict[str, Any]], Any]:
        """One page, waiting out rate limits and outages along RETRY_SCHEDULE (never sooner than the
        upstream's Retry-After) before giving up; the checkpoint keeps what was listed so far."""
        delays = self._settings.retry_delays
        for attempt in range(self._settings.max_attempts):
            try:
                return await page(position)
            except TransientUpstreamError as exc:
                if attempt + 1 >= self._settings.max_attempts:
                    raise
                wait = max(delays[min(attempt, len(delays) - 1)], exc.retry_after or 0.0)
                log.warning("sync_run.listing_retry", extra={"job": self.job, "in_seconds": wait})
                deadline = time.monotonic() + wait
                while (left := deadline - time.monotonic()) > 0:
                    await self._save()  # keep the lease while waiting
                    await asyncio.sleep(min(left, self._lease.total_seconds() / 3))
        raise AssertionError("unreachable")  # pragma: no cover

    # --- queuing -------------------------------------------------------------------------------

    async def _room(self, connection: Connection) -> None:
        """After a batch was queued: wake the workers, then wait until fewer than SYNC_MAX_IN_FLIGHT
        of this job's events are open.

        Woken, a worker takes the batch now rather than at its next poll (WORKER_POLL_SECONDS),
        which a backfill's first write used to wait for."""
        self._on_queued()
        limit = self._settings.sync_max_in_flight
        while True:
            async with self._sessions() as session:
                waiting = await repo.open_events(session, events.prefix(self.job, connection))
            if waiting < limit:
                return
            await self._save()  # keeps the lease while the worker catches up
            await asyncio.sleep(POLL_SECONDS)

    async def _drain(self, connection: Connection) -> None:
        """Wait until every event this job queued was applied (or went dead)."""
        while True:
            async with self._sessions() as session:
                waiting = await repo.open_events(session, events.prefix(self.job, connection))
            await self._count_events(connection)
            if waiting == 0:
                return
            await self._save()
            # The last few are applied within a few slots of the budget: look sooner for them.
            await asyncio.sleep(min(POLL_SECONDS, waiting * TAIL_POLL_SECONDS))

    async def _count_events(self, connection: Connection) -> None:
        async with self._sessions() as session:
            statuses = await repo.events_by_status(session, events.prefix(self.job, connection))
        self.counts["queued"] = sum(statuses.values())
        self.counts["applied"] = statuses.get(EventStatus.DONE, 0) + statuses.get(EventStatus.SKIPPED, 0)
        self.counts["failed"] = statuses.get(EventStatus.DEAD, 0)

    async def _queue(self, session: AsyncSession, event: IncomingEvent) -> int | None:
        return (await repo.enqueue(session, [event], self._clock())).get(event.event_id)


def _mixed(streams: Sequence[Sequence[StagedContact]]) -> list[StagedContact]:
    """The records of several streams in one list, each stream's spread evenly over it (in order)."""
    placed = [
        ((index + 0.5) / len(stream), order, record)
        for order, stream in enumerate(streams)
        for index, record in enumerate(stream)
    ]
    return [record for _, _, record in sorted(placed, key=lambda item: item[:2])]


def _later(stored: str | None, seen: datetime) -> str:
    previous = parse_instant(stored)
    return (seen if previous is None or seen > previous else previous).isoformat()


@dataclass
class _People:
    """What deciding a batch of staged records looks at, read with four queries for the whole batch
    (before, four per record): the records' links, and the staged records and live links of the
    same people. Decisions change the staged records in place, so each record of the batch is
    decided as it would be one after the other."""

    links: dict[str, dict[str, Link]]
    staged: Sequence[StagedContact]
    linked: Sequence[tuple[int, str | None, str | None]]

    @classmethod
    async def of(
        cls, session: AsyncSession, connection: Connection, job: str, batch: Sequence[StagedContact]
    ) -> _People:
        found: dict[str, dict[str, Link]] = {}
        for side in ("rankr", "ghl"):
            ids = {record.record_id for record in batch if record.side == side}
            found[side] = await links.find_many(session, connection.id, KIND, side, ids)
        return cls(
            links=found,
            staged=await repo.staged_people(session, connection.id, job, batch),
            linked=await repo.linked_people(session, connection.id, KIND, batch),
        )

    def oldest(
        self, record: StagedContact, *, side: str | None, outcomes: Sequence[str] | None
    ) -> StagedContact | None:
        """The oldest other staged record of the same person (on ``side``; with one of ``outcomes``,
        or undecided when ``outcomes`` is None), among the first PERSON_RECORDS of that person."""
        email, phone, looked = record.match_email, record.match_phone, 0
        for other in self.staged:
            if other.id == record.id or (side is not None and other.side != side):
                continue
            if not repo.same_person(email, phone, other.match_email, other.match_phone):
                continue
            if (other.outcome is None) if outcomes is None else (other.outcome in outcomes):
                return other
            looked += 1
            if looked == repo.PERSON_RECORDS:
                return None
        return None

    def claimed(self, record: StagedContact) -> str | None:
        """Who already stands for this record's person, if anyone (see rule 2 of ``_decide``)."""
        staged = self.oldest(record, side=None, outcomes=("pair", "paired", "create"))
        if staged is not None:
            return f"{staged.side} {staged.record_id}"
        linked = self.linked_to(record)
        return f"link {linked}" if linked is not None else None

    def linked_to(self, record: StagedContact) -> int | None:
        """The live link of this record's person, if there is one."""
        for link_id, email, phone in self.linked:
            if repo.same_person(record.match_email, record.match_phone, email, phone):
                return link_id
        return None


class Backfill(SyncRun):
    """The first sync of a connection: link the same people, merge their fields, create the rest.

    Phases: ``list`` lists every contact of both sides into staging, at once; ``match`` decides
    for each staged record, Rankr's first (see ``_decide``) and queues the writes; ``apply`` waits
    until the worker applied them all. A dry run lists and decides the same way into its own
    staging, queues nothing, reports each decision, and clears its staging at the end.
    """

    def __init__(
        self, *args: Any, dry_run: bool = False, report: Callable[[str], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dry_run = dry_run
        self.job = DRY_RUN if dry_run else BACKFILL
        self._report = report or (lambda line: None)
        # Set when deciding committed a batch: queuing starts on it, not on its next poll.
        self._batch_decided = asyncio.Event()
        # Deciding and queuing take turns, a batch each: interleaved on the event loop, a round of
        # queuing waited behind a batch of deciding at each of its statements (0.45 s for the first
        # writes of a backfill), and deciding is far ahead of the writes anyway.
        self._turn = asyncio.Lock()

    async def run(self, connection: Connection) -> dict[str, Any]:
        row = await self._take(connection)
        try:
            if row.state != "running" or self.dry_run:
                # A new run (the previous one finished, or never started): start from scratch.
                now = self._clock()
                async with unit_of_work(self._sessions) as session:
                    await repo.clear_staged(session, connection.id, self.job)
                    self.counts = {}
                    await self._save(
                        session, state="running", phase="list", cursor={"run": str(int(now.timestamp()))},
                        started_at=now, finished_at=None, error=None,
                    )  # fmt: skip
            else:
                self.counts = await self._recounted(connection, row.counts)
                log.info("backfill.resuming", extra={"connection": connection.id, "phase": row.phase})
            up = self._upstreams(connection)
            if self._phase in LISTING:
                await self._list_both(connection, up, self.job, ("rankr", "ghl"))
                await self._save(phase="match")
            if self._phase == "match":
                if self.dry_run:
                    await self._match(connection)
                else:  # the writes decided so far are queued while the rest is being decided
                    await self._queue_decided(connection, asyncio.create_task(self._match(connection)))
                await self._save(phase="apply")
            if self._phase == "queue":
                await self._queue_decided(connection)
                await self._save(phase="apply")
            if not self.dry_run:
                await self._drain(connection)
            async with self._sessions() as session:
                self.counts["outcomes"] = await repo.outcome_counts(session, connection.id, self.job)
            if self.dry_run:
                async with unit_of_work(self._sessions) as session:
                    await repo.clear_staged(session, connection.id, self.job)
            await self._finish("done")
        except JobLost:
            raise
        except BaseException as exc:
            # Leave the checkpoint for the next run to resume from; record why this one stopped.
            await self._release_after(exc)
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

    async def _release_after(self, exc: BaseException) -> None:
        try:
            await self._save(error=f"{type(exc).__name__}: {exc}"[:2000], lease_owner=None, lease_until=None)
        except Exception:  # the database itself may be what failed; the lease then expires on its own
            log.exception("backfill.checkpoint_failed")

    async def _match(self, connection: Connection) -> None:
        after = 0
        while True:
            async with self._turn, unit_of_work(self._sessions) as session:
                batch = await repo.staged(session, connection.id, self.job, after, BATCH, undecided=True)
                if not batch:
                    return
                people = await _People.of(session, connection, self.job, batch)
                for record in batch:
                    after = record.id
                    if record.outcome is None:  # decided in this batch as another's counterpart
                        self._decide(people, record)
                await self._save(session)
            self._batch_decided.set()

    async def _queue_decided(
        self, connection: Connection, deciding: asyncio.Task[None] | None = None
    ) -> None:
        """Queue the decided writes (while ``deciding`` decides the rest), those bound for GHL and
        for Rankr in proportion to what is left of each (``_mixed``), at most SYNC_MAX_IN_FLIGHT
        open at a time.

        In decision order (Rankr's records first) the records found in GHL only, which need Rankr
        calls and no GHL budget, come last; queued in that order, GHL's budget would idle while
        they are applied. Deciding is quicker than applying, so once it is over the two are mixed
        for the rest of the run. The cursors ``queued:ghl`` / ``queued:rankr`` are the checkpoint
        (phase ``queue`` once everything is decided); queuing an event again after a crash stores
        nothing new (its id is deterministic).
        """
        run = str(self._cursor.get("run", "0"))
        after = {target: int(self._cursor.get(f"queued:{target}", 0)) for target in repo.BOUND_FOR}
        try:
            while True:
                decided = deciding is None or deciding.done()
                if decided and deciding is not None:
                    await deciding  # its error, if it failed
                    await self._save(phase="queue")
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
                await self._room(connection)
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
            mixed = _mixed(streams)
            await repo.load(session, {r.counterpart_id for r in mixed if r.counterpart_id is not None})
            queued = [await self._event(session, connection, run, record) for record in mixed]
            refs = await repo.enqueue(session, [event for event, _ in queued], self._clock())
            for event, carried in queued:
                for staged in carried if event.event_id in refs else ():  # else queued before a crash
                    staged.event_ref = refs[event.event_id]
            await self._save(session, cursor={**self._cursor, **{f"queued:{t}": a for t, a in after.items()}})

    async def _event(
        self, session: AsyncSession, connection: Connection, run: str, record: StagedContact
    ) -> tuple[IncomingEvent, list[StagedContact]]:
        """The event that carries a decided record's writes (``create`` or ``pair``), and the staged
        records it carries."""
        if record.outcome == "create":
            created = events.create(self.job, run, connection, record.side, record.record_id, record.wire)
            return created, [record]
        counterpart = await session.get(StagedContact, record.counterpart_id)
        assert counterpart is not None  # noqa: S101 - decided together, in one transaction
        rankr, ghl = (record, counterpart) if record.side == "rankr" else (counterpart, record)
        return events.pair(self.job, run, connection, rankr, ghl), [rankr, ghl]

    def _decide(self, people: _People, record: StagedContact) -> None:
        """The matching rule, per staged record (Rankr's are decided first, oldest first):

        1. already linked (by a webhook, or an earlier backfill): nothing to do (``linked``);
           deleted or unlinked earlier: left alone (``ended``);
        2. the same person (same normalised email; or same normalised phone when at most one of the
           two has an email) is already claimed by another record of either side, linked or decided
           in this run: a duplicate, left alone and reported (``duplicate``);
        3. the oldest undecided record of the other side that is the same person: the two are linked
           and their fields merged (``pair``/``paired``);
        4. otherwise it exists on one side only and is created on the other (``create``).
        """
        link = people.links[record.side].get(record.record_id)
        if link is not None:
            live = link.state in (LinkState.LINKED, LinkState.PENDING)
            self._decided(record, "linked" if live else "ended", f"link {link.id}")
            return
        claimed = people.claimed(record)
        if claimed is not None:
            self._decided(record, "duplicate", claimed)
            self._report(f"duplicate {record.side} {record.record_id}: same person as {claimed}; left alone")
            return
        other = "ghl" if record.side == "rankr" else "rankr"
        counterpart = people.oldest(record, side=other, outcomes=None)
        if counterpart is not None:
            rankr, ghl = (record, counterpart) if record.side == "rankr" else (counterpart, record)
            how = "email" if record.match_email and record.match_email == counterpart.match_email else "phone"
            fields = sorted(
                mapping.changes(rankr.fields, ghl.fields) | mapping.changes(ghl.fields, rankr.fields)
            )
            self._report(
                f"link rankr {rankr.record_id} <-> ghl {ghl.record_id} (same {how}); "
                f"fields to merge: {', '.join(fields) or 'none'}"
            )
            self._decided(record, "pair", f"{other} {counterpart.record_id} (same {how})")
            self._decided(counterpart, "paired", f"{record.side} {record.record_id} (same {how})")
            record.counterpart_id = counterpart.id
            return
        self._report(f"create in {other}: {record.side} {record.record_id}")
        self._decided(record, "create", f"in {other}")

    def _decided(self, record: StagedContact, outcome: str, detail: str) -> None:
        record.outcome = outcome
        record.detail = detail[:600]
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.counts["decided"] = self.counts.get("decided", 0) + 1


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
    """

    job = RECONCILE

    async def _take(self, connection: Connection) -> SyncJob:
        async with self._sessions() as session:
            unfinished = await backfill_unfinished(session, connection.id)
        if unfinished is not None:
            raise BackfillUnfinished(unfinished)
        return await super()._take(connection)

    async def run(self, connection: Connection) -> dict[str, Any]:
        row = await self._take(connection)
        try:
            marks = dict(row.cursor) if row.state == "done" else {}
            resumed = row.state == "running"
            now = self._clock()
            if not resumed:
                async with unit_of_work(self._sessions) as session:
                    await repo.clear_staged(session, connection.id, RECONCILE)
                    await repo.clear_staged(session, connection.id, SWEEP)
                    self.counts = {}
                    cursor = {
                        "run": str(int(now.timestamp() * 1000)),
                        "since": {side: marks.get(f"{side}Newest") for side in ("rankr", "ghl")},
                    }
                    await self._save(session, state="running", phase="changes", cursor=cursor, started_at=now,
                                     finished_at=None, error=None)  # fmt: skip
            else:
                self.counts = dict(row.counts)
            up = self._upstreams(connection)
            since = self._cursor.get("since") or {}
            if self._phase == "changes":
                await self._list_both(connection, up, RECONCILE, ("rankr", "ghl"), since)
                await self._repair_changes(connection)
                await self._save(phase="sweep")
            if self._phase == "sweep":
                await self._list_both(connection, up, SWEEP, ("rankrAll", "ghlAll"))
                await self._repair_missing(connection)
                await self._save(phase="apply")
            await self._drain(connection)
            async with unit_of_work(self._sessions) as session:
                await repo.clear_staged(session, connection.id, RECONCILE)
                await repo.clear_staged(session, connection.id, SWEEP)
            cursor = self._cursor
            # The next run starts at the newest change this one saw (inclusive, so none is missed).
            await self._save(cursor={
                "rankrNewest": cursor.get("rankrNewest") or since.get("rankr"),
                "ghlNewest": cursor.get("ghlNewest") or since.get("ghl"),
            })  # fmt: skip
            await self._finish("done")
        except JobLost:
            raise
        except BaseException as exc:
            try:
                await self._save(
                    error=f"{type(exc).__name__}: {exc}"[:2000], lease_owner=None, lease_until=None
                )
            except Exception:
                log.exception("reconcile.checkpoint_failed")
            raise
        return self.counts

    async def _repair_changes(self, connection: Connection) -> None:
        run = str(self._cursor.get("run"))
        after = 0
        while True:
            async with unit_of_work(self._sessions) as session:
                batch = await repo.staged(session, connection.id, RECONCILE, after, BATCH, undecided=False)
                if not batch:
                    return
                people = await _People.of(session, connection, RECONCILE, batch)
                for record in batch:
                    after = record.id
                    if record.outcome is not None:
                        continue
                    link = people.links[record.side].get(record.record_id)
                    if link is None and people.linked_to(record) is not None:
                        # Left alone by the backfill as a duplicate of a linked person (or became one).
                        record.outcome = "duplicate"
                    elif link is None:
                        event = events.create(
                            self.job, run, connection, record.side, record.record_id, record.wire
                        )
                        record.outcome, record.event_ref = "create", await self._queue(session, event)
                    elif (
                        link.state == LinkState.LINKED
                        and record.fingerprint != link.synced_hash
                        and link.rankr_id
                    ):
                        event = events.reconcile(self.job, run, connection, link.id, link.rankr_id)
                        record.outcome, record.event_ref = "repair", await self._queue(session, event)
                    else:
                        record.outcome = "unchanged"
                    self.counts[record.outcome] = self.counts.get(record.outcome, 0) + 1
                await self._save(session)
            await self._room(connection)

    async def _repair_missing(self, connection: Connection) -> None:
        """Queue a reconcile event for each live link whose record was not listed by its side."""
        run = str(self._cursor.get("run"))
        after = 0
        while True:
            async with unit_of_work(self._sessions) as session:
                rows = await session.execute(
                    select(Link)
                    .where(
                        Link.connection_id == connection.id,
                        Link.kind == KIND,
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
                    await self._queue(
                        session, events.reconcile(self.job, run, connection, link.id, link.rankr_id)
                    )
                    self.counts["missing"] = self.counts.get("missing", 0) + 1
                await self._save(session)
            await self._room(connection)


def _unlisted(connection: Connection, side: str, column: Any) -> Any:
    return ~exists().where(
        and_(
            StagedContact.connection_id == connection.id,
            StagedContact.job == SWEEP,
            StagedContact.side == side,
            StagedContact.record_id == column,
        )
    )
