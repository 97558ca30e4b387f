"""Four worker processes on one Postgres database, all facing an expired GHL token: one refresh."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.install import credential_rows, install, oauth_control, oauth_state
from tests.support.service import running_service
from tests.support.workers import start_worker


@pytest.mark.postgres
def test_four_worker_processes_facing_an_expired_token_refresh_it_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    with running_service(postgres_url, run_worker_in_process=False, token_encryption_key=key) as service:
        assert install(service).status_code == 200
        generation = credential_rows(service)[0]["generation"]
        assert oauth_control(service, "/expire")["expired"] == 1
        emails = [f"four.{n}.{uuid.uuid4().hex[:6]}@example.com" for n in range(24)]
        for email in emails:
            service.rankr.create(email=email, firstName="Four")
        # Slow answers (the token endpoint's too) widen the window in which the processes meet the
        # expired token while a refresh is in flight.
        service.ghl.control(latency_ms=300)
        mark = service.ghl.mark()
        logs = [tmp_path / f"worker{n}.log" for n in range(4)]
        workers = [start_worker(postgres_url, service.url, log, TOKEN_ENCRYPTION_KEY=key) for log in logs]
        try:
            service.settle(timeout=90)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(timeout=30) for worker in workers]
        assert codes == [0, 0, 0, 0], [log.read_text()[-2000:] for log in logs]

        state = oauth_state(service)
        assert state["refreshes"] == 1, state
        assert state["rejectedRefreshes"] == 0
        [row] = credential_rows(service)
        assert row["generation"] == generation + 1
        assert row["state"] == "ok"
        # Several requests (from several processes) met the expired token; one refresh served them all.
        rejected = [r for r in service.ghl.requests_since(mark) if r["status"] == 401]
        assert len(rejected) >= 2
        refreshed_by = [log for log in logs if "ghl.token_refreshed" in log.read_text()]
        assert len(refreshed_by) == 1
        for log in logs:  # no token or key in the workers' logs
            text = log.read_text()
            assert "sbx_at_" not in text
            assert "sbx_rt_" not in text
            assert key not in text
        for email in emails:
            assert len(service.ghl.by_email(email)) == 1
        assert {event["status"] for event in service.events()} == {"done"}
