"""GHL records as the API answers them and as GHL's webhooks carry them.

API shapes follow the spec's response DTOs (GetContectByIdSchema, TaskSchema, GetNoteSchema,
GetEventSchema); unset properties are left out rather than sent as null, since the spec types them
as plain strings. Webhook shapes follow the official event documents (ContactCreate.md, TaskCreate.md,
NoteCreate.md, ...): exactly their properties, and notably no ``dateUpdated`` on contacts. The
envelope (``timestamp``, ``webhookId``) is added by the sender.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.kit.clock import format_instant
from app.sandbox.ghl.records import (
    GhlAppointment,
    GhlContact,
    GhlCustomFieldDefinition,
    GhlNote,
    GhlTask,
    GhlUser,
)

# Properties of the contact webhook events (ContactCreate/Update/Delete/TagUpdate/DndUpdate.md).
_CONTACT_WEBHOOK_TEXT = (
    "address1",
    "city",
    "companyName",
    "country",
    "source",
    "dateOfBirth",
    "email",
    "firstName",
    "lastName",
    "phone",
    "postalCode",
    "state",
    "website",
    "assignedTo",
)


def _custom_fields(contact: GhlContact) -> list[dict[str, Any]]:
    return [{"id": field_id, "value": value} for field_id, value in contact.custom_fields.items()]


def contact_json(contact: GhlContact) -> dict[str, Any]:
    """The contact as GET /contacts/{id} answers it."""
    data: dict[str, Any] = {"id": contact.id, "locationId": contact.location_id}
    data.update(contact.text)
    name = contact.name
    if name:
        data["name"] = name
        data["fullNameLowerCase"] = name.lower()
    if "firstName" in contact.text:
        data["firstNameLowerCase"] = contact.text["firstName"].lower()
    if "lastName" in contact.text:
        data["lastNameLowerCase"] = contact.text["lastName"].lower()
    if contact.email_lower:
        data["emailLowerCase"] = contact.email_lower
    data["type"] = "lead"
    data["dnd"] = contact.dnd
    if contact.dnd_settings:
        data["dndSettings"] = contact.dnd_settings
    if contact.inbound_dnd_settings:
        data["inboundDndSettings"] = contact.inbound_dnd_settings
    data["tags"] = list(contact.tags)
    data["customFields"] = _custom_fields(contact)
    data["dateAdded"] = format_instant(contact.date_added)
    data["dateUpdated"] = format_instant(contact.date_updated)
    return data


def contact_webhook(contact: GhlContact, event_type: str) -> dict[str, Any]:
    """The body of a Contact* webhook event, without the envelope."""
    data: dict[str, Any] = {"type": event_type, "locationId": contact.location_id, "id": contact.id}
    for key in _CONTACT_WEBHOOK_TEXT:
        if key in contact.text:
            data[key] = contact.text[key]
    if contact.name:
        data["name"] = contact.name
    data["dateAdded"] = format_instant(contact.date_added)
    data["dnd"] = contact.dnd
    if event_type == "ContactDndUpdate":
        data["dndSettings"] = contact.dnd_settings
    data["tags"] = list(contact.tags)
    data["attachments"] = []
    data["customFields"] = _custom_fields(contact)
    return data


def task_json(task: GhlTask) -> dict[str, Any]:
    data: dict[str, Any] = {"id": task.id, "title": task.title}
    if task.body is not None:
        data["body"] = task.body
    if task.assigned_to is not None:
        data["assignedTo"] = task.assigned_to
    if task.due_date is not None:
        data["dueDate"] = format_instant(task.due_date)
    data["completed"] = task.completed
    data["contactId"] = task.contact_id
    data["dateAdded"] = format_instant(task.date_added)
    return data


def task_webhook(task: GhlTask, event_type: str, location_id: str) -> dict[str, Any]:
    """The body of a TaskCreate / TaskComplete / TaskDelete event."""
    data: dict[str, Any] = {"type": event_type, "locationId": location_id, "id": task.id}
    if task.assigned_to is not None:
        data["assignedTo"] = task.assigned_to
    if task.body is not None:
        data["body"] = task.body
    data["contactId"] = task.contact_id
    data["title"] = task.title
    data["dateAdded"] = format_instant(task.date_added)
    if task.due_date is not None:
        data["dueDate"] = format_instant(task.due_date)
    return data


def note_json(note: GhlNote) -> dict[str, Any]:
    data: dict[str, Any] = {"id": note.id, "body": note.body}
    if note.user_id is not None:
        data["userId"] = note.user_id
    data["dateAdded"] = format_instant(note.date_added)
    data["contactId"] = note.contact_id
    if note.title is not None:
        data["title"] = note.title
    if note.color is not None:
        data["color"] = note.color
    if note.pinned is not None:
        data["pinned"] = note.pinned
    return data


def note_webhook(note: GhlNote, event_type: str, location_id: str) -> dict[str, Any]:
    """The body of a NoteCreate / NoteUpdate / NoteDelete event."""
    return {
        "type": event_type,
        "locationId": location_id,
        "id": note.id,
        "body": note.body,
        "contactId": note.contact_id,
        "dateAdded": format_instant(note.date_added),
    }


def _event_time(value: datetime) -> str:
    # GetEventSchema writes times as "2021-07-16 11:00:00"; webhooks use ISO instants.
    return value.strftime("%Y-%m-%d %H:%M:%S")


def appointment_json(appointment: GhlAppointment, location_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": appointment.id,
        "calendarId": appointment.calendar_id,
        "status": appointment.status,
        "title": appointment.title,
        "startTime": _event_time(appointment.start_time),
        "endTime": _event_time(appointment.end_time),
        "locationId": location_id,
        "contactId": appointment.contact_id,
        "appointmentStatus": appointment.status,
        "users": [appointment.assigned_user_id] if appointment.assigned_user_id else [],
        "dateAdded": _event_time(appointment.date_added),
        "dateUpdated": _event_time(appointment.date_updated),
    }
    if appointment.assigned_user_id is not None:
        data["assignedUserId"] = appointment.assigned_user_id
    if appointment.notes is not None:
        data["notes"] = appointment.notes
    if appointment.address is not None:
        data["address"] = appointment.address
    return data


def appointment_webhook(appointment: GhlAppointment, event_type: str, location_id: str) -> dict[str, Any]:
    """The body of an AppointmentCreate event (AppointmentCreate.md)."""
    inner: dict[str, Any] = {
        "id": appointment.id,
        "title": appointment.title,
        "calendarId": appointment.calendar_id,
        "contactId": appointment.contact_id,
        "appointmentStatus": appointment.status,
        "users": [appointment.assigned_user_id] if appointment.assigned_user_id else [],
        "source": "sandbox",
        "startTime": format_instant(appointment.start_time),
        "endTime": format_instant(appointment.end_time),
        "dateAdded": format_instant(appointment.date_added),
        "dateUpdated": format_instant(appointment.date_updated),
    }
    for key, value in (
        ("assignedUserId", appointment.assigned_user_id),
        ("notes", appointment.notes),
        ("address", appointment.address),
    ):
        if value is not None:
            inner[key] = value
    return {"type": event_type, "locationId": location_id, "appointment": inner}


def custom_field_json(definition: GhlCustomFieldDefinition, location_id: str) -> dict[str, Any]:
    """CustomFieldSchema (locations.json)."""
    data: dict[str, Any] = {
        "id": definition.id,
        "name": definition.name,
        "fieldKey": definition.field_key,
        "dataType": definition.data_type,
        "position": definition.position,
        "picklistOptions": list(definition.picklist_options),
        "locationId": location_id,
        "model": "contact",
    }
    if definition.placeholder:
        data["placeholder"] = definition.placeholder
    return data


def user_json(user: GhlUser, location_id: str) -> dict[str, Any]:
    """UserSchema (users.json), the part the sandbox keeps."""
    data: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "deleted": False,
        "roles": {"type": "account", "role": user.role, "locationIds": [location_id]},
    }
    if user.phone:
        data["phone"] = user.phone
    return data
