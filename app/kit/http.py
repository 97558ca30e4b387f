"""Outbound HTTP: one client per upstream, the single retry decision, Retry-After and rate headers.

``classify_status`` is the one place that decides what is worth retrying: transport errors, timeouts,
408, 429 and 5xx are transient; any other 4xx is permanent. ``UpstreamClient.send`` retries transient
failures a few times in-process (tenacity, short waits, ``Retry-After`` honoured when short); longer
waits go back to the worker, which reschedules the stored event at its ``next_attempt_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from app.errors import (
    PermanentUpstreamError,
    TransientUpstreamError,
    UpstreamError,
    UpstreamNotFound,
)
from app.kit.clock import Clock, utcnow
from app.ops import metrics

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 429})


def url_path(*segments: str) -> str:
    """``/a/b/c`` with every segment percent-escaped, so an id from a webhook stays one segment:
    ``/``, ``?``, ``#`` and ``%`` in it cannot reach another path or the query. A segment that is
    empty, ``.`` or ``..`` cannot be made safe and raises ``httpx.InvalidURL``."""
    for segment in segments:
        if segment in ("", ".", ".."):
            raise httpx.InvalidURL(f"{segment!r} cannot be a path segment")
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def classify_status(status: int) -> type[UpstreamError] | None:
    """The error class for an HTTP status, or None when the answer is a success."""
    if status < 400:
        return None
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientUpstreamError
    if status == 404:
        return UpstreamNotFound
    return PermanentUpstreamError


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


def _int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def ghl_rate_limit(headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
    """GHL's ``X-RateLimit-*`` headers (docs/oauth/Authorization.md)."""
    remaining = _int(headers, "x-ratelimit-remaining")
    if remaining is None:
        return None
    window_ms = _int(headers, "x-ratelimit-interval-milliseconds")
    return RateLimitSnapshot(
        limit=_int(headers, "x-ratelimit-max"),
        remaining=remaining,
        window_ms=window_ms,
        reset_at=None,
        daily_limit=_int(headers, "x-ratelimit-limit-daily"),
        daily_remaining=_int(headers, "x-ratelimit-daily-remaining"),
        observed_at=now,
    )


def rankr_rate_limit(headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
    """Rankr's IETF-draft ``RateLimit-*`` headers (Reset in seconds from now)."""
    remaining = _int(headers, "ratelimit-remaining")
    if remaining is None:
        return None
    reset = _int(headers, "ratelimit-reset")
    return RateLimitSnapshot(
        limit=_int(headers, "ratelimit-limit"),
        remaining=remaining,
        window_ms=None,
        reset_at=now + timedelta(seconds=reset) if reset is not None else None,
        daily_limit=None,
        daily_remaining=None,
        observed_at=now,
    )


def build_http_client(
    timeout_seconds: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The long-lived client of one upstream, with explicit timeouts and a bounded pool.

    ``transport`` replaces the network (tests serve the sandboxes in-process over ``ASGITransport``).
    """
    timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False, transport=transport)


class _wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming style
    """Exponential backoff with jitter, but never shorter than the upstream's Retry-After."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2)

    def __call__(self, retry_state: Any) -> float:
        backoff = float(self._backoff(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, UpstreamError) and exc.retry_after is not None:
            return max(backoff, exc.retry_after)
        return backoff


class UpstreamClient:
    """Base of the GHL and Rankr clients: sends one request, maps failures to the project's errors.

    ``short_retry_cap`` bounds how long an in-process retry may wait; a 429 asking for longer is
    raised at once so the worker can park the event instead of holding a slot. Every request (each
    in-process retry too) waits for its turn from ``pacer``; a 429 backs the pacer off.
    """

    upstream = "upstream"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Clock = utcnow,
        attempts: int = 3,
        short_retry_cap: float = 2.0,
        on_rate_limit: Callable[[RateLimitSnapshot], None] | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        self._http = http
        self._clock = clock
        self._attempts = attempts
        self._cap = short_retry_cap
        self._on_rate_limit = on_rate_limit
        self._pacer = pacer

    def _rate_limit(self, headers: Mapping[str, str], now: datetime) -> RateLimitSnapshot | None:
        return None

    def _error_message(self, body: dict[str, Any], response: httpx.Response) -> str:
        return response.reason_phrase or f"HTTP {response.status_code}"

    def _is_not_found(self, status: int, message: str) -> bool:
        return status == 404

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool = True,
        paced: bool = True,
    ) -> httpx.Response:
        """Send with short in-process retries; raise the project's errors for failures.

        A non-idempotent request (a create) is retried only when the upstream cannot have acted on it
        (connection refused, 429, 503), never after a timeout that may hide a success. ``paced=False``
        skips the budget (a token request, which the upstream does not count).
        """

        def retryable(exc: BaseException) -> bool:
            if not isinstance(exc, TransientUpstreamError):
                return False
            if exc.retry_after is not None and exc.retry_after > self._cap:
                return False
            return idempotent or exc.status in (429, 503) or exc.body.get("connect_error") is True

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self._attempts),
            wait=_wait_retry_after(),
            reraise=True,
        )
        pacer = self._pacer if paced else None
        async for attempt in retrying:
            with attempt:
                if pacer is not None:
                    await pacer.acquire()
                return await self._send_once(method, url, headers, json, params, data, pacer)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        json: Any,
        params: Mapping[str, Any] | None,
        data: Mapping[str, str] | None,
        pacer: RequestPacer | None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method, url, headers=headers, json=json, params=params, data=data
            )
        except httpx.ConnectError as exc:
            metrics.upstream_request(self.upstream, method, httpx.URL(url).path, None)
            raise TransientUpstreamError(
                self.upstream, f"cannot connect: {exc}", body={"connect_error": True}
            ) from exc
        except httpx.TransportError as exc:
            metrics.upstream_request(self.upstream, method, httpx.URL(url).path, None)
            raise TransientUpstreamError(self.upstream, f"{type(exc).__name__}: {exc}") from exc
        metrics.upstream_request(self.upstream, method, response.request.url.path, response.status_code)
        now = self._clock()
        snapshot = self._rate_limit(response.headers, now)
        if snapshot is not None:
            if pacer is not None:
                pacer.observe(snapshot)
            if self._on_rate_limit is not None:
                self._on_rate_limit(snapshot)
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        if response.status_code == 429 and pacer is not None:
            await pacer.back_off(retry_after)
        error_class = classify_status(response.status_code)
        if error_class is None:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = self._error_message(body, response)
        if error_class is not TransientUpstreamError and self._is_not_found(response.status_code, message):
            error_class = UpstreamNotFound
        log.warning(
            "%s.request_failed",
            self.upstream,
            extra={"method": method, "status": response.status_code, "path": response.request.url.path},
        )
        raise error_class(
            self.upstream,
            message,
            status=response.status_code,
            retry_after=retry_after,
            body=body,
        )
