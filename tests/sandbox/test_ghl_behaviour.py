"""How the GHL sandbox behaves where GHL's product does something particular: tags, stamps, custom
fields, duplicates, upsert matching, search and paging."""

from __future__ import annotations

import re
from typing import Any

from app.sandbox import keys
from tests.sandbox.conftest import Env
from tests.sandbox.specs import ghl_validate

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LOCATION = {"locationId": keys.GHL_LOCATION_ID}


def create(env: Env, **fields: Any) -> dict[str, Any]:
    answer = env.ghl("POST", "/contacts/", json={**LOCATION, **fields})
    assert answer.status_code == 201, answer.text
    return dict(answer.json()["contact"])


def update(env: Env, contact_id: str, **fields: Any) -> dict[str, Any]:
    answer = env.ghl("PUT", f"/contacts/{contact_id}", json=fields)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["contact"])


def test_ids_look_like_ghl_ids(env: Env) -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{20}", create(env, firstName="Ada")["id"])


def test_tags_are_lowercased_and_deduplicated(env: Env) -> None:
    contact = create(env, tags=["VIP", "vip", " Lead ", ""])
    assert contact["tags"] == ["vip", "lead"]


def test_email_keeps_its_case_and_email_lower_case_is_derived(env: Env) -> None:
    contact = create(env, email="Ada.Lovelace@Example.com")
    assert contact["email"] == "Ada.Lovelace@Example.com"
    assert contact["emailLowerCase"] == "ada.lovelace@example.com"


def test_phone_is_stored_in_e164(env: Env) -> None:
    assert create(env, phone="+1 888-888-8888")["phone"] == "+18888888888"
    assert create(env, phone="(415) 555-0123")["phone"] == "+14155550123"


def test_name_is_derived_from_first_and_last_name(env: Env) -> None:
    contact = create(env, name="Grace Brewster Hopper")
    assert (contact["firstName"], contact["lastName"], contact["name"]) == (
        "Grace",
        "Brewster Hopper",
        "Grace Brewster Hopper",
    )


def test_dates_are_stamped_with_milliseconds_and_date_updated_only_grows(env: Env) -> None:
    contact = create(env, firstName="Ada")
    assert STAMP.match(contact["dateAdded"])
    assert contact["dateAdded"] == contact["dateUpdated"]
    stamps = [update(env, contact["id"], lastName=f"L{i}")["dateUpdated"] for i in range(15)]
    assert all(STAMP.match(s) for s in stamps)
    assert stamps == sorted(set(stamps)), "dateUpdated must strictly increase"
    assert stamps[0] > contact["dateUpdated"]
    assert env.ghl("GET", f"/contacts/{contact['id']}").json()["contact"]["dateAdded"] == contact["dateAdded"]


def test_update_is_partial_and_null_clears(env: Env) -> None:
    contact = create(env, firstName="Ada", lastName="Lovelace", city="London", website="https://ada.example")
    changed = update(env, contact["id"], city=None, website="")
    assert changed["firstName"] == "Ada"
    assert changed["lastName"] == "Lovelace"
    assert "city" not in changed
    assert "website" not in changed


def test_tags_given_to_update_replace_all_tags(env: Env) -> None:
    contact = create(env, tags=["a", "b"])
    assert update(env, contact["id"], tags=["C"])["tags"] == ["c"]
    assert update(env, contact["id"], firstName="X")["tags"] == ["c"]


def test_tag_routes_add_and_remove(env: Env) -> None:
    contact = create(env, tags=["a"])
    added = env.ghl("POST", f"/contacts/{contact['id']}/tags", json={"tags": ["B", "a"]})
    assert added.status_code == 201
    assert added.json() == {"tags": ["a", "b"]}
    removed = env.ghl("DELETE", f"/contacts/{contact['id']}/tags", json={"tags": ["A"]})
    assert removed.status_code == 200
    assert removed.json() == {"tags": ["b"]}


def test_custom_fields_read_back_as_id_value_and_update_only_given_ids(env: Env) -> None:
    contact = create(
        env,
        customFields=[
            {"id": "fieldAAAAAAAAAAAAAAA", "key": "favourite", "field_value": "tea"},
            {"id": "fieldBBBBBBBBBBBBBBB", "value": "42"},  # the read shape, which GHL also takes
        ],
    )
    assert contact["customFields"] == [
        {"id": "fieldAAAAAAAAAAAAAAA", "value": "tea"},
        {"id": "fieldBBBBBBBBBBBBBBB", "value": "42"},
    ]
    changed = update(env, contact["id"], customFields=[{"id": "fieldBBBBBBBBBBBBBBB", "field_value": "43"}])
    assert changed["customFields"] == [
        {"id": "fieldAAAAAAAAAAAAAAA", "value": "tea"},
        {"id": "fieldBBBBBBBBBBBBBBB", "value": "43"},
    ]
    cleared = update(env, contact["id"], customFields=[{"id": "fieldAAAAAAAAAAAAAAA", "field_value": ""}])
    assert cleared["customFields"] == [{"id": "fieldBBBBBBBBBBBBBBB", "value": "43"}]


