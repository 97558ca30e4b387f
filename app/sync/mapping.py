"""Pure mapping between Rankr and GHL contacts, through one canonical form. No I/O here.

The canonical form is a flat dict keyed by Rankr's field paths (``email``, ``address.city``,
``customFields.<key>``, ``ownerId``, ...). A field that is absent from a canonical dict is unknown
for that record (an unmapped custom field or user) and is never written; a field present with
``None`` is empty. Values are normalised so that equal data compares equal across the two sides:
text is stripped (empty text is None); tags are lowercased, de-duplicated and sorted, because GHL
stores tags lowercased; custom field values are text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_snake

from app.integrations.ghl.schemas import GhlContact, GhlNote, GhlTask
from app.integrations.rankr.schemas import RankrContact, RankrNote, RankrTask
from app.kit.clock import format_instant, parse_instant

Canonical = dict[str, Any]

# Canonical field -> GHL contact field, for the plain text fields of the contract's mapping.
TEXT_FIELDS: dict[str, str] = {
    "email": "email",
    "phone": "phone",
    "firstName": "firstName",
    "lastName": "lastName",
    "companyName": "companyName",
    "website": "website",
    "address.line1": "address1",
    "address.city": "city",
    "address.state": "state",
    "address.postalCode": "postalCode",
    "address.country": "country",
}
TAGS = "tags"
OWNER = "ownerId"
CUSTOM_PREFIX = "customFields."


@dataclass(frozen=True, slots=True)
class FieldMaps:
    """The configured maps: Rankr custom field key -> GHL custom field id, Rankr user -> GHL user, and
    who owns which contact field (``both`` by default; ``rankr``: written to GHL only, never back;
    ``ghl``: the reverse; ``none``: never written)."""

    custom_fields: Mapping[str, str] = field(default_factory=dict)
    users: Mapping[str, str] = field(default_factory=dict)
    ownership: Mapping[str, str] = field(default_factory=dict)
    # GHL location id -> that location's own custom fields (a GHL custom field exists in one location).
    located_custom_fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def at(self, location: str | None) -> FieldMaps:
        """The maps of one GHL location: the custom fields of every location with the location's own."""
        own = self.located_custom_fields.get(location) if location is not None else None
        if not own:
            return replace(self, located_custom_fields={}) if self.located_custom_fields else self
        return replace(self, custom_fields={**self.custom_fields, **own}, located_custom_fields={})

    def writable(self, fields: Canonical, target: str) -> Canonical:
        """The fields that may be written to ``target`` (``rankr`` or ``ghl``)."""
        if not self.ownership:
            return fields
        source = "rankr" if target == "ghl" else "ghl"
        return {
            name: value
            for name, value in fields.items()
            if self.ownership.get(name, "both") in ("both", source)
        }

    @property
    def custom_fields_by_id(self) -> dict[str, str]:
        return {ghl_id: key for key, ghl_id in self.custom_fields.items()}

    @property
    def users_by_ghl_id(self) -> dict[str, str]:
        return {ghl_id: rankr_id for rankr_id, ghl_id in self.users.items()}


def text(value: Any) -> str | None:
    """Stripped text; None for None, empty or blank text. Non-text values become their text form."""
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        value = str(int(value))
    elif isinstance(value, list | dict):
        value = json.dumps(value, sort_keys=True)
    result = str(value).strip()
    return result or None


def tags(values: list[str] | None) -> list[str]:
    return sorted({tag.strip().lower() for tag in values or () if tag and tag.strip()})


def from_rankr(contact: RankrContact, maps: FieldMaps) -> Canonical:
    data = contact.model_dump(by_alias=True)
    address = data.get("address") or {}
    result: Canonical = {
        name: text(
            address.get(name.removeprefix("address.")) if name.startswith("address.") else data.get(name)
        )
        for name in TEXT_FIELDS
    }
    result[TAGS] = tags(contact.tags)
    for key in maps.custom_fields:
        result[CUSTOM_PREFIX + key] = text(contact.custom_fields.get(key))
    if maps.users and (contact.owner_id is None or contact.owner_id in maps.users):
        result[OWNER] = contact.owner_id
    return result


