"""Outbound HTTP, domain-free: the client per upstream, ``Retry-After``, rate-limit snapshots, paths.

The upstream client built on these (retry decision, errors, metrics) is ``app.integrations.upstream``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import quote

import httpx


def url_path(*segments: str) -> str:
    """``/a/b/c`` with every segment percent-escaped, so an id from a webhook stays one segment:
    ``/``, ``?``, ``#`` and ``%`` in it cannot reach another path or the query. A segment that is
    empty, ``.`` or ``..`` cannot be made safe and raises ``httpx.InvalidURL``."""
    for segment in segments:
        if segment in ("", ".", ".."):
            raise httpx.InvalidURL(f"{segment!r} cannot be a path segment")
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, in its delta-seconds or HTTP-date form."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """What an upstream's rate-limit headers said in its latest answer."""

    limit: int | None
    remaining: int | None
    window_ms: int | None
    reset_at: datetime | None
    daily_limit: int | None
    daily_remaining: int | None
    observed_at: datetime


class RequestPacer(Protocol):
    """Keeps a client inside its upstream budget (``app.kit.pacing.Pacer``)."""

    async def acquire(self) -> None:
        """Wait for this request's turn (or raise ``OutOfBudget``)."""

    def observe(self, snapshot: RateLimitSnapshot) -> None:
        """Learn from an answer's rate-limit headers."""

    async def back_off(self, seconds: float | None) -> None:
        """A 429 came: no request for ``seconds`` (its Retry-After)."""


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header, or None when it is missing or not a number."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def build_http_client(
    timeout_seconds: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The long-lived client of one upstream, with explicit timeouts and a bounded pool.

    ``transport`` replaces the network (tests serve the sandboxes in-process over ``ASGITransport``).
    """
    timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False, transport=transport)
