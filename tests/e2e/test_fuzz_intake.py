"""Property: a correctly signed webhook body, however hostile, never gets a 500, and every event the
intake accepts can be applied by the worker without crashing on its own data.

Bodies are generated near the documented shapes (Rankr ``WebhookEvent`` in rankr/openapi.yaml, the
GHL examples in ghl/webhooks/examples) with hostile values: NUL, lone surrogates, huge and
non-finite numbers, deep nesting, long strings, odd timestamps, ids with ``/ .. ? # %``. Each is
signed with the sandboxes' keys, posted in-process, and the worker is run until idle against the
sandboxes (which may refuse the data: that is the upstream's answer, not a crash). An accepted
event must never end with "the event cannot be applied" nor make the worker log
``worker.event_crashed``. Seeded (derandomized) and bounded, on SQLite and Postgres.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.inbox.models import EventStatus, WebhookEvent
from app.kit.signatures import WebhookSecret, load_private_key, sign_ghl_ed25519, sign_standard
from app.main import create_app
from app.sandbox import keys
from app.sync.engine import SyncEngine
from app.worker import Worker
from tests.support.databases import KINDS, empty_database
from tests.support.production import production_settings, upstream_transport

EXAMPLES = 100
RANKR_SECRET = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
GHL_KEY = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)

# --- hostile values -------------------------------------------------------------------------------

ODD_IDS = ["a/b", "..", ".", "a?b=1", "a#b", "%2F", "%", "../../admin", "a b", "", " ", "\\", "ü", "id\n"]
NOW = "now"
WEBHOOK_ID = "webhook-id"
ODD_TIMES = [
    "2026-11-26T08:00:00Z",
    "2026-11-26T08:00:00.123456789Z",
    "2026-11-26T08:00:00",
    "2026-02-30T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "+275760-09-13T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "not a date",
    "",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\U0001f600", "x" * 70_000]),
)
hostile_strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "\ud800", "a" * 300 + "@example.com", "x" * 5000, "+1 " + "5" * 40]),
)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, ``odd`` otherwise."""
    return st.one_of(usual, usual, usual, odd)


texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
ids = mostly(st.text(alphabet="abcdefXYZ0123_-", min_size=1, max_size=12), st.sampled_from(ODD_IDS))
times = mostly(
    st.sampled_from(ODD_TIMES[:2]), st.one_of(st.sampled_from(ODD_TIMES), st.integers(), st.none())
)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


values = st.one_of(hostile_strings, scalars, nested, st.integers(min_value=1, max_value=60).map(deep))


def maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of ``fields`` with values of their documented kinds, and then, in half the bodies,
    one to three of them (or of the envelope's) replaced by hostile values: a body with every field
    hostile is refused at the intake and never reaches the worker."""
    usual = st.fixed_dictionaries({}, optional=fields)
    names = st.sampled_from([*fields, "type", "timestamp", "accountId", "locationId", "id", "webhookId"])
    odd = st.one_of(st.just({}), st.dictionaries(names, values, min_size=1, max_size=3))
    return st.tuples(usual, odd).map(lambda parts: {**parts[0], **parts[1]})


RANKR_DATA = {
    "contactId": ids,
    "taskId": ids,
    "noteId": ids,
    "lastModified": times,
    "createdAt": times,
    "dueDate": times,
    "email": texts,
    "phone": texts,
    "firstName": texts,
    "lastName": texts,
    "companyName": texts,
    "website": texts,
    "address": st.fixed_dictionaries({}, optional={"line1": texts, "city": hostile_strings}),
    "tags": st.lists(texts, max_size=4),
    "customFields": st.dictionaries(st.text(max_size=10), scalars, max_size=4),
    "ownerId": ids,
    "title": texts,
    "description": texts,
    "status": st.sampled_from(["open", "completed", "OPEN", ""]),
    "assigneeId": ids,
    "body": texts,
    "authorId": ids,
}
RANKR_TYPES = [
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "task.created",
    "task.updated",
    "task.completed",
    "task.deleted",
    "note.created",
    "note.updated",
    "note.deleted",
]
rankr_bodies = st.fixed_dictionaries(
    {
        "type": st.sampled_from(RANKR_TYPES),
        "timestamp": st.sampled_from(ODD_TIMES[:2]),
        "accountId": st.just(keys.RANKR_ACCOUNT_ID),
        "data": st.fixed_dictionaries(
            {"contactId": ids, "lastModified": st.sampled_from(ODD_TIMES[:2])}, optional={}
        ).flatmap(lambda base: maybe(RANKR_DATA).map(lambda extra: {**base, **extra})),
    }
)

GHL_FIELDS = {
    "contactId": ids,
    "address1": texts,
    "city": texts,
    "companyName": texts,
    "dateAdded": times,
    "dateOfBirth": times,
    "dnd": st.booleans(),
    "email": texts,
    "name": texts,
    "firstName": texts,
    "lastName": texts,
    "phone": texts,
    "tags": st.lists(texts, max_size=4),
    "website": texts,
    "assignedTo": ids,
    "customFields": st.lists(st.fixed_dictionaries({"id": ids, "value": scalars}), max_size=3),
    "title": texts,
    "body": texts,
    "dueDate": times,
    "completed": st.booleans(),
    "appointment": st.dictionaries(st.text(max_size=8), values, max_size=4),
}
GHL_TYPES = [
    "ContactCreate",
    "ContactUpdate",
    "ContactDelete",
    "ContactTagUpdate",
    "ContactDndUpdate",
    "TaskCreate",
    "TaskComplete",
    "TaskDelete",
    "NoteCreate",
    "NoteUpdate",
    "NoteDelete",
    "AppointmentCreate",
]
ghl_bodies = st.fixed_dictionaries(
    {
        "type": st.sampled_from(GHL_TYPES),
        "locationId": st.just(keys.GHL_LOCATION_ID),
        "id": ids,
        "webhookId": st.just(WEBHOOK_ID),
        # GHL bodies carry their send time (refused outside a 5-minute window) and their delivery's
        # id: both are filled in as the body is sent.
        "timestamp": st.just(NOW),
    }
).flatmap(lambda base: maybe(GHL_FIELDS).map(lambda extra: {**base, **extra}))

# Lone surrogates cannot be UTF-8 encoded: sent as JSON escapes (ASCII) or as the raw invalid bytes.
encodings = st.sampled_from(["ascii", "utf-8", "surrogatepass"])


def encode(body: dict[str, Any], encoding: str) -> bytes:
    if encoding == "ascii":
        return json.dumps(body).encode()
    return json.dumps(body, ensure_ascii=False).encode(
        "utf-8", "surrogatepass" if encoding != "utf-8" else "strict"
    )


deliveries = st.lists(
    st.one_of(
        st.tuples(st.just("rankr"), rankr_bodies, encodings),
        st.tuples(st.just("ghl"), ghl_bodies, encodings),
    ),
    min_size=1,
    max_size=4,
)

# --- the service ---------------------------------------------------------------------------------


class CrashLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "worker.event_crashed":
            self.crashes.append(str(getattr(record, "error", "")))


@dataclass
class Intake:
    portal: BlockingPortal
    app: FastAPI
    http: httpx.AsyncClient
    worker: Worker
    crash_log: CrashLog
    sent: int = 0
    # Accepted events the worker finished (applied, or found nothing to do): the run is only worth
    # something if bodies get that far.
    finished: int = 0

    def post(self, source: str, body: bytes) -> tuple[httpx.Response, str]:
        """Post ``body`` signed as ``source`` signs; the answer and the event id it goes by."""
        self.sent += 1
        if source == "rankr":
            msg_id = f"fuzz_{self.sent}"
            stamp = int(time.time())
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign_standard(RANKR_SECRET, msg_id, stamp, body),
            }
        else:
            body = body.replace(f'"{NOW}"'.encode(), f'"{datetime.now(UTC).isoformat()}"'.encode())
            msg_id = f"wh_fuzz_{self.sent}"
            body = body.replace(f'"{WEBHOOK_ID}"'.encode(), f'"{msg_id}"'.encode())
            headers = {"x-ghl-signature": sign_ghl_ed25519(GHL_KEY, body)}  # type: ignore[arg-type]
        answer = self.portal.call(
            lambda: self.http.post(f"/webhooks/{source}", content=body, headers=headers)
        )
        return answer, msg_id

    def apply_all(self) -> list[WebhookEvent]:
        async def run() -> list[WebhookEvent]:
            await self.worker.run_until_idle()
            async with self.app.state.sessions() as session:
                return list((await session.execute(select(WebhookEvent))).scalars())

        return self.portal.call(run)


@pytest.fixture(scope="module", params=KINDS)
def intake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    """The service (worker off) and a worker of its own, one per database for every example."""
    database_url = empty_database(request, tmp_path_factory.mktemp("intake"))
    settings = production_settings(database_url, retry_schedule="3600")
    app = create_app(settings, upstream_transport=upstream_transport())
    crash_log = CrashLog()
    logging.getLogger("app.worker").addHandler(crash_log)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        state = app.state
        worker = Worker(
            state.sessions,
            SyncEngine(state.sessions, settings, state.registry.for_connection, clock=state.clock),
            settings,
            state.registry,
            clock=state.clock,
            listen=False,
        )
        transport = httpx.ASGITransport(app=app)
        http = portal.call(lambda: _client(transport))
        intake = Intake(portal, app, http, worker, crash_log)
        try:
            yield intake
        finally:
            portal.call(http.aclose)
    logging.getLogger("app.worker").removeHandler(crash_log)
    assert intake.finished >= 10, f"only {intake.finished} accepted events were applied: too few to tell"


async def _client(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, base_url="http://service.test")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batch=deliveries)
def test_signed_hostile_bodies_never_crash_the_intake_or_the_worker(
    intake: Intake, batch: list[tuple[str, dict[str, Any], str]]
) -> None:
    accepted = []
    for source, body, encoding in batch:
        try:
            raw = encode(body, encoding)
        except UnicodeEncodeError:
            raw = encode(body, "ascii")
        answer, _ = intake.post(source, raw)
        assert answer.status_code != 500, answer.text
        assert answer.status_code in (200, 202, 400, 401, 413, 422), (answer.status_code, answer.text)
        if answer.status_code == 202:
            accepted.append(answer.json()["eventId"])
    events = intake.apply_all()
    by_id = {event.event_id: event for event in events}
    for event_id in accepted:
        event = by_id[event_id]
        intake.finished += event.status == EventStatus.DONE
        assert not (event.last_error or "").startswith("the event cannot be applied"), (
            event.type,
            event.last_error,
        )
    assert intake.crash_log.crashes == []
