"""The worker: claims due events, applies them through the sync engine, settles the outcome.

Claiming: the oldest open event of each record, with the events queued behind it folded into one job
that applies the newest state (``app.sync.coalesce``); of the events that write to an upstream through
a connection's budget, a claim takes only as many as that budget could start soon, none while it is
spent (``UpstreamRegistry.claim_room``): the rest wait in the database, so one connection's backlog
with one upstream holds up neither the other connections nor its own echoes and writes to the other
upstream.

Outcomes: the engine commits success itself (together with the event's status and the superseded
events'). Here the failures are settled: ``Deferred`` (a busy record, or ``OutOfBudget``) puts the
event back without counting an attempt; a 429 does the same, as ``retrying`` with its reason, for
its Retry-After (the pacer has backed the whole connection off); another transient error schedules a
retry at the next step of ``RETRY_SCHEDULE`` (with jitter, never sooner than the upstream's
Retry-After); a permanent error, or a transient one after ``MAX_ATTEMPTS``, marks the event dead
with the reason, and the events folded into it with it. An outcome that cannot be stored (the
database is away) is left to the lease: the event is claimed again when it expires. ``stop()``
(SIGTERM) stops claiming and lets the events in hand finish.

Leases tell a dead worker from a slow one: while a worker holds events (waiting for a free slot, or
for an upstream slow to answer), it renews their leases, and those its jobs hold on links, every
third of ``WORKER_LEASE_SECONDS``. Only a worker that stopped renewing (it died, or lost the
database) has its events taken over, so a slow write is not made a second time by another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import random
import secrets
import socket
import time
from collections import deque
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.automation.config import sync_config
from app.config import Settings
from app.connections import repository as connections
from app.db import is_postgres, is_unavailable, unit_of_work
from app.db_problems import cannot_store, database_problem, database_streak, describe_error
from app.errors import (
    Deferred,
    LinkConflictError,
    MappingError,
    PermanentUpstreamError,
    TransientUpstreamError,
    UnroutableEvent,
)
from app.inbox import notify
from app.inbox import repository as inbox
from app.inbox.models import EventStatus, WebhookEvent
from app.integrations.registry import UpstreamRegistry
from app.kit.clock import Clock, utcnow
from app.kit.logs import log_context
from app.kit.loop import cancel_and_wait
from app.kit.streak import FailureStreak
from app.ops import housekeeping, metrics
from app.settings_store import service as settings_store
from app.sync import coalesce
from app.sync import repository as links
from app.sync.base import Job
from app.sync.contacts import UNCHANGED
from app.sync.engine import SyncEngine

log = logging.getLogger(__name__)


def _event_logs(event: WebhookEvent, **more: Any) -> AbstractContextManager[None]:
    """The ids every line logged about an event carries (the handler adds its connection)."""
    return log_context(event=event.id, source=event.source, record=event.record_id, **more)


PERMANENT = (PermanentUpstreamError, MappingError, LinkConflictError, UnroutableEvent)
# Failures that the same work reproduces every time (a value the database or the encoder refuses,
# an id no URL can carry): the event goes dead at once rather than after MAX_ATTEMPTS tries.
REPRODUCIBLE = (UnicodeError, OverflowError, RecursionError, httpx.InvalidURL)
BUDGET_FLUSH_SECONDS = 5.0
RECENT_KEYS = 10_000  # records whose last event time the worker keeps for burst detection
# A claim takes up to this many times the worker's concurrency: a claim costs about the same for one
# event as for several (six statements), and the rest wait in hand for a free slot.
CLAIM_AHEAD = 2


def cannot_apply(error: Exception) -> bool:
    """True when applying the event again would fail the same way (not while the database is away)."""
    if is_unavailable(error):
        return False
    return isinstance(error, REPRODUCIBLE) or cannot_store(error)


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    """Claims and processes events, ``WORKER_CONCURRENCY`` at a time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: SyncEngine,
        settings: Settings,
        registry: UpstreamRegistry,
        *,
        clock: Clock = utcnow,
        name: str | None = None,
        listen: bool = True,
    ) -> None:
        """``listen``: on Postgres, also wake up on the intake's NOTIFY (``app.inbox.notify``); off
        where the intake of the same process wakes the worker directly."""
        self.name = name or worker_name()
        self._sessions = sessions
        self._engine = engine
        self._engine_config = sync_config(settings)  # what ``engine`` was built with
        self._settings = settings
        self._registry = registry
        self._clock = clock
        self._listen = listen and is_postgres(settings.database_url)
        self._wake = asyncio.Event()
        self._stopping = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._ready: deque[tuple[WebhookEvent, Job]] = deque()  # claimed, waiting for a free slot
        # The events in hand (ready or in flight): their job's link-lease holder, and when their
        # lease was last taken or renewed (monotonic seconds).
        self._holding: dict[int, tuple[str, float]] = {}
        self._stranded: set[int] = set()  # events in hand whose outcome the database could not take
        self._renew_retry_at = 0.0  # after a renewal failed: not before this (monotonic seconds)
        self._flushed_at = 0.0
        self._polled_at = time.monotonic()
        self._pruned_at: float | None = None
        self._recent: dict[str, datetime] = {}  # ordering key -> when its last claimed event arrived
        self._held: list[datetime] = []  # when the bursts held back here fall due (a heap)
        self._claimed_at = datetime.min.replace(tzinfo=UTC)  # the ``now`` of the last claim
        self._sweep = inbox.Sweep()  # where the next claim's walk over the due events starts
        # A failure that repeats is logged when it starts and ends, not every round. A database
        # problem fails every step and event alike: one streak for the worker, ended by a claim.
        self._database = database_streak(log, "worker.database", settings.database_url)
        self._claims = FailureStreak(log, "worker.claim")
        self._renewals = FailureStreak(log, "worker.lease_renewal")
        self._budget_flushes = FailureStreak(log, "worker.budget_flush")
        self._task_polls = FailureStreak(log, "worker.task_poll")
        self._prunes = FailureStreak(log, "worker.prune")

    @classmethod
    def with_engine(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        registry: UpstreamRegistry,
        *,
        clock: Clock = utcnow,
        name: str | None = None,
        listen: bool = True,
    ) -> Worker:
        """A worker with its own sync engine, on the registry's upstream clients."""
        engine = SyncEngine(sessions, settings, registry.for_connection, clock=clock)
        return cls(sessions, engine, settings, registry, clock=clock, name=name, listen=listen)

    def database_problem_reported(self, reason: str) -> None:
        """The database's problem was logged by whoever started the worker: the worker waits for
        it to pass without a line of its own (the end of the wait is still logged)."""
        self._database.known(reason)

    def _failed(self, step: FailureStreak, error: Exception) -> None:
        """Count a failure of a step: in the worker's database streak when the database is the
        cause, else in the step's own (a fault of the service, logged with its traceback)."""
        if database_problem(error, self._settings.database_url) is None:
            step.failed(error)
        else:
            self._database.failed(error)

    def wake(self) -> None:
        """Look for work now (after an event was stored: by this process's intake, or a NOTIFY)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; the events in hand still finish."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        concurrency = self._settings.worker_concurrency
        log.info("worker.started", extra={"worker": self.name, "concurrency": concurrency})
        listening = (
            asyncio.create_task(notify.listen(self._settings.database_url, self.wake), name="listen")
            if self._listen
            else None
        )
        try:
            await self._loop(concurrency)
        finally:
            await cancel_and_wait(listening)
        log.info("worker.stopped", extra={"worker": self.name})

    async def _loop(self, concurrency: int) -> None:
        while not self._stopping:
            self._wake.clear()
            free = concurrency - len(self._in_flight)
            if free > 0 and not self._ready:
                # A whole batch per claim, the rest kept in hand: a busy worker would otherwise claim
                # once per finished event.
                self._ready.extend(await self._claim(concurrency * CLAIM_AHEAD))
            while self._ready and len(self._in_flight) < concurrency:
                self._spawn(*self._ready.popleft())
            await self._renew_leases()
            await self._flush_budgets()
            if not self._database.failing:  # these would fail too, and the claims tell when it is back
                await self._poll_tasks()
                await self._housekeep()
            if self._stopping:
                break
            if free > 0 and len(self._in_flight) == concurrency:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle_seconds())
        await self._release_ready()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._flush_budgets(force=True)

    async def _release_ready(self) -> None:
        """Put back the claimed events not started yet, so another worker need not wait for their lease."""
        releases = FailureStreak(log, "worker.release")
        while self._ready:
            event, _ = self._ready.popleft()
            self._holding.pop(event.id, None)
            try:
                await self._reschedule(event, EventStatus.PENDING, 0.0, None, count_attempt=False)
            except Exception as exc:
                self._failed(releases, exc)  # the lease runs out instead

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Process due events until none is left (tests and one-shot runs); returns how many ran."""
        processed = 0
        for _ in range(max_rounds):
            claimed = await self._claim(self._settings.worker_concurrency)
            if not claimed:
                break
            await asyncio.gather(*(self._process(event, job) for event, job in claimed))
            processed += len(claimed)
        await self._flush_budgets(force=True)
        return processed

    def _idle_seconds(self) -> float:
        """How long to wait for a wake-up: the poll interval, or less when a held-back budget frees
        or a burst held back here is due."""
        free_at = self._registry.claim_room().free_at
        now = self._clock().timestamp()
        due = [self._settings.worker_poll_seconds]
        if free_at is not None:
            due.append(max(0.01, free_at - now))
        if self._holding:
            due.append(max(0.01, self._renew_due() - time.monotonic()))
        # A hold is forgotten only once a claim has seen it due: a timer may fire a little early
        # (the event loop measures from the start of its iteration), and a claim that came too
        # early must not leave the held event to the next poll.
        while self._held and self._held[0] <= self._claimed_at:
            heapq.heappop(self._held)
        if self._held:
            due.append(max(0.001, self._held[0].timestamp() - now))
        return min(due)

    def _spawn(self, event: WebhookEvent, job: Job) -> None:
        task = asyncio.create_task(self._process(event, job), name=f"event-{event.id}")
        self._in_flight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._in_flight.discard(finished)
            self._wake.set()

        task.add_done_callback(done)

    async def _claim(self, limit: int) -> list[tuple[WebhookEvent, Job]]:
        """Claim due events, each with the job that applies it and the events queued behind it; none
        when none is due.

        A contact event whose burst is still arriving is put back at once, in the same transaction,
        until the burst is over (``coalesce.hold_until``), without counting an attempt. Events that
        change nothing are settled right there (``SyncEngine.settle_echoes``); when a claim held
        only those, the next one is made at once.
        """
        while True:
            claimed, settled = await self._claim_once(limit)
            if claimed or not settled:
                return claimed

    async def _claim_once(self, limit: int) -> tuple[list[tuple[WebhookEvent, Job]], int]:
        """One claim: the events to apply, and how many were settled in it as changing nothing."""
        room = self._registry.claim_room()
        most = self._settings.coalesce_max_events
        quiet = timedelta(seconds=self._settings.coalesce_quiet_seconds)
        now = self._clock()
        claimed: list[tuple[WebhookEvent, Job]] = []
        try:
            async with unit_of_work(self._sessions) as session:
                # Settings saved (in the console) since the engine was built apply from this claim on.
                await settings_store.refresh_in(session, self._settings)
                if sync_config(self._settings) is not self._engine_config:
                    self._engine_config = sync_config(self._settings)
                    self._engine = SyncEngine(
                        self._sessions, self._settings, self._registry.for_connection, clock=self._clock
                    )
                await self._release_stranded(session, now)
                lease = timedelta(seconds=self._settings.worker_lease_seconds)
                heads = await inbox.claim_due(
                    session,
                    worker=self.name,
                    now=now,
                    lease=lease,
                    limit=limit,
                    most_per_account=room.most,
                    sweep=self._sweep,
                )
                waiting = await inbox.waiting_behind(session, heads, limit=most * len(heads))
                routes = await connections.by_accounts(session, {(h.source, h.account_key) for h in heads})
                for head in heads:
                    folded = coalesce.foldable(head, waiting.get(head.ordering_key, [])[:most])
                    previous = self._recent.get(head.ordering_key)
                    until = coalesce.hold_until(head, folded, previous, now, quiet)
                    if until is not None:
                        heapq.heappush(self._held, until)
                        await inbox.reschedule(
                            session, head.id, self.name, status=EventStatus.PENDING, at=until,
                            error=None, count_attempt=False,
                        )  # fmt: skip
                        continue
                    self._remember(head.ordering_key, [head, *folded], now - coalesce.HOLD_MAX)
                    route = routes.get((head.source, head.account_key))
                    claimed.append((head, self._engine.plan(head, folded, self.name, route)))
                settled = await self._engine.settle_echoes(session, [job for _, job in claimed], now)
        except Exception as exc:
            self._failed(self._claims, exc)
            await asyncio.sleep(self._settings.worker_poll_seconds)
            return [], 0
        self._stranded.clear()
        self._claims.succeeded()
        self._database.succeeded()
        self._claimed_at = now
        leased_at = time.monotonic()
        for head, job in claimed:
            if head.id not in settled:
                self._holding[head.id] = (job.holder, leased_at)
            else:
                with _event_logs(head, connection=job.connection.id if job.connection else None):
                    log.info("sync.event_applied", extra={"coalesced": 0, "note": UNCHANGED})
                metrics.event_finished(head.source, "processed", 0.0)
        return [(head, job) for head, job in claimed if head.id not in settled], len(settled)

    async def _release_stranded(self, session: AsyncSession, now: datetime) -> None:
        """Put back, due now and uncounted, the events whose outcome could not be stored while the
        database was away: the claim that follows takes them again, without waiting for their leases."""
        for event_id in sorted(self._stranded):
            await inbox.reschedule(
                session, event_id, self.name, status=EventStatus.PENDING, at=now, error=None,
                count_attempt=False,
            )  # fmt: skip

    def _remember(self, key: str, events: list[WebhookEvent], forget_before: datetime) -> None:
        """Note when the newest event of a record taken for work arrived (burst detection)."""
        if len(self._recent) > RECENT_KEYS:
            self._recent = {k: at for k, at in self._recent.items() if at >= forget_before}
        self._recent[key] = max(event.received_at for event in events)

    async def _process(self, event: WebhookEvent, job: Job) -> None:
        started = time.monotonic()
        outcome = "failed"
        with _event_logs(event):
            try:
                outcome = await self._apply(event, job)
            except Exception as exc:
                # The outcome could not be stored: the event stays leased to this worker. When the
                # database is the cause it is put back as soon as the database answers again
                # (``_release_stranded``); otherwise the lease runs out and it is claimed again then.
                if database_problem(exc, self._settings.database_url) is None:
                    log.exception("worker.settle_failed")
                else:
                    self._database.failed(exc)
                    self._stranded.add(event.id)
            finally:
                self._holding.pop(event.id, None)
                elapsed = time.monotonic() - started
                metrics.event_finished(event.source, outcome, elapsed)
                log.debug(
                    "worker.event_processed",
                    extra={"type": event.type, "outcome": outcome, "ms": round(elapsed * 1000)},
                )

    async def _apply(self, event: WebhookEvent, job: Job) -> str:
        """Apply the job and settle a failure; returns the outcome (for the metrics)."""
        try:
            await self._engine.handle(job)
        except Deferred as exc:
            # A long wait is spread a little, so a connection's deferred backlog does not return at once.
            spread = random.uniform(1.0, 1.2) if exc.delay >= 1 else 1.0  # noqa: S311 - jitter
            await self._reschedule(event, EventStatus.PENDING, exc.delay * spread, None, count_attempt=False)
            return "deferred"
        except TransientUpstreamError as exc:
            if exc.status == 429:
                await self._rate_limited(event, str(exc), exc.retry_after)
                return "rate_limited"
            return await self._retry(event, job, str(exc), exc.retry_after)
        except PERMANENT as exc:
            await self._dead(event, job, str(exc))
            return "dead"
        except Exception as exc:
            problem = database_problem(exc, self._settings.database_url)
            if problem is not None:
                # An outage fails every event in hand alike: one streak for them all, not a line each;
                # the event waits for the database, uncounted (while it is away, ``_process`` keeps it
                # for ``_release_stranded``).
                self._database.failed(exc)
                await self._reschedule(
                    event, EventStatus.PENDING, self._settings.worker_poll_seconds, str(problem),
                    count_attempt=False,
                )  # fmt: skip
                return "deferred"
            reason = describe_error(exc)
            if cannot_apply(exc):
                await self._dead(event, job, f"the event cannot be applied: {reason}")
                return "dead"
            log.warning(
                "worker.event_crashed",
                extra={"type": event.type, "error": reason},
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return await self._retry(event, job, f"unexpected {reason}", None)
        return "processed"

    def _backoff(self, attempts: int) -> float:
        """The delay before attempt ``attempts + 1``: the schedule's step, with +-20% jitter."""
        delays = self._settings.retry_delays
        return delays[min(max(attempts, 1), len(delays)) - 1] * random.uniform(0.8, 1.2)  # noqa: S311 - jitter

    async def _retry(self, event: WebhookEvent, job: Job, error: str, retry_after: float | None) -> str:
        """Schedule the next attempt, or give up; returns the outcome (``retried`` or ``dead``)."""
        if event.attempts >= self._settings.max_attempts:
            await self._dead(event, job, f"{error} (gave up after {event.attempts} attempts)")
            return "dead"
        delay = max(self._backoff(event.attempts), retry_after or 0.0)
        log.warning("worker.event_retrying", extra={"in_seconds": round(delay, 1), "error": error})
        await self._reschedule(event, EventStatus.RETRYING, delay, error, count_attempt=True)
        return "retried"

    async def _rate_limited(self, event: WebhookEvent, error: str, retry_after: float | None) -> None:
        """A 429 is the budget speaking, not the event failing: wait for it without counting an attempt."""
        delay = retry_after if retry_after is not None else self._backoff(event.attempts)
        log.warning("worker.event_rate_limited", extra={"in_seconds": round(delay, 1)})
        await self._reschedule(event, EventStatus.RETRYING, delay, error, count_attempt=False)

    async def _dead(self, event: WebhookEvent, job: Job, reason: str) -> None:
        """Mark the event dead, and the events folded into its job with it (a replay re-runs them all)."""
        log.error("worker.event_dead", extra={"type": event.type, "error": reason})
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            if await inbox.finish(session, [event.id], self.name, EventStatus.DEAD, now, reason[:2000]):
                await inbox.finish_waiting(session, job.superseded, EventStatus.DEAD, now, reason[:2000])

    async def _reschedule(
        self,
        event: WebhookEvent,
        status: EventStatus,
        delay: float,
        error: str | None,
        *,
        count_attempt: bool,
    ) -> None:
        at = self._clock() + timedelta(seconds=delay)
        async with unit_of_work(self._sessions) as session:
            await inbox.reschedule(
                session,
                event.id,
                self.name,
                status=status,
                at=at,
                error=error[:2000] if error else None,
                count_attempt=count_attempt,
            )

    def _renew_due(self) -> float:
        """When (monotonic seconds) the oldest lease in hand is a third through: time to renew."""
        oldest = min(at for _, at in self._holding.values())
        return max(oldest + self._settings.worker_lease_seconds / 3, self._renew_retry_at)

    async def _renew_leases(self) -> None:
        """Renew the leases of the events in hand, and of the links their jobs hold, once the oldest
        is a third through (one statement for each table, whatever is in hand)."""
        if not self._holding or time.monotonic() < self._renew_due():
            return
        held = dict(self._holding)
        renewed_at = time.monotonic()
        until = self._clock() + timedelta(seconds=self._settings.worker_lease_seconds)
        try:
            # Two transactions: a handler settles its link, then its event, in one; renewing the
            # events, then the links, in one too would take their row locks the other way round.
            async with unit_of_work(self._sessions) as session:
                await inbox.renew(session, held, self.name, until)
            async with unit_of_work(self._sessions) as session:
                await links.renew_leases(session, [holder for holder, _ in held.values()], until)
        except Exception as exc:
            # The leases run out unless a later try gets through: then the events are taken over.
            self._failed(self._renewals, exc)
            self._renew_retry_at = time.monotonic() + self._settings.worker_poll_seconds
            return
        self._renewals.succeeded()
        for event_id, (holder, _) in held.items():
            if event_id in self._holding:
                self._holding[event_id] = (holder, renewed_at)

    async def _flush_budgets(self, *, force: bool = False) -> None:
        """Persist the rate-limit headers seen lately, so /status and other processes see them."""
        now = time.monotonic()
        if not self._registry.budgets or (not force and now - self._flushed_at < BUDGET_FLUSH_SECONDS):
            return
        self._flushed_at = now
        pending = dict(self._registry.budgets)
        self._registry.budgets.clear()
        try:
            async with unit_of_work(self._sessions) as session:
                for (connection_id, upstream), snapshot in pending.items():
                    await connections.save_budget(session, connection_id, upstream, snapshot)
        except Exception as exc:
            self._failed(self._budget_flushes, exc)
            return
        self._budget_flushes.succeeded()

    async def _poll_tasks(self) -> None:
        """Look for GHL task changes that send no webhook, every ``TASK_POLL_SECONDS``."""
        interval = self._settings.task_poll_seconds
        now = time.monotonic()
        if interval <= 0 or now - self._polled_at < interval:
            return
        self._polled_at = now
        try:
            queued = await self._engine.task_poll.run_once()
        except Exception as exc:
            self._failed(self._task_polls, exc)
            return
        self._task_polls.succeeded()
        if queued:
            log.info("worker.task_changes_found", extra={"queued": queued})
            self._wake.set()

    async def _housekeep(self) -> None:
        """Prune old audit entries and finished events, once at start and then every interval."""
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self._settings.prune_interval_seconds:
            return
        self._pruned_at = now
        try:
            await housekeeping.prune(self._sessions, self._settings, self._clock())
        except Exception as exc:
            self._failed(self._prunes, exc)
            return
        self._prunes.succeeded()
