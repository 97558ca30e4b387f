"""The GHL sandbox's pages: contacts, their tasks, notes and appointments, editable with plain forms.

Every form calls ``GhlStore`` exactly as the API routes do, so an edit here sends the same webhooks
a person's edit in GHL would. A form shows every field, so an emptied field is cleared on save. The
pages and routes are the shared ones (``app/sandbox/ui.py``) plus booking an appointment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from app.kit.clock import format_instant
from app.sandbox.ghl.records import CUSTOM_FIELD_TYPES, GhlContact, GhlNote, GhlTask
from app.sandbox.ghl.state import DuplicateContact, GhlStore
from app.sandbox.ui import (
    ContactForms,
    FormError,
    FormField,
    Row,
    Section,
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
    from app.sandbox.ghl.sandbox import GhlSandbox

_TEXT_INPUTS = (
    ("firstName", "First name"),
    ("lastName", "Last name"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("companyName", "Company"),
    ("website", "Website"),
    ("address1", "Address"),
    ("city", "City"),
    ("state", "State"),
    ("postalCode", "Postal code"),
    ("country", "Country"),
    ("source", "Source"),
    ("assignedTo", "Assigned user id"),
)


def _contact_fields(contact: GhlContact | None) -> list[FormField]:
    text = contact.text if contact else {}
    fields = [FormField(key, label, text.get(key, "")) for key, label in _TEXT_INPUTS]
    fields += tag_and_custom_inputs(
        contact.tags if contact else [], contact.custom_fields if contact else {}, "id"
    )
    fields.append(FormField("dnd", "Do not disturb", kind="checkbox", checked=bool(contact and contact.dnd)))
    return fields


def _contact_changes(form: Any, contact: GhlContact | None) -> dict[str, Any]:
    changes: dict[str, Any] = {key: optional_text(form, key) for key, _ in _TEXT_INPUTS}
    changes["tags"] = split_tags(form_text(form, "tags"))
    custom = custom_field_changes(form, contact.custom_fields if contact else {})
    changes["customFields"] = [(key, None, value) for key, value in custom.items()]  # (id, key, value)
    changes["dnd"] = form.get("dnd") == "on"
    return changes


def _task_fields(task: GhlTask | None) -> list[FormField]:
    fields = [
        FormField("title", "Title", task.title if task else "", required=True),
        FormField("body", "Description", (task.body or "") if task else "", kind="textarea"),
        FormField(
            "dueDate",
            "Due (UTC)",
            datetime_local(task.due_date) if task else "",
            kind="datetime",
            required=True,
        ),
        FormField("assignedTo", "Assigned user id", (task.assigned_to or "") if task else ""),
    ]
    if task is None:
        fields.append(FormField("completed", "Completed", kind="checkbox"))
    return fields


def _task_row(task: GhlTask) -> Row:
    cells = [
        ("Title", task.title),
        ("Description", task.body or ""),
        ("Due", format_instant(task.due_date) if task.due_date else ""),
        ("Assigned to", task.assigned_to or ""),
    ]
    return Row(task.id, cells, fields=_task_fields(task), flag=task.completed)


def _note_fields(note: GhlNote | None) -> list[FormField]:
    return [
        FormField("body", "Note", note.body if note else "", kind="textarea", required=True),
        FormField("userId", "User id", (note.user_id or "") if note else ""),
    ]


def _note_row(note: GhlNote) -> Row:
    cells = [("Added", format_instant(note.date_added)), ("Note", note.body), ("User", note.user_id or "")]
    return Row(note.id, cells, fields=_note_fields(note))


def _duplicate(exc: DuplicateContact) -> FormError:
    return FormError(f"Duplicate {exc.matching_field}: contact {exc.existing.id}.")


class GhlForms(ContactForms[GhlStore]):
    """GHL's contacts as pages, and its forms as calls on ``GhlStore``."""

    def __init__(self, side: GhlSandbox) -> None:
        super().__init__(side.store)
        self._clock = side.config.clock

    def contact_rows(self) -> list[Row]:
        contacts = sorted(self.store.list_contacts(), key=lambda c: (c.date_added, c.id), reverse=True)
        return [
            Row(
                c.id,
                [
                    ("Name", c.name or ""),
                    ("Email", c.text.get("email", "")),
                    ("Phone", c.text.get("phone", "")),
                    ("Tags", ", ".join(c.tags)),
                    ("Updated", format_instant(c.date_updated)),
                ],
            )
            for c in contacts
        ]

    def new_contact_fields(self) -> list[FormField]:
        return _contact_fields(None)

    def sections(self) -> list[Section]:
        custom_fields = [
            Row(d.id, [("Name", d.name), ("Key", d.field_key), ("Type", d.data_type)])
            for d in self.store.list_custom_fields()
        ]
        users = [Row(u.id, [("Name", u.name), ("Email", u.email)]) for u in self.store.list_users()]
        return [
            Section(
                "Custom fields",
                custom_fields,
                "/ui/custom-fields",
                [
                    FormField("name", "Name", required=True),
                    FormField("dataType", "Type", "TEXT", kind="select", options=CUSTOM_FIELD_TYPES),
                    FormField("options", "Options", hint="for option fields: comma-separated"),
                ],
                "Create custom field",
                "No custom fields yet.",
            ),
            Section(
                "Users",
                users,
                "/ui/users",
                [
                    FormField("firstName", "First name", required=True),
                    FormField("lastName", "Last name"),
                    FormField("email", "Email", kind="email", required=True),
                ],
                "Create user",
                "No users yet.",
            ),
        ]

    def create_custom_field(self, form: FormData) -> str:
        name, data_type = form_text(form, "name").strip(), form_text(form, "dataType")
        if not name or data_type not in CUSTOM_FIELD_TYPES:
            raise FormError("A custom field needs a name and one of GHL's types.")
        options = split_tags(form_text(form, "options"))
        return self.store.create_custom_field(name, data_type, options=options).name

    def create_user(self, form: FormData) -> str:
        first, email = form_text(form, "firstName").strip(), form_text(form, "email").strip()
        if not first or "@" not in email:
            raise FormError("A user needs a first name and an email.")
        return self.store.create_user(first, form_text(form, "lastName"), email).name

    def page_context(self, contact_id: str) -> dict[str, Any]:
        record = self.store.get_contact(contact_id)
        tasks, notes = self.store.list_tasks(contact_id), self.store.list_notes(contact_id)
        appointments = self.store.list_appointments(contact_id)
        now = self._clock()
        return {
            "page_title": record.name or record.id,
            "facts": [
                ("Added", format_instant(record.date_added)),
                ("Updated", format_instant(record.date_updated)),
                ("Location", record.location_id),
            ],
            "contact_fields": _contact_fields(record),
            "tasks": [_task_row(t) for t in tasks],
            "task_fields": _task_fields(None),
            "notes": [_note_row(n) for n in notes],
            "note_fields": _note_fields(None),
            "appointments": [
                Row(
                    a.id,
                    [
                        ("Title", a.title),
                        ("Starts", format_instant(a.start_time)),
                        ("Ends", format_instant(a.end_time)),
                        ("Status", a.status),
                    ],
                )
                for a in appointments
            ],
            "appointment_fields": [
                FormField("title", "Title", "Consultation", required=True),
                FormField(
                    "startTime", "Starts (UTC)", datetime_local(now + timedelta(days=1)), kind="datetime"
                ),
                FormField(
                    "endTime",
                    "Ends (UTC)",
                    datetime_local(now + timedelta(days=1, minutes=30)),
                    kind="datetime",
                ),
                FormField("notes", "Notes"),
            ],
        }

    def create_contact(self, form: FormData) -> str:
        changes = _contact_changes(form, None)
        changes["customFields"] = [entry for entry in changes["customFields"] if entry[2] is not None]
        try:
            return self.store.create_contact(changes).id
        except DuplicateContact as exc:
            raise _duplicate(exc) from exc

    def update_contact(self, contact_id: str, form: FormData) -> None:
        current = self.store.get_contact(contact_id)
        try:
            self.store.update_contact(contact_id, _contact_changes(form, current))
        except DuplicateContact as exc:
            raise _duplicate(exc) from exc

    def create_task(self, contact_id: str, form: FormData) -> None:
        due = parse_datetime_local(form_text(form, "dueDate"))
        title = form_text(form, "title").strip()
        if not title or due is None:
            raise FormError("A task needs a title and a due date.")
        self.store.create_task(
            contact_id,
            title=title,
            due_date=due,
            completed=form.get("completed") == "on",
            body=optional_text(form, "body"),
            assigned_to=optional_text(form, "assignedTo"),
        )

    def update_task(self, contact_id: str, task_id: str, form: FormData) -> None:
        changes: dict[str, Any] = {
            "title": optional_text(form, "title"),
            "body": optional_text(form, "body"),
            "dueDate": parse_datetime_local(form_text(form, "dueDate")),
            "assignedTo": optional_text(form, "assignedTo"),
        }
        self.store.update_task(contact_id, task_id, changes)

    def set_task_completed(self, contact_id: str, task_id: str, completed: bool) -> None:
        self.store.update_task(contact_id, task_id, {"completed": completed})

    def create_note(self, contact_id: str, form: FormData) -> None:
        self.store.create_note(contact_id, {"body": note_text(form), "userId": optional_text(form, "userId")})

    def update_note(self, contact_id: str, note_id: str, form: FormData) -> None:
        # An emptied text leaves the note's text as it was.
        changes = {"body": optional_text(form, "body"), "userId": optional_text(form, "userId")}
        self.store.update_note(contact_id, note_id, changes)

    def book(self, contact_id: str, form: FormData) -> None:
        start = parse_datetime_local(form_text(form, "startTime"))
        end = parse_datetime_local(form_text(form, "endTime"))
        if start is None or end is None or end < start:
            raise FormError("An appointment needs a start and a later end.")
        self.store.add_appointment(
            contact_id,
            title=optional_text(form, "title") or "Appointment",
            start_time=start,
            end_time=end,
            notes=optional_text(form, "notes"),
        )


def ui_router(side: GhlSandbox) -> APIRouter:
    """The pages under ``/ghl/ui``: the shared ones, custom fields, users and booking an appointment."""
    kit = UiKit(side, "GHL sandbox")
    forms = GhlForms(side)
    router = contact_ui_router(kit, forms)

    async def created(request: Request, create: Callable[[FormData], str], what: str) -> RedirectResponse:
        """Create one record from the page's form; back to the page with what happened."""
        try:
            name = create(await request.form())
        except FormError as exc:
            return kit.redirect(request, "/ui", error=str(exc))
        return kit.redirect(request, "/ui", msg=f"{what} {name} created.")

    @router.post("/custom-fields")
    async def create_custom_field(request: Request) -> RedirectResponse:
        return await created(request, forms.create_custom_field, "Custom field")

    @router.post("/users")
    async def create_user(request: Request) -> RedirectResponse:
        return await created(request, forms.create_user, "User")

    @router.post("/contacts/{contact_id}/appointments")
    async def book(request: Request, contact_id: str) -> RedirectResponse:
        form = await request.form()
        return kit.after_change(
            request, contact_id, lambda: forms.book(contact_id, form), "Appointment booked."
        )

    return router
