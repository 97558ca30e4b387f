"""``POST /webhooks/ghl``: GHL marketplace webhooks, verified (signature, time), stored before the 2xx."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.errors import ProblemError
from app.inbox.intake import (
    answer,
    intake_context,
    parse_object,
    read_body,
    store,
    unprocessable,
    validate,
)
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, ordering_key
from app.integrations.ghl.app_events import APP_EVENTS
from app.integrations.ghl.schemas import GhlWebhook
from app.kit.clock import parse_instant
from app.kit.signatures import SignatureError, check_timestamp
from app.ops import metrics, openapi

router = APIRouter(tags=["webhooks"])

CONTACT_EVENTS = frozenset(
    {"ContactCreate", "ContactUpdate", "ContactDelete", "ContactTagUpdate", "ContactDndUpdate"}
)
CHILD_EVENTS = frozenset(
    {"TaskCreate", "TaskComplete", "TaskDelete", "TaskUpdate", "NoteCreate", "NoteUpdate", "NoteDelete"}
)
APPOINTMENT_EVENTS = frozenset({"AppointmentCreate", "AppointmentUpdate", "AppointmentDelete"})


def _routing_keys(hook: GhlWebhook) -> tuple[str, str]:
    """The account key (location, or company for agency installs) and the ordering key."""
    if hook.type in APP_EVENTS:
        account = hook.location_id or (f"company:{hook.company_id}" if hook.company_id else None)
        if account is None:
            raise unprocessable(f"locationId or companyId is required for {hook.type}")
        return account, ordering_key(Source.GHL, account, "app", hook.webhook_id)
    if hook.location_id is None:
        raise unprocessable(f"locationId is required for {hook.type}")
    location = hook.location_id
    if hook.type in APPOINTMENT_EVENTS:
        appointment = hook.appointment or {}
        if not isinstance(appointment.get("id"), str) or not appointment["id"]:
            raise unprocessable(f"appointment.id is required for {hook.type}")
        contact = appointment.get("contactId")
        if isinstance(contact, str) and contact:
            return location, ordering_key(Source.GHL, location, "contact", contact)
        return location, ordering_key(Source.GHL, location, "appointment", appointment["id"])
    if hook.id is None:
        raise unprocessable(f"id is required for {hook.type}")
    if hook.type in CHILD_EVENTS:
        # By the task or note itself (real TaskCreate bodies have been seen without contactId).
        kind = "task" if hook.type.startswith("Task") else "note"
        return location, ordering_key(Source.GHL, location, kind, hook.id)
    return location, ordering_key(Source.GHL, location, "contact", hook.id)


@router.post(
    "/webhooks/ghl",
    status_code=202,
    summary="Receive a GHL webhook",
    responses={
        **openapi.STORED,
        **openapi.answer(
            200,
            "a redelivery, or an event type this service does not use",
            {"status": "ignored", "eventId": "6f3a4c1e-1d2b-4e0b-9a55-0c3f0f6d8a11"},
        ),
        **openapi.WEBHOOK_REFUSALS,
    },
    openapi_extra=openapi.webhook_body(
        "A GHL marketplace webhook, signed with x-ghl-signature (Ed25519) or x-wh-signature (RSA-SHA256)",
        openapi.GHL_WEBHOOK,
    ),
)
async def receive_ghl_webhook(
    request: Request,
) -> Response:
    context = intake_context(request)
    body = await read_body(request)
    try:
        context.ghl_verifier.verify(
            body, request.headers.get("x-ghl-signature"), request.headers.get("x-wh-signature")
        )
    except SignatureError as exc:
        raise ProblemError(401, "Unauthorized", str(exc)) from exc
    payload = parse_object(body)
    hook = validate(GhlWebhook, payload)
    sent_at = parse_instant(hook.timestamp)
    if sent_at is None:
        raise unprocessable("timestamp: not an ISO 8601 date-time")
    try:
        check_timestamp(sent_at, context.clock())
    except SignatureError as exc:
        raise ProblemError(401, "Unauthorized", str(exc)) from exc
    if hook.type not in CONTACT_EVENTS | CHILD_EVENTS | APPOINTMENT_EVENTS | APP_EVENTS:
        metrics.webhook_received(Source.GHL, "other", "ignored")
        return answer(200, "ignored", hook.webhook_id)
    account, order = _routing_keys(hook)
    event = IncomingEvent(
        source=Source.GHL,
        event_id=hook.webhook_id,
        type=hook.type,
        account_key=account,
        ordering_key=order,
        payload=payload,
    )
    # GHL re-sends a webhook only when the answer is 429 (help.gohighlevel.com, "Automated Webhook
    # Retries"): while the database is away, 429 is the answer that gets the event delivered again.
    return await store(context, event, unavailable_status=429)
