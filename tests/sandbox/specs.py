"""The official schemas in ../shared, loaded for the sandbox tests: GHL's OpenAPI documents, its webhook
event schemas (embedded in the event Markdown pages) and Rankr's OpenAPI yaml.

``sample_body`` builds a request body from an official request schema, with every documented
property set to its documented example (or a value of the documented type when there is none), so
the tests send what GHL's documentation says GHL accepts.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

from tests.support.reference import SHARED

GHL_CONTACTS = SHARED / "ghl" / "openapi" / "contacts.json"
GHL_COMMON = SHARED / "ghl" / "common" / "common-schemas.json"
GHL_LOCATIONS = SHARED / "ghl" / "openapi" / "locations.json"
GHL_USERS = SHARED / "ghl" / "openapi" / "users.json"
GHL_WEBHOOKS = SHARED / "ghl" / "webhooks"
RANKR_YAML = SHARED / "rankr" / "openapi.yaml"


def _openapi30_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema understands it (``type: [X, "null"]``)."""
    if isinstance(node, list):
        return [_openapi30_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _openapi30_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


@cache
def ghl_contacts_spec() -> dict[str, Any]:
    data: dict[str, Any] = _openapi30_to_json_schema(json.loads(GHL_CONTACTS.read_text()))
    return data


@cache
def _ghl_registry() -> Registry:
    resources = [
        (GHL_CONTACTS.as_uri(), Resource.from_contents(ghl_contacts_spec(), default_specification=DRAFT7)),
        (
            GHL_COMMON.as_uri(),
            Resource.from_contents(json.loads(GHL_COMMON.read_text()), default_specification=DRAFT7),
        ),
    ]
    return Registry().with_resources(resources)


def ghl_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = ghl_contacts_spec()["components"]["schemas"][name]
    return schema


def ghl_validate(instance: Any, name: str) -> None:
    """Validate against a schema of contacts.json (``X``) or common-schemas.json (``common:X``)."""
    if name.startswith("common:"):
        ref = f"{GHL_COMMON.as_uri()}#/components/schemas/{name.removeprefix('common:')}"
    else:
        ref = f"{GHL_CONTACTS.as_uri()}#/components/schemas/{name}"
    Draft7Validator({"$ref": ref}, registry=_ghl_registry()).validate(instance)


def ghl_validate_in(document: Path, instance: Any, name: str) -> None:
    """Validate against schema ``name`` of another GHL document (locations.json, users.json)."""
    spec = _openapi30_to_json_schema(json.loads(document.read_text()))
    registry = _ghl_registry().with_resource(
        document.as_uri(), Resource.from_contents(spec, default_specification=DRAFT7)
    )
    Draft7Validator({"$ref": f"{document.as_uri()}#/components/schemas/{name}"}, registry=registry).validate(
        instance
    )


def ghl_response_schema(path: str, method: str, status: str) -> str:
    """The name of the response schema the spec documents for one operation and status."""
    operation = ghl_contacts_spec()["paths"][path][method]
    ref: str = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    name = ref.rsplit("/", 1)[-1]
    return f"common:{name}" if ref.startswith("../common") else name


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = ghl_schema(schema["$ref"].rsplit("/", 1)[-1])
    return schema


def sample_value(schema: dict[str, Any]) -> Any:
    """A documented value for ``schema``: its example, else one built from its type."""
    schema = _resolve(schema)
    if "example" in schema:
        return copy.deepcopy(schema["example"])
    if "anyOf" in schema:
        return sample_value(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object" or "properties" in schema:
        return {name: sample_value(prop) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        items = _resolve(schema.get("items", {}))
        if "anyOf" in items:  # one entry per documented alternative (TextField, NumericField, ...)
            return [sample_value(option) for option in items["anyOf"]]
        return [sample_value(items)]
    return {"string": "sample text", "boolean": True, "number": 1, "integer": 1}.get(str(kind), "sample")


def sample_body(dto: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every documented property of request schema ``dto`` with a documented value."""
    body: dict[str, Any] = sample_value(ghl_schema(dto))
    body.update(overrides or {})
    return body


def wrong_type_value(schema: dict[str, Any]) -> Any:
    """A value of a type the property does not take."""
    kind = _resolve(schema).get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind in {"string", "object"}:
        return 12345 if kind == "string" else "not an object"
    if kind == "boolean":
        return "yes"
    if kind in {"number", "integer"}:
        return "many"
    if kind == "array":
        return "not an array"
    return 12345


@cache
def ghl_webhook_schema(event: str) -> dict[str, Any]:
    """The JSON schema embedded in ``webhooks/<event>.md`` (its "json json_schema" block)."""
    text = (GHL_WEBHOOKS / f"{event}.md").read_text()
    match = re.search(r"```json json_schema\n(.*?)\n```", text, re.DOTALL)
    if match is None:
        raise AssertionError(f"no schema block in {event}.md")
    schema: dict[str, Any] = json.loads(match.group(1))
    return schema


def ghl_validate_webhook(body: dict[str, Any]) -> None:
    Draft7Validator(ghl_webhook_schema(body["type"])).validate(body)


@cache
def rankr_spec() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RANKR_YAML.read_text())
    return data


@cache
def _rankr_registry() -> Registry:
    resource = Resource.from_contents(rankr_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(RANKR_YAML.as_uri(), resource)


def rankr_validate(instance: Any, name: str) -> None:
    ref = f"{RANKR_YAML.as_uri()}#/components/schemas/{name}"
    Draft202012Validator({"$ref": ref}, registry=_rankr_registry()).validate(instance)


def rankr_validate_page(instance: Any, item: str) -> None:
    rankr_validate(instance, "Page")
    for entry in instance["data"]:
        rankr_validate(entry, item)
