"""Verifying connections: the classification of GHL and Rankr answers (table-driven), and verification
against the in-process sandboxes: success, a refused or revoked token, an unknown location, a missing
scope, an upstream answering 5xx, refused Rankr credentials; the admin route."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.connections import credentials
from app.connections import repository as connections
from app.connections.models import CredentialKind
from app.connections.verify import (
    Context,
    Problem,
    classify_ghl,
    classify_rankr,
    describe,
    missing_granted_scopes,
)
from app.db import unit_of_work
from app.errors import PermanentUpstreamError, TransientUpstreamError, UpstreamError, UpstreamNotFound
from app.kit.clock import utcnow
from app.sandbox import keys
from app.sandbox.ghl.oauth import LOCATION, Grant
from tests.connections.conftest import ADMIN, started
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio

PRIVATE = Context(7, "LocX", "acct_x", "http://svc/oauth/ghl/install?rankrAccountId=acct_x", "private")
OAUTH = Context(7, "LocX", "acct_x", "http://svc/oauth/ghl/install?rankrAccountId=acct_x", "oauth")
SETTINGS = Context(7, "LocX", "acct_x", "http://svc/oauth/ghl/install?rankrAccountId=acct_x", "settings")


def ghl(status: int | None, message: str, transient: bool = False) -> UpstreamError:
    if transient:
        return TransientUpstreamError("ghl", message, status=status)
    if status == 404:
        return UpstreamNotFound("ghl", message, status=status)
    return PermanentUpstreamError("ghl", message, status=status)


@pytest.mark.parametrize(
    ("error", "step", "context", "code", "reason_has", "fix_has"),
    [
        (
            ghl(401, "Invalid JWT"),
            "location",
            PRIVATE,
            "ghl_token_refused",
            "expired or revoked",
            "Private Integration token",
        ),
        (
            ghl(401, "Invalid JWT"),
            "contacts",
            OAUTH,
            "ghl_token_refused",
            "Invalid JWT",
            "install the app on location LocX again at http://svc/oauth/ghl/install",
        ),
        (
            ghl(401, "Invalid JWT"),
            "location",
            SETTINGS,
            "ghl_token_refused",
            "refused the token",
            "set GHL_PRIVATE_TOKEN",
        ),
        (
            ghl(401, "The token is not authorized for this scope."),
            "tasks",
            PRIVATE,
            "ghl_scope_missing",
            "locations/tasks.readonly",
            "contacts.readonly, contacts.write, locations.readonly, locations/customFields.readonly, "
            "locations/tasks.readonly, users.readonly",
        ),
        (
            ghl(403, "This token is not authorized for this scope"),
            "contacts",
            OAUTH,
            "ghl_scope_missing",
            "contacts.readonly",
            "install the app",
        ),
        (
            ghl(403, "The token does not have access to this location."),
            "location",
            PRIVATE,
            "ghl_location_unknown",
            "LocX is unknown",
            "--ghl-location",
        ),
        (
            ghl(400, "Location not found"),
            "location",
            SETTINGS,
            "ghl_location_unknown",
            "Location not found",
            "check GHL_LOCATION_ID",
        ),
        (ghl(404, "Not Found"), "location", PRIVATE, "ghl_location_unknown", "LocX", "sub-account id"),
        (
            ghl(503, "Service Unavailable", transient=True),
            "location",
            PRIVATE,
            "ghl_unreachable",
            "HTTP 503",
            "connections verify 7",
        ),
        (
            ghl(None, "cannot connect: refused", transient=True),
            "contacts",
            OAUTH,
            "ghl_unreachable",
            "cannot connect",
            "nothing to change",
        ),
        (
            ghl(429, "Too Many Requests", transient=True),
            "tasks",
            PRIVATE,
            "ghl_unreachable",
            "HTTP 429",
            "runs again",
        ),
        (
            ghl(422, "limit must be a number"),
            "contacts",
            PRIVATE,
            "ghl_refused",
            "HTTP 422",
            "connections verify 7",
        ),
    ],
)
def test_ghl_answers_are_classified_with_a_reason_and_a_fix(
    error: UpstreamError, step: str, context: Context, code: str, reason_has: str, fix_has: str
) -> None:
    problem = classify_ghl(error, step, context)
    assert problem.code == code
    assert reason_has in problem.reason
    assert fix_has in problem.fix
    assert problem.conclusive is (code != "ghl_unreachable")


def rankr(status: int | None, message: str, body: dict[str, Any] | None = None) -> UpstreamError:
    if status is None or status >= 500:
        return TransientUpstreamError("rankr", message, status=status)
    if status == 404:
        return UpstreamNotFound("rankr", message, status=status, body=body)
    return PermanentUpstreamError("rankr", message, status=status, body=body)


@pytest.mark.parametrize(
    ("error", "code", "fix_has"),
    [
        (
            rankr(401, "unknown client or wrong secret", {"error": "invalid_client"}),
            "rankr_credentials_refused",
            "RANKR_CLIENT_SECRET",
        ),
        (
            rankr(400, "unknown scope(s): x", {"error": "invalid_scope"}),
            "rankr_scope_missing",
            "contacts.read, contacts.write",
        ),
        (rankr(403, "the token lacks the contacts.read scope"), "rankr_scope_missing", "tasks.write"),
        (rankr(404, "no such account"), "rankr_account_unknown", "acct_x"),
        (rankr(502, "Bad Gateway"), "rankr_unreachable", "connections verify 7"),
        (rankr(None, "ReadTimeout: timed out"), "rankr_unreachable", "nothing to change"),
        (rankr(409, "Conflict"), "rankr_refused", "RANKR_API_BASE_URL"),
    ],
)
def test_rankr_answers_are_classified_with_a_reason_and_a_fix(
    error: UpstreamError, code: str, fix_has: str
) -> None:
    problem = classify_rankr(error, PRIVATE)
    assert problem.code == code
    assert fix_has in problem.fix


@pytest.mark.parametrize(
    ("scope", "missing"),
    [
        (None, []),
        (
            "contacts.readonly contacts.write locations/tasks.readonly oauth.write "
            "locations/customFields.readonly users.readonly",
            [],
        ),
        (
            "contacts.readonly locations.readonly locations/customFields.readonly users.readonly",
            ["contacts.write", "locations/tasks.readonly"],
        ),
        (
            "contacts.readonly contacts.write locations/tasks.readonly",
            ["locations/customFields.readonly", "users.readonly"],
        ),
        (
            "",
            [
                "contacts.readonly",
                "contacts.write",
                "locations/tasks.readonly",
                "locations/customFields.readonly",
                "users.readonly",
            ],
        ),
    ],
)
def test_an_oauth_grants_scope_tells_which_scopes_are_missing(scope: str | None, missing: list[str]) -> None:
    assert missing_granted_scopes(scope) == missing


def test_a_check_that_could_not_be_made_reads_differently_from_a_failure() -> None:
    down = Problem("ghl_unreachable", "GHL did not answer the check (HTTP 503)", "wait")
    refused = Problem("ghl_token_refused", "GHL refused the token", "install again")
    assert describe(False, down, None).startswith("could not verify [ghl_unreachable]")
    assert describe(False, refused, None).startswith("failed [ghl_token_refused]")
    assert describe(True, None, "Dental") == "verified (GHL location 'Dental')"
    assert describe(True, None, None) == "verified (GHL location name unknown)"


# -- against the sandboxes ----------------------------------------------------------------------------


async def test_the_seeded_connection_is_verified_at_start_up(service: InProcessService) -> None:
    facts = await service.status(admin=True)
    [entry] = facts["connections"]
    verification = entry["verification"]
    assert verification["verified"] is True
    assert verification["state"] == "verified"
    assert verification["problem"] is None
    assert verification["locationName"] == "Sandbox sub-account"
    assert verification["checkedAt"] is not None
    assert facts["status"] == "ok"
    assert facts["problems"] == []
    paths = [r["path"] for r in (await service.http.get("/sandbox/ghl/_sandbox/requests")).json()["requests"]]
    assert f"/locations/{keys.GHL_LOCATION_ID}" in paths


async def verify(service: InProcessService, connection_id: int) -> dict[str, Any]:
    answer = await service.http.post(f"/admin/connections/{connection_id}/verify", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def seeded_id(service: InProcessService) -> int:
    [entry] = (await service.status(admin=True))["connections"]
    return int(entry["id"])


async def test_a_private_token_ghl_refuses_fails_with_the_fix(database_url: str) -> None:
    async with started(database_url, ghl_private_token="pit-wrong-token") as service:
        facts = await service.status(admin=True)
        [entry] = facts["connections"]
        problem = entry["verification"]["problem"]
        assert problem["code"] == "ghl_token_refused"
        assert "Invalid JWT" in problem["reason"]
        assert "set GHL_PRIVATE_TOKEN" in problem["fix"]
        assert "pit-wrong-token" not in str(facts)
        assert facts["status"] == "degraded"
        assert facts["problems"][0]["connectionId"] == entry["id"]
        assert "not verified" in facts["problems"][0]["reason"]
        assert entry["health"]["level"] == "red"


FULL = (
    "contacts.readonly contacts.write locations/tasks.readonly locations.readonly "
    "locations/customFields.readonly users.readonly"
)


async def _oauth_connection(
    service: InProcessService, account: str, scopes: str = FULL
) -> tuple[int, dict[str, Any]]:
    """A connection with the sandbox's OAuth tokens of its location, stored as an install stores them."""
    ghl = service.sandbox.ghl
    issued = ghl.oauth.issue(Grant(LOCATION, keys.GHL_COMPANY_ID, keys.GHL_LOCATION_ID, scopes))
    now = utcnow()
    async with unit_of_work(service.app.state.sessions) as session:
        [existing] = await connections.all_connections(session)
        await session.delete(existing)  # the location can have one connection
        await session.flush()
        connection = await connections.ensure(session, account, keys.GHL_LOCATION_ID, now)
        await credentials.put(
            session,
            service.app.state.registry.tokens.cipher,
            kind=CredentialKind.OAUTH,
            connection_id=connection.id,
            access_token=issued["access_token"],
            refresh_token=issued["refresh_token"],
            expires_at=now + timedelta(hours=1),
            scope=issued["scope"],
            now=now,
        )
    return connection.id, issued


