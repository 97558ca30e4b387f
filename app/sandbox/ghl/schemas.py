"""GHL request bodies (Contacts API, ``Version: 2021-07-28``) and GHL's validation error messages.

The models follow the DTOs of GHL's published OpenAPI document (CreateContactDto, UpdateContactDto,
UpsertContactDto, CreateTaskParams, UpdateTaskBody, UpdateTaskStatusParams, NotesDTO, UpdateNoteDTO,
TagsDTO). GHL runs NestJS's ValidationPipe with ``whitelist`` + ``forbidNonWhitelisted``, so a property
a DTO does not declare is refused with 422 ``property foo should not exist`` (seen for ``gender`` on
PUT /contacts/{id}: GoHighLevel/highlevel-api-docs#313, and ``additionalEmails``: #262). Optional
properties accept null (class-validator's ``@IsOptional`` skips null), which clears the field.
``nest_messages`` renders pydantic's errors the way class-validator words them.

Note the DTO gaps that are GHL's, kept on purpose: UpdateContactDto has no ``companyName`` and no
``gender`` (change those through upsert), and CreateTaskParams requires ``completed``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from app.sandbox.ghl.records import CUSTOM_FIELD_TYPES

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# dateOfBirth formats GHL documents for contacts: YYYY/MM/DD, MM/DD/YYYY, YYYY-MM-DD, MM-DD-YYYY,
# YYYY.MM.DD, MM.DD.YYYY, YYYY_MM_DD, MM_DD_YYYY; full ISO instants are also accepted (GHL echoes them).
_DOB_YMD = re.compile(r"^(\d{4})[-/._](\d{1,2})[-/._](\d{1,2})$")
_DOB_MDY = re.compile(r"^(\d{1,2})[-/._](\d{1,2})[-/._](\d{4})$")


def nest_error(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the client as is."""
    return PydanticCustomError("nest", "{message}", {"message": message})


