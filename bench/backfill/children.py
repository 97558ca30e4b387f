"""Backfill of tasks and notes: ``rankr-ghl-sync backfill`` of N contacts (the same people on both
sides) with 2 tasks and 2 notes each once done, against the GHL limit scaled in time.

    python -m bench.backfill.children [--contacts 1000] [--limit 100] [--window 1]

Both sandboxes are seeded (no webhooks) with the same N people (equal fields, so linking them
writes nothing); each person has one task and one note in Rankr and another task and note in GHL,
so the backfill creates one task and one note per contact on each side. The backfill runs as users
run it (its own process, which also applies the writes, beside ``serve`` with its worker in
process), timed from start to exit. Lower bound: the GHL calls it made / the GHL rate (Rankr's limit
is lifted: GHL's binds). Reported: the calls by route, the time of the children phase (from the
first task or note read to the last task or note write), and the CPU time of the backfill, ``serve``
and the sandboxes (this process), with the events the worker applied by type: on a shared machine
the phase is as slow as the CPU it gets.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.sandbox.requestlog import RecordedRequest
from bench.outage.run import cpu_seconds
from bench.world import ROOT, world

DUE = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def measure(count: int, limit: int, window: float, logs: Path) -> dict[str, Any]:
    settings = {
        "ghl_rate_limit": limit,
        "ghl_rate_window_seconds": window,
        "rankr_rate_limit": 1_000_000,
        "log_level": "WARNING",
    }
    sandbox = {"ghl_rate_max": limit, "ghl_rate_window_seconds": window, "rankr_rate_max": 1_000_000}
    with world("postgres", logs, worker_in_serve=True, settings=settings, sandbox=sandbox) as here:
        people = [{"email": f"p{i}@bench.example", "firstName": f"P{i}"} for i in range(count)]
        rankr, ghl = here.sandbox.rankr, here.sandbox.ghl
        rankr_ids = rankr.seed_contacts(people)
        ghl_ids = ghl.seed_contacts(people)
        for side in (rankr, ghl):
            side.webhook_settings.enabled = False
        for i, (rankr_id, ghl_id) in enumerate(zip(rankr_ids, ghl_ids, strict=True)):
            rankr.store.create_task(rankr_id, {"title": f"Call {i}", "dueDate": DUE})
            rankr.store.create_note(rankr_id, f"Met {i} at the fair")
            ghl.store.create_task(
                ghl_id, title=f"Quote {i}", due_date=DUE + timedelta(days=1), completed=False
            )
            ghl.store.create_note(ghl_id, {"body": f"{i} prefers email"})
        for side in (rankr, ghl):
            side.webhook_settings.enabled = True
        marks = {"ghl": ghl.mark(), "rankr": rankr.mark()}
        serve = here.processes[0].pid
        cpu_before = _cpu(serve)
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "app", "backfill"], cwd=ROOT, env=here.env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        cpu_after = _cpu(serve)
        cpu = {name: round(cpu_after[name] - cpu_before[name], 2) for name in cpu_before}
        (logs / "backfill.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            raise RuntimeError(f"backfill failed: {run.stderr[-2000:]}")
        here.settle(timeout=120)  # the echoes of the last writes
        events = here.loop.run(_events_by_type(here.engine))
        ghl_calls = here.calls("ghl", marks["ghl"])
        rankr_calls = here.calls("rankr", marks["rankr"])
        states = (rankr.state_dump(), ghl.state_dump())
        tasks_after = [len(state["tasks"]) for state in states]
        notes_after = [len(state["notes"]) for state in states]
    answered = [r for r in ghl_calls if r.status != 429]
    bound = len(answered) / (limit / window)
    children = sorted(
        (r for r in [*answered, *rankr_calls] if _child(r)),
        key=lambda r: r.at,
    )
    phase = (children[-1].at - children[0].at).total_seconds() if children else 0.0
    ghl_children = sum(1 for r in answered if _child(r))
    return {
        "contacts": count,
        "ghl calls": len(answered),
        "ghl calls for tasks and notes": ghl_children,
        "ghl 429s": len(ghl_calls) - len(answered),
        "rankr calls": len(rankr_calls),
        "lower bound s (ghl calls / rate)": round(bound, 2),
        "wall s": round(wall, 2),
        "wall / lower bound": round(wall / bound, 3) if bound else None,
        "cpu s by process": cpu,
        "cpu s / wall s": round(sum(cpu.values()) / wall, 2),
        "tasks and notes phase s": round(phase, 2),
        "tasks and notes phase / its lower bound": round(phase / (ghl_children / (limit / window)), 3)
        if ghl_children
        else None,
        "events applied by source and type": events,
        "ghl calls by route": dict(Counter(f"{r.method} {r.route}" for r in answered)),
        "rankr calls by route": dict(Counter(f"{r.method} {r.route}" for r in rankr_calls)),
        "tasks after (rankr, ghl)": tasks_after,
        "notes after (rankr, ghl)": notes_after,
        "expected after": 2 * count,
    }


async def _events_by_type(engine: AsyncEngine) -> dict[str, int]:
    """The inbox's events (webhooks and the backfill's own) by source and type."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT source, type, count(*) FROM webhook_events GROUP BY source, type ORDER BY 3 DESC")
        )
        return {f"{source} {type_}": count for source, type_, count in rows}


def _cpu(serve: int) -> dict[str, float]:
    """CPU seconds so far of ``serve``, of the children waited for (the backfill, once it exited) and
    of this process (the sandboxes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "serve": cpu_seconds(serve),
        "backfill": children.ru_utime + children.ru_stime,
        "sandboxes": time.process_time(),
    }


def _child(request: RecordedRequest) -> bool:
    route = request.route or request.path
    return "/tasks" in route or "/notes" in route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=1.0)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-backfill-children-"))
    print(json.dumps(measure(args.contacts, args.limit, args.window, logs), indent=2))


if __name__ == "__main__":
    main()