async def test_an_oauth_connection_whose_grant_was_revoked_needs_a_new_install(
    service: InProcessService,
) -> None:
    connection_id, _ = await _oauth_connection(service, keys.RANKR_ACCOUNT_ID)
    assert (await verify(service, connection_id))["verified"] is True
    await service.ghl.sandbox_post("/oauth/revoke", locationId=keys.GHL_LOCATION_ID)
    result = await verify(service, connection_id)
    assert result["verified"] is False
    assert result["state"] == "failed"
    assert result["problem"]["code"] == "ghl_needs_reauth"
    assert "install the app on location" in result["problem"]["fix"]
    assert "http://service.test/oauth/ghl/install" in result["problem"]["fix"]


async def test_an_expired_oauth_token_is_refreshed_and_the_connection_stays_verified(
    service: InProcessService,
) -> None:
    connection_id, _ = await _oauth_connection(service, keys.RANKR_ACCOUNT_ID)
    await service.ghl.sandbox_post("/oauth/expire")
    result = await verify(service, connection_id)
    assert result["verified"] is True, result
    assert (await service.http.get("/sandbox/ghl/_sandbox/oauth")).json()["refreshes"] == 1


async def test_an_oauth_install_without_a_needed_scope_fails(service: InProcessService) -> None:
    connection_id, _ = await _oauth_connection(service, keys.RANKR_ACCOUNT_ID, "contacts.readonly")
    result = await verify(service, connection_id)
    assert result["problem"]["code"] == "ghl_scope_missing"
    assert "contacts.write, locations/tasks.readonly" in result["problem"]["reason"]
    assert result["locationName"] is None  # the location read needs locations.readonly too


