"""The sync configuration file (``CONFIG_FILE``, YAML): mapping overrides, filters, templates, rules.

Everything in it is optional; without a file the service runs on its settings alone (``.env``).
``load()`` validates the whole file and reports every problem with its line and field, e.g.
``rules.yaml:14: rules[0].createTask: no task template named 'cal-hot-lead'``. The example in
``examples/sync-config.yaml`` explains each part.
"""

from __future__ import annotations

import functools
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from app.config import Settings
from app.sync.mapping import CUSTOM_PREFIX, OWNER, TAGS, TEXT_FIELDS, FieldMaps

# Canonical contact fields a configuration may name (custom fields as ``customFields.<key>``).
CONTACT_FIELDS = frozenset({*TEXT_FIELDS, TAGS, OWNER})
# A ``{field}`` placeholder of a task template, filled from the contact's canonical fields.
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)\}")
Ownership = Literal["both", "rankr", "ghl", "none"]
Trigger = Literal["contact.created", "contact.updated", "task.created", "task.completed", "note.added"]


class ConfigError(ValueError):
    """The configuration file is not valid; the message names the file, line and field of each problem."""


class _Located(ValueError):
    """A problem found by a model's own check, with where it is below that model."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Filter(Strict):
    """Which contacts a direction syncs: all the conditions given must hold."""

    tags_any: list[str] = Field(default_factory=list, description="at least one of these tags")
    tags_none: list[str] = Field(default_factory=list, description="none of these tags")
    sources: list[str] = Field(default_factory=list, description="GHL contact source is one of these")


class Filters(Strict):
    to_ghl: Filter | None = None
    to_rankr: Filter | None = None


class LocationMapping(Strict):
    """What only one connection maps: a GHL custom field exists in one location."""

    custom_fields: dict[str, str] = Field(default_factory=dict, description="Rankr key -> GHL field id")


class MappingConfig(Strict):
    custom_fields: dict[str, str] = Field(default_factory=dict, description="Rankr key -> GHL field id")
    users: dict[str, str] = Field(default_factory=dict, description="Rankr user id -> GHL user id")
    # Who owns a field: both sides (default), only Rankr (written to GHL, never back), only GHL, or none.
    fields: dict[str, Ownership] = Field(default_factory=dict)
    # GHL location id -> the connection's own mappings, over the ones above.
    locations: dict[str, LocationMapping] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_fields(self) -> MappingConfig:
        for name in self.fields:
            if name not in CONTACT_FIELDS and not name.startswith("customFields."):
                known = ", ".join(sorted(CONTACT_FIELDS))
                raise _Located(("fields", name), f"unknown field (known: {known}, customFields.<key>)")
        return self


class Due(Strict):
    hours: float | None = Field(default=None, gt=0)
    business_days: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Due:
        if (self.hours is None) == (self.business_days is None):
            raise ValueError("give exactly one of hours or businessDays")
        return self


def unknown_placeholder(text: str) -> str | None:
    """Why ``text`` cannot be rendered (a placeholder that is no contact field), or None."""
    for name in PLACEHOLDER.findall(text):
        if name in CONTACT_FIELDS or (name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX)):
            continue
        close = get_close_matches(name, CONTACT_FIELDS, n=1)
        hint = f" (did you mean {{{close[0]}}}?)" if close else ""
        known = ", ".join(f"{{{field}}}" for field in [*sorted(CONTACT_FIELDS), f"{CUSTOM_PREFIX}<key>"])
        return f"unknown placeholder {{{name}}}{hint}; placeholders are the contact's fields: {known}"
    return None


class TaskTemplate(Strict):
    title: str = Field(min_length=1, description="with {placeholders} from the contact, e.g. {firstName}")
    body: str | None = None
    due: Due = Field(default_factory=lambda: Due(hours=24))
    assignee: str | None = Field(default=None, description="GHL user id")

    @model_validator(mode="after")
    def _known_placeholders(self) -> TaskTemplate:
        # Rendering fills a placeholder from the contact only; any other name would render empty.
        for name, text in (("title", self.title), ("body", self.body)):
            problem = unknown_placeholder(text or "")
            if problem is not None:
                raise _Located((name,), problem)
        return self


class Activity(Strict):
    """At least ``count`` task or note events about the contact within ``days``."""

    count: int = Field(gt=0)
    days: float = Field(gt=0)


class Condition(Strict):
    """When a rule fires: all the conditions given must hold."""

    event: list[Trigger] = Field(min_length=1)
    source: Literal["rankr", "ghl", "any"] = "any"
    tags_any: list[str] = Field(default_factory=list)
    tags_none: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    fields: dict[str, list[str]] = Field(default_factory=dict, description="contact field -> allowed values")
    recent_activity: Activity | None = None


class Assign(Strict):
    user: str | None = Field(default=None, description="a GHL user id")
    round_robin: list[str] | None = Field(default=None, min_length=1, description="GHL user ids, in turn")

    @model_validator(mode="after")
    def _exactly_one(self) -> Assign:
        if (self.user is None) == (self.round_robin is None):
            raise ValueError("give exactly one of user or roundRobin")
        return self


class Rule(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    when: Condition
    create_task: str | None = Field(default=None, description="a task template's name")
    assign: Assign | None = None
    add_tags: list[str] = Field(default_factory=list)
    locations: list[str] = Field(default_factory=list, description="GHL location ids it runs for; none: all")

    def runs_at(self, location: str | None) -> bool:
        """Whether the rule is switched on for the connection of GHL ``location``."""
        return not self.locations or location in self.locations

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if self.create_task is None and self.assign is None and not self.add_tags:
            raise ValueError("a rule needs createTask, assign or addTags")
        return self


class HttpEnrichment(Strict):
    url: HttpUrl
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    requests_per_minute: int = Field(default=60, gt=0)
    fields: list[str] = Field(min_length=1, description="the contact fields it may fill")


class Enrichment(Strict):
    local: bool = False
    http: HttpEnrichment | None = None
    cache_hours: float = Field(default=24.0, ge=0)


class SyncConfig(Strict):
    version: Literal[1] = 1
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    filters: Filters = Field(default_factory=Filters)
    task_templates: dict[str, TaskTemplate] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    enrichment: Enrichment = Field(default_factory=Enrichment)

    @model_validator(mode="after")
    def _templates_exist(self) -> SyncConfig:
        names = set(self.task_templates)
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.create_task is not None and rule.create_task not in names:
                raise _Located(("rules", index, "createTask"), f"no task template named '{rule.create_task}'")
            if rule.name in seen:
                raise _Located(("rules", index, "name"), f"rule name '{rule.name}' is used twice")
            seen.add(rule.name)
        return self


def _line(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The line (1-based) of the node at ``loc``, or of its deepest existing ancestor."""
    found = node
    for part in loc:
        child = None
        if isinstance(found, yaml.MappingNode) and isinstance(part, str):
            child = next((value for key, value in found.value if key.value == part), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            child = found.value[part]
        if child is None:
            break
        found = child
    return found.start_mark.line + 1 if found is not None else None


def _where(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse(text: str, name: str = "<config>") -> SyncConfig:
    """Validate configuration text; ConfigError lists each problem as ``name:line: field: message``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{name}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}:1: the file must hold a mapping (key: value pairs)")
    try:
        return SyncConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if not isinstance(part, str) or "[" not in part)
            located = error.get("ctx", {}).get("error")
            if isinstance(located, _Located):
                loc = (*loc, *located.loc)
            message = str(located) if located is not None else error["msg"]
            at = _line(node, loc) or 1
            problems.append(f"{name}:{at}: {_where(loc)}: {message.removeprefix('Value error, ')}")
        raise ConfigError("\n".join(problems)) from exc


def load(path: Path) -> SyncConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    return parse(text, str(path))


@functools.cache
def _load_cached(path: Path) -> SyncConfig:
    return load(path)


# The configuration saved in the database (``app.settings_store``) as this process last read it, per
# database URL: (which version, configuration). ``sync_config`` answers it when no CONFIG_FILE is set.
_STORED: dict[str, tuple[str, SyncConfig]] = {}


def use_stored(settings: Settings, version: str, config: SyncConfig) -> None:
    """Make ``config`` (the stored settings' ``version``) the one ``sync_config`` answers."""
    _STORED[settings.database_url] = (version, config)


def stored_version(settings: Settings) -> str | None:
    """Which version of the stored settings this process uses; None before they were first read."""
    stored = _STORED.get(settings.database_url)
    return None if stored is None else stored[0]


def sync_config(settings: Settings) -> SyncConfig:
    """The content of ``CONFIG_FILE``, read once per path; without one, the settings saved in the
    database as last read (``use_stored``), else an empty configuration. ConfigError names the
    file, line and field when the file is wrong."""
    if settings.config_file is not None:
        return _load_cached(settings.config_file)
    stored = _STORED.get(settings.database_url)
    return SyncConfig() if stored is None else stored[1]


def document(config: SyncConfig) -> dict[str, Any]:
    """The configuration as the YAML file holds it (camelCase names, defaults left out)."""
    return {"version": 1, **config.model_dump(mode="json", by_alias=True, exclude_defaults=True)}


def to_yaml(config: SyncConfig) -> str:
    return yaml.safe_dump(document(config), sort_keys=False, allow_unicode=True)


def field_maps(settings: Settings, config: SyncConfig | None = None) -> FieldMaps:
    """The custom field and user maps: CUSTOM_FIELD_MAP and USER_MAP, then the configuration file's;
    and who owns each contact field."""
    config = config or sync_config(settings)
    return FieldMaps(
        custom_fields={**settings.env_custom_fields, **config.mapping.custom_fields},
        users={**settings.env_users, **config.mapping.users},
        ownership=config.mapping.fields,
        located_custom_fields={
            location: own.custom_fields for location, own in config.mapping.locations.items()
        },
    )
