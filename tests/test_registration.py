"""What `rankr-ghl-sync urls` tells users to register: built on PUBLIC_URL, events the service stores."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import LOCAL_URL, Settings
from app.registration import applied_types, ghl_events, public_url_warnings, rankr_events, registration
from tests.support.inprocess import InProcessService
from tests.support.reference import find_shared
from tests.support.service import ghl_event, rankr_event


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


PRODUCTION: dict[str, Any] = {"sandbox": False, "ghl_private_token": "pit-test"}


def test_the_ghl_events_to_tick_are_ghls_names_for_everything_the_engine_applies() -> None:
    catalogue = {page.stem for page in (find_shared() / "ghl" / "webhooks").glob("*.md")}
    ticked = set(ghl_events())
    assert ticked <= catalogue, ticked - catalogue
    # Every GHL event the engine applies is ticked; the appointments it only stores are not.
    assert ticked == catalogue & applied_types()
    assert {"AppInstall", "ContactUpdate", "TaskComplete", "NoteDelete"} <= ticked
    assert not any(name.startswith("Appointment") for name in ticked)


def test_the_rankr_events_are_every_contact_task_and_note_event() -> None:
    assert rankr_events() == sorted(
        [f"contact.{v}" for v in ("created", "updated", "deleted")]
        + [f"task.{v}" for v in ("created", "updated", "completed", "deleted")]
        + [f"note.{v}" for v in ("created", "updated", "deleted")]
    )


@pytest.mark.anyio
async def test_every_event_to_register_is_stored_by_the_intake(inprocess: InProcessService) -> None:
    for kind in ghl_events():
        answer = await inprocess.post_ghl(ghl_event(kind, {"id": f"rec_{kind}", "contactId": "c1"}))
        assert (kind, answer.status_code) == (kind, 202), answer.text
    for kind in rankr_events():
        data = {"contactId": "c1", "taskId": "t1", "noteId": "n1", "lastModified": "2026-11-26T08:00:00Z"}
        answer = await inprocess.post_rankr(rankr_event(kind, data))
        assert (kind, answer.status_code) == (kind, 202), answer.text
    stored = {event["type"] for event in await inprocess.events()}
    assert stored == {*ghl_events(), *rankr_events()}


def test_every_url_is_built_on_public_url() -> None:
    sheet = registration(settings(public_url="https://sync.example.com/crm/", **PRODUCTION))
    assert sheet["publicUrl"] == "https://sync.example.com/crm"
    assert sheet["ghl"]["webhookUrl"] == "https://sync.example.com/crm/webhooks/ghl"
    assert sheet["rankr"]["webhookUrl"] == "https://sync.example.com/crm/webhooks/rankr"
    assert sheet["ghl"]["redirectUri"] == "https://sync.example.com/crm/oauth/ghl/callback"
    assert sheet["ghl"]["installUrl"] == "https://sync.example.com/crm/oauth/ghl/install"
    assert sheet["warnings"] == []
    assert sheet["rankr"]["secretsConfigured"] == 0
    assert "oauth.write" in sheet["ghl"]["scopes"]
    assert "oauth.write" not in sheet["ghl"]["privateIntegrationScopes"]
    chosen = settings(
        public_url="https://sync.example.com",
        ghl_redirect_uri="https://auth.example.com/cb",
        rankr_account_id="acct_9",
        **PRODUCTION,
    )
    assert registration(chosen)["ghl"]["redirectUri"] == "https://auth.example.com/cb"
    assert registration(chosen)["ghl"]["installUrl"].endswith("/oauth/ghl/install?rankrAccountId=acct_9")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (
            {**PRODUCTION},
            f"PUBLIC_URL is not set: GHL and Rankr need it (the service's HTTPS address) to reach the "
            f"webhooks and the OAuth callback; using {LOCAL_URL}, which they cannot reach",
        ),
        ({**PRODUCTION, "public_url": "http://sync.example.com"}, "plain http"),
        ({**PRODUCTION, "public_url": "http://10.0.0.7:8000"}, "plain http"),
        ({**PRODUCTION, "public_url": "https://sync.example.com"}, None),
        ({**PRODUCTION, "public_url": "http://127.0.0.1:8000"}, None),
        ({**PRODUCTION, "public_url": "http://localhost:8000"}, None),
        ({**PRODUCTION, "public_url": "http://[::1]:8000"}, None),
        ({"sandbox": True}, None),
        ({"sandbox": True, "public_url": "http://api:8000"}, None),
    ],
)
def test_a_public_url_ghl_cannot_reach_is_warned_about_once(
    values: dict[str, Any], words: str | None
) -> None:
    warnings = public_url_warnings(settings(**values))
    if words is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert words in warning
