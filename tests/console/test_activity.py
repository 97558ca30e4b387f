"""Activity: a contact found by email, phone or either side's id, with every write for it and its
tasks, masked; revealing one entry shows its values and is itself recorded and logged (without them)."""

from __future__ import annotations

import logging
import re

import pytest

from tests.console.conftest import Browser
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio
PAGE = "/admin/console/activity"


@pytest.fixture
async def contact(console: InProcessService) -> dict[str, str]:
    created = await console.rankr.create(
        email="Ada.Lovelace@example.com", phone="+14155550123", firstName="Ada"
    )
    await console.rankr.api(
        "POST", f"/contacts/{created['contactId']}/tasks", json={"title": "Send the engine notes"}
    )
    await console.settle()
    [ghl] = await console.ghl.by_email("ada.lovelace@example.com")
    return {"rankr": created["contactId"], "ghl": ghl["id"]}


async def test_found_by_email_phone_or_either_id_with_every_write(
    contact: dict[str, str], signed_in: Browser
) -> None:
    for query in ("ada.lovelace@EXAMPLE.com", "(415) 555-0123", contact["rankr"], contact["ghl"]):
        page = (await signed_in.get(PAGE, params={"q": query})).text
        assert contact["rankr"] in page, query
        assert contact["ghl"] in page, query
        assert 'data-kind="contact" data-direction="to_ghl"' in page
        assert 'data-kind="task" data-direction="to_ghl"' in page
        assert "Ada.Lovelace@example.com" not in page
        assert "contact.created" in page


async def test_nothing_found_is_said(signed_in: Browser) -> None:
    page = (await signed_in.get(PAGE, params={"q": "nobody@example.com"})).text
    assert "The service never wrote anything for" in page


async def test_a_reveal_shows_the_values_and_is_recorded_without_them(
    console: InProcessService, contact: dict[str, str], signed_in: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    page = (await signed_in.get(PAGE, params={"q": contact["rankr"]})).text
    entry = re.search(r'data-entry="(\d+)" data-kind="contact"', page)
    assert entry is not None
    with caplog.at_level(logging.INFO, logger="app.console.activity"):
        shown = await signed_in.post(
            f"{PAGE}/reveal", {"q": contact["rankr"], "entry": entry.group(1)}, page=PAGE
        )
    assert shown.status_code == 200
    assert "Ada.Lovelace@example.com" in shown.text
    assert "revealed" in shown.text
    [reveal] = await console.query("SELECT audit_entry_id, revealed_by, contact_id, fields FROM reveals")
    assert reveal["audit_entry_id"] == int(entry.group(1))
    assert reveal["revealed_by"] == "console (admin)"
    assert "email" in reveal["fields"]
    [line] = [r for r in caplog.records if r.getMessage() == "console.reveal"]
    assert "Ada" not in str(line.__dict__)
    again = (await signed_in.get(PAGE, params={"q": contact["rankr"]})).text
    assert "Ada.Lovelace@example.com" not in again
    assert "by console (admin)" in again


async def test_revealing_an_unknown_entry_is_404(signed_in: Browser) -> None:
    answer = await signed_in.post(f"{PAGE}/reveal", {"q": "", "entry": "999999"}, page=PAGE)
    assert answer.status_code == 404
    assert "There is no audit entry 999999." in answer.text
