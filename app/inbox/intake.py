"""What both webhook endpoints share: a capped body read, JSON parsing, and store-then-answer.

The order matters and is the same for every source: read the raw bytes (at most 1 MiB), verify the
signature over those exact bytes, only then parse JSON and check its shape, then store the event with
one insert and answer 2xx. Nothing here calls out over the network.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from app.db import is_unavailable
from app.db_problems import describe_error
from app.errors import ProblemError
from app.inbox.service import IncomingEvent, record
from app.inbox.writer import InboxWriter
from app.kit.clock import Clock
from app.kit.signatures import GhlVerifier, WebhookSecret
from app.ops import metrics
from app.problems import database_unavailable

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
# Deeper than any real webhook body nests, and far below what the parser and the worker's
# recursive walks (fingerprints, mappings) can take.
MAX_DEPTH = 32

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What the webhook endpoints need, kept on ``app.state.intake``."""

    writer: InboxWriter
    clock: Clock
    on_stored: Callable[[], None]
    rankr_secrets: tuple[WebhookSecret, ...]
    ghl_verifier: GhlVerifier


def intake_context(request: Request) -> IntakeContext:
    # Read straight off the app, not through Depends: dependency solving costs more per request
    # than the whole signature check, and this is the hot path.
    context: IntakeContext = request.app.state.intake
    return context


async def read_body(request: Request) -> bytes:
    """The raw body; ``BodyLimit`` (installed by the app factory) has refused it with 413 beyond
    ``MAX_BODY_BYTES``, declared or actually sent."""
    return await request.body()


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object the service can store and apply.

    400 when it is not JSON; 422 when it is JSON but not an object, or holds what neither database
    nor the sync can hold (``check_storable``).
    """
    try:
        payload = json.loads(body)
    except RecursionError as exc:
        raise unprocessable(f"the body nests deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(400, "Bad Request", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ProblemError(422, "Unprocessable Content", "the body must be a JSON object")
    check_storable(payload)
    return payload


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "contains an unpaired UTF-16 surrogate"
    return None


def check_storable(payload: dict[str, Any]) -> None:
    """422 naming the first value that Postgres cannot store or the sync cannot apply.

    Text with NUL or an unpaired surrogate (jsonb and UTF-8 refuse both), numbers that are not
    finite (``NaN``, ``Infinity``, ``1e999``) and nesting beyond ``MAX_DEPTH``. Iterative, so a deep
    body cannot exhaust the stack.
    """
    stack: list[tuple[str, Any, int]] = [("", payload, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            problem = _unstorable_text(value)
        elif isinstance(value, float):
            problem = None if math.isfinite(value) else "is not a finite number"
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise unprocessable(f"{path or 'body'}: nests deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (problem := _unstorable_text(key)) is not None:
                    raise unprocessable(f"{path or 'body'}: a key {problem}")
                stack.append((f"{path}.{key}" if path else str(key), item, depth + 1))
            continue
        else:
            continue
        if problem is not None:
            raise unprocessable(f"{path}: {problem}")


def validate(model: type[T], payload: dict[str, Any]) -> T:
    """The payload as ``model``, or 422 naming the first fields that are wrong."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            where = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise ProblemError(422, "Unprocessable Content", "; ".join(problems)) from exc


def answer(status_code: int, status: str, event_id: str) -> Response:
    """``{"status": ..., "eventId": ...}`` as JSON. JSONResponse would build an encoder per request;
    with the counter's cached child (``metrics``), that was 10 us of the intake's 140 in Python."""
    body = f'{{"status":"{status}","eventId":{json.dumps(event_id)}}}'
    return Response(body.encode(), status_code, media_type="application/json")


def unprocessable(detail: str) -> ProblemError:
    return ProblemError(422, "Unprocessable Content", detail)


async def store(context: IntakeContext, event: IncomingEvent, *, unavailable_status: int = 503) -> Response:
    """Store the event, then answer: 202 when new, 200 for a redelivery (nothing new stored).

    While the database is away, or refuses the row, the answer is ``unavailable_status`` with
    Retry-After, so the sender delivers again later: nothing is acknowledged that is not stored.
    """
    try:
        stored = await record(context.writer, event, context.clock())
    except Exception as error:
        if not is_unavailable(error):
            # Not an outage, but the sender must still deliver again: answer as an outage would.
            log.error(
                "inbox.store_failed",
                extra={"source": event.source, "type": event.type, "error": describe_error(error)},
            )
        raise database_unavailable(unavailable_status) from error
    if stored:
        context.on_stored()
        metrics.webhook_received(event.source, event.type, "accepted")
        return answer(202, "accepted", event.event_id)
    metrics.webhook_received(event.source, event.type, "duplicate")
    return answer(200, "duplicate", event.event_id)
