"""/healthz, /readyz and /status, in process over ASGI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.inprocess import InProcessService, inprocess_service

pytestmark = pytest.mark.anyio


async def test_readyz_reports_an_unmigrated_database(tmp_path: Path) -> None:
    async with inprocess_service(f"sqlite:///{tmp_path / 'empty.db'}") as service:
        assert (await service.http.get(f"{service.url}/healthz")).json() == {"status": "ok"}
        answer = await service.http.get(f"{service.url}/readyz")
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "rankr-ghl-sync migrate" in answer.json()["detail"]


async def test_readyz_and_status_on_a_migrated_database(database_url: str) -> None:
    async with inprocess_service(database_url) as service:  # the start-up verification is done
        await service.ghl.control(rate_max=100)  # the documented budget, which the status reports
        assert (await service.http.get(f"{service.url}/readyz")).json() == {"status": "ready"}
        facts = await service.status()
        assert facts["status"] == "ok"
        [connection] = facts["connections"]
        assert connection["verification"]["verified"] is True
        assert connection["verification"]["locationName"] == "Sandbox sub-account"
        assert connection["events"] == {
            "pending": 0, "processing": 0, "retrying": 0, "done": 0, "skipped": 0, "dead": 0
        }  # fmt: skip
        assert connection["linked"] == {"contacts": 0, "tasks": 0, "notes": 0}
        assert connection["ghlLocationId"]  # details are open in sandbox mode without an admin token
        await service.rankr.create(email="status@example.com")
        await service.settle()
        [connection] = (await service.status())["connections"]
        assert connection["linked"]["contacts"] == 1
        assert connection["lastSyncToGhlAt"] is not None
        assert connection["rateBudget"]["ghl"]["limit"] == 100
        assert connection["rateBudget"]["ghl"]["remaining"] < 100
        assert connection["tokens"]["rankr"]["kind"] == "client-credentials"
        page = await service.http.get(f"{service.url}/status", headers={"accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "rankr-ghl-sync" in page.text


async def test_status_details_need_the_admin_token(behaviour_database_url: str) -> None:
    async with inprocess_service(behaviour_database_url, admin_token="s3cret") as service:
        public = (await service.status())["connections"][0]
        assert "ghlLocationId" not in public
        assert "latestErrors" not in public
        answer = await service.http.get(f"{service.url}/status", headers={"authorization": "Bearer s3cret"})
        assert "ghlLocationId" in answer.json()["connections"][0]
        wrong = await service.http.get(f"{service.url}/status", headers={"authorization": "Bearer nope"})
        assert "ghlLocationId" not in wrong.json()["connections"][0]


async def test_unknown_routes_answer_problem_json(inprocess: InProcessService) -> None:
    answer = await inprocess.http.get(f"{inprocess.url}/nowhere")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
