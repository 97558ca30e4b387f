"""``RankrSandbox``: the Rankr side of the sandboxes (API, controls, UI, webhooks), served under ``/rankr``.

Webhooks go to ``{webhook_target}/webhooks/rankr`` as ``{"type","timestamp","accountId","data"}``,
signed per Standard Webhooks with the sandbox secret. Each attempt is signed afresh (new
``webhook-timestamp``, same ``webhook-id``), and any non-2xx answer or no answer is retried on the
yaml's schedule, sped up (``rankr_webhook_retry_delays``).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.kit.clock import format_instant
from app.kit.signatures import WebhookSecret, sign_standard
from app.sandbox import keys
from app.sandbox.config import SandboxConfig
from app.sandbox.control import control_router
from app.sandbox.rankr import problems
from app.sandbox.rankr.problems import RankrProblem
from app.sandbox.rankr.routes import api_router
from app.sandbox.rankr.state import BadCursor, EmailTaken, RankrStore, RecordNotFound
from app.sandbox.rankr.tokens import TokenIssuer
from app.sandbox.rankr.ui import ui_router
from app.sandbox.ratelimit import RateDecision
from app.sandbox.side import Principal, SandboxSide
from app.sandbox.webhooks import Delivery, RetryPolicy, WebhookDispatcher

OAUTH_ENDPOINT = "/oauth/token"


def _retry_unless_2xx(status: int | None) -> bool:
    return status is None or not 200 <= status < 300


class RankrSandbox(SandboxSide):
    """The emulated Rankr account: its store, token issuer, API app and webhook sender."""

    name = "rankr"

    def __init__(self, config: SandboxConfig, dispatcher: WebhookDispatcher, dice: random.Random) -> None:
        super().__init__(config, dispatcher, dice)
        self._secret = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
        self._retry = RetryPolicy(config.rankr_webhook_retry_delays, _retry_unless_2xx)
        self.tokens = TokenIssuer(
            config.rankr_client_id,
            config.rankr_client_secret,
            config.rankr_account_id,
            config.rankr_token_ttl_seconds,
            config.monotonic,
        )
        self.store = RankrStore(config.rankr_account_id, config.clock, self._on_event)
        self.app.add_exception_handler(RankrProblem, _problem)
        self.app.add_exception_handler(RecordNotFound, _not_found)
        self.app.add_exception_handler(EmailTaken, _email_taken)
        self.app.add_exception_handler(BadCursor, _bad_cursor)
        self.app.add_exception_handler(StarletteHTTPException, _http_error)
        self.app.add_exception_handler(RequestValidationError, _invalid_request)
        self.app.include_router(control_router(self))
        self.app.include_router(ui_router(self))
        self.app.include_router(api_router(self))

    # -- SandboxSide --------------------------------------------------------------------------------

    def _default_rate(self) -> tuple[int, float, int | None]:
        return self.config.rankr_rate_max, self.config.rankr_rate_window_seconds, None

    def reset_state(self) -> None:
        self.store.clear()
        self.tokens.clear()

    def state_dump(self) -> dict[str, Any]:
        return self.store.snapshot()

    def is_public_path(self, path: str) -> bool:
        return path == OAUTH_ENDPOINT

    def authenticate(self, headers: Headers) -> Principal | Response:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return problems.unauthorized("a bearer token is required").response()
        token = self.tokens.lookup(value.strip())
        if token is None:
            return problems.unauthorized("the token is unknown or expired").response()
        return Principal(key=token.account_id, scopes=token.scopes)

    def default_principal_key(self) -> str:
        return self.config.rankr_account_id

    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(math.ceil(decision.reset_after)),
        }

    def too_many_requests(self, decision: RateDecision) -> Response:
        problem = RankrProblem(
            429,
            "rate-limited",
            f"more than {decision.limit} requests in {decision.window_seconds:g} s",
            headers={"Retry-After": decision.retry_after_header},
        )
        return problem.response()

    def injected_error(self, status: int) -> Response:
        return RankrProblem(status, "injected-fault", "a fault injected by the sandbox").response()

    # -- webhooks -----------------------------------------------------------------------------------

    def _on_event(self, event_type: str, contact_id: str, record_id: str, data: dict[str, Any]) -> None:
        now = self.config.clock()
        body = {
            "type": event_type,
            "timestamp": format_instant(now),
            "accountId": self.config.rankr_account_id,
            "data": data,
        }
        delivery = Delivery(
            id=f"msg_{uuid.uuid4().hex}",
            source=self.name,
            event_type=event_type,
            record_key=f"{self.name}:{contact_id}",
            record_id=record_id,
            url=self.webhook_url,
            body=json.dumps(body, separators=(",", ":")).encode(),
            created_at=now,
        )
        self.send_webhook(delivery, self._sign, self._retry)

    def _sign(self, delivery: Delivery) -> Mapping[str, str]:
        timestamp = int(self.config.clock().timestamp())
        return {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(self._secret, delivery.id, timestamp, delivery.body),
        }


async def _problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RankrProblem):  # pragma: no cover - registered for this type only
        raise exc
    return exc.response()


async def _not_found(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RecordNotFound):  # pragma: no cover
        raise exc
    return problems.not_found(exc.kind, exc.record_id).response()


async def _email_taken(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, EmailTaken):  # pragma: no cover
        raise exc
    detail = "another contact of this account has this email"
    return RankrProblem(409, "email-taken", detail, extra={"contactId": exc.contact_id}).response()


async def _bad_cursor(request: Request, exc: Exception) -> Response:
    return problems.validation([{"field": "cursor", "message": str(exc)}]).response()


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    detail = "no such route" if status == 404 else ("method not allowed" if status == 405 else str(exc))
    return RankrProblem(status, "http-error", detail).response()


async def _invalid_request(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover
        raise exc
    found = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": str(e["msg"]).lower()}
        for e in exc.errors()
    ]
    return problems.validation(found).response()