def from_ghl(contact: GhlContact, maps: FieldMaps) -> Canonical:
    data = contact.model_dump(by_alias=True)
    result: Canonical = {name: text(data.get(ghl_name)) for name, ghl_name in TEXT_FIELDS.items()}
    result[TAGS] = tags(contact.tags)
    values = {item.id: item.value for item in contact.custom_fields}
    for key, ghl_id in maps.custom_fields.items():
        result[CUSTOM_PREFIX + key] = text(values.get(ghl_id))
    if maps.users:
        owners = maps.users_by_ghl_id
        assigned = text(contact.assigned_to)
        if assigned is None:
            result[OWNER] = None
        elif assigned in owners:
            result[OWNER] = owners[assigned]
    return result


def changes(new: Canonical, old: Canonical | None) -> Canonical:
    """The fields of ``new`` whose value differs from ``old`` (a field missing from ``old`` is empty)."""
    previous = old or {}
    return {name: value for name, value in new.items() if _empty(previous.get(name)) != _empty(value)}


def _empty(value: Any) -> Any:
    # An empty tag list and a missing one mean the same.
    return None if value == [] else value


def fills(result: Canonical, origin: Canonical) -> Canonical:
    """Fields where ``result`` holds a value that ``origin`` lacks or holds differently; never clears."""
    return {
        name: value for name, value in result.items() if value not in (None, []) and origin.get(name) != value
    }


def fingerprint(fields: Canonical | None) -> str:
    """A stable hash of a canonical dict (the "last written" hash of a link)."""
    normalised = {name: _empty(value) for name, value in (fields or {}).items()}
    payload = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def present(fields: Canonical) -> Canonical:
    """Only the fields holding a value: what a create sends, so it never blanks a matched record."""
    return {name: value for name, value in fields.items() if value not in (None, [])}


def ghl_body(fields: Canonical, maps: FieldMaps) -> dict[str, Any]:
    """A GHL create/update body (UpdateContactDto / UpsertContactDto fields) for the given fields."""
    body: dict[str, Any] = {}
    custom: list[dict[str, Any]] = []
    for name, value in fields.items():
        if name in TEXT_FIELDS:
            body[TEXT_FIELDS[name]] = value
        elif name == TAGS:
            body["tags"] = list(value or [])
        elif name == OWNER:
            body["assignedTo"] = maps.users.get(value) if value is not None else None
        elif name.startswith(CUSTOM_PREFIX):
            key = name[len(CUSTOM_PREFIX) :]
            # GHL clears a custom field given an empty value; it has no null for them.
            custom.append({"id": maps.custom_fields[key], "field_value": value if value is not None else ""})
    if custom:
        body["customFields"] = custom
    return body


