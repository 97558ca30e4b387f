"""What the worker's look at the stored settings adds to each claim.

    python -m bench.settings_refresh [--rounds 500]

In each claim's transaction the worker first looks at the newest settings version
(``settings_store.refresh_in``). On a fresh migrated database of each kind with one stored version,
this times ``--rounds`` of a claim on an empty inbox (``inbox.claim_due``, the cheapest claim, what an
idle worker does: the baseline) without and with that look, in the same run, in wall and CPU time
per claim, and the ratio of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.automation.config import parse
from app.db import opened, unit_of_work
from app.inbox import repository as inbox
from app.settings_store import service as settings_store
from tests.support.databases import PostgresSchema, migrate
from tests.support.service import test_settings

CONFIG = parse(
    "mapping:\n  customFields:\n    industry: fieldAAAAAAAAAAAAAAA\n"
    "taskTemplates:\n  call:\n    title: Call {firstName}\n"
    "rules:\n  - name: call\n    when: {event: [contact.created]}\n    createTask: call\n"
)


async def measure(database_url: str, rounds: int) -> dict[str, Any]:
    settings = test_settings(database_url, "http://bench.test")
    async with opened(database_url) as (_, sessions):
        async with unit_of_work(sessions) as session:
            await settings_store.save(session, CONFIG, "bench", datetime.now(UTC))

        async def claim() -> None:
            async with unit_of_work(sessions) as session:
                await inbox.claim_due(
                    session, worker="bench", now=datetime.now(UTC), lease=timedelta(minutes=5), limit=4
                )

        async def claim_with_look() -> None:
            async with unit_of_work(sessions) as session:
                await settings_store.refresh_in(session, settings)
                await inbox.claim_due(
                    session, worker="bench", now=datetime.now(UTC), lease=timedelta(minutes=5), limit=4
                )

        async def timed(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
            for _ in range(20):  # warm the pool and the statement caches
                await work()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(rounds):
                await work()
            return (
                (time.perf_counter() - wall) / rounds * 1e6,
                (time.process_time() - cpu) / rounds * 1e6,
            )

        claim_wall, claim_cpu = await timed(claim)
        look_wall, look_cpu = await timed(claim_with_look)
    return {
        "claim (baseline) us wall/cpu": [round(claim_wall), round(claim_cpu)],
        "claim with the settings look us wall/cpu": [round(look_wall), round(look_cpu)],
        "with / without, wall": round(look_wall / claim_wall, 2),
        "with / without, cpu": round(look_cpu / claim_cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        migrate(url)
        results["sqlite"] = asyncio.run(measure(url, args.rounds))
    schema = PostgresSchema()
    try:
        results["postgres"] = asyncio.run(measure(schema.url, args.rounds))
    finally:
        schema.drop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
