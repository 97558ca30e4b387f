"""GHL wire DTOs (Contacts API ``Version: 2021-07-28``, marketplace webhooks), as this service reads them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from app.integrations.wire import Email, Phone, RecordId, WireModel


class GhlCustomField(WireModel):
    id: str
    value: Any = None


class GhlContact(WireModel):
    """A contact as GET /contacts/{id} (GetContectByIdSchema) and the write endpoints answer it."""

    id: str
    location_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    website: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: list[GhlCustomField] = Field(default_factory=list)
    assigned_to: str | None = None
    source: str | None = None
    date_added: str | None = None
    date_updated: str | None = None


class GhlTask(WireModel):
    """A task as the task endpoints answer it (TaskSchema) and Task* webhooks carry it."""

    id: str
    contact_id: str | None = None
    title: str | None = None
    body: str | None = None
    due_date: str | None = None
    completed: bool | None = None
    assigned_to: str | None = None


class GhlNote(WireModel):
    """A note as the note endpoints answer it (GetNoteSchema) and Note* webhooks carry it."""

    id: str
    contact_id: str | None = None
    body: str | None = None
    user_id: str | None = None
    date_added: str | None = None


class GhlWebhook(WireModel):
    """The fields of a GHL webhook body the intake checks (docs/oauth/WebhookAuthentication.md).

    Contact events carry the contact at the top level with ``id``; task and note events carry
    ``id`` and, usually, ``contactId``; appointment events nest an ``appointment`` object; app
    install events name a ``locationId`` or, for agency installs, a ``companyId``.
    """

    type: str = Field(min_length=1)
    webhook_id: str = Field(min_length=1, max_length=255)
    timestamp: str = Field(min_length=1)
    location_id: str | None = Field(default=None, min_length=1, max_length=255)
    company_id: str | None = Field(default=None, min_length=1, max_length=255)
    id: RecordId | None = None
    contact_id: RecordId | None = None
    appointment: dict[str, Any] | None = None
    email: Email | None = None
    phone: Phone | None = None


class GhlLocation(WireModel):
    """A location as GET /locations/{locationId} answers it (GetLocationByIdSchema), the part read here."""

    id: str
    company_id: str | None = None
    name: str | None = None


class GhlFieldDefinition(WireModel):
    """A location's custom field as GET /locations/{id}/customFields lists it (CustomFieldSchema)."""

    id: str
    name: str = ""
    field_key: str = ""
    data_type: str = "TEXT"
    picklist_options: list[str] = Field(default_factory=list)

    @property
    def key(self) -> str:
        """The key a configuration maps it by: ``fieldKey`` without its model prefix."""
        return (self.field_key or self.name or self.id).removeprefix("contact.")


class GhlUser(WireModel):
    """A user of the location as GET /users/?locationId= lists it (UserSchema), the part read here."""

    id: str
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None

    @property
    def label(self) -> str:
        named = self.name or " ".join(p for p in (self.first_name, self.last_name) if p)
        return named or self.email or self.id
