"""Backfill time: ``rankr-ghl-sync backfill`` of N contacts per side (half of them the same people),
against the GHL limit scaled in time, as a ratio to the lower bound the limit sets.

    python -m bench.backfill.time [--contacts 2000] [--limit 100] [--window 1]

Both sandboxes are seeded (no webhooks) with N contacts each; N/2 emails are on both sides. The
backfill runs as users run it (its own process, which also applies the writes, beside ``serve`` with
its worker in-process, the default), timed from start to exit. Lower bound: the GHL calls it made
(listing, creates, updates) / the GHL rate (Rankr's limit is lifted: GHL's is the binding one;
Rankr calls are counted too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.world import ROOT, world


def measure(count: int, limit: int, window: float, logs: Path) -> dict[str, Any]:
    settings = {
        "ghl_rate_limit": limit,
        "ghl_rate_window_seconds": window,
        "rankr_rate_limit": 1_000_000,
        "log_level": "WARNING",
    }
    sandbox = {"ghl_rate_max": limit, "ghl_rate_window_seconds": window, "rankr_rate_max": 1_000_000}
    with world("postgres", logs, worker_in_serve=True, settings=settings, sandbox=sandbox) as here:
        half = count // 2
        here.sandbox.rankr.seed_contacts(
            [{"email": f"p{i}@bench.example", "firstName": f"R{i}"} for i in range(count)]
        )
        here.sandbox.ghl.seed_contacts(
            [{"email": f"p{i + half}@bench.example", "lastName": f"G{i}"} for i in range(count)]
        )
        marks = {"ghl": here.sandbox.ghl.mark(), "rankr": here.sandbox.rankr.mark()}
        started, started_at = time.monotonic(), datetime.now(UTC)
        run = subprocess.run(
            [sys.executable, "-m", "app", "backfill"], cwd=ROOT, env=here.env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        ended_at = started_at + timedelta(seconds=wall)
        (logs / "backfill.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            raise RuntimeError(f"backfill failed: {run.stderr[-2000:]}")
        ghl = here.calls("ghl", marks["ghl"])
        rankr = here.calls("rankr", marks["rankr"])
        ghl_rows = here.sandbox.ghl.store.list_contacts()
        rankr_rows = here.sandbox.rankr.store.list_contacts()
    answered = [r for r in ghl if r.status != 429]
    bound = len(answered) / (limit / window)
    span = (answered[-1].at - answered[0].at).total_seconds() if answered else 0.0
    every = sorted([*answered, *rankr], key=lambda r: r.at)
    writes = [r for r in every if r.is_write]
    listing = [r for r in every if not r.is_write and r.route in ("/contacts", "/contacts/search")]

    def between(a: Any, b: Any) -> float:
        return round((b - a).total_seconds(), 2)

    return {
        "contacts per side": count,
        "overlapping": half,
        "ghl calls": len(answered),
        "ghl writes": sum(1 for r in answered if r.is_write),
        "ghl 429s": len(ghl) - len(answered),
        "rankr calls": len(rankr),
        "lower bound s (ghl calls / rate)": round(bound, 2),
        "wall s": round(wall, 2),
        "wall / lower bound": round(wall / bound, 3) if bound else None,
        "first to last ghl call s": round(span, 2),
        "phases s (start to listing, listing, listing to first write, first to last write, to exit)": [
            between(started_at, listing[0].at),
            between(listing[0].at, listing[-1].at),
            between(listing[-1].at, writes[0].at),
            between(writes[0].at, writes[-1].at),
            between(writes[-1].at, ended_at),
        ]
        if listing and writes
        else None,
        "ghl calls by route": dict(Counter(f"{r.method} {r.route}" for r in answered)),
        "rankr calls by route": dict(Counter(f"{r.method} {r.route}" for r in rankr)),
        "contacts after (rankr, ghl)": [len(rankr_rows), len(ghl_rows)],
        "expected after": count + count - half,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=1.0)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    print(json.dumps(measure(args.contacts, args.limit, args.window, logs), indent=2))


if __name__ == "__main__":
    main()
