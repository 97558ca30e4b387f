"""Reconciliation end to end: what webhooks missed (dropped by the sandboxes) is repaired."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.support.service import Service, running_service, wait_for


def person(**extra: Any) -> dict[str, Any]:
    return {
        "email": f"rec.{uuid.uuid4().hex[:10]}@example.com",
        "firstName": "Ann",
        "lastName": "Lee",
        "address": {"city": "Oslo"},
        **extra,
    }


def linked_pair(service: Service) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Rankr contact synced to GHL the usual way (webhooks on): (rankr, ghl)."""
    contact = service.rankr.create(**person())
    service.settle()
    [ghl] = service.ghl.by_email(contact["email"])
    return contact, ghl


def drop_webhooks(service: Service) -> None:
    service.rankr.control(webhook_drop_rate=1.0)
    service.ghl.control(webhook_drop_rate=1.0)


def reconcile(service: Service) -> dict[str, Any]:
    before = (service.status()["connections"][0]["reconcile"] or {}).get("startedAt")
    answer = service.http.post(f"{service.url}/admin/reconcile", json={})
    assert answer.status_code == 202, answer.text

    def done() -> dict[str, Any] | None:
        facts = service.status()["connections"][0]["reconcile"]
        return facts if facts and facts["state"] == "done" and facts["startedAt"] != before else None

    facts = wait_for(done, timeout=60, what="the reconciliation to finish")
    service.settle()
    return facts


def test_reconciliation_repairs_changes_deletions_and_creates_webhooks_missed(service: Service) -> None:
    (a, a_ghl), (b, b_ghl), (c, c_ghl), (d, d_ghl) = (linked_pair(service) for _ in range(4))
    drop_webhooks(service)
    service.rankr.update(a["contactId"], firstName="Annabel")  # Rankr only
    service.ghl.update(b_ghl["id"], lastName="Lie")  # GHL only
    service.rankr.update(c["contactId"], firstName="Cora", address={"city": "Rome"})  # both, city conflicts:
    time.sleep(0.01)  # both sides stamp milliseconds; within the same one the tie rule would decide
    service.ghl.update(c_ghl["id"], city="Bergen")  # GHL's change is the newer
    service.rankr.delete(d["contactId"])  # deleted, no webhook
    e_ghl = service.ghl.create(email=f"new.{uuid.uuid4().hex[:8]}@example.com", firstName="Eve")
    service.settle()
    assert [x["state"] for x in service.rankr.deliveries()[-3:]] == ["dropped"] * 3
    assert service.ghl.get(a_ghl["id"])["firstName"] == "Ann"  # type: ignore[index]

    facts = reconcile(service)

    assert facts["counts"]["repair"] >= 3
    assert facts["counts"]["missing"] == 1
    assert service.ghl.get(a_ghl["id"])["firstName"] == "Annabel"  # type: ignore[index]
    assert service.rankr.get(b["contactId"])["lastName"] == "Lie"  # type: ignore[index]
    c_rankr, c_ghl_now = service.rankr.get(c["contactId"]), service.ghl.get(c_ghl["id"])
    assert c_rankr is not None
    assert c_ghl_now is not None
    assert c_rankr["firstName"] == c_ghl_now["firstName"] == "Cora"
    assert c_rankr["address"]["city"] == c_ghl_now["city"] == "Bergen"
    assert service.ghl.get(d_ghl["id"]) is None  # CONTACT_DELETE_MODE=delete, as a webhook would have
    [e] = service.rankr.by_email(e_ghl["email"])
    assert e["firstName"] == "Eve"
    # Every decision is in the audit log, with its reason.
    audit = service.audit()
    [conflict] = [
        json.loads(row["changes"]) if isinstance(row["changes"], str) else row["changes"]
        for row in audit
        if row["action"] == "merge" and row["rankr_id"] == c["contactId"] and row["direction"] == "to_rankr"
    ]
    assert conflict["address.city"]["why"] == "changed on both sides; modified more recently in ghl"
    assert any(row["action"] == "delete" and row["ghl_id"] == d_ghl["id"] for row in audit)
    states = {row["ghl_id"]: row["state"] for row in service.links()}
    assert states[d_ghl["id"]] == "deleted"

    # Nothing drifted since: the next run lists what changed (the repairs themselves), writes nothing.
    rankr_mark, ghl_mark = service.rankr.mark(), service.ghl.mark()
    facts = reconcile(service)
    assert facts["counts"].get("repair", 0) == 0
    assert facts["counts"].get("missing", 0) == 0
    assert service.rankr.writes_since(rankr_mark) == []
    assert service.ghl.writes_since(ghl_mark) == []


def test_periodic_reconciliation_detects_a_deletion_that_sent_no_webhook(database_url: str) -> None:
    settings = {"reconcile_interval_seconds": 0.5, "contact_delete_mode": "unlink"}
    with running_service(database_url, **settings) as service:
        contact, ghl = linked_pair(service)
        drop_webhooks(service)
        service.ghl.delete(ghl["id"])

        def tagged() -> bool:
            current = service.rankr.get(contact["contactId"])
            return current is not None and "sync-unlinked" in current["tags"]

        wait_for(tagged, timeout=30, what="the periodic reconciliation to unlink the contact")

        def unlinked() -> bool:
            # The tag is written before the link's new state is committed: wait for both.
            rows = [row for row in service.links() if row["rankr_id"] == contact["contactId"]]
            return [row["state"] for row in rows] == ["unlinked"]

        wait_for(unlinked, timeout=30, what="the link to be settled as unlinked")
        assert service.status()["connections"][0]["reconcile"]["counts"]["missing"] >= 1


def test_reconciliation_waits_for_an_unfinished_backfill(database_url: str) -> None:
    """A backfill compares both sides in full itself; a reconciliation beside it would list everything
    again and create what the backfill is about to link. So it is refused (409) and the periodic one
    skips the connection until the backfill is done."""
    with running_service(database_url, reconcile_interval_seconds=0.5) as service:
        service.rankr.seed([person() for _ in range(3)])
        service.ghl.control(latency_ms=1500)  # the backfill's GHL listing takes a while
        answer = service.http.post(f"{service.url}/admin/backfill", json={})
        assert answer.status_code == 202, answer.text
        wait_for(
            lambda: (service.status()["connections"][0]["backfill"] or {}).get("state") == "running",
            timeout=30, what="the backfill to be running",
        )  # fmt: skip
        # A periodic round may have come before the backfill started; none may start after it.
        before = (service.status()["connections"][0]["reconcile"] or {}).get("startedAt")
        refused = service.http.post(f"{service.url}/admin/reconcile", json={})
        assert refused.status_code == 409, refused.text
        assert "backfill of connection 1 has not finished" in refused.json()["detail"]
        time.sleep(1.5)  # three rounds of the periodic reconciliation
        entry = service.status()["connections"][0]
        assert entry["backfill"]["state"] == "running"
        assert (entry["reconcile"] or {}).get("startedAt") == before

        service.ghl.control(latency_ms=0)
        wait_for(
            lambda: (service.status()["connections"][0]["backfill"] or {}).get("state") == "done",
            timeout=60, what="the backfill to finish",
        )  # fmt: skip

        def reconciled() -> bool:
            facts = service.status()["connections"][0]["reconcile"] or {}
            return facts.get("state") == "done" and facts.get("startedAt") != before

        wait_for(reconciled, timeout=30, what="the periodic reconciliation to run once the backfill is done")