async def test_an_oauth_install_from_before_the_console_scopes_fails_saying_the_sync_runs(
    service: InProcessService,
) -> None:
    sync_only = "contacts.readonly contacts.write locations/tasks.readonly locations.readonly"
    connection_id, _ = await _oauth_connection(service, keys.RANKR_ACCOUNT_ID, sync_only)
    result = await verify(service, connection_id)
    assert result["problem"]["code"] == "ghl_scope_missing"
    assert "locations/customFields.readonly, users.readonly" in result["problem"]["reason"]
    assert "the sync runs" in result["problem"]["reason"]
    assert "install the app on location" in result["problem"]["fix"]


async def test_a_connection_to_a_location_the_token_cannot_reach_fails(service: InProcessService) -> None:
    async with unit_of_work(service.app.state.sessions) as session:
        other = await connections.ensure(session, "acct_other", "LocNotInTheSandbox", utcnow())
    result = await verify(service, other.id)
    assert result["problem"]["code"] == "ghl_location_unknown"
    assert "LocNotInTheSandbox" in result["problem"]["reason"]
    assert "does not have access to this location" in result["problem"]["reason"]
    facts = await service.status(admin=True)
    assert facts["status"] == "degraded"
    assert [p["connectionId"] for p in facts["problems"]] == [other.id]


