"""GHL marketplace OAuth end to end: install flow, token expiry and refresh, invalid_grant, lost answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from app.sandbox import keys
from tests.support.install import (
    choose,
    credential_rows,
    install,
    oauth_control,
    oauth_state,
    start,
    token_of,
)
from tests.support.service import Service, running_service, wait_for

KEY = Fernet.generate_key().decode()


def oauth_service(database_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {"token_encryption_key": KEY, "needs_reauth_recheck_seconds": 0.3, **overrides}
    return running_service(database_url, **values)


@pytest.fixture
def service(database_url: str) -> Iterator[Service]:
    with oauth_service(database_url) as running:
        yield running


def synced_to_ghl(service: Service, email: str) -> Any:
    return wait_for(lambda: service.ghl.by_email(email), what=f"{email} in GHL")


def test_install_flow_connects_the_location_and_syncs_with_its_oauth_token(service: Service) -> None:
    params = start(service)
    assert params["client_id"] == keys.GHL_CLIENT_ID
    assert params["redirect_uri"] == f"{service.url}/oauth/ghl/callback"
    assert set(params["scope"].split()) == {
        "contacts.readonly",
        "contacts.write",
        "locations/tasks.readonly",
        "locations.readonly",
        "locations/customFields.readonly",
        "users.readonly",
        "oauth.write",
    }
    callback = choose(service, params)
    assert parse_qs(urlsplit(callback).query)["state"] == [params["state"]]
    page = service.http.get(callback)
    assert page.status_code == 200, page.text
    assert "Connected" in page.text
    # The new connection was checked at once with its OAuth token (the install asked for locations.readonly).
    assert "Verification: verified (GHL location &#x27;Sandbox sub-account&#x27;)" in page.text

    [row] = credential_rows(service)
    assert (row["kind"], row["state"], row["company_id"]) == ("oauth", "ok", keys.GHL_COMPANY_ID)
    # Stored encrypted: Fernet tokens, neither the sandbox's token prefixes.
    for stored in (row["access_token"], row["refresh_token"]):
        assert stored.startswith("gAAAAA")
        assert "sbx_" not in stored
    assert oauth_state(service)["codeExchanges"] == 1
    assert token_of(service, row["connection_id"])["kind"] == "oauth"

    # The connection syncs (that it does so with the OAuth token, not the Private Integration token,
    # shows in the invalid_grant test: with the grant revoked, events wait).
    email = f"oauth.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=email, firstName="Oauth")
    synced_to_ghl(service, email)
    service.settle()
    assert {e["status"] for e in service.events()} == {"done"}
    # The sandbox's INSTALL webhook was stored and applied to the (already active) connection.
    installs = [e for e in service.events("ghl") if e["type"] == "INSTALL"]
    assert len(installs) == 1
    assert installs[0]["status"] == "done"


def test_a_tampered_state_or_an_error_from_ghl_creates_nothing(service: Service) -> None:
    params = start(service)
    callback = urlsplit(choose(service, params))
    code = parse_qs(callback.query)["code"][0]
    base = f"{service.url}/oauth/ghl/callback"
    tampered = params["state"][:-6] + ("AAAAAA" if not params["state"].endswith("AAAAAA") else "BBBBBB")
    for query in (
        {"code": code, "state": tampered},
        {"code": code, "state": Fernet(Fernet.generate_key()).encrypt(b'{"rankrAccountId":"x"}').decode()},
        {"code": code},
        {"error": "access_denied", "state": params["state"]},
    ):
        answer = service.http.get(base, params=query)
        assert answer.status_code == 400, (query, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert "not installed" in answer.text
    denied = choose(service, start(service), decision="deny")
    assert parse_qs(urlsplit(denied).query)["error"] == ["access_denied"]
    assert service.http.get(denied).status_code == 400
    assert credential_rows(service) == []
    assert oauth_state(service)["codeExchanges"] == 0
    # A used code cannot be replayed with a fresh state either.
    fresh = start(service)
    assert service.http.get(base, params={"code": "not-a-code", "state": fresh["state"]}).status_code == 502
    assert credential_rows(service) == []


def test_install_without_a_rankr_account_is_a_problem(database_url: str) -> None:
    with oauth_service(database_url, sandbox=True, rankr_account_id=None) as service:
        answer = service.http.get(
            f"{service.url}/oauth/ghl/install", params={"rankrAccountId": "x" * 300}, follow_redirects=False
        )
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/problem+json"


def test_an_access_token_expiring_mid_run_is_refreshed_once(service: Service) -> None:
    assert install(service).status_code == 200
    first = f"before.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=first)
    synced_to_ghl(service, first)
    generation = credential_rows(service)[0]["generation"]

    assert oauth_control(service, "/expire")["expired"] >= 1
    mark = service.ghl.mark()
    second = f"after.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=second)
    synced_to_ghl(service, second)
    service.settle()

    assert oauth_state(service)["refreshes"] == 1
    [row] = credential_rows(service)
    assert row["generation"] == generation + 1
    assert row["state"] == "ok"
    statuses = [r["status"] for r in service.ghl.requests_since(mark) if r["path"] != "/oauth/token"]
    assert statuses.count(401) == 1  # one rejected call, then the retry with the new token
    assert all(e["status"] == "done" and e["attempts"] == 1 for e in service.events())


def test_a_token_about_to_expire_is_refreshed_before_use(database_url: str) -> None:
    with oauth_service(database_url, ghl_token_refresh_margin_seconds=30) as service:
        oauth_control(service, access_token_ttl_seconds=40)
        assert install(service).status_code == 200
        assert token_of(service)["state"] == "ok"
        wait_for(
            lambda: token_of(service)["state"] == "expiring", timeout=20, what="the token to be expiring"
        )
        mark = service.ghl.mark()
        email = f"early.{uuid.uuid4().hex[:8]}@example.com"
        service.rankr.create(email=email)
        synced_to_ghl(service, email)
        assert oauth_state(service)["refreshes"] == 1
        assert 401 not in [r["status"] for r in service.ghl.requests_since(mark)]


def test_invalid_grant_marks_the_connection_and_its_events_wait_for_a_new_install(service: Service) -> None:
    assert install(service).status_code == 200
    oauth_control(service, "/revoke", locationId=keys.GHL_LOCATION_ID)  # the admin withdrew consent
    email = f"waits.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=email)
    wait_for(lambda: token_of(service)["state"] == "needs_reauth", what="needs_reauth on /status")
    [row] = credential_rows(service)
    assert row["state"] == "needs_reauth"
    # The event waits (pending, no attempt counted) rather than going dead.
    [event] = service.events("rankr")
    assert event["status"] in {"pending", "processing"}
    assert event["attempts"] <= 1
    assert service.ghl.by_email(email) == []

    assert install(service).status_code == 200  # re-authorise
    synced_to_ghl(service, email)
    service.settle()
    assert token_of(service)["state"] == "ok"
    [event] = service.events("rankr")
    assert event["status"] == "done"


def test_a_lost_refresh_answer_ends_in_needs_reauth_not_in_a_loop(service: Service) -> None:
    assert install(service).status_code == 200
    oauth_control(service, lose_refresh_answers=1)
    oauth_control(service, "/expire")
    email = f"lost.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=email)
    wait_for(lambda: token_of(service)["state"] == "needs_reauth", what="needs_reauth after the lost answer")
    state = oauth_state(service)
    # GHL rotated once (the answer was lost); the retry with the spent token was refused; nothing more.
    assert (state["refreshes"], state["rejectedRefreshes"]) == (1, 1)
    assert service.ghl.by_email(email) == []
    assert [e["status"] for e in service.events("rankr")] != ["dead"]


def test_agency_install_mints_location_tokens_and_mints_again_on_expiry(service: Service) -> None:
    page = install(service, choice="company")
    assert page.status_code == 200, page.text
    rows = credential_rows(service)
    assert sorted(r["kind"] for r in rows) == ["agency", "agency_location"]
    assert oauth_state(service)["locationTokens"] == 1
    email = f"agency.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=email)
    synced_to_ghl(service, email)

    oauth_control(service, "/expire")
    second = f"agency2.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=second)
    synced_to_ghl(service, second)
    state = oauth_state(service)
    # The location token is minted again from the agency token, itself refreshed once.
    assert (state["locationTokens"], state["refreshes"]) == (2, 1)


def test_uninstall_disables_the_connection_and_its_events_are_kept_not_applied(service: Service) -> None:
    assert install(service).status_code == 200
    oauth_control(service, "/uninstall", locationId=keys.GHL_LOCATION_ID)
    wait_for(
        lambda: service.status()["connections"][0]["state"] == "disabled", what="the connection disabled"
    )
    email = f"gone.{uuid.uuid4().hex[:8]}@example.com"
    service.rankr.create(email=email)
    service.settle()
    [event] = service.events("rankr")
    assert event["status"] == "dead"
    assert "disabled connection" in event["last_error"]
    assert service.ghl.by_email(email) == []
    assert service.status()["connections"][0]["events"]["dead"] == 1

    assert install(service).status_code == 200  # installing again re-enables it
    assert service.status()["connections"][0]["state"] == "active"
