"""A sliding-window request budget per key (GHL location, Rankr account), plus an optional daily cap.

One limiter serves both sandboxes; each side turns a ``RateDecision`` into its own headers
(GHL's ``X-RateLimit-*``, Rankr's ``RateLimit-*``). The window is a log of request times, so the
budget is exact: the (max+1)th request inside any window is refused, and ``reset_after`` says when
the oldest request in the window leaves it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.kit.clock import Clock


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's answer for one request, with what the rate-limit headers report."""

    allowed: bool
    limit: int
    remaining: int
    window_seconds: float
    reset_after: float  # seconds until the window frees a slot (or fully resets when empty)
    daily_limit: int | None
    daily_remaining: int | None
    retry_after: float  # seconds a refused client should wait; 0 when allowed

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` in whole seconds, rounded up and at least 1 (HTTP allows no fractions)."""
        return str(max(1, math.ceil(self.retry_after)))


@dataclass
class _Bucket:
    hits: deque[float]
    day: date | None = None
    day_count: int = 0


class RateLimiter:
    """Counts requests per key in a sliding window of ``window_seconds``; thread-safe."""

    def __init__(
        self,
        max_requests: int,
        window_seconds: float,
        daily_limit: int | None,
        monotonic: Callable[[], float],
        clock: Clock,
    ) -> None:
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.daily_limit = daily_limit
        self._monotonic = monotonic
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def configure(
        self,
        max_requests: int | None = None,
        window_seconds: float | None = None,
        daily_limit: int | None = None,
    ) -> None:
        with self._lock:
            if max_requests is not None:
                self.max_requests = max_requests
            if window_seconds is not None:
                self.window_seconds = window_seconds
            if daily_limit is not None:
                self.daily_limit = daily_limit

    def reset(self, max_requests: int, window_seconds: float, daily_limit: int | None) -> None:
        """Forget every count and set all three limits (a daily limit of None means none)."""
        with self._lock:
            self._buckets.clear()
            self.max_requests = max_requests
            self.window_seconds = window_seconds
            self.daily_limit = daily_limit

    def hit(self, key: str) -> RateDecision:
        """Count one request for ``key`` unless the budget is spent; refused requests are not counted."""
        return self._budget(key, count=True)

    def peek(self, key: str) -> RateDecision:
        """The budget as it stands, without counting a request (for answers refused before the limiter)."""
        return self._budget(key, count=False)

    def _budget(self, key: str, *, count: bool) -> RateDecision:
        with self._lock:
            now = self._monotonic()
            bucket = self._buckets.setdefault(key, _Bucket(hits=deque()))
            while bucket.hits and bucket.hits[0] <= now - self.window_seconds:
                bucket.hits.popleft()
            today = self._clock().date()
            if bucket.day != today:
                bucket.day, bucket.day_count = today, 0
            window_full = len(bucket.hits) >= self.max_requests
            day_full = self.daily_limit is not None and bucket.day_count >= self.daily_limit
            allowed = not (window_full or day_full)
            if count and allowed:
                bucket.hits.append(now)
                bucket.day_count += 1
            reset_after = bucket.hits[0] + self.window_seconds - now if bucket.hits else self.window_seconds
            retry_after = 0.0
            if window_full:
                retry_after = reset_after
            if day_full:
                retry_after = max(retry_after, self._seconds_to_midnight())
            return RateDecision(
                allowed=allowed,
                limit=self.max_requests,
                remaining=max(0, self.max_requests - len(bucket.hits)),
                window_seconds=self.window_seconds,
                reset_after=max(0.0, reset_after),
                daily_limit=self.daily_limit,
                daily_remaining=None
                if self.daily_limit is None
                else max(0, self.daily_limit - bucket.day_count),
                retry_after=retry_after,
            )

    def _seconds_to_midnight(self) -> float:
        now: datetime = self._clock()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - now).total_seconds()
