"""Connections (one Rankr account <-> one GHL location) and the upstream budgets seen for each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (CheckConstraint("status IN ('active', 'disabled')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rankr_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    ghl_location_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_synced_to_ghl_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_synced_to_rankr_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class RateBudget(Base):
    """One connection's budget with one upstream (GHL: per location; Rankr: per account).

    Every worker process paces its requests through this row (``app.connections.budget``): the
    schedule (``next_slot``), today's count, and the latest rate-limit headers the upstream sent.
    """

    __tablename__ = "rate_budgets"
    __table_args__ = (UniqueConstraint("connection_id", "upstream"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    upstream: Mapped[str] = mapped_column(String(16))
    # The earliest time the next request may start, in Unix seconds: a number rather than a
    # timestamp so a reservation's arithmetic runs inside one UPDATE on both databases.
    next_slot: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Requests reserved on ``day`` (UTC, YYYY-MM-DD), against the daily limit.
    day: Mapped[str | None] = mapped_column(String(10), default=None)
    day_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the upstream's rate-limit headers said last (None until an answer was seen).
    limit: Mapped[int | None] = mapped_column(Integer, default=None)
    remaining: Mapped[int | None] = mapped_column(Integer, default=None)
    window_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    daily_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    daily_remaining: Mapped[int | None] = mapped_column(Integer, default=None)
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
