"""/healthz, /readyz and /status over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.service import running_service

pytestmark = pytest.mark.e2e


def test_readyz_reports_an_unmigrated_database(tmp_path: Path) -> None:
    with running_service(f"sqlite:///{tmp_path / 'empty.db'}", run_worker_in_process=False) as service:
        assert service.http.get(f"{service.url}/healthz").json() == {"status": "ok"}
        answer = service.http.get(f"{service.url}/readyz")
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "rankr-ghl-sync migrate" in answer.json()["detail"]


def test_readyz_and_status_on_a_migrated_database(database_url: str) -> None:
    with running_service(database_url) as service:
        assert service.http.get(f"{service.url}/readyz").json() == {"status": "ready"}
        facts = service.status()
        [connection] = facts["connections"]
        assert facts["status"] == "ok"
        assert connection["events"] == {
            "pending": 0, "processing": 0, "retrying": 0, "done": 0, "skipped": 0, "dead": 0
        }  # fmt: skip
        assert connection["linked"] == {"contacts": 0, "tasks": 0, "notes": 0}
        assert connection["ghlLocationId"]  # details are open in sandbox mode without an admin token
        service.rankr.create(email="status@example.com")
        service.settle()
        [connection] = service.status()["connections"]
        assert connection["linked"]["contacts"] == 1
        assert connection["lastSyncToGhlAt"] is not None
        assert connection["rateBudget"]["ghl"]["limit"] == 100
        assert connection["rateBudget"]["ghl"]["remaining"] < 100
        assert connection["tokens"]["rankr"]["kind"] == "client-credentials"
        page = service.http.get(f"{service.url}/status", headers={"accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "rankr-ghl-sync" in page.text


def test_status_details_need_the_admin_token(sqlite_url: str) -> None:
    with running_service(sqlite_url, admin_token="s3cret") as service:
        public = service.status()["connections"][0]
        assert "ghlLocationId" not in public
        assert "latestErrors" not in public
        answer = httpx.get(f"{service.url}/status", headers={"authorization": "Bearer s3cret"})
        assert "ghlLocationId" in answer.json()["connections"][0]
        wrong = httpx.get(f"{service.url}/status", headers={"authorization": "Bearer nope"})
        assert "ghlLocationId" not in wrong.json()["connections"][0]


def test_unknown_routes_answer_problem_json(sqlite_url: str) -> None:
    with running_service(sqlite_url) as service:
        answer = service.http.get(f"{service.url}/nowhere")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")
