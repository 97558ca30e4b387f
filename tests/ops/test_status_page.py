"""The status page in a real headless browser, its health rule, and replaying dead events from it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from app.ops.status_page import AMBER_AGE_SECONDS, RED_AGE_SECONDS, duration, health_of, render_status_page
from tests.support.browser import headless_chromium, screenshot
from tests.support.service import Service, running_service, wait_for


def entry(**changes: Any) -> dict[str, Any]:
    events = {"pending": 0, "processing": 0, "retrying": 0, "done": 3, "skipped": 0, "dead": 0}
    base: dict[str, Any] = {
        "state": "active",
        "events": {**events, **changes.pop("events", {})},
        "oldestPendingAgeSeconds": None,
        "rateBudget": {"ghl": {"limit": 100, "remaining": 90}},
    }
    return {**base, **changes}


@pytest.mark.parametrize(
    ("facts", "level", "reason"),
    [
        (entry(), "green", None),
        (entry(events={"retrying": 2}), "amber", "2 event(s) retrying"),
        (entry(oldestPendingAgeSeconds=AMBER_AGE_SECONDS + 1), "amber", "oldest open event waits for 1m 1s"),
        (entry(rateBudget={"ghl": {"limit": 100, "remaining": 9}}), "amber", "ghl rate budget low"),
        (entry(events={"dead": 1, "retrying": 1}), "red", "1 dead event(s)"),
        (entry(oldestPendingAgeSeconds=RED_AGE_SECONDS + 1), "red", "oldest open event waits for 15m 1s"),
        (entry(state="disabled"), "red", "connection is disabled"),
    ],
)
def test_health_at_a_glance_follows_the_documented_rule(
    facts: dict[str, Any], level: str, reason: str | None
) -> None:
    health = health_of(facts)
    assert health["level"] == level
    if reason is None:
        assert health["reasons"] == []
    else:
        assert any(reason in text for text in health["reasons"]), health


def test_durations_read_as_people_say_them() -> None:
    assert [duration(s) for s in (None, 4.9, 75.2, 7322)] == ["-", "4s", "1m 15s", "2h 2m"]


def _field(section: WebElement, name: str) -> str:
    return section.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text


def _section(browser: Any) -> WebElement:
    element: WebElement = browser.find_element(By.CSS_SELECTOR, "section.connection")
    return element


def _dead(service: Service) -> int:
    return int(service.status()["connections"][0]["events"]["dead"])


def _verified(service: Service) -> None:
    """Wait for the start-up verification, so the faults a test injects later do not meet it."""
    wait_for(lambda: service.status()["connections"][0]["verification"]["verified"], what="the verification")


@pytest.mark.e2e
def test_an_operator_sees_a_dead_event_signs_in_and_replays_it_in_a_browser(sqlite_url: str) -> None:
    with running_service(sqlite_url, admin_token="s3cret") as service, headless_chromium() as browser:
        _verified(service)
        service.rankr.create(email=f"fine.{uuid.uuid4().hex[:6]}@example.com", firstName="Fine")
        service.settle()
        service.ghl.control(error_rate=1.0, error_status=422)
        email = f"refused.{uuid.uuid4().hex[:6]}@example.com"
        refused = service.rankr.create(email=email, firstName="Refused")
        wait_for(lambda: _dead(service) == 1, what="the dead event")

        # Anyone: health, counts and budgets, but no ids or errors.
        browser.get(f"{service.url}/status")
        section = _section(browser)
        assert section.get_attribute("data-health") == "red"
        badge = section.find_element(By.CSS_SELECTOR, ".badge")
        assert badge.text == "RED"
        assert badge.value_of_css_property("background-color") == "rgba(221, 34, 34, 1)"
        assert "1 dead event(s) need a replay or a fix" in section.text
        assert (_field(section, "dead"), _field(section, "pending"), _field(section, "linked")) == (
            "1",
            "0",
            "1",
        )
        assert _field(section, "to-ghl").endswith(" ago")
        assert _field(section, "to-rankr") == "never"
        assert _field(section, "token") == "private: ok"
        ghl_budget = section.find_element(By.CSS_SELECTOR, 'table.budgets tr[data-upstream="ghl"]').text
        assert ghl_budget.startswith("ghl ")
        assert ghl_budget.endswith("%")
        assert section.find_elements(By.CSS_SELECTOR, "table.errors") == []
        assert refused["contactId"] not in browser.page_source
        screenshot(browser, "status-public")

        # A wrong token shows nothing more.
        browser.find_element(By.ID, "token").send_keys("wrong")
        browser.find_element(By.ID, "login").click()
        wait_for(lambda: "the admin token is missing or wrong" in browser.page_source, what="the refusal")
        browser.get(f"{service.url}/status")

        # The right token: ids and the latest error, with the affected record.
        browser.find_element(By.ID, "token").send_keys("s3cret")
        browser.find_element(By.ID, "login").click()
        wait_for(lambda: browser.find_elements(By.ID, "signed-in"), what="the detailed page")
        row = _section(browser).find_element(By.CSS_SELECTOR, "table.errors tr[data-event]")
        assert row.find_element(By.CSS_SELECTOR, "td.record").text == refused["contactId"]
        assert "ghl 422" in row.text
        assert email not in browser.page_source
        screenshot(browser, "status-red-detailed")

        # Fix the cause, replay from the page: the event runs again and the connection turns green.
        service.ghl.control(error_rate=0.0)
        row.find_element(By.TAG_NAME, "button").click()
        notice = wait_for(lambda: browser.find_elements(By.ID, "notice"), what="the replay notice")
        assert notice[0].text == "1 dead event(s) put back in the queue"
        service.settle()
        assert len(service.ghl.by_email(email)) == 1
        browser.get(f"{service.url}/status")
        assert _section(browser).get_attribute("data-health") == "green"
        assert _field(_section(browser), "linked") == "2"
        screenshot(browser, "status-green")

        # Signing out ends the session: the page shows no details again.
        browser.find_element(By.ID, "logout").click()
        wait_for(lambda: browser.find_elements(By.ID, "login"), what="the signed-out page")
        assert browser.find_elements(By.CSS_SELECTOR, "table.errors") == []


@pytest.mark.e2e
def test_replaying_from_the_page_needs_the_admin_token_and_writes_nothing_without_it(
    sqlite_url: str,
) -> None:
    # Behaviour, on one database. On Postgres the replayed event died again in full e2e runs only,
    # never alone: unexplained so far, and worth a look.
    with running_service(sqlite_url, admin_token="s3cret") as service:
        _verified(service)
        service.ghl.control(error_rate=1.0, error_status=422)
        service.rankr.create(email=f"refused.{uuid.uuid4().hex[:6]}@example.com")
        wait_for(lambda: _dead(service) == 1, what="the dead event")
        [connection] = service.status()["connections"]
        assert connection["health"]["level"] == "red"
        replay = f"{service.url}/status/replay"
        for token in ("", "s3cret-not", "S3CRET"):
            answer = httpx.post(replay, data={"token": token, "connection": connection["id"]})
            assert answer.status_code == 401
            assert answer.headers["content-type"].startswith("application/problem+json")
        forged = httpx.post(
            replay, data={"connection": connection["id"]}, cookies={"rankr_ghl_sync_status": "x"}
        )
        assert forged.status_code == 401
        assert _dead(service) == 1
        assert httpx.post(replay, data={"token": "s3cret"}).status_code == 422
        assert httpx.post(replay, data={"token": "s3cret", "connection": 999}).status_code == 404
        service.ghl.control(error_rate=0.0)
        answer = httpx.post(replay, data={"token": "s3cret", "connection": connection["id"]})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/status?replayed=1"
        service.settle()
        [connection] = service.status()["connections"]
        assert connection["events"]["dead"] == 0, service.events()
        assert connection["health"] == {"level": "green", "reasons": []}


def test_the_page_shows_a_connections_token_when_the_status_has_one() -> None:
    facts = {
        "status": "ok",
        "generatedAt": "2026-11-26T10:00:00+00:00",
        "connections": [
            {
                **entry(),
                "id": 1,
                "name": "a <-> b",
                "lastSyncToGhlAt": "2026-11-26T09:58:30+00:00",
                "lastSyncToRankrAt": None,
                "linked": {"contacts": 3},
                "token": {"kind": "oauth", "state": "valid", "expiresAt": "2026-11-27T10:00:00+00:00"},
            },
            {**entry(), "id": 2, "name": "<script>c</script>", "linked": {"contacts": 0}},
        ],
        "unrouted": {"accounts": 0, "events": {"dead": 0}},
    }
    page = render_status_page(facts, detailed=False)
    assert 'data-field="token">oauth: valid, expires 2026-11-27T10:00:00+00:00<' in page
    assert 'data-field="to-ghl" title="2026-11-26T09:58:30+00:00">1m 30s ago<' in page
    assert 'data-field="token">-<' in page
    assert "<script>c</script>" not in page
    assert "&lt;script&gt;c&lt;/script&gt;" in page
