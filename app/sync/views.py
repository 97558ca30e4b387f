"""What the service knows about one contact: its link, its tasks' and notes' links, its GHL appointments.

Served at ``GET /admin/contacts/{id}`` and ``GET /admin/contacts/{id}/appointments``
(``app.ops.contacts``) and printed by ``rankr-ghl-sync contact ID``. The id may be the Rankr or the
GHL contact id. Contact field values (names, emails, phones) are not shown: only ids, states and
times, plus task titles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import Connection
from app.integrations.registry import Upstreams
from app.kit.clock import isoformat_or_none
from app.sync.models import Kind, Link

APPOINTMENT_FIELDS = ("id", "calendarId", "title", "startTime", "endTime", "appointmentStatus", "status")


def _child(link: Link) -> dict[str, Any]:
    snapshot = link.snapshot or {}
    entry: dict[str, Any] = {
        "rankrId": link.rankr_id,
        "ghlId": link.ghl_id,
        "state": link.state,
        "syncedAt": isoformat_or_none(link.synced_at),
    }
    if link.kind == Kind.TASK:
        entry.update(
            title=snapshot.get("title"), completed=snapshot.get("completed"), dueDate=snapshot.get("dueDate")
        )
    return entry


async def find_contact(sessions: async_sessionmaker[AsyncSession], record_id: str) -> Link | None:
    """The newest contact link naming ``record_id`` on either side."""
    async with sessions() as session:
        return (
            await session.scalars(
                select(Link)
                .where(Link.kind == Kind.CONTACT, or_(Link.rankr_id == record_id, Link.ghl_id == record_id))
                .order_by(Link.id.desc())
                .limit(1)
            )
        ).first()


async def contact_state(sessions: async_sessionmaker[AsyncSession], record_id: str) -> dict[str, Any] | None:
    link = await find_contact(sessions, record_id)
    if link is None:
        return None
    async with sessions() as session:
        children = (
            await session.scalars(select(Link).where(Link.parent_id == link.id).order_by(Link.id))
        ).all()
    return {
        "connectionId": link.connection_id,
        "rankrId": link.rankr_id,
        "ghlId": link.ghl_id,
        "state": link.state,
        "syncedAt": isoformat_or_none(link.synced_at),
        "rankrModifiedAt": isoformat_or_none(link.rankr_modified_at),
        "ghlModifiedAt": isoformat_or_none(link.ghl_modified_at),
        "tasks": [_child(child) for child in children if child.kind == Kind.TASK],
        "notes": [_child(child) for child in children if child.kind == Kind.NOTE],
    }


async def appointments(
    sessions: async_sessionmaker[AsyncSession],
    upstreams: Callable[[Connection], Upstreams],
    record_id: str,
) -> dict[str, Any] | None:
    """The contact's GHL appointments, read now (read-only: the service never writes them)."""
    link = await find_contact(sessions, record_id)
    if link is None or link.ghl_id is None:
        return None
    async with sessions() as session:
        connection = await session.get(Connection, link.connection_id)
    assert connection is not None  # noqa: S101 - links cascade with their connection
    events = await upstreams(connection).ghl.list_appointments(link.ghl_id)
    return {
        "rankrId": link.rankr_id,
        "ghlId": link.ghl_id,
        "appointments": [
            {key: event.get(key) for key in APPOINTMENT_FIELDS if key in event} for event in events
        ],
    }
