"""The clients read what a mapping can name: GHL's custom field definitions and users, Rankr's custom
field keys and owner ids (from its contacts), here against the sandboxes in process."""

from __future__ import annotations

import pytest

from app.connections import repository as connections
from app.integrations.registry import Upstreams
from app.sandbox import keys
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio


async def upstreams(service: InProcessService) -> Upstreams:
    async with service._sessions() as session:
        [connection] = await connections.all_connections(session)
    return service.registry.for_connection(connection)


async def test_ghl_client_reads_custom_field_definitions_and_users(inprocess: InProcessService) -> None:
    fields_path = f"/locations/{keys.GHL_LOCATION_ID}/customFields"
    created = await inprocess.ghl.api("POST", fields_path, json={"name": "Renewal date", "dataType": "DATE"})
    assert created.status_code == 200, created.text
    assert inprocess.sandbox is not None
    inprocess.sandbox.ghl.store.create_user("Grace", "Hopper", "grace@example.com")
    ghl = (await upstreams(inprocess)).ghl
    [definition] = await ghl.list_custom_fields()
    assert (definition.key, definition.name, definition.data_type) == ("renewal_date", "Renewal date", "DATE")
    [user] = await ghl.list_users()
    assert (user.label, user.email) == ("Grace Hopper", "grace@example.com")


async def test_rankr_client_surveys_custom_field_keys_and_owners(inprocess: InProcessService) -> None:
    await inprocess.rankr.create(
        email="a@example.com", customFields={"industry": "Looms", "seats": 4}, ownerId="u1"
    )
    await inprocess.rankr.create(
        email="b@example.com", customFields={"industry": "Mills", "vip": True}, ownerId="u2"
    )
    await inprocess.rankr.create(email="c@example.com")
    survey = await (await upstreams(inprocess)).rankr.survey_contacts(max_contacts=10)
    assert survey.contacts_read == 3
    # Contacts changed at the same instant come in no particular order.
    assert sorted(survey.custom_fields.pop("industry")) == ["Looms", "Mills"]
    assert survey.custom_fields == {"seats": [4], "vip": [True]}
    assert survey.owner_ids == {"u1", "u2"}
