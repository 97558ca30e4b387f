"""The records the Rankr sandbox keeps: contacts and their tasks and notes (rankr/openapi.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Nullable string properties of a Contact, by wire name.
CONTACT_TEXT_FIELDS = ("email", "phone", "firstName", "lastName", "companyName", "website", "ownerId")
ADDRESS_FIELDS = ("line1", "city", "state", "postalCode", "country")

CustomValue = str | int | float | bool


@dataclass
class RankrContact:
    """A contact of the sandbox account."""

    contact_id: str
    account_id: str
    created_at: datetime
    last_modified: datetime
    text: dict[str, str] = field(default_factory=dict)
    address: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, CustomValue] = field(default_factory=dict)

    @property
    def email_lower(self) -> str | None:
        email = self.text.get("email")
        return email.lower() if email else None

    @property
    def display_name(self) -> str:
        parts = [self.text.get("firstName", ""), self.text.get("lastName", "")]
        return " ".join(p for p in parts if p) or self.text.get("email", "") or self.contact_id


@dataclass
class RankrTask:
    """A task on a contact."""

    task_id: str
    contact_id: str
    title: str
    status: str  # "open" | "completed"
    last_modified: datetime
    description: str | None = None
    due_date: datetime | None = None
    assignee_id: str | None = None


@dataclass
class RankrNote:
    """A note on a contact."""

    note_id: str
    contact_id: str
    body: str
    created_at: datetime
    last_modified: datetime
    author_id: str | None = None
