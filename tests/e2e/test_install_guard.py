"""The GHL install cannot be forged: starting it takes the admin's credentials or a one-time link, and
its state is used once, by the browser that started it. Refusals show on /status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from app.sandbox import keys
from tests.support.install import choose, start
from tests.support.service import Service, running_service

ADMIN = {"Authorization": "Bearer adm1n-t0ken"}


@pytest.fixture
def service(sqlite_url: str) -> Iterator[Service]:
    settings: dict[str, Any] = {
        "token_encryption_key": Fernet.generate_key().decode(),
        "admin_token": "adm1n-t0ken",
    }
    with running_service(sqlite_url, **settings) as running:
        yield running


def install_url(service: Service) -> str:
    return f"{service.url}/oauth/ghl/install"


def status(service: Service) -> dict[str, Any]:
    return dict(service.http.get(f"{service.url}/status", headers=ADMIN).json())


def test_a_stranger_cannot_start_an_install(service: Service) -> None:
    with httpx.Client() as stranger:
        answer = stranger.get(install_url(service), params={"rankrAccountId": "acct_victim"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert "one-time install link" in answer.json()["detail"]


def test_the_admin_installs_once_and_a_replayed_callback_is_refused_and_shown(service: Service) -> None:
    service.http.headers.update(ADMIN)
    callback = choose(service, start(service))
    service.http.headers.pop("Authorization")
    assert "Connected" in service.http.get(callback).text

    replay = service.http.get(callback)
    assert replay.status_code == 400
    assert "already used (a replay)" in replay.text
    installs = status(service)["installs"]
    assert installs["refusedCallbacks"] == 1
    assert installs["latestRefusal"]["reason"].startswith("this install callback was already used")
    assert installs["latestRefusal"]["rankrAccountId"] == keys.RANKR_ACCOUNT_ID
    public = service.http.get(f"{service.url}/status").json()["installs"]
    assert "rankrAccountId" not in public["latestRefusal"]


def test_a_callback_in_another_browser_is_refused_and_the_real_one_still_works(service: Service) -> None:
    service.http.headers.update(ADMIN)
    callback = choose(service, start(service))
    with httpx.Client() as other_browser:
        refused = other_browser.get(callback)
    assert refused.status_code == 400
    assert "another browser" in refused.text
    assert "Connected" in service.http.get(callback).text
    assert status(service)["installs"]["refusedCallbacks"] == 1


def test_a_forged_state_is_refused_and_creates_nothing(service: Service) -> None:
    answer = service.http.get(f"{service.url}/oauth/ghl/callback", params={"code": "x", "state": "forged"})
    assert answer.status_code == 400
    assert "invalid or expired" in answer.text
    facts = status(service)
    assert facts["installs"]["refusedCallbacks"] == 0  # an unknown state has no row to count on
    assert [c["id"] for c in facts["connections"]] == [1]  # the sandbox's own connection only


def test_a_one_time_link_starts_one_install_without_the_token(service: Service) -> None:
    made = service.http.post(
        f"{service.url}/admin/install-links", json={"rankrAccountId": "acct_linked"}, headers=ADMIN
    )
    assert made.status_code == 200, made.text
    link = made.json()["url"]
    with httpx.Client() as browser:
        first = browser.get(link)
        assert first.status_code == 302
        assert "rankr_ghl_sync_install" in first.cookies
        again = browser.get(link)
    assert again.status_code == 403
    assert "already used" in again.text


def test_signing_in_on_the_status_page_lets_the_browser_start_an_install(service: Service) -> None:
    with httpx.Client() as browser:
        signed_in = browser.post(f"{service.url}/status/login", data={"token": "adm1n-t0ken"})
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"].lower()
        for attribute in ("httponly", "samesite=strict", "max-age=28800", "path=/"):
            assert attribute in cookie
        assert "adm1n-t0ken" not in cookie
        started = browser.get(install_url(service), params={"rankrAccountId": "acct_x"})
        assert started.status_code == 302
        browser.post(f"{service.url}/status/logout")
        assert browser.get(install_url(service), params={"rankrAccountId": "acct_x"}).status_code == 401
