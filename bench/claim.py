"""The worker's claim on a backlog just stored, before Postgres has statistics for it.

    python -m bench.claim [--events 3000 20000] [--done 0] [--claims 5]

A fresh migrated schema gets ``--done`` events already applied (the history a service keeps for
EVENT_RETENTION_DAYS), then ``--events`` due events (one per record), each in one statement, and
``inbox.claim_due`` (4 events, as a worker of concurrency 4 claims) runs ``--claims`` times at once,
before autovacuum analysed the table: a backlog after an outage or an import looks like this. Each
claim's time is printed; then the same after ``ANALYZE``, the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.db import opened, unit_of_work
from app.inbox import repository as inbox
from tests.support.databases import PostgresSchema

BACKLOG = """
INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at,
                            status, attempts, next_attempt_at)
SELECT 'rankr', :status || g, 'contact.created', 'acc', 'rankr:acc:contact:' || :status || g,
       '{}'::jsonb, now(), :status, 0, now()
FROM generate_series(1, :count) AS g
"""


async def claims(database_url: str, count: int, done: int, rounds: int) -> dict[str, Any]:
    async with opened(database_url) as (_, sessions):
        async with unit_of_work(sessions) as session:
            await session.execute(text(BACKLOG), {"count": done, "status": "done"})
            await session.execute(text(BACKLOG), {"count": count, "status": "pending"})

        async def timed() -> list[float]:
            took = []
            for _ in range(rounds):
                started = time.perf_counter()
                async with unit_of_work(sessions) as session:
                    await inbox.claim_due(
                        session, worker="bench", now=datetime.now(UTC), lease=timedelta(minutes=5), limit=4
                    )
                took.append(round((time.perf_counter() - started) * 1000, 1))
            return took

        fresh = await timed()
        async with unit_of_work(sessions) as session:
            await session.execute(text("ANALYZE webhook_events"))
        analysed = await timed()
    return {
        "events": count,
        "done before them": done,
        "claim ms, no statistics": fresh,
        "claim ms, analysed (baseline)": analysed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[3000, 20_000])
    parser.add_argument("--done", type=int, default=0)
    parser.add_argument("--claims", type=int, default=5)
    args = parser.parse_args()
    results = []
    for count in args.events:
        schema = PostgresSchema()
        try:
            results.append(asyncio.run(claims(schema.url, count, args.done, args.claims)))
        finally:
            schema.drop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