def test_custom_field_written_by_key_gets_a_stable_id(env: Env) -> None:
    first = create(env, firstName="A", customFields=[{"key": "shoe_size", "field_value": "9"}])
    second = create(env, firstName="B", customFields=[{"key": "shoe_size", "field_value": "10"}])
    assert first["customFields"][0]["id"] == second["customFields"][0]["id"]


def test_duplicate_email_is_refused_with_the_existing_contact(env: Env) -> None:
    existing = create(env, firstName="Ada", lastName="Lovelace", email="ada@example.com")
    answer = env.ghl("POST", "/contacts/", json={**LOCATION, "email": "ADA@example.com"})
    assert answer.status_code == 400
    assert answer.json() == {
        "statusCode": 400,
        "message": "This location does not allow duplicated contacts.",
        "meta": {"contactName": "Ada Lovelace", "contactId": existing["id"], "matchingField": "email"},
    }


def test_duplicate_phone_is_refused(env: Env) -> None:
    existing = create(env, phone="+14155550123")
    answer = env.ghl("POST", "/contacts/", json={**LOCATION, "phone": "415-555-0123"})
    assert answer.status_code == 400
    assert answer.json()["meta"]["contactId"] == existing["id"]
    assert answer.json()["meta"]["matchingField"] == "phone"


def test_update_to_an_email_another_contact_has_is_refused(env: Env) -> None:
    create(env, email="taken@example.com")
    other = create(env, email="free@example.com")
    answer = env.ghl("PUT", f"/contacts/{other['id']}", json={"email": "Taken@example.com"})
    assert answer.status_code == 400
    assert answer.json()["meta"]["matchingField"] == "email"


def test_upsert_matches_email_case_insensitively_then_phone(env: Env) -> None:
    by_email = create(env, email="ada@example.com", firstName="Ada")
    by_phone = create(env, phone="+14155550123", firstName="Bob")
    first = env.ghl(
        "POST", "/contacts/upsert", json={**LOCATION, "email": "ADA@EXAMPLE.COM", "lastName": "L"}
    ).json()
    assert first["new"] is False
    assert first["contact"]["id"] == by_email["id"]
    assert first["traceId"]
    second = env.ghl(
        "POST", "/contacts/upsert", json={**LOCATION, "phone": "+1 415 555 0123", "city": "SF"}
    ).json()
    assert second["new"] is False
    assert second["contact"]["id"] == by_phone["id"]
    assert second["contact"]["city"] == "SF"
    # Both match different contacts: the email wins and the other's phone is left out.
    both = env.ghl(
        "POST", "/contacts/upsert", json={**LOCATION, "email": "ada@example.com", "phone": "+14155550123"}
    )
    assert both.json()["contact"]["id"] == by_email["id"]
    assert "phone" not in both.json()["contact"]
    fresh = env.ghl("POST", "/contacts/upsert", json={**LOCATION, "email": "new@example.com"}).json()
    assert fresh["new"] is True


def test_upsert_can_change_company_name(env: Env) -> None:
    existing = create(env, email="ada@example.com", companyName="Old Co")
    answer = env.ghl(
        "POST", "/contacts/upsert", json={**LOCATION, "email": "ada@example.com", "companyName": "New Co"}
    )
    assert answer.json()["contact"]["id"] == existing["id"]
    assert answer.json()["contact"]["companyName"] == "New Co"


def test_duplicate_search(env: Env) -> None:
    existing = create(env, email="ada@example.com", phone="+14155550123")
    for params in ({"email": "Ada@Example.com"}, {"number": "+14155550123"}):
        answer = env.ghl("GET", "/contacts/search/duplicate", params={**LOCATION, **params})
        assert answer.status_code == 200
        assert answer.json()["contact"]["id"] == existing["id"]
    none = env.ghl("GET", "/contacts/search/duplicate", params={**LOCATION, "email": "nobody@example.com"})
    assert none.json() == {"contact": None}


def test_search_pages_sorts_and_filters_by_date_updated(env: Env) -> None:
    ids = [create(env, firstName=f"P{i}", email=f"p{i}@example.com")["id"] for i in range(5)]
    touched = update(env, ids[1], lastName="Touched")
    body: dict[str, Any] = {
        **LOCATION,
        "pageLimit": 2,
        "sort": [{"field": "dateUpdated", "direction": "asc"}],
    }
    first = env.ghl("POST", "/contacts/search", json={**body, "page": 1}).json()
    second = env.ghl("POST", "/contacts/search", json={**body, "page": 2}).json()
    third = env.ghl("POST", "/contacts/search", json={**body, "page": 3}).json()
    assert first["total"] == 5
    order = [c["id"] for page in (first, second, third) for c in page["contacts"]]
    assert order == [ids[0], ids[2], ids[3], ids[4], ids[1]]
    after = env.ghl(
        "POST", "/contacts/search", json={**body, "searchAfter": first["contacts"][-1]["searchAfter"]}
    )
    assert [c["id"] for c in after.json()["contacts"]] == order[2:4]
    recent = env.ghl(
        "POST",
        "/contacts/search",
        json={
            **LOCATION,
            "filters": [
                {"field": "dateUpdated", "operator": "range", "value": {"gte": touched["dateUpdated"]}}
            ],
        },
    ).json()
    assert [c["id"] for c in recent["contacts"]] == [ids[1]]
    by_query = env.ghl("POST", "/contacts/search", json={**LOCATION, "query": "p3@example"}).json()
    assert [c["id"] for c in by_query["contacts"]] == [ids[3]]
    desc = env.ghl(
        "POST", "/contacts/search", json={**LOCATION, "sort": [{"field": "dateAdded", "direction": "desc"}]}
    )
    assert [c["id"] for c in desc.json()["contacts"]] == ids[::-1]


