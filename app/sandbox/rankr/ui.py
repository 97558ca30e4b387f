"""The Rankr sandbox's pages: contacts with their tasks and notes, editable with plain forms.

Forms go through ``RankrStore`` like the API (and through the same ``ContactWrite`` checks), so an
edit here emits the same webhooks as a person's edit in Rankr. Custom field values typed in the form
are stored as strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app.kit.clock import format_instant
from app.sandbox.rankr.records import RankrContact, RankrNote, RankrTask
from app.sandbox.rankr.schemas import ContactWrite, field_errors
from app.sandbox.rankr.state import EmailTaken, RecordNotFound
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
    fields.append(
        FormField("tags", "Tags", ", ".join(contact.tags) if contact else "", hint="comma-separated")
    )
    custom = "\n".join(f"{k}={v}" for k, v in contact.custom_fields.items()) if contact else ""
    fields.append(
        FormField("customFields", "Custom fields", custom, kind="textarea", hint="one key=value a line")
    )
    return fields


def _contact_changes(form: Any, contact: RankrContact | None) -> dict[str, Any]:
    """The form as a ContactWrite body (validated); raises ValueError with the reasons."""
    body: dict[str, Any] = {key: form_text(form, key).strip() or None for key, _ in _TEXT_INPUTS}
    body["address"] = {key: form_text(form, f"address.{key}").strip() or None for key, _ in _ADDRESS_INPUTS}
    body["tags"] = split_tags(form_text(form, "tags"))
    given: dict[str, Any] = dict(parse_pairs(form_text(form, "customFields")))
    for removed in (k for k in (contact.custom_fields if contact else {}) if k not in given):
        given[removed] = None
    body["customFields"] = given
    try:
        return ContactWrite.model_validate(body).model_dump(by_alias=True, exclude_unset=True)
    except ValidationError as exc:
        raise ValueError("; ".join(f"{e['field']} {e['message']}" for e in field_errors(exc))) from exc


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
        "title": form_text(form, "title").strip() or None,
        "description": form_text(form, "description").strip() or None,
        "dueDate": parse_datetime_local(form_text(form, "dueDate")),
        "assigneeId": form_text(form, "assigneeId").strip() or None,
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


def ui_router(side: RankrSandbox) -> APIRouter:
    """The pages under ``/rankr/ui``."""
    router = APIRouter(prefix="/ui")
    kit = UiKit(side, "Rankr sandbox")
    store = side.store

    def contact_page(contact_id: str) -> str:
        return f"/ui/contacts/{contact_id}"

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        contacts = sorted(store.list_contacts(), key=lambda c: (c.last_modified, c.contact_id), reverse=True)
        base = kit.base(request)
        rows = [
            Row(
                c.contact_id,
                [
                    ("Name", c.display_name),
                    ("Email", c.text.get("email", "")),
                    ("Phone", c.text.get("phone", "")),
                    ("Tags", ", ".join(c.tags)),
                    ("Modified", format_instant(c.last_modified)),
                ],
                link=f"{base}{contact_page(c.contact_id)}",
            )
            for c in contacts
        ]
        return kit.render(request, "index.html", rows=rows, contact_fields=_contact_fields(None))

    @router.post("/contacts")
    async def create_contact(request: Request) -> RedirectResponse:
        try:
            contact = store.create_contact(_contact_changes(await request.form(), None))
        except ValueError as exc:
            return kit.redirect(request, "/ui", error=str(exc))
        except EmailTaken as exc:
            return kit.redirect(request, "/ui", error=f"That email belongs to contact {exc.contact_id}.")
        return kit.redirect(request, contact_page(contact.contact_id), msg="Contact created.")

    @router.get("/contacts/{contact_id}", response_class=HTMLResponse, response_model=None)
    async def contact(request: Request, contact_id: str) -> HTMLResponse | RedirectResponse:
        try:
            record = store.get_contact(contact_id)
            tasks, _ = store.page_tasks(contact_id, updated_since=None, cursor=None, limit=10_000)
            notes, _ = store.page_notes(contact_id, updated_since=None, cursor=None, limit=10_000)
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.render(
            request,
            "contact.html",
            page_title=record.display_name,
            contact_id=record.contact_id,
            facts=[
                ("Created", format_instant(record.created_at)),
                ("Modified", format_instant(record.last_modified)),
                ("Account", record.account_id),
            ],
            contact_fields=_contact_fields(record),
            tasks=[_task_row(t) for t in tasks],
            task_fields=_task_fields(None),
            notes=[_note_row(n) for n in reversed(notes)],
            note_fields=[
                FormField("body", "Note", kind="textarea", required=True),
                FormField("authorId", "Author user id"),
            ],
        )

    @router.post("/contacts/{contact_id}")
    async def update_contact(request: Request, contact_id: str) -> RedirectResponse:
        try:
            current = store.get_contact(contact_id)
            store.update_contact(contact_id, _contact_changes(await request.form(), current))
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        except ValueError as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        except EmailTaken as exc:
            return kit.redirect(
                request, contact_page(contact_id), error=f"That email belongs to {exc.contact_id}."
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
        changes = _task_changes(await request.form())
        if not changes["title"]:
            return kit.redirect(request, contact_page(contact_id), error="A task needs a title.")
        try:
            store.create_task(contact_id, changes)
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.redirect(request, contact_page(contact_id), msg="Task added.")

    @router.post("/contacts/{contact_id}/tasks/{task_id}")
    async def update_task(request: Request, contact_id: str, task_id: str) -> RedirectResponse:
        try:
            store.update_task(contact_id, task_id, _task_changes(await request.form()))
        except RecordNotFound as exc:
            return kit.redirect(request, contact_page(contact_id), error=str(exc))
        return kit.redirect(request, contact_page(contact_id), msg="Task saved.")

    @router.post("/contacts/{contact_id}/tasks/{task_id}/complete")
    async def complete_task(request: Request, contact_id: str, task_id: str) -> RedirectResponse:
        completed = form_text(await request.form(), "completed") != "false"
        try:
            store.update_task(contact_id, task_id, {"status": "completed" if completed else "open"})
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
            store.create_note(contact_id, body, form_text(form, "authorId").strip() or None)
        except RecordNotFound:
            return kit.redirect(request, "/ui", error=f"No contact {contact_id}.")
        return kit.redirect(request, contact_page(contact_id), msg="Note added.")

    @router.post("/contacts/{contact_id}/notes/{note_id}")
    async def update_note(request: Request, contact_id: str, note_id: str) -> RedirectResponse:
        body = form_text(await request.form(), "body").strip()
        if not body:
            return kit.redirect(request, contact_page(contact_id), error="A note needs a text.")
        try:
            store.update_note(contact_id, note_id, body)
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

    @router.post("/control")
    async def control(request: Request) -> RedirectResponse:
        return await kit.apply_control_form(request)

    @router.post("/reset")
    async def reset(request: Request) -> RedirectResponse:
        side.reset()
        return kit.redirect(request, "/ui", msg="Sandbox reset.")

    return router
