"""The delay from a GHL task edit to Rankr, for a contact someone is working on, in simulated time.

    python -m bench.task_edit [--contacts 200] [--active 1 5 10] [--samples 30]

GHL sends no webhook for a task edit: the task poll finds it (app/sync/task_poll.py). What decides the
delay is the poll's timing, so the service, both sandboxes and a worker run in this process
(tests/support/inprocess.py, SQLite) on the controllable clock: the clock moves one round
(TASK_POLL_SECONDS) at a time, the poll runs, and the worker applies what it queued (in production
the poll wakes the worker at once). The location: ``--contacts`` linked contacts with one open task
each, due at random in the next ten days. ``--active`` of them are being worked on: each sample
edits one of their tasks in Rankr (synced to GHL), lets a random 0-60 s pass, and then edits the same
task in GHL at a random moment of a round; the delay is the simulated time until Rankr holds the GHL
edit. Between samples a random 0-2 minutes pass; before each, every active contact's task is edited
in Rankr (so they compete for the reads). The clock starts an hour after the location was built,
with a quarter of an hour of rounds before the first sample.

Baseline, in the same run: the same budget (TASK_POLL_CONTACTS reads per round) spent round robin in
link order, as the poll did before issue 29. Counted for each: the GHL task-list reads per 10 s
(GHL's budget: 100, 97 used) and per day, extrapolated from the simulated time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.sync import task_poll
from app.sync.task_poll import Candidate
from tests.support.databases import fresh_sqlite, sqlite_template
from tests.support.inprocess import InProcessService, inprocess_service

INTERVAL = 5.0
READS = 3
DAY = 86_400
WARM_UP = 15 * 60


def round_robin() -> Any:
    """The poll before issue 29: the next contacts in link order, wrapping round."""
    after = [0]

    def choose(candidates: Sequence[Candidate], now: datetime, reads: int) -> list[Candidate]:
        ordered = sorted(candidates, key=lambda c: c.link_id)
        chosen = [c for c in ordered if c.link_id > after[0]][:reads]
        after[0] = chosen[-1].link_id if len(chosen) == reads else 0
        return chosen

    return choose


class Location:
    """The in-process service with ``contacts`` linked contacts, one open task each, and the poll's
    rounds driven on its clock."""

    def __init__(self, service: InProcessService) -> None:
        self.service = service
        self.next_round = service.clock() + timedelta(seconds=INTERVAL)
        self.reads: list[int] = []  # GHL task-list reads of each round
        self.started = service.clock()
        self.tasks: list[tuple[str, str, str, str]] = []  # rankr contact, rankr task, ghl contact, ghl task

    async def build(self, contacts: int, dice: random.Random) -> None:
        service = self.service
        emails = [f"poll.{uuid.uuid4().hex[:10]}@bench.example" for _ in range(contacts)]
        made = [await service.rankr.create(email=email, firstName="Poll") for email in emails]
        await service.settle()
        ghl_ids = {(c.get("email") or "").lower(): c["id"] for c in await service.ghl.contacts()}
        for contact in made:
            due = service.clock() + timedelta(days=dice.uniform(0, 10))
            body = {"title": "Follow up", "dueDate": due.strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            answer = await service.rankr.api("POST", f"/contacts/{contact['contactId']}/tasks", json=body)
            answer.raise_for_status()
        await service.settle()
        for email, contact in zip(emails, made, strict=True):
            ghl_id = ghl_ids[email.lower()]
            [rankr_task] = (await service.rankr.api("GET", f"/contacts/{contact['contactId']}/tasks")).json()[
                "data"
            ]
            [ghl_task] = (await service.ghl.api("GET", f"/contacts/{ghl_id}/tasks")).json()["tasks"]
            self.tasks.append((contact["contactId"], rankr_task["taskId"], ghl_id, ghl_task["id"]))

    async def run_until(self, at: datetime) -> None:
        """Run the poll's rounds due up to ``at``, each followed by the worker; the clock ends at ``at``."""
        service = self.service
        while self.next_round <= at:
            service.clock.advance_to(self.next_round)
            mark = await service.ghl.mark()
            queued = await service.worker._engine.task_poll.run_once()
            requests = await service.ghl.requests_since(mark)
            self.reads.append(sum(r["method"] == "GET" and r["path"].endswith("/tasks") for r in requests))
            if queued:
                await service.settle()
            self.next_round += timedelta(seconds=INTERVAL)
        service.clock.advance_to(at)

    async def pass_time(self, seconds: float) -> None:
        await self.run_until(self.service.clock() + timedelta(seconds=seconds))

    async def edit_in_rankr(self, index: int, title: str) -> None:
        rankr_contact, rankr_task, _, _ = self.tasks[index]
        path = f"/contacts/{rankr_contact}/tasks/{rankr_task}"
        (await self.service.rankr.api("PUT", path, json={"title": title})).raise_for_status()
        await self.service.settle()

    async def edit_in_ghl(self, index: int, title: str) -> float:
        """Edit the task in GHL now; the simulated seconds until Rankr holds the edit."""
        service = self.service
        rankr_contact, rankr_task, ghl_contact, ghl_task = self.tasks[index]
        path = f"/contacts/{ghl_contact}/tasks/{ghl_task}"
        (await service.ghl.api("PUT", path, json={"title": title})).raise_for_status()
        edited = service.clock()
        rankr_path = f"/contacts/{rankr_contact}/tasks/{rankr_task}"
        for _ in range(100_000):
            if (await service.rankr.api("GET", rankr_path)).json()["title"] == title:
                return (service.clock() - edited).total_seconds()
            await self.run_until(self.next_round)
        raise AssertionError("the GHL edit never reached Rankr")

    def budget(self) -> dict[str, Any]:
        per_window = max(sum(self.reads[n : n + round(10 / INTERVAL)]) for n in range(len(self.reads)))
        seconds = len(self.reads) * INTERVAL
        return {
            "GHL reads per 10 s, max": per_window,
            "GHL reads per day": round(sum(self.reads) / seconds * DAY),
        }