def test_search_refuses_what_it_does_not_understand(env: Env) -> None:
    answer = env.ghl(
        "POST",
        "/contacts/search",
        json={**LOCATION, "filters": [{"field": "shoeSize", "operator": "eq", "value": 9}]},
    )
    assert answer.status_code == 422
    answer = env.ghl("POST", "/contacts/search", json={**LOCATION, "pageSize": 10})
    assert answer.status_code == 422
    assert answer.json()["message"] == ["property pageSize should not exist"]


def test_deprecated_list_pages_with_start_after(env: Env) -> None:
    ids = [create(env, firstName=f"P{i}")["id"] for i in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {**LOCATION, "limit": 2}
    for _ in range(5):
        answer = env.ghl("GET", "/contacts/", params=params).json()
        seen += [c["id"] for c in answer["contacts"]]
        meta = answer["meta"]
        ghl_validate(meta, "ContactsMetaSchema")
        assert meta["total"] == 5
        if "startAfterId" not in meta:
            break
        params = {**params, "startAfter": meta["startAfter"], "startAfterId": meta["startAfterId"]}
    assert seen == ids


def test_tasks_need_a_due_date_and_track_completion(env: Env, contact_id: str) -> None:
    path = f"/contacts/{contact_id}/tasks"
    task = env.ghl(
        "POST", path, json={"title": "Call", "dueDate": "2030-01-01T10:00:00Z", "completed": False}
    ).json()["task"]
    assert task["dueDate"] == "2030-01-01T10:00:00.000Z"
    assert task["completed"] is False
    done = env.ghl("PUT", f"{path}/{task['id']}/completed", json={"completed": True}).json()["task"]
    assert done["completed"] is True
    edited = env.ghl("PUT", f"{path}/{task['id']}", json={"title": "Call back", "body": None}).json()["task"]
    assert edited["title"] == "Call back"
    assert edited["completed"] is True
    assert [t["id"] for t in env.ghl("GET", path).json()["tasks"]] == [task["id"]]
    bad_date = env.ghl("POST", path, json={"title": "x", "dueDate": "tomorrow", "completed": False})
    assert bad_date.status_code == 422
    assert bad_date.json()["message"] == ["dueDate must be a valid ISO 8601 date string"]


def test_notes_are_listed_newest_first(env: Env, contact_id: str) -> None:
    path = f"/contacts/{contact_id}/notes"
    first = env.ghl("POST", path, json={"body": "one", "userId": "user1"}).json()["note"]
    second = env.ghl("POST", path, json={"body": "two"}).json()["note"]
    assert [n["id"] for n in env.ghl("GET", path).json()["notes"]] == [second["id"], first["id"]]
    changed = env.ghl("PUT", f"{path}/{first['id']}", json={"body": "one, edited"}).json()["note"]
    assert changed["body"] == "one, edited"
    assert changed["userId"] == "user1"


def test_a_task_of_another_contact_is_not_found(env: Env, contact_id: str) -> None:
    other = create(env, firstName="Other")["id"]
    task = env.ghl(
        "POST",
        f"/contacts/{contact_id}/tasks",
        json={"title": "x", "dueDate": "2030-01-01T00:00:00Z", "completed": False},
    ).json()["task"]
    assert env.ghl("GET", f"/contacts/{other}/tasks/{task['id']}").status_code == 400


def test_deleting_a_contact_deletes_its_tasks_and_notes(env: Env, contact_id: str) -> None:
    env.ghl("POST", f"/contacts/{contact_id}/notes", json={"body": "x"})
    assert env.ghl("DELETE", f"/contacts/{contact_id}").status_code == 200
    state = env.http.get(f"{env.ghl_base}/_sandbox/state").json()
    assert state["contacts"] == []
    assert state["notes"] == []
    assert state["tasks"] == []


def test_concurrent_creates_with_one_email_make_one_contact(env: Env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def attempt(_: int) -> int:
        return env.ghl("POST", "/contacts/", json={**LOCATION, "email": "race@example.com"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(attempt, range(16)))
    assert statuses == [201] + [400] * 15
