"""The pacer: slots from a shared schedule, batches, corrections from answers, 429 back-off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.errors import OutOfBudget
from app.kit.http import RateLimitSnapshot
from app.kit.pacing import Grant, Pacer, RateLimits, SlotRequest, seconds_to_midnight

pytestmark = pytest.mark.anyio

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()
GHL = RateLimits(limit=100, window_seconds=10.0, daily_limit=200_000, headroom=0.1)
INTERVAL = 10.0 / 90


class FakeTime:
    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


class MemoryStore:
    """The schedule of one budget row, with the database's semantics (``reserve_slots``)."""

    def __init__(self) -> None:
        self.next_slot = 0.0
        self.day: str | None = None
        self.day_count = 0
        self.requests: list[SlotRequest] = []
        self.pushed: list[float] = []

    async def reserve(self, request: SlotRequest) -> Grant:
        self.requests.append(request)
        await self.round_trip()
        start = max(self.next_slot, request.not_before)
        used = max(self.day_count if self.day == request.today else 0, request.used_today_at_least)
        over_daily = request.daily_limit is not None and used + request.count > request.daily_limit
        if start > request.now + request.max_wait or over_daily:
            wait = start - request.now
            if wait <= request.max_wait:
                wait = seconds_to_midnight(request.now)
            return Grant(first_slot=None, next_slot=self.next_slot, wait=wait)
        self.next_slot = start + request.count * request.interval
        self.day, self.day_count = request.today, used + request.count
        return Grant(first_slot=start, next_slot=self.next_slot)

    async def push_back(self, until: float) -> None:
        self.pushed.append(until)
        self.next_slot = max(self.next_slot, until)

    async def round_trip(self) -> None:
        await asyncio.sleep(0)  # the database answers later: others may queue meanwhile


class GatedStore(MemoryStore):
    """A store whose answers wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def round_trip(self) -> None:
        await self.gate.wait()
        self.gate.clear()


def pacer(store: MemoryStore, clock: FakeTime, limits: RateLimits = GHL) -> Pacer:
    return Pacer(store, limits, name="ghl", max_wait=2.0, now=clock, sleep=clock.sleep)


def snapshot(clock: FakeTime, **values: object) -> RateLimitSnapshot:
    fields: dict[str, object] = {
        "limit": 100,
        "remaining": 90,
        "window_ms": 10_000,
        "reset_at": None,
        "daily_limit": None,
        "daily_remaining": None,
        **values,
    }
    return RateLimitSnapshot(observed_at=datetime.fromtimestamp(clock.now, UTC), **fields)  # type: ignore[arg-type]


async def test_requests_are_spaced_by_the_budget_less_headroom() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    for _ in range(5):
        await paced.acquire()
    # The first goes at once; each next one waits one interval (90 requests per 10 s).
    assert clock.slept == [pytest.approx(INTERVAL)] * 4
    assert clock.now - START == pytest.approx(4 * INTERVAL)


async def test_requests_that_queue_during_a_reservation_share_the_next_one() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    await asyncio.gather(*(paced.acquire() for _ in range(4)))
    assert [request.count for request in store.requests] == [1, 3]
    assert store.next_slot == pytest.approx(START + 4 * INTERVAL)


async def test_a_wait_longer_than_max_wait_defers_instead_of_holding_the_request() -> None:
    store, clock = MemoryStore(), FakeTime()
    store.next_slot = START + 30
    paced = pacer(store, clock)
    with pytest.raises(OutOfBudget) as raised:
        await paced.acquire()
    assert raised.value.delay == pytest.approx(30)
    assert paced.busy_until() == pytest.approx(START + 30)
    # Known to be out of budget: the next request is refused without asking the store again.
    with pytest.raises(OutOfBudget):
        await paced.acquire()
    assert len(store.requests) == 1
    clock.now += 30
    await paced.acquire()
    assert len(store.requests) == 2


class HeldTime(FakeTime):
    """Sleepers wait until the test moves the clock and lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        await self.release.wait()