def parse_date_of_birth(value: str) -> date | None:
    """The date in one of GHL's accepted dateOfBirth formats, or None when it is none of them."""
    text = value.strip()
    try:
        if match := _DOB_YMD.match(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _DOB_MDY.match(text):
            return date(int(match[3]), int(match[1]), int(match[2]))
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def parse_iso_instant(value: str) -> datetime | None:
    """An ISO 8601 date or date-time (``Z`` or offset; naive means UTC), or None."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed


class GhlDto(BaseModel):
    """Base of GHL request bodies: camelCase names, strict JSON types, unknown properties refused."""

    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel, populate_by_name=False)


class DndChannel(GhlDto):
    """One channel of DndSettingSchema: ``status`` active, inactive or permanent."""

    status: Literal["active", "inactive", "permanent"]
    message: str | None = None
    code: str | None = None


class DndSettings(GhlDto):
    """Per-channel DND (DndSettingsSchema); channel names are GHL's own capitalisation."""

    call: DndChannel | None = Field(default=None, alias="Call")
    email: DndChannel | None = Field(default=None, alias="Email")
    sms: DndChannel | None = Field(default=None, alias="SMS")
    whatsapp: DndChannel | None = Field(default=None, alias="WhatsApp")
    gmb: DndChannel | None = Field(default=None, alias="GMB")
    fb: DndChannel | None = Field(default=None, alias="FB")


class InboundDndChannel(GhlDto):
    """InboundDndSettingSchema: ``status`` active or inactive."""

    status: Literal["active", "inactive"]
    message: str | None = None


class InboundDndSettings(GhlDto):
    """InboundDndSettingsSchema (``all`` channels at once)."""

    all: InboundDndChannel | None = None


class CustomFieldInput(GhlDto):
    """One custom field write (TextField, NumericField, ...): ``id`` or ``key``, and ``field_value``.

    GHL also takes ``value`` in place of ``field_value`` (the read shape), so the sandbox does too.
    """

    id: str | None = None
    key: str | None = None
    field_value: Any = Field(default=None, alias="field_value")
    value: Any = None

    @property
    def given_value(self) -> Any:
        return self.field_value if "field_value" in self.model_fields_set else self.value


class _ContactFields(GhlDto):
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    website: str | None = None
    timezone: str | None = None
    dnd: bool | None = None
    dnd_settings: DndSettings | None = None
    inbound_dnd_settings: InboundDndSettings | None = None
    tags: list[str] | None = None
    custom_fields: list[CustomFieldInput] | None = None
    source: str | None = None
    date_of_birth: str | None = None
    country: str | None = None
    assigned_to: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not _EMAIL.match(value.strip()):
            raise nest_error("email must be an email")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _date_of_birth(cls, value: str | None) -> str | None:
        if value is not None and value != "" and parse_date_of_birth(value) is None:
            raise nest_error("dateOfBirth must be a valid date (YYYY-MM-DD, MM/DD/YYYY, ...)")
        return value

    @field_validator("custom_fields")
    @classmethod
    def _custom_fields(cls, value: list[CustomFieldInput] | None) -> list[CustomFieldInput] | None:
        for index, item in enumerate(value or []):
            if not item.id and not item.key:
                raise nest_error(f"customFields.{index}.id should not be empty")
        return value

    def changes(self) -> dict[str, Any]:
        """The given properties by wire name (absent ones left out, null kept as None)."""
        data = self.model_dump(by_alias=True, exclude_unset=True)
        if self.custom_fields is not None:
            data["customFields"] = [(f.id, f.key, f.given_value) for f in self.custom_fields]
        return data


class CreateContactDto(_ContactFields):
    """POST /contacts/: ``locationId`` required; a duplicate email or phone answers 400."""

    location_id: str
    gender: str | None = None
    company_name: str | None = None


class UpdateContactDto(_ContactFields):
    """PUT /contacts/{id}: partial; ``tags`` replaces every tag; ``customFields`` touches only given ids."""


class UpsertContactDto(CreateContactDto):
    """POST /contacts/upsert: matched by email, then phone; else created."""

    create_new_if_duplicate_allowed: bool | None = None


def _check_instant(field: str, value: str | None) -> str | None:
    if value is not None and parse_iso_instant(value) is None:
        raise nest_error(f"{field} must be a valid ISO 8601 date string")
    return value


class CreateCustomFieldsDTO(GhlDto):
    """POST /locations/{locationId}/customFields: ``name`` and ``dataType`` required (contact fields)."""

    name: str
    data_type: str
    placeholder: str | None = None
    accepted_format: list[str] | None = None
    is_multiple_file: bool | None = None
    max_number_of_files: float | None = None
    text_box_list_options: list[dict[str, Any]] | None = None
    position: float | None = None
    model: Literal["contact", "opportunity"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise nest_error("name should not be empty")
        return value

    @field_validator("data_type")
    @classmethod
    def _data_type(cls, value: str) -> str:
        if value not in CUSTOM_FIELD_TYPES:
            raise nest_error(f"dataType must be one of the following values: {', '.join(CUSTOM_FIELD_TYPES)}")
        return value


class CreateTaskParams(GhlDto):
    """POST /contacts/{id}/tasks: ``title``, ``dueDate`` and ``completed`` are required."""

    title: str
    body: str | None = None
    due_date: str
    completed: bool
    assigned_to: str | None = None

    @field_validator("due_date")
    @classmethod
    def _due(cls, value: str) -> str | None:
        return _check_instant("dueDate", value)


class UpdateTaskBody(GhlDto):
    """PUT /contacts/{id}/tasks/{taskId}: partial."""

    title: str | None = None
    body: str | None = None
    due_date: str | None = None
    completed: bool | None = None
    assigned_to: str | None = None

    @field_validator("due_date")
    @classmethod
    def _due(cls, value: str | None) -> str | None:
        return _check_instant("dueDate", value)


class UpdateTaskStatusParams(GhlDto):
    """PUT /contacts/{id}/tasks/{taskId}/completed."""

    completed: bool


class TaskSearchParamsDto(GhlDto):
    """POST /locations/{locationId}/tasks/search (locations.json TaskSearchParamsDto)."""

    contact_id: list[str] | None = None
    completed: bool | None = None
    assigned_to: list[str] | None = None
    query: str | None = None
    limit: int = Field(default=25, ge=1, le=100)
    skip: int = Field(default=0, ge=0)


class NotesDTO(GhlDto):
    """POST /contacts/{id}/notes: ``body`` required."""

    user_id: str | None = None
    body: str
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None


class UpdateNoteDTO(GhlDto):
    """PUT /contacts/{id}/notes/{id}: partial."""

    user_id: str | None = None
    body: str | None = None
    title: str | None = None
    color: str | None = None
    pinned: bool | None = None


class TagsDTO(GhlDto):
    """POST and DELETE /contacts/{id}/tags."""

    tags: list[str]


class SearchFilter(GhlDto):
    """A filter (``field`` + ``operator`` + ``value``) or a group of them (``group`` + ``filters``)."""

    field: str | None = None
    operator: str | None = None
    value: Any = None
    group: Literal["AND", "OR"] | None = None
    filters: list[SearchFilter] | None = None


class SearchSort(GhlDto):
    """One sort key of POST /contacts/search."""

    field: str
    direction: Literal["asc", "desc"] = "desc"


class SearchBody(GhlDto):
    """POST /contacts/search (SearchBodyV2DTO; the published spec leaves its properties empty)."""

    location_id: str
    page: int | None = Field(default=None, ge=1)
    page_limit: int | None = Field(default=None, ge=1, le=500)
    search_after: list[Any] | None = None
    query: str | None = None
    filters: list[SearchFilter] | None = None
    sort: list[SearchSort] | None = None


_TYPE_WORDS = {
    "string_type": "must be a string",
    "bool_type": "must be a boolean value",
    "int_type": "must be an integer number",
    "float_type": "must be a number conforming to the specified constraints",
    "list_type": "must be an array",
}


def nest_messages(exc: ValidationError) -> list[str]:
    """pydantic errors worded as class-validator words them (the ``message`` array of GHL's 422)."""
    messages: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        kind = error["type"]
        path = ".".join(loc)
        if kind == "nest":
            text = str(error["msg"])
        elif kind == "extra_forbidden":
            prefix = ".".join(loc[:-1])
            text = f"property {loc[-1]} should not exist"
            text = f"{prefix}.{text}" if prefix else text
        elif kind == "missing":
            text = f"{path} should not be empty"
        elif kind in _TYPE_WORDS:
            if len(loc) >= 2 and loc[-1].isdigit():
                text = f"each value in {'.'.join(loc[:-1])} {_TYPE_WORDS[kind]}"
            else:
                text = f"{path} {_TYPE_WORDS[kind]}"
        elif kind in {"model_type", "model_attributes_type", "dict_type"}:
            text = f"nested property {path} must be either object or array"
        elif kind in {"literal_error", "enum"}:
            expected = str(error.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
            text = f"{path} must be one of the following values: {expected}"
        elif kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
            text = f"{path} {error['msg'].lower()}"
        else:
            text = f"{path} {error['msg']}"
        if text not in messages:
            messages.append(text)
    return messages


class AppointmentSeed(BaseModel):
    """Body of the sandbox-only ``POST /ghl/_sandbox/appointments`` (the API cannot create them)."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False)

    contact_id: str
    title: str = "Appointment"
    start_time: datetime
    end_time: datetime | None = None  # default: 30 minutes after the start
    calendar_id: str | None = None
    status: str = "booked"
    assigned_user_id: str | None = None
    notes: str | None = None
    address: str | None = None
