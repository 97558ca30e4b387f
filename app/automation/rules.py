"""Rules, evaluated: which rules an event about a contact sets off, and what each would do. No I/O here.

The runner (``runner.py``) carries the actions out; ``rankr-ghl-sync rules test`` prints them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.automation.config import PLACEHOLDER, Condition, Rule, SyncConfig, TaskTemplate
from app.sync import mapping

# Event types of both products -> the rule triggers they stand for.
TRIGGERS: dict[str, str] = {
    "contact.created": "contact.created",
    "ContactCreate": "contact.created",
    "contact.updated": "contact.updated",
    "ContactUpdate": "contact.updated",
    "ContactTagUpdate": "contact.updated",
    "task.created": "task.created",
    "TaskCreate": "task.created",
    "task.completed": "task.completed",
    "TaskComplete": "task.completed",
    "note.created": "note.added",
    "NoteCreate": "note.added",
}


@dataclass(frozen=True, slots=True)
class Signals:
    """What is known about the event and its contact when the rules are evaluated."""

    trigger: str
    source: str  # the side the event came from: rankr or ghl
    contact: Mapping[str, Any]  # canonical contact fields (see app.sync.mapping)
    contact_source: str | None = None  # GHL's ``source`` of the contact, when known
    recent_activity: Mapping[float, int] = field(default_factory=dict)  # days -> task/note events


@dataclass(frozen=True, slots=True)
class TaskAction:
    template: str
    title: str
    body: str | None
    due: datetime
    assignee: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    """A rule that fires, and what it does."""

    rule: Rule
    task: TaskAction | None = None
    assign_to: list[str] = field(default_factory=list)  # one user, or the round-robin pool
    add_tags: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """What the decision does, for the audit log and the dry run."""
        result: dict[str, Any] = {"rule": self.rule.name}
        if self.task is not None:
            result["createTask"] = {
                "template": self.task.template,
                "title": self.task.title,
                "body": self.task.body,
                "dueDate": self.task.due.isoformat(),
                "assignee": self.task.assignee,
            }
        if self.assign_to:
            result["assign"] = (
                self.assign_to[0] if len(self.assign_to) == 1 else {"roundRobin": self.assign_to}
            )
        if self.add_tags:
            result["addTags"] = self.add_tags
        return result


def needs_activity(config: SyncConfig) -> set[float]:
    """The activity windows (days) the rules look at."""
    return {rule.when.recent_activity.days for rule in config.rules if rule.when.recent_activity is not None}


def listens(config: SyncConfig, event_type: str) -> bool:
    """Whether any rule may fire on this event type (so the event is worth evaluating at all)."""
    trigger = TRIGGERS.get(event_type)
    return trigger is not None and any(trigger in rule.when.event for rule in config.rules)


def matches(condition: Condition, signals: Signals) -> bool:
    if signals.trigger not in condition.event:
        return False
    if condition.source not in ("any", signals.source):
        return False
    tags = set(signals.contact.get("tags") or ())
    if condition.tags_any and not tags & set(mapping.tags(condition.tags_any)):
        return False
    if condition.tags_none and tags & set(mapping.tags(condition.tags_none)):
        return False
    if condition.sources and signals.contact_source not in condition.sources:
        return False
    for name, allowed in condition.fields.items():
        value = mapping.text(signals.contact.get(name))
        if value is None or value.lower() not in {choice.lower() for choice in allowed}:
            return False
    activity = condition.recent_activity
    return activity is None or signals.recent_activity.get(activity.days, 0) >= activity.count


def render(text: str, contact: Mapping[str, Any]) -> str:
    """``text`` with ``{field}`` placeholders filled from the contact (an unknown or empty one: "")."""

    def value(match: re.Match[str]) -> str:
        found = contact.get(match.group(1))
        if isinstance(found, list):
            return ", ".join(str(item) for item in found)
        return "" if found is None else str(found)

    # A placeholder with no value leaves no gap ("Call  within 24h" -> "Call within 24h").
    return re.sub(r"[ \t]{2,}", " ", PLACEHOLDER.sub(value, text)).strip()


def due_at(template: TaskTemplate, now: datetime) -> datetime:
    """When a task made from ``template`` at ``now`` is due (business days skip Saturday and Sunday)."""
    if template.due.hours is not None:
        return now + timedelta(hours=template.due.hours)
    day, left = now, template.due.business_days or 0
    while left:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def decide(config: SyncConfig, signals: Signals, now: datetime, location: str | None) -> list[Decision]:
    """The decisions of every rule switched on for GHL ``location``'s connection that fires, in the
    configuration's order."""
    decisions = []
    for rule in config.rules:
        if not rule.runs_at(location) or not matches(rule.when, signals):
            continue
        task = None
        if rule.create_task is not None:
            template = config.task_templates[rule.create_task]
            task = TaskAction(
                template=rule.create_task,
                title=render(template.title, signals.contact),
                body=render(template.body, signals.contact) if template.body else None,
                due=due_at(template, now),
                assignee=template.assignee,
            )
        assign = rule.assign
        pool = ([assign.user] if assign.user else list(assign.round_robin or ())) if assign else []
        decisions.append(Decision(rule=rule, task=task, assign_to=pool, add_tags=list(rule.add_tags)))
    return decisions
