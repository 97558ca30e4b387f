"""The records the GHL sandbox keeps: contacts, their tasks, notes and appointments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Plain text properties of a contact, by GHL wire name; an absent key means "not set".
CONTACT_TEXT_FIELDS = (
    "firstName",
    "lastName",
    "email",
    "phone",
    "companyName",
    "address1",
    "city",
    "state",
    "postalCode",
    "country",
    "website",
    "timezone",
    "source",
    "assignedTo",
    "gender",
    "dateOfBirth",
)


@dataclass
class GhlContact:
    """A contact of the sandbox location."""

    id: str
    location_id: str
    date_added: datetime
    date_updated: datetime
    text: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)  # field id -> value
    dnd: bool = False
    dnd_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    inbound_dnd_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """GHL's derived full name: first and last name joined."""
        parts = [self.text.get("firstName", ""), self.text.get("lastName", "")]
        joined = " ".join(part for part in parts if part).strip()
        return joined or None

    @property
    def email_lower(self) -> str | None:
        email = self.text.get("email")
        return email.lower() if email else None


@dataclass
class GhlTask:
    """A task of a contact."""

    id: str
    contact_id: str
    title: str
    due_date: datetime | None
    completed: bool
    date_added: datetime
    date_updated: datetime
    body: str | None = None
    assigned_to: str | None = None


@dataclass
class GhlNote:
    """A note on a contact."""

    id: str
    contact_id: str
    body: str
    date_added: datetime
    date_updated: datetime
    user_id: str | None = None
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None


@dataclass
class GhlAppointment:
    """A calendar event booked for a contact (read-only through the Contacts API)."""

    id: str
    contact_id: str
    calendar_id: str
    title: str
    start_time: datetime
    end_time: datetime
    date_added: datetime
    date_updated: datetime
    status: str = "booked"
    assigned_user_id: str | None = None
    notes: str | None = None
    address: str | None = None


# The data types GHL's custom fields take (CreateCustomFieldsDTO ``dataType``; the UI's field kinds).
CUSTOM_FIELD_TYPES = (
    "TEXT",
    "LARGE_TEXT",
    "NUMERICAL",
    "PHONE",
    "MONETORY",
    "CHECKBOX",
    "SINGLE_OPTIONS",
    "MULTIPLE_OPTIONS",
    "DATE",
    "TEXTBOX_LIST",
    "FILE_UPLOAD",
    "RADIO",
    "EMAIL",
)


@dataclass
class GhlCustomFieldDefinition:
    """A contact custom field of the location (CustomFieldSchema): what its values mean."""

    id: str
    name: str
    field_key: str
    data_type: str
    position: int = 0
    placeholder: str | None = None
    picklist_options: list[str] = field(default_factory=list)


@dataclass
class GhlUser:
    """A user with access to the location (UserSchema, the part the sandbox keeps)."""

    id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    role: str = "user"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
