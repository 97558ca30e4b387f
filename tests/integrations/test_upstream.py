"""The one retry decision, Retry-After parsing and rate-limit headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.errors import PermanentUpstreamError, TransientUpstreamError, UpstreamNotFound
from app.integrations.ghl.client import ghl_rate_limit
from app.integrations.rankr.client import rankr_rate_limit
from app.integrations.upstream import classify_status
from app.kit.http import parse_retry_after

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (201, None),
        (204, None),
        (400, PermanentUpstreamError),
        (401, PermanentUpstreamError),
        (403, PermanentUpstreamError),
        (404, UpstreamNotFound),
        (408, TransientUpstreamError),
        (409, PermanentUpstreamError),
        (422, PermanentUpstreamError),
        (429, TransientUpstreamError),
        (500, TransientUpstreamError),
        (502, TransientUpstreamError),
        (503, TransientUpstreamError),
        (504, TransientUpstreamError),
    ],
)
def test_classify_status(status: int, expected: type | None) -> None:
    assert classify_status(status) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("0", 0.0),
        ("Thu, 26 Nov 2026 12:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 11:59:00 GMT", 0.0),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_ghl_rate_limit_headers() -> None:
    snapshot = ghl_rate_limit(
        {
            "x-ratelimit-limit-daily": "200000",
            "x-ratelimit-daily-remaining": "199990",
            "x-ratelimit-interval-milliseconds": "10000",
            "x-ratelimit-max": "100",
            "x-ratelimit-remaining": "97",
        },
        NOW,
    )
    assert snapshot is not None
    assert (snapshot.limit, snapshot.remaining, snapshot.window_ms) == (100, 97, 10000)
    assert (snapshot.daily_limit, snapshot.daily_remaining) == (200000, 199990)
    assert ghl_rate_limit({}, NOW) is None


def test_rankr_rate_limit_headers() -> None:
    snapshot = rankr_rate_limit(
        {"ratelimit-limit": "600", "ratelimit-remaining": "12", "ratelimit-reset": "30"}, NOW
    )
    assert snapshot is not None
    assert (snapshot.limit, snapshot.remaining) == (600, 12)
    assert snapshot.reset_at is not None
    assert (snapshot.reset_at - NOW).total_seconds() == 30
