"""Rankr request bodies (ContactWrite, TaskWrite, NoteWrite of rankr/openapi.yaml) and their errors.

The yaml does not say whether unknown properties are refused; the sandbox refuses them (and the
read-only ``contactId``/``lastModified``/...) with 422 naming the field, so a client typo shows up in
tests instead of being silently dropped. Formats the yaml documents are checked: ``email``,
``phone`` in E.164, ``country`` as ISO 3166-1 alpha-2, ``dueDate`` as an RFC 3339 date-time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from app.sandbox.rankr.records import CustomValue

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("rankr", "{message}", {"message": message})


def parse_rfc3339(value: str) -> datetime | None:
    """An RFC 3339 date-time with a time zone (``Z`` or an offset), or None."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and "T" in value.upper() else None


class RankrDto(BaseModel):
    """Base of Rankr request bodies: camelCase, strict JSON types, unknown properties refused."""

    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel, populate_by_name=False)


class AddressWrite(RankrDto):
    """Address sub-fields; on PUT only the given ones change (null clears one)."""

    line1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _COUNTRY.match(value):
            raise _invalid("must be an ISO 3166-1 alpha-2 country code")
        return value.upper() if value else value


class ContactWrite(RankrDto):
    """Absent fields are left as they are; ``address`` and ``customFields`` merge key by key."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    website: str | None = None
    address: AddressWrite | None = None
    tags: list[str] | None = None
    custom_fields: dict[str, CustomValue | None] | None = None
    owner_id: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _EMAIL.match(value.strip()):
            raise _invalid("must be an email address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _E164.match(value):
            raise _invalid("must be an E.164 phone number such as +14155550123")
        return value

    @field_validator("address", "tags", "custom_fields", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # The yaml types these as object / array (not nullable): null is not a way to clear them.
        if value is None:
            raise _invalid("must not be null")
        return value


class TaskWrite(RankrDto):
    """TaskWrite: ``title`` is required on create (checked by the route), every field optional on PUT."""

    title: str | None = None
    description: str | None = None
    due_date: str | None = None
    status: Literal["open", "completed"] | None = None
    assignee_id: str | None = None

    @field_validator("title", "status", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise _invalid("must not be null")
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise _invalid("must not be empty")
        return value

    @field_validator("due_date")
    @classmethod
    def _due(cls, value: str | None) -> str | None:
        if value is not None and parse_rfc3339(value) is None:
            raise _invalid("must be an RFC 3339 date-time with a time zone")
        return value


class NoteWrite(RankrDto):
    """NoteWrite: the body, on create and on PUT alike."""

    body: str

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if not value.strip():
            raise _invalid("must not be empty")
        return value


_UNION_MEMBERS = {"str", "int", "float", "bool"}


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """``[{field, message}]`` for a 422 problem, fields as dotted wire names, one entry per field."""
    found: list[dict[str, str]] = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        kept = [p for p in parts if p not in _UNION_MEMBERS and not p.startswith("literal[")]
        field = ".".join(kept) or "body"
        if any(entry["field"] == field for entry in found):
            continue
        kind = error["type"]
        if len(kept) != len(parts) and kind != "literal_error":
            message = "must be a string, number, boolean or null"
        elif kind == "extra_forbidden":
            message = "is not a writable property"
        elif kind == "missing":
            message = "is required"
        elif kind == "rankr":
            message = str(error["msg"])
        else:
            message = str(error["msg"]).lower()
        found.append({"field": field, "message": message})
    return found
