"""The durable inbox: every accepted webhook is one row, and that row is the worker's job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import MAX_BIGINT_KEY, Base, JSONValue, UTCDateTime


class Source(StrEnum):
    RANKR = "rankr"
    GHL = "ghl"


class EventStatus(StrEnum):
    PENDING = "pending"  # stored, waiting for a worker
    PROCESSING = "processing"  # claimed by a worker until lease_until
    RETRYING = "retrying"  # failed transiently, due again at next_attempt_at
    DONE = "done"  # applied (or found to need no write)
    SKIPPED = "skipped"  # nothing to apply: a type this service does not sync
    DEAD = "dead"  # failed permanently or too often; last_error says why


# Statuses that still hold back later events of the same record (per-record ordering).
OPEN_STATUSES = (EventStatus.PENDING, EventStatus.PROCESSING, EventStatus.RETRYING)
# The same as SQL with literal values: the condition of the partial index on open events' ids, which
# a query can use only when its WHERE holds this very term (bound parameters prove nothing).
IS_OPEN = "status IN ({})".format(", ".join(f"'{status.value}'" for status in OPEN_STATUSES))


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
        Index("ix_webhook_events_ordering", "ordering_key", "id"),
        # The open events in id order (the claim's walk), without the done ones kept for days.
        Index("ix_webhook_events_open", "id", postgresql_where=text(IS_OPEN), sqlite_where=text(IS_OPEN)),
        CheckConstraint(
            "status IN ('pending', 'processing', 'retrying', 'done', 'skipped', 'dead')", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    # The Rankr accountId or GHL locationId the event belongs to: how it finds its connection.
    account_key: Mapped[str] = mapped_column(String(255))
    # Events with the same key (one record, by the id its source knows it by) run in arrival order.
    ordering_key: Mapped[str] = mapped_column(String(600))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    leased_by: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def record_id(self) -> str:
        """The id of the record the event is about, as its source names it (the ordering key's tail)."""
        return self.ordering_key.rsplit(":", 1)[-1]


# A stored event's row id as requests name one (form, JSON): anything else is refused with 422.
EventRowId = Annotated[int, Field(ge=1, le=MAX_BIGINT_KEY)]


def as_row_id(text: str) -> int | None:
    """``text`` as a stored event's row id, or None when it cannot be one (not ASCII digits, or too
    large for the column); ``str.isdigit`` alone lets through '²', which ``int`` refuses."""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_BIGINT_KEY else None
