"""``RankrSandbox``: the Rankr side of the sandboxes (API, controls, UI, webhooks), served under ``/rankr``.

Webhooks go to ``{webhook_target}/webhooks/rankr`` as ``{"type","timestamp","accountId","data"}``,
signed per Standard Webhooks with the sandbox secret. Each attempt is signed afresh (new
``webhook-timestamp``, same ``webhook-id``), and any non-2xx answer or no answer is retried on the
yaml's schedule, sped up (``rankr_webhook_retry_delays``).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
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
from app.sandbox.rankr.routes import api_router, validate
from app.sandbox.rankr.schemas import ContactWrite
from app.sandbox.rankr.state import BadCursor, EmailTaken, RankrStore
from app.sandbox.rankr.tokens import TokenIssuer
from app.sandbox.rankr.ui import ui_router
from app.sandbox.ratelimit import RateDecision
from app.sandbox.side import CONTROL_PREFIX, Principal, SandboxSide
from app.sandbox.store import RecordNotFound
from app.sandbox.webhooks import Delivery, RetryPolicy, WebhookDispatcher

OAUTH_ENDPOINT = "/oauth/token"


class ClientScopes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_scopes: list[str]


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
        self.on_error(RankrProblem, lambda request, exc: exc.response())
        self.on_error(
            RecordNotFound, lambda request, exc: problems.not_found(exc.kind, exc.record_id).response()
        )
        self.on_error(EmailTaken, _email_taken)
        self.on_error(BadCursor, _bad_cursor)
        self.on_error(StarletteHTTPException, _http_error)
        self.on_error(RequestValidationError, _invalid_request)
        self.app.include_router(control_router(self))
        self.app.include_router(self._oauth_control_router())
        self.app.include_router(ui_router(self))
        self.app.include_router(api_router(self))

    def _oauth_control_router(self) -> APIRouter:
        router = APIRouter(prefix=f"{CONTROL_PREFIX}/oauth")

        @router.post("")
        async def oauth_control(changes: ClientScopes) -> dict[str, Any]:
            """The scopes the API client was granted (tokens issued later carry no others)."""
            self.tokens.client_scopes = frozenset(changes.client_scopes)
            return {"clientScopes": sorted(self.tokens.client_scopes)}

        return router

    # -- SandboxSide --------------------------------------------------------------------------------

    def _default_rate(self) -> tuple[int, float, int | None]:
        return self.config.rankr_rate_max, self.config.rankr_rate_window_seconds, None

    def reset_state(self) -> None:
        self.store.clear()
        self.tokens.clear()

    def state_dump(self) -> dict[str, Any]:
        return self.store.snapshot()

    def seed_contact(self, body: dict[str, Any]) -> str:
        changes = validate(ContactWrite, body).model_dump(by_alias=True, exclude_unset=True)
        return self.store.create_contact(changes).contact_id

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
        self.send_webhook(
            event_type,
            contact_id,
            record_id,
            body,
            delivery_id=f"msg_{uuid.uuid4().hex}",
            at=now,
            signer=self._sign,
            policy=self._retry,
        )

    def _sign(self, delivery: Delivery) -> Mapping[str, str]:
        timestamp = int(self.config.clock().timestamp())
        return {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(self._secret, delivery.id, timestamp, delivery.body),
        }


def _email_taken(request: Request, exc: EmailTaken) -> Response:
    detail = "another contact of this account has this email"
    return RankrProblem(409, "email-taken", detail, extra={"contactId": exc.contact_id}).response()


def _bad_cursor(request: Request, exc: BadCursor) -> Response:
    return problems.validation([{"field": "cursor", "message": str(exc)}]).response()


def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    detail = "no such route" if status == 404 else ("method not allowed" if status == 405 else str(exc))
    return RankrProblem(status, "http-error", detail).response()


def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    found = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": str(e["msg"]).lower()}
        for e in exc.errors()
    ]
    return problems.validation(found).response()