def rankr_body(fields: Canonical, maps: FieldMaps) -> dict[str, Any]:
    """A Rankr ContactWrite body (a partial update) for the given fields."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name.startswith("address."):
            body.setdefault("address", {})[name[len("address.") :]] = value
        elif name.startswith(CUSTOM_PREFIX):
            body.setdefault("customFields", {})[name[len(CUSTOM_PREFIX) :]] = value
        elif name == TAGS:
            body["tags"] = list(value or [])
        else:
            body[name] = value
    return body


def describe(new: Canonical, old: Canonical | None) -> dict[str, dict[str, Any]]:
    """What changed, for the audit log: ``{field: {"from": old, "to": new}}``."""
    previous = old or {}
    return {name: {"from": previous.get(name), "to": value} for name, value in new.items()}


def same(a: Any, b: Any) -> bool:
    """Whether two canonical values mean the same (an empty tag list and a missing one do)."""
    return bool(_empty(a) == _empty(b))


def match_keys(fields: Canonical) -> tuple[str | None, str | None]:
    """Normalised email and phone, by which records of the two sides are recognised as the same person.

    The email is lowercased. The phone is its E.164 digits without the ``+``: ``00`` becomes the
    international prefix, and a number of exactly ten digits written without one is taken as North
    American (``+1``), as GHL stores such numbers.
    """
    email = fields.get("email")
    phone = fields.get("phone")
    digits = ""
    if isinstance(phone, str):
        digits = "".join(ch for ch in phone if ch.isdigit())
        written = phone.strip()
        if written.startswith("00"):
            digits = digits[2:]
        elif not written.startswith("+") and len(digits) == 10:
            digits = "1" + digits
    return (email.lower() if isinstance(email, str) else None), (digits or None)


# --- tasks and notes ------------------------------------------------------------------------------
#
# Canonical task fields are Rankr's names: title, description, dueDate (RFC 3339, milliseconds, UTC),
# completed (bool; Rankr status open/completed) and assigneeId (through the user map, present only when
# a map is configured). A Rankr task without a due date leaves ``dueDate`` out (unknown): GHL cannot
# clear a task's due date, so Rankr's "none" is never written over GHL's date. Notes have one field,
# ``body``; the author is passed on create only (Rankr's NoteWrite takes the body alone).

# Canonical task field -> GHL task field.
TASK_FIELDS: dict[str, str] = {
    "title": "title",
    "description": "body",
    "dueDate": "dueDate",
    "completed": "completed",
    "assigneeId": "assignedTo",
}


def instant(value: datetime | str | None) -> str | None:
    """An instant in one text form for both sides (``2026-01-02T03:04:05.000Z``); None when empty."""
    parsed = parse_instant(value) if isinstance(value, str) else value
    return format_instant(parsed) if parsed is not None else None


def task_from_rankr(task: RankrTask, maps: FieldMaps) -> Canonical:
    result: Canonical = {
        "title": text(task.title),
        "description": text(task.description),
        "completed": task.status == "completed",
    }
    if task.due_date is not None:
        result["dueDate"] = instant(task.due_date)
    if maps.users and (task.assignee_id is None or task.assignee_id in maps.users):
        result["assigneeId"] = task.assignee_id
    return result


def task_from_ghl(task: GhlTask, maps: FieldMaps, *, partial: bool = False) -> Canonical:
    """A GHL task in canonical form; ``partial`` (a webhook body) keeps only the fields it carries."""
    given = task.model_fields_set
    result: Canonical = {
        "title": text(task.title),
        "description": text(task.body),
        "dueDate": instant(task.due_date),
        "completed": bool(task.completed),
    }
    if maps.users:
        assigned = text(task.assigned_to)
        owners = maps.users_by_ghl_id
        if assigned is None:
            result["assigneeId"] = None
        elif assigned in owners:
            result["assigneeId"] = owners[assigned]
    if partial:
        known = {name for name, ghl in TASK_FIELDS.items() if to_snake(ghl) in given}
        result = {name: value for name, value in result.items() if name in known}
    return result


def task_ghl_body(fields: Canonical, maps: FieldMaps) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "assigneeId":
            body["assignedTo"] = maps.users.get(value) if value is not None else None
        else:
            body[TASK_FIELDS[name]] = value
    return body


def task_rankr_body(fields: Canonical) -> dict[str, Any]:
    body = {name: value for name, value in fields.items() if name != "completed"}
    if "completed" in fields:
        body["status"] = "completed" if fields["completed"] else "open"
    return body


def note_from_rankr(note: RankrNote) -> Canonical:
    return {"body": text(note.body)}


def note_from_ghl(note: GhlNote, *, partial: bool = False) -> Canonical:
    if partial and "body" not in note.model_fields_set:
        return {}
    return {"body": text(note.body)}
