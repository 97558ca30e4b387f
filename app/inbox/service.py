"""Durable receipt of webhooks: one insert per delivery, before the sender gets its 2xx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.inbox.models import EventStatus, Source
from app.inbox.writer import InboxWriter


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A verified, well-formed webhook, ready to be stored."""

    source: Source
    event_id: str
    type: str
    account_key: str
    ordering_key: str
    payload: dict[str, Any]


async def record(writer: InboxWriter, event: IncomingEvent, now: datetime) -> bool:
    """Store the event durably (committed) unless it is already stored; True when it was new.

    One autocommitted statement: the intake does no other database work.
    """
    row = {
        "source": event.source.value,
        "event_id": event.event_id,
        "type": event.type,
        "account_key": event.account_key,
        "ordering_key": event.ordering_key,
        "payload": event.payload,
        "received_at": now,
        "status": EventStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
    }
    return await writer.insert(row)


def ordering_key(source: Source, account: str, kind: str, record_id: str) -> str:
    """Events of one record (as its source names it) share a key and apply in arrival order."""
    return f"{source.value}:{account}:{kind}:{record_id}"
