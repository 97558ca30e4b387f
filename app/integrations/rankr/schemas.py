"""Rankr wire DTOs (rankr/openapi.yaml), as this service reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from app.integrations.wire import Email, Instant, Phone, RecordId, WireModel

ContactEventType = Literal["contact.created", "contact.updated", "contact.deleted"]
TaskEventType = Literal["task.created", "task.updated", "task.completed", "task.deleted"]
NoteEventType = Literal["note.created", "note.updated", "note.deleted"]
RankrEventType = ContactEventType | TaskEventType | NoteEventType


class RankrAddress(WireModel):
    line1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class RankrContact(WireModel):
    contact_id: str
    account_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    website: str | None = None
    address: RankrAddress | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, str | float | bool | None] = Field(default_factory=dict)
    owner_id: str | None = None
    created_at: datetime | None = None
    last_modified: datetime


class RankrTask(WireModel):
    task_id: str
    contact_id: str
    title: str
    description: str | None = None
    due_date: datetime | None = None
    status: Literal["open", "completed"]
    assignee_id: str | None = None
    last_modified: datetime


class RankrNote(WireModel):
    note_id: str
    contact_id: str
    body: str
    author_id: str | None = None
    created_at: datetime | None = None
    last_modified: datetime


class RankrEventData(WireModel):
    """The id fields every event's ``data`` must carry (the rest is read by the sync)."""

    contact_id: RecordId | None = None
    task_id: RecordId | None = None
    note_id: RecordId | None = None
    last_modified: Instant
    created_at: Instant | None = None
    due_date: Instant | None = None
    email: Email | None = None
    phone: Phone | None = None


class RankrWebhook(WireModel):
    """A Rankr webhook body (WebhookEvent)."""

    type: RankrEventType
    timestamp: Instant
    account_id: str = Field(min_length=1, max_length=255)
    data: RankrEventData

    def record_id(self) -> tuple[str, str | None]:
        """The kind of record the event is about and its id (None when the data lacks it)."""
        kind = self.type.split(".", 1)[0]
        value: dict[str, Any] = {
            "contact": self.data.contact_id,
            "task": self.data.task_id,
            "note": self.data.note_id,
        }
        return kind, value[kind]


@dataclass
class RankrFieldSurvey:
    """What Rankr's contacts carry that a mapping can name: custom field keys (with a few of their
    values, whose JSON types tell a field's kind) and the owner ids seen."""

    custom_fields: dict[str, list[str | float | bool]] = field(default_factory=dict)
    owner_ids: set[str] = field(default_factory=set)
    contacts_read: int = 0
