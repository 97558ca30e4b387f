"""``GET /admin/contacts/{id}/history``: the audit trail of one contact (admin token required)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request

from app.admin import router
from app.errors import ProblemError
from app.ops import audit
from app.ops.openapi import answer, problem

EXAMPLE = {
    "kind": "contact",
    "id": "ct_8f2a",
    "ids": ["ct_8f2a", "Gh5Lk2"],
    "truncated": False,
    "entries": [
        {
            "at": "2026-11-26T10:15:02.120000+00:00",
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
        }
    ],
}


@router.get(
    "/contacts/{contact_id}/history",
    summary="Every change the service made for a contact, in both systems (masked)",
    responses={
        **answer(200, "the contact's audit entries, oldest first", EXAMPLE),
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
