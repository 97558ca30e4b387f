"""Several worker processes on one Postgres database never apply the same event twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.service import running_service, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def start_worker(database_url: str, public_url: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SANDBOX": "true",
        "PUBLIC_URL": public_url,
        "WORKER_POLL_SECONDS": "0.05",
        "WORKER_CONCURRENCY": "4",
        "RETRY_SCHEDULE": "0.2,0.5,1",
        "LOG_LEVEL": "INFO",
        **extra,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )


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
