"""``GhlSandbox``: the GHL side of the sandboxes (API, controls, UI, webhooks), served under ``/ghl``.

Webhooks go to ``{webhook_target}/webhooks/ghl`` as GHL sends them: the event body plus top-level
``timestamp`` and ``webhookId`` (docs/oauth/WebhookAuthentication.md), signed over the exact bytes
with both ``x-ghl-signature`` (Ed25519) and ``x-wh-signature`` (RSA-SHA256). Like GHL's marketplace
delivery, only a 429 answer is retried (help.gohighlevel.com "Automated Webhook Retries": up to six
re-sends, ten minutes apart; sped up here), any other answer or a timeout ends the delivery.
"""

from __future__ import annotations

import hmac
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.kit.clock import format_instant
from app.kit.signatures import load_private_key, sign_ghl_ed25519, sign_ghl_rsa
from app.sandbox import keys
from app.sandbox.config import SandboxConfig
from app.sandbox.control import control_router
from app.sandbox.ghl import errors, serialize
from app.sandbox.ghl.oauth import COMPANY, Grant, OAuthServer, oauth_control_router, oauth_router
from app.sandbox.ghl.routes import SCOPES, api_router, validate
from app.sandbox.ghl.schemas import AppointmentSeed, CreateContactDto
from app.sandbox.ghl.state import DuplicateContact, GhlStore
from app.sandbox.ghl.ui import ui_router
from app.sandbox.ratelimit import RateDecision
from app.sandbox.side import CONTROL_PREFIX, Principal, SandboxSide, route_path
from app.sandbox.store import RecordNotFound
from app.sandbox.webhooks import Delivery, RetryPolicy, Signer, WebhookDispatcher


def _retry_only_429(status: int | None) -> bool:
    return status == 429


