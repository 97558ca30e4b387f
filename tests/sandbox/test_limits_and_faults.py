"""Rate limits with each product's headers, injected faults and latency, and the request log."""

from __future__ import annotations

import time

import httpx
import pytest

from app.sandbox import keys
from tests.sandbox.conftest import Env
from tests.sandbox.specs import ghl_validate

LOCATION = {"locationId": keys.GHL_LOCATION_ID}
GHL_HEADERS = (
    "x-ratelimit-limit-daily",
    "x-ratelimit-daily-remaining",
    "x-ratelimit-interval-milliseconds",
    "x-ratelimit-max",
    "x-ratelimit-remaining",
)


def test_ghl_answers_carry_the_five_rate_limit_headers_counting_down(env: Env) -> None:
    answers = [env.ghl("GET", "/contacts/", params=LOCATION) for _ in range(3)]
    for answer in answers:
        assert all(name in answer.headers for name in GHL_HEADERS)
    assert [int(a.headers["x-ratelimit-remaining"]) for a in answers] == [99, 98, 97]
    assert [int(a.headers["x-ratelimit-daily-remaining"]) for a in answers] == [199_999, 199_998, 199_997]
    assert answers[0].headers["x-ratelimit-max"] == "100"
    assert answers[0].headers["x-ratelimit-interval-milliseconds"] == "10000"
    assert answers[0].headers["x-ratelimit-limit-daily"] == "200000"


def test_ghl_refuses_the_request_past_the_window_budget(env: Env) -> None:
    env.control("ghl", rate_max=3, rate_window_seconds=0.5)
    statuses = [env.ghl("GET", "/contacts/", params=LOCATION).status_code for _ in range(3)]
    refused = env.ghl("GET", "/contacts/", params=LOCATION)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json() == {"statusCode": 429, "message": "Too Many Requests"}
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["retry-after"] == "1"  # whole seconds, rounded up
    time.sleep(0.55)
    assert env.ghl("GET", "/contacts/", params=LOCATION).status_code == 200


def test_ghl_daily_limit(env: Env) -> None:
    env.control("ghl", daily_limit=2)
    assert [env.ghl("GET", "/contacts/", params=LOCATION).status_code for _ in range(3)] == [200, 200, 429]


def test_rankr_rate_limit_headers_and_problem(env: Env) -> None:
    env.control("rankr", rate_max=2, rate_window_seconds=30)
    first = env.rankr("GET", "/contacts")
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("2", "1")
    assert 0 < int(first.headers["ratelimit-reset"]) <= 30
    assert env.rankr("GET", "/contacts").headers["ratelimit-remaining"] == "0"
    refused = env.rankr("GET", "/contacts")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    # The token endpoint is not part of the account's budget.
    assert env.rankr_token()


def test_control_inspection_and_ui_routes_are_neither_limited_nor_logged(env: Env) -> None:
    env.control("ghl", rate_max=1)
    for _ in range(5):
        assert env.http.get(f"{env.ghl_base}/_sandbox/requests").status_code == 200
        assert env.http.get(f"{env.ghl_base}/_sandbox/control").status_code == 200
        assert env.http.get(f"{env.ghl_base}/ui").status_code == 200
    assert env.ghl("GET", "/contacts/", params=LOCATION).status_code == 200
    assert env.ghl("GET", "/contacts/", params=LOCATION).status_code == 429
    assert [r["status"] for r in env.requests("ghl")["requests"]] == [200, 429]


def test_control_reports_and_changes_settings(env: Env) -> None:
    settings = env.http.get(f"{env.rankr_base}/_sandbox/control").json()
    assert settings == {
        "rate_max": 600,
        "rate_window_seconds": 60.0,
        "daily_limit": None,
        "error_rate": 0.0,
        "error_status": 503,
        "latency_ms": 0.0,
        "answer_latency_ms": 0.0,
        "lost_answer_rate": 0.0,
        "webhooks_enabled": True,
        "webhook_drop_rate": 0.0,
    }
    assert env.control("rankr", error_rate=0.25, latency_ms=5)["error_rate"] == 0.25
    bad = env.http.post(f"{env.rankr_base}/_sandbox/control", json={"error_rate": 2})
    assert bad.status_code == 422
    bad = env.http.post(f"{env.rankr_base}/_sandbox/control", json={"error_rte": 0.1})
    assert bad.status_code == 422


