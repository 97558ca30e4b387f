"""The Rankr sandbox's records and every change to them, with the webhook event each change emits.

Semantics from rankr/openapi.yaml: ``lastModified`` is set on every write and only grows per object
(two writes in one millisecond are a millisecond apart); a contact's email is unique per account,
case-insensitively; lists are ordered oldest ``lastModified`` first. Locking, look-ups and the
bookkeeping of a contact's records are ``ContactStore``'s (``app/sandbox/store.py``), as in the GHL store.

Where the yaml is silent, the sandbox assumes:
- PUT merges ``address`` sub-field by sub-field and ``customFields`` key by key, a null value removing
  the key; ``tags`` given replace all tags; every accepted PUT is a write (new ``lastModified``, an
  update event) even when no value changed.
- A task whose status goes open -> completed emits ``task.completed`` (instead of ``task.updated``);
  re-opening emits ``task.updated``.
- Deleting a contact deletes its tasks and notes without events of their own.
- ``updatedSince`` is inclusive (``lastModified >= updatedSince``), so a client resuming from the last
  stamp it saw never misses a write made in that same millisecond.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from app.kit.clock import Clock, format_instant, parse_instant
from app.sandbox.ids import prefixed_id
from app.sandbox.rankr import serialize
from app.sandbox.rankr.records import ADDRESS_FIELDS, CONTACT_TEXT_FIELDS, RankrContact, RankrNote, RankrTask
from app.sandbox.store import ContactStore, EventSink, put_text

RecordT = TypeVar("RecordT", RankrContact, RankrTask, RankrNote)


class EmailTaken(Exception):
    """Another contact of the account already has this email (compared case-insensitively)."""

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"the email is taken by contact {contact_id}")
        self.contact_id = contact_id


class BadCursor(ValueError):
    """A ``cursor`` this sandbox did not hand out."""


def encode_cursor(last_modified: datetime, record_id: str) -> str:
    raw = json.dumps([format_instant(last_modified), record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, record_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadCursor("cursor is not one this API handed out") from exc
    parsed = parse_instant(stamp) if isinstance(stamp, str) else None
    if parsed is None or not isinstance(record_id, str):
        raise BadCursor("cursor is not one this API handed out")
    return parsed, record_id


def page(
    records: Sequence[RecordT],
    record_id: Callable[[RecordT], str],
    *,
    updated_since: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[RecordT], str | None]:
    """Keyset paging by (lastModified, id): stable while records change (a changed one moves last)."""
    ordered = sorted(records, key=lambda r: (r.last_modified, record_id(r)))
    if updated_since is not None:
        ordered = [r for r in ordered if r.last_modified >= updated_since]
    if cursor:
        anchor = decode_cursor(cursor)
        ordered = [r for r in ordered if (r.last_modified, record_id(r)) > anchor]
    window = ordered[:limit]
    more = len(ordered) > limit
    next_cursor = encode_cursor(window[-1].last_modified, record_id(window[-1])) if more and window else None
    return window, next_cursor


class RankrStore(ContactStore[RankrContact]):
    """Contacts, tasks and notes of one account, and the events their changes emit."""

    not_found_wording = "no {kind} {record_id}"

    def __init__(self, account_id: str, clock: Clock, emit: EventSink) -> None:
        super().__init__(clock, emit)
        self.account_id = account_id
        self.tasks: dict[str, RankrTask] = {}
        self.notes: dict[str, RankrNote] = {}
        self._by_email: dict[str, str] = {}

    def _record_tables(self) -> tuple[dict[str, Any], ...]:
        return self.tasks, self.notes

    def _lookups(self) -> tuple[dict[str, Any], ...]:
        return (self._by_email,)

    def _dump(self) -> dict[str, Any]:
        return {
            "accountId": self.account_id,
            "contacts": [serialize.contact_json(c) for c in self.contacts.values()],
            "tasks": [serialize.task_json(t) for t in self.tasks.values()],
            "notes": [serialize.note_json(n) for n in self.notes.values()],
        }

    # -- contacts -----------------------------------------------------------------------------------

    def page_contacts(
        self, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[RankrContact], str | None]:
        with self._lock:
            return page(
                list(self.contacts.values()),
                lambda c: c.contact_id,
                updated_since=updated_since,
                cursor=cursor,
                limit=limit,
            )

    def create_contact(self, changes: dict[str, Any]) -> RankrContact:
        with self._lock:
            stamp = self._stamp()
            contact = RankrContact(prefixed_id("con"), self.account_id, created_at=stamp, last_modified=stamp)
            self._apply(contact, changes)
            self._refuse_taken_email(contact, exclude=None)
            self._commit(contact.contact_id, contact)
            self._emit_contact(contact, "contact.created")
            return contact

    def update_contact(self, contact_id: str, changes: dict[str, Any]) -> RankrContact:
        with self._lock:
            current = self.get_contact(contact_id)
            draft = copy.deepcopy(current)
            self._apply(draft, changes)
            self._refuse_taken_email(draft, exclude=contact_id)
            draft.last_modified = self._stamp(current.last_modified)
            self._commit(contact_id, draft, current)
            self._emit_contact(draft, "contact.updated")
            return draft

    def delete_contact(self, contact_id: str) -> RankrContact:
        with self._lock:
            contact = self._drop_contact(contact_id)
            ids = {"contactId": contact_id, "accountId": self.account_id}
            self._emit_deletion("contact.deleted", contact, contact_id, ids)
            return contact

    # -- tasks --------------------------------------------------------------------------------------

    def page_tasks(
        self, contact_id: str, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[RankrTask], str | None]:
        with self._lock:
            tasks = self._records_of(self.tasks, contact_id)
            return page(tasks, lambda t: t.task_id, updated_since=updated_since, cursor=cursor, limit=limit)

    def get_task(self, contact_id: str, task_id: str) -> RankrTask:
        with self._lock:
            return self._record(self.tasks, "task", contact_id, task_id)

    def create_task(self, contact_id: str, changes: dict[str, Any]) -> RankrTask:
        """``changes`` must hold ``title``; ``dueDate`` is a datetime or None."""
        with self._lock:
            self.get_contact(contact_id)
            stamp = self._stamp()
            task = RankrTask(
                prefixed_id("tsk"), contact_id, title=changes["title"], status="open", last_modified=stamp
            )
            self._apply_task(task, changes)
            self.tasks[task.task_id] = task
            self._emit_task(task, "task.created")
            return task

    def update_task(self, contact_id: str, task_id: str, changes: dict[str, Any]) -> RankrTask:
        with self._lock:
            task = self.get_task(contact_id, task_id)
            was = task.status
            self._apply_task(task, changes)
            task.last_modified = self._stamp(task.last_modified)
            completed_now = was != "completed" and task.status == "completed"
            self._emit_task(task, "task.completed" if completed_now else "task.updated")
            return task

    def delete_task(self, contact_id: str, task_id: str) -> RankrTask:
        with self._lock:
            task = self._drop_record(self.tasks, "task", contact_id, task_id)
            self._emit_deletion("task.deleted", task, task_id, {"taskId": task_id, "contactId": contact_id})
            return task

    @staticmethod
    def _apply_task(task: RankrTask, changes: dict[str, Any]) -> None:
        if changes.get("title") is not None:
            task.title = changes["title"]
        if changes.get("status") is not None:
            task.status = changes["status"]
        if "description" in changes:
            task.description = changes["description"]
        if "dueDate" in changes:
            task.due_date = changes["dueDate"]
        if "assigneeId" in changes:
            task.assignee_id = changes["assigneeId"]

    # -- notes --------------------------------------------------------------------------------------

    def page_notes(
        self, contact_id: str, *, updated_since: datetime | None, cursor: str | None, limit: int
    ) -> tuple[list[RankrNote], str | None]:
        with self._lock:
            notes = self._records_of(self.notes, contact_id)
            return page(notes, lambda n: n.note_id, updated_since=updated_since, cursor=cursor, limit=limit)

    def get_note(self, contact_id: str, note_id: str) -> RankrNote:
        with self._lock:
            return self._record(self.notes, "note", contact_id, note_id)

    def create_note(self, contact_id: str, body: str, author_id: str | None = None) -> RankrNote:
        with self._lock:
            self.get_contact(contact_id)
            stamp = self._stamp()
            note = RankrNote(
                prefixed_id("note"),
                contact_id,
                body,
                created_at=stamp,
                last_modified=stamp,
                author_id=author_id,
            )
            self.notes[note.note_id] = note
            self._emit_note(note, "note.created")
            return note

    def update_note(self, contact_id: str, note_id: str, body: str) -> RankrNote:
        with self._lock:
            note = self.get_note(contact_id, note_id)
            note.body = body
            note.last_modified = self._stamp(note.last_modified)
            self._emit_note(note, "note.updated")
            return note

    def delete_note(self, contact_id: str, note_id: str) -> RankrNote:
        with self._lock:
            note = self._drop_record(self.notes, "note", contact_id, note_id)
            self._emit_deletion("note.deleted", note, note_id, {"noteId": note_id, "contactId": contact_id})
            return note

    # -- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _apply(contact: RankrContact, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key in CONTACT_TEXT_FIELDS:
                put_text(contact.text, key, value)
            elif key == "address":
                for sub in ADDRESS_FIELDS:
                    if sub in value:
                        put_text(contact.address, sub, value[sub])
            elif key == "tags":
                contact.tags = list(dict.fromkeys(tag.strip() for tag in value if tag.strip()))
            elif key == "customFields":
                for field_key, field_value in value.items():
                    if field_value is None:
                        contact.custom_fields.pop(field_key, None)
                    else:
                        contact.custom_fields[field_key] = field_value

    def _refuse_taken_email(self, contact: RankrContact, exclude: str | None) -> None:
        email = contact.email_lower
        owner = self._by_email.get(email) if email else None
        if owner is not None and owner != exclude:
            raise EmailTaken(owner)

    def _index(self, contact: RankrContact) -> None:
        if contact.email_lower:
            self._by_email[contact.email_lower] = contact.contact_id

    def _unindex(self, contact: RankrContact) -> None:
        if contact.email_lower and self._by_email.get(contact.email_lower) == contact.contact_id:
            del self._by_email[contact.email_lower]

    def _emit_deletion(self, event_type: str, gone: RecordT, record_id: str, ids: dict[str, str]) -> None:
        """A ``*.deleted`` event: the id fields and a ``lastModified`` past the record's last write."""
        stamp = self._stamp(gone.last_modified)
        self._emit(event_type, gone.contact_id, record_id, {**ids, "lastModified": format_instant(stamp)})

    def _emit_contact(self, contact: RankrContact, event_type: str) -> None:
        self._emit(event_type, contact.contact_id, contact.contact_id, serialize.contact_json(contact))

    def _emit_task(self, task: RankrTask, event_type: str) -> None:
        self._emit(event_type, task.contact_id, task.task_id, serialize.task_json(task))

    def _emit_note(self, note: RankrNote, event_type: str) -> None:
        self._emit(event_type, note.contact_id, note.note_id, serialize.note_json(note))
