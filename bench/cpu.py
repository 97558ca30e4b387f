"""CPU time per synced change: the service's own process, measured from outside, next to a baseline.

    python -m bench.cpu [--database postgres sqlite] [--creates 200] [--updates 100] [--rounds 2]
                        [--profile DIR]

The mix: ``--creates`` contacts created in Rankr (each written to GHL, whose webhook comes back as
an echo), then ``--updates`` of them changed in GHL (each written to Rankr, whose webhook comes back
as an echo); a change is one of those. The service runs as ``serve`` with its worker in process, the
upstream rate limits lifted (nothing waits for a budget). Its CPU time (user + system, from /proc)
from the first change to the last event settled, divided by the changes, is the figure; on
Postgres also with the worker in a process of its own, as production runs it (both processes'
CPU). Next to it, in the same run and alternating round by round, bench/cpu_baseline.py: the least
work such a change needs (claim, compare, one upstream write, the link, an audit row, done), in one
process too. Each round runs on a fresh database and fresh sandboxes; the best round of each is reported.
``--profile DIR`` records the last round of each with py-spy (the thread holding the GIL) and
prints where its samples went: by the package of the innermost frame, and by the service function
nearest to it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.intake.run import cpu_seconds
from bench.world import World, world

UNLIMITED = 1_000_000
SERVERS = {"baseline": ("bench.cpu_baseline",), "service": ("app", "serve")}
# Production's set-up on Postgres: serve takes the webhooks, a worker process applies them.
SEPARATE = "service, separate worker"
WORKER_STARTUP_SECONDS = 5.0


def mix(here: World, creates: int, updates: int) -> None:
    rankr, ghl = here.sandbox.rankr.store, here.sandbox.ghl.store
    run = uuid.uuid4().hex[:6]
    emails = {f"cpu{n}.{run}@bench.example" for n in range(creates)}
    # In chunks: thousands of deliveries in flight at once make the sandbox's HTTP client slow.
    for n, email in enumerate(sorted(emails)):
        rankr.create_contact({"email": email, "firstName": f"Cpu{n}", "lastName": "Bench"})
        if n % 50 == 49:
            here.wait_delivered()
    here.settle(poll=0.1)
    linked = [str(c.id) for c in ghl.list_contacts() if (c.text.get("email") or "") in emails]
    for n, contact_id in enumerate(linked[:updates]):
        ghl.update_contact(contact_id, {"companyName": f"Company {n}"})
        if n % 50 == 49:
            here.wait_delivered()
    here.settle(poll=0.1)


def measure(
    kind: str, name: str, creates: int, updates: int, logs: Path, profile: Path | None
) -> dict[str, Any]:
    settings = {
        "ghl_rate_limit": UNLIMITED,
        "rankr_rate_limit": UNLIMITED,
        "log_level": "WARNING",
    }
    sandbox = {"ghl_rate_max": UNLIMITED, "rankr_rate_max": UNLIMITED}
    separate = name == SEPARATE
    with world(
        kind,
        logs / f"{kind}-{name}",
        worker_in_serve=not separate,
        settings=settings,
        sandbox=sandbox,
        server=SERVERS.get(name, SERVERS["service"]),
    ) as here:
        if separate:
            here.workers(1)
            time.sleep(WORKER_STARTUP_SECONDS)  # its imports and start are not a change's cost
        pids = [process.pid for process in here.processes]
        marks = {"ghl": here.sandbox.ghl.mark(), "rankr": here.sandbox.rankr.mark()}
        recorder = record(pids[0], profile / name) if profile else None
        before, started = sum(map(cpu_seconds, pids)), time.monotonic()
        mix(here, creates, updates)
        cpu, wall = sum(map(cpu_seconds, pids)) - before, time.monotonic() - started
        if recorder:
            recorder.send_signal(2)
            recorder.wait(timeout=60)
        writes = {side: sum(1 for r in here.calls(side, marks[side]) if r.is_write) for side in marks}
    changes = creates + updates
    return {
        "database": kind,
        "server": name,
        "changes": changes,
        "cpu s": round(cpu, 3),
        "cpu ms per change": round(cpu * 1000 / changes, 2),
        "wall s": round(wall, 2),
        "writes per change": round((writes["ghl"] + writes["rankr"]) / changes, 3),
    }


def record(pid: int, directory: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (make install puts it into .venv)")
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / f"{pid}.txt"
    # --gil: only the thread running Python; aiosqlite's threads waiting on SQLite's locks are no CPU.
    command = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--gil",
        "--format",
        "raw",
        "--rate",
        "250",
        "--output",
        str(output),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def where(frame: str) -> str:
    """A py-spy frame (``function (path:line)``) as the package or service module it runs in."""
    path = frame.rsplit("(", 1)[-1].split(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/app/" in path:
        return "app/" + path.split("/app/", 1)[1].removesuffix(".py")
    if "/lib/python" in path:
        return "stdlib: " + path.rsplit("/", 1)[-1].removesuffix(".py")
    return path


def breakdown(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """Samples by the package of the innermost frame (self), and by the service module that called
    into it (the innermost frame of app/)."""
    own: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[where(frames[-1])] += count
        service = [f for f in frames if where(f).startswith("app/")]
        callers[service[-1].split(" (")[0] + " " + where(service[-1]) if service else "(outside app)"] += (
            count
        )

    def shares(counter: Counter[str]) -> dict[str, float]:
        return {key: round(value / total, 3) for key, value in counter.most_common(top)}

    return {"samples": total, "self by package": shares(own), "innermost service function": shares(callers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", nargs="+", choices=["postgres", "sqlite"], default=["postgres", "sqlite"]
    )
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the last round of each into DIR")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    results: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    for kind in args.database:
        names = [*SERVERS, SEPARATE] if kind == "postgres" else list(SERVERS)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for n in range(args.rounds):
            for name in names:
                last = n == args.rounds - 1
                profile = args.profile / kind if (args.profile and last and name in SERVERS) else None
                rounds[name].append(measure(kind, name, args.creates, args.updates, logs, profile))
                print(json.dumps(rounds[name][-1]), file=sys.stderr, flush=True)
        best = {name: min(rows, key=lambda row: row["cpu ms per change"]) for name, rows in rounds.items()}
        baseline, service = best["baseline"]["cpu ms per change"], best["service"]["cpu ms per change"]
        results.append(
            {
                "database": kind,
                "changes": best["service"]["changes"],
                "baseline cpu ms per change": baseline,
                "service cpu ms per change": service,
                "service / baseline": round(service / baseline, 2),
                "rounds (service ms)": [row["cpu ms per change"] for row in rounds["service"]],
                "rounds (baseline ms)": [row["cpu ms per change"] for row in rounds["baseline"]],
                "service writes per change": best["service"]["writes per change"],
                "baseline writes per change": best["baseline"]["writes per change"],
            }
        )
        if SEPARATE in best:
            separate = best[SEPARATE]["cpu ms per change"]
            results[-1] |= {
                "separate worker: serve + worker cpu ms per change": separate,
                "separate worker / baseline": round(separate / baseline, 2),
                "rounds (separate worker ms)": [row["cpu ms per change"] for row in rounds[SEPARATE]],
            }
        if args.profile:
            for name in SERVERS:
                for recorded in (args.profile / kind / name).glob("*.txt"):
                    profiles[f"{kind}, {name}"] = breakdown(recorded)
    print(json.dumps({"cpu": results, "profiles": profiles} if profiles else results, indent=2))


if __name__ == "__main__":
    main()
