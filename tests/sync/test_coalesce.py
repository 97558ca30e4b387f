"""Holding back a burst that is still arriving (``coalesce.hold_until``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.sync.coalesce import HOLD_MAX, hold_until

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
QUIET = timedelta(milliseconds=150)


@dataclass
class Event:
    received_at: datetime
    type: str = "contact.updated"
    id: int = 1
    event_id: str = "e"
    source: str = "rankr"
    payload: dict[str, object] = field(default_factory=dict)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_a_lone_event_is_applied_at_once() -> None:
    assert hold_until(Event(at(0)), [], None, at(1), QUIET) is None
    # ... also when the record's previous event is long past
    assert hold_until(Event(at(1000)), [], at(0), at(1001), QUIET) is None


def test_events_queued_behind_hold_the_head_until_the_burst_pauses() -> None:
    head, behind = Event(at(0)), [Event(at(20)), Event(at(40))]
    assert hold_until(head, behind, None, at(50), QUIET) == at(40) + QUIET
    # once the burst has paused for the quiet time, it is applied
    assert hold_until(head, behind, None, at(191), QUIET) is None


def test_an_event_close_behind_the_records_previous_one_waits_for_the_rest() -> None:
    assert hold_until(Event(at(100)), [], at(60), at(101), QUIET) == at(100) + QUIET


def test_a_burst_that_never_pauses_is_applied_after_the_longest_hold() -> None:
    head = Event(at(0))
    behind = [Event(at(ms)) for ms in range(50, 5000, 50)]
    assert hold_until(head, behind, None, at(1600), QUIET) == at(0) + HOLD_MAX
    assert hold_until(head, behind, None, at(0) + HOLD_MAX, QUIET) is None


def test_only_contact_events_are_held_and_a_quiet_time_of_zero_turns_it_off() -> None:
    assert hold_until(Event(at(0), type="task.updated"), [Event(at(10))], None, at(11), QUIET) is None
    assert hold_until(Event(at(0)), [Event(at(10))], None, at(11), timedelta(0)) is None
