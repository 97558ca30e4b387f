"""The GHL sandbox against GHL's published Contacts API: it accepts what the spec documents, refuses
what GHL refuses with GHL's error shapes, and answers in the documented response shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.sandbox import keys
from tests.sandbox.conftest import Env
from tests.sandbox.specs import (
    ghl_response_schema,
    ghl_schema,
    ghl_validate,
    sample_body,
    wrong_type_value,
)

TEXT_FIELDS = [{"id": "6dvNaf7VhkQ9snc5vnjJ", "key": "my_custom_field", "field_value": "My Text"}]


@dataclass(frozen=True)
class Write:
    """One documented write operation: where it goes, its request DTO and its documented answer."""

    name: str
    method: str
    spec_path: str
    dto: str
    status: int
    path: Callable[[dict[str, str]], str]
    overrides: Callable[[], dict[str, Any]] = dict

    def body(self, **extra: Any) -> dict[str, Any]:
        return sample_body(self.dto, {**self.overrides(), **extra})


def _location() -> dict[str, Any]:
    return {"locationId": keys.GHL_LOCATION_ID, "customFields": TEXT_FIELDS}


WRITES = [
    Write(
        "create contact", "post", "/contacts/", "CreateContactDto", 201, lambda ids: "/contacts/", _location
    ),
    Write(
        "update contact",
        "put",
        "/contacts/{contactId}",
        "UpdateContactDto",
        200,
        lambda ids: f"/contacts/{ids['contact']}",
        lambda: {"customFields": TEXT_FIELDS},
    ),
    Write(
        "upsert contact",
        "post",
        "/contacts/upsert",
        "UpsertContactDto",
        200,
        lambda ids: "/contacts/upsert",
        _location,
    ),
    Write(
        "add tags",
        "post",
        "/contacts/{contactId}/tags",
        "TagsDTO",
        201,
        lambda ids: f"/contacts/{ids['contact']}/tags",
    ),
    Write(
        "remove tags",
        "delete",
        "/contacts/{contactId}/tags",
        "TagsDTO",
        200,
        lambda ids: f"/contacts/{ids['contact']}/tags",
    ),
    Write(
        "create task",
        "post",
        "/contacts/{contactId}/tasks",
        "CreateTaskParams",
        201,
        lambda ids: f"/contacts/{ids['contact']}/tasks",
    ),
    Write(
        "update task",
        "put",
        "/contacts/{contactId}/tasks/{taskId}",
        "UpdateTaskBody",
        200,
        lambda ids: f"/contacts/{ids['contact']}/tasks/{ids['task']}",
    ),
    Write(
        "complete task",
        "put",
        "/contacts/{contactId}/tasks/{taskId}/completed",
        "UpdateTaskStatusParams",
        200,
        lambda ids: f"/contacts/{ids['contact']}/tasks/{ids['task']}/completed",
    ),
    Write(
        "create note",
        "post",
        "/contacts/{contactId}/notes",
        "NotesDTO",
        201,
        lambda ids: f"/contacts/{ids['contact']}/notes",
    ),
    Write(
        "update note",
        "put",
        "/contacts/{contactId}/notes/{id}",
        "UpdateNoteDTO",
        200,
        lambda ids: f"/contacts/{ids['contact']}/notes/{ids['note']}",
    ),
]


def _ids(env: Env, contact_id: str) -> dict[str, str]:
    task = env.ghl(
        "POST",
        f"/contacts/{contact_id}/tasks",
        json={"title": "Call", "dueDate": "2030-01-01T10:00:00Z", "completed": False},
    )
    note = env.ghl("POST", f"/contacts/{contact_id}/notes", json={"body": "first"})
    assert task.status_code == 201
    assert note.status_code == 201
    return {"contact": contact_id, "task": task.json()["task"]["id"], "note": note.json()["note"]["id"]}


def _unprocessable(answer: Any) -> list[str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    ghl_validate(body, "common:UnprocessableDTO")
    assert body["statusCode"] == 422
    assert body["error"] == "Unprocessable Entity"
    return list(body["message"])


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_documented_body_is_accepted_and_answered_as_documented(
    env: Env, contact_id: str, write: Write
) -> None:
    ids = _ids(env, contact_id)
    answer = env.ghl(write.method.upper(), write.path(ids), json=write.body())
    assert answer.status_code == write.status, answer.text
    ghl_validate(answer.json(), ghl_response_schema(write.spec_path, write.method, str(write.status)))


@pytest.mark.parametrize(
    ("write", "field"),
    [(w, f) for w in WRITES for f in ghl_schema(w.dto).get("required", [])],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_missing_required_field_is_refused(env: Env, contact_id: str, write: Write, field: str) -> None:
    body = write.body()
    del body[field]
    messages = _unprocessable(env.ghl(write.method.upper(), write.path(_ids(env, contact_id)), json=body))
    assert any(field in message for message in messages), messages


@pytest.mark.parametrize(
    ("write", "field"),
    [(w, f) for w in WRITES for f in ghl_schema(w.dto)["properties"]],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_wrong_type_is_refused(env: Env, contact_id: str, write: Write, field: str) -> None:
    body = write.body(**{field: wrong_type_value(ghl_schema(write.dto)["properties"][field])})
    messages = _unprocessable(env.ghl(write.method.upper(), write.path(_ids(env, contact_id)), json=body))
    assert any(field in message for message in messages), messages


@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.name)
def test_unknown_property_is_refused_as_nestjs_whitelisting_does(
    env: Env, contact_id: str, write: Write
) -> None:
    body = write.body(favouriteColour="teal")
    messages = _unprocessable(env.ghl(write.method.upper(), write.path(_ids(env, contact_id)), json=body))
    assert "property favouriteColour should not exist" in messages


def test_every_documented_custom_field_kind_is_accepted(env: Env) -> None:
    body = sample_body("CreateContactDto", {"locationId": keys.GHL_LOCATION_ID})
    kinds = ghl_schema("CreateContactDto")["properties"]["customFields"]["items"]["anyOf"]
    assert len(body["customFields"]) == len(kinds) == 9
    answer = env.ghl("POST", "/contacts/", json=body)
    assert answer.status_code == 201, answer.text


def test_nested_unknown_property_is_refused(env: Env) -> None:
    body = {
        "locationId": keys.GHL_LOCATION_ID,
        "dndSettings": {"Call": {"status": "active", "colour": "red"}},
    }
    messages = _unprocessable(env.ghl("POST", "/contacts/", json=body))
    assert messages == ["dndSettings.Call.property colour should not exist"]


def test_update_refuses_properties_its_dto_lacks(env: Env, contact_id: str) -> None:
    """UpdateContactDto has no companyName, gender or locationId: GHL refuses them (api-docs#313)."""
    messages = _unprocessable(
        env.ghl(
            "PUT", f"/contacts/{contact_id}", json={"companyName": "X", "gender": "male", "locationId": "x"}
        )
    )
    assert set(messages) == {
        f"property {p} should not exist" for p in ("companyName", "gender", "locationId")
    }


def test_malformed_json_is_a_bad_request(env: Env) -> None:
    answer = env.ghl(
        "POST", "/contacts/", content=b'{"locationId": ', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    ghl_validate(answer.json(), "common:BadRequestDTO")


def test_body_that_is_not_an_object_is_unprocessable(env: Env) -> None:
    _unprocessable(env.ghl("POST", "/contacts/", json=["not", "an", "object"]))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "Bearer wrong"}, "Invalid JWT"),
        ({"Authorization": ""}, "Invalid JWT"),
        ({"Version": "2099-01-01"}, "version header is invalid"),
    ],
)
def test_bad_credentials_or_version_are_unauthorized(
    env: Env, contact_id: str, headers: dict[str, str], message: str
) -> None:
    answer = env.ghl("GET", f"/contacts/{contact_id}", headers=headers)
    assert answer.status_code == 401
    body = answer.json()
    ghl_validate(body, "common:UnauthorizedDTO")
    assert body == {"statusCode": 401, "message": message, "error": "Unauthorized"}
    assert "x-ratelimit-remaining" in answer.headers


