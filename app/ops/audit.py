"""The audit trail of one record: every write the service made for it, on both sides, masked.

``history`` finds the record by its id on either side (a Rankr or a GHL contact id), so both ids'
entries are shown together: creates, updates, links, deletes and unlinks, with the mapped fields'
before and after (masked: ``app.kit.masking``), the triggering event and the result. ``prune``
deletes entries older than ``AUDIT_RETENTION_DAYS``; the worker calls it (``app.ops.housekeeping``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

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
        "at": entry.at.isoformat(),
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


async def history(
    session: AsyncSession, record_id: str, *, kind: str = Kind.CONTACT.value, limit: int = HISTORY_LIMIT
) -> dict[str, Any] | None:
    """The record's audit entries, oldest first, or None when the service never touched it."""
    ids = {record_id}
    links = await session.execute(
        select(Link.rankr_id, Link.ghl_id).where(
            Link.kind == kind, or_(Link.rankr_id == record_id, Link.ghl_id == record_id)
        )
    )
    for rankr_id, ghl_id in links.all():
        ids.update(value for value in (rankr_id, ghl_id) if value)
    rows = await session.execute(
        select(AuditEntry)
        .where(AuditEntry.kind == kind, or_(AuditEntry.rankr_id.in_(ids), AuditEntry.ghl_id.in_(ids)))
        .order_by(AuditEntry.id.desc())
        .limit(limit + 1)
    )
    entries = list(rows.scalars())
    if not entries:
        return None
    truncated = len(entries) > limit
    return {
        "kind": kind,
        "id": record_id,
        "ids": sorted(ids),
        "truncated": truncated,
        "entries": [describe(entry) for entry in reversed(entries[:limit])],
    }


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete audit entries written before ``before``; returns how many."""
    result = await session.execute(delete(AuditEntry).where(AuditEntry.at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
