"""Upstream efficiency: the service's API calls per applied change, counted in the sandboxes' request logs.

    python -m bench.upstream [--database postgres|sqlite] [--changes 10]

Changes are made in the sandbox stores directly (as people do in the products' UIs), so every
request the logs hold is the service's own. Per scenario: writes and reads on the side the change
goes to, and calls on the side it came from (a write there would be an echo written back). The
ideal is one write per real change and nothing for no-op updates, duplicate deliveries and echoes.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from app.sandbox.requestlog import RecordedRequest
from bench.faults.run import Redelivery, Tally
from bench.world import World, world


def split(requests: list[RecordedRequest]) -> tuple[int, int]:
    writes = sum(1 for r in requests if r.is_write)
    return writes, len(requests) - writes


class Scenario:
    def __init__(self, here: World) -> None:
        self.here = here

    def run(self, name: str, changes: int, ideal: float, act: Any, target: str) -> dict[str, Any]:
        """Apply ``act()`` (which makes ``changes`` changes), settle, and count the calls since."""
        origin = "rankr" if target == "ghl" else "ghl"
        sandbox = self.here.sandbox
        marks = {"ghl": sandbox.ghl.mark(), "rankr": sandbox.rankr.mark()}
        delivered = {side: len(sandbox.dispatcher.deliveries(side)) for side in ("ghl", "rankr")}
        act()
        self.here.settle(poll=0.1)
        target_writes, target_reads = split(self.here.calls(target, marks[target]))
        origin_writes, origin_reads = split(self.here.calls(origin, marks[origin]))
        echoes = len(sandbox.dispatcher.deliveries(target)) - delivered[target]
        calls = target_writes + target_reads + origin_writes + origin_reads
        return {
            "scenario": name,
            "changes": changes,
            f"writes to {target}": target_writes,
            f"reads of {target}": target_reads,
            f"writes to {origin}": origin_writes,
            f"reads of {origin}": origin_reads,
            "echo webhooks": echoes,
            "writes per change": round((target_writes + origin_writes) / changes, 3),
            "reads per change": round((target_reads + origin_reads) / changes, 3),
            "calls per change": round(calls / changes, 3),
            "ideal writes per change": ideal,
            "target": target,
        }


def measure(kind: str, changes: int, logs: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    settings = {"worker_poll_seconds": 0.5, "log_level": "WARNING"}
    with world(kind, logs, worker_in_serve=True, settings=settings) as here:
        rankr, ghl = here.sandbox.rankr.store, here.sandbox.ghl.store
        scenario = Scenario(here)
        emails = [f"eff.{uuid.uuid4().hex[:8]}@bench.example" for _ in range(changes)]
        rankr_ids: list[str] = []
        ghl_emails = [f"effg.{uuid.uuid4().hex[:8]}@bench.example" for _ in range(changes)]

        def create_in_rankr() -> None:
            for n, email in enumerate(emails):
                contact = rankr.create_contact(
                    {"email": email, "firstName": f"Create{n}", "lastName": "Bench", "tags": ["bench"]}
                )
                rankr_ids.append(str(contact.contact_id))

        results.append(scenario.run("create (Rankr -> GHL)", changes, 1.0, create_in_rankr, "ghl"))

        def create_in_ghl() -> None:
            for n, email in enumerate(ghl_emails):
                ghl.create_contact({"email": email, "firstName": f"Ghl{n}", "lastName": "Bench"})

        results.append(scenario.run("create (GHL -> Rankr)", changes, 1.0, create_in_ghl, "rankr"))

        def update_in_rankr() -> None:
            for n, contact_id in enumerate(rankr_ids):
                rankr.update_contact(contact_id, {"lastName": f"Updated {n}"})

        results.append(scenario.run("update (Rankr -> GHL)", changes, 1.0, update_in_rankr, "ghl"))

        ghl_ids = [str(c.id) for c in ghl.list_contacts() if (c.text.get("email") or "") in set(ghl_emails)]

        def update_in_ghl() -> None:
            for n, contact_id in enumerate(ghl_ids):
                ghl.update_contact(contact_id, {"companyName": f"Company {n}"})

        results.append(scenario.run("update (GHL -> Rankr)", len(ghl_ids), 1.0, update_in_ghl, "rankr"))

        def no_op_updates() -> None:
            for contact_id in rankr_ids:
                rankr.update_contact(contact_id, {"customFields": {"unmapped": uuid.uuid4().hex}})

        results.append(scenario.run("no-op update (unmapped field)", changes, 0.0, no_op_updates, "ghl"))

        redelivery = Redelivery(here.sandbox, here.service_url, random.Random(1), Tally())
        delivered = [d for d in here.sandbox.dispatcher.deliveries("rankr") if d.state == "delivered"]
        again = delivered[-changes:]

        def duplicates() -> None:
            with httpx.Client(timeout=10) as http:
                for delivery in again:
                    answer = http.post(
                        f"{here.service_url}/webhooks/rankr",
                        content=delivery.body,
                        headers=redelivery._headers(delivery),
                    )
                    answer.raise_for_status()

        results.append(scenario.run("duplicate delivery (same id)", len(again), 0.0, duplicates, "ghl"))

        burst_id = rankr_ids[0]

        def burst() -> None:
            for n in range(20):
                rankr.update_contact(burst_id, {"firstName": f"Burst {n}", "website": f"https://{n}.x"})

        row = scenario.run("burst of 20 updates, one contact", 1, 1.0, burst, "ghl")
        row["note"] = "ratio per burst (target: at most 2 writes)"
        results.append(row)
    # Echoes: the writes the service made caused webhooks back; what they cost on the origin side.
    echo_rows = [r for r in results if r["scenario"].startswith(("create", "update"))]
    echoes = sum(r["echo webhooks"] for r in echo_rows)
    echo_writes = sum(r.get("writes to rankr", 0) if r["target"] == "ghl" else r.get("writes to ghl", 0)
                      for r in echo_rows)  # fmt: skip
    results.append(
        {
            "scenario": "echoes (webhooks caused by the service's own writes)",
            "changes": echoes,
            "writes per change": round(echo_writes / echoes, 3) if echoes else 0.0,
            "ideal writes per change": 0.0,
            "target": "origin",
        }
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-upstream-"))
    results = measure(args.database, args.changes, logs)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