def test_missing_version_header_is_unauthorized(env: Env, contact_id: str) -> None:
    answer = env.http.get(
        f"{env.ghl_base}/contacts/{contact_id}", headers={"Authorization": f"Bearer {keys.GHL_PRIVATE_TOKEN}"}
    )
    assert answer.status_code == 401
    assert answer.json()["message"] == "version header was not found."


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/contacts/", {"json": {"locationId": "someOtherLocation00"}}),
        ("POST", "/contacts/upsert", {"json": {"locationId": "someOtherLocation00", "email": "a@b.co"}}),
        ("POST", "/contacts/search", {"json": {"locationId": "someOtherLocation00"}}),
        ("GET", "/contacts/", {"params": {"locationId": "someOtherLocation00"}}),
        (
            "GET",
            "/contacts/search/duplicate",
            {"params": {"locationId": "someOtherLocation00", "email": "a@b.co"}},
        ),
    ],
)
def test_another_location_is_forbidden(env: Env, method: str, path: str, kwargs: dict[str, Any]) -> None:
    answer = env.ghl(method, path, **kwargs)
    assert answer.status_code == 403
    assert answer.json() == {"statusCode": 403, "message": "The token does not have access to this location."}


@pytest.mark.parametrize(
    "path",
    [
        "/contacts/{missing}",
        "/contacts/{missing}/tasks",
        "/contacts/{contact}/tasks/{missing}",
        "/contacts/{contact}/notes/{missing}",
    ],
)
def test_unknown_ids_answer_400_as_ghl_does(env: Env, contact_id: str, path: str) -> None:
    answer = env.ghl("GET", path.format(missing="nmFmQEsNgz6AVpgLVUJ0", contact=contact_id))
    assert answer.status_code == 400
    body = answer.json()
    ghl_validate(body, "common:BadRequestDTO")
    assert body["message"].endswith("with id nmFmQEsNgz6AVpgLVUJ0 not found")


