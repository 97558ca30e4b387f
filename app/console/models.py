"""What the console itself records: each reveal of masked values, so a reveal is audited too."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Reveal(Base):
    """An operator was shown the unmasked values of one audit entry."""

    __tablename__ = "reveals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    revealed_by: Mapped[str] = mapped_column(String(200))
    # Not a foreign key: the record of a reveal outlives the pruning of the entry it showed.
    audit_entry_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    contact_id: Mapped[str | None] = mapped_column(String(255), default=None)
    fields: Mapped[str] = mapped_column(String(2000))
