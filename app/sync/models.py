"""What the sync engine remembers: links between records of the two sides, and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONValue, UTCDateTime


class Kind(StrEnum):
    CONTACT = "contact"
    TASK = "task"
    NOTE = "note"


class LinkState(StrEnum):
    PENDING = "pending"  # being created on the other side; the lease guards it
    LINKED = "linked"
    DELETED = "deleted"  # deleted on one side and settled on the other (a tombstone)
    UNLINKED = "unlinked"  # deleted on one side, kept (and tagged) on the other by configuration


class Direction(StrEnum):
    TO_GHL = "to_ghl"
    TO_RANKR = "to_rankr"


class Link(Base):
    """One record known on both sides: ids, what was last synced, and a lease for whoever works on it."""

    __tablename__ = "links"
    __table_args__ = (
        # Each lookup index leads with the id or key it looks up (migration 0009 says why); the
        # unique constraints keep the names they had when they led with (connection_id, kind).
        UniqueConstraint("rankr_id", "connection_id", "kind", name="uq_links_connection_id_kind_rankr_id"),
        UniqueConstraint("ghl_id", "connection_id", "kind", name="uq_links_connection_id_kind_ghl_id"),
        Index("ix_links_parent", "parent_id"),
        Index("ix_links_match_email", "match_email", "connection_id", "kind"),
        Index("ix_links_match_phone", "match_phone", "connection_id", "kind"),
        CheckConstraint("kind IN ('contact', 'task', 'note')", name="kind"),
        CheckConstraint("state IN ('pending', 'linked', 'deleted', 'unlinked')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    rankr_id: Mapped[str | None] = mapped_column(String(255), default=None)
    ghl_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # Tasks and notes hang off their contact's link.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"), default=None)
    state: Mapped[str] = mapped_column(String(16))
    # The newest modification time seen on each side (Rankr lastModified, GHL dateUpdated).
    rankr_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ghl_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The mapped fields both sides hold since the last sync, and their hash.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONValue, default=None)
    synced_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Normalised email and phone of the snapshot: how the same person is recognised on both sides.
    match_email: Mapped[str | None] = mapped_column(String(320), default=None)
    match_phone: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(96), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class AuditEntry(Base):
    """One write the service made (or tried to make) upstream."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_connection_at", "connection_id", "at"),
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_rankr_id", "rankr_id"),
        Index("ix_audit_entries_ghl_id", "ghl_id"),
        CheckConstraint("direction IN ('to_ghl', 'to_rankr')", name="direction"),
        CheckConstraint("result IN ('ok', 'error')", name="result"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), default=None
    )
    # The triggering event as its source named it: kept when the inbox row itself is purged.
    event_type: Mapped[str | None] = mapped_column(String(64), default=None)
    event_ref: Mapped[str | None] = mapped_column(String(255), default=None)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"), default=None)
    kind: Mapped[str] = mapped_column(String(16))
    rankr_id: Mapped[str | None] = mapped_column(String(255), default=None)
    ghl_id: Mapped[str | None] = mapped_column(String(255), default=None)
    direction: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    result: Mapped[str] = mapped_column(String(8))
    detail: Mapped[str | None] = mapped_column(Text, default=None)


@dataclass(frozen=True, slots=True)
class Audit:
    """One write for the audit trail, as a handler describes it. ``repository.add_audit`` adds the
    time, the connection and the event, and stores it as an ``AuditEntry`` row."""

    kind: str
    direction: Direction
    action: str
    changes: dict[str, Any]
    link_id: int | None = None
    rankr_id: str | None = None
    ghl_id: str | None = None
    result: Literal["ok", "error"] = "ok"
    detail: str | None = None


class TaskPollLease(Base):
    """Which process polls a connection's GHL task lists (``app.sync.task_poll``): one at a time, so
    the poll's reads are counted once however many workers run. The holder renews it every round;
    another takes over once it ran out."""

    __tablename__ = "task_poll_leases"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    holder: Mapped[str] = mapped_column(String(64))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime())
