"""The ready-made actions: task templates, routing, tagging and enrichment the service offers,
each described in plain words, with a few settings, and written into the sync configuration as the
task template and rule (or enrichment switch) it stands for.

An action is on for a connection when its rule (``action-<id>``) is in the configuration and names
the connection's GHL location (``locations``; a rule naming none runs for every connection). Its
settings are the rule's, shared by the connections it is on for. Switching it off for the last of
them removes the rule and its template. Rules written by hand keep their own names and are left
alone. The enrichment is not a rule: it is on or off for every connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

RULE_PREFIX = "action-"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    label: str
    default: str
    hint: str = ""
    choices: tuple[str, ...] = ()


Values = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    kind: str  # task template, routing, tagging or enrichment
    title: str
    description: str
    settings: tuple[Setting, ...]
    # Writes the action into a configuration document (a dict as the YAML file holds it).
    apply: Callable[[dict[str, Any], Values], None]

    @property
    def rule_name(self) -> str:
        return f"{RULE_PREFIX}{self.id}"


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _rule(doc: dict[str, Any], rule: dict[str, Any]) -> None:
    rules = [r for r in doc.get("rules", []) if r.get("name") != rule["name"]]
    doc["rules"] = [*rules, rule]


def _when(values: Values, events: list[str]) -> dict[str, Any]:
    when: dict[str, Any] = {"event": events, "source": values.get("source", "any") or "any"}
    if tags := _split(values.get("tagsAny", "")):
        when["tagsAny"] = tags
    return when


def _call_new_lead(doc: dict[str, Any], values: Values) -> None:
    template: dict[str, Any] = {"title": values["title"], "due": {"hours": float(values["dueHours"])}}
    if values.get("body"):
        template["body"] = values["body"]
    if values.get("assignee"):
        template["assignee"] = values["assignee"]
    doc.setdefault("taskTemplates", {})["call-new-lead"] = template
    _rule(
        doc,
        {
            "name": f"{RULE_PREFIX}call-new-lead",
            "when": _when(values, ["contact.created"]),
            "createTask": "call-new-lead",
        },
    )


def _follow_up_completed(doc: dict[str, Any], values: Values) -> None:
    doc.setdefault("taskTemplates", {})["follow-up"] = {
        "title": values["title"],
        "due": {"businessDays": int(values["dueBusinessDays"])},
    }
    _rule(
        doc,
        {
            "name": f"{RULE_PREFIX}follow-up",
            "when": _when(values, ["task.completed"]),
            "createTask": "follow-up",
        },
    )


def _round_robin(doc: dict[str, Any], values: Values) -> None:
    rule: dict[str, Any] = {
        "name": f"{RULE_PREFIX}round-robin",
        "when": _when(values, ["contact.created"]),
        "assign": {"roundRobin": _split(values["users"])},
    }
    if tags := _split(values.get("addTags", "")):
        rule["addTags"] = tags
    _rule(doc, rule)


def _tag_engaged(doc: dict[str, Any], values: Values) -> None:
    when = _when(values, ["note.added", "task.completed"])
    when["recentActivity"] = {"count": int(values["count"]), "days": float(values["days"])}
    _rule(doc, {"name": f"{RULE_PREFIX}tag-engaged", "when": when, "addTags": _split(values["tags"])})


def _enrich_local(doc: dict[str, Any], values: Values) -> None:
    doc.setdefault("enrichment", {})["local"] = True


SOURCE = Setting("source", "From", "any", "which product the change must come from", ("any", "rankr", "ghl"))
TAGS_ANY = Setting("tagsAny", "Only contacts tagged", "", "comma-separated; empty: every contact")

CATALOGUE: tuple[Action, ...] = (
    Action(
        "call-new-lead",
        "task template",
        "Call every new lead",
        "When a new contact arrives, create a task on it in GHL (and so in Rankr) to call them, due a "
        "few hours later. The title and description may use the contact's fields, e.g. {firstName}.",
        (
            Setting("title", "Task title", "Call {firstName} {lastName}"),
            Setting("body", "Description", "New lead from {companyName}. Phone: {phone}"),
            Setting("dueHours", "Due after (hours)", "24"),
            Setting("assignee", "Assign to (GHL user id)", "", "empty: unassigned"),
            SOURCE,
            TAGS_ANY,
        ),
        _call_new_lead,
    ),
    Action(
        "follow-up",
        "task template",
        "Follow up after a completed task",
        "When a task of a contact is completed, create a follow-up task a few business days later.",
        (
            Setting("title", "Task title", "Follow up with {firstName}"),
            Setting("dueBusinessDays", "Due after (business days)", "3"),
            SOURCE,
            TAGS_ANY,
        ),
        _follow_up_completed,
    ),
    Action(
        "round-robin",
        "routing",
        "Share new contacts among your team",
        "Assign each new contact to the next of these GHL users in turn (the contact's owner in GHL), "
        "and tag it so the team can find it.",
        (
            Setting("users", "GHL user ids, in turn", "", "comma-separated (see the mapping page's users)"),
            Setting("addTags", "Add tags", "routed", "comma-separated"),
            SOURCE,
            TAGS_ANY,
        ),
        _round_robin,
    ),
    Action(
        "tag-engaged",
        "tagging",
        "Tag engaged contacts",
        "After several notes or completed tasks within a few days, tag the contact (in both products).",
        (
            Setting("count", "At least (notes or completed tasks)", "3"),
            Setting("days", "Within (days)", "7"),
            Setting("tags", "Tags", "engaged", "comma-separated"),
            SOURCE,
        ),
        _tag_engaged,
    ),
    Action(
        "enrich-local",
        "enrichment",
        "Fill in what the email and phone tell",
        "Fill empty fields of new and changed contacts from what they already hold: the website from a "
        "business email's domain, the country from the phone's code, names from the email. Only empty "
        "fields are filled; nothing leaves the service.",
        (),
        _enrich_local,
    ),
)
BY_ID = {action.id: action for action in CATALOGUE}


def _rule_of(action: Action, doc: Mapping[str, Any]) -> dict[str, Any] | None:
    return next((r for r in doc.get("rules", []) if r.get("name") == action.rule_name), None)


def is_on(action: Action, doc: Mapping[str, Any], location: str) -> bool:
    """Whether the action is on for the connection of GHL ``location``."""
    if action.id == "enrich-local":
        return bool(doc.get("enrichment", {}).get("local"))
    rule = _rule_of(action, doc)
    return rule is not None and (not rule.get("locations") or location in rule["locations"])


def switch_on(action: Action, doc: dict[str, Any], values: Values, location: str) -> None:
    """Write the action with ``values`` and switch it on for GHL ``location``'s connection too."""
    before = _rule_of(action, doc)
    action.apply(doc, values)
    rule = _rule_of(action, doc)
    if rule is None:
        return
    locations = [location] if before is None else list(before.get("locations", []))
    if locations and location not in locations:
        locations.append(location)
    if locations:
        rule["locations"] = locations


