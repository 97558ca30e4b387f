"""The GHL sandbox's pages: contacts, their tasks, notes and appointments, editable with plain forms.

Every form calls ``GhlStore`` exactly as the API routes do, so an edit here sends the same webhooks
a person's edit in GHL would. A form shows every field, so an emptied field is cleared on save.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.kit.clock import format_instant
from app.sandbox.ghl.records import GhlContact, GhlNote, GhlTask
from app.sandbox.ghl.state import DuplicateContact, RecordNotFound
from app.sandbox.ui import (
    FormField,
    Row,
    UiKit,
    datetime_local,
    form_text,
    parse_datetime_local,
    parse_pairs,
    split_tags,
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
    fields.append(
        FormField("tags", "Tags", ", ".join(contact.tags) if contact else "", hint="comma-separated")
    )
    custom = "\n".join(f"{k}={v}" for k, v in contact.custom_fields.items()) if contact else ""
    fields.append(
        FormField("customFields", "Custom fields", custom, kind="textarea", hint="one id=value a line")
    )
    fields.append(FormField("dnd", "Do not disturb", kind="checkbox", checked=bool(contact and contact.dnd)))
    return fields


def _contact_changes(form: Any, contact: GhlContact | None) -> dict[str, Any]:
    changes: dict[str, Any] = {key: form_text(form, key).strip() or None for key, _ in _TEXT_INPUTS}
    changes["tags"] = split_tags(form_text(form, "tags"))
    given = parse_pairs(form_text(form, "customFields"))
    removed = [k for k in (contact.custom_fields if contact else {}) if k not in given]
    changes["customFields"] = [(k, None, v) for k, v in given.items()] + [(k, None, None) for k in removed]
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


def ui_router(side: GhlSandbox) -> APIRouter:
    """The pages under ``/ghl/ui``."""
    router = APIRouter(prefix="/ui")
    kit = UiKit(side, "GHL sandbox")
    store = side.store

    def contact_page(contact_id: str) -> str:
        return f"/ui/contacts/{contact_id}"

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        contacts = sorted(store.list_contacts(), key=lambda c: (c.date_added, c.id), reverse=True)
        base = kit.base(request)
        rows = [
            Row(
                c.id,
                [
                    ("Name", c.name or ""),
                    ("Email", c.text.get("email", "")),
                    ("Phone", c.text.get("phone", "")),
                    ("Tags", ", ".join(c.tags)),
                    ("Updated", format_instant(c.date_updated)),
                ],
                link=f"{base}{contact_page(c.id)}",
            )
            for c in contacts
        ]
        return kit.render(request, "index.html", rows=rows, contact_fields=_contact_fields(None))

    @router.post("/contacts")
    async def create_contact(request: Request) -> RedirectResponse:
        changes = _contact_changes(await request.form(), None)
        changes["customFields"] = [entry for entry in changes["customFields"] if entry[2] is not None]
        try:
            contact = store.create_contact(changes)
        except DuplicateContact as exc:
            return kit.redirect(
                request, "/ui", error=f"Duplicate {exc.matching_field}: contact {exc.existing.id}."
            )
        return kit.redirect(request, contact_page(contact.id), msg="Contact created.")

    @router.get("/contacts/{contact_id}", response_class=HTMLResponse, response_model=None)
    async def contact(request: Request, contact_id: str) -> HTMLResponse | RedirectResponse:
        try:
            record = store.get_contact(contact_id)
            tasks, notes = store.list_tasks(contact_id), store.list_notes(contact_id)
            appointments = store.list_appointments(contact_id)
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        now = side.config.clock()
        return kit.render(
            request,
            "contact.html",
            page_title=record.name or record.id,
            contact_id=record.id,
            facts=[
                ("Added", format_instant(record.date_added)),
                ("Updated", format_instant(record.date_updated)),
                ("Location", record.location_id),
            ],
            contact_fields=_contact_fields(record),
            tasks=[_task_row(t) for t in tasks],
            task_fields=_task_fields(None),
            notes=[_note_row(n) for n in notes],
            note_fields=_note_fields(None),
            appointments=[
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
            appointment_fields=[
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
        )

    @router.post("/contacts/{contact_id}")
    async def update_contact(request: Request, contact_id: str) -> RedirectResponse:
        try:
            current = store.get_contact(contact_id)
            store.update_contact(contact_id, _contact_changes(await request.form(), current))
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        except DuplicateContact as exc:
            return kit.redirect(
                request,
                contact_page(contact_id),
                error=f"Duplicate {exc.matching_field}: contact {exc.existing.id}.",
            )
        return kit.redirect(request, contact_page(contact_id), msg="Contact saved.")

    @router.post("/contacts/{contact_id}/delete")
    async def delete_contact(request: Request, contact_id: str) -> RedirectResponse:
        try:
            store.delete_contact(contact_id)
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.redirect(request, "/ui", msg="Contact deleted.")

    @router.post("/contacts/{contact_id}/tasks")
    async def create_task(request: Request, contact_id: str) -> RedirectResponse:
        form = await request.form()
        due = parse_datetime_local(form_text(form, "dueDate"))
        title = form_text(form, "title").strip()
        if not title or due is None:
            return kit.redirect(
                request, contact_page(contact_id), error="A task needs a title and a due date."
            )
        try:
            store.create_task(
                contact_id,
                title=title,
                due_date=due,
                completed=form.get("completed") == "on",
                body=form_text(form, "body").strip() or None,
                assigned_to=form_text(form, "assignedTo").strip() or None,
            )
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.redirect(request, contact_page(contact_id), msg="Task added.")

    @router.post("/contacts/{contact_id}/tasks/{task_id}")
    async def update_task(request: Request, contact_id: str, task_id: str) -> RedirectResponse:
        form = await request.form()
        changes: dict[str, Any] = {
            "title": form_text(form, "title").strip() or None,
            "body": form_text(form, "body").strip() or None,
            "dueDate": parse_datetime_local(form_text(form, "dueDate")),
            "assignedTo": form_text(form, "assignedTo").strip() or None,
        }
        try:
            store.update_task(contact_id, task_id, changes)
        except RecordNotFound as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        return kit.redirect(request, contact_page(contact_id), msg="Task saved.")

    @router.post("/contacts/{contact_id}/tasks/{task_id}/complete")
    async def complete_task(request: Request, contact_id: str, task_id: str) -> RedirectResponse:
        completed = form_text(await request.form(), "completed") != "false"
        try:
            store.update_task(contact_id, task_id, {"completed": completed})
        except RecordNotFound as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        return kit.redirect(
            request, contact_page(contact_id), msg="Task completed." if completed else "Task reopened."
        )

    @router.post("/contacts/{contact_id}/tasks/{task_id}/delete")
    async def delete_task(request: Request, contact_id: str, task_id: str) -> RedirectResponse:
        try:
            store.delete_task(contact_id, task_id)
        except RecordNotFound as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        return kit.redirect(request, contact_page(contact_id), msg="Task deleted.")

    @router.post("/contacts/{contact_id}/notes")
    async def create_note(request: Request, contact_id: str) -> RedirectResponse:
        form = await request.form()
        body = form_text(form, "body").strip()
        if not body:
            return kit.redirect(request, contact_page(contact_id), error="A note needs a text.")
        try:
            store.create_note(contact_id, {"body": body, "userId": form_text(form, "userId").strip() or None})
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.redirect(request, contact_page(contact_id), msg="Note added.")

    @router.post("/contacts/{contact_id}/notes/{note_id}")
    async def update_note(request: Request, contact_id: str, note_id: str) -> RedirectResponse:
        form = await request.form()
        changes = {
            "body": form_text(form, "body").strip() or None,
            "userId": form_text(form, "userId").strip() or None,
        }
        try:
            store.update_note(contact_id, note_id, changes)
        except RecordNotFound as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        return kit.redirect(request, contact_page(contact_id), msg="Note saved.")

    @router.post("/contacts/{contact_id}/notes/{note_id}/delete")
    async def delete_note(request: Request, contact_id: str, note_id: str) -> RedirectResponse:
        try:
            store.delete_note(contact_id, note_id)
        except RecordNotFound as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        return kit.redirect(request, contact_page(contact_id), msg="Note deleted.")

    @router.post("/contacts/{contact_id}/appointments")
    async def book(request: Request, contact_id: str) -> RedirectResponse:
        form = await request.form()
        start = parse_datetime_local(form_text(form, "startTime"))
        end = parse_datetime_local(form_text(form, "endTime"))
        if start is None or end is None or end < start:
            return kit.redirect(
                request, contact_page(contact_id), error="An appointment needs a start and a later end."
            )
        try:
            store.add_appointment(
                contact_id,
                title=form_text(form, "title").strip() or "Appointment",
                start_time=start,
                end_time=end,
                notes=form_text(form, "notes").strip() or None,
            )
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.redirect(request, contact_page(contact_id), msg="Appointment booked.")

    @router.post("/control")
    async def control(request: Request) -> RedirectResponse:
        return await kit.apply_control_form(request)

    @router.post("/reset")
    async def reset(request: Request) -> RedirectResponse:
        side.reset()
        return kit.redirect(request, "/ui", msg="Sandbox reset.")

    return router
