"""What the rules remember: which rule acted on which contact (so a replay never acts twice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONValue, UTCDateTime


class RuleRun(Base):
    """One rule acting on one contact: ``started`` before its writes, ``done`` with them."""

    __tablename__ = "rule_runs"
    __table_args__ = (
        UniqueConstraint("connection_id", "rule", "contact_link_id"),
        CheckConstraint("state IN ('started', 'done')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(100))
    contact_link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="SET NULL"), default=None
    )
    state: Mapped[str] = mapped_column(String(16))
    decision: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
