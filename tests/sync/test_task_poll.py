"""The GHL task poll: which contacts' task lists are read first (pure), and the poll in process with
the controllable clock: an edit to an active contact's task found within a couple of rounds, every
contact read within the stated bound, never more reads a round than the budget."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.automation.config import field_maps, sync_config
from app.connections import repository as connections
from app.db import session_factory, unit_of_work
from app.errors import OutOfBudget
from app.sync import repository as links
from app.sync.engine import SyncEngine
from app.sync.task_poll import (
    ACTIVE_TARGET,
    DUE_TARGET,
    IDLE_TARGET,
    MIN_POLL_LEASE,
    OPEN_TARGET,
    SWEEP_AFTER,
    Candidate,
    TaskPoll,
    choose,
    priority,
    target,
    visit_bound,
)
from tests.support.inprocess import InProcessService
from tests.sync.records import ghl_tasks, linked_contact, rankr_task, rankr_tasks

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ROUND = timedelta(seconds=5)
READS = 3


def contact(link_id: int, read_ago: float = 0, **known: object) -> Candidate:
    return Candidate(link_id, NOW - timedelta(seconds=read_ago), **known)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        ({"active_at": NOW - timedelta(minutes=5), "open_tasks": 0}, ACTIVE_TARGET),
        (
            {"active_at": NOW - timedelta(hours=2), "open_tasks": 1, "next_due": NOW + timedelta(hours=3)},
            DUE_TARGET,
        ),
        ({"open_tasks": 1, "next_due": NOW - timedelta(hours=5)}, DUE_TARGET),  # overdue lately
        ({"open_tasks": 2, "next_due": NOW + timedelta(days=9)}, OPEN_TARGET),
        ({"open_tasks": 2}, OPEN_TARGET),
        ({"active_at": NOW - timedelta(hours=2)}, IDLE_TARGET),  # its tasks are all done
    ],
)
def test_the_target_between_reads_follows_what_is_known_of_the_contact(
    known: dict[str, object], expected: timedelta
) -> None:
    assert target(contact(1, **known), NOW) == expected


def test_the_contacts_furthest_past_their_target_are_read_first() -> None:
    idle = contact(1, read_ago=30 * 60)  # half its hour
    worked_on = contact(2, read_ago=20, active_at=NOW)  # 20 s of 15
    due_soon = contact(3, read_ago=5 * 60, open_tasks=1, next_due=NOW + timedelta(hours=1))  # 5 of 2 min
    just_read = contact(4, read_ago=3, active_at=NOW)
    assert priority(due_soon, NOW) > priority(worked_on, NOW) > 1 > priority(idle, NOW)
    # One read goes to the contact read longest ago, the others to the due ones, most overdue first.
    assert [c.link_id for c in choose([idle, worked_on, due_soon, just_read], NOW, READS)] == [1, 3, 2]
    assert [c.link_id for c in choose([idle, worked_on, due_soon, just_read], NOW, 2)] == [1, 3]


def test_nothing_is_read_while_nothing_is_due() -> None:
    fresh = [contact(n, read_ago=10, open_tasks=1) for n in range(5)]
    assert choose(fresh, NOW, READS) == []
    # ... but the sweep takes one left unread for SWEEP_AFTER, whatever its target.
    stale = replace(fresh[3], read_at=NOW - SWEEP_AFTER)
    assert choose([*fresh[:3], stale], NOW, READS) == [stale]


def simulate(contacts: int, active: int, minutes: float, seed: int = 5) -> dict[int, timedelta]:
    """Rounds of ``choose`` over a location: ``active`` contacts worked on all along, the rest with
    open tasks due at random; the longest gap between two reads of each contact."""
    rng = random.Random(seed)
    candidates = {
        n: Candidate(
            n,
            NOW,
            NOW if n < active else None,
            rng.choice([0, 1, 3]),
            NOW + timedelta(hours=rng.uniform(-48, 240)) if rng.random() < 0.5 else None,
        )
        for n in range(contacts)
    }
    gaps = dict.fromkeys(candidates, timedelta(0))
    now = NOW
    while now < NOW + timedelta(minutes=minutes):
        now += ROUND
        for n in range(active):
            candidates[n] = replace(candidates[n], active_at=now)
        chosen = choose(list(candidates.values()), now, READS)
        assert len(chosen) <= READS
        for picked in chosen:
            gaps[picked.link_id] = max(gaps[picked.link_id], now - picked.read_at)
            candidates[picked.link_id] = replace(picked, read_at=now)
    for n, candidate in candidates.items():  # the time since the last read counts too
        gaps[n] = max(gaps[n], now - candidate.read_at)
    return gaps


@pytest.mark.parametrize(("contacts", "active"), [(200, 5), (200, 0), (40, 10), (1000, 8)])
def test_every_contact_is_read_within_the_bound_and_active_ones_within_30_s(
    contacts: int, active: int
) -> None:
    bound = visit_bound(contacts, READS, ROUND)
    gaps = simulate(contacts, active, minutes=3 * bound.total_seconds() / 60)
    assert max(gaps.values()) <= bound
    if active and active <= 5:
        assert max(gaps[n] for n in range(active)) <= timedelta(seconds=30)


# --- in process ------------------------------------------------------------------------------------


async def linked_tasks(service: InProcessService, count: int) -> list[tuple[str, str, dict[str, str]]]:
    """``count`` linked contacts with one linked task each, due in a year: (rankr id, ghl id, task)."""
    made = []
    for n in range(count):
        rankr_id, ghl_id = await linked_contact(service)
        task = await rankr_task(service, rankr_id, title=f"Task {n}", dueDate="2027-12-01T09:00:00.000Z")
        made.append((rankr_id, ghl_id, task))
    await service.settle()
    return made


async def poll_round(service: InProcessService) -> list[str]:
    """One round of the poll, its changes applied; the GHL task lists it read."""
    mark = await service.ghl.mark()
    await service.worker._engine.task_poll.run_once()
    reads = [
        r["path"]
        for r in await service.ghl.requests_since(mark)
        if r["method"] == "GET" and r["path"].endswith("/tasks")
    ]
    await service.settle()
    return reads


async def run_rounds(service: InProcessService, seconds: float) -> list[list[str]]:
    rounds = []
    for _ in range(int(seconds / ROUND.total_seconds())):
        service.clock.advance(ROUND.total_seconds())
        rounds.append(await poll_round(service))
    return rounds


@pytest.mark.anyio
async def test_an_edit_in_ghl_to_an_active_contacts_task_reaches_rankr_within_seconds(
    service: InProcessService,
) -> None:
    contacts = await linked_tasks(service, 24)  # round robin at 3 a round: 8 rounds, 40 s
    assert await poll_round(service) == []  # first seen: nothing is due yet
    await run_rounds(service, 3600)  # an hour: nobody has worked on them since
    rankr_id, ghl_id, task = contacts[17]
    path = f"/contacts/{rankr_id}/tasks/{task['taskId']}"
    (await service.rankr.api("PUT", path, json={"title": "Call back at 3"})).raise_for_status()
    await service.settle()
    [ghl] = await ghl_tasks(service, ghl_id)
    await run_rounds(service, 20)
    # Edited in GHL, which sends no webhook for it.
    edited_at = service.clock()
    ghl_path = f"/contacts/{ghl_id}/tasks/{ghl['id']}"
    (await service.ghl.api("PUT", ghl_path, json={"title": "Call back at 4"})).raise_for_status()
    # Read every ACTIVE_TARGET while it is worked on, so found within that and a round; round robin
    # would take up to 8 rounds.
    for _ in range(4):
        service.clock.advance(ROUND.total_seconds())
        reads = await poll_round(service)
        assert len(reads) <= READS
        if (await rankr_tasks(service, rankr_id))[0]["title"] == "Call back at 4":
            break
    assert (await rankr_tasks(service, rankr_id))[0]["title"] == "Call back at 4"
    assert service.clock() - edited_at <= ACTIVE_TARGET + ROUND


@pytest.mark.anyio
async def test_every_contact_with_tasks_is_read_within_the_bound(service: InProcessService) -> None:
    contacts = await linked_tasks(service, 12)
    await poll_round(service)
    bound = visit_bound(len(contacts), READS, ROUND)
    rounds = await run_rounds(service, bound.total_seconds())
    assert all(len(reads) <= READS for reads in rounds)
    read = {path.split("/")[2] for reads in rounds for path in reads}
    assert read == {ghl_id for _, ghl_id, _ in contacts}
    # An edit made meanwhile to any of them is found.
    _, ghl_id, _ = contacts[0]
    [ghl] = await ghl_tasks(service, ghl_id)
    (
        await service.ghl.api("PUT", f"/contacts/{ghl_id}/tasks/{ghl['id']}", json={"title": "Late"})
    ).raise_for_status()
    await run_rounds(service, bound.total_seconds())
    assert (await rankr_tasks(service, contacts[0][0]))[0]["title"] == "Late"


@pytest.mark.anyio
async def test_a_spent_budget_ends_the_round_and_the_contacts_keep_their_turn(
    service: InProcessService,
) -> None:
    await linked_tasks(service, 6)
    settings = service.app.state.settings
    asked: list[str] = []
    spent = [True]

    class Budgeted:
        """GHL's client, behind a budget that is spent while ``spent`` says so."""

        def __init__(self, ghl: Any) -> None:
            self._ghl = ghl

        async def list_tasks(self, contact_id: str) -> Any:
            asked.append(contact_id)
            if spent[0]:
                raise OutOfBudget("ghl", 30.0)
            return await self._ghl.list_tasks(contact_id)

    def upstreams(connection: Any) -> Any:
        real = service.registry.for_connection(connection)
        return replace(real, ghl=Budgeted(real.ghl))

    maps = field_maps(settings, sync_config(settings))
    poll = TaskPoll(
        service._sessions,
        upstreams,
        maps=maps,
        clock=service.clock,
        contacts_per_round=READS,
        round_seconds=5,
    )
    await poll.run_once()  # first seen
    service.clock.advance(ACTIVE_TARGET.total_seconds() + 1)  # all were just synced: all due
    assert await poll.run_once() == 0
    [first] = asked  # the round ended at the first refusal
    spent[0] = False
    service.clock.advance(ROUND.total_seconds())
    asked.clear()
    await poll.run_once()
    assert len(asked) == READS
    assert asked[0] == first


