"""Records made and read through the sandboxed products, for the handler tests: a linked contact,
its tasks and notes on either side, the links the service keeps."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.inprocess import InProcessService


def unique_email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example.com"


def rankr_person(email: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": email,
        "phone": f"+1555{uuid.uuid4().int % 10**7:07d}",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "companyName": "Analytical Engines",
        "website": "https://ada.example",
        "address": {
            "line1": "12 Loop Street",
            "city": "London",
            "state": "LDN",
            "postalCode": "N1 9GU",
            "country": "GB",
        },
        "tags": ["VIP", "lead"],
        **extra,
    }


async def linked_contact(service: InProcessService) -> tuple[str, str]:
    """A contact made in Rankr and synced: (rankr id, ghl id)."""
    email = f"grace.{uuid.uuid4().hex[:10]}@example.com"
    contact = await service.rankr.create(email=email, firstName="Grace", lastName="Hopper")
    await service.settle()
    [ghl] = await service.ghl.by_email(email)
    return contact["contactId"], ghl["id"]


async def rankr_task(service: InProcessService, contact_id: str, **fields: Any) -> dict[str, Any]:
    answer = await service.rankr.api("POST", f"/contacts/{contact_id}/tasks", json=fields)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def rankr_tasks(service: InProcessService, contact_id: str) -> list[dict[str, Any]]:
    return list((await service.rankr.api("GET", f"/contacts/{contact_id}/tasks")).json()["data"])


async def ghl_tasks(service: InProcessService, contact_id: str) -> list[dict[str, Any]]:
    return list((await service.ghl.api("GET", f"/contacts/{contact_id}/tasks")).json()["tasks"])


async def ghl_notes(service: InProcessService, contact_id: str) -> list[dict[str, Any]]:
    return list((await service.ghl.api("GET", f"/contacts/{contact_id}/notes")).json()["notes"])


async def rankr_notes(service: InProcessService, contact_id: str) -> list[dict[str, Any]]:
    return list((await service.rankr.api("GET", f"/contacts/{contact_id}/notes")).json()["data"])


async def links_of(service: InProcessService, kind: str) -> list[tuple[str, str | None, str | None]]:
    return [
        (link["state"], link["rankr_id"], link["ghl_id"])
        for link in await service.links()
        if link["kind"] == kind
    ]


async def ghl_tasks_now(service: InProcessService, contact_id: str) -> list[dict[str, Any]]:
    """The contact's GHL tasks from the sandbox's state (not the API, which may be failing)."""
    state = (await service.http.get(f"{service.ghl.base}/_sandbox/state")).json()
    return [task for task in state["tasks"] if task["contactId"] == contact_id]
