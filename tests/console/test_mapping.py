"""Field mapping per connection: custom fields discovered on both sides (never typed), a mapping
that cannot hold refused with the reason, one that can saved as a settings version the sync applies
at once; users and standard field directions likewise."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import pytest

from app.automation.config import SyncConfig, sync_config
from app.connections import repository as connections
from app.db import unit_of_work
from app.kit.clock import utcnow
from app.sandbox import keys
from app.settings_store import service as settings_store
from tests.console.conftest import Browser
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio
PAGE = "/admin/console/connections/1/mapping"


async def ghl_field(service: InProcessService, name: str, data_type: str) -> str:
    path = f"/locations/{keys.GHL_LOCATION_ID}/customFields"
    answer = await service.ghl.api("POST", path, json={"name": name, "dataType": data_type})
    return str(answer.json()["customField"]["id"])


async def post(browser: Browser, path: str, form: dict[str, str]) -> str:
    """Post a form of the mapping page; the notice or error the next page shows."""
    answer = await browser.post(f"{PAGE}{path}", form, page=PAGE)
    assert answer.status_code == 303, answer.text
    return unquote_plus(answer.headers["location"])


@pytest.fixture
async def fields(console: InProcessService) -> dict[str, Any]:
    industry = await ghl_field(console, "Industry", "TEXT")
    renewal = await ghl_field(console, "Renewal date", "DATE")
    assert console.sandbox is not None
    user = console.sandbox.ghl.store.create_user("Grace", "Hopper", "grace@example.com")
    await console.rankr.create(email="a@example.com", customFields={"industry": "Looms"}, ownerId="owner_1")
    return {"industry": industry, "renewal": renewal, "user": user.id}


async def test_both_sides_fields_are_listed_with_their_types(
    fields: dict[str, Any], signed_in: Browser
) -> None:
    page = (await signed_in.get(PAGE)).text
    assert 'data-key="industry"' in page
    assert f'data-field-id="{fields["industry"]}"' in page
    assert f'data-field-id="{fields["renewal"]}"' in page
    for shown in ("DATE", "TEXT", "e.g. Looms", "owner_1", "Grace Hopper", "mapping.js"):
        assert shown in page


async def test_a_mapping_that_cannot_hold_is_refused_with_the_reason(
    console: InProcessService, fields: dict[str, Any], signed_in: Browser
) -> None:
    told = await post(signed_in, "/custom-fields", {"rankrKey": "industry", "ghlFieldId": fields["renewal"]})
    assert "error=Not mapped: Rankr 'industry' holds 'Looms', not a date (YYYY-MM-DD)" in told
    assert sync_config(console.app.state.settings).mapping.custom_fields == {}
    unknown = await post(signed_in, "/custom-fields", {"rankrKey": "typed", "ghlFieldId": fields["industry"]})
    assert "No Rankr contact carries a custom field 'typed'" in unknown


async def test_a_mapping_saved_in_the_console_syncs_the_next_contact(
    console: InProcessService, fields: dict[str, Any], signed_in: Browser
) -> None:
    told = await post(signed_in, "/custom-fields", {"rankrKey": "industry", "ghlFieldId": fields["industry"]})
    assert "msg=Rankr 'industry' now syncs with GHL 'Industry'." in told
    [version] = await console.query("SELECT changed_by, summary FROM settings_versions")
    assert version == {
        "changed_by": "console (admin)",
        "summary": f"mapping.locations.{keys.GHL_LOCATION_ID}.customFields.industry",
    }
    mapping = sync_config(console.app.state.settings).mapping
    assert mapping.locations[keys.GHL_LOCATION_ID].custom_fields == {"industry": fields["industry"]}
    assert mapping.custom_fields == {}
    await console.rankr.create(email="b@example.com", customFields={"industry": "Mills"})
    await console.settle()
    [contact] = await console.ghl.by_email("b@example.com")
    assert contact["customFields"] == [{"id": fields["industry"], "value": "Mills"}]
    page = (await signed_in.get(PAGE)).text
    assert "← Rankr industry" in page

    again = await post(signed_in, "/custom-fields/remove", {"rankrKey": "industry"})
    assert "no longer mapped" in again
    assert sync_config(console.app.state.settings).mapping.custom_fields == {}


async def test_users_and_directions_are_saved(
    console: InProcessService, fields: dict[str, Any], signed_in: Browser
) -> None:
    await post(signed_in, "/users", {"user:owner_1": fields["user"]})
    await post(signed_in, "/fields", {"field:tags": "rankr", "field:email": "both", "field:website": "none"})
    mapping = sync_config(console.app.state.settings).mapping
    assert mapping.users == {"owner_1": fields["user"]}
    assert mapping.fields == {"tags": "rankr", "website": "none"}
    wrong = await post(signed_in, "/fields", {"field:tags": "sideways"})
    assert "error=Unknown direction for tags." in wrong


async def test_when_ghl_cannot_be_read_the_page_says_so_and_maps_nothing(
    console: InProcessService, fields: dict[str, Any], signed_in: Browser
) -> None:
    await console.ghl.control(error_rate=1.0, error_status=403)
    page = (await signed_in.get(PAGE)).text
    assert "GHL&#39;s custom fields and users could not be read: ghl 403" in page
    assert "locations/customFields.readonly and users.readonly" in page
    told = await post(signed_in, "/custom-fields", {"rankrKey": "industry", "ghlFieldId": fields["industry"]})
    assert "error=GHL's custom fields and users could not be read" in told
    assert sync_config(console.app.state.settings).mapping.custom_fields == {}


async def test_a_token_without_the_mapping_scopes_gets_the_scopes_named(
    console: InProcessService, signed_in: Browser
) -> None:
    sync_only = ["contacts.readonly", "contacts.write", "locations/tasks.readonly", "locations.readonly"]
    await console.ghl.sandbox_post("/oauth", private_token_scopes=sync_only)
    page = (await signed_in.get(PAGE)).text
    assert "GHL&#39;s custom fields and users could not be read: ghl 401" in page
    assert "locations/customFields.readonly and users.readonly" in page


async def test_a_custom_field_mapped_for_another_location_does_not_apply_to_this_one(
    console: InProcessService, fields: dict[str, Any], signed_in: Browser
) -> None:
    sessions, settings = console.app.state.sessions, console.app.state.settings
    async with unit_of_work(sessions) as session:
        await connections.ensure(session, "acct_other", "LocOther", utcnow())
        mapped = {"mapping": {"locations": {"LocOther": {"customFields": {"industry": fields["industry"]}}}}}
        await settings_store.save(session, SyncConfig.model_validate(mapped), "test", utcnow())
    await settings_store.refresh(sessions, settings)

    await console.rankr.create(email="b@example.com", customFields={"industry": "Mills"})
    await console.settle()
    [contact] = await console.ghl.by_email("b@example.com")
    assert contact.get("customFields", []) == []
    assert 'id="no-mappings"' in (await signed_in.get(PAGE)).text
    other = (await signed_in.get("/admin/console/connections/2/mapping")).text
    assert '<tr data-key="industry">' in other

    await post(signed_in, "/custom-fields", {"rankrKey": "industry", "ghlFieldId": fields["industry"]})
    await console.rankr.create(email="c@example.com", customFields={"industry": "Looms"})
    await console.settle()
    [contact] = await console.ghl.by_email("c@example.com")
    assert contact["customFields"] == [{"id": fields["industry"], "value": "Looms"}]
    await post(signed_in, "/custom-fields/remove", {"rankrKey": "industry"})
    located = sync_config(settings).mapping.locations
    assert list(located) == ["LocOther"]  # this connection's entry went, the other's stayed