@pytest.mark.anyio
async def test_a_second_worker_spends_none_of_the_polls_reads_until_the_first_stops(
    service: InProcessService,
) -> None:
    contacts = await linked_tasks(service, 9)
    first = service.worker._engine.task_poll
    second = SyncEngine(
        service._sessions, service.app.state.settings, service.registry.for_connection, clock=service.clock
    ).task_poll
    await first.run_once()
    for _ in range(60):  # five minutes of rounds of both
        service.clock.advance(ROUND.total_seconds())
        mark = await service.ghl.mark()
        await first.run_once()
        await second.run_once()
        assert len(await service.ghl.requests_since(mark)) <= READS
    # The first stops; once its lease has run out the second reads every contact within the bound.
    service.clock.advance(MIN_POLL_LEASE.total_seconds())
    mark = await service.ghl.mark()
    for _ in range(int(visit_bound(len(contacts), READS, ROUND) / ROUND)):
        service.clock.advance(ROUND.total_seconds())
        await second.run_once()
    read = {r["path"].split("/")[2] for r in await service.ghl.requests_since(mark) if r["method"] == "GET"}
    assert read == {ghl_id for _, ghl_id, _ in contacts}


@pytest.mark.anyio
async def test_one_process_at_a_time_polls_a_connection(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with unit_of_work(sessions) as session:
        connection = (await connections.ensure(session, "acct", "loc", NOW)).id
    lease = timedelta(minutes=1)

    async def take(holder: str, at: datetime) -> bool:
        async with unit_of_work(sessions) as session:
            return await links.take_task_poll(session, connection, holder, at, at + lease)

    assert await take("a", NOW)
    assert not await take("b", NOW + ROUND)  # held by a
    assert await take("a", NOW + ROUND)  # renewed each round
    assert not await take("b", NOW + lease)
    # a stopped polling (it died): b takes over once the lease has run out.
    assert await take("b", NOW + ROUND + lease + timedelta(seconds=1))
    assert not await take("a", NOW + ROUND + lease + timedelta(seconds=2))
