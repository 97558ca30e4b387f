"""What the GHL and Rankr sandboxes have in common: request log, rate limit, faults, webhooks, controls.

``SandboxSide`` is the base of ``GhlSandbox`` and ``RankrSandbox``. It owns one instance of each
shared piece and the ``ApiGate`` middleware that applies them to API requests, in this order:
added latency, authentication, rate limit, injected error, the route itself, the answer's own latency
(the change is made, its answer comes late); every API request is
logged with its final status. Control, inspection and UI routes bypass the gate entirely: they are
not API traffic, need no credentials and do not spend the rate budget.

A side only supplies what differs: how it authenticates, how its errors and rate-limit headers look,
and how its records are stored and turned into webhooks (bodies, signatures, retry rules).
"""

from __future__ import annotations

import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.sandbox.config import SandboxConfig
from app.sandbox.faults import FaultInjector, FaultSettings
from app.sandbox.ratelimit import RateDecision, RateLimiter
from app.sandbox.requestlog import RecordedRequest, RequestLog
from app.sandbox.webhooks import Delivery, RetryPolicy, Signer, WebhookDispatcher

CONTROL_PREFIX = "/_sandbox"
UI_PREFIX = "/ui"

ExcT = TypeVar("ExcT", bound=Exception)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an API request acts for: the rate-limit key (location or account) and granted scopes."""

    key: str
    scopes: frozenset[str] = frozenset()


@dataclass
class WebhookSettings:
    """Run-time switches of one sandbox's outgoing webhooks."""

    enabled: bool = True
    drop_rate: float = 0.0