def test_reads_and_deletes_answer_the_documented_shapes(env: Env, contact_id: str) -> None:
    ids = _ids(env, contact_id)
    env.http.post(
        f"{env.ghl_base}/_sandbox/appointments",
        json={"contactId": contact_id, "title": "Demo", "startTime": "2030-01-02T10:00:00Z"},
    ).raise_for_status()
    reads = [
        ("/contacts/{contactId}", f"/contacts/{contact_id}"),
        ("/contacts/{contactId}/tasks", f"/contacts/{contact_id}/tasks"),
        ("/contacts/{contactId}/tasks/{taskId}", f"/contacts/{contact_id}/tasks/{ids['task']}"),
        ("/contacts/{contactId}/notes", f"/contacts/{contact_id}/notes"),
        ("/contacts/{contactId}/notes/{id}", f"/contacts/{contact_id}/notes/{ids['note']}"),
        ("/contacts/{contactId}/appointments", f"/contacts/{contact_id}/appointments"),
    ]
    for spec_path, path in reads:
        answer = env.ghl("GET", path)
        assert answer.status_code == 200, answer.text
        ghl_validate(answer.json(), ghl_response_schema(spec_path, "get", "200"))
    assert len(env.ghl("GET", f"/contacts/{contact_id}/appointments").json()["events"]) == 1
    deletes = [
        ("/contacts/{contactId}/tasks/{taskId}", f"/contacts/{contact_id}/tasks/{ids['task']}"),
        ("/contacts/{contactId}/notes/{id}", f"/contacts/{contact_id}/notes/{ids['note']}"),
        ("/contacts/{contactId}", f"/contacts/{contact_id}"),
    ]
    for spec_path, path in deletes:
        answer = env.ghl("DELETE", path)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"succeded": True}
        ghl_validate(answer.json(), ghl_response_schema(spec_path, "delete", "200"))
    assert env.ghl("GET", f"/contacts/{contact_id}").status_code == 400


def test_deprecated_list_answers_the_documented_shape(env: Env, contact_id: str) -> None:
    answer = env.ghl("GET", "/contacts/", params={"locationId": keys.GHL_LOCATION_ID})
    assert answer.status_code == 200
    ghl_validate(answer.json(), ghl_response_schema("/contacts/", "get", "200"))
    ghl_validate(answer.json()["meta"], "ContactsMetaSchema")
    assert [c["id"] for c in answer.json()["contacts"]] == [contact_id]


def test_unrouted_path_answers_like_nestjs(env: Env) -> None:
    answer = env.ghl("GET", "/opportunities/")
    assert answer.status_code == 404
    assert answer.json() == {"statusCode": 404, "message": "Cannot GET /opportunities/", "error": "Not Found"}
