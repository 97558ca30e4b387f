"""The console's activity page: a contact found by email, phone or either side's id, and every write
the service made for it and its tasks and notes (``app.ops.audit``), masked; an operator may reveal
one entry's values, and each reveal is recorded (``Reveal``) and logged, without the values."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from app.admin import CONSOLE_ROOT
from app.console.models import Reveal
from app.console.pages import Pages, checked_form, text
from app.db import unit_of_work
from app.ops import audit
from app.sync.mapping import match_keys
from app.sync.models import AuditEntry, Kind, Link

log = logging.getLogger(__name__)
WHO = "console (admin)"
_PHONE_CHARACTERS = set("+0123456789 ()-.")


async def contact_ids(request: Request, query: str) -> list[str]:
    """The contact ids the query names: the contacts linked with this email or phone, else the query
    itself taken as a Rankr or GHL id."""
    email, phone = None, None
    if "@" in query:
        email, _ = match_keys({"email": query})
    elif set(query) <= _PHONE_CHARACTERS and sum(ch.isdigit() for ch in query) >= 7:
        _, phone = match_keys({"phone": query})
    if email is None and phone is None:
        return [query]
    condition = Link.match_email == email if email is not None else Link.match_phone == phone
    async with request.app.state.sessions() as session:
        rows = await session.execute(
            select(Link.rankr_id, Link.ghl_id).where(Link.kind == Kind.CONTACT, condition).order_by(Link.id)
        )
        return [rankr_id or ghl_id for rankr_id, ghl_id in rows.all() if rankr_id or ghl_id]


async def histories(request: Request, query: str) -> list[dict[str, Any]]:
    found = []
    async with request.app.state.sessions() as session:
        for contact_id in await contact_ids(request, query):
            history = await audit.history(session, contact_id)
            if history is not None:
                history["reveals"] = await _reveals(session, [e["id"] for e in history["entries"]])
                found.append(history)
    return found


async def _reveals(session: Any, entry_ids: list[int]) -> dict[int, list[Reveal]]:
    rows = await session.execute(
        select(Reveal).where(Reveal.audit_entry_id.in_(entry_ids)).order_by(Reveal.id)
    )
    shown: dict[int, list[Reveal]] = {}
    for reveal in rows.scalars():
        shown.setdefault(reveal.audit_entry_id, []).append(reveal)
    return shown


def activity_router(pages: Pages) -> APIRouter:
    router = APIRouter(prefix=f"{CONSOLE_ROOT}/activity", include_in_schema=False)

    @router.get("")
    async def activity(request: Request, q: str = "") -> HTMLResponse:
        query = q.strip()[:320]
        found = await histories(request, query) if query else []
        return pages.render(request, "activity.html", "Activity", query=query, found=found, revealed=None)

    @router.post("/reveal")
    async def reveal(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        query = text(form, "q", limit=320)
        entry_text = text(form, "entry")
        entry_id = int(entry_text) if entry_text.isdigit() and len(entry_text) < 19 else 0
        async with unit_of_work(request.app.state.sessions) as session:
            entry = await session.get(AuditEntry, entry_id)
            if entry is not None:
                fields = ", ".join(sorted(entry.changes or {}))[:2000]
                session.add(
                    Reveal(
                        at=request.app.state.clock(),
                        revealed_by=WHO,
                        audit_entry_id=entry.id,
                        contact_id=query or None,
                        fields=fields,
                    )
                )
        if entry is None:
            found = await histories(request, query) if query else []
            return pages.render(
                request,
                "activity.html",
                "Activity",
                status=404,
                query=query,
                found=found,
                revealed=None,
                error=f"There is no audit entry {entry_text}.",
            )
        log.info("console.reveal", extra={"audit_entry": entry.id, "fields": fields})
        return pages.render(
            request,
            "activity.html",
            "Activity",
            query=query,
            found=await histories(request, query) if query else [],
            revealed={"id": entry.id, "changes": entry.changes or {}},
            message=f"Entry {entry.id} revealed; the reveal is recorded.",
        )

    return router
