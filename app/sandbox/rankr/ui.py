"""The Rankr sandbox's pages: contacts with their tasks and notes, editable with plain forms.

Forms go through ``RankrStore`` like the API (and through the same ``ContactWrite`` checks), so an
edit here emits the same webhooks as a person's edit in Rankr. Custom field values typed in the form
are stored as strings. The pages and routes are the shared ones (``app/sandbox/ui.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.datastructures import FormData

from app.kit.clock import format_instant
from app.sandbox.rankr.records import RankrContact, RankrNote, RankrTask
from app.sandbox.rankr.schemas import ContactWrite, field_errors
from app.sandbox.rankr.state import EmailTaken, RankrStore
from app.sandbox.ui import (
    ContactForms,
    FormError,
    FormField,
    Row,
    UiKit,
    contact_ui_router,
    custom_field_changes,
    datetime_local,
    form_text,
    note_text,
    optional_text,
    parse_datetime_local,
    split_tags,
    tag_and_custom_inputs,
)

if TYPE_CHECKING:
    from app.sandbox.rankr.sandbox import RankrSandbox

_TEXT_INPUTS = (
    ("firstName", "First name"),
    ("lastName", "Last name"),
    ("email", "Email"),
    ("phone", "Phone (E.164)"),
    ("companyName", "Company"),
    ("website", "Website"),
    ("ownerId", "Owner user id"),
)
_ADDRESS_INPUTS = (
    ("line1", "Address"),
    ("city", "City"),
    ("state", "State"),
    ("postalCode", "Postal code"),
    ("country", "Country (2 letters)"),
)


def _contact_fields(contact: RankrContact | None) -> list[FormField]:
    text = contact.text if contact else {}
    address = contact.address if contact else {}
    fields = [FormField(key, label, text.get(key, "")) for key, label in _TEXT_INPUTS]
    fields += [FormField(f"address.{key}", label, address.get(key, "")) for key, label in _ADDRESS_INPUTS]
    fields += tag_and_custom_inputs(
        contact.tags if contact else [], contact.custom_fields if contact else {}, "key"
    )
    return fields


def _contact_changes(form: Any, contact: RankrContact | None) -> dict[str, Any]:
    """The form as a ContactWrite body (validated); raises FormError with the reasons."""
    body: dict[str, Any] = {key: optional_text(form, key) for key, _ in _TEXT_INPUTS}
    body["address"] = {key: optional_text(form, f"address.{key}") for key, _ in _ADDRESS_INPUTS}
    body["tags"] = split_tags(form_text(form, "tags"))
    body["customFields"] = custom_field_changes(form, contact.custom_fields if contact else {})
    try:
        return ContactWrite.model_validate(body).model_dump(by_alias=True, exclude_unset=True)
    except ValidationError as exc:
        raise FormError("; ".join(f"{e['field']} {e['message']}" for e in field_errors(exc))) from exc


def _task_fields(task: RankrTask | None) -> list[FormField]:
    return [
        FormField("title", "Title", task.title if task else "", required=True),
        FormField("description", "Description", (task.description or "") if task else "", kind="textarea"),
        FormField("dueDate", "Due (UTC)", datetime_local(task.due_date) if task else "", kind="datetime"),
        FormField("assigneeId", "Assignee user id", (task.assignee_id or "") if task else ""),
        FormField(
            "status", "Status", task.status if task else "open", kind="select", options=("open", "completed")
        ),
    ]


def _task_changes(form: Any) -> dict[str, Any]:
    status = form_text(form, "status")
    return {
        "title": optional_text(form, "title"),
        "description": optional_text(form, "description"),
        "dueDate": parse_datetime_local(form_text(form, "dueDate")),
        "assigneeId": optional_text(form, "assigneeId"),
        "status": status if status in {"open", "completed"} else None,
    }


def _task_row(task: RankrTask) -> Row:
    cells = [
        ("Title", task.title),
        ("Description", task.description or ""),
        ("Due", format_instant(task.due_date) if task.due_date else ""),
        ("Assignee", task.assignee_id or ""),
        ("Modified", format_instant(task.last_modified)),
    ]
    return Row(task.task_id, cells, fields=_task_fields(task), flag=task.status == "completed")


def _note_row(note: RankrNote) -> Row:
    cells = [
        ("Modified", format_instant(note.last_modified)),
        ("Note", note.body),
        ("Author", note.author_id or ""),
    ]
    return Row(
        note.note_id, cells, fields=[FormField("body", "Note", note.body, kind="textarea", required=True)]
    )


class RankrForms(ContactForms[RankrStore]):
    """Rankr's contacts as pages, and its forms as calls on ``RankrStore``."""

    def contact_rows(self) -> list[Row]:
        contacts = sorted(
            self.store.list_contacts(), key=lambda c: (c.last_modified, c.contact_id), reverse=True
        )
        return [
            Row(
                c.contact_id,
                [
                    ("Name", c.display_name),
                    ("Email", c.text.get("email", "")),
                    ("Phone", c.text.get("phone", "")),
                    ("Tags", ", ".join(c.tags)),
                    ("Modified", format_instant(c.last_modified)),
                ],
            )
            for c in contacts
        ]

    def new_contact_fields(self) -> list[FormField]:
        return _contact_fields(None)

    def page_context(self, contact_id: str) -> dict[str, Any]:
        record = self.store.get_contact(contact_id)
        tasks, _ = self.store.page_tasks(contact_id, updated_since=None, cursor=None, limit=10_000)
        notes, _ = self.store.page_notes(contact_id, updated_since=None, cursor=None, limit=10_000)
        return {
            "page_title": record.display_name,
            "facts": [
                ("Created", format_instant(record.created_at)),
                ("Modified", format_instant(record.last_modified)),
                ("Account", record.account_id),
            ],
            "contact_fields": _contact_fields(record),
            "tasks": [_task_row(t) for t in tasks],
            "task_fields": _task_fields(None),
            "notes": [_note_row(n) for n in reversed(notes)],
            "note_fields": [
                FormField("body", "Note", kind="textarea", required=True),
                FormField("authorId", "Author user id"),
            ],
        }

    def create_contact(self, form: FormData) -> str:
        changes = _contact_changes(form, None)
        try:
            return self.store.create_contact(changes).contact_id
        except EmailTaken as exc:
            raise FormError(f"That email belongs to contact {exc.contact_id}.") from exc

    def update_contact(self, contact_id: str, form: FormData) -> None:
        changes = _contact_changes(form, self.store.get_contact(contact_id))
        try:
            self.store.update_contact(contact_id, changes)
        except EmailTaken as exc:
            raise FormError(f"That email belongs to {exc.contact_id}.") from exc

    def create_task(self, contact_id: str, form: FormData) -> None:
        changes = _task_changes(form)
        if not changes["title"]:
            raise FormError("A task needs a title.")
        self.store.create_task(contact_id, changes)

    def update_task(self, contact_id: str, task_id: str, form: FormData) -> None:
        self.store.update_task(contact_id, task_id, _task_changes(form))

    def set_task_completed(self, contact_id: str, task_id: str, completed: bool) -> None:
        self.store.update_task(contact_id, task_id, {"status": "completed" if completed else "open"})

    def create_note(self, contact_id: str, form: FormData) -> None:
        self.store.create_note(contact_id, note_text(form), optional_text(form, "authorId"))

    def update_note(self, contact_id: str, note_id: str, form: FormData) -> None:
        self.store.update_note(contact_id, note_id, note_text(form))


def ui_router(side: RankrSandbox) -> APIRouter:
    """The pages under ``/rankr/ui`` (the shared ones)."""
    return contact_ui_router(UiKit(side, "Rankr sandbox"), RankrForms(side.store))
