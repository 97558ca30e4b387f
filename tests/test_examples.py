"""``examples/webhooks``: one body per event type the intake accepts, each accepted when signed and
each understood by ``rankr-ghl-sync rules test``.

The accepted types are read from the code (the Rankr webhook schema, the GHL endpoint's sets), so an
event type added to the intake without an example fails here. The intake runs in-process (the app
over ``httpx.ASGITransport``, its worker off); ``rules test`` runs in-process through typer's runner.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.integrations.ghl import endpoints
from app.integrations.ghl.app_events import APP_EVENTS
from app.integrations.rankr.schemas import RankrEventType
from app.kit.signatures import WebhookSecret, load_private_key, sign_ghl_ed25519, sign_standard
from app.sandbox import keys
from tests.support.asgi import app_client

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "webhooks"
# Names only GHL's documentation uses for the app events: their bodies say INSTALL / UNINSTALL
# (app/integrations/ghl/app_events.py), so the examples are of those.
DOCUMENTATION_NAMES = frozenset({"AppInstall", "AppUninstall"})

RANKR_TYPES = frozenset(name for kind in get_args(RankrEventType) for name in get_args(kind))
GHL_TYPES = (
    endpoints.CONTACT_EVENTS | endpoints.CHILD_EVENTS | endpoints.APPOINTMENT_EVENTS | APP_EVENTS
) - DOCUMENTATION_NAMES


def examples(source: str) -> dict[str, Path]:
    return {path.stem: path for path in sorted((EXAMPLES / source).glob("*.json"))}


ALL = [*examples("rankr").values(), *examples("ghl").values()]


def body_of(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def test_there_is_one_example_per_event_type_the_intake_accepts() -> None:
    assert set(examples("rankr")) == RANKR_TYPES
    assert set(examples("ghl")) == GHL_TYPES
    assert {"AppointmentCreate", "INSTALL", "UNINSTALL", "TaskUpdate", "NoteDelete"} <= GHL_TYPES
    for path in ALL:
        assert body_of(path)["type"] == path.stem, path
    assert not set(EXAMPLES.iterdir()) - {EXAMPLES / "rankr", EXAMPLES / "ghl"}


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(database_url, sandbox=True) as (_, client):
        yield client


@pytest.mark.anyio
async def test_every_example_is_accepted_by_the_intake_when_signed(http: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    secret = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
    for number, path in enumerate(examples("rankr").values()):
        body = path.read_bytes()
        msg_id, stamp = f"msg_example_{number}", int(now.timestamp())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard(secret, msg_id, stamp, body),
        }
        answer = await http.post("/webhooks/rankr", content=body, headers=headers)
        assert (answer.status_code, answer.json()) == (202, {"status": "accepted", "eventId": msg_id}), path
    private_key = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
    for path in examples("ghl").values():
        # A delivery is fresh: GHL's timestamp must fall within the intake's window.
        payload = {**body_of(path), "timestamp": now.isoformat()}
        body = json.dumps(payload).encode()
        signature = sign_ghl_ed25519(private_key, body)  # type: ignore[arg-type]
        answer = await http.post("/webhooks/ghl", content=body, headers={"x-ghl-signature": signature})
        expected = {"status": "accepted", "eventId": payload["webhookId"]}
        assert (answer.status_code, answer.json()) == (202, expected), path


@pytest.mark.parametrize("path", ALL, ids=[f"{path.parent.name}/{path.stem}" for path in ALL])
def test_rules_test_runs_on_every_example(path: Path, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/unused.db", "LOG_LEVEL": "WARNING"}
    config = ROOT / "examples" / "sync-config.yaml"
    result = CliRunner().invoke(cli, ["rules", "test", str(path), "--config", str(config)], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) >= {"trigger", "decisions"}
    if path.stem == "contact.created":
        # The shipped example's hot-lead rule fires on it, its template filled from the contact.
        [decision] = shown["decisions"]
        assert decision["createTask"]["title"] == "Call Ada Lovelace within 24h"
