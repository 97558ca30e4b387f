"""One saved version of the sync configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONValue, UTCDateTime


class SettingsVersion(Base):
    """The whole configuration as of one save; the highest id is the one in force."""

    __tablename__ = "settings_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONValue)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The paths that changed against the version before, e.g. "mapping.customFields.industry".
    summary: Mapped[str] = mapped_column(Text)
