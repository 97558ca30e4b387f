"""Structured logs: context ids on every line of a job, and no personal data or secrets in any line."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app.kit.logs import configure_logging, log_context
from app.kit.masking import mask_field, scrub
from app.sandbox import keys
from tests.support.databases import psql
from tests.support.inprocess import inprocess_service
from tests.support.service import running_service, wait_for


@contextmanager
def captured(fmt: str) -> Iterator[io.StringIO]:
    """The service's own log set-up (DEBUG, so everything is written), into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", fmt, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_scrub_masks_what_looks_personal_or_secret_and_keeps_ids_and_dates() -> None:
    text = (
        "GET /contacts/search/duplicate?email=Jane.Doe%40example.com&phone=%2B15551234567 "
        "Authorization: Bearer eyJhbGciOi.abc whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "
        "client_secret=hunter2&x=1 call +1 (555) 123-4567 on 2026-11-26 about con_8f2a91 jane@example.org"
    )
    masked = scrub(text)
    for secret in ("Jane.Doe", "5551234567", "eyJhbGciOi", "MfKQ9r8", "hunter2", "123-4567", "jane@"):
        assert secret not in masked
    for kept in ("con_8f2a91", "2026-11-26", "/contacts/search/duplicate", "x=1"):
        assert kept in masked


def test_fields_are_masked_by_what_they_hold() -> None:
    assert mask_field("email", "jane.doe@example.com") == "j***@***.com"
    assert mask_field("phone", "+1 555 123 4567") == "***67"
    assert mask_field("firstName", "Jane") == "J***"
    assert mask_field("address", {"line1": "1 Main St", "city": "Springfield"}) == {
        "line1": "1***",
        "city": "S***",
    }
    assert mask_field("tags", ["vip"]) == ["vip"]
    assert mask_field("lastName", None) is None


def test_console_lines_carry_the_context_ids_and_mask_extras() -> None:
    with captured("console") as buffer:
        with log_context(connection=3, event=41, record="con_1"):
            logging.getLogger("app.test").warning("sync.thing", extra={"email": "a.b@example.com", "n": 2})
        logging.getLogger("app.test").warning("outside")
    first, second = buffer.getvalue().splitlines()
    assert "sync.thing connection=3 event=41 record=con_1 email=a***@***.com n=2" in first
    assert second.endswith("outside")


@pytest.mark.anyio
async def test_a_full_run_logs_ids_on_every_job_line_and_no_personal_data_or_secret(
    behaviour_database_url: str,
) -> None:
    unique = uuid.uuid4().hex[:6]
    person = {
        "email": f"zephyrine.quill.{unique}@example.com",
        "phone": "+14155550187",
        "firstName": f"Zephyrine{unique}",
        "lastName": f"Quillfeather{unique}",
        "companyName": f"Obscura Works {unique}",
    }
    with captured("json") as buffer:
        async with inprocess_service(behaviour_database_url, log_level="DEBUG") as service:
            created = await service.rankr.create(**person)
            await service.settle()
            [ghl] = await service.ghl.by_email(person["email"])
            await service.ghl.update(ghl["id"], lastName=f"Quillwright{unique}", phone="+14155550188")
            await service.settle()
            await service.ghl.control(error_rate=1.0, error_status=422)  # a refusal, logged with its reason
            await service.rankr.update(created["contactId"], firstName=f"Zeph{unique}")
            await service.settle()
            assert any(e["status"] == "dead" for e in await service.events())
            await service.ghl.control(error_rate=0.0)
            await service.rankr.delete(created["contactId"])
            await service.settle()
            assert await service.ghl.get(ghl["id"]) is None
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    text = buffer.getvalue()
    forbidden = [
        *person.values(),
        f"Quillwright{unique}",
        f"Zeph{unique}",
        "4155550187",
        "4155550188",
        "zephyrine.quill",
        keys.GHL_PRIVATE_TOKEN,
        keys.RANKR_CLIENT_SECRET,
        keys.RANKR_WEBHOOK_SECRET.removeprefix("whsec_"),
    ]
    for value in forbidden:
        assert value not in text, f"{value!r} was logged"
    assert "Quillfeather" not in text
    jobs = [line for line in lines if line["logger"] in ("app.worker", "app.sync.base") and "event" in line]
    assert jobs, "the worker logged nothing"
    applied = [line for line in lines if line["message"] == "sync.event_applied"]
    assert len(applied) >= 3
    for line in applied:
        assert {"event", "record", "connection", "source"} <= line.keys()
    dead = [line for line in lines if line["message"] == "worker.event_dead"]
    assert dead
    assert dead[0]["record"] == created["contactId"]
    assert "ghl 422" in dead[0]["error"]
    assert all({"at", "level", "message", "logger"} <= line.keys() for line in lines)


def test_console_lines_escape_control_and_bidi_characters_from_any_source() -> None:
    with captured("console") as buffer:
        logging.getLogger("app.test").warning("inbox.odd\x00id\u202e", extra={"eventId": "ab\ncd\x1b[2J"})
    [line] = buffer.getvalue().splitlines()
    assert "inbox.odd\\x00id\\u202e" in line
    assert "eventId=ab\\x0acd\\x1b[2J" in line
    assert "\x1b" not in line
    assert "\u202e" not in line


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_statement_the_database_refuses_logs_and_stores_no_synced_field(postgres_url: str) -> None:
    """Every synced field is in the refused statement's parameters; none may reach the log or /status."""
    unique = uuid.uuid4().hex[:6]
    person = {
        "email": f"orla.vantablack.{unique}@example.com",
        "phone": "+14155550199",
        "firstName": f"Orla{unique}",
        "lastName": f"Vantablack{unique}",
        "companyName": f"Umbra Mills {unique}",
        "website": f"https://umbra-{unique}.example.com",
        "address": {
            "line1": f"{unique} Nightjar Lane",
            "city": f"Sablewick{unique}",
            "state": f"Duskshire{unique}",
            "postalCode": f"Z{unique}",
            "country": "NZ",
        },
        "tags": [f"tag-{unique}"],
    }
    schema = postgres_url.rsplit("%3D", 1)[1]
    # The link's email column made too short for this one: the insert that records the pair fails.
    psql(f"ALTER TABLE {schema}.links ALTER COLUMN match_email TYPE varchar(12)")
    with captured("json") as buffer, running_service(postgres_url, log_level="DEBUG") as service:
        service.rankr.create(**person)
        wait_for(lambda: any(e["status"] == "dead" for e in service.events()), what="the refused event")
        facts = service.status()
    text = buffer.getvalue()
    [entry] = facts["connections"]
    [error] = entry["latestErrors"]
    assert error["error"] == (
        "the event cannot be applied: database error StringDataRightTruncationError (SQLSTATE 22001)"
    )
    assert error["attempts"] == 1
    assert any(json.loads(line)["message"] == "worker.event_dead" for line in text.splitlines())
    shown = text + json.dumps(facts)
    values = [v for v in person.values() if isinstance(v, str)]
    values += [v for v in person["address"].values() if v != "NZ"] + [unique + " Nightjar", "4155550199"]
    for value in values:
        assert value not in shown, f"{value!r} was logged or shown"
