"""``GET /admin/contacts/{id}/history``: the audit trail of one contact, its tasks and its notes (admin token
required)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request

from app.admin import admin_router
from app.errors import ProblemError
from app.ops import audit
from app.ops.openapi import answer, problem

router = admin_router()

EXAMPLE = {
    "kind": "contact",
    "id": "ct_8f2a",
    "ids": ["ct_8f2a", "Gh5Lk2"],
    "truncated": False,
    "entries": [
        {
            "id": 41,
            "at": "2026-11-26T10:15:02.120000+00:00",
            "kind": "contact",
            "direction": "to_ghl",
            "action": "create",
            "result": "ok",
            "detail": None,
            "rankrId": "ct_8f2a",
            "ghlId": "Gh5Lk2",
            "connectionId": 1,
            "event": {"id": 17, "type": "contact.created", "ref": "msg_2b9c"},
            "changes": {
                "email": {"from": None, "to": "j***@***.com"},
                "firstName": {"from": None, "to": "J***"},
            },
        },
        {
            "id": 42,
            "at": "2026-11-26T10:16:40.031000+00:00",
            "kind": "task",
            "direction": "to_ghl",
            "action": "create",
            "result": "ok",
            "detail": None,
            "rankrId": "tsk_51c0",
            "ghlId": "Tk9Qm1",
            "connectionId": 1,
            "event": {"id": 18, "type": "task.created", "ref": "msg_7d1e"},
            "changes": {"title": {"from": None, "to": "C***"}, "completed": {"from": None, "to": "F***"}},
        },
    ],
}


@router.get(
    "/contacts/{contact_id}/history",
    summary="Every change the service made for a contact, its tasks and its notes, in both systems (masked)",
    responses={
        **answer(200, "the audit entries of the contact, its tasks and notes, oldest first", EXAMPLE),
        **problem(
            404, "Not Found", "no audit entries for contact con_0000", "the service never wrote for it"
        ),
    },
)
async def contact_history(
    request: Request,
    contact_id: Annotated[str, Path(description="a Rankr or a GHL contact id", examples=["ct_8f2a"])],
) -> dict[str, Any]:
    async with request.app.state.sessions() as session:
        found = await audit.history(session, contact_id)
    if found is None:
        raise ProblemError(404, "Not Found", f"no audit entries for contact {contact_id}")
    return found
