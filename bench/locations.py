"""Many locations importing at once: does each drain at its share of the workers?

    python -m bench.locations [--locations 50] [--sizes 40 80] [--processes 1 2] [--cpu-ms 4]
                              [--budget 100 10]

On a fresh migrated Postgres schema, ``--locations`` locations (connections) each get a backlog of
Rankr creates, stored one location after the other (half of them of the first size, half of the
second), as an agency's imports arrive. Then ``--processes`` worker processes drain it with the
inbox's own claim and settle (``app.inbox.repository``: windows of due heads, SKIP LOCKED, leases):
each keeps ``SLOTS`` events in hand, spends ``--cpu-ms`` of CPU on each (the service's cost per
change, measured by ``bench.cpu``) and marks it done. Each location has its own GHL budget of
``--budget`` requests per window (GHL's documented 100 per 10 s unless set), and each event takes
one slot of it before its CPU is spent, through the service's own pacing (``Pacer`` over the
location's ``rate_budgets`` row, shared by the processes); a claim takes of each location only as many
events as its budget starts within ``CLAIM_HORIZON_SECONDS`` (the service's own rule, ``claim_room``).
The upstream calls themselves are left out (the sandboxes serve one location).

A location's drain time is from the start to its last event done. Reported per size: min, median,
max and max/min, and the same with every claim walking from the oldest event (``oldest first``, the
order before a worker's claims swept the backlog), the baseline of the same run; and throughput (events
per second of wall time) per number of processes, with the machine's load average at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import statistics
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.connections.budget import BudgetRow
from app.db import opened, unit_of_work
from app.inbox import repository as inbox
from app.inbox.models import EventStatus
from app.integrations.registry import claim_room
from app.kit.pacing import Pacer, RateLimits
from app.worker import CLAIM_AHEAD
from tests.support.databases import PostgresSchema

BACKLOG = """
INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at,
                            status, attempts, next_attempt_at)
SELECT 'rankr', :account || '-' || g, 'contact.created', :account,
       'rankr:' || :account || ':contact:' || g, '{}'::jsonb, now(), 'pending', 0, now()
