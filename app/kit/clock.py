"""The clock, injectable: everything that reads the time takes a ``Clock`` so tests can move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_instant(value: str | None) -> datetime | None:
    """An RFC 3339 / ISO 8601 instant as an aware UTC datetime; None for empty or unparsable text,
    and for an instant at the calendar's edge that has no UTC form (year 1 with a positive offset)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def format_instant(value: datetime) -> str:
    """RFC 3339 with millisecond precision and a ``Z``, as Rankr and GHL write their times."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def isoformat_or_none(value: datetime | None) -> str | None:
    """``value.isoformat()``, or None for no time: how the JSON views write a stored time."""
    return value.isoformat() if value is not None else None
