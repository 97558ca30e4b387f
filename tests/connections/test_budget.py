"""The shared budget row on both databases: atomic reservations, waits, the daily count, back-off."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.connections import repository as connections
from app.connections.budget import BudgetRow
from app.connections.models import RateBudget
from app.connections.removal import remove_connection
from app.db import create_engine, session_factory, unit_of_work
from app.errors import UnroutableEvent
from app.integrations.registry import CLAIM_HORIZON_SECONDS, ClaimRoom, UpstreamRegistry, claim_room
from app.kit.http import RateLimitSnapshot
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


async def test_a_busy_budget_holds_back_only_the_events_that_write_to_that_upstream(
    engine: AsyncEngine, database_url: str
) -> None:
    async with unit_of_work(session_factory(engine)) as session:
        connection = await connections.ensure(session, "acct_1", "loc_1", NOW)
    settings = Settings(database_url=database_url, rankr_client_id="id", rankr_client_secret="secret")
    registry = UpstreamRegistry(settings, lambda: datetime.now(UTC), engine)
    try:
        registry.for_connection(connection)
        # Both budgets idle at 100 per 10 s and 600 per 60 s, 3 % kept: a claim takes as many events
        # of either side as a slot every 0.103 s starts within the horizon (0, 0.103, 0.206 s).
        assert registry.claim_room() == ClaimRoom({"acct_1": 3, "loc_1": 3}, None)
        # GHL answered 429 for 5 s (what the GHL client does then): Rankr's changes (written to
        # GHL) wait in the database; GHL's changes and echoes (written to Rankr, or to nobody) are
        # still claimed.
        ghl_pacer = up_pacer(registry, connection.id, "ghl")
        await ghl_pacer.back_off(5)
        room = registry.claim_room()
        assert room.most == {"acct_1": 0, "loc_1": 3}
        free_at = room.free_at
        assert free_at is not None
        assert free_at > datetime.now(UTC).timestamp() + 4
    finally:
        await registry.aclose()


async def test_a_claim_takes_of_each_account_what_its_budget_starts_within_the_horizon(
    engine: AsyncEngine, connection_id: int
) -> None:
    clock = {"now": START}

    async def sleep(seconds: float) -> None:
        pass

    def pacer(upstream: str, limit: int) -> Pacer:
        limits = RateLimits(limit=limit, window_seconds=1.0, daily_limit=None, headroom=0.0)
        return Pacer(
            BudgetRow(engine, connection_id, upstream),
            limits,
            name=upstream,
            now=lambda: clock["now"],
            sleep=sleep,
        )

    paced, loose = pacer("ghl", 10), pacer("rankr", 100_000)
    budgets = [("paced", paced), ("loose", loose)]
    # Idle, a slot every 0.1 s: three start within 0.25 s; a loose budget limits nothing a claim takes.
    room = claim_room(budgets, START)
    assert room.most["paced"] == 3
    assert room.most["loose"] > 20_000
    assert room.free_at is None
    await paced.acquire()
    await paced.acquire()
    # The clock stood still: the next slot is 0.2 s off, so one more starts within the horizon.
    assert claim_room(budgets, START).most["paced"] == 1
    await paced.acquire()
    room = claim_room(budgets, START)
    assert room.most["paced"] == 0
    assert room.free_at == pytest.approx(START + 0.3 - CLAIM_HORIZON_SECONDS)


def up_pacer(registry: Any, connection_id: int, upstream: str) -> Pacer:
    """The pacer of one connection's budget with ``upstream`` (the registry keeps GHL's first)."""
    _, pacers = registry._pacers[connection_id]
    return pacers[0 if upstream == "ghl" else 1]  # type: ignore[no-any-return]


async def test_a_removed_connection_gets_no_budget_row_and_a_reservation_says_it_was_removed(
    engine: AsyncEngine, connection_id: int
) -> None:
    sessions = session_factory(engine)
    seen = RateLimitSnapshot(100, 99, 10_000, None, 200_000, 199_999, NOW)
    async with unit_of_work(sessions) as session:
        await connections.save_budget(session, connection_id, "ghl", seen)
    async with unit_of_work(sessions) as session:
        await connections.save_budget(session, connection_id, "ghl", replace(seen, remaining=98))
    async with sessions() as session:
        [stored] = (await session.execute(select(RateBudget))).scalars().all()
    assert (stored.limit, stored.remaining, stored.daily_remaining) == (100, 98, 199_999)

    assert await remove_connection(sessions, connection_id, None) is True
    # What a running service does next with the connection it still holds: nothing is written.
    async with unit_of_work(sessions) as session:
        await connections.save_budget(session, connection_id, "ghl", seen)
    with pytest.raises(UnroutableEvent, match=f"connection {connection_id} was removed"):
        await BudgetRow(engine, connection_id, "rankr").reserve(request(1))
    async with sessions() as session:
        assert (await session.execute(select(RateBudget))).scalars().all() == []
    assert await remove_connection(sessions, connection_id, None) is False