async def test_a_private_token_without_a_read_scope_fails_naming_the_scope(service: InProcessService) -> None:
    connection_id = await seeded_id(service)
    await service.ghl.sandbox_post("/oauth", private_token_scopes=["contacts.readonly", "contacts.write"])
    result = await verify(service, connection_id)
    assert result["problem"]["code"] == "ghl_scope_missing"
    assert "locations/tasks.readonly" in result["problem"]["reason"]
    assert "create a Private Integration token" in result["problem"]["fix"]


async def test_a_token_without_locations_readonly_is_verified_without_the_location_name(
    service: InProcessService,
) -> None:
    connection_id = await seeded_id(service)
    scopes = ["contacts.readonly", "contacts.write", "locations/tasks.readonly"]
    await service.ghl.sandbox_post("/oauth", private_token_scopes=scopes)
    result = await verify(service, connection_id)
    assert result["verified"] is True, result
    assert result["locationName"] is None


async def test_ghl_answering_5xx_is_could_not_verify_not_a_failure(service: InProcessService) -> None:
    connection_id = await seeded_id(service)
    await service.ghl.control(error_rate=1.0, error_status=503)
    result = await verify(service, connection_id)
    assert result["verified"] is False
    assert result["state"] == "unverifiable"
    assert result["problem"]["code"] == "ghl_unreachable"
    [entry] = (await service.status(admin=True))["connections"]
    assert entry["health"]["level"] == "amber"
    assert any(reason.startswith("could not verify") for reason in entry["health"]["reasons"])


async def test_refused_rankr_credentials_fail(database_url: str) -> None:
    async with started(
        database_url, rankr_client_id=keys.RANKR_CLIENT_ID, rankr_client_secret="wrong-secret"
    ) as service:
        [entry] = (await service.status(admin=True))["connections"]
        problem = entry["verification"]["problem"]
        assert problem["code"] == "rankr_credentials_refused"
        assert "RANKR_CLIENT_SECRET" in problem["fix"]
        assert "wrong-secret" not in str(entry)


async def test_rankr_credentials_of_another_account_fail(service: InProcessService) -> None:
    rankr = service.sandbox.rankr
    rankr.seed_contacts([{"email": "someone@example.com"}])
    connection_id, _ = await _oauth_connection(service, "acct_not_the_sandboxes")
    result = await verify(service, connection_id)
    assert result["problem"]["code"] == "rankr_account_mismatch"
    assert keys.RANKR_ACCOUNT_ID in result["problem"]["reason"]


async def test_the_admin_route_needs_the_token_and_a_known_connection(service: InProcessService) -> None:
    connection_id = await seeded_id(service)
    anonymous = await service.http.post(f"/admin/connections/{connection_id}/verify")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    unknown = await service.http.post("/admin/connections/999/verify", headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no connection 999"
    result = await verify(service, connection_id)
    assert result["connectionId"] == connection_id
    assert result["verified"] is True


async def test_a_rankr_client_without_the_scopes_the_sync_needs_fails(service: InProcessService) -> None:
    connection_id = await seeded_id(service)
    answer = await service.http.post(
        "/sandbox/rankr/_sandbox/oauth", json={"client_scopes": ["tasks.read", "notes.read"]}
    )
    assert answer.status_code == 200, answer.text
    result = await verify(service, connection_id)
    assert result["problem"]["code"] == "rankr_scope_missing"
    assert "contacts.read" in result["problem"]["reason"]
    assert "contacts.read, contacts.write, tasks.read" in result["problem"]["fix"]
