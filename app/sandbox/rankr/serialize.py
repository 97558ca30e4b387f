"""Rankr records in the yaml's wire shapes (Contact, Task, Note); webhooks carry the same shapes."""

from __future__ import annotations

from typing import Any

from app.kit.clock import format_instant
from app.sandbox.rankr.records import ADDRESS_FIELDS, CONTACT_TEXT_FIELDS, RankrContact, RankrNote, RankrTask


def contact_json(contact: RankrContact) -> dict[str, Any]:
    data: dict[str, Any] = {"contactId": contact.contact_id, "accountId": contact.account_id}
    for key in CONTACT_TEXT_FIELDS:
        data[key] = contact.text.get(key)
    data["address"] = {key: contact.address.get(key) for key in ADDRESS_FIELDS}
    data["tags"] = list(contact.tags)
    data["customFields"] = dict(contact.custom_fields)
    data["createdAt"] = format_instant(contact.created_at)
    data["lastModified"] = format_instant(contact.last_modified)
    return data


def task_json(task: RankrTask) -> dict[str, Any]:
    return {
        "taskId": task.task_id,
        "contactId": task.contact_id,
        "title": task.title,
        "description": task.description,
        "dueDate": format_instant(task.due_date) if task.due_date else None,
        "status": task.status,
        "assigneeId": task.assignee_id,
        "lastModified": format_instant(task.last_modified),
    }


def note_json(note: RankrNote) -> dict[str, Any]:
    return {
        "noteId": note.note_id,
        "contactId": note.contact_id,
        "body": note.body,
        "authorId": note.author_id,
        "createdAt": format_instant(note.created_at),
        "lastModified": format_instant(note.last_modified),
    }
