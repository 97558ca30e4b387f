"""The shared pieces on their own, with an injected clock: rate limiter, stamps, request log, tokens,
ids, phone normalisation and cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.sandbox.ghl.state import normalize_phone, normalize_tags
from app.sandbox.ids import ghl_id, prefixed_id
from app.sandbox.rankr.state import BadCursor, decode_cursor, encode_cursor
from app.sandbox.rankr.tokens import InvalidScope, TokenIssuer
from app.sandbox.ratelimit import RateLimiter
from app.sandbox.requestlog import RequestLog
from app.sandbox.stamps import next_stamp

NOON = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.wall = NOON

    def monotonic(self) -> float:
        return self.now

    def clock(self) -> datetime:
        return self.wall


def test_sliding_window_refuses_the_max_plus_first_request_until_the_oldest_leaves() -> None:
    t = FakeTime()
    limiter = RateLimiter(3, 10.0, None, t.monotonic, t.clock)
    decisions = []
    for _ in range(3):
        decisions.append(limiter.hit("loc"))
        t.now += 1
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.allowed for d in decisions)
    refused = limiter.hit("loc")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(7.0)
    assert refused.retry_after_header == "7"
    assert limiter.hit("other").allowed, "budgets are per key"
    t.now += 7.0
    assert limiter.hit("loc").allowed


def test_refused_requests_do_not_spend_budget_and_peek_spends_nothing() -> None:
    t = FakeTime()
    limiter = RateLimiter(1, 10.0, None, t.monotonic, t.clock)
    limiter.hit("k")
    for _ in range(5):
        assert not limiter.hit("k").allowed
    assert limiter.peek("k").remaining == 0
    t.now += 10.0
    assert limiter.peek("k").remaining == 1
    assert limiter.hit("k").allowed


def test_daily_limit_resets_at_utc_midnight() -> None:
    t = FakeTime()
    limiter = RateLimiter(100, 10.0, 2, t.monotonic, t.clock)
    assert [limiter.hit("k").allowed for _ in range(3)] == [True, True, False]
    refused = limiter.hit("k")
    assert refused.daily_remaining == 0
    assert refused.retry_after == pytest.approx(12 * 3600)
    t.wall += timedelta(hours=12)
    assert limiter.hit("k").allowed


def test_configure_changes_limits_at_run_time() -> None:
    t = FakeTime()
    limiter = RateLimiter(1, 10.0, None, t.monotonic, t.clock)
    limiter.hit("k")
    limiter.configure(max_requests=2)
    assert limiter.hit("k").allowed
    assert not limiter.hit("k").allowed


def test_stamps_are_milliseconds_and_strictly_grow() -> None:
    first = next_stamp(NOON.replace(microsecond=123_456), None)
    assert first.microsecond == 123_000
    assert next_stamp(NOON.replace(microsecond=123_999), first) == first + timedelta(milliseconds=1)
    assert next_stamp(NOON - timedelta(seconds=5), first) == first + timedelta(milliseconds=1)
    later = NOON + timedelta(seconds=1)
    assert next_stamp(later, first) == later


def test_request_log_marks() -> None:
    log = RequestLog(max_size=3)
    mark = log.mark()
    for method in ("GET", "POST", "PUT", "DELETE"):
        log.record(method, "/x", None, 200, NOON, 1.0)
    assert [e.method for e in log.entries()] == ["POST", "PUT", "DELETE"], "bounded: the oldest go first"
    assert log.writes_since(mark) == 3
    assert log.writes_since(log.mark()) == 0
    log.clear()
    assert log.entries() == []
    assert log.mark() == mark + 4


def test_tokens_expire_and_scopes_are_checked() -> None:
    t = FakeTime()
    issuer = TokenIssuer("id", "secret", "acct", 3600, t.monotonic)
    assert issuer.credentials_valid("id", "secret")
    assert not issuer.credentials_valid("id", "nope")
    token = issuer.issue("contacts.read")
    assert issuer.lookup(token.value) == token
    assert token.scopes == {"contacts.read"}
    t.now += 3600
    assert issuer.lookup(token.value) is None
    with pytest.raises(InvalidScope):
        issuer.issue("contacts.read admin")


def test_ids_look_like_the_products() -> None:
    assert re.fullmatch(r"[A-Za-z0-9]{20}", ghl_id())
    assert re.fullmatch(r"con_[A-Za-z0-9]{20}", prefixed_id("con"))
    assert len({ghl_id() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 888-888-8888", "+18888888888"),
        ("(415) 555-0123", "+14155550123"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
        ("14155550123", "+14155550123"),
    ],
)
def test_phone_normalisation(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


def test_tag_normalisation() -> None:
    assert normalize_tags(["B", "a", " b ", "", "A"]) == ["b", "a"]


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(NOON, "con_1")) == (NOON, "con_1")
    for bad in ("zz", "e30", encode_cursor(NOON, "x")[:-3]):
        with pytest.raises(BadCursor):
            decode_cursor(bad)