FROM generate_series(1, :count) AS g
"""
CONNECTION = """
INSERT INTO connections (name, rankr_account_id, ghl_location_id, status, created_at, updated_at)
VALUES (:account, :account, :account, 'active', now(), now())
RETURNING id
"""
OPEN_EVENTS = "SELECT count(*) FROM webhook_events WHERE status IN ('pending', 'retrying', 'processing')"
DRAIN_TIMES = """
SELECT account_key, count(*), max(finished_at) FROM webhook_events WHERE status = 'done' GROUP BY account_key
"""
SLOTS = 8  # events a worker process applies at once (WORKER_CONCURRENCY's default)
HEADROOM = 0.03  # RATE_LIMIT_HEADROOM's default


def burn(milliseconds: float) -> None:
    """Spend about this much CPU, as applying one change does."""
    until = time.process_time() + milliseconds / 1000
    digest = b""
    while time.process_time() < until:
        digest = hashlib.sha256(digest).digest()


async def drain(
    url: str,
    name: str,
    cpu_ms: float,
    oldest_first: bool,
    budget: tuple[int, float],
    connections: dict[str, int],
    ready: Any,
) -> None:
    sweep = None if oldest_first else inbox.Sweep()
    limits = RateLimits(budget[0], budget[1], None, HEADROOM)
    async with opened(url) as (engine, sessions):
        pacers = {
            account: Pacer(BudgetRow(engine, connection_id, "ghl"), limits, name=account, max_wait=60.0)
            for account, connection_id in connections.items()
        }

        async def apply(event_id: int, account: str) -> None:
            await pacers[account].acquire()
            burn(cpu_ms)
            async with unit_of_work(sessions) as session:
                await inbox.finish(session, [event_id], name, EventStatus.DONE, datetime.now(UTC), None)

        async with sessions() as session:
            await session.execute(text("SELECT 1"))  # connected before the clock starts
        ready.wait()
        # As the service's worker does: a batch claimed whenever none is left in hand, then started as
        # slots free up.
        in_hand: deque[tuple[int, str]] = deque()
        running: set[asyncio.Task[None]] = set()
        while True:
            if len(running) < SLOTS and not in_hand:
                room = claim_room(pacers.items(), time.time())
                async with unit_of_work(sessions) as session:
                    claimed = await inbox.claim_due(
                        session,
                        worker=name,
                        now=datetime.now(UTC),
                        lease=timedelta(minutes=5),
                        limit=SLOTS * CLAIM_AHEAD,
                        most_per_account=room.most,
                        sweep=sweep,
                    )
                in_hand.extend((event.id, event.account_key) for event in claimed)
            while in_hand and len(running) < SLOTS:
                running.add(asyncio.create_task(apply(*in_hand.popleft())))
            if running:
                done, running = await asyncio.wait(running, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            elif not in_hand:
                async with sessions() as session:
                    if not (await session.execute(text(OPEN_EVENTS))).scalar_one():
                        return
                await asyncio.sleep(0.05)


def worker(*arguments: Any) -> None:
    """A worker process: ``drain`` with these arguments."""
    asyncio.run(drain(*arguments))


async def store(url: str, accounts: list[tuple[str, int]]) -> dict[str, int]:
    """Each location's connection and backlog; the connections' ids by account."""
    connections = {}
    async with opened(url) as (_, sessions), unit_of_work(sessions) as session:
        for account, count in accounts:
            connections[account] = (
                await session.execute(text(CONNECTION), {"account": account})
            ).scalar_one()
            await session.execute(text(BACKLOG), {"account": account, "count": count})
        await session.execute(text("ANALYZE webhook_events"))
    return connections


async def finished(url: str) -> list[tuple[str, int, datetime]]:
    async with opened(url) as (_, sessions), sessions() as session:
        rows = (await session.execute(text(DRAIN_TIMES))).all()
    return [(account, count, last) for account, count, last in rows]


def measure(
    locations: int,
    sizes: list[int],
    processes: int,
    cpu_ms: float,
    budget: tuple[int, float],
    oldest_first: bool,
) -> dict[str, Any]:
    accounts = [(f"loc{n:02d}", sizes[n * len(sizes) // locations]) for n in range(locations)]
    schema = PostgresSchema()
    try:
        connections = asyncio.run(store(schema.url, accounts))
        load = os.getloadavg()[0]
        context = multiprocessing.get_context("spawn")
        # The processes start (import, connect) before the clock does.
        ready = context.Barrier(processes + 1)
        children = [
            context.Process(
                target=worker,
                args=(schema.url, f"bench{n}", cpu_ms, oldest_first, budget, connections, ready),
            )
            for n in range(processes)
        ]
        for child in children:
            child.start()
        ready.wait()
        started = datetime.now(UTC)
        for child in children:
            child.join()
        rows = asyncio.run(finished(schema.url))
    finally:
        schema.drop()
    size_of = dict(accounts)
    done = sum(count for _, count, _ in rows)
    assert done == sum(size_of.values()), f"{done} of {sum(size_of.values())} events done"
    drained = {account: (last - started).total_seconds() for account, _, last in rows}
    by_size: dict[str, Any] = {}
    for size in sizes:
        times = sorted(seconds for account, seconds in drained.items() if size_of[account] == size)
        by_size[f"{size} events"] = {
            "locations": len(times),
            "drain s min": round(times[0], 2),
            "drain s median": round(statistics.median(times), 2),
            "drain s max": round(times[-1], 2),
            "max / min": round(times[-1] / times[0], 2),
        }
    wall = max(drained.values())
    return {
        "claim": "oldest first" if oldest_first else "sweep",
        "processes": processes,
        "events": done,
        "wall s": round(wall, 2),
        "events per s": round(done / wall, 1),
        "load average at start": round(load, 2),
        "by size": by_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locations", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 80])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpu-ms", type=float, default=4.0)
    parser.add_argument(
        "--budget", type=float, nargs=2, default=[100, 10], metavar=("REQUESTS", "SECONDS"),
        help="each location's GHL budget",
    )  # fmt: skip
    args = parser.parse_args()
    budget = (int(args.budget[0]), args.budget[1])
    results = [measure(args.locations, args.sizes, args.processes[0], args.cpu_ms, budget, oldest_first=True)]
    results += [
        measure(args.locations, args.sizes, n, args.cpu_ms, budget, oldest_first=False)
        for n in args.processes
    ]
    report = {
        "cpus": os.cpu_count(),
        "cpu ms per event": args.cpu_ms,
        "budget": list(budget),
        "runs": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
