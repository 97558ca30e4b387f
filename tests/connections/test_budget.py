"""The shared budget row on both databases: atomic reservations, waits, the daily count, back-off."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections import repository as connections
from app.connections.budget import BudgetRow
from app.connections.models import RateBudget
from app.db import create_engine, session_factory, unit_of_work
from app.kit.pacing import Pacer, RateLimits, SlotRequest, seconds_to_midnight

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
START = NOW.timestamp()
TODAY = NOW.date().isoformat()


@pytest.fixture
async def connection_id(engine: AsyncEngine) -> int:
    async with unit_of_work(session_factory(engine)) as session:
        connection = await connections.ensure(session, "acct_1", "loc_1", NOW)
    return connection.id


def request(
    count: int = 1, *, now: float = START, daily_limit: int | None = None, **values: float
) -> SlotRequest:
    return SlotRequest(
        count=count,
        now=now,
        not_before=values.get("not_before", now),
        interval=values.get("interval", 0.1),
        max_wait=values.get("max_wait", 2.0),
        today=TODAY,
        used_today_at_least=int(values.get("used", 0)),
        daily_limit=daily_limit,
    )


async def test_reservations_follow_each_other_and_refuse_past_max_wait(
    engine: AsyncEngine, connection_id: int
) -> None:
    row = BudgetRow(engine, connection_id, "ghl")
    first = await row.reserve(request(3))
    assert first.first_slot == pytest.approx(START)
    assert first.next_slot == pytest.approx(START + 0.3)
    second = await row.reserve(request(2))
    assert second.first_slot == pytest.approx(START + 0.3)
    late = await row.reserve(request(1, not_before=START + 5))
    assert late.first_slot is None
    assert late.wait == pytest.approx(5)
    await row.reserve(request(20, max_wait=10))  # the schedule now runs 2.5 s ahead
    refused = await row.reserve(request(1))
    assert refused.first_slot is None
    assert refused.wait == pytest.approx(2.5)
    async with session_factory(engine)() as session:
        [stored] = (await session.execute(select(RateBudget))).scalars().all()
    assert (stored.upstream, stored.day, stored.day_count) == ("ghl", TODAY, 25)
    assert stored.observed_at is None  # no answer seen yet


async def test_the_daily_limit_refuses_until_midnight(engine: AsyncEngine, connection_id: int) -> None:
    row = BudgetRow(engine, connection_id, "ghl")
    assert (await row.reserve(request(2, daily_limit=3))).first_slot is not None
    refused = await row.reserve(request(2, now=START + 1, daily_limit=3))
    assert refused.first_slot is None
    assert refused.wait == pytest.approx(seconds_to_midnight(START + 1))
    # What the upstream says was spent today counts too.
    other = BudgetRow(engine, connection_id, "rankr")
    assert (await other.reserve(request(1, daily_limit=10, used=10))).first_slot is None


async def test_a_push_back_holds_every_reservation(engine: AsyncEngine, connection_id: int) -> None:
    row = BudgetRow(engine, connection_id, "ghl")
    await row.reserve(request(1))
    await row.push_back(START + 30)
    refused = await row.reserve(request(1))
    assert refused.wait == pytest.approx(30)
    granted = await row.reserve(request(1, now=START + 29, max_wait=2))
    assert granted.first_slot == pytest.approx(START + 30)


async def test_processes_reserving_at_once_never_get_overlapping_slots(
    database_url: str, connection_id: int
) -> None:
    # Four engines stand for four processes, each with several tasks reserving concurrently.
    engines = [create_engine(database_url) for _ in range(4)]
    interval = 0.01
    try:
        rows = [BudgetRow(engine, connection_id, "ghl") for engine in engines]

        async def reserve_many(row: BudgetRow) -> list[float]:
            slots: list[float] = []
            for _ in range(10):
                grant = await row.reserve(request(2, interval=interval, max_wait=60))
                assert grant.first_slot is not None, grant
                slots += [grant.first_slot, grant.first_slot + interval]
            return slots

        results = await asyncio.gather(*(reserve_many(row) for row in rows for _ in range(3)))
    finally:
        for engine in engines:
            await engine.dispose()
    slots = sorted(slot for result in results for slot in result)
    assert len(slots) == 4 * 3 * 10 * 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) == pytest.approx(interval)
    assert slots[-1] - slots[0] == pytest.approx((len(slots) - 1) * interval)


async def test_pacers_of_two_processes_share_one_pace(engine: AsyncEngine, connection_id: int) -> None:
    limits = RateLimits(limit=100, window_seconds=1.0, daily_limit=None, headroom=0.0)
    clock = {"now": START}
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def pacer() -> Pacer:
        return Pacer(
            BudgetRow(engine, connection_id, "rankr"),
            limits,
            name="rankr",
            now=lambda: clock["now"],
            sleep=sleep,
        )

    one, two = pacer(), pacer()
    await one.acquire()
    await two.acquire()
    await one.acquire()
    # The clock stood still: each next request waits one more interval, whichever process sends it.
    assert sleeps == [pytest.approx(0.01), pytest.approx(0.02)]
