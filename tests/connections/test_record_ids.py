"""Record ids from outside that no key column can hold are refused with 422, never sent to the database.

Both drivers raise OverflowError for a number past the column's size (Postgres INTEGER is 32 bits),
which would surface as a 500 (tests/e2e/test_fuzz_api.py looks for such answers). On both databases.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.db import MAX_BIGINT_KEY, MAX_INTEGER_KEY
from tests.connections.conftest import ADMIN
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio

TOO_LARGE = [MAX_INTEGER_KEY + 1, 2**63, 10**30]


@pytest.mark.parametrize("number", TOO_LARGE)
async def test_a_connection_id_past_the_column_is_refused_on_every_route(
    service: InProcessService, number: int
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = [
        (f"/admin/connections/{number}/verify", {}),
        ("/admin/replay", {"json": {"connection": number}}),
        ("/admin/backfill", {"json": {"connectionId": number, "dryRun": True}}),
        ("/admin/reconcile", {"json": {"connectionId": number}}),
        ("/status/replay", {"data": {"token": "s3cret", "connection": str(number)}}),
    ]
    for path, body in sent:
        answer = await service.http.post(path, headers=ADMIN, **body)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert str(MAX_INTEGER_KEY) in answer.json()["detail"], answer.json()


async def test_an_event_row_id_past_the_column_is_refused_on_the_status_page(
    service: InProcessService,
) -> None:
    answer = await service.http.post(
        "/status/replay", headers=ADMIN, data={"token": "s3cret", "event": str(MAX_BIGINT_KEY + 1)}
    )
    assert answer.status_code == 422, answer.text
    assert str(MAX_BIGINT_KEY) in answer.json()["detail"]


@pytest.mark.parametrize("event", ["9" * 30, "\u00b2", "\u0661\u0662", "0", "-1"])
async def test_replay_by_an_event_id_no_row_can_have_names_nothing(
    service: InProcessService, event: str
) -> None:
    """/status shows the sender's webhook ids, so any text is a valid name; one that is not a row id
    (too large, or digits that are not ASCII) is looked up only as a webhook id."""
    answer = await service.http.post("/admin/replay", headers=ADMIN, json={"events": [event]})
    assert (answer.status_code, answer.json()) == (200, {"replayed": 0})
