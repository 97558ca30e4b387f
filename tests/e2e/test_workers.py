"""Several worker processes on one Postgres database never apply the same event twice."""

from __future__ import annotations

import signal
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import max_in_window, query, running_service, wait_for
from tests.support.workers import start_worker


@pytest.mark.postgres
def test_two_worker_processes_apply_each_event_once(postgres_url: str, tmp_path: Path) -> None:
    with running_service(postgres_url, run_worker_in_process=False) as service:
        workers = [start_worker(postgres_url, service.url, tmp_path / f"worker{n}.log") for n in (1, 2)]
        try:
            ghl_mark = service.ghl.mark()
            emails = [f"w{n}.{uuid.uuid4().hex[:8]}@example.com" for n in range(40)]
            for email in emails:
                service.rankr.create(email=email, firstName="Worker", lastName="Test")
            service.settle(timeout=60)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
        assert codes == [0, 0], [(tmp_path / f"worker{n}.log").read_text() for n in (1, 2)]
        # Each Rankr create became exactly one GHL contact, written once; no event ran twice.
        assert sorted(service.ghl.writes_since(ghl_mark)) == ["POST /contacts/upsert"] * 40
        for email in emails:
            assert len(service.ghl.by_email(email)) == 1
            assert len(service.rankr.by_email(email)) == 1
        events = service.events()
        assert len(events) == 80  # 40 Rankr creates, 40 GHL echoes
        assert {event["status"] for event in events} == {"done"}
        assert [event["attempts"] for event in events] == [1] * 80
        applied_by = [
            line
            for n in (1, 2)
            for line in (tmp_path / f"worker{n}.log").read_text().splitlines()
            if "sync.event_applied" in line
        ]
        assert len(applied_by) == 80
        # Both processes took part.
        for n in (1, 2):
            assert "sync.event_applied" in (tmp_path / f"worker{n}.log").read_text()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_sigterm_lets_the_worker_finish_the_event_in_hand(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    database_url = request.getfixturevalue(f"{database}_url")
    with running_service(database_url, run_worker_in_process=False) as service:
        service.ghl.control(latency_ms=1500)
        worker = start_worker(database_url, service.url, tmp_path / "worker.log")
        try:
            service.rankr.create(email=f"sigterm.{uuid.uuid4().hex[:8]}@example.com")
            wait_for(
                lambda: any(e["status"] == "processing" for e in service.events("rankr")),
                what="the event in hand",
            )
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
        [event] = service.events("rankr")
        assert event["status"] == "done", (tmp_path / "worker.log").read_text()
        assert "worker.stopped" in (tmp_path / "worker.log").read_text()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_worker_killed_mid_write_loses_nothing_and_duplicates_nothing(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    database_url = request.getfixturevalue(f"{database}_url")
    log = tmp_path / "worker.log"
    with running_service(database_url, run_worker_in_process=False) as service:
        # GHL makes the contact at once but answers 3 s later: the worker is killed while it waits,
        # so the create happened and the worker never learnt it.
        service.ghl.control(answer_latency_ms=3000)
        worker = start_worker(database_url, service.url, log, WORKER_LEASE_SECONDS="2")
        email = f"killed.{uuid.uuid4().hex[:8]}@example.com"
        try:
            service.rankr.create(email=email, firstName="Killed")
            wait_for(lambda: service.ghl.by_email(email), what="GHL to make the contact")
        finally:
            worker.kill()
            worker.wait(timeout=10)
        assert [link["state"] for link in service.links()] == ["pending"]
        service.ghl.control(answer_latency_ms=0)
        successor = start_worker(database_url, service.url, log, WORKER_LEASE_SECONDS="2")
        try:
            service.settle(timeout=30)
        finally:
            successor.send_signal(signal.SIGTERM)
            successor.wait(timeout=30)
        # The create that happened before the crash was found again (upsert by email), not repeated.
        [ghl] = service.ghl.by_email(email)
        [rankr] = service.rankr.by_email(email)
        assert [(link["state"], link["rankr_id"], link["ghl_id"]) for link in service.links()] == [
            ("linked", rankr["contactId"], ghl["id"])
        ]
        [event] = service.events("rankr")
        assert (event["status"], event["attempts"]) == ("done", 2), log.read_text()
        assert {event["status"] for event in service.events()} == {"done"}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_write_slower_than_the_lease_is_made_once(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The worker renews the leases of what it holds: a second worker, idle beside it, does not take
    over an event whose upstream answers after the lease would have run out."""
    database_url = request.getfixturevalue(f"{database}_url")
    logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
    with running_service(database_url, run_worker_in_process=False) as service:
        # GHL makes the contact at once and answers 4 s later: more than twice the 1.5 s lease.
        service.ghl.control(answer_latency_ms=4000)
        workers = [start_worker(database_url, service.url, log, WORKER_LEASE_SECONDS="1.5") for log in logs]
        email = f"slow.{uuid.uuid4().hex[:8]}@example.com"
        try:
            ghl_mark = service.ghl.mark()
            service.rankr.create(email=email, firstName="Slow")
            service.settle(timeout=30)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
        text = "".join(log.read_text() for log in logs)
        assert codes == [0, 0], text
        assert service.ghl.writes_since(ghl_mark) == ["POST /contacts/upsert"], text
        [event] = service.events("rankr")
        assert (event["status"], event["attempts"]) == ("done", 1), text
        assert {event["status"] for event in service.events()} == {"done"}
        assert "LeaseLost" not in text
        assert "lease_renewal_failed" not in text


@pytest.mark.postgres
def test_four_worker_processes_share_a_backlog_in_order_and_within_the_budget(
    postgres_url: str, tmp_path: Path
) -> None:
    # GHL allows 25 requests per 5 s here, and the workers are told so.
    budget = {"GHL_RATE_LIMIT": "25", "GHL_RATE_WINDOW_SECONDS": "5"}
    with running_service(postgres_url, run_worker_in_process=False) as service:
        service.ghl.control(rate_max=25, rate_window_seconds=5)
        # A backlog: 40 contacts created in Rankr, each changed twice, stored before any worker runs.
        contacts = [
            service.rankr.create(email=f"four.{n}.{uuid.uuid4().hex[:6]}@example.com", firstName="v0")
            for n in range(40)
        ]
        for version in ("v1", "v2"):
            for contact in contacts:
                service.rankr.update(contact["contactId"], firstName=version)
        service.rankr.drain()
        ghl_mark = service.ghl.mark()
        logs = [tmp_path / f"worker{n}.log" for n in range(4)]
        workers = [start_worker(postgres_url, service.url, log, **budget) for log in logs]
        try:
            service.settle(timeout=120)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
        assert codes == [0, 0, 0, 0], [log.read_text()[-2000:] for log in logs]

        # Every contact once in GHL, with its newest state.
        for contact in contacts:
            [ghl] = service.ghl.by_email(contact["email"])
            assert ghl["firstName"] == "v2"
        # The upstream budget held: no 429, never more than 25 requests in 5 s.
        requests = service.ghl.requests_since(ghl_mark)
        assert [r for r in requests if r["status"] == 429] == []
        assert max_in_window(requests, seconds=5) <= 25
        assert len([r for r in requests if r["write"]]) == 40  # one upsert per contact
        # The shared schedule's slots were used, not reserved and dropped: 32 events in hand want
        # more slots than 2 s of the budget holds, so reservations are refused now and then, which
        # once made a worker give up the slots it held (waste, and a backlog that barely moved).
        [reserved] = [
            row["day_count"]
            for row in query(postgres_url, "SELECT day_count FROM rate_budgets WHERE upstream = 'ghl'")
        ]
        assert reserved <= len(requests) + 5, (reserved, len(requests))

        # No event handled twice: each was claimed once (coalesced ones not at all) and applied once.
        rows = query(
            postgres_url, "SELECT id, ordering_key, status, attempts, finished_at FROM webhook_events"
        )
        assert {row["status"] for row in rows} == {"done"}
        assert {row["attempts"] for row in rows} <= {0, 1}
        applied = [
            line for log in logs for line in log.read_text().splitlines() if "sync.event_applied" in line
        ]
        assert len(applied) == sum(row["attempts"] for row in rows)
        assert sum(1 for log in logs if "sync.event_applied" in log.read_text()) >= 2
        # Per-record order: within one record, an event never finished before an earlier one.
        by_record: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=lambda row: row["id"]):
            by_record.setdefault(row["ordering_key"], []).append(row)
        for events in by_record.values():
            finished = [datetime.fromisoformat(row["finished_at"]) for row in events]
            assert finished == sorted(finished)


@pytest.mark.postgres
def test_a_separate_worker_is_woken_by_notify_rather_than_its_next_poll(
    postgres_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with running_service(postgres_url, run_worker_in_process=False) as service:
        # Polling alone would find the event only 30 s after the worker's last look.
        worker = start_worker(postgres_url, service.url, log, WORKER_POLL_SECONDS="30")
        try:
            wait_for(lambda: "inbox.listening" in log.read_text(), what="the worker to listen")
            email = f"woken.{uuid.uuid4().hex[:8]}@example.com"
            service.rankr.create(email=email, firstName="Woken")
            wait_for(lambda: service.ghl.by_email(email), timeout=3, what="GHL to have the contact")
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, log.read_text()
