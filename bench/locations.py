"""Many locations importing at once: does each drain at its share of the workers?

    python -m bench.locations [--locations 50] [--sizes 40 80] [--processes 1 2] [--cpu-ms 4]

On a fresh migrated Postgres schema, ``--locations`` locations (connections) each get a backlog of
Rankr creates, stored one location after the other (half of them of the first size, half of the
second), as an agency's imports arrive. Then ``--processes`` worker processes drain it with the
inbox's own claim and settle (``app.inbox.repository``: windows of due heads, SKIP LOCKED, leases):
each claims as many events as it has free slots, spends ``--cpu-ms`` of CPU on each (the service's
cost per change, measured by ``bench.cpu``) and marks them done. The sandboxes serve one location and
one account, so the upstream calls are what is left out: the locations' GHL budgets are taken not to
bind (the workers' CPU does), the case where the order of the claim decides who waits.

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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.db import opened, unit_of_work
from app.inbox import repository as inbox
from app.inbox.models import EventStatus
from tests.support.databases import PostgresSchema

BACKLOG = """
INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at,
                            status, attempts, next_attempt_at)
SELECT 'rankr', :account || '-' || g, 'contact.created', :account,
       'rankr:' || :account || ':contact:' || g, '{}'::jsonb, now(), 'pending', 0, now()
FROM generate_series(1, :count) AS g
"""
DRAIN_TIMES = """
SELECT account_key, count(*), max(finished_at) FROM webhook_events WHERE status = 'done' GROUP BY account_key
"""
SLOTS = 8  # events a worker process has in hand at once (WORKER_CONCURRENCY's default)


def burn(milliseconds: float) -> None:
    """Spend about this much CPU, as applying one change does."""
    until = time.process_time() + milliseconds / 1000
    digest = b""
    while time.process_time() < until:
        digest = hashlib.sha256(digest).digest()


async def drain(url: str, name: str, cpu_ms: float, oldest_first: bool, ready: Any) -> None:
    sweep = None if oldest_first else inbox.Sweep()
    async with opened(url) as (_, sessions):
        async with sessions() as session:
            await session.execute(text("SELECT 1"))  # connected before the clock starts
        ready.wait()
        idle = 0
        while idle < 3:
            async with unit_of_work(sessions) as session:
                now = datetime.now(UTC)
                claimed = await inbox.claim_due(
                    session, worker=name, now=now, lease=timedelta(minutes=5), limit=SLOTS, sweep=sweep
                )
            if not claimed:
                idle += 1
                await asyncio.sleep(0.05)
                continue
            idle = 0
            for _ in claimed:
                burn(cpu_ms)
            async with unit_of_work(sessions) as session:
                ids = [event.id for event in claimed]
                await inbox.finish(session, ids, name, EventStatus.DONE, datetime.now(UTC), None)


def worker(url: str, name: str, cpu_ms: float, oldest_first: bool, ready: Any) -> None:
    asyncio.run(drain(url, name, cpu_ms, oldest_first, ready))


async def store(url: str, accounts: list[tuple[str, int]]) -> None:
    async with opened(url) as (_, sessions), unit_of_work(sessions) as session:
        for account, count in accounts:
            await session.execute(text(BACKLOG), {"account": account, "count": count})
        await session.execute(text("ANALYZE webhook_events"))


async def finished(url: str) -> list[tuple[str, int, datetime]]:
    async with opened(url) as (_, sessions), sessions() as session:
        rows = (await session.execute(text(DRAIN_TIMES))).all()
    return [(account, count, last) for account, count, last in rows]


def measure(
    locations: int, sizes: list[int], processes: int, cpu_ms: float, oldest_first: bool
) -> dict[str, Any]:
    accounts = [(f"loc{n:02d}", sizes[n * len(sizes) // locations]) for n in range(locations)]
    schema = PostgresSchema()
    try:
        asyncio.run(store(schema.url, accounts))
        load = os.getloadavg()[0]
        context = multiprocessing.get_context("spawn")
        # The processes start (import, connect) before the clock does.
        ready = context.Barrier(processes + 1)
        children = [
            context.Process(target=worker, args=(schema.url, f"bench{n}", cpu_ms, oldest_first, ready))
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
    args = parser.parse_args()
    results = [measure(args.locations, args.sizes, args.processes[0], args.cpu_ms, oldest_first=True)]
    results += [
        measure(args.locations, args.sizes, n, args.cpu_ms, oldest_first=False) for n in args.processes
    ]
    print(json.dumps({"cpus": os.cpu_count(), "cpu ms per event": args.cpu_ms, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
