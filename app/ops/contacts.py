"""``GET /admin/contacts/{id}`` and ``.../appointments``: a contact's sync state and GHL appointments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request

from app.admin import admin_router
from app.errors import ProblemError
from app.sync.views import appointments, contact_state

ContactId = Annotated[str, Path(description="the Rankr or the GHL contact id", examples=["ct_123"])]


router = admin_router()


def _not_linked(record_id: str) -> ProblemError:
    return ProblemError(404, "Not Found", f"no contact with id {record_id} is known to the service")


@router.get("/contacts/{contact_id}", summary="A contact's sync state: its link, tasks and notes")
async def get_contact_state(request: Request, contact_id: ContactId) -> dict[str, Any]:
    state = await contact_state(request.app.state.sessions, contact_id)
    if state is None:
        raise _not_linked(contact_id)
    return state


@router.get("/contacts/{contact_id}/appointments", summary="A linked contact's GHL appointments (read now)")
async def get_contact_appointments(request: Request, contact_id: ContactId) -> dict[str, Any]:
    found = await appointments(
        request.app.state.sessions, request.app.state.registry.for_connection, contact_id
    )
    if found is None:
        raise _not_linked(contact_id)
    return found
