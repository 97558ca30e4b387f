"""What the GHL and Rankr stores have in common: contacts, the records that belong to them, one lock.

``ContactStore`` is the base of ``GhlStore`` and ``RankrStore``. It keeps the bookkeeping that is the
same in both products: looking up a contact or one of its records (a record of another contact counts
as missing), listing a contact's records, deleting a contact together with everything it owns, keeping
the lookups (emails, ...) in step with the contacts, and emptying every table at once. Each product's
store keeps its own record types, ids, stamps, checks and events.

Each public method is one critical section under one re-entrant lock with no ``await`` inside:
concurrent requests on the event loop (and tests peeking from another thread) never see half a change.
The ``_`` helpers expect the caller to hold the lock.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from app.kit.clock import Clock
from app.sandbox.stamps import next_stamp

# (event type, contact id, record id, the product's payload for it)
EventSink = Callable[[str, str, str, dict[str, Any]], None]


def put_text(values: dict[str, str], key: str, value: object) -> None:
    """Set a text property to ``value`` trimmed; a blank (or non-text) value unsets it: no key, not ""."""
    text = value.strip() if isinstance(value, str) else None
    if text:
        values[key] = text
    else:
        values.pop(key, None)


class RecordNotFound(Exception):
    """No such contact, task, note (or not of that contact), in the words of the store that looked."""

    def __init__(self, kind: str, record_id: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.record_id = record_id


class ContactRecord(Protocol):
    """A record that belongs to one contact (a task, a note, an appointment)."""

    contact_id: str


ContactT = TypeVar("ContactT")
RecordT = TypeVar("RecordT", bound=ContactRecord)


class ContactStore(ABC, Generic[ContactT]):
    """Contacts of one location or account, the tables of their records, and the events' sink."""

    # How the product words a missing record, e.g. "{kind} {record_id} not found".
    not_found_wording: ClassVar[str]

    def __init__(self, clock: Clock, emit: EventSink) -> None:
        self._clock = clock
        self._emit = emit
        self._lock = threading.RLock()
        self.contacts: dict[str, ContactT] = {}

    @abstractmethod
    def _record_tables(self) -> tuple[dict[str, Any], ...]:
        """The tables of the records that belong to a contact, by record id."""

    def _lookups(self) -> tuple[dict[str, Any], ...]:
        """Lookup tables kept beside the records; emptied with them."""
        return ()

    @abstractmethod
    def _index(self, contact: ContactT) -> None:
        """Enter the contact in the lookups."""

    @abstractmethod
    def _unindex(self, contact: ContactT) -> None:
        """Take the contact out of the lookups."""

    @abstractmethod
    def _dump(self) -> dict[str, Any]:
        """Every record in the product's API shape."""

    @abstractmethod
    def delete_contact(self, contact_id: str) -> ContactT:
        """Delete the contact with its records (one event, for the contact)."""

    @abstractmethod
    def delete_task(self, contact_id: str, task_id: str) -> object:
        """Delete one task of the contact, with its event."""

    @abstractmethod
    def delete_note(self, contact_id: str, note_id: str) -> object:
        """Delete one note of the contact, with its event."""

    def clear(self) -> None:
        """Forget every record and lookup."""
        with self._lock:
            for table in (self.contacts, *self._record_tables(), *self._lookups()):
                table.clear()

    def snapshot(self) -> dict[str, Any]:
        """Every record in API shape (one consistent view)."""
        with self._lock:
            return self._dump()

    # -- contacts -----------------------------------------------------------------------------------

    def get_contact(self, contact_id: str) -> ContactT:
        with self._lock:
            contact = self.contacts.get(contact_id)
            if contact is None:
                raise self._not_found("contact", contact_id)
            return contact

    def list_contacts(self) -> list[ContactT]:
        with self._lock:
            return list(self.contacts.values())

    def _commit(self, contact_id: str, contact: ContactT, replaced: ContactT | None = None) -> None:
        """Store a new contact, or the changed copy of ``replaced``, and index it."""
        if replaced is not None:
            self._unindex(replaced)
        self.contacts[contact_id] = contact
        self._index(contact)

    def _drop_contact(self, contact_id: str) -> ContactT:
        """Remove the contact and, silently, every record it owns."""
        contact = self.get_contact(contact_id)
        self._unindex(contact)
        del self.contacts[contact_id]
        for table in self._record_tables():
            for record_id in [rid for rid, rec in table.items() if rec.contact_id == contact_id]:
                del table[record_id]
        return contact

    # -- a contact's records ------------------------------------------------------------------------

    def _records_of(self, table: dict[str, RecordT], contact_id: str) -> list[RecordT]:
        """The contact's records in ``table`` (unordered); RecordNotFound when there is no contact."""
        self.get_contact(contact_id)
        return [record for record in table.values() if record.contact_id == contact_id]

    def _record(self, table: dict[str, RecordT], kind: str, contact_id: str, record_id: str) -> RecordT:
        self.get_contact(contact_id)
        record = table.get(record_id)
        if record is None or record.contact_id != contact_id:
            raise self._not_found(kind, record_id)
        return record

    def _drop_record(self, table: dict[str, RecordT], kind: str, contact_id: str, record_id: str) -> RecordT:
        record = self._record(table, kind, contact_id, record_id)
        del table[record_id]
        return record

    # -- helpers ------------------------------------------------------------------------------------

    def _stamp(self, previous: datetime | None = None) -> datetime:
        """Now, later than ``previous`` (see ``next_stamp``)."""
        return next_stamp(self._clock(), previous)

    def _not_found(self, kind: str, record_id: str) -> RecordNotFound:
        return RecordNotFound(kind, record_id, self.not_found_wording.format(kind=kind, record_id=record_id))
