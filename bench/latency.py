"""End-to-end latency: a Rankr webhook accepted -> the GHL write completed, with no backlog.

    python -m bench.latency [--database postgres|sqlite] [--samples 100] [--contacts 10]

Linked contacts are updated in the Rankr sandbox, one change at a time (the next only after the
previous one reached GHL), taking ``--contacts`` of them in turn. A contact changed again within
``COALESCE_QUIET_SECONDS`` (0.15 s) of its last change is a burst, held until it is quiet so that one
write carries it (coalescing, measured in the upstream part); in turn, each contact's changes are
further apart than that, and the figure is the latency of a change that is no part of a burst.
Accepted: when the service answered the sandbox's delivery (the attempt's start plus its duration,
from the sandbox's delivery log); completed: when GHL answered the service's write (the request
log's ``at`` plus its duration). The sandboxes answer at once (latency 0); between samples a random
pause of 0-0.5 s. Two set-ups: the worker in the ``serve``
process (woken by the intake), and a separate ``worker`` process (woken by the intake's NOTIFY on
Postgres; on SQLite it finds new events by polling, WORKER_POLL_SECONDS, default 0.5 s).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.world import World, world


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def samples(here: World, count: int, contacts: int) -> list[float]:
    rankr, ghl = here.sandbox.rankr.store, here.sandbox.ghl
    run = uuid.uuid4().hex[:8]
    contact_ids = [
        str(rankr.create_contact({"email": f"lat{n}.{run}@bench.example", "firstName": "Latency"}).contact_id)
        for n in range(contacts)
    ]
    here.settle(poll=0.1)
    latencies: list[float] = []
    dice = random.Random(9)
    for n in range(count):
        mark = ghl.mark()
        before = len(here.sandbox.dispatcher.deliveries("rankr"))
        rankr.update_contact(contact_ids[n % contacts], {"lastName": f"Sample {n}"})
        deadline = time.monotonic() + 30
        writes: list[Any] = []
        while not writes:
            if time.monotonic() > deadline:
                raise TimeoutError("the write did not reach GHL")
            time.sleep(0.002)
            writes = [r for r in ghl.requests_since(mark) if r.is_write]
        delivery = here.sandbox.dispatcher.deliveries("rankr")[before]
        attempt = delivery.attempts[-1]
        accepted = attempt.at + timedelta(milliseconds=attempt.duration_ms)
        completed = writes[0].at + timedelta(milliseconds=writes[0].duration_ms)
        latencies.append((completed - accepted).total_seconds() * 1000)
        here.settle(poll=0.02)  # the echo and anything else: no backlog for the next sample
        # Changes come at random moments, not in step with the worker's polling.
        time.sleep(dice.uniform(0, 0.5))
    return latencies


def measure(kind: str, count: int, contacts: int, logs: Path) -> list[dict[str, Any]]:
    results = []
    separate = "woken by NOTIFY" if kind == "postgres" else "polling"
    for name, in_serve in (
        ("worker in serve (woken by the intake)", True),
        (f"separate worker process ({separate})", False),
    ):
        settings = {"log_level": "WARNING", "worker_poll_seconds": 0.5}
        with world(kind, logs / name[:8], worker_in_serve=in_serve, settings=settings) as here:
            if not in_serve:
                here.workers(1)
            values = samples(here, count, contacts)
        results.append(
            {
                "set-up": name,
                "database": kind,
                "samples": len(values),
                "contacts": contacts,
                "p50_ms": round(percentile(values, 0.5), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
                "mean_ms": round(statistics.fmean(values), 1),
                "max_ms": round(max(values), 1),
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--contacts", type=int, default=10, help="changed in turn (1: bursts are held)")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    print(json.dumps(measure(args.database, args.samples, args.contacts, logs), indent=2))


if __name__ == "__main__":
    main()
