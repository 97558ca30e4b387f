"""The intake refuses, with 422 naming the field, what either database or the sync could not hold.

In-process: the app over ``httpx.ASGITransport``, its worker off. Each refusal is checked on both
databases, since Postgres is where such bodies used to fail (jsonb refuses NUL, UTF-8 refuses lone
surrogates, columns have lengths); nothing is stored for a refused body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.errors import ProblemError
from app.inbox.intake import MAX_DEPTH, check_storable
from app.inbox.models import WebhookEvent
from app.kit.signatures import WebhookSecret, load_private_key, sign_ghl_ed25519, sign_standard
from app.sandbox import keys
from tests.support.asgi import app_client
from tests.support.databases import psql

pytestmark = pytest.mark.anyio


def now() -> datetime:
    """Signing time: read per request, since the intake refuses stamps older than five minutes."""
    return datetime.now(UTC)


class Intake:
    def __init__(self, http: httpx.AsyncClient, app: Any) -> None:
        self.http = http
        self.app = app
        self._count = 0

    async def rankr(self, data: dict[str, Any], **top: Any) -> httpx.Response:
        self._count += 1
        payload = {
            "type": "contact.updated",
            "timestamp": now().isoformat(),
            "accountId": keys.RANKR_ACCOUNT_ID,
            "data": {"contactId": "con_1", "lastModified": "2026-11-26T08:00:00.000Z", **data},
            **top,
        }
        return await self.rankr_raw(json.dumps(payload).encode())

    async def rankr_raw(self, body: bytes) -> httpx.Response:
        self._count += 1
        msg_id = f"msg_{self._count}"
        stamp = int(now().timestamp())
        signature = sign_standard(WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET), msg_id, stamp, body)
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
        return await self.http.post("/webhooks/rankr", content=body, headers=headers)

    async def ghl(self, fields: dict[str, Any]) -> httpx.Response:
        self._count += 1
        payload = {
            "type": "ContactUpdate",
            "locationId": keys.GHL_LOCATION_ID,
            "id": "ghl_1",
            "webhookId": f"wh_{self._count}",
            "timestamp": now().isoformat(),
            **fields,
        }
        return await self.ghl_raw(json.dumps(payload).encode())

    async def ghl_raw(self, body: bytes) -> httpx.Response:
        signature = sign_ghl_ed25519(load_private_key(keys.GHL_ED25519_PRIVATE_PEM), body)  # type: ignore[arg-type]
        return await self.http.post("/webhooks/ghl", content=body, headers={"x-ghl-signature": signature})

    async def stored(self) -> int:
        async with self.app.state.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(WebhookEvent))).scalar_one())


@pytest.fixture
async def intake(database_url: str) -> AsyncIterator[Intake]:
    async with app_client(database_url, sandbox=True) as (app, http):
        yield Intake(http, app)


def assert_refused(answer: httpx.Response, words: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert words in answer.json()["detail"], answer.json()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


RANKR_REFUSALS = [
    ({"firstName": "Ada\u0000"}, "data.firstName: contains a NUL character"),
    ({"lastName": "\ud800"}, "data.lastName: contains an unpaired UTF-16 surrogate"),
    ({"customFields": {"score": float("inf")}}, "data.customFields.score: is not a finite number"),
    ({"customFields": {"score": float("nan")}}, "data.customFields.score: is not a finite number"),
    ({"customFields": {"bad\u0000key": "x"}}, "data.customFields: a key contains a NUL character"),
    ({"contactId": "c" * 256}, "contactId"),
    ({"contactId": ".."}, "data.contactId: Value error, cannot be a record id"),
    ({"email": "a" * 310 + "@example.com"}, "data.email"),
    ({"phone": "+1 " + "5" * 40}, "data.phone"),
    ({"lastModified": "9999-12-31T23:59:59-01:00"}, "data.lastModified"),
    ({"lastModified": "0001-01-01T00:00:00+01:00"}, "data.lastModified"),
    ({"dueDate": "0001-01-01T00:00:00+01:00"}, "data.dueDate"),
]


@pytest.mark.parametrize(("data", "words"), RANKR_REFUSALS)
async def test_rankr_bodies_no_database_can_hold_are_refused(
    intake: Intake, data: dict[str, Any], words: str
) -> None:
    assert_refused(await intake.rankr(data), words)
    assert await intake.stored() == 0


GHL_REFUSALS = [
    ({"firstName": "Ada\u0000"}, "firstName: contains a NUL character"),
    ({"city": "\udfff"}, "city: contains an unpaired UTF-16 surrogate"),
    ({"customFields": [{"id": "f1", "value": float("-inf")}]}, "customFields.0.value: is not a finite"),
    ({"email": "b" * 320 + "@x.io"}, "email"),
    ({"id": "g" * 256}, "id"),
    ({"id": "."}, "id: Value error, cannot be a record id"),
    ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp"),
]


@pytest.mark.parametrize(("fields", "words"), GHL_REFUSALS)
async def test_ghl_bodies_no_database_can_hold_are_refused(
    intake: Intake, fields: dict[str, Any], words: str
) -> None:
    assert_refused(await intake.ghl(fields), words)
    assert await intake.stored() == 0


async def test_bodies_nested_past_the_limit_are_refused_however_deep(intake: Intake) -> None:
    for depth in (MAX_DEPTH + 1, 10_000):
        body = b'{"type": "contact.updated", "x": ' + nested(depth).encode() + b"}"
        assert_refused(await intake.rankr_raw(body), "nests deeper than")
        assert_refused(await intake.ghl_raw(body), "nests deeper than")
    assert await intake.stored() == 0


async def test_a_signed_body_with_infinity_literals_is_refused(intake: Intake) -> None:
    body = json.dumps(
        {
            "type": "contact.updated",
            "timestamp": now().isoformat(),
            "accountId": keys.RANKR_ACCOUNT_ID,
            "data": {"contactId": "c1", "lastModified": "2026-11-26T08:00:00Z", "n": 1},
        }
    ).replace('"n": 1', '"n": 1e999')
    assert_refused(await intake.rankr_raw(body.encode()), "data.n: is not a finite number")


async def test_what_the_limits_allow_is_stored(intake: Intake) -> None:
    accepted = await intake.rankr(
        {
            "firstName": "Zoë \U0001f600",
            "email": "a" * 300 + "@example.com",
            "phone": "+44 20 7946 0958",
            "customFields": {"score": 1e300, "deep": nested(MAX_DEPTH - 3)},
            "dueDate": "2199-12-31T23:59:59Z",
        }
    )
    assert accepted.status_code == 202, accepted.text
    assert (await intake.ghl({"firstName": "Zoë", "phone": "+1 555 0100"})).status_code == 202
    assert await intake.stored() == 2


@pytest.mark.postgres
async def test_a_row_the_database_refuses_answers_like_an_outage_and_logs_one_line(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not an outage, but the sender must deliver again: 503 for Rankr, 429 for GHL (it re-sends
    only then), one log line without the driver's text, and nothing stored."""
    schema = postgres_url.rsplit("%3D", 1)[1]
    psql(f"ALTER TABLE {schema}.webhook_events ADD CONSTRAINT no_boom CHECK (event_id NOT LIKE 'wh_%')")
    try:
        async with app_client(postgres_url, sandbox=True) as (app, http):
            intake = Intake(http, app)
            with caplog.at_level(logging.INFO, logger="app.inbox.intake"):
                answer = await intake.ghl({"firstName": "secret-name"})
            assert answer.status_code == 429, answer.text
            assert answer.headers["retry-after"]
            assert await intake.stored() == 0
    finally:
        psql(f"ALTER TABLE {schema}.webhook_events DROP CONSTRAINT no_boom")
    [record] = [r for r in caplog.records if r.name == "app.inbox.intake"]
    assert record.getMessage() == "inbox.store_failed"
    assert "CheckViolation" in record.error  # type: ignore[attr-defined]
    assert "secret-name" not in record.error  # type: ignore[attr-defined]
    assert record.exc_info is None


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"a": {"b": ["ok", "\u0000"]}}, "a.b.1: contains a NUL character"),
        ({"a": [1.5, float("nan")]}, "a.1: is not a finite number"),
        ({"\ud83d": 1}, "body: a key contains an unpaired UTF-16 surrogate"),
    ],
)
def test_check_storable_names_the_first_bad_value(payload: dict[str, Any], words: str) -> None:
    with pytest.raises(ProblemError) as refused:
        check_storable(payload)
    assert refused.value.status == 422
    assert words in refused.value.detail


def test_check_storable_accepts_what_json_and_utf8_can_hold() -> None:
    check_storable({"emoji": "\U0001f600", "n": [1, 2.5, -0.0, 10**30], "s": "tab\tnewline\n", "e": {}})
