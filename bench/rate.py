"""Rate-budget use: a backlog for one location drained against the GHL limit, scaled in time.

    python -m bench.rate [--changes 2000] [--workers 1 4] [--limit 100] [--window 1]

The GHL sandbox enforces ``--limit`` requests per ``--window`` seconds (GHL's is 100 per 10 s; the
scaled limit keeps the run short) and the service is told the same (GHL_RATE_LIMIT,
GHL_RATE_WINDOW_SECONDS; RATE_LIMIT_HEADROOM as configured, default 0.03). With no worker running,
``--changes`` contacts are created in Rankr (their webhooks stored as a backlog); then the workers
start and drain it. Achieved rate: GHL calls answered / the time from the first to the last one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.world import world
from tests.support.service import max_in_window


def measure(
    kind: str, changes: int, workers: int, limit: int, window: float, logs: Path, headroom: float | None
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "ghl_rate_limit": limit,
        "ghl_rate_window_seconds": window,
        "rankr_rate_limit": 1_000_000,
        "worker_poll_seconds": 0.5,
    }
    if headroom is not None:
        settings["rate_limit_headroom"] = headroom
    sandbox = {"ghl_rate_max": limit, "ghl_rate_window_seconds": window, "rankr_rate_max": 1_000_000}
    with world(kind, logs / f"w{workers}", settings=settings, sandbox=sandbox) as here:
        rankr = here.sandbox.rankr.store
        run = uuid.uuid4().hex[:6]
        started = time.monotonic()
        # In chunks: thousands of deliveries in flight at once make the sandbox's HTTP client slow.
        for n in range(changes):
            rankr.create_contact({"email": f"rate{n}.{run}@bench.example", "firstName": f"Rate{n}"})
            if n % 100 == 99:
                here.wait_delivered()
        here.wait_delivered()
        intake_seconds = time.monotonic() - started
        backlog = here.open_events()
        mark = here.sandbox.ghl.mark()
        began = time.monotonic()
        here.workers(workers)
        ended = here.settle(timeout=max(120.0, changes / limit * window * 4), poll=0.2)
        calls = here.calls("ghl", mark)
    answered = [r for r in calls if r.status != 429]
    limited = len(calls) - len(answered)
    first, last = answered[0].at, answered[-1].at
    span = (last - first).total_seconds()
    rate = (len(answered) - 1) / span if span > 0 else 0.0
    busiest = max_in_window([r.as_json() for r in answered], seconds=window)
    return {
        "workers": workers,
        "changes": changes,
        "backlog events": backlog,
        "backlog stored in s": round(intake_seconds, 1),
        "ghl calls answered": len(answered),
        "429s": limited,
        "drain s (first to last call)": round(span, 2),
        "drain s (workers started to settled)": round(ended - began, 2),
        "limit per s": limit / window,
        "achieved per s": round(rate, 1),
        "achieved / limit": round(rate / (limit / window), 3),
        "busiest window": busiest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=1.0)
    parser.add_argument(
        "--headroom", type=float, default=None, help="RATE_LIMIT_HEADROOM (default: the service's)"
    )
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-rate-"))
    results = [
        measure(args.database, args.changes, n, args.limit, args.window, logs, args.headroom)
        for n in args.workers
    ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
