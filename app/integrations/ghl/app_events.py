"""What GHL's app ``INSTALL`` / ``UNINSTALL`` webhooks change: the status of the connections of the
location (or of the agency's locations). Kept apart from the install routes, so the worker does not
load the web framework to apply them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connections.models import Connection, ConnectionStatus, GhlCredential
from app.db import unit_of_work

log = logging.getLogger(__name__)

# GHL's docs name these AppInstall / AppUninstall while the bodies say INSTALL / UNINSTALL.
APP_EVENTS = frozenset({"INSTALL", "UNINSTALL", "AppInstall", "AppUninstall"})


async def apply_app_event(
    sessions: async_sessionmaker[AsyncSession], kind: str, payload: dict[str, Any], now: datetime
) -> str:
    """Apply an app install or uninstall to the connections; returns what was done (the event's note)."""
    location = payload.get("locationId") if isinstance(payload.get("locationId"), str) else None
    company = payload.get("companyId") if isinstance(payload.get("companyId"), str) else None
    install = kind in {"INSTALL", "AppInstall"}
    async with unit_of_work(sessions) as session:
        if location:
            rows = list(
                (
                    await session.execute(select(Connection).where(Connection.ghl_location_id == location))
                ).scalars()
            )
        elif company:
            agency_rows = select(GhlCredential.connection_id).where(GhlCredential.company_id == company)
            rows = list(
                (await session.execute(select(Connection).where(Connection.id.in_(agency_rows)))).scalars()
            )
        else:
            return "no locationId or companyId"
        if not rows:
            where = f"location {location}" if location else f"company {company}"
            if install:
                return (
                    f"no connection for {where} yet: it is created by the install callback "
                    "(/oauth/ghl/install?rankrAccountId=...) or 'rankr-ghl-sync connections add'"
                )
            return f"no connection for {where}"
        status = ConnectionStatus.ACTIVE if install else ConnectionStatus.DISABLED
        ids = [row.id for row in rows]
        await session.execute(
            update(Connection).where(Connection.id.in_(ids)).values(status=status, updated_at=now)
        )
    log.info("connections.app_event", extra={"type": kind, "connections": ids, "status": str(status)})
    return f"connection(s) {', '.join(map(str, ids))} {status}"