class GhlSandbox(SandboxSide):
    """The emulated GHL location: its store, its API app and its webhook sender."""

    name = "ghl"

    def __init__(self, config: SandboxConfig, dispatcher: WebhookDispatcher, dice: random.Random) -> None:
        super().__init__(config, dispatcher, dice)
        ed_key = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
        rsa_key = load_private_key(keys.GHL_RSA_PRIVATE_PEM)
        if not isinstance(ed_key, ed25519.Ed25519PrivateKey) or not isinstance(rsa_key, rsa.RSAPrivateKey):
            raise TypeError("the GHL sandbox keys must be an Ed25519 and an RSA private key")
        self._ed25519_key = ed_key
        self._rsa_key = rsa_key
        self._retry = RetryPolicy(config.ghl_webhook_retry_delays, _retry_only_429)
        self.store = GhlStore(
            config.ghl_location_id,
            config.clock,
            self._on_event,
            allow_duplicates=config.ghl_allow_duplicate_contacts,
        )
        self.oauth = OAuthServer(
            config.ghl_client_id,
            config.ghl_client_secret,
            config.ghl_access_token_ttl_seconds,
            config.ghl_code_ttl_seconds,
            config.monotonic,
        )
        # The Private Integration token's scopes: all the sandbox checks, unless a test narrows them.
        self.private_token_scopes = SCOPES
        self.on_error(errors.GhlApiError, lambda request, exc: exc.response())
        self.on_error(
            RecordNotFound, lambda request, exc: errors.not_found(exc.kind, exc.record_id).response()
        )
        self.on_error(DuplicateContact, _duplicate)
        self.on_error(StarletteHTTPException, _unrouted)
        self.on_error(RequestValidationError, _invalid_request)
        self.app.include_router(control_router(self))
        self.app.include_router(oauth_control_router(self))
        self.app.include_router(oauth_router(self))
        self.app.include_router(self._appointment_router())
        self.app.include_router(ui_router(self))
        self.app.include_router(api_router(self))

    def _appointment_router(self) -> APIRouter:
        router = APIRouter(prefix=CONTROL_PREFIX)

        @router.post("/appointments", status_code=201)
        async def add_appointment(seed: AppointmentSeed) -> dict[str, Any]:
            """Book an appointment for a contact (emits AppointmentCreate), as a person would in GHL."""
            start = seed.start_time if seed.start_time.tzinfo else seed.start_time.replace(tzinfo=UTC)
            end = seed.end_time or start + timedelta(minutes=30)
            appointment = self.store.add_appointment(
                seed.contact_id,
                title=seed.title,
                start_time=start,
                end_time=end if end.tzinfo else end.replace(tzinfo=UTC),
                calendar_id=seed.calendar_id,
                status=seed.status,
                assigned_user_id=seed.assigned_user_id,
                notes=seed.notes,
                address=seed.address,
            )
            return {"appointment": serialize.appointment_json(appointment, self.store.location_id)}

        return router

    # -- SandboxSide --------------------------------------------------------------------------------

    def _default_rate(self) -> tuple[int, float, int | None]:
        return self.config.ghl_rate_max, self.config.ghl_rate_window_seconds, self.config.ghl_daily_limit

    def reset_state(self) -> None:
        self.store.clear()
        self.oauth.clear()
        self.private_token_scopes = SCOPES

    def location_json(self) -> dict[str, Any]:
        """The location as GetLocationByIdSchema shows it (the fields the sandbox knows)."""
        return {
            "id": self.config.ghl_location_id,
            "companyId": self.config.ghl_company_id,
            "name": self.config.ghl_location_name,
            "timezone": "UTC",
        }

    def is_public_path(self, path: str) -> bool:
        # The OAuth endpoints check their own credentials (client secret, agency token).
        return path.startswith("/oauth/")

    def state_dump(self) -> dict[str, Any]:
        return self.store.snapshot()

    def seed_contact(self, body: dict[str, Any]) -> str:
        dto = validate(CreateContactDto, {"locationId": self.store.location_id, **body})
        return self.store.create_contact(dto.changes()).id

    def authenticate(self, headers: Headers) -> Principal | Response:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            return errors.unauthorized("Invalid JWT").response()
        if hmac.compare_digest(token.encode(), self.config.ghl_token.encode()):
            location = self.config.ghl_location_id
            scopes = self.private_token_scopes
        else:
            # A marketplace-app access token the sandbox issued: live, and for a sub-account.
            grant = self.oauth.lookup(token)
            if grant is None:
                return errors.unauthorized("Invalid JWT").response()
            if grant.user_type == COMPANY or grant.location_id is None:
                return errors.unauthorized(
                    "This authClass type is not allowed to access this scope"
                ).response()
            location = grant.location_id
            scopes = frozenset(grant.scopes.split())
        version = headers.get("version")
        if version is None:
            return errors.unauthorized("version header was not found.").response()
        if version not in self.config.ghl_api_versions:
            return errors.unauthorized("version header is invalid").response()
        return Principal(key=location, scopes=scopes)

    def default_principal_key(self) -> str:
        return self.config.ghl_location_id

    def rate_headers(self, decision: RateDecision) -> dict[str, str]:
        # Names from docs/oauth/Authorization.md ("What are current rate limits for API 2.0?").
        headers = {
            "X-RateLimit-Max": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Interval-Milliseconds": str(round(decision.window_seconds * 1000)),
        }
        if decision.daily_limit is not None and decision.daily_remaining is not None:
            headers["X-RateLimit-Limit-Daily"] = str(decision.daily_limit)
            headers["X-RateLimit-Daily-Remaining"] = str(decision.daily_remaining)
        return headers

    def too_many_requests(self, decision: RateDecision) -> Response:
        return JSONResponse(
            {"statusCode": 429, "message": "Too Many Requests"},
            status_code=429,
            headers={"Retry-After": decision.retry_after_header},
        )

    def injected_error(self, status: int) -> Response:
        return errors.status_error(status).response()

    # -- webhooks -----------------------------------------------------------------------------------

    def _on_event(self, event_type: str, contact_id: str, record_id: str, payload: dict[str, Any]) -> None:
        now = self.config.clock()
        webhook_id = str(uuid.uuid4())
        body = {**payload, "timestamp": format_instant(now), "webhookId": webhook_id}
        self.send_webhook(
            event_type,
            contact_id,
            record_id,
            body,
            delivery_id=webhook_id,
            at=now,
            signer=self._signer(),
            policy=self._retry,
        )

    def send_app_event(self, kind: str, grant: Grant) -> None:
        """GHL's app ``INSTALL`` / ``UNINSTALL`` webhook for a location or (no location) an agency."""
        payload: dict[str, Any] = {
            "type": kind,
            "appId": self.config.ghl_client_id,
            "companyId": grant.company_id,
        }
        if grant.location_id is not None:
            payload["locationId"] = grant.location_id
        if kind == "INSTALL":
            payload["userId"] = grant.user_id
        self._on_event(
            kind, f"app:{grant.location_id or grant.company_id}", self.config.ghl_client_id, payload
        )

    def _signer(self) -> Signer:
        signed: dict[str, str] = {}

        def headers(delivery: Delivery) -> Mapping[str, str]:
            # Signed lazily, on the sender task, and once: every retry re-sends the same bytes.
            if not signed:
                signed["content-type"] = "application/json"
                signed["x-ghl-signature"] = sign_ghl_ed25519(self._ed25519_key, delivery.body)
                signed["x-wh-signature"] = sign_ghl_rsa(self._rsa_key, delivery.body)
            return signed

        return headers


def _duplicate(request: Request, exc: DuplicateContact) -> Response:
    existing = exc.existing
    return errors.duplicate_contact(existing.id, existing.name or "", exc.matching_field).response()


def _unrouted(request: Request, exc: StarletteHTTPException) -> Response:
    # NestJS answers an unknown route (or method) with 404 "Cannot GET /path".
    if exc.status_code not in {404, 405}:
        return errors.status_error(exc.status_code).response()
    return errors.nest_error(404, f"Cannot {request.method} {route_path(request.scope)}").response()


def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    messages = [f"{'.'.join(str(p) for p in e['loc'][1:])} {e['msg']}".strip() for e in exc.errors()]
    return errors.unprocessable(messages).response()