async def measure(policy: str, contacts: int, active: int, samples: int, seed: int) -> dict[str, Any]:
    dice = random.Random(seed)
    original = task_poll.choose
    with tempfile.TemporaryDirectory() as scratch:
        url = fresh_sqlite(sqlite_template(Path(scratch)), Path(scratch))
        settings = {"task_poll_seconds": INTERVAL, "task_poll_contacts": READS, "log_level": "ERROR"}
        async with inprocess_service(url, **settings) as service:
            here = Location(service)
            await here.build(contacts, dice)
            if policy.startswith("round robin"):  # the same poll and budget, only the order differs
                task_poll.choose = round_robin()
            try:
                # An hour later (nobody has worked on them since), and a quarter of an hour of rounds.
                service.clock.advance(3600)
                here.next_round = service.clock()
                await here.pass_time(WARM_UP)
                here.reads.clear()
                workers = dice.sample(range(contacts), active)
                delays = []
                for n in range(samples):
                    for other in workers:
                        await here.edit_in_rankr(other, f"Worked on {n}")
                    await here.pass_time(dice.uniform(0, 60))
                    delays.append(await here.edit_in_ghl(dice.choice(workers), f"Edited in GHL {n}"))
                    await here.pass_time(dice.uniform(0, 120))
            finally:
                task_poll.choose = original
    ordered = sorted(delays)
    bound = task_poll.visit_bound(contacts, READS, timedelta(seconds=INTERVAL))
    return {
        "order": policy,
        "contacts": contacts,
        "active": active,
        "samples": samples,
        "p50_s": round(statistics.median(ordered), 1),
        "p95_s": round(ordered[min(len(ordered) - 1, round(0.95 * len(ordered)))], 1),
        "max_s": round(ordered[-1], 1),
        **here.budget(),
        "every contact read within (bound)": str(bound),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--active", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=29)
    args = parser.parse_args()
    rows = [
        asyncio.run(measure("by priority", args.contacts, active, args.samples, args.seed))
        for active in args.active
    ]
    baseline = args.active[len(args.active) // 2]
    rows.append(
        asyncio.run(measure("round robin (baseline)", args.contacts, baseline, args.samples, args.seed))
    )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
