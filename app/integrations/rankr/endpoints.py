"""``POST /webhooks/rankr``: Standard Webhooks-signed Rankr events, stored before the 2xx."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.errors import ProblemError
from app.inbox.intake import (
    intake_context,
    parse_object,
    read_body,
    store,
    unprocessable,
    validate,
)
from app.inbox.models import Source
from app.inbox.service import IncomingEvent, ordering_key
from app.integrations.rankr.schemas import RankrWebhook
from app.kit.signatures import SignatureError, verify_standard
from app.ops import openapi

router = APIRouter(tags=["webhooks"])


@router.post(
    "/webhooks/rankr",
    status_code=202,
    summary="Receive a Rankr webhook",
    responses={
        **openapi.STORED,
        **openapi.answer(
            200, "a redelivery; nothing new stored", {"status": "duplicate", "eventId": "msg_2b9c"}
        ),
        **openapi.WEBHOOK_REFUSALS,
    },
    openapi_extra=openapi.webhook_body(
        "A Rankr event, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)",
        openapi.RANKR_WEBHOOK,
    ),
)
async def receive_rankr_webhook(
    request: Request,
) -> Response:
    context = intake_context(request)
    body = await read_body(request)
    headers = request.headers
    msg_id = headers.get("webhook-id")
    try:
        verify_standard(
            context.rankr_secrets,
            msg_id,
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
            body,
            context.clock(),
        )
    except SignatureError as exc:
        raise ProblemError(401, "Unauthorized", str(exc)) from exc
    assert msg_id is not None  # verify_standard refuses a delivery without webhook-id  # noqa: S101
    if len(msg_id) > 255:
        raise unprocessable("webhook-id is longer than 255 characters")
    payload = parse_object(body)
    hook = validate(RankrWebhook, payload)
    kind, record_id = hook.record_id()
    if record_id is None:
        raise unprocessable(f"data.{kind}Id is required for {hook.type}")
    # Each record (contact, task, note) keeps its own order; a task or note whose contact is not
    # linked yet waits for it in the worker, without holding the contact's events back.
    if kind != "contact" and hook.data.contact_id is None:
        raise unprocessable(f"data.contactId is required for {hook.type}")
    event = IncomingEvent(
        source=Source.RANKR,
        event_id=msg_id,
        type=hook.type,
        account_key=hook.account_id,
        ordering_key=ordering_key(Source.RANKR, hook.account_id, kind, record_id),
        payload=payload,
    )
    return await store(context, event)
