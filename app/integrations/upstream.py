"""Upstream API calls: one client per upstream, the single retry decision, errors and metrics.

``classify_status`` is the one place that decides what is worth retrying: transport errors, timeouts,
408, 429 and 5xx are transient; any other 4xx is permanent. ``UpstreamClient.send`` retries transient
failures a few times in-process (tenacity, short waits, ``Retry-After`` honoured when short); longer
waits go back to the worker, which reschedules the stored event at its ``next_attempt_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

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
from app.kit.http import RateLimitSnapshot, RequestPacer, parse_retry_after
from app.ops import metrics

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 429})


def classify_status(status: int) -> type[UpstreamError] | None:
    """The error class for an HTTP status, or None when the answer is a success."""
    if status < 400:
        return None
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientUpstreamError
    if status == 404:
        return UpstreamNotFound
    return PermanentUpstreamError


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
