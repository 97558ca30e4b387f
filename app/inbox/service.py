"""Durable receipt of webhooks: one insert per delivery, before the sender gets its 2xx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import unit_of_work
from app.inbox.models import EventStatus, Source, WebhookEvent
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


def event_row(event: IncomingEvent, now: datetime) -> dict[str, Any]:
    """The inbox row of a new event, due at once."""
    return {
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


async def record(writer: InboxWriter, event: IncomingEvent, now: datetime) -> bool:
    """Store the event durably (committed) unless it is already stored; True when it was new.

    One autocommitted statement: the intake does no other database work.
    """
    return await writer.insert(event_row(event, now))


def ordering_key(source: Source, account: str, kind: str, record_id: str) -> str:
    """Events of one record (as its source names it) share a key and apply in arrival order."""
    return f"{source.value}:{account}:{kind}:{record_id}"


def enqueue_in(session: AsyncSession, event: IncomingEvent, now: datetime) -> None:
    """Queue an event the service makes itself, within the caller's transaction."""
    session.add(WebhookEvent(**event_row(event, now)))


async def enqueue(sessions: async_sessionmaker[AsyncSession], event: IncomingEvent, now: datetime) -> bool:
    """Queue an event the service makes itself (as its source would send it) unless one with its id is
    already stored; True when it was new. Such ids are chosen so that a repeat is the same request."""
    try:
        async with unit_of_work(sessions) as session:
            enqueue_in(session, event, now)
    except IntegrityError:
        return False
    return True
