"""Coalescing, pure: which events fold together, whose state wins, and holding back a burst that is
still arriving (``coalesce.hold_until``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from app.sync.coalesce import HOLD_MAX, applied_type, foldable, hold_until, newest

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


def test_only_record_events_are_held_and_a_quiet_time_of_zero_turns_it_off() -> None:
    assert hold_until(Event(at(0), type="automation.run"), [Event(at(10))], None, at(11), QUIET) is None
    assert hold_until(Event(at(0)), [Event(at(10))], None, at(11), timedelta(0)) is None


def test_tasks_and_notes_are_held_like_contacts() -> None:
    for kind in ("task.updated", "TaskComplete", "NoteUpdate", "note.deleted"):
        head = Event(at(0), type=kind)
        assert hold_until(head, [Event(at(10), type=kind)], None, at(11), QUIET) == at(10) + QUIET


def rankr(event_id: int, kind: str, modified: str | None = None) -> Event:
    data = {"lastModified": modified} if modified else {}
    return Event(at(event_id), type=kind, id=event_id, event_id=f"e{event_id}", payload={"data": data})


def ghl(event_id: int, kind: str) -> Event:
    return Event(at(event_id), type=kind, id=event_id, event_id=f"e{event_id}", source="ghl")


def test_a_task_or_note_folds_the_run_of_its_own_kinds_events_only() -> None:
    head = ghl(1, "TaskCreate")
    waiting = [
        ghl(2, "TaskUpdate"),
        ghl(3, "TaskComplete"),
        ghl(4, "AppointmentUpdate"),
        ghl(5, "TaskDelete"),
    ]
    assert [event.id for event in foldable(head, waiting)] == [2, 3]
    note = rankr(1, "note.created")
    assert [e.id for e in foldable(note, [rankr(2, "note.updated"), rankr(3, "task.updated")])] == [2]
    assert foldable(rankr(1, "automation.run"), [rankr(2, "automation.run")]) == []


def test_the_newest_rankr_task_state_wins_and_a_creation_stays_a_creation() -> None:
    events = [
        rankr(1, "task.created", "2026-11-26T12:00:00Z"),
        rankr(2, "task.updated", "2026-11-26T12:00:03Z"),
        rankr(3, "task.completed", "2026-11-26T12:00:02Z"),  # arrived late: older than event 2
    ]
    chosen = newest(events)
    assert chosen.id == 2
    assert applied_type(events, chosen) == "task.created"
    assert applied_type(events[1:], newest(events[1:])) == "task.updated"


def test_the_last_ghl_note_to_arrive_wins() -> None:
    events = [ghl(1, "NoteCreate"), ghl(2, "NoteUpdate"), ghl(3, "NoteUpdate")]
    assert newest(events).id == 3
    assert applied_type(events, newest(events)) == "NoteCreate"


def test_a_deletion_is_never_folded_away() -> None:
    for events in (
        [
            rankr(1, "task.updated", "2026-11-26T12:00:01Z"),
            rankr(2, "task.deleted"),
            rankr(3, "task.updated", "2026-11-26T12:00:09Z"),
        ],
        [ghl(1, "NoteCreate"), ghl(2, "NoteUpdate"), ghl(3, "NoteDelete")],
        [ghl(1, "TaskCreate"), ghl(2, "TaskDelete")],
    ):
        chosen = newest(events)
        assert chosen.type in {"task.deleted", "NoteDelete", "TaskDelete"}
        assert applied_type(events, chosen) == chosen.type
