"""Base of the wire DTOs: camelCase on the wire, snake_case in Python, unknown fields ignored.

Also the constraints webhook bodies share: what the service's storage can hold of an email, a phone
and an instant, so such a value is refused at the door rather than failing in the worker.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# The link columns that recognise a person: ``match_email`` and ``match_phone`` (phone digits).
MAX_EMAIL_LENGTH = 320
MAX_PHONE_DIGITS = 32
# Instants outside this range are no real record's and overflow when converted (year 1 or 9999
# with an offset); the range is wide enough for any due date.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def in_range(value: datetime) -> datetime:
    """``value`` (naive means UTC) when it lies between 1900 and 2200, else ValueError."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        raise ValueError(f"must be an instant between {EARLIEST_INSTANT.year} and {LATEST_INSTANT.year}")
    return value


def _phone_fits(value: str) -> str:
    if sum(ch.isdigit() for ch in value) > MAX_PHONE_DIGITS:
        raise ValueError(f"must have at most {MAX_PHONE_DIGITS} digits")
    return value


def _one_segment(value: str) -> str:
    if value in (".", ".."):
        raise ValueError("cannot be a record id ('.' and '..' cannot go into a URL path)")
    return value


Instant = Annotated[datetime, AfterValidator(in_range)]
# An id the service will put into an upstream URL, as the column that stores it allows.
RecordId = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_one_segment)]
Email = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH)]
Phone = Annotated[str, AfterValidator(_phone_fits)]
