"""The pure contact mapping, table-driven: Rankr <-> canonical <-> GHL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.integrations.ghl.schemas import GhlContact
from app.integrations.rankr.schemas import RankrContact
from app.sync import mapping
from app.sync.mapping import FieldMaps

MAPS = FieldMaps(custom_fields={"industry": "cf_ind", "score": "cf_score"}, users={"usr_1": "ghlUser1"})
NOW = datetime(2026, 11, 26, tzinfo=UTC)

RANKR = RankrContact.model_validate(
    {
        "contactId": "con_1",
        "accountId": "acct",
        "email": "Ada@Example.com",
        "phone": "+15550100",
        "firstName": " Ada ",
        "lastName": "Lovelace",
        "companyName": "Engines Ltd",
        "website": "https://ada.example",
        "address": {
            "line1": "1 Loop St",
            "city": "London",
            "state": None,
            "postalCode": "N1",
            "country": "GB",
        },
        "tags": ["VIP", "vip", " lead "],
        "customFields": {"industry": "Computing", "score": 5.0, "unmapped": "x"},
        "ownerId": "usr_1",
        "lastModified": "2026-11-26T00:00:00.000Z",
    }
)
GHL = GhlContact.model_validate(
    {
        "id": "ghl1",
        "email": "Ada@Example.com",
        "phone": "+15550100",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Engines Ltd",
        "website": "https://ada.example",
        "address1": "1 Loop St",
        "city": "London",
        "postalCode": "N1",
        "country": "GB",
        "tags": ["lead", "vip"],
        "customFields": [{"id": "cf_ind", "value": "Computing"}, {"id": "cf_score", "value": "5"}],
        "assignedTo": "ghlUser1",
    }
)


def test_the_same_person_maps_to_the_same_canonical_form_from_both_sides() -> None:
    assert mapping.from_rankr(RANKR, MAPS) == mapping.from_ghl(GHL, MAPS)
    assert mapping.fingerprint(mapping.from_rankr(RANKR, MAPS)) == mapping.fingerprint(
        mapping.from_ghl(GHL, MAPS)
    )


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("firstName", "Ada"),
        ("address.line1", "1 Loop St"),
        ("address.state", None),
        ("tags", ["lead", "vip"]),
        ("customFields.industry", "Computing"),
        ("customFields.score", "5"),
        ("ownerId", "usr_1"),
    ],
)
def test_from_rankr(field: str, expected: Any) -> None:
    assert mapping.from_rankr(RANKR, MAPS)[field] == expected


def test_unmapped_custom_fields_and_users_are_not_synced() -> None:
    canonical = mapping.from_rankr(RANKR, MAPS)
    assert "customFields.unmapped" not in canonical
    assert "ownerId" not in mapping.from_rankr(RANKR, FieldMaps())
    stranger = GHL.model_copy(update={"assigned_to": "someone-unmapped"})
    assert "ownerId" not in mapping.from_ghl(stranger, MAPS)
    assert mapping.from_ghl(GHL.model_copy(update={"assigned_to": None}), MAPS)["ownerId"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        (" a ", "a"),
        (True, "true"),
        (5.0, "5"),
        (2.5, "2.5"),
        (["b", "a"], '["b", "a"]'),
    ],
)
def test_text_normalisation(value: Any, expected: str | None) -> None:
    assert mapping.text(value) == expected


def test_changes_compare_empty_values_alike() -> None:
    old = {"email": "a@x", "tags": [], "phone": None}
    assert mapping.changes({"email": "a@x", "tags": [], "phone": None}, old) == {}
    assert mapping.changes({"email": "b@x", "tags": [], "phone": None}, old) == {"email": "b@x"}
    assert mapping.changes({"tags": []}, None) == {}
    assert mapping.changes({"website": "w"}, None) == {"website": "w"}


def test_fills_never_clears() -> None:
    assert mapping.fills({"email": "a@x", "phone": None, "tags": ["t"]}, {"email": "a@x", "phone": "1"}) == {
        "tags": ["t"]
    }


def test_ghl_body() -> None:
    body = mapping.ghl_body(
        {
            "address.city": "Paris",
            "tags": ["a"],
            "customFields.industry": None,
            "ownerId": "usr_1",
            "email": None,
        },
        MAPS,
    )
    assert body == {
        "city": "Paris",
        "tags": ["a"],
        "customFields": [{"id": "cf_ind", "field_value": ""}],
        "assignedTo": "ghlUser1",
        "email": None,
    }


def test_rankr_body_nests_address_and_custom_fields() -> None:
    body = mapping.rankr_body(
        {"address.city": "Paris", "address.line1": None, "customFields.score": "7", "firstName": "Ada"}, MAPS
    )
    assert body == {
        "address": {"city": "Paris", "line1": None},
        "customFields": {"score": "7"},
        "firstName": "Ada",
    }


def test_present_keeps_only_values() -> None:
    assert mapping.present({"a": None, "b": [], "c": "x", "d": ["t"]}) == {"c": "x", "d": ["t"]}


def test_match_keys() -> None:
    assert mapping.match_keys({"email": "Ada@Example.com", "phone": "+1 (555) 0100"}) == (
        "ada@example.com",
        "15550100",
    )
    assert mapping.match_keys({"email": None, "phone": None}) == (None, None)
    # E.164 whatever the writing: national North American numbers get +1, 00 is the "+".
    assert mapping.match_keys({"phone": "(555) 010-0199"}) == (None, "15550100199")
    assert mapping.match_keys({"phone": "+1 555 010 0199"}) == (None, "15550100199")
    assert mapping.match_keys({"phone": "0044 20 7946 0000"}) == (None, "442079460000")


def test_describe_for_the_audit_log() -> None:
    assert mapping.describe({"email": "b@x"}, {"email": "a@x"}) == {"email": {"from": "a@x", "to": "b@x"}}
