"""The audit trail of a contact (admin API and CLI), and its retention."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import httpx
import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.service import Service, execute, query, running_service, wait_for

pytestmark = pytest.mark.e2e

ADMIN = {"authorization": "Bearer s3cret"}


def history(service: Service, contact_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(
        f"{service.url}/admin/contacts/{contact_id}/history", headers=ADMIN if headers is None else headers
    )


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), cli_env(database_url))


def test_a_contacts_history_shows_every_write_on_both_sides_masked(database_url: str) -> None:
    with running_service(database_url, admin_token="s3cret") as service:
        email = f"audited.{uuid.uuid4().hex[:8]}@example.com"
        created = service.rankr.create(email=email, firstName="Audrey", lastName="Trail")
        service.settle()
        [ghl] = service.ghl.by_email(email)
        service.ghl.update(ghl["id"], lastName="Trailblazer")
        service.settle()
        service.ghl.control(error_rate=1.0, error_status=422)
        service.rankr.update(created["contactId"], firstName="Audra")
        wait_for(lambda: any(e["status"] == "dead" for e in service.events()), what="the refused update")

        assert history(service, created["contactId"], {}).status_code == 401
        refused = history(service, created["contactId"], {"authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")
        missing = history(service, "con_never_seen")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

        by_rankr = history(service, created["contactId"])
        assert by_rankr.status_code == 200
        found: dict[str, Any] = by_rankr.json()
        assert history(service, ghl["id"]).json()["entries"] == found["entries"]
        assert sorted(found["ids"]) == sorted([created["contactId"], ghl["id"]])
        steps = [(e["direction"], e["action"], e["result"], e["event"]["type"]) for e in found["entries"]]
        assert steps == [
            ("to_ghl", "create", "ok", "contact.created"),
            ("to_rankr", "update", "ok", "ContactUpdate"),
            ("to_ghl", "update", "error", "contact.updated"),
        ]
        first, second, third = found["entries"]
        assert first["changes"]["email"] == {"from": None, "to": "a***@***.com"}
        assert first["changes"]["firstName"] == {"from": None, "to": "A***"}
        assert second["changes"] == {"lastName": {"from": "T***", "to": "T***"}}
        assert third["changes"]["firstName"] == {"from": "A***", "to": "A***"}
        assert "ghl 422" in third["detail"]
        refs = {event["event_id"] for event in service.events()}
        assert all(entry["event"]["ref"] in refs for entry in found["entries"])
        text = by_rankr.text
        for secret in (email, "Audrey", "Audra", "Trailblazer"):
            assert secret not in text

    shown = cli(database_url, "history", created["contactId"])
    assert shown.returncode == 0, shown.stderr
    assert "to_ghl create [ok]" in shown.stdout
    assert "to_rankr update [ok]" in shown.stdout
    assert "'T***' -> 'T***'" in shown.stdout
    assert email not in shown.stdout
    assert "Audrey" not in shown.stdout
    assert cli(database_url, "history", "con_never_seen").returncode == 1


def test_the_worker_prunes_audit_entries_and_finished_events_past_retention(database_url: str) -> None:
    with running_service(database_url) as service:
        for name in ("Old", "New"):
            service.rankr.create(email=f"{name.lower()}.{uuid.uuid4().hex[:8]}@example.com", firstName=name)
        service.settle()
        service.ghl.control(error_rate=1.0, error_status=422)
        service.rankr.create(email=f"dead.{uuid.uuid4().hex[:8]}@example.com")
        wait_for(lambda: any(e["status"] == "dead" for e in service.events()), what="a dead event")
    # Age the first contact's rows beyond retention, and every event (dead ones are kept anyway).
    execute(
        database_url,
        "UPDATE audit_entries SET at = '2020-01-01T00:00:00+00:00' "
        "WHERE id = (SELECT min(id) FROM audit_entries)",
    )
    execute(
        database_url,
        "UPDATE webhook_events "
        "SET finished_at = '2020-01-01T00:00:00+00:00', received_at = '2020-01-01T00:00:00+00:00'",
    )
    audits_before = len(query(database_url, "SELECT id FROM audit_entries"))
    with running_service(database_url, audit_retention_days=30, event_retention_days=7):
        wait_for(
            lambda: len(query(database_url, "SELECT id FROM audit_entries")) == audits_before - 1,
            what="the old audit entry pruned",
        )
        wait_for(
            lambda: (
                [e["status"] for e in query(database_url, "SELECT status FROM webhook_events")] == ["dead"]
            ),
            what="finished events pruned, the dead one kept",
        )
