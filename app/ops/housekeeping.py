"""Retention: the worker deletes audit entries past ``AUDIT_RETENTION_DAYS`` and finished inbox rows
(done or skipped; dead ones stay until replayed) past ``EVENT_RETENTION_DAYS``, every
``PRUNE_INTERVAL_SECONDS``. Several workers doing it at once is harmless: the deletes are idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.inbox import repository as inbox
from app.ops import audit

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pruned:
    audit_entries: int
    events: int


async def prune(sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime) -> Pruned:
    async with unit_of_work(sessions) as session:
        audits = await audit.prune(session, now - timedelta(days=settings.audit_retention_days))
        events = await inbox.purge_finished(session, now - timedelta(days=settings.event_retention_days))
    if audits or events:
        log.info("housekeeping.pruned", extra={"audit_entries": audits, "events": events})
    return Pruned(audits, events)
