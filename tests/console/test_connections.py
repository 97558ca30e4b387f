"""The connections page: each connection's state, adding one with a Private Integration token (it is
verified at once), the OAuth install button, verify, disable, enable and remove with its
consequences spelled out first."""

from __future__ import annotations

import pytest

from app.sandbox import keys
from tests.console.conftest import Browser
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio


async def test_the_list_shows_each_connections_state(console: InProcessService, signed_in: Browser) -> None:
    page = (await signed_in.get("/admin/console/")).text
    assert 'data-connection="1"' in page
    assert keys.RANKR_ACCOUNT_ID in page
    assert keys.GHL_LOCATION_ID in page
    assert "verified" in page
    detail = await signed_in.get("/admin/console/connections/1")
    assert detail.status_code == 200
    for shown in ("Backlog", "Dead events", "GHL token", "0 pending, 0 retrying"):
        assert shown in detail.text


async def test_a_connection_added_with_a_private_token_is_verified_at_once(
    console: InProcessService, signed_in: Browser
) -> None:
    removed = await signed_in.post("/admin/console/connections/1/remove")
    assert removed.headers["location"] == "/admin/console/?msg=Connection+1+removed."
    assert await console.query("SELECT id FROM connections") == []

    added = await signed_in.post(
        "/admin/console/connections",
        {
            "ghlLocationId": keys.GHL_LOCATION_ID,
            "ghlToken": keys.GHL_PRIVATE_TOKEN,
            "rankrAccountId": keys.RANKR_ACCOUNT_ID,
        },
    )
    assert added.status_code == 303
    [row] = await console.query("SELECT id, status FROM connections")
    assert added.headers["location"].startswith(
        f"/admin/console/connections/{row['id']}?msg=Connection+added."
    )
    page = await signed_in.get(added.headers["location"])
    assert "verified" in page.text
    assert keys.GHL_PRIVATE_TOKEN not in page.text


async def test_a_form_missing_a_field_says_what_is_needed(signed_in: Browser) -> None:
    answer = await signed_in.post(
        "/admin/console/connections", {"ghlLocationId": "loc", "rankrAccountId": ""}
    )
    assert answer.status_code == 303
    shown = await signed_in.get(answer.headers["location"])
    assert "A connection needs the GHL location id, its token and the Rankr account id." in shown.text


async def test_disable_and_enable(console: InProcessService, signed_in: Browser) -> None:
    page = "/admin/console/connections/1"
    await signed_in.post(f"{page}/disable", page=page)
    [row] = await console.query("SELECT status FROM connections")
    assert row["status"] == "disabled"
    assert 'id="enable"' in (await signed_in.get(page)).text
    await signed_in.post(f"{page}/enable", page=page)
    [row] = await console.query("SELECT status FROM connections")
    assert row["status"] == "active"


async def test_remove_spells_out_the_consequences_first(
    console: InProcessService, signed_in: Browser
) -> None:
    confirm = await signed_in.get("/admin/console/connections/1/remove")
    for consequence in (
        "deletes its stored GHL credentials",
        "forgets its 0 contact",
        "deletes nothing in Rankr",
    ):
        assert consequence in confirm.text
    assert len(await console.query("SELECT id FROM connections")) == 1


async def test_verify_now_tells_the_outcome(signed_in: Browser) -> None:
    answer = await signed_in.post("/admin/console/connections/1/verify")
    assert answer.status_code == 303
    assert "msg=verified" in answer.headers["location"].lower()


async def test_an_unknown_connection_is_said_so(signed_in: Browser) -> None:
    answer = await signed_in.get("/admin/console/connections/99")
    assert answer.headers["location"] == "/admin/console/?error=There+is+no+connection+99."
    assert (await signed_in.get("/admin/console/connections/x")).status_code == 422


async def test_the_oauth_button_leads_to_the_install(console: InProcessService, signed_in: Browser) -> None:
    page = await signed_in.get("/admin/console/connections/install", params={"rankrAccountId": "acct_9"})
    assert page.status_code == 200
    assert 'href="/oauth/ghl/install?rankrAccountId=acct_9"' in page.text
    started = await signed_in.get("/oauth/ghl/install", params={"rankrAccountId": "acct_9"})
    assert started.status_code == 302
