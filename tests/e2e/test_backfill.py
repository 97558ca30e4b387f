"""Backfill end to end: thousands of contacts on both sides, over HTTP, on SQLite and Postgres.

The sandboxes are seeded through their seed route (contacts that existed before the service was
connected: no webhooks), the backfill runs through the admin route or the command line, and the
result is read back from both products and the database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.service import Service, query, running_service, wait_for
from tests.support.world import World, contacts_of

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def seed(service: Service, world: World) -> None:
    rankr, ghl = contacts_of(world)
    for chunk in range(0, len(rankr), 2000):
        service.rankr.seed(rankr[chunk : chunk + 2000])
    for chunk in range(0, len(ghl), 2000):
        service.ghl.seed(ghl[chunk : chunk + 2000])


# The service's own pacing lifted too, for the big worlds (pacing has tests of its own).
UNPACED: dict[str, Any] = {
    "ghl_rate_limit": 1_000_000,
    "rankr_rate_limit": 1_000_000,
    "ghl_daily_limit": None,
}


def unlimited(service: Service) -> None:
    """Lift the sandboxes' rate limits (this is about correctness, not pacing) and turn their webhooks
    off: the echoes of the backfill's own writes are handled as any echo is (tests/e2e/test_contacts.py)
    and would only double the work here."""
    service.ghl.control(rate_max=1_000_000, webhooks_enabled=False)
    service.rankr.control(rate_max=1_000_000, webhooks_enabled=False)


def backfill_facts(service: Service) -> dict[str, Any] | None:
    entry = service.status()["connections"][0]
    return entry["backfill"]  # type: ignore[no-any-return]


def finished(service: Service) -> dict[str, Any] | None:
    facts = backfill_facts(service)
    return facts if facts and facts["state"] == "done" else None


def gently(check: Callable[[], T]) -> Callable[[], T]:
    """``check`` polled twice a second: the service under test shares this process and its cores."""

    def slower() -> T:
        time.sleep(0.5)
        return check()

    return slower


def check_result(service: Service, world: World) -> None:
    rankr, ghl = service.rankr.contacts(), service.ghl.contacts()
    # Everyone exists on both sides once, but the duplicates, which stay in Rankr only.
    assert len(ghl) == world.people
    assert len(rankr) == world.people + world.duplicates
    emails = Counter((c.get("email") or "").lower() for c in ghl if c.get("email"))
    assert max(emails.values()) == 1
    links = [row for row in service.links() if row["kind"] == "contact"]
    assert Counter(row["state"] for row in links) == {"linked": world.people}
    linked_rankr = {row["rankr_id"] for row in links}
    assert len(linked_rankr) == world.people
    by_id = {c["id"]: c for c in ghl}
    rankr_by_id = {c["contactId"]: c for c in rankr}
    for row in links:
        r, g = rankr_by_id[row["rankr_id"]], by_id[row["ghl_id"]]
        assert (r.get("email") or "").lower() == (g.get("email") or "").lower()
        assert r.get("firstName") == g.get("firstName")
    # Same email: GHL (newer) wins the differing first name; values one side lacked are copied; tags united.
    for i in range(world.by_email):
        [r] = [c for c in rankr if (c.get("email") or "").lower() == f"both{i}@example.com"]
        [g] = [c for c in ghl if (c.get("email") or "").lower() == f"both{i}@example.com"]
        assert r["firstName"] == g["firstName"] == f"New{i}"
        assert r["companyName"] == g["companyName"] == f"Co {i}"
        assert r["website"] == g["website"] == f"https://{i}.example"
        assert sorted(t.lower() for t in r["tags"]) == sorted(g["tags"]) == ["from-ghl", "from-rankr"]
    # Same phone, written differently: linked, not created twice.
    by_phone = [c for c in ghl if (c.get("phone") or "").startswith("+1455")]
    assert len(by_phone) == world.by_phone
    by_phone_rankr = [c for c in rankr if (c.get("lastName") or "").startswith("P")]
    assert len(by_phone_rankr) == world.by_phone
    assert all((c.get("address") or {}).get("city") == "Oslo" for c in by_phone_rankr)
    # Duplicates inside Rankr (same phone, no email): the first listed is linked (and merged with
    # GHL's record, if any), the other is left alone, unlinked.
    for prefix, groups in (("+1555", world.duplicate_groups), ("+1655", world.duplicates_with_ghl)):
        in_ghl = [c for c in ghl if (c.get("phone") or "").startswith(prefix)]
        assert len(in_ghl) == groups
        in_rankr = [c for c in rankr if (c.get("phone") or "").startswith(prefix)]
        assert len(in_rankr) == 2 * groups
        assert len([c for c in in_rankr if c["contactId"] in linked_rankr]) == groups
        for g in in_ghl:
            [twin] = [c for c in in_rankr if c["phone"] == g["phone"] and c["contactId"] in linked_rankr]
            assert g.get("firstName") == twin["firstName"]
    outcomes = finished(service)
    assert outcomes is not None
    assert outcomes["counts"]["duplicate"] == world.duplicates
    assert outcomes["counts"]["failed"] == 0
    counts = outcomes["counts"]
    assert counts["rankrListed"] == world.rankr_only + world.by_email + world.by_phone + 2 * world.duplicates
    assert counts["ghlListed"] == world.ghl_only + world.by_email + world.by_phone + world.duplicates_with_ghl
    assert counts["decided"] == counts["rankrListed"] + counts["ghlListed"]


WORLD = World(
    rankr_only=300, ghl_only=300, by_email=900, by_phone=150, duplicate_groups=50, duplicates_with_ghl=50
)


def test_backfill_of_thousands_links_merges_and_creates(database_url: str) -> None:
    with running_service(database_url, worker_concurrency=8, **UNPACED) as service:
        unlimited(service)
        seed(service, WORLD)
        rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
        answer = service.http.post(f"{service.url}/admin/backfill", json={})
        assert answer.status_code == 202, answer.text
        # One backfill per connection at a time (the job's lease).
        again = service.http.post(f"{service.url}/admin/backfill", json={})
        assert again.status_code == 409, again.text
        progress = wait_for(
            lambda: (f := backfill_facts(service)) and f["counts"].get("decided") and f, timeout=120
        )
        assert progress["state"] == "running"
        wait_for(gently(lambda: finished(service)), timeout=600, what="the backfill to finish")
        service.settle(timeout=120)
        check_result(service, WORLD)
        # Listing pages went through the official endpoints.
        ghl_requests, rankr_requests = (
            service.ghl.requests_since(ghl_mark),
            service.rankr.requests_since(rankr_mark),
        )
        ghl_paths = Counter(f"{r['method']} {r['path']}" for r in ghl_requests)
        assert ghl_paths["POST /contacts/search"] >= 1 + (WORLD.people) // 100 // 2
        rankr_paths = Counter(f"{r['method']} {r['path']}" for r in rankr_requests)
        assert rankr_paths["GET /contacts"] >= 2
        # The two sides were listed at once: GHL's first page was asked for before Rankr's last.
        first_search = min(r["at"] for r in ghl_requests if r["path"] == "/contacts/search")
        last_page = max(r["at"] for r in rankr_requests if r["method"] == "GET" and r["path"] == "/contacts")
        assert first_search < last_page, (first_search, last_page)
        # The listing carries the records: creating or first linking them reads none of them again.
        reads = [
            f"{side} {r['path']}"
            for side, requests in (("ghl", ghl_requests), ("rankr", rankr_requests))
            for r in requests
            if r["method"] == "GET"
            and re.fullmatch(r"/contacts/[^/]+", r["path"])
            and "search" not in r["path"]
        ]
        assert reads == [], reads[:5]
        # The records found in GHL only are decided last (Rankr's records come first), but their
        # creates in Rankr were queued among the GHL-bound writes, not after all of them: GHL's
        # budget is not left idle while they are applied.
        queued = [
            row["event_id"]
            for row in query(
                service.database_url,
                "SELECT event_id FROM webhook_events WHERE event_id LIKE 'sync:backfill:%' ORDER BY id",
            )
        ]
        to_rankr = [n for n, event_id in enumerate(queued) if ":ghl:" in event_id]
        last_to_ghl = max(n for n, event_id in enumerate(queued) if ":ghl:" not in event_id)
        assert len(to_rankr) == WORLD.ghl_only
        assert sum(1 for n in to_rankr if n < last_to_ghl) >= len(to_rankr) // 2, (to_rankr[:3], last_to_ghl)
        # Every merge decision is in the audit log.
        merges = [row for row in service.audit() if row["action"] == "merge"]
        assert len(merges) >= WORLD.by_email
        # A reconciliation right after (no marks yet: it compares everything) finds nothing to repair
        # and leaves the duplicates alone rather than failing to create them.
        rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
        assert service.http.post(f"{service.url}/admin/reconcile", json={}).status_code == 202

        def reconciled() -> dict[str, Any] | None:
            facts = service.status()["connections"][0]["reconcile"]
            return facts if facts and facts["state"] == "done" else None

        # Both jobs also list the tasks and notes of every linked contact (four reads each).
        counts = wait_for(gently(reconciled), timeout=600)["counts"]
        assert counts.get("repair", 0) == 0
        assert counts.get("create", 0) == 0
        assert counts["duplicate"] == WORLD.duplicates
        assert counts.get("missing", 0) == 0
        assert service.rankr.writes_since(rankr_mark) == []
        assert service.ghl.writes_since(ghl_mark) == []
        # A second backfill finds everyone linked and writes nothing upstream.
        rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
        assert service.http.post(f"{service.url}/admin/backfill", json={}).status_code == 202
        wait_for(gently(lambda: (f := finished(service)) and f["counts"].get("linked") and f), timeout=600)
        assert service.rankr.writes_since(rankr_mark) == []
        assert service.ghl.writes_since(ghl_mark) == []


def cli_env(service: Service) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "RANKR_", "SANDBOX"))}
    return {
        **clean,
        "DATABASE_URL": service.database_url,
        "SANDBOX": "true",
        "PUBLIC_URL": service.url,
        "WORKER_LEASE_SECONDS": "3",
        "WORKER_POLL_SECONDS": "0.05",
        "RETRY_SCHEDULE": "0.2,0.5,1",
        "LOG_LEVEL": "WARNING",
        "GHL_RATE_LIMIT": "1000000",
        "RANKR_RATE_LIMIT": "1000000",
    }


def test_backfill_killed_midway_resumes_where_it_stopped(database_url: str) -> None:
    world = World(
        rankr_only=300, ghl_only=300, by_email=500, by_phone=50, duplicate_groups=20, duplicates_with_ghl=20
    )
    # The service's own worker stays off: only the command applies the backfill's events.
    with running_service(database_url, run_worker_in_process=False, **UNPACED) as service:
        unlimited(service)
        seed(service, world)
        command = [sys.executable, "-m", "app", "backfill"]
        process = subprocess.Popen(
            command, cwd=ROOT, env=cli_env(service), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:

            def midway() -> bool:
                rows = query(service.database_url, "SELECT count(*) AS n FROM links WHERE state = 'linked'")
                return bool(rows and rows[0]["n"] >= 100)

            wait_for(gently(midway), timeout=300, what="the backfill to be midway")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        [job] = query(service.database_url, "SELECT state, phase FROM sync_jobs WHERE job = 'backfill'")
        assert job["state"] == "running"
        linked_before = len([row for row in service.links() if row["state"] == "linked"])
        assert linked_before < world.people
        listed_before = Counter(f"{r['method']} {r['path']}" for r in service.rankr.requests_since(0))

        def resume() -> subprocess.CompletedProcess[str] | None:
            # Refused until the killed process's lease on the job expires (WORKER_LEASE_SECONDS).
            done = subprocess.run(
                command, cwd=ROOT, env=cli_env(service), capture_output=True, text=True, timeout=600
            )
            return None if "running in another process" in done.stderr else done

        resumed = wait_for(resume, timeout=60, what="the lease of the killed run to expire")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert '"failed": 0' in resumed.stdout
        # It carried on from its checkpoint: the Rankr listing was not started over.
        listed_after = Counter(f"{r['method']} {r['path']}" for r in service.rankr.requests_since(0))
        assert listed_after["GET /contacts"] == listed_before["GET /contacts"]
        [job] = query(service.database_url, "SELECT state, phase FROM sync_jobs WHERE job = 'backfill'")
        assert job == {"state": "done", "phase": "done"}
        check_result(service, world)


SMALL = World(rankr_only=3, ghl_only=3, by_email=3, by_phone=1, duplicate_groups=1, duplicates_with_ghl=1)


@pytest.mark.parametrize("through", ["admin route", "command line"])
def test_queued_writes_wake_the_worker(database_url: str, through: str) -> None:
    """A backfill wakes the worker that applies its writes as it queues them: with a 30 s poll,
    a small one still finishes in seconds (it waited for the poll before)."""
    poll = 30.0
    with running_service(
        database_url, worker_poll_seconds=poll, run_worker_in_process=through == "admin route", **UNPACED
    ) as service:
        unlimited(service)
        seed(service, SMALL)
        started = time.monotonic()
        if through == "admin route":
            assert service.http.post(f"{service.url}/admin/backfill", json={}).status_code == 202
            wait_for(lambda: finished(service), timeout=2 * poll, what="the backfill to finish")
        else:
            command = [sys.executable, "-m", "app", "backfill"]
            env = {**cli_env(service), "WORKER_POLL_SECONDS": str(poll)}
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr[-3000:]
        assert time.monotonic() - started < poll / 2
        check_result(service, SMALL)


def test_dry_run_on_the_command_line_prints_its_decisions(database_url: str) -> None:
    with running_service(database_url) as service:
        world = World(
            rankr_only=2, ghl_only=1, by_email=1, by_phone=0, duplicate_groups=1, duplicates_with_ghl=0
        )
        seed(service, world)
        rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
        command = [sys.executable, "-m", "app", "backfill", "--dry-run", "--connection", "1"]
        done = subprocess.run(
            command, cwd=ROOT, env=cli_env(service), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert sum(line.startswith("create in ghl: rankr ") for line in lines) == 3
        assert sum(line.startswith("create in rankr: ghl ") for line in lines) == 1
        assert sum(line.startswith("link rankr ") for line in lines) == 1
        assert sum(line.startswith("duplicate rankr ") for line in lines) == 1
        assert "Old" not in done.stdout  # ids and field names only, never contact data
        assert service.rankr.writes_since(rankr_mark) == []
        assert service.ghl.writes_since(ghl_mark) == []
        assert service.links() == []
        assert service.events() == []
        if database_url.startswith("postgres"):
            # The staging table was analysed once listed (reltuples is -1 until a table is).
            [table] = query(
                service.database_url, "SELECT reltuples FROM pg_class WHERE oid = 'staged_contacts'::regclass"
            )
            assert table["reltuples"] > 0
        unknown = subprocess.run(
            [*command[:-1], "7"], cwd=ROOT, env=cli_env(service), capture_output=True, text=True, timeout=120
        )
        assert unknown.returncode == 1
        assert "no active connection 7" in unknown.stderr


def test_listing_waits_out_the_rate_limit(service: Service) -> None:
    world = World(
        rankr_only=0, ghl_only=250, by_email=0, by_phone=0, duplicate_groups=0, duplicates_with_ghl=0
    )
    seed(service, world)
    service.ghl.control(rate_max=1, rate_window_seconds=1.0)
    mark = service.ghl.mark()
    body = {"dryRun": True, "tasksAndNotes": False}  # the listing's pace alone
    answer = service.http.post(f"{service.url}/admin/backfill", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["connections"]["1"]["ghlListed"] == 250
    statuses = Counter(r["status"] for r in service.ghl.requests_since(mark))
    # The pacer learns the limit from GHL's headers and keeps to it; a 429 met before that (at most
    # one) is waited out. Each of the three pages of 100 is read once.
    assert statuses[429] <= 1
    assert statuses[200] == 3