def test_a_lost_answer_is_applied_and_answered_504(env: Env) -> None:
    env.control("ghl", lost_answer_rate=1.0)
    answer = env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Applied"})
    assert answer.status_code == 504
    env.control("ghl", lost_answer_rate=0.0)
    [stored] = env.http.get(f"{env.ghl_base}/_sandbox/state").json()["contacts"]
    assert stored["firstName"] == "Applied"


def test_error_rate_one_answers_the_configured_status(env: Env) -> None:
    env.control("ghl", error_rate=1.0, error_status=502)
    env.control("rankr", error_rate=1.0, error_status=500)
    ghl = env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Nope"})
    assert ghl.status_code == 502
    assert ghl.json() == {"statusCode": 502, "message": "Bad Gateway"}
    ghl_validate(ghl.json(), "common:BadRequestDTO")
    rankr = env.rankr("GET", "/contacts")
    assert rankr.status_code == 500
    assert rankr.headers["content-type"] == "application/problem+json"
    # The injected answer is all that happens: nothing was stored, and control routes still work.
    assert env.http.get(f"{env.ghl_base}/_sandbox/state").json()["contacts"] == []
    assert env.requests("ghl")["requests"][-1]["status"] == 502


def test_error_rate_applies_to_a_fraction(env: Env) -> None:
    env.control("ghl", error_rate=0.5, error_status=503)
    statuses = [env.ghl("GET", "/contacts/", params=LOCATION).status_code for _ in range(40)]
    assert set(statuses) == {200, 503}
    assert 5 < statuses.count(503) < 35


def test_latency_is_added_to_api_requests_only(env: Env) -> None:
    env.control("ghl", latency_ms=150)
    started = time.monotonic()
    env.ghl("GET", "/contacts/", params=LOCATION)
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    env.http.get(f"{env.ghl_base}/_sandbox/control")
    assert time.monotonic() - started < 0.15
    assert env.requests("ghl")["requests"][-1]["durationMs"] >= 150


def test_a_late_answer_comes_after_the_change_was_made(env: Env) -> None:
    env.control("ghl", answer_latency_ms=1000)
    with pytest.raises(httpx.ReadTimeout):
        env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Late"}, timeout=0.3)
    # The client gave up, yet the contact exists.
    contacts = env.http.get(f"{env.ghl_base}/_sandbox/state").json()["contacts"]
    assert [contact["firstName"] for contact in contacts] == ["Late"]


def test_request_log_over_http_marks_and_counts_writes(env: Env) -> None:
    mark = env.requests("ghl", since=10**12)["next"]
    cid = env.ghl("POST", "/contacts/", json={**LOCATION, "firstName": "Log"}).json()["contact"]["id"]
    env.ghl("GET", f"/contacts/{cid}")
    env.ghl("PUT", f"/contacts/{cid}", json={"lastName": "Book"})
    log = env.requests("ghl", since=mark)
    assert [(r["method"], r["path"], r["route"], r["status"]) for r in log["requests"]] == [
        ("POST", "/contacts/", "/contacts/", 201),
        ("GET", f"/contacts/{cid}", "/contacts/{contactId}", 200),
        ("PUT", f"/contacts/{cid}", "/contacts/{contactId}", 200),
    ]
    assert log["writes"] == 2
    assert log["next"] == mark + 3
    assert env.requests("ghl", since=log["next"])["requests"] == []


def test_request_log_in_process(env: Env) -> None:
    side = env.sandbox.rankr
    mark = side.mark()
    env.rankr("POST", "/contacts", json={"email": "in@process.example"})
    env.rankr("GET", "/contacts")
    assert side.writes_since(mark) == 1
    recent = side.requests_since(mark)
    assert [(r.method, r.path, r.status, r.is_write) for r in recent] == [
        ("POST", "/contacts", 201, True),
        ("GET", "/contacts", 200, False),
    ]
    assert side.requests[-1] == recent[-1]
    assert recent[0].at <= recent[1].at


def test_reset_restores_the_configured_state(env: Env) -> None:
    env.control("ghl", rate_max=1, error_rate=0.5)
    env.control("rankr", daily_limit=10)
    env.http.post(f"{env.ghl_base}/_sandbox/reset").raise_for_status()
    env.http.post(f"{env.rankr_base}/_sandbox/reset").raise_for_status()
    assert env.http.get(f"{env.ghl_base}/_sandbox/control").json()["rate_max"] == 100
    assert env.http.get(f"{env.rankr_base}/_sandbox/control").json()["daily_limit"] is None
    assert env.requests("ghl")["requests"] == []
