"""Coalescing: the events waiting for one record are applied once, with the newest state among them.

The worker claims the oldest open event of a record (its ordering key) and sees the events queued
behind it. A handler applies a record's state as a whole (it diffs against the link's snapshot), so
applying only the newest state gives the same result as applying each in turn, for one write instead
of one per event: a burst of 20 updates to one contact costs at most two upstream writes (the one
under way when the burst began, and this one). Contacts, tasks and notes fold alike, and the rules,
for the events of one record, are:

- a deletion wins over everything queued with it (ids are never reused, so nothing can follow it);
- otherwise, for Rankr, the event with the newest ``lastModified`` (a created followed by updates
  becomes one create with the newest state, as the handler creates whatever is not linked yet);
- otherwise, for GHL, the last to arrive (GHL bodies carry no modification time, and need not
  arrive in order: the handlers read the record from GHL when several were folded).

Only a run of events of the head's record kind directly behind it is folded: anything else queued
with the same key (an appointment, an automation run) keeps its place, and events behind it wait for
it. The superseded events are marked done in the transaction that applies the chosen one.

Folding only sees what is already queued, so a burst that is still arriving is held back a moment
(``hold_until``): an event claimed while its record's events are coming in close together waits
until none came for ``COALESCE_QUIET_SECONDS`` (never longer than ``HOLD_MAX`` after it arrived),
and then the rest of the burst is folded into it. A lone event is applied at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from app.kit.clock import parse_instant

CONTACT_TYPES = frozenset(
    {
        "contact.created",
        "contact.updated",
        "contact.deleted",
        "ContactCreate",
        "ContactUpdate",
        "ContactDelete",
        "ContactTagUpdate",
        "ContactDndUpdate",
    }
)
# GHL has no TaskUpdate event in its catalogue: the task poll (``task_poll.py``) queues it.
TASK_TYPES = frozenset(
    {
        "task.created",
        "task.updated",
        "task.completed",
        "task.deleted",
        "TaskCreate",
        "TaskUpdate",
        "TaskComplete",
        "TaskDelete",
    }
)
NOTE_TYPES = frozenset(
    {"note.created", "note.updated", "note.deleted", "NoteCreate", "NoteUpdate", "NoteDelete"}
)
# The record kind of each event type that folds: only events of one kind fold together.
KINDS = {
    **dict.fromkeys(CONTACT_TYPES, "contact"),
    **dict.fromkeys(TASK_TYPES, "task"),
    **dict.fromkeys(NOTE_TYPES, "note"),
}
DELETE_TYPES = frozenset(
    {"contact.deleted", "ContactDelete", "task.deleted", "TaskDelete", "note.deleted", "NoteDelete"}
)
# (source, kind) -> the type that creates such a record.
CREATE_TYPES = {
    ("rankr", "contact"): "contact.created",
    ("ghl", "contact"): "ContactCreate",
    ("rankr", "task"): "task.created",
    ("ghl", "task"): "TaskCreate",
    ("rankr", "note"): "note.created",
    ("ghl", "note"): "NoteCreate",
}
_OLDEST = datetime.min.replace(tzinfo=UTC)
# The longest an event is held back while its burst goes on: a record changed without pause
# is still written this often.
HOLD_MAX = timedelta(seconds=2)


class Queued(Protocol):
    """What coalescing reads of a stored event."""

    @property
    def id(self) -> int: ...

    @property
    def event_id(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def payload(self) -> dict[str, object]: ...

    @property
    def received_at(self) -> datetime: ...


Q = TypeVar("Q", bound=Queued)


def foldable(head: Q, waiting: Sequence[Q]) -> list[Q]:
    """The events behind ``head`` that may be folded into its work: the run of its record kind's events."""
    kind = KINDS.get(head.type)
    if kind is None:
        return []
    run: list[Q] = []
    for event in waiting:
        if KINDS.get(event.type) != kind:
            break
        run.append(event)
    return run


def _rankr_modified(event: Queued) -> datetime:
    data = event.payload.get("data")
    stamp = data.get("lastModified") if isinstance(data, dict) else None
    return (parse_instant(stamp) if isinstance(stamp, str) else None) or _OLDEST


def newest(events: Sequence[Queued]) -> Queued:
    """Of one record's events (oldest first), the one whose state to apply."""
    for event in events:
        if event.type in DELETE_TYPES:
            return event
    if events[0].source == "rankr":
        return max(events, key=lambda event: (_rankr_modified(event), event.id))
    return events[-1]


def applied_type(events: Sequence[Queued], chosen: Queued) -> str:
    """The type the folded work counts as: a creation folded with later updates is still a creation
    (the rules that fire on ``contact.created`` or ``task.created`` must see it), unless a deletion
    won."""
    created = CREATE_TYPES.get((chosen.source, KINDS.get(chosen.type, "")))
    if chosen.type not in DELETE_TYPES and any(event.type == created for event in events):
        return created or chosen.type
    return chosen.type


def hold_until(
    head: Queued,
    folded: Sequence[Queued],
    previous: datetime | None,
    now: datetime,
    quiet: timedelta,
) -> datetime | None:
    """When to apply ``head`` instead of now (None: now) while its record's burst is still arriving.

    A burst is under way when events are queued behind the head, or the head came less than
    ``quiet`` after the record's ``previous`` event; it is over once none came for ``quiet``.
    """
    if head.type not in KINDS or quiet <= timedelta(0):
        return None
    latest = max(event.received_at for event in [head, *folded])
    bursting = bool(folded) or (previous is not None and head.received_at - previous < quiet)
    until = min(latest + quiet, head.received_at + HOLD_MAX)
    return until if bursting and until > now else None
