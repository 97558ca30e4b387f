"""The GHL sandbox's records and every change to them, with the webhook each change makes GHL send.

API routes and UI forms both change records only through ``GhlStore``, so a person editing in the UI
causes the same webhooks as an API call, as in the product. Locking, look-ups and the bookkeeping of a
contact's records are ``ContactStore``'s (``app/sandbox/store.py``).

Webhooks per change (GHL's event catalogue has no TaskUpdate event, so editing a task's title, body,
due date or assignee, or re-opening it, sends nothing, as in GHL):

    create contact / upsert (new)    ContactCreate
    PUT contact / upsert (existing)  ContactUpdate, then ContactTagUpdate if tags changed and
                                     ContactDndUpdate if dnd settings changed
    add / remove tags                ContactTagUpdate (only when the tags changed)
    delete contact                   ContactDelete (its tasks, notes and appointments go silently)
    create task                      TaskCreate
    task completed false -> true     TaskComplete
    delete task                      TaskDelete
    note create / update / delete    NoteCreate / NoteUpdate / NoteDelete
    add appointment                  AppointmentCreate

Assumptions where GHL documents nothing: every accepted PUT counts as a write (``dateUpdated`` moves
and ContactUpdate is sent even when no value changed); phone numbers are stored in E.164 with +1 as
the default country, as GHL shows them; a custom field written by ``key`` gets an id the first time;
an upsert with neither email nor phone creates a contact.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.kit.clock import Clock
from app.sandbox.ghl import serialize
from app.sandbox.ghl.records import (
    CONTACT_TEXT_FIELDS,
    GhlAppointment,
    GhlContact,
    GhlCustomFieldDefinition,
    GhlNote,
    GhlTask,
    GhlUser,
)
from app.sandbox.ghl.schemas import parse_date_of_birth
from app.sandbox.ids import ghl_id
from app.sandbox.store import ContactStore, EventSink, put_text


class DuplicateContact(Exception):
    """The location does not allow duplicates and the email or phone belongs to ``existing``."""

    def __init__(self, existing: GhlContact, matching_field: str) -> None:
        super().__init__("This location does not allow duplicated contacts.")
        self.existing = existing
        self.matching_field = matching_field


def normalize_phone(raw: str) -> str:
    """E.164 as GHL stores it: ``+1 888-888-8888`` -> ``+18888888888``; 10 digits get +1."""
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    if not digits:
        return text
    if text.startswith("+"):
        return "+" + digits
    if text.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 10:
        return "+1" + digits
    return "+" + digits


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """GHL stores tags trimmed, lowercased and once each, in the order first given."""
    seen: list[str] = []
    for tag in tags:
        clean = tag.strip().lower()
        if clean and clean not in seen:
            seen.append(clean)
    return seen


def _format_date_of_birth(value: str) -> str | None:
    parsed = parse_date_of_birth(value)
    return None if parsed is None else f"{parsed.isoformat()}T00:00:00.000Z"


def _merge_channels(current: dict[str, dict[str, Any]], given: dict[str, Any] | None) -> dict[str, Any]:
    if given is None:
        return {}
    merged = dict(current)
    for channel, setting in given.items():
        if setting is None:
            merged.pop(channel, None)
        else:
            merged[channel] = {k: v for k, v in setting.items() if v is not None}
    return merged


class GhlStore(ContactStore[GhlContact]):
    """Contacts, tasks, notes and appointments of one location, and the events their changes emit."""

    not_found_wording = "{kind} {record_id} not found"

    def __init__(self, location_id: str, clock: Clock, emit: EventSink, *, allow_duplicates: bool) -> None:
        super().__init__(clock, emit)
        self.location_id = location_id
        self.allow_duplicates = allow_duplicates
        self.tasks: dict[str, GhlTask] = {}
        self.notes: dict[str, GhlNote] = {}
        self.appointments: dict[str, GhlAppointment] = {}
        self._by_email: dict[str, set[str]] = {}
        self._by_phone: dict[str, set[str]] = {}
        self._custom_field_ids: dict[str, str] = {}  # custom field key -> id
        self.custom_field_definitions: dict[str, GhlCustomFieldDefinition] = {}
        self.users: dict[str, GhlUser] = {}

    def _record_tables(self) -> tuple[dict[str, Any], ...]:
        return self.tasks, self.notes, self.appointments

    def _lookups(self) -> tuple[dict[str, Any], ...]:
        return (
            self._by_email,
            self._by_phone,
            self._custom_field_ids,
            self.custom_field_definitions,
            self.users,
        )

    def _dump(self) -> dict[str, Any]:
        return {
            "locationId": self.location_id,
            "contacts": [serialize.contact_json(c) for c in self.contacts.values()],
            "tasks": [serialize.task_json(t) for t in self.tasks.values()],
            "notes": [serialize.note_json(n) for n in self.notes.values()],
            "appointments": [
                serialize.appointment_json(a, self.location_id) for a in self.appointments.values()
            ],
        }

    # -- contacts -----------------------------------------------------------------------------------

    def find_duplicate(self, email: str | None, phone: str | None) -> tuple[GhlContact, str] | None:
        """The oldest contact with this email (case-insensitive), else with this phone."""
        with self._lock:
            return self._find_duplicate(email, phone, exclude=None)

    def create_contact(self, changes: dict[str, Any]) -> GhlContact:
        with self._lock:
            stamp = self._stamp()
            contact = GhlContact(
                id=ghl_id(), location_id=self.location_id, date_added=stamp, date_updated=stamp
            )
            self._apply(contact, changes)
            self._refuse_duplicates(contact, exclude=None)
            self._commit(contact.id, contact)
            self._emit_contact(contact, "ContactCreate")
            return contact

    def update_contact(self, contact_id: str, changes: dict[str, Any]) -> GhlContact:
        with self._lock:
            current = self.get_contact(contact_id)
            draft = copy.deepcopy(current)
            tags_changed, dnd_changed = self._apply(draft, changes)
            self._refuse_duplicates(draft, exclude=contact_id)
            draft.date_updated = self._stamp(current.date_updated)
            self._commit(contact_id, draft, current)
            self._emit_contact(draft, "ContactUpdate")
            if tags_changed:
                self._emit_contact(draft, "ContactTagUpdate")
            if dnd_changed:
                self._emit_contact(draft, "ContactDndUpdate")
            return draft

    def upsert_contact(self, changes: dict[str, Any]) -> tuple[GhlContact, bool]:
        """Update the contact matching the email (first) or phone, else create one; (contact, created)."""
        with self._lock:
            email = changes.get("email") or None
            phone = changes.get("phone") or None
            match = self._find_duplicate(email, phone and normalize_phone(phone), exclude=None)
            if match is None:
                return self.create_contact(changes), True
            existing = match[0]
            kept = dict(changes)
            # GHL keeps the matched contact and silently leaves out an email or phone that belongs to
            # another contact (GoHighLevel/highlevel-api-docs#37) rather than failing the upsert.
            if not self.allow_duplicates:
                if email and self._find_duplicate(email, None, exclude=existing.id):
                    kept.pop("email", None)
                if phone and self._find_duplicate(None, normalize_phone(phone), exclude=existing.id):
                    kept.pop("phone", None)
            return self.update_contact(existing.id, kept), False

    def delete_contact(self, contact_id: str) -> GhlContact:
        with self._lock:
            contact = self._drop_contact(contact_id)
            self._emit_contact(contact, "ContactDelete")
            return contact

    def add_tags(self, contact_id: str, tags: list[str]) -> GhlContact:
        with self._lock:
            current = self.get_contact(contact_id)
            return self._change_tags(current, normalize_tags([*current.tags, *tags]))

    def remove_tags(self, contact_id: str, tags: list[str]) -> GhlContact:
        with self._lock:
            current = self.get_contact(contact_id)
            gone = set(normalize_tags(tags))
            return self._change_tags(current, [tag for tag in current.tags if tag not in gone])

    def _change_tags(self, current: GhlContact, tags: list[str]) -> GhlContact:
        if tags == current.tags:
            return current
        draft = copy.deepcopy(current)
        draft.tags = tags
        draft.date_updated = self._stamp(current.date_updated)
        self._commit(draft.id, draft, current)
        self._emit_contact(draft, "ContactTagUpdate")
        return draft

    # -- tasks --------------------------------------------------------------------------------------

    def list_tasks(self, contact_id: str) -> list[GhlTask]:
        with self._lock:
            found = self._records_of(self.tasks, contact_id)
            return sorted(found, key=lambda t: (t.date_added, t.id))

    def search_tasks(
        self,
        *,
        query: str | None,
        contact_ids: list[str] | None,
        completed: bool | None,
        assigned_to: list[str] | None,
    ) -> list[GhlTask]:
        """The location's tasks, oldest first, filtered as the location task search filters them."""
        needle = (query or "").strip().lower()
        with self._lock:
            found = [
                task
                for task in self.tasks.values()
                if (not needle or needle in task.title.lower() or needle in (task.body or "").lower())
                and (contact_ids is None or task.contact_id in contact_ids)
                and (completed is None or task.completed == completed)
                and (assigned_to is None or task.assigned_to in assigned_to)
            ]
            return sorted(found, key=lambda t: (t.date_added, t.id))

    def get_task(self, contact_id: str, task_id: str) -> GhlTask:
        with self._lock:
            return self._record(self.tasks, "task", contact_id, task_id)

    def create_task(
        self,
        contact_id: str,
        *,
        title: str,
        due_date: datetime | None,
        completed: bool,
        body: str | None = None,
        assigned_to: str | None = None,
    ) -> GhlTask:
        with self._lock:
            self.get_contact(contact_id)
            stamp = self._stamp()
            task = GhlTask(
                id=ghl_id(),
                contact_id=contact_id,
                title=title,
                due_date=due_date,
                completed=completed,
                date_added=stamp,
                date_updated=stamp,
                body=body,
                assigned_to=assigned_to,
            )
            self.tasks[task.id] = task
            self._emit_task(task, "TaskCreate")
            return task

    def update_task(self, contact_id: str, task_id: str, changes: dict[str, Any]) -> GhlTask:
        """Apply ``title``/``body``/``dueDate``/``completed``/``assignedTo`` (None clears body/assignee)."""
        with self._lock:
            task = self.get_task(contact_id, task_id)
            was_completed = task.completed
            if changes.get("title") is not None:
                task.title = changes["title"]
            if "body" in changes:
                task.body = changes["body"]
            if changes.get("dueDate") is not None:
                task.due_date = changes["dueDate"]
            if changes.get("completed") is not None:
                task.completed = bool(changes["completed"])
            if "assignedTo" in changes:
                task.assigned_to = changes["assignedTo"]
            task.date_updated = self._stamp(task.date_updated)
            if task.completed and not was_completed:
                self._emit_task(task, "TaskComplete")
            return task

    def delete_task(self, contact_id: str, task_id: str) -> GhlTask:
        with self._lock:
            task = self._drop_record(self.tasks, "task", contact_id, task_id)
            self._emit_task(task, "TaskDelete")
            return task

    # -- notes --------------------------------------------------------------------------------------

    def list_notes(self, contact_id: str) -> list[GhlNote]:
        with self._lock:
            found = self._records_of(self.notes, contact_id)
            # GHL lists the newest note first.
            return sorted(found, key=lambda n: (n.date_added, n.id), reverse=True)

    def get_note(self, contact_id: str, note_id: str) -> GhlNote:
        with self._lock:
            return self._record(self.notes, "note", contact_id, note_id)

    def create_note(self, contact_id: str, changes: dict[str, Any]) -> GhlNote:
        with self._lock:
            self.get_contact(contact_id)
            stamp = self._stamp()
            note = GhlNote(
                id=ghl_id(),
                contact_id=contact_id,
                body=changes["body"],
                date_added=stamp,
                date_updated=stamp,
            )
            self._apply_note(note, changes)
            self.notes[note.id] = note
            self._emit_note(note, "NoteCreate")
            return note

    def update_note(self, contact_id: str, note_id: str, changes: dict[str, Any]) -> GhlNote:
        with self._lock:
            note = self.get_note(contact_id, note_id)
            self._apply_note(note, changes)
            note.date_updated = self._stamp(note.date_updated)
            self._emit_note(note, "NoteUpdate")
            return note

    def delete_note(self, contact_id: str, note_id: str) -> GhlNote:
        with self._lock:
            note = self._drop_record(self.notes, "note", contact_id, note_id)
            self._emit_note(note, "NoteDelete")
            return note

    @staticmethod
    def _apply_note(note: GhlNote, changes: dict[str, Any]) -> None:
        if changes.get("body") is not None:
            note.body = changes["body"]
        for key, attr in (
            ("userId", "user_id"),
            ("title", "title"),
            ("color", "color"),
            ("pinned", "pinned"),
        ):
            if key in changes:
                setattr(note, attr, changes[key])

    # -- appointments -------------------------------------------------------------------------------

    def list_appointments(self, contact_id: str) -> list[GhlAppointment]:
        with self._lock:
            found = self._records_of(self.appointments, contact_id)
            return sorted(found, key=lambda a: (a.start_time, a.id))

    def add_appointment(
        self,
        contact_id: str,
        *,
        title: str,
        start_time: datetime,
        end_time: datetime,
        calendar_id: str | None = None,
        status: str = "booked",
        assigned_user_id: str | None = None,
        notes: str | None = None,
        address: str | None = None,
    ) -> GhlAppointment:
        with self._lock:
            self.get_contact(contact_id)
            stamp = self._stamp()
            appointment = GhlAppointment(
                id=ghl_id(),
                contact_id=contact_id,
                calendar_id=calendar_id or "SbxCalendar000000001",
                title=title,
                start_time=start_time.astimezone(UTC),
                end_time=end_time.astimezone(UTC),
                date_added=stamp,
                date_updated=stamp,
                status=status,
                assigned_user_id=assigned_user_id,
                notes=notes,
                address=address,
            )
            self.appointments[appointment.id] = appointment
            self._emit(
                "AppointmentCreate",
                contact_id,
                appointment.id,
                serialize.appointment_webhook(appointment, "AppointmentCreate", self.location_id),
            )
            return appointment

    # -- internals ----------------------------------------------------------------------------------

    def list_custom_fields(self) -> list[GhlCustomFieldDefinition]:
        """The location's contact custom fields: those defined (in the UI or by POST), and a TEXT field
        for each one a contact was given by a key or id never defined, as GHL creates them then."""
        with self._lock:
            used = {field_id for contact in self.contacts.values() for field_id in contact.custom_fields}
            for key, field_id in self._custom_field_ids.items():
                self._define_text_field(field_id, key)
            for field_id in used:
                self._define_text_field(field_id, field_id)
            return sorted(self.custom_field_definitions.values(), key=lambda d: (d.position, d.name, d.id))

    def create_custom_field(
        self, name: str, data_type: str, *, placeholder: str | None = None, options: list[str] | None = None
    ) -> GhlCustomFieldDefinition:
        """A new contact custom field; its key is the name in snake case, made unique."""
        with self._lock:
            base = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or "field"
            key, suffix = base, 1
            while key in self._custom_field_ids:
                suffix += 1
                key = f"{base}_{suffix}"
            definition = GhlCustomFieldDefinition(
                id=ghl_id(),
                name=name.strip(),
                field_key=f"contact.{key}",
                data_type=data_type,
                position=len(self.custom_field_definitions),
                placeholder=placeholder,
                picklist_options=list(options or []),
            )
            self._custom_field_ids[key] = definition.id
            self.custom_field_definitions[definition.id] = definition
            return definition

    def _define_text_field(self, field_id: str, key: str) -> None:
        if field_id not in self.custom_field_definitions:
            self.custom_field_definitions[field_id] = GhlCustomFieldDefinition(
                id=field_id,
                name=key,
                field_key=f"contact.{key}",
                data_type="TEXT",
                position=len(self.custom_field_definitions),
            )

    def _custom_field_id(self, field_id: str | None, key: str | None) -> str:
        if field_id:
            return field_id
        if not key:
            raise ValueError("a custom field needs an id or a key")
        # GHL takes the key with or without its model prefix ("contact.pincode" or "pincode").
        return self._custom_field_ids.setdefault(key.removeprefix("contact."), ghl_id())

    # -- users --------------------------------------------------------------------------------------

    def list_users(self) -> list[GhlUser]:
        with self._lock:
            return sorted(self.users.values(), key=lambda u: (u.name.lower(), u.id))

    def create_user(self, first_name: str, last_name: str, email: str, *, role: str = "user") -> GhlUser:
        with self._lock:
            user = GhlUser(
                id=ghl_id(),
                first_name=first_name.strip(),
                last_name=last_name.strip(),
                email=email.strip(),
                role=role,
            )
            self.users[user.id] = user
            return user

    def _apply(self, contact: GhlContact, changes: dict[str, Any]) -> tuple[bool, bool]:
        """Write ``changes`` (wire names) into ``contact``; (tags changed, dnd changed)."""
        old_tags = list(contact.tags)
        old_dnd = (contact.dnd, copy.deepcopy(contact.dnd_settings))
        for key, value in changes.items():
            if key in CONTACT_TEXT_FIELDS:
                self._set_text(contact, key, value)
            elif key == "name" and "firstName" not in changes and "lastName" not in changes:
                first, _, last = (value or "").strip().partition(" ")
                self._set_text(contact, "firstName", first)
                self._set_text(contact, "lastName", last.strip())
            elif key == "tags":
                contact.tags = normalize_tags(value or [])
            elif key == "customFields":
                for field_id, field_key, field_value in value or []:
                    resolved = self._custom_field_id(field_id, field_key)
                    if field_value is None or field_value == "":
                        contact.custom_fields.pop(resolved, None)
                    else:
                        contact.custom_fields[resolved] = field_value
            elif key == "dnd":
                contact.dnd = bool(value)
            elif key == "dndSettings":
                contact.dnd_settings = _merge_channels(contact.dnd_settings, value)
            elif key == "inboundDndSettings":
                contact.inbound_dnd_settings = _merge_channels(contact.inbound_dnd_settings, value)
        return contact.tags != old_tags, (contact.dnd, contact.dnd_settings) != old_dnd

    @staticmethod
    def _set_text(contact: GhlContact, key: str, value: str | None) -> None:
        text = value.strip() if isinstance(value, str) else None
        if key == "phone" and text:
            text = normalize_phone(text)
        elif key == "dateOfBirth" and text:
            text = _format_date_of_birth(text)
        put_text(contact.text, key, text)

    def _find_duplicate(
        self, email: str | None, phone: str | None, exclude: str | None
    ) -> tuple[GhlContact, str] | None:
        for matching_field, index, value in (
            ("email", self._by_email, email.strip().lower() if email else None),
            ("phone", self._by_phone, phone),
        ):
            if not value:
                continue
            ids = [cid for cid in index.get(value, ()) if cid != exclude]
            if ids:
                oldest = min((self.contacts[cid] for cid in ids), key=lambda c: (c.date_added, c.id))
                return oldest, matching_field
        return None

    def _refuse_duplicates(self, contact: GhlContact, exclude: str | None) -> None:
        if self.allow_duplicates:
            return
        match = self._find_duplicate(contact.email_lower, contact.text.get("phone"), exclude)
        if match is not None:
            raise DuplicateContact(*match)

    def _index(self, contact: GhlContact) -> None:
        if contact.email_lower:
            self._by_email.setdefault(contact.email_lower, set()).add(contact.id)
        if phone := contact.text.get("phone"):
            self._by_phone.setdefault(phone, set()).add(contact.id)

    def _unindex(self, contact: GhlContact) -> None:
        for index, value in (
            (self._by_email, contact.email_lower),
            (self._by_phone, contact.text.get("phone")),
        ):
            if value and value in index:
                index[value].discard(contact.id)
                if not index[value]:
                    del index[value]

    def _emit_contact(self, contact: GhlContact, event_type: str) -> None:
        self._emit(event_type, contact.id, contact.id, serialize.contact_webhook(contact, event_type))

    def _emit_task(self, task: GhlTask, event_type: str) -> None:
        self._emit(
            event_type, task.contact_id, task.id, serialize.task_webhook(task, event_type, self.location_id)
        )

    def _emit_note(self, note: GhlNote, event_type: str) -> None:
        self._emit(
            event_type, note.contact_id, note.id, serialize.note_webhook(note, event_type, self.location_id)
        )