def current_values(action: Action, doc: Mapping[str, Any]) -> dict[str, str]:
    """The action's settings as the configuration holds them (its defaults when it is off)."""
    values = {s.name: s.default for s in action.settings}
    rule = next((r for r in doc.get("rules", []) if r.get("name") == action.rule_name), None)
    if rule is None:
        return values
    when = rule.get("when", {})
    values["source"] = when.get("source", "any")
    values["tagsAny"] = ", ".join(when.get("tagsAny", []))
    template = doc.get("taskTemplates", {}).get(rule.get("createTask") or "", {})
    due = template.get("due", {})
    found = {
        "title": template.get("title"),
        "body": template.get("body"),
        "assignee": template.get("assignee"),
        "dueHours": due.get("hours"),
        "dueBusinessDays": due.get("businessDays"),
        "users": ", ".join(rule.get("assign", {}).get("roundRobin") or []),
        "addTags": ", ".join(rule.get("addTags", [])),
        "tags": ", ".join(rule.get("addTags", [])),
        "count": when.get("recentActivity", {}).get("count"),
        "days": when.get("recentActivity", {}).get("days"),
    }
    for name in values:
        if found.get(name) not in (None, ""):
            value = found[name]
            values[name] = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return values


def switch_off(action: Action, doc: dict[str, Any], location: str, every_location: list[str]) -> None:
    """Switch the action off for GHL ``location``'s connection (``every_location``: those of all the
    connections, which a rule naming none runs for); for the last one, remove it."""
    if action.id == "enrich-local":
        doc.setdefault("enrichment", {})["local"] = False
        return
    rule = _rule_of(action, doc)
    if rule is None:
        return
    still_on = [other for other in rule.get("locations") or every_location if other != location]
    if still_on:
        rule["locations"] = still_on
        return
    rules = doc.get("rules", [])
    doc["rules"] = [r for r in rules if r.get("name") != action.rule_name]
    template = (rule or {}).get("createTask")
    still_used = any(r.get("createTask") == template for r in doc["rules"])
    if template and not still_used:
        doc.get("taskTemplates", {}).pop(template, None)