def route_path(scope: Scope) -> str:
    """The request path relative to the app the scope was routed to (mounts leave the full path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class SandboxSide(ABC):
    """State-independent machinery of one emulated product, and the FastAPI app serving it."""

    name: str  # "ghl" or "rankr": the URL segment and the webhook path

    def __init__(self, config: SandboxConfig, dispatcher: WebhookDispatcher, dice: random.Random) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.dice = dice
        self.log = RequestLog(config.request_log_size)
        self.limiter = RateLimiter(*self._default_rate(), monotonic=config.monotonic, clock=config.clock)
        self.faults = FaultInjector(self._default_faults(), dice)
        self.webhook_settings = self._default_webhooks()
        self.app = FastAPI(title=f"{self.name} sandbox", docs_url=None, redoc_url=None, openapi_url=None)
        self.app.add_middleware(ApiGate, side=self)

    def on_error(self, exc_type: type[ExcT], answer: Callable[[Request, ExcT], Response]) -> None:
        """Answer an ``exc_type`` raised while serving a request with ``answer`` (the product's shape)."""

        async def handler(request: Request, exc: Exception) -> Response:
            if not isinstance(exc, exc_type):  # pragma: no cover - registered for this type only
                raise exc
            return answer(request, exc)

        self.app.add_exception_handler(exc_type, handler)

    # -- defaults and controls ----------------------------------------------------------------------

    @abstractmethod
    def _default_rate(self) -> tuple[int, float, int | None]:
        """(max requests, window seconds, daily limit or None) from the configuration."""

    def _default_faults(self) -> FaultSettings:
        return FaultSettings(
            error_rate=self.config.error_rate,
            error_status=self.config.error_status,
            latency_ms=self.config.latency_ms,
            lost_answer_rate=self.config.lost_answer_rate,
            answer_latency_ms=self.config.answer_latency_ms,
        )

    def _default_webhooks(self) -> WebhookSettings:
        return WebhookSettings(enabled=self.config.webhooks_enabled, drop_rate=self.config.webhook_drop_rate)

    def control_settings(self) -> dict[str, Any]:
        """The run-time settings, in the JSON shape of ``GET/POST /_sandbox/control``."""
        return {
            "rate_max": self.limiter.max_requests,
            "rate_window_seconds": self.limiter.window_seconds,
            "daily_limit": self.limiter.daily_limit,
            "error_rate": self.faults.settings.error_rate,
            "error_status": self.faults.settings.error_status,
            "latency_ms": self.faults.settings.latency_ms,
            "lost_answer_rate": self.faults.settings.lost_answer_rate,
            "answer_latency_ms": self.faults.settings.answer_latency_ms,
            "webhooks_enabled": self.webhook_settings.enabled,
            "webhook_drop_rate": self.webhook_settings.drop_rate,
        }

    def apply_control(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the given settings (keys as in ``control_settings``; None or absent: unchanged)."""
        self.limiter.configure(
            max_requests=changes.get("rate_max"),
            window_seconds=changes.get("rate_window_seconds"),
            daily_limit=changes.get("daily_limit"),
        )
        faults = self.faults.settings
        if changes.get("error_rate") is not None:
            faults.error_rate = float(changes["error_rate"])
        if changes.get("error_status") is not None:
            faults.error_status = int(changes["error_status"])
        if changes.get("latency_ms") is not None:
            faults.latency_ms = float(changes["latency_ms"])
        if changes.get("lost_answer_rate") is not None:
            faults.lost_answer_rate = float(changes["lost_answer_rate"])
        if changes.get("answer_latency_ms") is not None:
            faults.answer_latency_ms = float(changes["answer_latency_ms"])
        if changes.get("webhooks_enabled") is not None:
            self.webhook_settings.enabled = bool(changes["webhooks_enabled"])
        if changes.get("webhook_drop_rate") is not None:
            self.webhook_settings.drop_rate = float(changes["webhook_drop_rate"])
        return self.control_settings()

    def reset(self) -> None:
        """Back to a fresh start: no records, empty logs, full rate budget, configured settings."""
        self.reset_state()
        self.log.clear()
        self.dispatcher.clear_history(self.name)
        self.limiter.reset(*self._default_rate())
        self.faults.settings = self._default_faults()
        self.webhook_settings = self._default_webhooks()

    @abstractmethod
    def reset_state(self) -> None:
        """Forget every record."""

    def seed_contacts(self, bodies: list[dict[str, Any]]) -> list[str]:
        """Create contacts as the API's create route would, but sending no webhooks: records that
        existed before the service was connected. Stops at the first one the product refuses."""
        enabled = self.webhook_settings.enabled
        self.webhook_settings.enabled = False
        try:
            return [self.seed_contact(body) for body in bodies]
        finally:
            self.webhook_settings.enabled = enabled

    @abstractmethod
    def seed_contact(self, body: dict[str, Any]) -> str:
        """Create one contact from a create-route body (validated as the route does); its id."""

    @abstractmethod
    def state_dump(self) -> dict[str, Any]:
        """Every record, in the product's wire format (for ``GET /_sandbox/state``)."""

    # -- request log --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the API requests answered so far (oldest first)."""
        return self.log.entries()

    def mark(self) -> int:
        return self.log.mark()

    def requests_since(self, mark: int) -> list[RecordedRequest]:
        return self.log.since(mark)

    def writes_since(self, mark: int) -> int:
        return self.log.writes_since(mark)

    # -- webhooks -----------------------------------------------------------------------------------

    @property
    def webhook_url(self) -> str | None:
        target = self.config.webhook_target
        return None if target is None else f"{target.rstrip('/')}/webhooks/{self.name}"

    def deliveries(self) -> list[Delivery]:
        return self.dispatcher.deliveries(self.name)

    def send_webhook(
        self,
        event_type: str,
        contact_id: str,
        record_id: str,
        body: dict[str, Any],
        *,
        delivery_id: str,
        at: datetime,
        signer: Signer,
        policy: RetryPolicy,
    ) -> None:
        """Queue ``body`` (compact JSON) unless the target is unset, delivery is off, or the dice drop it.

        Deliveries of one contact's records share a ``record_key``, so they arrive in the order made.
        """
        delivery = Delivery(
            id=delivery_id,
            source=self.name,
            event_type=event_type,
            record_key=f"{self.name}:{contact_id}",
            record_id=record_id,
            url=self.webhook_url,
            body=json.dumps(body, separators=(",", ":")).encode(),
            created_at=at,
        )
        if delivery.url is None:
            self.dispatcher.record_unsent(delivery, "no_target")
        elif not self.webhook_settings.enabled:
            self.dispatcher.record_unsent(delivery, "disabled")
        elif self.webhook_settings.drop_rate > 0 and self.dice.random() < self.webhook_settings.drop_rate:
            self.dispatcher.record_unsent(delivery, "dropped")
        else:
            self.dispatcher.submit(delivery, signer, policy)

    # -- what each product does its own way ----------------------------------------------------------

    def is_api_path(self, path: str) -> bool:
        return not (
            path == "/"
            or path.startswith(CONTROL_PREFIX)
            or path == UI_PREFIX
            or path.startswith(UI_PREFIX + "/")
        )

    def is_public_path(self, path: str) -> bool:
        """API paths that need no credentials and spend no rate budget (Rankr's token endpoint)."""
        return False

    @abstractmethod
    def authenticate(self, headers: Headers) -> Principal | Response:
        """The principal of an API request, or the error answer when its credentials are wrong."""

    @abstractmethod
    def default_principal_key(self) -> str:
        """The rate-limit key whose budget unauthenticated answers report."""

    @abstractmethod
    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        """The product's rate-limit headers for one answer."""

    @abstractmethod
    def too_many_requests(self, decision: RateDecision) -> Response:
        """The product's 429 answer."""

    @abstractmethod
    def injected_error(self, status: int) -> Response:
        """The product's answer for an injected fault with ``status``."""


class ApiGate:
    """ASGI middleware applying a side's latency, auth, rate limit and faults, and logging API requests."""

    def __init__(self, app: ASGIApp, side: SandboxSide) -> None:
        self.app = app
        self.side = side

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        side = self.side
        path = route_path(scope)
        if not side.is_api_path(path):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        at = side.config.clock()
        await side.faults.delay()

        answer: Response | None = None
        extra_headers: dict[str, str] = {}
        if not side.is_public_path(path):
            outcome = side.authenticate(Headers(scope=scope))
            if isinstance(outcome, Response):
                answer = outcome
                extra_headers = side.rate_headers(side.limiter.peek(side.default_principal_key()))
            else:
                scope.setdefault("state", {})["principal"] = outcome
                decision = side.limiter.hit(outcome.key)
                extra_headers = side.rate_headers(decision)
                if not decision.allowed:
                    answer = side.too_many_requests(decision)
        if answer is None:
            injected = side.faults.pick_error()
            if injected is not None:
                answer = side.injected_error(injected)

        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers.items()]
        logged = False

        def log(status: int) -> None:
            # Logged when the answer starts, before the client can see it: a test that reads the log
            # right after its request returns must find that request there.
            nonlocal logged
            if not logged:
                logged = True
                route = getattr(scope.get("route"), "path", None)
                side.log.record(scope["method"], path, route, status, at, (time.monotonic() - started) * 1000)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if answer is None:
                    await side.faults.delay_answer()
                message["headers"] = [*message.get("headers", []), *raw_headers]
                log(message["status"])
            await send(message)

        async def swallow(message: Message) -> None:
            return None

        try:
            if answer is not None:
                await answer(scope, receive, send_with_headers)
            elif side.faults.lose_answer():
                await self.app(scope, receive, swallow)
                await side.injected_error(504)(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            # The client gave up before its body was read (it timed out during added latency):
            # nothing happened, and there is nobody to answer. Logged as nginx does, 499.
            log(499)
        finally:
            log(500)  # no answer was started: the app failed
