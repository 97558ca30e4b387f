"""The Rankr sandbox against rankr/openapi.yaml: tokens, CRUD, problem documents, lastModified,
email uniqueness and paging."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.sandbox import keys
from tests.sandbox.conftest import Env
from tests.sandbox.specs import rankr_validate, rankr_validate_page

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def create(env: Env, **fields: Any) -> dict[str, Any]:
    answer = env.rankr("POST", "/contacts", json=fields)
    assert answer.status_code == 201, answer.text
    rankr_validate(answer.json(), "Contact")
    return dict(answer.json())


def problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = dict(answer.json())
    rankr_validate(body, "Problem")
    assert body["status"] == status
    assert body["title"]
    assert body["type"].startswith("https://")
    return body


def test_token_grant(env: Env) -> None:
    answer = env.http.post(
        f"{env.rankr_base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": keys.RANKR_CLIENT_ID,
            "client_secret": keys.RANKR_CLIENT_SECRET,
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"]
    assert set(body["scope"].split()) == {
        f"{k}.{m}" for k in ("contacts", "tasks", "notes") for m in ("read", "write")
    }


def test_token_with_http_basic_client_authentication(env: Env) -> None:
    answer = env.http.post(
        f"{env.rankr_base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(keys.RANKR_CLIENT_ID, keys.RANKR_CLIENT_SECRET),
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("form", "status"),
    [
        (
            {"grant_type": "client_credentials", "client_id": keys.RANKR_CLIENT_ID, "client_secret": "wrong"},
            401,
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "someone",
                "client_secret": keys.RANKR_CLIENT_SECRET,
            },
            401,
        ),
        (
            {
                "grant_type": "password",
                "client_id": keys.RANKR_CLIENT_ID,
                "client_secret": keys.RANKR_CLIENT_SECRET,
            },
            400,
        ),
    ],
)
def test_bad_token_requests_answer_problems(env: Env, form: dict[str, str], status: int) -> None:
    problem(env.http.post(f"{env.rankr_base}/oauth/token", data=form), status)


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic abc"])
def test_api_needs_a_live_bearer_token(env: Env, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = env.http.get(f"{env.rankr_base}/contacts", headers=headers)
    problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_scopes_are_enforced(env: Env) -> None:
    token = env.rankr_token("contacts.read")
    assert env.rankr("GET", "/contacts", token=token).status_code == 200
    problem(env.rankr("POST", "/contacts", token=token, json={"email": "a@example.com"}), 403)


def test_contact_crud(env: Env) -> None:
    contact = create(
        env,
        email="ada@example.com",
        phone="+14155550123",
        firstName="Ada",
        address={"line1": "1 Main St", "country": "gb"},
        tags=["vip"],
        customFields={"score": 7, "vip": True, "note": "hi"},
        ownerId="usr_1",
    )
    assert contact["contactId"].startswith("con_")
    assert contact["accountId"] == keys.RANKR_ACCOUNT_ID
    assert contact["address"] == {
        "line1": "1 Main St",
        "city": None,
        "state": None,
        "postalCode": None,
        "country": "GB",
    }
    assert STAMP.match(contact["lastModified"])
    assert contact["createdAt"] == contact["lastModified"]
    got = env.rankr("GET", f"/contacts/{contact['contactId']}")
    assert got.status_code == 200
    assert got.json() == contact
    assert env.rankr("DELETE", f"/contacts/{contact['contactId']}").status_code == 204
    problem(env.rankr("GET", f"/contacts/{contact['contactId']}"), 404)
    problem(env.rankr("DELETE", f"/contacts/{contact['contactId']}"), 404)


def test_put_is_partial_and_merges_address_and_custom_fields(env: Env) -> None:
    contact = create(
        env,
        email="ada@example.com",
        firstName="Ada",
        lastName="Lovelace",
        address={"line1": "1 Main St", "city": "London"},
        customFields={"a": "1", "b": "2"},
        tags=["x", "y"],
    )
    answer = env.rankr(
        "PUT",
        f"/contacts/{contact['contactId']}",
        json={
            "lastName": None,
            "address": {"city": "Paris"},
            "customFields": {"a": None, "c": 3},
            "tags": ["z"],
        },
    )
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    rankr_validate(changed, "Contact")
    assert changed["firstName"] == "Ada"
    assert changed["lastName"] is None
    assert changed["email"] == "ada@example.com"
    assert changed["address"]["line1"] == "1 Main St"
    assert changed["address"]["city"] == "Paris"
    assert changed["customFields"] == {"b": "2", "c": 3}
    assert changed["tags"] == ["z"]
    assert changed["createdAt"] == contact["createdAt"]


def test_last_modified_strictly_grows(env: Env) -> None:
    contact = create(env, firstName="Ada")
    stamps = [contact["lastModified"]]
    for i in range(15):
        stamps.append(
            env.rankr("PUT", f"/contacts/{contact['contactId']}", json={"firstName": f"A{i}"}).json()[
                "lastModified"
            ]
        )
    assert all(STAMP.match(s) for s in stamps)
    assert stamps == sorted(set(stamps))


def test_taken_email_is_a_conflict_naming_the_existing_contact(env: Env) -> None:
    existing = create(env, email="Ada@Example.com")
    body = problem(env.rankr("POST", "/contacts", json={"email": "ada@example.COM"}), 409)
    assert body["contactId"] == existing["contactId"]
    other = create(env, email="bob@example.com")
    body = problem(
        env.rankr("PUT", f"/contacts/{other['contactId']}", json={"email": "ADA@example.com"}), 409
    )
    assert body["contactId"] == existing["contactId"]
    # Changing one's own email's case is not a conflict.
    assert (
        env.rankr("PUT", f"/contacts/{existing['contactId']}", json={"email": "ada@example.com"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "555 0123"}, "phone"),
        ({"firstName": 7}, "firstName"),
        ({"tags": "vip"}, "tags"),
        ({"tags": None}, "tags"),
        ({"address": {"country": "Germany"}}, "address.country"),
        ({"address": {"street": "x"}}, "address.street"),
        ({"customFields": {"nested": {"a": 1}}}, "customFields.nested"),
        ({"favouriteColour": "teal"}, "favouriteColour"),
        ({"contactId": "con_x"}, "contactId"),
    ],
)
def test_invalid_contact_bodies_are_unprocessable_naming_the_field(
    env: Env, body: dict[str, Any], field: str
) -> None:
    answer = problem(env.rankr("POST", "/contacts", json=body), 422)
    assert [e["field"] for e in answer["errors"]] == [field]
    assert field in answer["detail"]


def test_malformed_json_is_a_bad_request_problem(env: Env) -> None:
    problem(env.rankr("POST", "/contacts", content=b"{", headers={"content-type": "application/json"}), 400)


def test_list_is_oldest_first_and_pages_with_a_cursor(env: Env) -> None:
    ids = [create(env, email=f"p{i}@example.com")["contactId"] for i in range(7)]
    env.rankr("PUT", f"/contacts/{ids[0]}", json={"firstName": "Moved"})  # now the newest
    expected = [*ids[1:], ids[0]]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = env.rankr("GET", "/contacts", params=params).json()
        rankr_validate_page(page, "Contact")
        seen += [c["contactId"] for c in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == expected
    stamps = [c["lastModified"] for c in env.rankr("GET", "/contacts").json()["data"]]
    assert stamps == sorted(stamps)


def test_updated_since_is_inclusive(env: Env) -> None:
    first = create(env, email="a@example.com")
    second = create(env, email="b@example.com")
    page = env.rankr("GET", "/contacts", params={"updatedSince": second["lastModified"]}).json()
    assert [c["contactId"] for c in page["data"]] == [second["contactId"]]
    page = env.rankr("GET", "/contacts", params={"updatedSince": first["lastModified"]}).json()
    assert len(page["data"]) == 2
    assert page["nextCursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"updatedSince": "yesterday"}, "updatedSince"),
        ({"cursor": "zz"}, "cursor"),
    ],
)
def test_bad_paging_parameters_are_unprocessable(env: Env, params: dict[str, Any], field: str) -> None:
    body = problem(env.rankr("GET", "/contacts", params=params), 422)
    assert body["errors"][0]["field"] == field


def test_default_limit_is_50(env: Env) -> None:
    for i in range(51):
        env.sandbox.rankr.store.create_contact({"email": f"bulk{i}@example.com"})
    page = env.rankr("GET", "/contacts").json()
    assert len(page["data"]) == 50
    assert page["nextCursor"]
    assert len(env.rankr("GET", "/contacts", params={"limit": 200}).json()["data"]) == 51


def test_tasks(env: Env) -> None:
    contact = create(env, email="ada@example.com")["contactId"]
    path = f"/contacts/{contact}/tasks"
    created = env.rankr("POST", path, json={"title": "Call", "dueDate": "2030-01-01T10:00:00+02:00"})
    assert created.status_code == 201, created.text
    task = created.json()
    rankr_validate(task, "Task")
    assert task["taskId"].startswith("tsk_")
    assert task["status"] == "open"
    assert task["dueDate"] == "2030-01-01T08:00:00.000Z"
    done = env.rankr("PUT", f"{path}/{task['taskId']}", json={"status": "completed"}).json()
    assert done["status"] == "completed"
    assert done["title"] == "Call"
    assert done["lastModified"] > task["lastModified"]
    page = env.rankr("GET", path).json()
    rankr_validate_page(page, "Task")
    assert [t["taskId"] for t in page["data"]] == [task["taskId"]]
    problem(env.rankr("POST", path, json={"description": "no title"}), 422)
    problem(env.rankr("POST", path, json={"title": "x", "status": "doing"}), 422)
    problem(env.rankr("POST", path, json={"title": "x", "dueDate": "2030-01-01"}), 422)
    assert env.rankr("DELETE", f"{path}/{task['taskId']}").status_code == 204
    problem(env.rankr("GET", f"{path}/{task['taskId']}"), 404)
    problem(env.rankr("GET", "/contacts/con_missing/tasks"), 404)


def test_notes(env: Env) -> None:
    contact = create(env, email="ada@example.com")["contactId"]
    path = f"/contacts/{contact}/notes"
    note = env.rankr("POST", path, json={"body": "hello"}).json()
    rankr_validate(note, "Note")
    assert note["noteId"].startswith("note_")
    assert note["authorId"] is None
    changed = env.rankr("PUT", f"{path}/{note['noteId']}", json={"body": "hello again"}).json()
    assert changed["body"] == "hello again"
    assert changed["createdAt"] == note["createdAt"]
    rankr_validate_page(env.rankr("GET", path).json(), "Note")
    problem(env.rankr("PUT", f"{path}/{note['noteId']}", json={}), 422)
    problem(env.rankr("POST", path, json={"body": "x", "authorId": "usr_1"}), 422)
    assert env.rankr("DELETE", f"{path}/{note['noteId']}").status_code == 204


def test_unrouted_paths_answer_problems(env: Env) -> None:
    problem(env.rankr("GET", "/deals"), 404)
    problem(env.rankr("PATCH", "/contacts"), 405)
