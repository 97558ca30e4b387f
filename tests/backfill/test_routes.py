"""The backfill's admin routes in process: a dry run reports its decisions and writes nothing; bad
requests and requests without the admin token are refused and start nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.inprocess import InProcessService, inprocess_service
from tests.support.world import World, contacts_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def service_on_each_database(database_url: str) -> AsyncIterator[InProcessService]:
    """The staging of listed contacts is SQL: the dry run is tested on both databases."""
    async with inprocess_service(database_url) as service:
        yield service


@pytest.fixture
def service(inprocess: InProcessService) -> InProcessService:
    return inprocess


async def seed(service: InProcessService, world: World) -> None:
    rankr, ghl = contacts_of(world)
    await service.rankr.seed(rankr)
    await service.ghl.seed(ghl)


async def test_dry_run_reports_and_writes_nothing(service_on_each_database: InProcessService) -> None:
    service = service_on_each_database
    world = World(rankr_only=5, ghl_only=5, by_email=5, by_phone=2, duplicate_groups=1, duplicates_with_ghl=1)
    await seed(service, world)
    rankr_mark, ghl_mark = await service.rankr.mark(), await service.ghl.mark()
    answer = await service.http.post(f"{service.url}/admin/backfill", json={"dryRun": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    actions = body["actions"]
    assert sum(line.startswith("link rankr") for line in actions) == world.by_email + world.by_phone + 1
    assert sum(line.startswith("create in ghl") for line in actions) == world.rankr_only + 1
    assert sum(line.startswith("create in rankr") for line in actions) == world.ghl_only
    assert sum(line.startswith("duplicate rankr") for line in actions) == 2
    # The email differs in case only: the same person, and the newer spelling is kept.
    assert any(
        "(same email); fields to merge: companyName, email, firstName, tags, website" in a for a in actions
    )
    assert await service.rankr.writes_since(rankr_mark) == []
    assert await service.ghl.writes_since(ghl_mark) == []
    assert await service.links() == []
    assert await service.events() == []
    assert await service.query("SELECT id FROM staged_contacts") == []


async def test_backfill_bad_requests_are_refused_as_problems(service: InProcessService) -> None:
    for body, status in (({"connectionId": "x"}, 422), ({"connectionId": 99}, 404), ({"dry": True}, 422)):
        answer = await service.http.post(f"{service.url}/admin/backfill", json=body)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert (
        await service.http.post(f"{service.url}/admin/reconcile", json={"connectionId": 99})
    ).status_code == 404
    assert await service.query("SELECT id FROM sync_jobs") == []


async def test_admin_routes_need_the_token(behaviour_database_url: str) -> None:
    async with inprocess_service(behaviour_database_url, admin_token="s3cret") as service:
        assert (await service.http.post(f"{service.url}/admin/backfill", json={})).status_code == 401
        assert (await service.http.post(f"{service.url}/admin/reconcile", json={})).status_code == 401
        assert await service.query("SELECT id FROM sync_jobs") == []
