"""The audit trail of one contact: every write the service made for it, its tasks and notes, on both
sides, masked.

``history`` finds the contact by its id on either side (a Rankr or a GHL contact id), so both ids'
entries are shown together, with those of the contact's tasks and notes (each entry names the kind
of record and its ids): creates, updates, links, deletes and unlinks, with the mapped fields'
before and after (masked: ``app.kit.masking``), the triggering event and the result. ``prune``
deletes entries older than ``AUDIT_RETENTION_DAYS``; the worker calls it (``app.ops.housekeeping``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.kit.masking import mask_field
from app.sync.models import AuditEntry, Kind, Link

# An answer holds at most this many entries (the newest); older ones are summarised by a count.
HISTORY_LIMIT = 500


def _masked_changes(changes: dict[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = {}
    for name, change in changes.items():
        if isinstance(change, dict) and ("from" in change or "to" in change):
            masked[name] = {
                "from": mask_field(name, change.get("from")),
                "to": mask_field(name, change.get("to")),
            }
        else:
            masked[name] = mask_field(name, change)
    return masked


def describe(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "direction": entry.direction,
        "action": entry.action,
        "result": entry.result,
        "detail": entry.detail,
        "rankrId": entry.rankr_id,
        "ghlId": entry.ghl_id,
        "connectionId": entry.connection_id,
        "event": {"id": entry.event_id, "type": entry.event_type, "ref": entry.event_ref},
        "changes": _masked_changes(entry.changes or {}),
    }


def _is_contact(link: type[Link], contact_id: str) -> ColumnElement[bool]:
    """``link`` is the link of the contact ``contact_id`` (its id on either side)."""
    return and_(link.kind == Kind.CONTACT, or_(link.rankr_id == contact_id, link.ghl_id == contact_id))


async def history(
    session: AsyncSession, contact_id: str, *, limit: int = HISTORY_LIMIT
) -> dict[str, Any] | None:
    """The contact's audit entries and its tasks' and notes', oldest first, or None when the service
    never wrote for any of them."""
    ids = {contact_id}
    links = await session.execute(select(Link.rankr_id, Link.ghl_id).where(_is_contact(Link, contact_id)))
    for rankr_id, ghl_id in links.all():
        ids.update(value for value in (rankr_id, ghl_id) if value)
    # A task's or note's entries are found through its link, whose parent is the contact's link.
    parent = aliased(Link)
    children = (
        select(Link.id).join(parent, Link.parent_id == parent.id).where(_is_contact(parent, contact_id))
    )
    rows = await session.execute(
        select(AuditEntry)
        .where(
            or_(
                and_(
                    AuditEntry.kind == Kind.CONTACT,
                    or_(AuditEntry.rankr_id.in_(ids), AuditEntry.ghl_id.in_(ids)),
                ),
                and_(AuditEntry.kind.in_([Kind.TASK, Kind.NOTE]), AuditEntry.link_id.in_(children)),
            )
        )
        .order_by(AuditEntry.id.desc())
        .limit(limit + 1)
    )
    entries = list(rows.scalars())
    if not entries:
        return None
    truncated = len(entries) > limit
    return {
        "kind": Kind.CONTACT.value,
        "id": contact_id,
        "ids": sorted(ids),
        "truncated": truncated,
        "entries": [describe(entry) for entry in reversed(entries[:limit])],
    }


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete audit entries written before ``before``; returns how many."""
    result = await session.execute(delete(AuditEntry).where(AuditEntry.at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
