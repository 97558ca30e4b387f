"""The GHL sandbox's OAuth server, checked against openapi/oauth.json and docs/oauth/Authorization.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.sandbox import keys
from tests.sandbox.conftest import Env

REDIRECT = "https://sync.example.com/oauth/ghl/callback"


def authorize(env: Env, choice: str = "location", state: str = "s-1") -> str:
    """Approve the chooser form; the authorization code GHL redirects with."""
    form = {
        "client_id": keys.GHL_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "contacts.readonly contacts.write",
        "state": state,
        "choice": choice,
        "decision": "approve",
    }
    answer = env.http.post(f"{env.ghl_base}/oauth/chooselocation", data=form)
    assert answer.status_code == 302, answer.text
    target = urlsplit(answer.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
    query = parse_qs(target.query)
    assert query["state"] == [state]
    return query["code"][0]


def token(env: Env, **form: str) -> Any:
    body = {"client_id": keys.GHL_CLIENT_ID, "client_secret": keys.GHL_CLIENT_SECRET, **form}
    return env.http.post(f"{env.ghl_base}/oauth/token", data=body)


def exchange(env: Env, code: str) -> dict[str, Any]:
    answer = token(env, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def contacts_with(env: Env, access: str) -> int:
    headers = {"Authorization": f"Bearer {access}"}
    answer = env.ghl("GET", "/contacts/", params={"locationId": keys.GHL_LOCATION_ID}, headers=headers)
    return answer.status_code


def test_token_answer_matches_the_documented_shape(env: Env, shared_dir: Path) -> None:
    spec = json.loads((shared_dir / "ghl/openapi/oauth.json").read_text())
    documented = set(spec["components"]["schemas"]["GetAccessCodeSuccessfulResponseDto"]["properties"])
    body = exchange(env, authorize(env))
    assert set(body) <= documented
    assert body["userType"] == "Location"
    assert body["locationId"] == keys.GHL_LOCATION_ID
    assert body["expires_in"] == 86399
    assert body["scope"] == "contacts.readonly contacts.write"
    assert contacts_with(env, body["access_token"]) == 200


def test_the_chooser_page_and_its_refusals(env: Env) -> None:
    params = {
        "response_type": "code",
        "client_id": keys.GHL_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": "x",
    }
    page = env.http.get(f"{env.ghl_base}/oauth/chooselocation", params=params)
    assert page.status_code == 200
    assert keys.GHL_LOCATION_ID in page.text
    bad = env.http.get(f"{env.ghl_base}/oauth/chooselocation", params={**params, "client_id": "nope"})
    assert bad.status_code == 400
    denied = env.http.post(
        f"{env.ghl_base}/oauth/chooselocation",
        data={"client_id": keys.GHL_CLIENT_ID, "redirect_uri": REDIRECT, "state": "x", "decision": "deny"},
    )
    assert parse_qs(urlsplit(denied.headers["location"]).query) == {
        "error": ["access_denied"],
        "state": ["x"],
    }


def test_a_code_is_single_use_and_bound_to_its_redirect_uri(env: Env) -> None:
    code = authorize(env)
    wrong = token(env, grant_type="authorization_code", code=code, redirect_uri="https://evil.example/cb")
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert token(env, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).status_code == 400
    assert token(env, grant_type="authorization_code", code="x", client_secret="wrong").status_code == 401
    assert token(env, grant_type="password").status_code == 400
    assert (
        env.http.post(f"{env.ghl_base}/oauth/token", data={"grant_type": "refresh_token"}).status_code == 422
    )


def test_every_refresh_rotates_and_a_spent_refresh_token_is_invalid_grant(env: Env) -> None:
    first = exchange(env, authorize(env))
    second = token(env, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    again = token(env, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    counters = env.http.get(f"{env.ghl_base}/_sandbox/oauth").json()
    assert (counters["refreshes"], counters["rejectedRefreshes"]) == (1, 1)


def test_expired_access_tokens_answer_401_and_refresh_revives_access(env: Env) -> None:
    body = exchange(env, authorize(env))
    assert env.http.post(f"{env.ghl_base}/_sandbox/oauth/expire").json()["expired"] == 1
    assert contacts_with(env, body["access_token"]) == 401
    fresh = token(env, grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert contacts_with(env, fresh["access_token"]) == 200


def test_a_lost_refresh_answer_still_spends_the_old_refresh_token(env: Env) -> None:
    body = exchange(env, authorize(env))
    env.http.post(f"{env.ghl_base}/_sandbox/oauth", json={"lose_refresh_answers": 1}).raise_for_status()
    lost = token(env, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert lost.status_code == 504
    retry = token(env, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert retry.json()["error"] == "invalid_grant"


def test_agency_tokens_mint_location_tokens_and_cannot_call_the_contacts_api(env: Env) -> None:
    agency = exchange(env, authorize(env, choice="company"))
    assert agency["userType"] == "Company"
    assert agency["approvedLocations"] == [keys.GHL_LOCATION_ID]
    assert contacts_with(env, agency["access_token"]) == 401
    form = {"companyId": keys.GHL_COMPANY_ID, "locationId": keys.GHL_LOCATION_ID}
    headers = {"Authorization": f"Bearer {agency['access_token']}", "Version": "2021-07-28"}
    minted = env.http.post(f"{env.ghl_base}/oauth/locationToken", data=form, headers=headers)
    assert minted.status_code == 200, minted.text
    assert "refresh_token" not in minted.json()
    assert contacts_with(env, minted.json()["access_token"]) == 200
    other = env.http.post(
        f"{env.ghl_base}/oauth/locationToken", data={**form, "locationId": "Other"}, headers=headers
    )
    assert other.status_code == 400
    location = exchange(env, authorize(env))["access_token"]
    refused = env.http.post(
        f"{env.ghl_base}/oauth/locationToken",
        data=form,
        headers={**headers, "Authorization": f"Bearer {location}"},
    )
    assert refused.status_code == 401


def test_approval_and_uninstall_send_the_app_webhooks(env: Env) -> None:
    authorize(env)
    env.http.post(f"{env.ghl_base}/_sandbox/oauth/uninstall", json={"locationId": keys.GHL_LOCATION_ID})
    env.drain()
    bodies = [body for body in env.capture.accepted("ghl") if body["type"] in {"INSTALL", "UNINSTALL"}]
    assert [body["type"] for body in bodies] == ["INSTALL", "UNINSTALL"]
    assert all(body["locationId"] == keys.GHL_LOCATION_ID for body in bodies)
    assert bodies[0]["companyId"] == keys.GHL_COMPANY_ID
