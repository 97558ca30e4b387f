"""What backfill and reconciliation keep: one checkpoint row per connection and job, and staged records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONValue, UTCDateTime


class SyncJob(Base):
    """A backfill or reconciliation of one connection: where it is, what it counted, who runs it.

    ``cursor`` holds the resume points (``{"rankr": cursor, "ghl": searchAfter}``) and, for
    reconciliation, the modification times it has seen up to on each side. The lease makes sure
    one process at a time runs a given job of a connection.
    """

    __tablename__ = "sync_jobs"
    __table_args__ = (UniqueConstraint("connection_id", "job"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(32))
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(96), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class StagedContact(Base):
    """One contact as a side listed it during a job: canonical fields, match keys, what was decided."""

    __tablename__ = "staged_contacts"
    __table_args__ = (
        UniqueConstraint("connection_id", "job", "side", "record_id"),
        Index("ix_staged_contacts_email", "connection_id", "job", "match_email"),
        Index("ix_staged_contacts_phone", "connection_id", "job", "match_phone"),
        Index("ix_staged_contacts_outcome", "connection_id", "job", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    record_id: Mapped[str] = mapped_column(String(255))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    # The record as its API listed it (Rankr: the contact JSON a create event carries).
    wire: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    fingerprint: Mapped[str] = mapped_column(String(64))
    match_email: Mapped[str | None] = mapped_column(String(320), default=None)
    match_phone: Mapped[str | None] = mapped_column(String(32), default=None)
    modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # pair | paired | create | linked | duplicate | ended | unchanged | repair (None: not decided yet)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    detail: Mapped[str | None] = mapped_column(String(600), default=None)
    # The inbox event that carries the write (webhook_events.id), when one was queued.
    event_ref: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # A ``pair``'s record on the other side (staged_contacts.id), queued together with it.
    counterpart_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
