"""Pacing outbound requests against a budget that every process shares: slots, not surprises.

The budget of one (connection, upstream) lives in one row that every worker process reads and writes
(a ``SlotStore``; ``app.connections.budget`` keeps it in the database). The schedule is GCRA's
virtual scheduling without burst: the row holds ``next_slot``, the earliest time the next request
may start, and reserving n requests moves it n intervals on in one atomic statement. The interval is
the window divided by ``limit * (1 - headroom)``, so any window holds at most that many slots (+1),
and the headroom (default 3 %) keeps the upstream's count under its limit even when a request goes
out a little after its slot, when clocks differ a little, or when someone else spends some budget.

A process reserves slots for the requests waiting in it at that moment: one when idle, a small batch
under load, so the store sees about one round trip per batch rather than per request. A slot not
used soon after its time is dropped, never used late: requests held back by a stall (of this
process, of the database that grants the slots) would otherwise go out together, and a window of
the upstream that starts at such a bunch holds more than the schedule put into it. How late is
soon is what the headroom absorbs (``Pacer.grace``).

The upstream's answers correct the schedule: a limit lower than the setting (``X-RateLimit-Max`` and
``-Interval-Milliseconds``, ``RateLimit-Limit``) slows the pace; a remaining count that falls into
the headroom by more than that one request (someone else spends the budget too) or reaches zero
delays the next slot; a daily count (``X-RateLimit-Daily-Remaining``) raises today's; a 429 moves
``next_slot`` past its Retry-After for every process at once (``back_off``). Corrections of the
first kinds travel with the next reservation, so they cost no round trip of their own.

A request that would wait longer than ``max_wait`` is not held: ``OutOfBudget`` (a ``Deferred``)
tells the worker to put its event back, without counting an attempt, for when the budget allows;
``busy_until`` tells it when to claim this connection's events again. The store's refusal stops only
this process's new reservations until the schedule could grant one again: the slots it already
holds stay good (they are the schedule's, and a shared schedule that other processes keep full
refuses every process now and then; dropping their slots then would waste the budget).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from app.errors import OutOfBudget
from app.kit.http import RateLimitSnapshot

log = logging.getLogger(__name__)

# A reserved slot may be used this late at most (seconds), whatever the headroom allows.
SLOT_GRACE = 0.25
# Most slots one reservation takes (the requests waiting in this process, up to this many).
MAX_BATCH = 8


@dataclass(frozen=True, slots=True)
class RateLimits:
    """An upstream's budget per key as configured: ``limit`` requests per ``window_seconds``."""

    limit: int
    window_seconds: float
    daily_limit: int | None
    headroom: float

    def interval(self, limit: int, window_seconds: float) -> float:
        """Seconds between two slots for a budget of ``limit`` per ``window_seconds``, less headroom."""
        usable = max(1, math.floor(limit * (1 - self.headroom)))
        return window_seconds / usable

    def reserve_count(self, limit: int) -> int:
        """How many requests of a window the headroom keeps unused (at least one)."""
        return max(1, limit - math.floor(limit * (1 - self.headroom)))


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """One reservation: ``count`` slots, none before ``not_before``, refused past ``now + max_wait``."""

    count: int
    now: float  # Unix seconds
    not_before: float
    interval: float
    max_wait: float
    today: str  # UTC date, YYYY-MM-DD
    used_today_at_least: int  # what the upstream's daily headers say was spent today
    daily_limit: int | None


@dataclass(frozen=True, slots=True)
class Grant:
    """A reservation's answer: the first slot (Unix seconds) of ``count``, or None and the wait."""

    first_slot: float | None
    next_slot: float  # the shared schedule after this reservation: when the next request may start
    wait: float = 0.0


class SlotStore(Protocol):
    """Where the shared schedule of one (connection, upstream) lives."""

    async def reserve(self, request: SlotRequest) -> Grant: ...

    async def push_back(self, until: float) -> None:
        """No slot before ``until`` (Unix seconds), for every process."""