async def test_a_refused_reservation_leaves_the_slots_already_held_good() -> None:
    """Other processes keep the shared schedule full: this one's next reservation is refused, and
    the requests already holding a slot still go at it (the refusal once made them all re-reserve,
    be refused in turn, and defer: every slot wasted, no request sent)."""
    store, clock = MemoryStore(), HeldTime()
    paced = pacer(store, clock)
    held = [asyncio.create_task(paced.acquire()) for _ in range(3)]
    while len(clock.slept) < 2:
        await asyncio.sleep(0)
    assert held[0].done()  # the first slot was now; two requests wait for theirs
    store.next_slot = START + 30  # the other processes took every slot of the next 30 s
    with pytest.raises(OutOfBudget) as refused:
        await paced.acquire()
    assert refused.value.delay == pytest.approx(30)
    clock.now = START + 2 * INTERVAL
    clock.release.set()
    await asyncio.gather(*held)
    assert [request.count for request in store.requests] == [1, 2, 1]
    # Until the schedule could grant a slot again, a new request is refused without asking the store.
    with pytest.raises(OutOfBudget):
        await paced.acquire()
    assert len(store.requests) == 3
    assert paced.busy_until() == pytest.approx(START + 30)


async def test_a_slot_not_used_in_time_is_dropped_not_used_late() -> None:
    store, clock = GatedStore(), FakeTime()
    paced = pacer(store, clock)
    first = asyncio.create_task(paced.acquire())
    second, third = asyncio.create_task(paced.acquire()), asyncio.create_task(paced.acquire())
    await asyncio.sleep(0)
    store.gate.set()  # the first reservation (one slot) answers; the next one takes two
    await first
    await asyncio.sleep(0)
    third.cancel()  # its slot is reserved, but nobody will use it
    store.gate.set()
    await second
    with pytest.raises(asyncio.CancelledError):
        await third
    clock.now += 1.0
    store.gate.set()
    await paced.acquire()
    assert [request.count for request in store.requests] == [1, 2, 1]


# GHL's limit scaled to 2 s, with the default headroom: 97 slots, 3 requests of each window kept.
SCALED = RateLimits(limit=100, window_seconds=2.0, daily_limit=None, headroom=0.03)
SCALED_INTERVAL = 2.0 / 97


class SlowStore(MemoryStore):
    """A store whose answers come ``delays`` seconds late (a busy database), one delay per answer."""

    def __init__(self, clock: FakeTime, delays: list[float]) -> None:
        super().__init__()
        self.clock = clock
        self.delays = delays

    async def round_trip(self) -> None:
        self.clock.now += self.delays.pop(0) if len(self.delays) > 1 else self.delays[0]
        await asyncio.sleep(0)


async def _returned(paced: Pacer, clock: FakeTime, requests: int) -> list[float]:
    """When each of ``requests`` concurrent requests got its slot, from START."""
    times: list[float] = []

    async def one() -> None:
        await paced.acquire()
        times.append(clock.now - START)

    await asyncio.gather(*(one() for _ in range(requests)))
    return times


async def test_slots_late_by_more_than_the_headroom_absorbs_are_dropped() -> None:
    clock = FakeTime()
    paced = pacer(SlowStore(clock, [0.0]), clock, SCALED)
    # Of the 3 kept requests, the schedule's own edges may use one; the other two bound the lateness.
    assert paced.grace == pytest.approx(2 * SCALED_INTERVAL)
    # The first request takes one slot; the three that queued meanwhile take the next three, and the
    # answer comes 6 slots late. Its own first slot goes at once (one request does not bunch); the
    # other two, late by 4 and 3 slots, would make a bunch of three: they take new slots.
    clock = FakeTime()
    store = SlowStore(clock, [0.0, 6 * SCALED_INTERVAL, 0.0])
    times = await _returned(pacer(store, clock, SCALED), clock, 4)
    assert [request.count for request in store.requests] == [1, 3, 2]
    assert sorted(times) == pytest.approx([0, 6 * SCALED_INTERVAL, 6 * SCALED_INTERVAL, 7 * SCALED_INTERVAL])


async def test_slots_late_by_less_than_the_grace_are_used() -> None:
    clock = FakeTime()
    store = SlowStore(clock, [0.0, 1.5 * SCALED_INTERVAL])
    await _returned(pacer(store, clock, SCALED), clock, 4)
    assert [request.count for request in store.requests] == [1, 3]  # none dropped, none taken again


async def test_a_store_slower_than_the_grace_still_grants_usable_slots() -> None:
    clock = FakeTime()
    store = SlowStore(clock, [5 * SCALED_INTERVAL])
    paced = pacer(store, clock, SCALED)
    for _ in range(3):
        await asyncio.wait_for(paced.acquire(), timeout=5)
    assert len(store.requests) == 3


async def test_a_lower_limit_in_the_answers_slows_the_pace() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    paced.observe(snapshot(clock, limit=20, remaining=19, window_ms=2000))
    assert paced.interval == pytest.approx(2.0 / 18)
    paced.observe(snapshot(clock, limit=10, remaining=9, window_ms=10_000))
    assert paced.interval == pytest.approx(10.0 / 9)
    # A higher limit than configured does not speed it up: the setting is the ceiling.
    paced.observe(snapshot(clock, limit=1000, remaining=999, window_ms=10_000))
    assert paced.interval == pytest.approx(INTERVAL)


