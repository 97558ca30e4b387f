"""The OpenAPI document at /docs describes every public route, with examples and problem+json errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """``node`` with its ``$ref``s to components replaced by what they name (one level is enough here)."""
    text = json.dumps(node)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        text = text.replace(json.dumps({"$ref": f"#/components/schemas/{name}"}), json.dumps(schema))
    return json.loads(text)


async def test_every_route_has_a_summary_examples_and_problem_json_errors(
    inprocess: InProcessService,
) -> None:
    document = (await inprocess.http.get(f"{inprocess.url}/openapi.json")).json()
    assert (await inprocess.http.get(f"{inprocess.url}/docs")).status_code == 200
    operations = {
        f"{method.upper()} {path}": _resolve(document, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    for expected in (
        "POST /webhooks/rankr",
        "POST /webhooks/ghl",
        "GET /healthz",
        "GET /readyz",
        "GET /status",
        "GET /metrics",
        "POST /status/replay",
        "GET /admin/contacts/{contact_id}/history",
    ):
        assert expected in operations
    for name, operation in operations.items():
        assert operation.get("summary"), f"{name} has no summary"
        assert '"example' in json.dumps(operation), f"{name} has no example"
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert list(response.get("content", {})) == ["application/problem+json"], (name, status)
        if name.split(" ", 1)[1].startswith("/admin/"):
            assert "401" in operation["responses"], f"{name} does not say it needs the admin token"
    for name in ("POST /webhooks/rankr", "POST /webhooks/ghl"):
        assert operations[name]["requestBody"]["content"]["application/json"]["example"]["type"]
