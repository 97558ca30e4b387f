"""Baseline of the intake benchmark: a bare FastAPI app doing only what the intake must do.

It verifies the same Standard Webhooks signature (``verify_standard``), parses the JSON, and inserts
the same row with the same statement and driver (the service's ``InboxWriter``), then answers 202.
Everything the service does beyond that (shape validation, problem answers, ordering keys,
dependency injection) is what the benchmark prices.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from app.inbox.writer import open_writer
from app.kit.clock import utcnow
from app.kit.signatures import WebhookSecret, verify_standard

SECRETS = [WebhookSecret.parse(os.environ["RANKR_WEBHOOK_SECRETS"])]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.writer = await open_writer(os.environ["DATABASE_URL"])
    yield
    await app.state.writer.close()


app = FastAPI(lifespan=lifespan)


@app.post("/webhooks/rankr")
async def receive(request: Request) -> Response:
    body = await request.body()
    headers = request.headers
    now = utcnow()
    verify_standard(
        SECRETS,
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
        body,
        now,
    )
    payload = json.loads(body)
    row = {
        "source": "rankr",
        "event_id": headers["webhook-id"],
        "type": payload["type"],
        "account_key": payload["accountId"],
        "ordering_key": f"rankr:{payload['accountId']}:contact:{payload['data']['contactId']}",
        "payload": payload,
        "received_at": now,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }
    await request.app.state.writer.insert(row)
    return Response(status_code=202)
