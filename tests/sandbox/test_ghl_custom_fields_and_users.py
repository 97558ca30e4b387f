"""The GHL sandbox's custom field definitions and users: served as locations.json and users.json
describe them, created through the API or the sandbox's page, and read by the service's client."""

from __future__ import annotations

from typing import Any

from app.sandbox import keys
from tests.sandbox.conftest import Env
from tests.sandbox.specs import GHL_LOCATIONS, GHL_USERS, ghl_validate_in
from tests.sandbox.test_ui import submit

FIELDS_PATH = f"/locations/{keys.GHL_LOCATION_ID}/customFields"


def listed_fields(env: Env, **params: str) -> list[dict[str, Any]]:
    answer = env.ghl("GET", FIELDS_PATH, params=params)
    assert answer.status_code == 200, answer.text
    ghl_validate_in(GHL_LOCATIONS, answer.json(), "CustomFieldsListSuccessfulResponseDto")
    return list(answer.json()["customFields"])


def test_a_custom_field_created_by_the_api_is_listed_with_its_type(env: Env) -> None:
    answer = env.ghl("POST", FIELDS_PATH, json={"name": "Renewal date", "dataType": "DATE"})
    assert answer.status_code == 200, answer.text
    ghl_validate_in(GHL_LOCATIONS, answer.json(), "CustomFieldSuccessfulResponseDto")
    created = answer.json()["customField"]
    assert (created["name"], created["fieldKey"], created["dataType"]) == (
        "Renewal date",
        "contact.renewal_date",
        "DATE",
    )
    assert [f["id"] for f in listed_fields(env, model="contact")] == [created["id"]]
    assert listed_fields(env, model="opportunity") == []


def test_a_contact_written_by_the_new_fields_key_uses_its_id(env: Env) -> None:
    created = env.ghl("POST", FIELDS_PATH, json={"name": "Industry", "dataType": "TEXT"}).json()[
        "customField"
    ]
    contact = env.ghl(
        "POST",
        "/contacts/",
        json={
            "locationId": keys.GHL_LOCATION_ID,
            "customFields": [{"key": "contact.industry", "field_value": "Looms"}],
        },
    ).json()["contact"]
    assert contact["customFields"] == [{"id": created["id"], "value": "Looms"}]
    assert len(listed_fields(env)) == 1


def test_a_field_only_written_to_a_contact_is_listed_as_text(env: Env) -> None:
    env.ghl(
        "POST",
        "/contacts/",
        json={"locationId": keys.GHL_LOCATION_ID, "customFields": [{"key": "shoe_size", "field_value": "9"}]},
    )
    [listed] = listed_fields(env)
    assert (listed["name"], listed["fieldKey"], listed["dataType"]) == (
        "shoe_size",
        "contact.shoe_size",
        "TEXT",
    )


def test_bad_custom_field_bodies_answer_422_and_create_nothing(env: Env) -> None:
    for body in (
        {"dataType": "TEXT"},
        {"name": "X", "dataType": "COLOUR"},
        {"name": " ", "dataType": "TEXT"},
    ):
        answer = env.ghl("POST", FIELDS_PATH, json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert listed_fields(env) == []
    assert env.ghl("GET", FIELDS_PATH, params={"model": "invoice"}).status_code == 422


def test_another_locations_fields_and_users_are_forbidden(env: Env) -> None:
    assert env.ghl("GET", "/locations/otherLocation000000001/customFields").status_code == 403
    assert env.ghl("GET", "/users/", params={"locationId": "otherLocation000000001"}).status_code == 403
    assert env.ghl("GET", "/users/").status_code == 422


def test_the_page_creates_custom_fields_and_users_the_api_then_lists(env: Env) -> None:
    submit(
        env, "ghl", "/custom-fields", {"name": "Plan", "dataType": "SINGLE_OPTIONS", "options": "Basic, Pro"}
    )
    submit(env, "ghl", "/users", {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"})
    refused = submit(env, "ghl", "/users", {"firstName": "", "lastName": "", "email": "nobody"})
    assert "error=" in refused
    [field] = listed_fields(env)
    assert (field["name"], field["dataType"], field["picklistOptions"]) == (
        "Plan",
        "SINGLE_OPTIONS",
        ["Basic", "Pro"],
    )
    users = env.ghl("GET", "/users/", params={"locationId": keys.GHL_LOCATION_ID})
    assert users.status_code == 200
    ghl_validate_in(GHL_USERS, users.json(), "LocationSuccessfulResponseDto")
    assert [(u["name"], u["email"]) for u in users.json()["users"]] == [("Grace Hopper", "grace@example.com")]
    page = env.http.get(f"{env.ghl_base}/ui").text
    for shown in ("Plan", "SINGLE_OPTIONS", "grace@example.com"):
        assert shown in page


def test_reset_forgets_fields_and_users(env: Env) -> None:
    env.ghl("POST", FIELDS_PATH, json={"name": "Industry", "dataType": "TEXT"})
    submit(env, "ghl", "/users", {"firstName": "Grace", "lastName": "", "email": "grace@example.com"})
    env.sandbox.reset()
    assert listed_fields(env) == []
    assert env.ghl("GET", "/users/", params={"locationId": keys.GHL_LOCATION_ID}).json() == {"users": []}
