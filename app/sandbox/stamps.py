"""Modification stamps that only grow, at the millisecond precision both products write."""

from __future__ import annotations

from datetime import datetime, timedelta

ONE_MS = timedelta(milliseconds=1)


def truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def next_stamp(now: datetime, previous: datetime | None) -> datetime:
    """``now`` at millisecond precision, bumped to one millisecond past ``previous`` when not later.

    Two writes to one record in the same millisecond (or a clock that steps back) must still give
    strictly increasing stamps: clients compare them to decide which version is newer.
    """
    stamp = truncate_ms(now)
    if previous is not None and stamp <= previous:
        stamp = previous + ONE_MS
    return stamp