async def test_a_remaining_count_inside_the_headroom_skips_slots() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    paced.observe(snapshot(clock, remaining=4))  # 10 kept back, 4 left: someone else spends too
    await paced.acquire()
    # the schedule itself may use one of the 10 (a window can hold one slot more than the pace)
    assert store.requests[0].not_before == pytest.approx(START + 5 * INTERVAL)
    assert clock.now == pytest.approx(START + 5 * INTERVAL)


async def test_the_one_request_a_window_of_the_schedule_may_hold_over_its_pace_skips_no_slot() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    paced.observe(snapshot(clock, remaining=9))  # 10 kept back, 9 left: that is this schedule's own
    await paced.acquire()
    assert store.requests[0].not_before == pytest.approx(START)


async def test_rankr_remaining_zero_waits_for_the_reset() -> None:
    store, clock = MemoryStore(), FakeTime()
    rankr = RateLimits(limit=600, window_seconds=60.0, daily_limit=None, headroom=0.1)
    paced = pacer(store, clock, rankr)
    reset = datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=40)
    paced.observe(snapshot(clock, limit=600, remaining=0, window_ms=None, reset_at=reset))
    with pytest.raises(OutOfBudget) as raised:
        await paced.acquire()
    assert raised.value.delay == pytest.approx(40)
    assert store.requests == []


async def test_the_daily_limit_defers_until_midnight() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock, RateLimits(100, 10.0, daily_limit=3, headroom=0.1))
    for _ in range(3):
        await paced.acquire()
    with pytest.raises(OutOfBudget) as raised:
        await paced.acquire()
    assert raised.value.delay == pytest.approx(seconds_to_midnight(clock.now))


async def test_the_daily_headers_count_what_others_spent_today() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    paced.observe(snapshot(clock, daily_limit=200_000, daily_remaining=150_000))
    await paced.acquire()
    assert store.requests[0].used_today_at_least == 50_000
    assert store.day_count == 50_001
    paced.observe(snapshot(clock, daily_limit=200_000, daily_remaining=0))
    with pytest.raises(OutOfBudget) as raised:
        await paced.acquire()
    assert raised.value.delay == pytest.approx(seconds_to_midnight(clock.now))
    # A new day starts from nothing, whatever yesterday's answers said.
    clock.now += raised.value.delay
    store.requests.clear()
    await paced.acquire()
    assert store.requests[0].used_today_at_least == 0
    assert store.requests[0].today == "2026-11-27"


async def test_a_429_backs_off_every_process_for_its_retry_after() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    await paced.back_off(30)
    assert store.pushed == [pytest.approx(START + 30)]
    with pytest.raises(OutOfBudget) as raised:
        await paced.acquire()
    assert raised.value.delay == pytest.approx(30)
    # Another process, sharing the store, learns it from the store.
    other = pacer(store, clock)
    with pytest.raises(OutOfBudget):
        await other.acquire()
    # A short Retry-After is simply waited for.
    clock.now += 29
    await paced.acquire()
    assert clock.now == pytest.approx(START + 30)


async def test_a_429_without_retry_after_waits_a_tenth_of_the_window() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    await paced.back_off(None)
    assert store.pushed == [pytest.approx(START + 1.0)]


async def test_a_request_waiting_for_its_slot_yields_to_a_429_that_came_meanwhile() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    await paced.acquire()
    real_sleep = clock.sleep

    async def sleep_through_a_429(seconds: float) -> None:
        if not store.pushed:
            await paced.back_off(1.5)  # another request's answer, while this one waits
        await real_sleep(seconds)

    paced._sleep = sleep_through_a_429  # type: ignore[method-assign]
    await paced.acquire()
    # It did not go at its slot (one interval on) but after the back-off.
    assert clock.now == pytest.approx(START + 1.5)
    assert len(store.requests) == 3  # the first, the slot it gave up, the one after the back-off


async def test_a_spent_window_without_reset_holds_back_one_slot_of_its_pace() -> None:
    store, clock = MemoryStore(), FakeTime()
    paced = pacer(store, clock)
    paced.observe(snapshot(clock, limit=10, remaining=0, window_ms=2000))
    await paced.acquire()
    assert clock.now == pytest.approx(START + 2.0 / 9)  # 10 per 2 s less the headroom: 9 per 2 s