def _utc_date(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def seconds_to_midnight(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - moment).total_seconds()


class Pacer:
    """Paces one connection's requests to one upstream, in this process, through the shared store."""

    def __init__(
        self,
        store: SlotStore,
        limits: RateLimits,
        *,
        name: str,
        max_wait: float = 2.0,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._store = store
        self._limits = limits
        self._max_wait = max_wait
        self._now = now
        self._sleep = sleep
        self._slots: deque[float] = deque()
        self._waiting = 0
        self._lock = asyncio.Lock()
        # What this process knows of the shared schedule, and the corrections the answers brought.
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._not_before = 0.0
        self._refused_until = 0.0  # the store had no slot for a reservation before this
        self._used: tuple[str, int] = ("", 0)  # (UTC day, requests the upstream counted that day)
        self._seen_limit: tuple[int, float] | None = None
        self._seen_daily_limit: int | None = None

    # --- taking a slot -------------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for this request's slot; ``OutOfBudget`` when it is further off than ``max_wait``."""
        while True:
            self._waiting += 1
            try:
                slot, due = await self._claim_slot()
            finally:
                self._waiting -= 1
            delay = due - self._now()
            if delay > 0:
                await self._sleep(delay)
            # An answer that came while this request waited (a 429, a count at zero) may have moved
            # the schedule past its slot, or the process woke too late for it (a busy CPU): then it
            # needs a later slot, or requests would bunch up at the upstream.
            if slot >= self._hold_until() and self._now() - due <= self.grace:
                return

    def _hold_until(self) -> float:
        """No slot before this, whatever was reserved earlier (the corrections answers brought)."""
        return max(self._not_before, self._paused_until) - 1e-6

    async def _claim_slot(self) -> tuple[float, float]:
        """A slot, and when it is due: its time, or, for the first slot of the reservation this
        request made itself, when the store granted it (late only by the store's answer, which one
        request cannot bunch; a store that always answers later than the grace would otherwise
        never grant a usable slot)."""
        while True:
            slot = self._fresh_slot()
            if slot is not None:
                return slot, slot
            async with self._lock:
                if not self._slots:
                    await self._reserve(min(max(1, self._waiting), MAX_BATCH))
                    slot = self._slots.popleft()
                    return slot, max(slot, self._now())

    def _fresh_slot(self) -> float | None:
        stale = max(self._now() - self.grace, self._hold_until())
        while self._slots and self._slots[0] < stale:
            self._slots.popleft()
        return self._slots.popleft() if self._slots else None

    async def _reserve(self, count: int) -> None:
        now = self._now()
        not_before = max(now, self._not_before, self._paused_until)
        wait = max(not_before, self._refused_until) - now
        if wait > self._max_wait:
            raise OutOfBudget(self.name, wait)
        interval = self.interval
        today = _utc_date(now)
        used_day, used = self._used
        request = SlotRequest(
            count=count,
            now=now,
            not_before=not_before,
            interval=interval,
            max_wait=self._max_wait,
            today=today,
            used_today_at_least=used if used_day == today else 0,
            daily_limit=self.daily_limit,
        )
        grant = await self._store.reserve(request)
        self._next_slot = grant.next_slot
        if grant.first_slot is None:
            self._refused_until = now + grant.wait
            raise OutOfBudget(self.name, grant.wait)
        self._slots.extend(grant.first_slot + n * interval for n in range(count))

    # --- what answers tell -----------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """Seconds between slots: the configured pace, or the upstream's when it reports a slower one."""
        limits = self._limits
        configured = limits.interval(limits.limit, limits.window_seconds)
        if self._seen_limit is None:
            return configured
        return max(configured, limits.interval(*self._seen_limit))

    @property
    def _budget(self) -> tuple[int, float]:
        """(limit, window seconds): as the upstream's answers last reported them, else as configured."""
        return self._seen_limit or (self._limits.limit, self._limits.window_seconds)

    @property
    def grace(self) -> float:
        """How late a slot may still be used (seconds).

        Slots used late by up to ``d`` put about ``d / interval`` requests more into one window of
        the upstream. The headroom keeps ``reserve_count`` requests of each window unused, and the
        schedule's own edges may take one of them (``observe``); the rest bound the lateness: two
        slots' time with the default 3 % of 100 (206 ms at GHL's 100 per 10 s, 41 ms at 100 per 2 s).
        At least one slot's time, at most ``SLOT_GRACE``.
        """
        limit, _ = self._budget
        spare = max(1, self._limits.reserve_count(limit) - 1)
        return min(SLOT_GRACE, spare * self.interval)

    @property
    def daily_limit(self) -> int | None:
        limits = [value for value in (self._limits.daily_limit, self._seen_daily_limit) if value is not None]
        return min(limits) if limits else None

    def observe(self, snapshot: RateLimitSnapshot) -> None:
        """Correct the schedule from an answer's rate-limit headers (applied with the next reservation)."""
        now = snapshot.observed_at.timestamp()
        if snapshot.limit is not None:
            window = (snapshot.window_ms or 0) / 1000 or self._limits.window_seconds
            self._seen_limit = (snapshot.limit, window)
        limit, _ = self._budget
        if snapshot.remaining is not None:
            # This schedule itself may put one request more than its pace into a window (the one
            # that starts it and the one that ends it), so one of the kept requests may be in use.
            expected = self._limits.reserve_count(limit) - 1
            if snapshot.remaining < expected:
                # The upstream counts more than this schedule allows for: someone else spends the
                # budget too (or clocks differ). Skip slots until the window has room again.
                delay = (expected - snapshot.remaining) * self.interval
                self._not_before = max(self._not_before, now + delay)
            if snapshot.remaining <= 0:
                # Spent: wait for the reset when the upstream tells it (Rankr), else for one slot of
                # the pace (a full window frees a request at about that rate).
                reset = snapshot.reset_at.timestamp() if snapshot.reset_at else now + self.interval
                self._not_before = max(self._not_before, reset)
        if snapshot.daily_limit is not None:
            self._seen_daily_limit = snapshot.daily_limit
            if snapshot.daily_remaining is not None:
                spent = snapshot.daily_limit - snapshot.daily_remaining
                day = _utc_date(now)
                used_day, used = self._used
                self._used = (day, max(used, spent) if used_day == day else spent)
                if snapshot.daily_remaining <= 0:
                    self._not_before = max(self._not_before, now + seconds_to_midnight(now))

    @property
    def _default_back_off(self) -> float:
        """The wait when the upstream says the budget is spent but not for how long: a tenth of its window."""
        _, window = self._budget
        return window / 10

    async def back_off(self, seconds: float | None) -> None:
        """A 429: no request of this connection to this upstream, from any process, for ``seconds``.

        Without a Retry-After the wait is a tenth of the window (GHL: 1 s; Rankr: 6 s).
        """
        now = self._now()
        until = now + (seconds if seconds is not None else self._default_back_off)
        self._paused_until = max(self._paused_until, until)
        self._next_slot = max(self._next_slot, until)
        self._slots.clear()
        log.warning("pacing.backing_off", extra={"budget": self.name, "seconds": round(until - now, 1)})
        try:
            await self._store.push_back(until)
        except Exception:
            # This process already waits; the others learn it from their own 429 instead.
            log.exception("pacing.back_off_not_shared", extra={"budget": self.name})

    def busy_until(self) -> float:
        """When, as far as this process knows, a request newly made here could start (Unix seconds)."""
        return max(self._next_slot, self._paused_until, self._not_before, self._refused_until)
